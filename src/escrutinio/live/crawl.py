"""The cold path: the geography, the acta lists of each district, and the actas.

A crawl of ONPE's per-acta data, polite and resumable (docs/live.md, "The cold path"):

1. **Geography** — ``/ubigeos/dep-prov-distritos`` (one request: every district and city
   abroad with its ``DEP \\ PROV \\ DIST`` names); when that answers an API error, no
   data or an unexpected shape, the tree ``/ubigeos/departamentos`` → ``provincias`` →
   ``distritos`` of home (``idAmbitoGeografico=1``) and abroad (``2``), expanded only
   where the crawl needs it. Kept in the frontier and in the store's geography;
   refreshed every ``geography_refresh_s`` (a day). The 2021 API publishes no geography:
   the districts are configured and their names come from the actas themselves.
2. **Acta lists** — ``/actas?pagina=&tamanio=&idEleccion=&idAmbitoGeografico=&idUbigeo=``
   per district (2021: ``/mesas/locales/{ubigeo}`` then ``/mesas/actas/11/{ubigeo}/{local}``),
   every page up to ``totalPaginas``; whether the first page is 0 or 1 is found out once
   (``first_page = "auto"``) and remembered. A list is fetched again every ``lists_s``
   while its district has actas that are not final: the list says which actas moved.
3. **Actas** — each acta is fetched once; afterwards only while it is not final (E, P:
   at the JEE, pending) and only when its list entry shows it moved (or, as a safety
   net, after ``repoll_s``). Counted actas are cached and never requested again.

Everything goes through the watcher's transport (global rate limit, backoff, raw log)
and its acceptance path (:meth:`escrutinio.live.accept.Acceptor.ingest_acta`: classify →
parse → validate). The work of each cycle is bounded by the watcher (``max_requests``,
``max_seconds``, and it yields as soon as the hot path is due). The **frontier** — what
is known, listed, fetched, due, and every accepted acta state — is persisted in the
store through its frontier repository (``store.live_frontier``,
:mod:`escrutinio.store.frontier_repo`; table ``live_crawl``, one transaction per flush,
DuckDB or PostgreSQL), so a restarted watcher resumes where the last one stopped,
without fetching again what it already has.
"""

from __future__ import annotations

import heapq
import json
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from escrutinio.live.classify import Outcome
from escrutinio.live.config import Scope, Stack
from escrutinio.live.parse import (
    ActaPage,
    ActaReading,
    GeoNode,
    ListedActa,
    ParseDrift,
    level_of,
    parse_acta_list_2026,
    parse_geography_flat,
    parse_geography_level,
    parse_locales_2021,
    parse_mesas_2021,
)

if TYPE_CHECKING:
    from escrutinio.live.classify import RawResponse
    from escrutinio.live.watcher import Watcher
    from escrutinio.store.frontier_repo import FrontierRepo

#: an empty answer (204, empty, all-null) for something that should exist is believed
#: only when it comes this many times in a row (else it is a glitch: retried later)
NO_DATA_BELIEVED: Final = 3

#: the 2021 API's election segment in /mesas/actas/{id}/{ubigeo}/{local} (presidential)
LIST_2021: Final = 11

#: ONPE's state code in a list -> the acta statuses it stands for
_LIST_STATES: Final[dict[str, frozenset[str]]] = {
    "C": frozenset({"counted", "annulled", "not_installed"}),
    "N": frozenset({"not_installed", "counted"}),
    "E": frozenset({"jee", "observed", "lost", "destroyed"}),
    "P": frozenset({"pending"}),
}
FINAL_STATUSES: Final = frozenset({"counted", "annulled", "not_installed"})


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat()


def _dt(v: Any) -> datetime | None:
    return None if not v else datetime.fromisoformat(v)


def moved(listed: str | None, status: str | None, stack: Stack) -> bool:
    """Does a list entry say the acta is no longer in the state we hold?"""
    if listed is None or status is None:
        return False
    if stack is Stack.ONPE2021:  # the 2021 lists only say processed (C) or not (P)
        return (listed == "C") != (status != "pending")
    return status not in _LIST_STATES.get(listed, frozenset())


@dataclass(slots=True)
class District:
    code: str
    pages: int | None = None  # totalPaginas of the pass in progress
    total: int | None = None  # totalRegistros of the pass in progress
    next_page: int = 0  # 0-based index of the next page of this pass
    seen: list[str] = field(default_factory=list)  # keys listed in this pass
    locales: list[str] | None = None  # 2021: polling places left in this pass
    probe_one: bool = False  # page 0 answered nothing: try page 1 before giving up
    listed_at: datetime | None = None  # end of the last complete pass
    keys: list[str] = field(default_factory=list)  # actas of the last complete pass
    not_before: datetime | None = None
    failures: int = 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["listed_at"], d["not_before"] = _iso(self.listed_at), _iso(self.not_before)
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> District:
        d = dict(d)
        d["listed_at"], d["not_before"] = _dt(d.get("listed_at")), _dt(d.get("not_before"))
        return District(**d)


@dataclass(slots=True)
class Acta:
    key: str  # scope key: acta:<idActa> (2026) or mesa:<NNNNNN> (2021)
    mesa: str
    district: str | None
    listed: str | None = None  # its state code in the last list
    status: str | None = None  # status of the last accepted reading
    fetches: int = 0  # answers received (retries not counted)
    fetched_at: datetime | None = None
    due: bool = True  # needs a fetch: never fetched, or its list entry moved
    not_before: datetime | None = None
    failures: int = 0
    reading: dict[str, Any] | None = None  # the accepted state (ActaReading.to_json)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "mesa": self.mesa, "district": self.district,
                "listed": self.listed, "status": self.status, "fetches": self.fetches,
                "fetched_at": _iso(self.fetched_at), "due": self.due,
                "not_before": _iso(self.not_before), "failures": self.failures,
                "reading": self.reading}  # already JSON-ready: no deep copy

    @staticmethod
    def from_json(d: dict[str, Any]) -> Acta:
        d = dict(d)
        d["fetched_at"], d["not_before"] = _dt(d.get("fetched_at")), _dt(d.get("not_before"))
        return Acta(**d)


class Frontier:
    """The crawl's persistent state, one row per item in table ``live_crawl``: meta
    (geography time and method, the first page of lists), the geography, pending
    geography tasks, districts and actas. Only changed rows are written, in one
    transaction per :meth:`flush`."""

    def __init__(self, repo: FrontierRepo, contest_id: str) -> None:
        self.repo = repo
        self.contest_id = contest_id
        repo.ensure_schema()
        self.meta: dict[str, Any] = {}
        self.geo: dict[str, GeoNode] = {}
        self.geo_tasks: dict[str, datetime | None] = {}  # task -> not before
        self.districts: dict[str, District] = {}
        self.actas: dict[str, Acta] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._done_tasks: set[str] = set()
        self.load()

    def load(self) -> None:
        for kind, key, state in self.repo.load(self.contest_id):
            d = json.loads(state)
            if kind == "meta":
                self.meta[key] = d
            elif kind == "geo":
                self.geo = {c: GeoNode(c, n, lvl, p) for c, n, lvl, p in d}
            elif kind == "geotask" and d.get("pending"):
                self.geo_tasks[key] = _dt(d.get("not_before"))
            elif kind == "district":
                self.districts[key] = District.from_json(d)
            elif kind == "acta":
                self.actas[key] = Acta.from_json(d)

    @property
    def loaded(self) -> bool:
        return bool(self.meta or self.geo or self.districts or self.actas)

    def touch(self, kind: str, key: str) -> None:
        self._dirty.add((kind, key))

    def set_meta(self, key: str, value: Any) -> None:
        self.meta[key] = value
        self.touch("meta", key)

    def done_task(self, task: str) -> None:
        self.geo_tasks.pop(task, None)
        self._done_tasks.add(task)
        self.touch("geotask", task)

    @property
    def pending_writes(self) -> int:
        return len(self._dirty)

    def _state(self, kind: str, key: str) -> str | None:
        if kind == "meta":
            return json.dumps(self.meta.get(key))
        if kind == "geo":
            return json.dumps([[g.code, g.name, g.level, g.parent]
                               for g in sorted(self.geo.values(),
                                               key=lambda g: (g.level, g.code))],
                              ensure_ascii=False)
        if kind == "geotask":
            pending = key in self.geo_tasks
            return json.dumps({"pending": pending,
                               "not_before": _iso(self.geo_tasks.get(key))})
        if kind == "district":
            return json.dumps(self.districts[key].to_json(), ensure_ascii=False)
        if kind == "acta":
            return json.dumps(self.actas[key].to_json(), ensure_ascii=False)
        return None

    def flush(self, now: datetime) -> int:
        """Write every changed row in one transaction (all or nothing)."""
        if not self._dirty:
            return 0
        rows = []
        for kind, key in sorted(self._dirty):
            state = self._state(kind, key)
            if state is not None:
                rows.append((kind, key, state))
        if rows:
            self.repo.save(self.contest_id, rows, now.astimezone(UTC))
        self._dirty.clear()
        self._done_tasks.clear()
        return len(rows)


class Crawler:
    """Runs the cold path's crawl inside a :class:`~escrutinio.live.watcher.Watcher`."""

    def __init__(self, watcher: Watcher) -> None:
        self.w = watcher
        self.cfg = watcher.cfg
        self.cold = watcher.cfg.cold
        self.f = Frontier(watcher.store.live_frontier, watcher.cfg.contest.id)
        self.stats: Counter[str] = Counter()
        self._queue: deque[str] = deque()  # acta keys due now
        self._deferred: list[tuple[datetime, str]] = []  # (not before, key)
        self._queued: set[str] = set()  # keys in the queue or the deferred heap
        self._dqueue: deque[str] = deque()  # districts due now
        self._announced_complete = bool(self.f.meta.get("complete_at"))
        self._flushed_at = time.monotonic()
        if self.cfg.stack is Stack.ONPE2021:
            for d in self.cold.areas:  # the 2021 API has no geography: districts given
                self._district(d)
        else:
            self._sync_districts()
        self._requeue(self.w.clock.now())

    # -- settings -------------------------------------------------------------------------
    @property
    def lists_s(self) -> float:
        return self.cold.lists_s or self.cfg.intervals.cold_s

    @property
    def wants_geography(self) -> bool:
        return self.cfg.stack is Stack.ONPE2026 and (self.cfg.fetch_geography
                                                     or self.cold.crawl)

    def _backoff(self, failures: int) -> float:
        return min(self.cfg.intervals.cold_s, self.cfg.intervals.hot_s * 2 ** min(failures, 8))

    # -- geography ------------------------------------------------------------------------
    def _geo_due(self, now: datetime) -> str | None:
        """The next geography task due now, or None."""
        if not self.wants_geography:
            return None
        for task, nb in self.f.geo_tasks.items():
            if nb is None or nb <= now:
                return task
        if self.f.geo_tasks:
            return None
        at = _dt(self.f.meta.get("geography_at"))
        nb = _dt(self.f.meta.get("geography_not_before"))
        if nb is not None and nb > now:
            return None
        if at is None or (now - at).total_seconds() >= self.cold.geography_refresh_s:
            return "flat"
        return None

    def _geo_next(self, now: datetime) -> datetime | None:
        if not self.wants_geography:
            return None
        if self.f.geo_tasks:
            return min((nb or now) for nb in self.f.geo_tasks.values())
        nb = _dt(self.f.meta.get("geography_not_before"))
        at = _dt(self.f.meta.get("geography_at"))
        due = now if at is None else at + timedelta(seconds=self.cold.geography_refresh_s)
        return max(due, nb) if nb is not None else due

    def _area_wanted(self, code: str) -> bool:
        """Is some crawled area inside or around ``code`` (area1 or area2)?"""
        for a in self.cold.areas:
            if a in ("all", "home", "abroad"):
                if a == "all" or code.startswith("9") == (a == "abroad"):
                    return True
                continue
            n = 2 if level_of(code) == "area1" else 4
            m = 2 if level_of(a) == "area1" else n
            if a[:min(n, m)] == code[:min(n, m)]:
                return True
        return False

    def _geo_url(self, task: str) -> str:
        base, eid = self.cfg.base_url, self.w.election_id
        if task == "flat":
            return f"{base}/ubigeos/dep-prov-distritos?idEleccion={eid}"
        kind, amb, *rest = task.split(":")
        q = f"idEleccion={eid}&idAmbitoGeografico={amb}"
        if kind == "dep":
            return f"{base}/ubigeos/departamentos?{q}"
        if kind == "prov":
            return f"{base}/ubigeos/provincias?{q}&idUbigeoDepartamento={rest[0]}"
        return f"{base}/ubigeos/distritos?{q}&idUbigeoProvincia={rest[0]}"

    def _do_geo(self, task: str, now: datetime) -> str:
        w = self.w
        url = self._geo_url(task)
        scope = "geo" if task == "flat" else f"geo:{task}"
        res = w.fetch.get(url, scope, "geography")
        cls = res.classification
        nodes: list[GeoNode] | None = None
        reason = cls.reason
        if cls.outcome is Outcome.OK:
            try:
                if task == "flat":
                    nodes = parse_geography_flat(cls.payload, url=url)
                else:
                    kind, _amb, *rest = task.split(":")
                    level = {"dep": "area1", "prov": "area2", "dist": "area3"}[kind]
                    nodes = parse_geography_level(cls.payload, level, url=url,
                                                  parent=rest[0] if rest else None)
            except ParseDrift as exc:
                w.stats.results["rejected"] += 1
                w.accept.reject(scope, "schema_drift", exc.detail_en, [res.response])
                reason = "schema_drift"
        if nodes is not None:
            w.accept.ok()
            self._merge_geo(nodes)
            if task == "flat":
                self._geo_complete(now, "flat")
            else:
                self._expand(task, nodes)
                self.f.done_task(task)
                if not self.f.geo_tasks:
                    self._geo_complete(now, "tree")
            self.stats["geography"] += 1
            return "accepted"
        if cls.outcome is not Outcome.OK:
            w.accept.failure(scope, res)
        retry = cls.outcome in (Outcome.TRANSIENT, Outcome.BLOCKED)
        fails = int(self.f.meta.get("geography_failures", 0)) + 1
        if task == "flat" and not retry:
            # the flat list is not there (or not as expected): walk the tree instead
            w.emit("geography_tree", "warning", scope,
                     f"dep-prov-distritos no sirve ({reason}); se recorre "
                     "departamentos → provincias → distritos",
                     f"dep-prov-distritos unusable ({reason}); walking departamentos → "
                     "provincias → distritos", reason=reason)
            for amb in (1, 2):
                self.f.geo_tasks[f"dep:{amb}"] = None
                self.f.touch("geotask", f"dep:{amb}")
            self.f.set_meta("geography_method", "tree")
            return "tree"
        if not retry:  # a tree node that does not answer: the geography stays partial
            self.f.done_task(task)
            self.f.set_meta("geography_incomplete", True)
            w.emit("geography_incomplete", "warning", scope,
                     f"{task}: sin respuesta utilizable ({reason}); geografía incompleta",
                     f"{task}: no usable answer ({reason}); geography incomplete",
                     reason=reason)
            if not self.f.geo_tasks:
                self._geo_complete(now, "tree")
            return "failed"
        wait = timedelta(seconds=self._backoff(fails))
        self.f.set_meta("geography_failures", fails)
        if task == "flat":
            self.f.set_meta("geography_not_before", _iso(now + wait))
        else:
            self.f.geo_tasks[task] = now + wait
            self.f.touch("geotask", task)
        return "retry"

    def _merge_geo(self, nodes: list[GeoNode]) -> None:
        changed = False
        for g in nodes:
            old = self.f.geo.get(g.code)
            if old != g:
                self.f.geo[g.code] = g
                changed = True
        if changed:
            self.f.touch("geo", "nodes")  # the next stored snapshot carries them
            if self.cfg.stack is Stack.ONPE2026:
                self._sync_districts()

    def _expand(self, task: str, nodes: list[GeoNode]) -> None:
        kind, amb, *_ = task.split(":")
        nxt = {"dep": "prov", "prov": "dist"}.get(kind)
        if nxt is None:
            return
        for g in nodes:
            if self._area_wanted(g.code):
                t = f"{nxt}:{amb}:{g.code}"
                self.f.geo_tasks[t] = None
                self.f.touch("geotask", t)

    def _geo_complete(self, now: datetime, method: str) -> None:
        self.f.set_meta("geography_at", _iso(now))
        self.f.set_meta("geography_method", method)
        self.f.set_meta("geography_failures", 0)
        self.f.set_meta("geography_not_before", None)
        n = Counter(g.level for g in self.f.geo.values())
        self.w.emit("geography", "info", "geo",
                      f"geografía: {n['area1']} áreas de primer nivel, {n['area2']} de "
                      f"segundo, {n['area3']} distritos ({method})",
                      f"geography: {n['area1']} first-level areas, {n['area2']} second, "
                      f"{n['area3']} districts ({method})", method=method, **dict(n))

    def add_place(self, reading: ActaReading) -> None:
        """2021: the acta's own place names become the geography."""
        u = reading.area3_code
        if reading.place is None or u is None:
            return
        a1, a2 = u[:2] + "0000", u[:4] + "00"
        nodes = [GeoNode(c, n, lvl, p) for c, n, lvl, p in (
            (a1, reading.place[0], "area1", None), (a2, reading.place[1], "area2", a1),
            (u, reading.place[2], "area3", a2)) if n and c not in self.f.geo]
        if nodes:
            self._merge_geo(nodes)

    # -- districts and lists ---------------------------------------------------------------
    def _district(self, code: str) -> District:
        d = self.f.districts.get(code)
        if d is None:
            d = self.f.districts[code] = District(code)
            self.f.touch("district", code)
            self._dqueue.append(code)
        return d

    def _sync_districts(self) -> None:
        if not self.cold.crawl:
            return
        for g in self.f.geo.values():
            if g.level == "area3" and self.cold.wants(g.code):
                self._district(g.code)

    def _district_due(self, d: District, now: datetime) -> bool:
        if d.not_before is not None and d.not_before > now:
            return False
        if d.listed_at is None or d.next_page > 0 or d.locales:
            return True
        if (now - d.listed_at).total_seconds() < self.lists_s:
            return False
        return not d.keys or any(not (a := self.f.actas.get(k)) or not a.final
                                 for k in d.keys)

    def _district_next(self, d: District, now: datetime) -> datetime | None:
        if d.listed_at is None or d.next_page > 0 or d.locales:
            return d.not_before or now
        if d.keys and all((a := self.f.actas.get(k)) is not None and a.final
                          for k in d.keys):
            return None  # every acta final: never listed again
        t = d.listed_at + timedelta(seconds=self.lists_s)
        return max(t, d.not_before) if d.not_before else t

    def _list_base(self) -> int | None:
        if self.cold.first_page in ("0", "1"):
            return int(self.cold.first_page)
        base = self.f.meta.get("list_base")
        return None if base is None else int(base)

    def _list_url(self, d: District, pagina: int) -> str:
        amb = 2 if d.code.startswith("9") else 1
        return (f"{self.cfg.base_url}/actas?pagina={pagina}&tamanio={self.cold.page_size}"
                f"&idEleccion={self.w.election_id}&idAmbitoGeografico={amb}"
                f"&idUbigeo={int(d.code)}")

    def _list_failed(self, d: District, now: datetime) -> None:
        d.failures += 1
        d.not_before = now + timedelta(seconds=self._backoff(d.failures))
        self.f.touch("district", d.code)

    def _do_list(self, d: District, now: datetime) -> str:
        if self.cfg.stack is Stack.ONPE2021:
            return self._do_list_2021(d, now)
        w = self.w
        scope = f"list:{d.code}"
        base = self._list_base()
        pagina = (base if base is not None else (1 if d.probe_one else 0)) + d.next_page
        url = self._list_url(d, pagina)
        res = w.fetch.get(url, scope, "list")
        cls = res.classification
        if cls.outcome is Outcome.NO_DATA:
            w.accept.failure(scope, res)
            if base is None and d.next_page == 0 and not d.probe_one:
                d.probe_one = True  # maybe a 1-based backend: ask for page 1
                self.f.touch("district", d.code)
                return "no_data"
            # a district of the geography has actas: an empty answer is more likely a
            # glitch than the truth; believed only when it repeats
            if d.failures + 1 < NO_DATA_BELIEVED:
                d.probe_one = False
                self._list_failed(d, now)
                return "no_data"
            self._finish_pass(d, now)
            return "no_data"
        if cls.outcome is not Outcome.OK:
            w.accept.failure(scope, res)
            self._list_failed(d, now)
            return cls.outcome.value
        try:
            page = parse_acta_list_2026(cls.payload, url=url, district=d.code,
                                        election_id=w.election_id)
        except ParseDrift as exc:
            w.stats.results["rejected"] += 1
            w.accept.reject(scope, "schema_drift", exc.detail_en, [res.response])
            self._list_failed(d, now)
            return "rejected"
        w.accept.ok()
        if base is None:
            learned: int | None = None
            if pagina == 0 and page.page == 1:
                learned = 1  # the backend counts from 1 and answers page 0 with page 1
            elif page.items:
                learned = pagina
            elif pagina == 0 and page.total_records:
                d.probe_one = True  # page 0 empty, yet the district has actas: page 1?
                self.f.touch("district", d.code)
                return "probe"
            else:  # an empty district says nothing about the first page
                self._finish_pass(d, now)
                return "accepted"
            self.f.set_meta("list_base", learned)
            w.emit("list_first_page", "info", scope,
                     f"las listas de actas empiezan en la página {learned}",
                     f"acta lists start at page {learned}", first_page=learned)
        self._take_page(d, page, now, res.response)
        return "accepted"

    def _take_page(self, d: District, page: ActaPage, now: datetime,
                   resp: RawResponse) -> None:
        d.failures, d.not_before, d.probe_one = 0, None, False
        d.pages, d.total = page.total_pages, page.total_records
        for it in page.items:
            self._listed(it, d.code, resp)
        d.seen += [it.key for it in page.items]
        d.next_page += 1
        self.f.touch("district", d.code)
        if not page.items or d.next_page >= (page.total_pages or 0):
            self._finish_pass(d, now)
        else:
            self._dqueue.appendleft(d.code)  # finish this district's pass first

    def _finish_pass(self, d: District, now: datetime) -> None:
        keys = list(dict.fromkeys(d.seen))
        if d.total is not None and len(keys) < d.total:
            self.w.emit("acta_list_incomplete", "warning", f"list:{d.code}",
                          f"{d.code}: la lista dio {len(keys)} de {d.total} actas",
                          f"{d.code}: the list gave {len(keys)} of {d.total} actas",
                          listed=len(keys), total=d.total)
        d.keys = list(dict.fromkeys([*keys, *(k for k in d.keys if k not in keys)]))
        d.seen, d.next_page, d.pages, d.total, d.locales = [], 0, None, None, None
        d.probe_one, d.failures, d.not_before = False, 0, None
        d.listed_at = now
        self.stats["lists"] += 1
        self.f.touch("district", d.code)

    def _do_list_2021(self, d: District, now: datetime) -> str:
        w = self.w
        scope = f"list:{d.code}"
        if d.locales is None:
            url = f"{self.cfg.base_url}/mesas/locales/{d.code}?name=param"
        else:
            url = (f"{self.cfg.base_url}/mesas/actas/{LIST_2021}/{d.code}/{d.locales[0]}"
                   "?name=param")
        res = w.fetch.get(url, scope, "list")
        cls = res.classification
        if cls.outcome not in (Outcome.OK, Outcome.NO_DATA):
            w.accept.failure(scope, res)
            self._list_failed(d, now)
            return cls.outcome.value
        try:
            if d.locales is None:
                locales = ([] if cls.outcome is Outcome.NO_DATA
                           else parse_locales_2021(cls.payload, url=url, district=d.code))
                d.locales = locales
                if not locales:
                    self._finish_pass(d, now)
                else:
                    self._dqueue.appendleft(d.code)
                self.f.touch("district", d.code)
                w.accept.ok()
                return "accepted"
            page = (ActaPage((), 1, 0, None) if cls.outcome is Outcome.NO_DATA
                    else parse_mesas_2021(cls.payload, url=url, district=d.code))
        except ParseDrift as exc:
            w.stats.results["rejected"] += 1
            w.accept.reject(scope, "schema_drift", exc.detail_en, [res.response])
            self._list_failed(d, now)
            return "rejected"
        w.accept.ok()
        for it in page.items:
            self._listed(it, d.code, res.response)
        d.seen += [it.key for it in page.items]
        d.locales = d.locales[1:]
        d.failures, d.not_before = 0, None
        self.f.touch("district", d.code)
        if not d.locales:
            self._finish_pass(d, now)
        else:
            self._dqueue.appendleft(d.code)
        return "accepted"

    def _listed(self, it: ListedActa, district: str, resp: RawResponse) -> None:
        a = self.f.actas.get(it.key)
        if a is None:
            a = self.f.actas[it.key] = Acta(it.key, it.mesa, it.district or district,
                                            listed=it.state)
            if it.state == "P" and self.w.accept.ingest_listed(
                    ListedActa(it.key, it.mesa, it.state, it.district or district,
                               it.electors, it.polling_place), resp) == "accepted":
                # pending: nothing to fetch yet; its list entry will say when it moves
                reading = self.w.actas[it.key]
                a.due, a.status, a.reading = False, reading.status, reading.to_json()
                self.stats["listed_pending"] += 1
            else:
                self._enqueue(a)
        else:
            a.listed = it.state
            # moved; or a list without states: re-poll what is not final at each pass
            if not a.due and (moved(it.state, a.status, self.cfg.stack)
                              or (it.state is None and not a.final)):
                a.due = True
                self.stats["moved"] += 1
                self._enqueue(a)
        self.f.touch("acta", it.key)

    # -- actas ----------------------------------------------------------------------------
    def _enqueue(self, a: Acta, now: datetime | None = None) -> None:
        if a.key in self._queued:
            return
        self._queued.add(a.key)
        if a.not_before is not None and (now is None or a.not_before > now):
            heapq.heappush(self._deferred, (a.not_before, a.key))
        else:
            self._queue.append(a.key)

    def _requeue(self, now: datetime) -> None:
        """Refill the queues: deferred actas whose wait is over; when the queue is empty,
        every acta due (and, with ``repoll_s``, the non-final ones not fetched for that
        long); the districts whose list is due."""
        while self._deferred and self._deferred[0][0] <= now:
            _, key = heapq.heappop(self._deferred)
            self._queue.append(key)
        if not self._queue:
            repoll = self.cold.repoll_s
            for key, a in self.f.actas.items():
                if not a.due and repoll > 0 and not a.final and a.fetched_at is not None \
                        and (now - a.fetched_at).total_seconds() >= repoll:
                    a.due = True
                    self.stats["repoll"] += 1
                    self.f.touch("acta", key)
                if a.due:
                    self._enqueue(a, now)
        if not self._dqueue:
            due = [d for d in self.f.districts.values() if self._district_due(d, now)]
            due.sort(key=lambda d: (d.listed_at is not None and d.next_page == 0,
                                    d.listed_at or datetime.min.replace(tzinfo=UTC), d.code))
            self._dqueue.extend(d.code for d in due)

    def _next_acta(self, now: datetime) -> Acta | None:
        while self._queue:
            key = self._queue.popleft()
            a = self.f.actas.get(key)
            if a is None or not a.due:
                self._queued.discard(key)
                continue
            if a.not_before is not None and a.not_before > now:
                heapq.heappush(self._deferred, (a.not_before, key))
                continue
            self._queued.discard(key)
            return a
        return None

    def _next_district(self, now: datetime) -> District | None:
        while self._dqueue:
            d = self.f.districts.get(self._dqueue.popleft())
            if d is not None and self._district_due(d, now):
                return d
        return None

    def _do_acta(self, a: Acta, now: datetime) -> str:
        w = self.w
        scope = Scope.from_key(a.key)
        res = w.fetch.get(w.fetch.acta_url(scope), a.key, "acta")
        r = w.accept.ingest_acta(scope, res.response, res.classification)
        a.fetches += 1
        a.fetched_at = now
        self.stats[f"acta_{r}"] += 1
        if r in ("accepted", "duplicate"):
            reading = w.actas.get(a.key)
            a.due, a.failures, a.not_before = False, 0, None
            if reading is not None:
                a.status = reading.status
                if r == "accepted":
                    a.reading = reading.to_json()
                    self.add_place(reading)
        elif r == "no_data":
            # listed, so it exists: an empty answer is retried; when it repeats, the acta
            # is taken as not published yet (its list entry will say when it is)
            a.failures += 1
            if a.failures >= NO_DATA_BELIEVED:
                a.due, a.not_before, a.failures = False, None, 0
            else:
                a.not_before = now + timedelta(seconds=self._backoff(a.failures))
                self._enqueue(a, now)
        elif r == "held":  # a change to a final acta waits for a second reading
            a.not_before = now + timedelta(seconds=self.cfg.intervals.hot_s)
            self._enqueue(a, now)
        else:
            a.failures += 1
            a.not_before = now + timedelta(seconds=self._backoff(a.failures))
            self._enqueue(a, now)
        self.f.touch("acta", a.key)
        return r

    # -- one step ---------------------------------------------------------------------------
    def step(self, budget_ok: Callable[[], bool], results: dict[str, str]) -> None:
        """Crawl while ``budget_ok()``: geography, then actas due, then list pages."""
        w = self.w
        self._requeue(w.clock.now())
        while budget_ok():
            now = w.clock.now()
            task = self._geo_due(now)
            if task is not None:
                results[f"geo:{task}"] = self._do_geo(task, now)
            elif (a := self._next_acta(now)) is not None:
                results[a.key] = self._do_acta(a, now)
            elif (d := self._next_district(now)) is not None:
                results[f"list:{d.code}"] = self._do_list(d, now)
            else:
                break
            w.schedule.after_scope()
        self._maybe_complete(w.clock.now())

    def _maybe_complete(self, now: datetime) -> None:
        if self._announced_complete or not self.cold.crawl or self.discovering():
            return
        self._announced_complete = True
        self.f.set_meta("complete_at", _iso(now))
        n = len(self.f.actas)
        w = self.w
        w.emit("crawl_complete", "info", None,
                 f"recorrido completo: {len(self.f.districts)} distritos, {n} actas; "
                 "desde ahora solo se vuelven a pedir las que no son finales y cambian",
                 f"crawl complete: {len(self.f.districts)} districts, {n} actas; from now "
                 "on only actas that are not final and move are requested again",
                 districts=len(self.f.districts), actas=n)

    def discovering(self) -> bool:
        """Still discovering: geography missing, a district never listed, or an acta
        never fetched."""
        if self.wants_geography and self.f.meta.get("geography_at") is None:
            return True
        if any(d.listed_at is None for d in self.f.districts.values()):
            return True
        return any(a.fetches == 0 and a.due for a in self.f.actas.values())

    def next_due(self, now: datetime) -> datetime:
        """When the cold path has something to do next (at least ``step_s`` away)."""
        step = timedelta(seconds=self.cold.step_s)
        if self._queue or self._dqueue or self._geo_due(now) is not None:
            return now + step
        cands: list[datetime] = []
        g = self._geo_next(now)
        if g is not None:
            cands.append(g)
        if self._deferred:
            cands.append(self._deferred[0][0])
        for d in self.f.districts.values():
            t = self._district_next(d, now)
            if t is not None:
                cands.append(t)
        repoll = self.cold.repoll_s
        for a in self.f.actas.values():
            if a.due:
                cands.append(a.not_before or now)
            elif repoll > 0 and not a.final and a.fetched_at is not None:
                cands.append(a.fetched_at + timedelta(seconds=repoll))
        if not cands:
            return now + timedelta(seconds=self.cfg.intervals.cold_s)
        return max(min(cands), now + step)

    def flush(self) -> None:
        self.f.flush(self.w.clock.now())
        self._flushed_at = time.monotonic()

    def maybe_flush(self, *, max_rows: int = 500, max_age_s: float = 5.0) -> None:
        """Flush when much changed or a few real seconds passed: a kill -9 costs at most
        those seconds of crawl (fetched again), never a half-written row."""
        if self.f.pending_writes >= max_rows or (
                self.f.pending_writes and time.monotonic() - self._flushed_at >= max_age_s):
            self.flush()

    # -- reporting --------------------------------------------------------------------------
    def geography_rows(self) -> list[GeoNode]:
        return sorted(self.f.geo.values(), key=lambda g: (g.level, g.code))

    def summary(self) -> dict[str, Any]:
        acts = self.f.actas.values()
        return {
            "areas": list(self.cold.areas),
            "geography": {"nodes": len(self.f.geo),
                          "at": self.f.meta.get("geography_at"),
                          "method": self.f.meta.get("geography_method"),
                          "incomplete": bool(self.f.meta.get("geography_incomplete"))},
            "first_page": self._list_base(),
            "districts": len(self.f.districts),
            "districts_listed": sum(d.listed_at is not None for d in self.f.districts.values()),
            "actas": len(self.f.actas),
            "actas_fetched": sum(a.fetches > 0 for a in acts),
            "actas_due": sum(a.due for a in acts),
            "actas_final": sum(a.final for a in acts),
            "by_status": dict(Counter(a.status or "unknown" for a in acts)),
            "discovering": self.discovering(),
            "complete_at": self.f.meta.get("complete_at"),
            "stats": dict(self.stats),
        }

    def readings(self) -> dict[str, ActaReading]:
        return {k: ActaReading.from_json(a.reading) for k, a in self.f.actas.items()
                if a.reading is not None}


__all__ = ["Acta", "Crawler", "District", "Frontier", "moved"]
