"""What changed between two stored snapshots of the same contest."""

from __future__ import annotations

from typing import Final

from escrutinio.diff import SnapshotDiff, diff_actas, diff_units
from escrutinio.domain import SnapshotKind
from escrutinio.errors import EscrutinioError
from escrutinio.service.common import default_contest, load, snapshot_ref
from escrutinio.store.base import SnapshotInfo, Store

#: rows listed per category of a diff (actas that changed state, irregular transitions,
#: counted actas whose figures changed; of aggregate snapshots, the unit counts that went
#: down) when none is asked: the one default of ``escrutinio diff --limit`` and of the
#: API's ``limit`` (``/api/v1/diff/{older}/{newer}``), where 0 lists every row. The count
#: of each category is always complete.
DIFF_LIMIT: Final = 100


def diff(store: Store, older: str | SnapshotInfo, newer: str | SnapshotInfo, *,
         contest_id: str | None = None, limit: int | None = DIFF_LIMIT) -> SnapshotDiff:
    """What changed from ``older`` to ``newer`` (references as the CLI reads them, or
    resolved snapshots): per acta (status transitions, changed figures) or per unit;
    ``limit`` rows listed per category (0 or None: all; recorded as None)."""
    if limit is not None and limit < 0:
        raise EscrutinioError(f"limit: 0 (todas) o más, no {limit}",
                              f"limit: 0 (all) or more, not {limit}")
    cid = default_contest(store, contest_id)
    a = older if isinstance(older, SnapshotInfo) else store.snapshot(older, contest_id=cid)
    b = newer if isinstance(newer, SnapshotInfo) else store.snapshot(newer, contest_id=cid)
    if a.contest_id != b.contest_id:
        raise EscrutinioError("las dos instantáneas son de contiendas distintas",
                              "the two snapshots belong to different contests")
    if a.kind is not b.kind:
        raise EscrutinioError(
            "no se pueden comparar una instantánea por acta y una agregada",
            "cannot diff a per-acta snapshot against an aggregate one")
    contest = store.contest(a.contest_id)
    la, lb = load(store, a), load(store, b)
    fn = diff_actas if a.kind is SnapshotKind.ACTAS else diff_units
    return fn(la.frame, lb.frame, contest, snapshot_ref(a), snapshot_ref(b),
              limit=limit or None)
