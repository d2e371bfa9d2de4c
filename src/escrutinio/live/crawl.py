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

Code: :class:`Crawler` (the acta queues, one bounded step, when it is due next) with its
parts :mod:`~escrutinio.live.crawl_geo` (geography) and :mod:`~escrutinio.live.crawl_lists`
(districts and acta lists); the frontier's records are :mod:`~escrutinio.live.frontier`.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from escrutinio.live.config import Scope, Stack
from escrutinio.live.crawl_geo import GeographyCrawl, backoff
from escrutinio.live.crawl_lists import ListCrawl
from escrutinio.live.frontier import (
    FINAL_STATUSES,
    LIST_2021,
    NO_DATA_BELIEVED,
    Acta,
    District,
    Frontier,
    iso,
    moved,
)
from escrutinio.live.parse import ActaReading, GeoNode

if TYPE_CHECKING:
    from escrutinio.live.watcher import Watcher


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
        self.dqueue: deque[str] = deque()  # districts due now (ListCrawl adds to it)
        self._announced_complete = bool(self.f.meta.get("complete_at"))
        self._flushed_at = time.monotonic()
        self.geo = GeographyCrawl(self)
        self.lists = ListCrawl(self)
        if self.cfg.stack is Stack.ONPE2021:
            for d in self.cold.areas:  # the 2021 API has no geography: districts given
                self.lists.district(d)
        else:
            self.lists.sync_districts()
        self._requeue(self.w.clock.now())

    # -- settings -------------------------------------------------------------------------
    @property
    def lists_s(self) -> float:
        return self.cold.lists_s or self.cfg.intervals.cold_s

    @property
    def wants_geography(self) -> bool:
        return self.cfg.stack is Stack.ONPE2026 and (self.cfg.fetch_geography
                                                     or self.cold.crawl)

    # -- actas ----------------------------------------------------------------------------
    def enqueue(self, a: Acta, now: datetime | None = None) -> None:
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
                    self.enqueue(a, now)
        if not self.dqueue:
            due = [d for d in self.f.districts.values() if self.lists.due(d, now)]
            due.sort(key=lambda d: (d.listed_at is not None and d.next_page == 0,
                                    d.listed_at or datetime.min.replace(tzinfo=UTC), d.code))
            self.dqueue.extend(d.code for d in due)

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
        while self.dqueue:
            d = self.f.districts.get(self.dqueue.popleft())
            if d is not None and self.lists.due(d, now):
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
                    self.geo.add_place(reading)
        elif r == "no_data":
            # listed, so it exists: an empty answer is retried; when it repeats, the acta
            # is taken as not published yet (its list entry will say when it is)
            a.failures += 1
            if a.failures >= NO_DATA_BELIEVED:
                a.due, a.not_before, a.failures = False, None, 0
            else:
                a.not_before = now + timedelta(seconds=backoff(self.cfg, a.failures))
                self.enqueue(a, now)
        elif r == "held":  # a change to a final acta waits for a second reading
            a.not_before = now + timedelta(seconds=self.cfg.intervals.hot_s)
            self.enqueue(a, now)
        else:
            a.failures += 1
            a.not_before = now + timedelta(seconds=backoff(self.cfg, a.failures))
            self.enqueue(a, now)
        self.f.touch("acta", a.key)
        return r

    # -- one step ---------------------------------------------------------------------------
    def step(self, budget_ok: Callable[[], bool], results: dict[str, str]) -> None:
        """Crawl while ``budget_ok()``: geography, then actas due, then list pages."""
        w = self.w
        self._requeue(w.clock.now())
        while budget_ok():
            now = w.clock.now()
            task = self.geo.due(now)
            if task is not None:
                results[f"geo:{task}"] = self.geo.do(task, now)
            elif (a := self._next_acta(now)) is not None:
                results[a.key] = self._do_acta(a, now)
            elif (d := self._next_district(now)) is not None:
                results[f"list:{d.code}"] = self.lists.do(d, now)
            else:
                break
            w.schedule.after_scope()
        self._maybe_complete(w.clock.now())

    def _maybe_complete(self, now: datetime) -> None:
        if self._announced_complete or not self.cold.crawl or self.discovering():
            return
        self._announced_complete = True
        self.f.set_meta("complete_at", iso(now))
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
        if self._queue or self.dqueue or self.geo.due(now) is not None:
            return now + step
        cands: list[datetime] = []
        g = self.geo.next_at(now)
        if g is not None:
            cands.append(g)
        if self._deferred:
            cands.append(self._deferred[0][0])
        for d in self.f.districts.values():
            t = self.lists.next_at(d, now)
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
            "first_page": self.lists.base(),
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


__all__ = ["FINAL_STATUSES", "LIST_2021", "NO_DATA_BELIEVED", "Acta", "Crawler", "District",
           "Frontier", "moved"]
