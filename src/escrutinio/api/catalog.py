"""The server's read-only view of a store, and the replay clock.

:class:`CatalogStore` wraps a store for serving: the snapshot list and the contests are
read once and kept in memory (the server never writes, snapshots never change), every
read of rows goes through one lock (a DuckDB connection is not safe for concurrent use),
and — in replay mode — snapshots later than the replay clock are hidden, so that "latest",
the history and the diff all see only the past, exactly as a visitor would have on the
night.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from escrutinio.domain import Contest, SnapshotKind
from escrutinio.errors import NotFoundError
from escrutinio.sources.base import ParsedSnapshot
from escrutinio.store import ledger
from escrutinio.store.base import IngestOutcome, SnapshotInfo, Store
from escrutinio.store.ledger import LedgerEntry


@dataclass
class ReplayClock:
    """Which step of a replay is on screen.

    ``steps`` are the times (``as_of``) of the snapshots to replay, in order. The clock
    advances one step every ``step_seconds`` from ``started``; with ``loop`` it holds the
    last step for ``hold_steps`` more steps and starts again. ``fixed`` pins a step (tests,
    ``--replay-at``)."""

    steps: tuple[datetime, ...]
    step_seconds: float = 5.0
    loop: bool = True
    hold_steps: int = 6
    fixed: int | None = None
    started: float = field(default_factory=time.monotonic)
    now_fn: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a replay needs at least one snapshot")
        if self.step_seconds <= 0:
            raise ValueError("step_seconds must be positive")

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    def index(self) -> int:
        if self.fixed is not None:
            return max(0, min(self.fixed, self.n_steps - 1))
        k = int((self.now_fn() - self.started) // self.step_seconds)
        if self.loop:
            k %= self.n_steps + self.hold_steps
        return min(k, self.n_steps - 1)

    def now(self) -> datetime:
        return self.steps[self.index()]

    def seconds_to_next(self) -> float:
        if self.fixed is not None:
            return self.step_seconds
        elapsed = self.now_fn() - self.started
        return self.step_seconds - (elapsed % self.step_seconds)


class CatalogStore(Store):
    """Read-only, in-memory catalogue over ``inner``; see the module docstring."""

    def __init__(self, inner: Store, clock: ReplayClock | None = None) -> None:
        self.inner = inner
        self.clock = clock
        self.lock = threading.RLock()
        with self.lock:
            self._all = tuple(inner.list_snapshots())
            self._contests = {c.id: c for c in inner.contests()}
        self._by_id = {s.snapshot_id: s for s in self._all}

    # -- catalogue -----------------------------------------------------------------------
    def all_snapshots(self) -> tuple[SnapshotInfo, ...]:
        """Every stored snapshot, ignoring the replay clock."""
        return self._all

    def visible(self, info: SnapshotInfo) -> bool:
        return self.clock is None or info.as_of <= self.clock.now()

    def list_snapshots(self, contest_id: str | None = None,
                       kind: SnapshotKind | None = None) -> list[SnapshotInfo]:
        cutoff = self.clock.now() if self.clock is not None else None
        return [s for s in self._all
                if (cutoff is None or s.as_of <= cutoff)
                and (contest_id is None or s.contest_id == contest_id)
                and (kind is None or s.kind is kind)]

    def contest(self, contest_id: str) -> Contest:
        try:
            return self._contests[contest_id]
        except KeyError:
            raise NotFoundError(f"contienda desconocida: {contest_id}",
                                f"unknown contest: {contest_id}") from None

    def contests(self) -> list[Contest]:
        return [self._contests[k] for k in sorted(self._contests)]

    def info(self, snapshot_id: str) -> SnapshotInfo | None:
        return self._by_id.get(snapshot_id)

    # -- rows (through the lock) -------------------------------------------------------------
    def load_actas(self, snapshot_id: str) -> pl.DataFrame:
        with self.lock:
            return self.inner.load_actas(snapshot_id)

    def load_units(self, snapshot_id: str) -> pl.DataFrame:
        with self.lock:
            return self.inner.load_units(snapshot_id)

    def load_row_reports(self, snapshot_id: str) -> pl.DataFrame:
        with self.lock:
            return self.inner.load_row_reports(snapshot_id)

    def geography(self, contest_id: str) -> pl.DataFrame:
        with self.lock:
            return self.inner.geography(contest_id)

    def acta_history(self, contest_id: str, acta_ids: list[str]) -> pl.DataFrame:
        """The inner store's one query; rows of snapshots hidden by the replay clock are
        dropped."""
        with self.lock:
            df = self.inner.acta_history(contest_id, acta_ids)
        return df.filter(pl.col("snapshot_id").is_in(
            [s.snapshot_id for s in self.list_snapshots(contest_id)]))

    def acta_reports(self, contest_id: str, acta_ids: list[str]) -> pl.DataFrame:
        with self.lock:
            df = self.inner.acta_reports(contest_id, acta_ids)
        return df.filter(pl.col("snapshot_id").is_in(
            [s.snapshot_id for s in self.list_snapshots(contest_id)]))

    def snapshot_metadata(self, contest_id: str) -> dict[str, dict[str, str]]:
        with self.lock:
            md = self.inner.snapshot_metadata(contest_id)
        return {k: v for k, v in md.items()
                if (i := self._by_id.get(k)) is not None and self.visible(i)}

    # -- the tamper-evident log (read through the lock) -----------------------------------
    def logged_snapshots(self) -> dict[str, LedgerEntry]:
        with self.lock:
            return ledger.logged_snapshots(self.inner)

    def ledger_head(self) -> tuple[int, str]:
        with self.lock:
            return ledger.head(self.inner)

    def prove(self, snapshot_id: str, key: str) -> ledger.InclusionProof:
        with self.lock:
            return ledger.prove(self.inner, snapshot_id, key)

    def put_snapshots(self, snapshots: list[ParsedSnapshot], *,
                      before_commit: Callable[[], object] | None = None
                      ) -> list[IngestOutcome]:
        raise NotImplementedError("the web server's store is read-only")

    def close(self) -> None:
        with self.lock:
            self.inner.close()


def replay_steps(snapshots: Sequence[SnapshotInfo]) -> tuple[datetime, ...]:
    """Distinct times of the given snapshots, in order: the steps of a replay."""
    return tuple(sorted({s.as_of for s in snapshots}))
