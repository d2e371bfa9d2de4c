"""Replay mode: the projection at each national cut of a past count, as the model would
have seen it.

The 2021 runoff has 48 national ONPE cuts (aggregates) and a final per-acta file. A cut's
aggregates alone say little about which actas are still to come; the replay therefore
projects each cut on the **rebuilt per-acta snapshot** of that moment: an arrival order
derived from the national cuts, the subnational snapshots and the per-acta states of
8 June (:func:`escrutinio.projection.order.derive_arrival_order`, the same order the
replay validation uses). The page says so wherever such a projection is shown.

Orchestration only: the order and the projections come from ``escrutinio.projection``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from escrutinio.api.catalog import CatalogStore, ReplayClock
from escrutinio.domain import SnapshotKind

#: the replay step of the request being served: set once when the request arrives
#: (:func:`pinned_step`), read by every part of the page (the banner, "latest", the
#: history, the numbers), so a page is drawn from one step however long it takes to draw
#: while the clock moves on (the worker threads of a request inherit the context)
_PINNED: ContextVar[int | None] = ContextVar("escrutinio_replay_step", default=None)


@dataclass
class StepClock(ReplayClock):
    """The dashboard's replay clock: :meth:`index` is the step pinned for the current
    request when there is one (see :func:`pinned_step`), else the clock's own."""

    def index(self) -> int:
        pinned = _PINNED.get()
        if pinned is not None:
            return max(0, min(pinned, self.n_steps - 1))
        return self.clock_index()

    def clock_index(self) -> int:
        """The step the clock reads now, ignoring any pin."""
        return ReplayClock.index(self)


@contextmanager
def pinned_step(clock: ReplayClock | None) -> Iterator[int | None]:
    """Pin the clock's current step for everything done inside (one request)."""
    if clock is None:
        yield None
        return
    step = clock.index()
    token = _PINNED.set(step)
    try:
        yield step
    finally:
        _PINNED.reset(token)


@dataclass
class ReplayTimeline:
    contest_id: str
    order: Any  # ArrivalOrder
    contest: Any
    baseline: Any  # prepared baseline frame or None
    cut_of: dict[str, int]  # national-cut snapshot id -> index into order.cuts
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def build(store: CatalogStore, contest_id: str, *, baseline: str = "auto",
              seed: int = 2021) -> ReplayTimeline | bool:
        """The timeline, or ``False`` when the store has no national cuts or no final
        per-acta snapshot to rebuild them from (the projection then falls back to the
        aggregates, as outside a replay)."""
        from escrutinio.projection.order import (
            ActaState,
            cuts_from_unit_snapshots,
            derive_arrival_order,
            unit_progress_from_frames,
        )

        snaps = [s for s in store.all_snapshots() if s.contest_id == contest_id]
        actas = [s for s in snaps if s.kind is SnapshotKind.ACTAS]
        nat = [s for s in snaps if s.kind is SnapshotKind.UNITS and s.level == "national"]
        sub = [s for s in snaps if s.kind is SnapshotKind.UNITS
               and s.level not in (None, "national")]
        if not actas or not nat:
            return False
        contest = store.contest(contest_id)
        final = actas[-1]
        ff = store.load_actas(final.snapshot_id)
        cuts = cuts_from_unit_snapshots(
            [(s.as_of, store.load_units(s.snapshot_id), s.label, s.snapshot_id) for s in nat],
            contest)
        states = [ActaState(s.as_of, store.load_actas(s.snapshot_id), s.label)
                  for s in actas[:-1] if s.as_of < final.as_of]
        units = unit_progress_from_frames(
            [(s.as_of, store.load_units(s.snapshot_id), s.label) for s in sub])
        order = derive_arrival_order(ff, contest, cuts, states=states, units=units, seed=seed)
        base = None
        if baseline == "auto":
            from escrutinio.domain import ContestKind

            for c in store.contests():
                if (c.kind is ContestKind.FIRST_ROUND and c.country == contest.country
                        and c.date[:4] == contest.date[:4]):
                    fr = [s for s in store.all_snapshots()
                          if s.contest_id == c.id and s.kind is SnapshotKind.ACTAS]
                    if fr:
                        from escrutinio.projection.model import prepare_baseline

                        base = prepare_baseline(store.load_actas(fr[-1].snapshot_id))
        cut_of = {c.snapshot_id: i for i, c in enumerate(order.cuts)}
        return ReplayTimeline(contest_id, order, contest, base, cut_of)

    def has(self, snapshot_id: str) -> bool:
        return snapshot_id in self.cut_of

    def projection(self, snapshot_id: str, sims: int, seed: int) -> Any:
        from escrutinio.projection.model import ModelParams, project_actas

        i = self.cut_of[snapshot_id]
        cut = self.order.cuts[i]
        with self._lock:
            frame = self.order.snapshot(i)
        return project_actas(frame, self.contest, baseline=self.baseline,
                             params=ModelParams(n_sims=sims, seed=seed),
                             snapshot_id=cut.snapshot_id, as_of=cut.as_of)
