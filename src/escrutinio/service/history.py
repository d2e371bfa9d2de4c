"""The count over time: the snapshots that cover the whole country and the lead history
built from their national states."""

from __future__ import annotations

from escrutinio.count import LeadHistory, lead_history
from escrutinio.domain import Level, SnapshotKind
from escrutinio.service.common import default_contest, stored_frame
from escrutinio.service.count import state_of
from escrutinio.store.base import SnapshotInfo, Store


def history_snapshots(store: Store, contest_id: str) -> list[SnapshotInfo]:
    """Snapshots that cover the whole country: acta snapshots, national unit cuts, and
    unit snapshots that carry their own national row (the layout of docs/formats.md's
    worked example) when no national cut of the same minute exists (a snapshot whose
    every row was rejected, e.g. a truncated scrape, has nothing to show)."""
    snaps = [s for s in store.list_snapshots(contest_id) if s.n_rows]
    national_at = {s.as_of for s in snaps
                   if s.kind is SnapshotKind.UNITS and s.level in (None, "national")}
    out = []
    for s in snaps:
        if s.kind is SnapshotKind.ACTAS or s.level in (None, "national"):
            out.append(s)
        elif s.as_of not in national_at and _has_national_row(store, s):
            out.append(s)
            national_at.add(s.as_of)
    return out


def _has_national_row(store: Store, info: SnapshotInfo) -> bool:
    return bool((stored_frame(store, info)["level"] == Level.NATIONAL.value).any())


def history(store: Store, contest_id: str | None = None,
            kind: SnapshotKind | None = None) -> LeadHistory:
    cid = default_contest(store, contest_id)
    snaps = [s for s in history_snapshots(store, cid) if kind is None or s.kind is kind]
    states = [state_of(store, s, level=Level.NATIONAL) for s in snaps]
    return lead_history(states)
