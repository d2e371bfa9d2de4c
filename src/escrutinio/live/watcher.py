"""Follow the count: poll, classify, parse, validate, and only then accept.

Three paths, each on its own interval (``[intervals]`` of the configuration):

* **hot** — national totals and candidates (every 30–60 s). Each new valid state becomes
  a national unit snapshot (one row, ``level = national``).
* **warm** — home/abroad totals and the first-level areas (every few minutes). After a
  sweep, if any area changed, an ``area1`` unit snapshot is stored: the latest accepted
  national row plus every area's latest accepted row. Home/abroad totals are validated
  and kept in that snapshot's metadata (they are not a unit level).
* **cold** — actas: those named in the configuration (re-polled every ``cold_s`` while
  not final) and the crawl of ``[cold] areas`` (:mod:`~escrutinio.live.crawl`: geography,
  acta lists per district, each acta when its list entry moves; counted ones are cached
  and never requested again), in bounded steps that yield to the hot path; stored as one
  acta snapshot with every acta followed.

Every snapshot is stored as any ingest stores it (``service.ingest``): one transaction,
then appended to the tamper-evident ledger.

:class:`Watcher` coordinates four parts, each in its own module: scheduling
(:mod:`~escrutinio.live.schedule`: which tier is due, the cold budget, back-off),
fetching (:mod:`~escrutinio.live.fetch`: URLs, election id, one poll), acceptance
(:mod:`~escrutinio.live.accept`: classify → parse → validate → accept) and snapshot
building (:mod:`~escrutinio.live.build`); they share one :class:`~escrutinio.live.state.
LiveState`. Restart is :mod:`~escrutinio.live.resume`; the status, :mod:`~escrutinio.live.
status`. The raw log and the crawl frontier are the store's (``store.live_rawlog``,
``store.live_frontier``): DuckDB or PostgreSQL alike.

The rule everything else serves: **a rejected response never replaces the last good
state**. A response must be classified ``ok`` (:mod:`~escrutinio.live.classify`), parse
without type drift (:mod:`~escrutinio.live.parse`), pass the reading checks and the
progress checks (:mod:`~escrutinio.live.validate`). A decrease is accepted only after it
is seen ``confirm_decreases`` times in a row, and then it is logged as a correction.

The served state (:meth:`Watcher.status`) carries its age — seconds since ONPE last
confirmed it — and a staleness flag (age above ``stale_after_s``). SIGTERM/SIGINT stop the
loop between steps: snapshots are written in one transaction each, the raw log is
flushed in one transaction, so nothing is half-written. A new watcher on the same store
resumes from the last accepted live snapshots.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from escrutinio.live.accept import Acceptor
from escrutinio.live.build import SnapshotBuilder
from escrutinio.live.classify import Classification, RawResponse
from escrutinio.live.config import LiveConfig, Stack, Tier
from escrutinio.live.crawl import Crawler
from escrutinio.live.fetch import Fetcher, HardBlocked
from escrutinio.live.parse import ActaReading
from escrutinio.live.rawlog import RawLog
from escrutinio.live.resume import Resumer
from escrutinio.live.schedule import Scheduler, Storm
from escrutinio.live.state import EventLog, LiveState, ScopeState, Stats, iso
from escrutinio.live.status import (
    read_status_file,
    refresh_age,
    serve_health,
    served_state,
    watcher_status,
    write_status_file,
)
from escrutinio.live.transport import Clock, SystemClock, Transport
from escrutinio.store.base import Store


class Watcher:
    """The coordinator: builds the parts, runs the cycles, publishes the status."""

    def __init__(self, cfg: LiveConfig, store: Store, *, clock: Clock | None = None,
                 seed: int | None = None, run_id: str | None = None,
                 status_file: str | Path | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.rawlog = RawLog(store.live_rawlog, self.run_id)
        self.emit = EventLog(self.rawlog, self.clock, self.run_id)
        self._stop = threading.Event()
        self.transport = Transport(cfg.transport, site_url=cfg.site_url, stack=cfg.stack,
                                   clock=self.clock, seed=seed, on_response=self._on_response,
                                   on_event=self._transport_event, stop=self._stop)
        self.rng = random.Random(seed)
        self.status_file = Path(status_file) if status_file else None
        self.live = LiveState(
            scopes={s.key: ScopeState() for s in cfg.scopes()
                    if s.kind in ("national", "ambito", "area1")},
            election_id=(cfg.election_id if cfg.stack is Stack.ONPE2021
                         or not cfg.discover_election else None),
            participants_order=list(cfg.participants),
            confirm_decreases=cfg.validation.confirm_decreases)
        self.build = SnapshotBuilder(cfg, self.clock, store, self.live, self.emit,
                                     self.rawlog, self.run_id)
        self.accept = Acceptor(cfg, self.clock, self.live, self.emit,
                               lambda corr: self.build.store_units("national", corr))
        self.fetch = Fetcher(cfg, self.transport, self.live, self.emit, self.accept)
        self.schedule = Scheduler(cfg, self.clock, self.rng, self.live, self.transport,
                                  self._stop, self.fetch, self.accept)
        self.cycle_no = 0
        self.started_at = self.clock.now()
        self._status_lock = threading.Lock()
        self._status_cache: dict[str, Any] = {}
        self._crawler: Crawler | None = None
        if cfg.cold.crawl or cfg.fetch_geography:
            self.crawler = Crawler(self)
        self.resume()

    # -- the shared state, by its old names ------------------------------------------------
    @property
    def crawler(self) -> Crawler | None:
        return self._crawler

    @crawler.setter
    def crawler(self, crawler: Crawler | None) -> None:
        """Set on every part that uses it (a replay sets None: it never crawls)."""
        self._crawler = self.build.crawler = self.schedule.crawler = crawler

    @property
    def state(self) -> dict[str, ScopeState]:
        return self.live.scopes

    @property
    def actas(self) -> dict[str, ActaReading]:
        return self.live.actas

    @property
    def stats(self) -> Stats:
        return self.live.stats

    @property
    def election_id(self) -> int | None:
        return self.live.election_id

    @election_id.setter
    def election_id(self, value: int | None) -> None:
        self.live.election_id = value

    @property
    def served_snapshot(self) -> str | None:
        return self.live.served_snapshot

    @property
    def actas_snapshot(self) -> str | None:
        return self.live.actas_snapshot

    # -- logging and restart ---------------------------------------------------------------
    def _on_response(self, resp: RawResponse, cls: Classification) -> None:
        self.live.stats.outcomes[cls.outcome.value] += 1
        self.rawlog.record(resp, cls, self.cycle_no)

    def _transport_event(self, kind: str, es: str, en: str, detail: dict[str, Any]) -> None:
        self.emit(kind, "warning", None, es, en, **detail)

    def resume(self) -> None:
        """Load the last accepted live states of this contest from the store."""
        Resumer(self.cfg, self.store, self.live, self.crawler, self.emit).resume()

    # -- the loop --------------------------------------------------------------------------
    def cycle(self) -> dict[str, Any]:
        """One pass over the tiers that are due. Never raises for backend trouble."""
        now = self.clock.now()
        self.cycle_no += 1
        self.live.stats.cycles += 1
        report: dict[str, Any] = {"cycle": self.cycle_no, "at": iso(now), "tiers": [],
                                  "results": {}}
        if not self._unpaused(now):
            report["skipped"] = "paused"
            return report
        due = self.schedule.due(now)
        if not due:
            report["skipped"] = "nothing due"
            return report
        ran: list[Tier | None] = [None]  # the tier in progress when a block or storm hits
        try:
            self._run_tiers(due, now, report, ran)
        except HardBlocked as exc:
            self._hard_blocked(exc, now, ran[-1], report)
        except Storm:
            self._storm(due, now, ran[-1], report)
        finally:
            self.rawlog.maybe_flush()
            self._publish_status()
        return report

    def _unpaused(self, now: datetime) -> bool:
        """False while a block pause lasts; when it ends, the session is primed again."""
        paused_until = self.schedule.paused_until
        if paused_until is None:
            return True
        if now < paused_until:
            return False
        self.schedule.paused_until = None
        self.transport.primed = False
        self.emit("resume_after_block", "warning", None,
                  "fin de la pausa por bloqueo; se vuelve a intentar",
                  "block pause over; trying again")
        return True

    def _run_tiers(self, due: list[Tier], now: datetime, report: dict[str, Any],
                   ran: list[Tier | None]) -> None:
        if not self.transport.primed:
            self.transport.prime()
        if self.live.election_id is None and not self.fetch.discover():
            for t in due:
                self.schedule.next_due[t] = now + timedelta(seconds=self.cfg.intervals.hot_s)
            report["skipped"] = "no election id"
            return
        for tier in due:
            ran.append(tier)
            if tier is Tier.COLD:
                n0 = self.transport.requests
                self.schedule.cold_step(report["results"])
                report["cold_requests"] = self.transport.requests - n0
            else:
                for scope in self.schedule.tier_scopes(tier):
                    if self._stop.is_set():
                        break
                    report["results"][scope.key] = self.fetch.poll_unit(scope)
                    self.schedule.after_scope()
            self._finish_tier(tier)
            report["tiers"].append(tier.value)
            self.schedule.ran(tier, now)
            if self._stop.is_set():
                break

    def _hard_blocked(self, exc: HardBlocked, now: datetime, tier: Tier | None,
                      report: dict[str, Any]) -> None:
        self.live.stats.hard_blocks += 1
        until = self.schedule.pause_for_block(now)
        self._finish_tier(tier)
        report["hard_blocked"] = str(exc)
        self.emit("hard_blocked", "critical", None,
                  f"BLOQUEO (401/403): ciclo detenido; pausa hasta {iso(until)}. "
                  "Vea docs/live.md",
                  f"BLOCKED (401/403): cycle stopped; paused until {iso(until)}. "
                  "See docs/live.md", detail=str(exc))

    def _storm(self, due: list[Tier], now: datetime, tier: Tier | None,
               report: dict[str, Any]) -> None:
        self.live.stats.storms += 1
        wait = self.schedule.back_off(due, now)
        self._finish_tier(tier)
        report["storm"] = wait
        n = self.cfg.intervals.storm_threshold
        self.emit("storm", "error", None,
                  f"{n} ámbitos seguidos fallaron: se corta el ciclo y se espera {wait:.0f} s",
                  f"{n} scopes in a row failed: cycle cut, waiting {wait:.0f} s", wait_s=wait)

    def _finish_tier(self, tier: Tier | None) -> None:
        if tier is Tier.WARM:
            self._finish_tier_units()
        elif tier is Tier.COLD:
            self._finish_tier_actas()

    def _finish_tier_units(self) -> None:
        if self.live.warm_changed:
            self.live.warm_changed = False
            self.build.store_units("area1")

    def _finish_tier_actas(self, *, force: bool = False) -> None:
        """End of a cold step: the frontier is written, and the acta snapshot stored
        when actas changed — when crawling, at most every ``snapshot_s`` (``force``: at
        shutdown, always). A crawl's snapshot holds up to every acta of the country:
        one per cold step would be thousands a night."""
        live = self.live
        store = live.actas_changed and (
            force or self.crawler is None or not self.cfg.cold.crawl
            or live.last_acta_snapshot_at is None
            or (self.clock.now() - live.last_acta_snapshot_at).total_seconds()
            >= self.cfg.cold.snapshot_s)
        if self.crawler is not None:  # the frontier is on disk before any acta snapshot
            if store or force:
                self.crawler.flush()
            else:
                self.crawler.maybe_flush()
        if store:
            self.build.store_actas()

    def seconds_to_next(self) -> float:
        return self.schedule.seconds_to_next()

    def request_stop(self, *_: Any) -> None:
        self._stop.set()

    def close(self) -> None:
        """Close the transport's connections (the store belongs to the caller)."""
        self.transport.close()

    def run(self, *, max_cycles: int | None = None, duration_s: float | None = None,
            install_signals: bool = True,
            on_cycle: Callable[[dict[str, Any]], None] | None = None) -> Stats:
        """Poll until stopped (SIGTERM/SIGINT, ``max_cycles`` or ``duration_s``);
        ``on_cycle`` sees each cycle's report."""
        previous: dict[signal.Signals, Any] = {}
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self.request_stop)
        self.emit("start", "info", None,
                  f"vigilancia iniciada: {self.cfg.name} ({self.cfg.base_url})",
                  f"watch started: {self.cfg.name} ({self.cfg.base_url})",
                  config=self.cfg.source, config_sha256=self.cfg.sha256)
        try:
            self._loop(max_cycles, duration_s, on_cycle)
        finally:
            self._shutdown()
            for sig, h in previous.items():
                signal.signal(sig, h)
        return self.live.stats

    def _loop(self, max_cycles: int | None, duration_s: float | None,
              on_cycle: Callable[[dict[str, Any]], None] | None) -> None:
        start = self.clock.monotonic()
        while not self._stop.is_set():
            rep = self.cycle()
            if on_cycle is not None:
                on_cycle(rep)
            if max_cycles is not None and self.cycle_no >= max_cycles:
                break
            wait = self.seconds_to_next()
            if duration_s is not None:
                left = duration_s - (self.clock.monotonic() - start)
                if left <= 0:
                    break
                wait = min(wait, left)
            if self.clock.wait(self._stop, max(wait, 0.001)):
                break

    def _shutdown(self) -> None:
        try:  # what was accepted is in the store before the process goes
            self._finish_tier_actas(force=True)
        except Exception as exc:  # shutdown must finish
            self.emit("shutdown_store_failed", "error", None,
                      f"no se pudo guardar la instantánea de actas: {exc}",
                      f"could not store the acta snapshot: {exc}")
        self.emit("shutdown", "info", None, "vigilancia detenida limpiamente",
                  "watch stopped cleanly", cycles=self.cycle_no,
                  snapshots=self.live.stats.snapshots_created)
        self.rawlog.flush()
        self._publish_status()

    # -- the served state ------------------------------------------------------------------
    def served(self, now: datetime | None = None) -> dict[str, Any] | None:
        return served_state(self.cfg, self.live, now or self.clock.now())

    def status(self, now: datetime | None = None) -> dict[str, Any]:
        return watcher_status(self, now or self.clock.now())

    def _publish_status(self) -> None:
        st = self.status()
        with self._status_lock:
            self._status_cache = st
        if self.status_file is not None:
            write_status_file(self.status_file, st)

    def cached_status(self) -> dict[str, Any]:
        """The status as of the last step, with age and staleness recomputed now (safe
        to call from another thread, e.g. the health endpoint)."""
        with self._status_lock:
            st = json.loads(json.dumps(self._status_cache, default=str))
        return refresh_age(st, datetime.now(UTC) if isinstance(self.clock, SystemClock)
                           else self.clock.now())


__all__ = ["HardBlocked", "Storm", "Watcher", "read_status_file", "refresh_age",
           "serve_health", "write_status_file"]
