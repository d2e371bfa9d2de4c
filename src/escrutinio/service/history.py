"""The count over time: the snapshots that cover the whole country and the lead history
built from their national states."""

from __future__ import annotations

from collections.abc import Callable

from escrutinio.count import CountState, LeadHistory, lead_history
from escrutinio.domain import Level, SnapshotKind
from escrutinio.service.common import default_contest, stored_frame
from escrutinio.service.count import state_of
from escrutinio.store.base import SnapshotInfo, Store


def history_snapshots(store: Store, contest_id: str, *, until: SnapshotInfo | None = None
                      ) -> list[SnapshotInfo]:
    """Snapshots that cover the whole country: acta snapshots, national unit cuts, and
    unit snapshots that carry their own national row (the layout of docs/formats.md's
    worked example) when no national cut of the same minute exists (a snapshot whose
    every row was rejected, e.g. a truncated scrape, has nothing to show). ``until``: only
    those up to that snapshot (the history as it stood then: its permalink)."""
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
    if until is not None:
        out = [s for s in out if s.as_of <= until.as_of]
    return out


def _has_national_row(store: Store, info: SnapshotInfo) -> bool:
    return bool((stored_frame(store, info)["level"] == Level.NATIONAL.value).any())


def history(store: Store, contest_id: str | None = None,
            kind: SnapshotKind | None = None, *, until: SnapshotInfo | None = None,
            state: Callable[[SnapshotInfo], CountState] | None = None) -> LeadHistory:
    """The lead history of a contest (every caller: CLI ``history``, the API's history and
    its permalink): the national state of each whole-country snapshot
    (:func:`history_snapshots`), of one ``kind`` if given, up to ``until`` if given.
    ``state``: how a caller that caches count states gets one (default
    :func:`~escrutinio.service.count.state_of` at the national level)."""
    cid = until.contest_id if until is not None else default_contest(store, contest_id)
    snaps = [s for s in history_snapshots(store, cid, until=until)
             if kind is None or s.kind is kind]
    if state is None:
        def state(s: SnapshotInfo) -> CountState:
            return state_of(store, s, level=Level.NATIONAL)
    return lead_history([state(s) for s in snaps])
