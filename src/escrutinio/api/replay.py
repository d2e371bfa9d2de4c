"""Replay mode: the dashboard's clock, and the pin that draws each request from one step.

The 2021 runoff has 48 national ONPE cuts (aggregates) and a final per-acta file. A cut's
aggregates alone say little about which actas are still to come; the replay therefore
projects each cut on the **rebuilt per-acta snapshot** of that moment
(:class:`escrutinio.service.RebuiltTimeline`: an arrival order derived from the national
cuts, the subnational snapshots and the per-acta states of 8 June, the order the replay
validation uses). The page says so wherever such a projection is shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from escrutinio.api.catalog import ReplayClock

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
