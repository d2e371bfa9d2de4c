"""Verify the actas of a snapshot: arithmetic problems and counted actas that changed,
ranked by materiality (:func:`escrutinio.defence.verify.verify_actas`).

The one answer of ``escrutinio verify`` and ``/api/v1/s/{id}/verify`` (and its page): the
same snapshot, the same earlier snapshot to compare with and the same pair give the same
figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from escrutinio.domain import SnapshotKind
from escrutinio.provenance import to_jsonable
from escrutinio.service import inputs
from escrutinio.store.base import SnapshotInfo, Store

if TYPE_CHECKING:
    from escrutinio.defence.verify import ActaVerification

#: compare with the latest earlier per-acta snapshot of the contest
AGAINST_PREVIOUS = "previous"
#: compare with nothing (arithmetic only)
AGAINST_NONE = "none"


@dataclass(frozen=True, slots=True)
class VerifyParams:
    """``against``: ``"previous"`` (the latest earlier per-acta snapshot), ``"none"`` or a
    snapshot reference; ``pair``: the two candidate codes of the margin (default: the two
    leaders among counted actas)."""

    against: str = AGAINST_PREVIOUS
    pair: tuple[str, str] | None = None


DEFAULTS = VerifyParams()


@dataclass(frozen=True, slots=True)
class Verification:
    """The verification of ``snapshot`` against ``previous`` (None: arithmetic only)."""

    snapshot: SnapshotInfo
    previous: SnapshotInfo | None
    params: VerifyParams
    result: ActaVerification

    def to_jsonable(self, limit: int | None = 200) -> dict[str, Any]:
        """What the CLI's ``--json`` and the API's ``result`` hold."""
        return {"previous": to_jsonable(self.previous), **self.result.to_jsonable(limit)}


def previous_snapshot(store: Store, info: SnapshotInfo, against: str = AGAINST_PREVIOUS
                      ) -> SnapshotInfo | None:
    """The snapshot ``against`` names for ``info`` (None when there is none, or when it is
    ``info`` itself)."""
    if against == AGAINST_NONE:
        return None
    if against == AGAINST_PREVIOUS:
        before = inputs.earlier_actas(store, info)
        prev = before[-1] if before else None
    else:
        prev = store.snapshot(against, contest_id=info.contest_id, kind=SnapshotKind.ACTAS)
    return None if prev is None or prev.snapshot_id == info.snapshot_id else prev


def verify(store: Store, snapshot: inputs.SnapshotArg = "latest", params: VerifyParams = DEFAULTS,
           *, contest_id: str | None = None) -> Verification:
    """Verify the per-acta ``snapshot`` (a reference within ``contest_id``, or a snapshot
    already resolved) against what ``params.against`` names."""
    from escrutinio.defence.verify import verify_actas

    info = inputs.resolve(store, snapshot, contest_id)
    inputs.require_actas(info, "la verificación", "verification")
    prev = previous_snapshot(store, info, params.against)
    contest = store.contest(info.contest_id)
    res = verify_actas(
        store.load_actas(info.snapshot_id), contest, store.load_row_reports(info.snapshot_id),
        previous=None if prev is None else store.load_actas(prev.snapshot_id),
        pair=params.pair,
        snapshot_ids=[info.snapshot_id] + ([prev.snapshot_id] if prev else []))
    used = [inputs.snapshot_input("snapshot", info)]
    if prev is not None:
        used.append(inputs.snapshot_input("previous", prev))
    return Verification(info, prev, params, inputs.with_inputs(res, "verify", params, used))
