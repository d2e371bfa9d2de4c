"""The store interface. DuckDB (embedded, default) implements it today; a PostgreSQL
store for shared servers implements the same methods and passes the same tests."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from escrutinio.domain import ACTA_COLUMNS, Contest, SnapshotKind
from escrutinio.errors import EscrutinioError, NotFoundError, UnknownReferenceError
from escrutinio.sources.base import REJECTED_SCHEMA, ParsedSnapshot

if TYPE_CHECKING:
    from escrutinio.store.audit_repo import AuditRepository
    from escrutinio.store.frontier_repo import FrontierRepo
    from escrutinio.store.migration_repo import MigrationRepository
    from escrutinio.store.rawlog_repo import RawLogRepo


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    snapshot_id: str
    contest_id: str
    kind: SnapshotKind
    level: str | None
    as_of: datetime
    source_uri: str
    source_sha256: str
    part: str | None
    parser: str
    label: str
    n_rows: int
    n_rejected: int
    n_findings: int
    ingested_at: datetime
    escrutinio_version: str

    @property
    def short_id(self) -> str:
        return self.snapshot_id[:12]


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    snapshot_id: str
    label: str
    as_of: datetime
    kind: SnapshotKind
    created: bool  # False: the same bytes were already stored (no-op)
    n_rows: int
    n_rejected: int
    n_findings: int


class Store(ABC):
    """Immutable, content-addressed snapshots of an election count."""

    @abstractmethod
    def put_snapshots(self, snapshots: list[ParsedSnapshot], *,
                      before_commit: Callable[[], object] | None = None
                      ) -> list[IngestOutcome]:
        """Store snapshots atomically: all of them or none. Existing ids are no-ops.
        ``before_commit`` runs inside the transaction, on this store's connection, just
        before it commits (the ledger appends there); if it raises, nothing is stored."""

    @abstractmethod
    def list_snapshots(self, contest_id: str | None = None,
                       kind: SnapshotKind | None = None) -> list[SnapshotInfo]:
        """Snapshots ordered by as_of, then label."""

    @abstractmethod
    def contest(self, contest_id: str) -> Contest: ...

    @abstractmethod
    def contests(self) -> list[Contest]: ...

    @abstractmethod
    def load_actas(self, snapshot_id: str) -> pl.DataFrame:
        """Canonical acta frame (ACTA_COLUMNS + candidate columns)."""

    @abstractmethod
    def load_units(self, snapshot_id: str) -> pl.DataFrame:
        """Canonical unit frame (UNIT_COLUMNS + candidate columns)."""

    @abstractmethod
    def load_row_reports(self, snapshot_id: str) -> pl.DataFrame: ...

    @abstractmethod
    def geography(self, contest_id: str) -> pl.DataFrame: ...

    @abstractmethod
    def snapshot_metadata(self, contest_id: str) -> dict[str, dict[str, str]]:
        """The metadata each source stored with its snapshots of ``contest_id`` (parser
        details, a sidecar's ``area_labels``...), by snapshot id, in as_of order."""

    @abstractmethod
    def close(self) -> None: ...

    # -- repositories: the rest of the SQL, one implementation per backend ------------------
    @property
    def audits(self) -> AuditRepository:
        """The audit workflow's record (store/audit_repo.py)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no audits")

    @property
    def migrations(self) -> MigrationRepository:
        """The schema's version record (store/migration_repo.py)."""
        raise NotImplementedError(f"{type(self).__name__} has no schema of its own")

    # -- one acta across snapshots (the mesa lookup) ------------------------------------
    def acta_history(self, contest_id: str, acta_ids: list[str]) -> pl.DataFrame:
        """The rows of the given actas in every per-acta snapshot of ``contest_id``:
        ``snapshot_id`` + the canonical acta columns + candidate columns. Stores answer
        it with one query; this fallback reads each snapshot."""
        frames = [self.load_actas(s.snapshot_id).filter(pl.col("acta_id").is_in(acta_ids))
                  .with_columns(pl.lit(s.snapshot_id).alias("snapshot_id"))
                  for s in self.list_snapshots(contest_id, SnapshotKind.ACTAS)]
        if not frames:
            return pl.DataFrame(schema={"snapshot_id": pl.String(), **ACTA_COLUMNS})
        df = pl.concat(frames, how="diagonal_relaxed")
        return df.select("snapshot_id", *[c for c in df.columns if c != "snapshot_id"])

    def acta_reports(self, contest_id: str, acta_ids: list[str]) -> pl.DataFrame:
        """The row reports (rejected or flagged rows) naming the given actas in any
        snapshot of ``contest_id``: ``snapshot_id``, ``severity`` + REJECTED_SCHEMA."""
        frames = [self.load_row_reports(s.snapshot_id)
                  .filter(pl.col("acta_id").is_in(acta_ids)).with_columns(pl.lit(s.snapshot_id).alias("snapshot_id"))
                  for s in self.list_snapshots(contest_id)]
        frames = [f for f in frames if f.height]
        if not frames:
            return pl.DataFrame(schema={"snapshot_id": pl.String(), "severity": pl.String(),
                                        **REJECTED_SCHEMA})
        df = pl.concat(frames, how="diagonal_relaxed")
        return df.select("snapshot_id", *[c for c in df.columns if c != "snapshot_id"])

    # -- read while writing (docs/store.md) ---------------------------------------------
    def release(self) -> bool:
        """Let other processes use the database now, if this store holds it exclusively
        (DuckDB; reopened on next use). True when nothing is held any more."""
        return True

    def catalog_epoch(self) -> Hashable:
        """A value that changes whenever a snapshot or contest is stored, so that a
        server can follow a store others write to. Stores answer it with one query; this
        fallback lists the catalogue."""
        snaps = self.list_snapshots()
        newest = max((s.ingested_at for s in snaps), default=None)
        return (len(snaps), len(self.contests()), str(newest))

    # -- the live follower's raw log and crawl frontier (store/rawlog_repo.py, ...) -----
    @property
    def live_rawlog(self) -> RawLogRepo:
        raise EscrutinioError(f"{type(self).__name__} no guarda el registro de 'watch'",
                              f"{type(self).__name__} keeps no 'watch' raw log")

    @property
    def live_frontier(self) -> FrontierRepo:
        raise EscrutinioError(f"{type(self).__name__} no guarda la frontera de 'watch'",
                              f"{type(self).__name__} keeps no 'watch' crawl frontier")

    # -- shared helpers ----------------------------------------------------------------
    def put_snapshot(self, snapshot: ParsedSnapshot) -> IngestOutcome:
        return self.put_snapshots([snapshot])[0]

    def snapshot(self, ref: str, *, contest_id: str | None = None,
                 kind: SnapshotKind | None = None) -> SnapshotInfo:
        """Resolve a snapshot reference: a full id, an id prefix (>= 6 hex digits), a
        label, ``latest``/``first``, or ``latest-1`` style offsets."""
        snaps = self.list_snapshots(contest_id, kind)
        if not snaps:
            if contest_id is not None:
                known = [c.id for c in self.contests()]
                if contest_id not in known:
                    listing = ", ".join(known) or "—"
                    raise UnknownReferenceError(
                        f"contienda desconocida: {contest_id!r}; las del almacén: {listing}",
                        f"unknown contest: {contest_id!r}; the store holds: {listing}")
            others = self.list_snapshots(contest_id) if kind is not None else []
            if others:
                # the store is not empty: it holds snapshots of another kind (a per-unit or
                # national series where per-acta results are needed, or the reverse)
                want_es, want_en = (("por acta", "per polling station")
                                    if kind is SnapshotKind.ACTAS else
                                    ("por unidad", "per unit"))
                raise NotFoundError(
                    f"esto necesita resultados {want_es} y el almacén solo tiene "
                    f"{len(others):,} instantáneas de otro tipo"
                    + (f" de {contest_id}" if contest_id else "")
                    + ": no se puede responder con estos datos",
                    f"this needs {want_en} results and the store only holds "
                    f"{len(others):,} snapshots of another kind"
                    + (f" of {contest_id}" if contest_id else "")
                    + ": it cannot be answered from these data")
            raise NotFoundError("no hay instantáneas en el almacén; ejecute 'escrutinio ingest'",
                                "there are no snapshots in the store; run 'escrutinio ingest'")
        if ref in ("latest", "last"):
            return snaps[-1]
        if ref == "first":
            return snaps[0]
        if ref.startswith("latest-") and ref[7:].isdigit():
            k = int(ref[7:])
            if k < len(snaps):
                return snaps[-1 - k]
        exact = [s for s in snaps if s.snapshot_id == ref or s.label == ref]
        if len(exact) == 1:
            return exact[0]
        if len(ref) >= 6:
            pref = [s for s in snaps if s.snapshot_id.startswith(ref)]
            if len(pref) == 1:
                return pref[0]
            if len(pref) > 1:
                raise UnknownReferenceError(
                    f"el prefijo {ref!r} es ambiguo ({len(pref)} instantáneas)",
                    f"prefix {ref!r} is ambiguous ({len(pref)} snapshots)")
        recent = ", ".join(f"{s.short_id} ({s.label})" for s in snaps[-3:][::-1])
        raise UnknownReferenceError(
            f"instantánea desconocida: {ref!r}; válidas: latest, first, latest-N (N < "
            f"{len(snaps)}), un id o un prefijo de 6+ caracteres, o una etiqueta; las más "
            f"recientes: {recent}",
            f"unknown snapshot: {ref!r}; valid: latest, first, latest-N (N < {len(snaps)}), "
            f"an id or a prefix of 6+ characters, or a label; the latest: {recent}")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
