"""Parallel vote tabulation: observers' copies against the official actas
(:func:`escrutinio.defence.pvt.reconcile`) or, where only unit totals are published,
against those totals (:func:`escrutinio.defence.pvt.reconcile_units`).

The one answer of ``escrutinio pvt`` and ``POST /api/v1/s/{id}/pvt`` (and the verify
page's form): the copies are parsed by the presenter (files, a request body), then the
same official side, the same copy codes and the same pair give the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from escrutinio.domain import SnapshotKind, sum_vote_types
from escrutinio.errors import EscrutinioError, NotFoundError
from escrutinio.service import inputs
from escrutinio.store.base import SnapshotInfo, Store

if TYPE_CHECKING:
    from escrutinio.defence.generator import GeneratedCopies
    from escrutinio.defence.observers import ObserverCopies
    from escrutinio.defence.pvt import PvtResult, PvtUnitsResult

#: share of the counted actas a rehearsal set of copies covers (``pvt --generate``)
REHEARSAL_COVERAGE = 0.5
REHEARSAL_SEED = 0


@dataclass(frozen=True, slots=True)
class PvtParams:
    """``pair``: the two candidate codes of the margin (default: the two leaders among
    counted actas); ``level``: against a snapshot of unit totals, the published level to
    compare at (default: national when published)."""

    pair: tuple[str, str] | None = None
    level: str | None = None


DEFAULTS = PvtParams()


@dataclass(frozen=True, slots=True)
class ParallelTabulation:
    """The reconciliation of a set of copies with ``snapshot``: per acta
    (:class:`~escrutinio.defence.pvt.PvtResult`) or, on a unit snapshot, per unit
    (:class:`~escrutinio.defence.pvt.PvtUnitsResult`). ``n_rejected`` and ``warnings``:
    what the reader of the copies refused and assumed; ``level_labels``: the country's
    names of its levels."""

    snapshot: SnapshotInfo
    params: PvtParams
    result: PvtResult | PvtUnitsResult
    n_rejected: int
    warnings: tuple[tuple[str, str], ...]
    level_labels: dict[str, tuple[str, str]]

    @property
    def per_unit(self) -> bool:
        return self.snapshot.kind is not SnapshotKind.ACTAS

    def to_jsonable(self, limit: int | None = 100) -> dict[str, Any]:
        """What the CLI's ``--json`` and the API's ``result`` hold."""
        return self.result.to_jsonable(limit)


def official_snapshot(store: Store, snapshot: inputs.SnapshotArg = "latest",
                      contest_id: str | None = None) -> SnapshotInfo:
    """The official side: a per-acta snapshot when the reference names one (for
    ``latest``: when any exists), otherwise the unit snapshot it names."""
    if isinstance(snapshot, SnapshotInfo):
        return snapshot
    from escrutinio.service import default_contest

    cid = default_contest(store, contest_id)
    try:
        return store.snapshot(snapshot, contest_id=cid, kind=SnapshotKind.ACTAS)
    except NotFoundError:
        return store.snapshot(snapshot, contest_id=cid)


def acta_areas(store: Store, contest_id: str) -> pl.DataFrame | None:
    """The areas of every acta, from the latest per-acta snapshot of the contest (to
    aggregate copies to a published level), or None when there is none."""
    actas = store.list_snapshots(contest_id, SnapshotKind.ACTAS)
    if not actas:
        return None
    return store.load_actas(actas[-1].snapshot_id).select(
        "acta_id", "area1_code", "area2_code", "area3_code")


def reconcile(store: Store, snapshot: inputs.SnapshotArg, copies: ObserverCopies,
              params: PvtParams = DEFAULTS, *, contest_id: str | None = None,
              copy_codes: pl.DataFrame | None = None, copy_codes_source: str = "",
              copy_codes_sha256: str = "", roll: Sequence[str] | None = None
              ) -> ParallelTabulation:
    """Reconcile ``copies`` (parsed by the caller) with the official ``snapshot``.

    Per acta: ``copy_codes`` (``acta_id, copy_code``, from ``copy_codes_source``) are the
    official copy codes; without them, when the copies carry codes, the snapshot's own
    source file gives them when it still holds them (ONPE's ``v2_CCOPIA_ACTA``), so codes
    on the copies are never ignored (``copy_codes_sha256``: the SHA-256 of the file they
    were read from, for the provenance). ``roll``: every acta id that exists, when the
    snapshot lacks some."""
    from escrutinio.defence import observers
    from escrutinio.defence import pvt as analysis
    from escrutinio.service import area_labels

    info = official_snapshot(store, snapshot, contest_id)
    contest = store.contest(info.contest_id)
    labels = area_labels(store, info.contest_id)
    used = [inputs.snapshot_input("snapshot", info),
            inputs.upload_input("copies", copies.source_uri, copies.source_sha256)]
    res: PvtResult | PvtUnitsResult
    if info.kind is SnapshotKind.UNITS:
        areas = acta_areas(store, info.contest_id)
        res = analysis.reconcile_units(
            copies.frame, sum_vote_types(store.load_units(info.snapshot_id)), contest,
            level=params.level,
            acta_areas=areas, pair=params.pair, snapshot_ids=[info.snapshot_id],
            copies_sha256=copies.source_sha256, rejected=copies.rejected,
            level_labels=labels)
    else:
        if copy_codes is None and copies.frame["copy_code"].is_not_null().any():
            copy_codes = observers.source_copy_codes(info.source_uri, info.source_sha256)
            copy_codes_source = (f"snapshot source {info.source_uri}"
                                 if copy_codes is not None else "")
            copy_codes_sha256 = info.source_sha256  # read only when byte-identical
        if copy_codes is not None:
            used.append(inputs.upload_input("copy_codes", copy_codes_source, copy_codes_sha256))
        if roll is not None:
            used.append({"role": "roll", "n_actas": len(roll)})
        res = analysis.reconcile(
            copies.frame, store.load_actas(info.snapshot_id), contest, copy_codes=copy_codes,
            pair=params.pair, snapshot_ids=[info.snapshot_id],
            copies_sha256=copies.source_sha256, rejected=copies.rejected,
            roll=None if roll is None else pl.Series("acta_id", list(roll), dtype=pl.String),
            copy_codes_source=copy_codes_source)
    return ParallelTabulation(info, params, inputs.with_inputs(res, "pvt", params, used),
                              copies.n_rejected, copies.warnings, labels)


def rehearsal_copies(store: Store, snapshot: inputs.SnapshotArg = "latest", *,
                     contest_id: str | None = None, coverage: float = REHEARSAL_COVERAGE,
                     seed: int = REHEARSAL_SEED, copy_codes: pl.DataFrame | None = None
                     ) -> GeneratedCopies:
    """Synthetic copies of the per-acta ``snapshot`` with known defects, for a rehearsal
    (:func:`escrutinio.defence.generator.generate_copies`); the store is unchanged."""
    from escrutinio.defence.generator import generate_copies

    info = official_snapshot(store, snapshot, contest_id)
    if info.kind is not SnapshotKind.ACTAS:
        raise EscrutinioError("--generate necesita una instantánea por acta",
                              "--generate needs a per-acta snapshot")
    return generate_copies(store.load_actas(info.snapshot_id), store.contest(info.contest_id),
                           coverage=coverage, seed=seed, copy_codes=copy_codes)
