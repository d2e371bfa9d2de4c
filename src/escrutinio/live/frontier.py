"""The crawl's persistent state: what is known, listed, fetched, due, and every accepted
acta state (docs/live.md, "The frontier: resumable"). Kept in memory by
:class:`Frontier` and saved, only what changed, through the store's frontier repository
(``store.live_frontier``, :mod:`escrutinio.store.frontier_repo`; DuckDB or PostgreSQL).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from escrutinio.live.config import Stack
from escrutinio.live.parse import GeoNode

if TYPE_CHECKING:
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


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat()


def from_iso(v: Any) -> datetime | None:
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
        d["listed_at"], d["not_before"] = iso(self.listed_at), iso(self.not_before)
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> District:
        d = dict(d)
        d["listed_at"] = from_iso(d.get("listed_at"))
        d["not_before"] = from_iso(d.get("not_before"))
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
                "fetched_at": iso(self.fetched_at), "due": self.due,
                "not_before": iso(self.not_before), "failures": self.failures,
                "reading": self.reading}  # already JSON-ready: no deep copy

    @staticmethod
    def from_json(d: dict[str, Any]) -> Acta:
        d = dict(d)
        d["fetched_at"] = from_iso(d.get("fetched_at"))
        d["not_before"] = from_iso(d.get("not_before"))
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
                self.geo_tasks[key] = from_iso(d.get("not_before"))
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
                               "not_before": iso(self.geo_tasks.get(key))})
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


__all__ = ["FINAL_STATUSES", "LIST_2021", "NO_DATA_BELIEVED", "Acta", "District", "Frontier",
           "from_iso", "iso", "moved"]
