"""What a :class:`~escrutinio.live.watcher.Watcher` holds between steps, shared by its
parts (scheduling, fetching, acceptance, snapshot building), and its structured log.

Nothing here talks to ONPE or to the store: :class:`LiveState` is plain data, and
:class:`EventLog` writes each event to the raw log (``live_events``) and to the
``escrutinio.live`` logger as one JSON line.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from escrutinio.domain import FINAL
from escrutinio.live.parse import LIMA, ActaReading, UnitReading
from escrutinio.live.validate import Problem

if TYPE_CHECKING:
    from escrutinio.live.rawlog import RawLog
    from escrutinio.live.transport import Clock

log = logging.getLogger("escrutinio.live")
log.addHandler(logging.NullHandler())

FINAL_STATUSES: Final = frozenset(s.value for s in FINAL)


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def lima(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(LIMA).isoformat()


@dataclass(slots=True)
class ScopeState:
    accepted: UnitReading | None = None
    accepted_at: datetime | None = None
    confirmed_at: datetime | None = None  # last time ONPE answered with this state
    latest_onpe_time: datetime | None = None
    pending: UnitReading | None = None  # a decrease waiting for confirmation
    pending_seen: int = 0
    findings: list[Problem] = field(default_factory=list)
    last_error: dict[str, Any] | None = None


@dataclass(slots=True)
class Stats:
    outcomes: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)
    corrections: int = 0
    alarms: int = 0
    snapshots_created: int = 0
    cycles: int = 0
    hard_blocks: int = 0
    storms: int = 0


@dataclass(slots=True)
class LiveState:
    """The accepted states and the bookkeeping around them."""

    #: per unit scope (national, ambito:N, area1:CODE): the accepted state
    scopes: dict[str, ScopeState]
    election_id: int | None
    participants_order: list[str]
    #: decreases need this many readings in a row (replays of publications set it to 1)
    confirm_decreases: int
    actas: dict[str, ActaReading] = field(default_factory=dict)
    acta_errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    consecutive_failures: int = 0
    storm_level: int = 0
    last_success: datetime | None = None
    last_error: dict[str, Any] | None = None
    served_snapshot: str | None = None
    area1_snapshot: str | None = None
    actas_snapshot: str | None = None
    warm_changed: bool = False
    actas_changed: bool = False
    acta_dirty: set[str] = field(default_factory=set)  # changed since the last acta snapshot
    acta_pending: dict[str, tuple[str, int]] = field(default_factory=dict)  # held changes
    last_acta_snapshot_at: datetime | None = None
    geo_stored: int = 0  # geography nodes already handed to the store


class EventLog:
    """``emit(kind, level, scope, es, en, **detail)``: one structured event."""

    def __init__(self, rawlog: RawLog, clock: Clock, run_id: str) -> None:
        self.rawlog = rawlog
        self.clock = clock
        self.run_id = run_id

    def __call__(self, kind: str, level: str, scope: str | None, es: str, en: str,
                 **detail: Any) -> None:
        ts = self.clock.now()
        self.rawlog.event(ts, level, kind, scope, es, en, detail)
        rec = {"ts": iso(ts), "level": level, "event": kind, "scope": scope,
               "run": self.run_id, "message": en, **detail}
        log.log(getattr(logging, level.upper(), logging.INFO),
                json.dumps(rec, ensure_ascii=False, default=str))


__all__ = ["FINAL_STATUSES", "EventLog", "LiveState", "ScopeState", "Stats", "iso", "lima"]
