"""The crawl's geography (docs/live.md, "The cold path", step 1): ``/ubigeos/dep-prov-
distritos`` in one request, or, when that is unusable, the tree ``departamentos`` →
``provincias`` → ``distritos`` of home and abroad, expanded only where the crawl needs
it; refreshed every ``geography_refresh_s``. In 2021 the actas' own place names are the
geography (:meth:`GeographyCrawl.add_place`).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from escrutinio.live.classify import Outcome
from escrutinio.live.config import LiveConfig, Stack
from escrutinio.live.frontier import from_iso, iso
from escrutinio.live.parse import (
    ActaReading,
    GeoNode,
    ParseDrift,
    level_of,
    parse_geography_flat,
    parse_geography_level,
)
from escrutinio.live.transport import FetchResult

if TYPE_CHECKING:
    from escrutinio.live.crawl import Crawler

_LEVEL_OF_TASK = {"dep": "area1", "prov": "area2", "dist": "area3"}


def backoff(cfg: LiveConfig, failures: int) -> float:
    """Seconds before a failed crawl item is tried again (doubling, capped)."""
    return min(cfg.intervals.cold_s, cfg.intervals.hot_s * 2 ** min(failures, 8))


class GeographyCrawl:
    def __init__(self, crawler: Crawler) -> None:
        self.c = crawler
        self.w = crawler.w
        self.cfg = crawler.cfg
        self.cold = crawler.cold
        self.f = crawler.f
        self.stats = crawler.stats

    def due(self, now: datetime) -> str | None:
        """The next geography task due now, or None."""
        if not self.c.wants_geography:
            return None
        for task, nb in self.f.geo_tasks.items():
            if nb is None or nb <= now:
                return task
        if self.f.geo_tasks:
            return None
        at = from_iso(self.f.meta.get("geography_at"))
        nb = from_iso(self.f.meta.get("geography_not_before"))
        if nb is not None and nb > now:
            return None
        if at is None or (now - at).total_seconds() >= self.cold.geography_refresh_s:
            return "flat"
        return None

    def next_at(self, now: datetime) -> datetime | None:
        if not self.c.wants_geography:
            return None
        if self.f.geo_tasks:
            return min((nb or now) for nb in self.f.geo_tasks.values())
        nb = from_iso(self.f.meta.get("geography_not_before"))
        at = from_iso(self.f.meta.get("geography_at"))
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

    def _url(self, task: str) -> str:
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

    def do(self, task: str, now: datetime) -> str:
        """One geography request: accepted / tree (the flat list is unusable) / failed /
        retry."""
        url = self._url(task)
        scope = "geo" if task == "flat" else f"geo:{task}"
        res = self.w.fetch.get(url, scope, "geography")
        nodes, reason = self._parse(task, url, scope, res)
        if nodes is None:
            return self._failed(task, scope, res, reason, now)
        self.w.accept.ok()
        self.merge(nodes)
        if task == "flat":
            self._complete(now, "flat")
        else:
            self._expand(task, nodes)
            self.f.done_task(task)
            if not self.f.geo_tasks:
                self._complete(now, "tree")
        self.stats["geography"] += 1
        return "accepted"

    def _parse(self, task: str, url: str, scope: str, res: FetchResult
               ) -> tuple[list[GeoNode] | None, str]:
        """The nodes of an ``ok`` answer (None when not ok or drifted) and the reason."""
        cls = res.classification
        if cls.outcome is not Outcome.OK:
            return None, cls.reason
        try:
            if task == "flat":
                return parse_geography_flat(cls.payload, url=url), cls.reason
            kind, _amb, *rest = task.split(":")
            return parse_geography_level(cls.payload, _LEVEL_OF_TASK[kind], url=url,
                                         parent=rest[0] if rest else None), cls.reason
        except ParseDrift as exc:
            self.w.stats.results["rejected"] += 1
            self.w.accept.reject(scope, "schema_drift", exc.detail_en, [res.response])
            return None, "schema_drift"

    def _failed(self, task: str, scope: str, res: FetchResult, reason: str,
                now: datetime) -> str:
        cls = res.classification
        if cls.outcome is not Outcome.OK:
            self.w.accept.failure(scope, res)
        retry = cls.outcome in (Outcome.TRANSIENT, Outcome.BLOCKED)
        if task == "flat" and not retry:
            # the flat list is not there (or not as expected): walk the tree instead
            self.w.emit("geography_tree", "warning", scope,
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
            self.w.emit("geography_incomplete", "warning", scope,
                        f"{task}: sin respuesta utilizable ({reason}); geografía incompleta",
                        f"{task}: no usable answer ({reason}); geography incomplete",
                        reason=reason)
            if not self.f.geo_tasks:
                self._complete(now, "tree")
            return "failed"
        fails = int(self.f.meta.get("geography_failures", 0)) + 1
        wait = timedelta(seconds=backoff(self.cfg, fails))
        self.f.set_meta("geography_failures", fails)
        if task == "flat":
            self.f.set_meta("geography_not_before", iso(now + wait))
        else:
            self.f.geo_tasks[task] = now + wait
            self.f.touch("geotask", task)
        return "retry"

    def merge(self, nodes: list[GeoNode]) -> None:
        changed = False
        for g in nodes:
            old = self.f.geo.get(g.code)
            if old != g:
                self.f.geo[g.code] = g
                changed = True
        if changed:
            self.f.touch("geo", "nodes")  # the next stored snapshot carries them
            if self.cfg.stack is Stack.ONPE2026:
                self.c.lists.sync_districts()

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

    def _complete(self, now: datetime, method: str) -> None:
        self.f.set_meta("geography_at", iso(now))
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
            self.merge(nodes)


__all__ = ["GeographyCrawl", "backoff"]
