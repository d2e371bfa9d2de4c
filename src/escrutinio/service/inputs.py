"""What a defence answer is computed from, shared by :mod:`~escrutinio.service.verify`,
:mod:`~escrutinio.service.contested`, :mod:`~escrutinio.service.quickcount` and
:mod:`~escrutinio.service.pvt`.

* the snapshot a reference names (``"latest"``, an id or prefix, a label...), or the
  :class:`~escrutinio.store.base.SnapshotInfo` a caller already resolved (the web layer
  resolves through its replay clock first);
* the per-acta requirement (:class:`~escrutinio.errors.NeedsActas`);
* the contest's words (a stored sidecar's ``court_name`` overrides the country pack's);
* the provenance of every input: each analysis result already carries its
  :class:`~escrutinio.provenance.Provenance` (snapshot ids, the analysis' own parameters,
  seed, version); the service adds, under ``parameters["service"]``, the question, the
  service parameters it applied (its one set of defaults) and every input with its
  SHA-256: the snapshot, any auxiliary snapshot (earlier actas, a snapshot fused with) and
  any uploaded file (observers' copies, reports).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from escrutinio.domain import SnapshotKind
from escrutinio.errors import EscrutinioError, NeedsActas
from escrutinio.provenance import to_jsonable
from escrutinio.store.base import SnapshotInfo, Store

if TYPE_CHECKING:
    from escrutinio.countries import Vocabulary
    from escrutinio.domain import Contest

R = TypeVar("R")

#: a snapshot reference as the CLI reads it, or a snapshot already resolved
SnapshotArg = str | SnapshotInfo


def resolve(store: Store, snapshot: SnapshotArg, contest_id: str | None = None, *,
            kind: SnapshotKind | None = SnapshotKind.ACTAS) -> SnapshotInfo:
    """``snapshot`` itself when already resolved, else the snapshot of ``kind`` the
    reference names within ``contest_id`` (default: the contest with the newest
    snapshot)."""
    if isinstance(snapshot, SnapshotInfo):
        return snapshot
    from escrutinio.service import default_contest

    cid = default_contest(store, contest_id)
    return store.snapshot(snapshot, contest_id=cid, kind=kind)


def require_actas(info: SnapshotInfo, what_es: str, what_en: str) -> None:
    """Refuse an aggregate (per-unit) snapshot where the question needs per-acta figures."""
    if info.kind is not SnapshotKind.ACTAS:
        raise NeedsActas(
            f"{what_es} necesita una instantánea por acta; {info.snapshot_id[:12]} es "
            "agregada (por unidad)",
            f"{what_en} needs a per-acta snapshot; {info.snapshot_id[:12]} is an aggregate "
            "(per-unit) one")


def earlier_actas(store: Store, info: SnapshotInfo) -> list[SnapshotInfo]:
    """The per-acta snapshots of the same contest strictly before ``info``, oldest first."""
    return [s for s in store.list_snapshots(info.contest_id, SnapshotKind.ACTAS)
            if s.as_of < info.as_of]


def contest_words(store: Store, contest: Contest, snapshot_id: str | None = None
                  ) -> Vocabulary:
    """The contest's vocabulary; a stored sidecar's ``court_name`` (the given snapshot's,
    else the newest that names one) overrides the pack's court."""
    from escrutinio.countries import vocabulary

    try:
        metadata = store.snapshot_metadata(contest.id)
    except (EscrutinioError, KeyError):
        metadata = {}
    chosen: Mapping[str, object] = {}
    if snapshot_id is not None and "court_name" in metadata.get(snapshot_id, {}):
        chosen = metadata[snapshot_id]
    else:
        for md in reversed(list(metadata.values())):
            if "court_name" in md:
                chosen = md
                break
    return vocabulary(contest, chosen)


def snapshot_input(role: str, info: SnapshotInfo) -> dict[str, Any]:
    """One stored snapshot an answer used, with the SHA-256 of its source bytes."""
    return {"role": role, "snapshot_id": info.snapshot_id, "kind": info.kind.value,
            "as_of": to_jsonable(info.as_of), "source_sha256": info.source_sha256}


def upload_input(role: str, source: str, sha256: str) -> dict[str, Any]:
    """One file (or request body) an answer used, with the SHA-256 of the bytes read."""
    return {"role": role, "source": source, "sha256": sha256}


def service_provenance(question: str, params: object, inputs: Sequence[Mapping[str, Any]]
                       ) -> dict[str, Any]:
    """What ``parameters["service"]`` holds: the question, the service parameters applied
    and every input with its SHA-256."""
    return {"question": f"escrutinio.service.{question}", "parameters": to_jsonable(params),
            "inputs": [dict(i) for i in inputs]}


def with_inputs(result: R, question: str, params: object,
                inputs: Sequence[Mapping[str, Any]]) -> R:
    """``result`` (a frozen analysis result with a ``provenance``) with the service's
    parameters and inputs added to its provenance (:func:`service_provenance`)."""
    res = cast(Any, result)
    prov = res.provenance
    extra = service_provenance(question, params, inputs)
    return cast(R, dataclasses.replace(res, provenance=dataclasses.replace(
        prov, parameters={**prov.parameters, "service": extra})))

