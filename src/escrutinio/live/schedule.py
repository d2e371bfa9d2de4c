"""Scheduling: which tier is due, what the cold path may still do in this cycle, and how
long to wait after a block or a storm.

Three paths, each on its own interval (``[intervals]`` of the configuration): **hot**
(national, every 30–60 s), **warm** (home/abroad and first-level areas, every few
minutes) and **cold** (actas: the configured ones every ``cold_s`` while not final, then
a bounded step of the crawl that yields to the hot path). Every interval is jittered
(×0.9–1.1) so that many watchers never poll in step.
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from escrutinio.live.accept import Acceptor
from escrutinio.live.config import LiveConfig, Scope, Tier
from escrutinio.live.fetch import Fetcher
from escrutinio.live.state import FINAL_STATUSES, LiveState
from escrutinio.live.transport import Clock, Transport

if TYPE_CHECKING:
    from escrutinio.live.crawl import Crawler


class Storm(Exception):
    pass


class Scheduler:
    def __init__(self, cfg: LiveConfig, clock: Clock, rng: random.Random, live: LiveState,
                 transport: Transport, stop: threading.Event, fetch: Fetcher,
                 accept: Acceptor) -> None:
        self.cfg = cfg
        self.clock = clock
        self.rng = rng
        self.live = live
        self.transport = transport
        self.stop = stop
        self.fetch = fetch
        self.accept = accept
        self.crawler: Crawler | None = None
        self.scopes = cfg.scopes()
        now = clock.now()
        self.next_due: dict[Tier, datetime] = dict.fromkeys(Tier, now)
        self.paused_until: datetime | None = None
        self.listed_due = now  # the next pass over the configured ([actas]) actas
        self.listed_todo: list[Scope] = []
        self._cold_req0 = 0
        self._cold_t0 = 0.0

    # -- what is due -----------------------------------------------------------------------
    def interval(self, tier: Tier) -> float:
        iv = self.cfg.intervals
        return {Tier.HOT: iv.hot_s, Tier.WARM: iv.warm_s, Tier.COLD: iv.cold_s}[tier]

    def tier_scopes(self, tier: Tier) -> list[Scope]:
        out = [s for s in self.scopes if s.tier is tier]
        if tier is Tier.COLD:  # counted actas are final: cached, never re-polled
            actas = self.live.actas
            out = [s for s in out if s.key not in actas
                   or actas[s.key].status not in FINAL_STATUSES]
        return out

    def tier_has_work(self, tier: Tier) -> bool:
        if tier is Tier.COLD and self.crawler is not None:
            return True
        return bool(self.tier_scopes(tier))

    def due(self, now: datetime) -> list[Tier]:
        return [t for t in Tier if self.next_due[t] <= now and self.tier_has_work(t)]

    def jitter(self) -> float:
        return self.rng.uniform(0.9, 1.1)

    def ran(self, tier: Tier, now: datetime) -> None:
        """``tier`` ran in the cycle that started at ``now``: when it is due next."""
        if tier is Tier.COLD:
            self.next_due[tier] = self.cold_next_due()
        else:
            self.next_due[tier] = now + timedelta(seconds=self.interval(tier) * self.jitter())

    def seconds_to_next(self) -> float:
        now = self.clock.now()
        if self.paused_until is not None:
            return max(0.0, (self.paused_until - now).total_seconds())
        due = [self.next_due[t] for t in Tier if self.tier_has_work(t)]
        if not due:
            return self.cfg.intervals.hot_s
        return max(0.0, (min(due) - now).total_seconds())

    # -- trouble ---------------------------------------------------------------------------
    def after_scope(self) -> None:
        if self.live.consecutive_failures >= self.cfg.intervals.storm_threshold:
            raise Storm()

    def pause_for_block(self, now: datetime) -> datetime:
        self.paused_until = now + timedelta(seconds=self.cfg.intervals.hard_block_pause_s)
        return self.paused_until

    def back_off(self, due: list[Tier], now: datetime) -> float:
        """A storm (``storm_threshold`` scopes in a row failed): the due tiers wait
        ``hot_s × 2^(level−1)`` (capped, ×1–1.25 jitter); the seconds waited."""
        iv = self.cfg.intervals
        self.live.storm_level += 1
        wait = min(iv.storm_backoff_max_s, iv.hot_s * 2 ** (self.live.storm_level - 1))
        wait *= self.rng.uniform(1.0, 1.25)
        for t in due:
            self.next_due[t] = max(self.next_due[t], now + timedelta(seconds=wait))
        self.live.consecutive_failures = 0
        return wait

    # -- the cold path ---------------------------------------------------------------------
    def cold_budget_ok(self) -> bool:
        """Bounded cold work: at most ``max_requests`` requests per cycle — a request
        starts only if even its worst case (every retry, re-priming the cookies before
        each) fits — and ``max_seconds``; and it yields to the hot path as soon as that
        is due. The first request of a step always goes, so the crawl advances."""
        if self.stop.is_set():
            return False
        used = self.transport.requests - self._cold_req0
        worst = 2 * max(1, self.cfg.transport.max_attempts) - 1
        if used > 0 and used + worst > self.cfg.cold.max_requests:
            return False
        limit = self.cfg.cold.max_seconds or 0.8 * self.cfg.intervals.hot_s
        if self.clock.monotonic() - self._cold_t0 >= limit:
            return False
        hot_due = self.next_due[Tier.HOT] <= self.clock.now() and bool(
            self.tier_scopes(Tier.HOT))
        return not (used > 0 and hot_due)

    def cold_step(self, results: dict[str, str]) -> None:
        """The configured actas (a pass every ``cold_s``, only those not final), then a
        bounded step of the crawl."""
        self._cold_req0 = self.transport.requests
        self._cold_t0 = self.clock.monotonic()
        now = self.clock.now()
        if self.listed_due <= now or self.listed_todo:
            if not self.listed_todo:
                self.listed_todo = self.tier_scopes(Tier.COLD)
            while self.listed_todo and self.cold_budget_ok():
                scope = self.listed_todo[0]
                res = self.fetch.get(self.fetch.acta_url(scope), scope.key,
                                     "acta")  # may stop the cycle
                self.listed_todo.pop(0)
                results[scope.key] = self.accept.ingest_acta(scope, res.response,
                                                             res.classification)
                self.after_scope()
            if not self.listed_todo:
                self.listed_due = now + timedelta(seconds=self.cfg.intervals.cold_s
                                                  * self.jitter())
        if self.crawler is not None and self.cold_budget_ok():
            self.crawler.step(self.cold_budget_ok, results)

    def cold_next_due(self) -> datetime:
        now = self.clock.now()
        cands = []
        if self.tier_scopes(Tier.COLD):
            cands.append(now if self.listed_todo else self.listed_due)
        if self.crawler is not None:
            cands.append(self.crawler.next_due(now))
        if not cands:
            return now + timedelta(seconds=self.cfg.intervals.cold_s)
        return max(min(cands), now + timedelta(seconds=min(self.cfg.cold.step_s,
                                                            self.cfg.intervals.cold_s)))


__all__ = ["Scheduler", "Storm"]
