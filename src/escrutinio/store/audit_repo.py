"""The audit workflow's record (escrutinio.audit.workflow): every SQL statement it needs,
behind one interface, with one implementation per backend.

The tables (``audit_*``) come from migration ``0003_audit.sql``. Rows are appended, never
updated. A store opened read-only from before that migration has no audit tables: it
holds no audits (:meth:`AuditRepository.available`), and reading one says so instead of
failing on a missing table.

The queries are the SQL both databases accept (``?`` placeholders, turned into ``%s`` for
psycopg); what differs is how a frame moves in (an Arrow view on DuckDB, ``COPY`` on
PostgreSQL) and how a transaction is held.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import polars as pl

if TYPE_CHECKING:
    from escrutinio.store.duckdb_store import DuckDBStore
    from escrutinio.store.postgres_store import PostgresStore

TABLES: Final = ("audit_audits", "audit_manifest", "audit_rounds", "audit_draws",
                 "audit_counts", "audit_measures", "audit_external_manifest")
#: what a store that holds audits has at least (before migration 0003 the workflow made
#: ``audit_external_manifest`` only for an audit that had an external manifest)
CORE_TABLES: Final = TABLES[:6]

#: the frames :meth:`AuditRepository.create` and :meth:`AuditRepository.add_round` take
MANIFEST_SCHEMA: Final = {"ordinal": pl.Int64(), "acta_id": pl.String(),
                          "category": pl.String(), "ballots": pl.Int64(),
                          "weight": pl.String()}
DRAW_SCHEMA: Final = {"round": pl.Int32(), "draw": pl.Int64(), "acta_id": pl.String(),
                      "ordinal": pl.Int64(), "detail": pl.String()}
EXTERNAL_SCHEMA: Final = {"acta_id": pl.String(), "ballots": pl.Int64()}


@dataclass(frozen=True, slots=True)
class StoredAudit:
    """A row of ``audit_audits`` as stored (JSON fields as text)."""

    audit_id: str
    contest_id: str
    snapshot_id: str
    created_at: datetime
    method: str
    design: str
    risk_limit: str
    seed: str
    policy: str
    alpha_params: str
    manifest_sha256: str
    n_actas: int
    total_weight: str
    scale: str
    definition: str
    escrutinio_version: str


@dataclass(frozen=True, slots=True)
class StoredCount:
    """The latest hand count of one acta."""

    acta_id: str
    votes: tuple[int, ...]
    blank: int
    null: int
    challenged: int


@dataclass(frozen=True, slots=True)
class StoredRound:
    round: int
    first_draw: int
    last_draw: int
    size_rule: str


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class AuditRepository(ABC):
    """Audits, manifests, rounds, draws, hand counts and measurements in one store."""

    # -- what each backend provides ---------------------------------------------------------
    @abstractmethod
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders); its rows, none for a command."""

    @abstractmethod
    def _insert(self, table: str, frame: pl.DataFrame) -> None:
        """Insert a frame whose columns are the table's, in order."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[None]: ...

    @abstractmethod
    def _tables(self) -> set[str]:
        """Which of :data:`TABLES` exist."""

    # -- reading ---------------------------------------------------------------------------
    def available(self) -> bool:
        """The store has the audit tables (always, once migrated; a read-only store from
        before migration 0003 has none, and so no audits)."""
        return set(CORE_TABLES) <= self._tables()

    def exists(self, audit_id: str) -> bool:
        return self.available() and bool(
            self._rows("SELECT 1 FROM audit_audits WHERE audit_id = ?", [audit_id]))

    def get(self, audit_id: str) -> StoredAudit | None:
        if not self.available():
            return None
        cols = ", ".join(f.name for f in fields(StoredAudit))
        rows = self._rows(f"SELECT {cols} FROM audit_audits WHERE audit_id = ?", [audit_id])
        if not rows:
            return None
        r = list(rows[0])
        r[3] = _utc(r[3])
        r[11] = int(r[11])
        return StoredAudit(*r)

    def audit_ids(self, *, order_by: str = "created_at") -> list[str]:
        """Every audit's id, by creation time (``order_by="audit_id"``: by id)."""
        if order_by not in ("created_at", "audit_id"):
            raise ValueError(order_by)
        if not self.available():
            return []
        return [str(r[0]) for r in
                self._rows(f"SELECT audit_id FROM audit_audits ORDER BY {order_by}, audit_id")]

    def external_manifest(self, audit_id: str) -> pl.DataFrame:
        rows = self._rows("SELECT acta_id, ballots FROM audit_external_manifest "
                          "WHERE audit_id = ? ORDER BY acta_id", [audit_id])
        return pl.DataFrame(rows, schema=EXTERNAL_SCHEMA, orient="row")

    def draws(self, audit_id: str) -> pl.DataFrame:
        """Every draw of the audit, in draw order (:data:`DRAW_SCHEMA`)."""
        rows = self._rows("SELECT round, draw, acta_id, ordinal, detail FROM audit_draws "
                          "WHERE audit_id = ? ORDER BY draw", [audit_id])
        return pl.DataFrame(rows, schema=DRAW_SCHEMA, orient="row")

    def rounds(self, audit_id: str) -> list[StoredRound]:
        return [StoredRound(int(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in self._rows(
            "SELECT round, first_draw, last_draw, size_rule FROM audit_rounds "
            "WHERE audit_id = ? ORDER BY round", [audit_id])]

    def last_round(self, audit_id: str) -> tuple[int, int]:
        """(latest round, latest draw counter), (0, 0) before the first round."""
        row = self._rows("SELECT coalesce(max(round), 0), coalesce(max(last_draw), 0) "
                         "FROM audit_rounds WHERE audit_id = ?", [audit_id])[0]
        return int(row[0]), int(row[1])

    def latest_counts(self, audit_id: str) -> list[StoredCount]:
        """Each hand-counted acta's latest count (a replaced count is superseded)."""
        rows = self._rows(
            'SELECT acta_id, votes, blank, "null", challenged FROM audit_counts c '
            "WHERE audit_id = ? AND seq = (SELECT max(seq) FROM audit_counts d WHERE "
            "d.audit_id = c.audit_id AND d.acta_id = c.acta_id) ORDER BY acta_id", [audit_id])
        return [StoredCount(str(r[0]), tuple(int(v) for v in r[1]), int(r[2]), int(r[3]),
                            int(r[4])) for r in rows]

    def latest_summary(self, audit_id: str) -> str | None:
        """The JSON summary of the audit's latest measurement."""
        if not self.available():
            return None
        rows = self._rows("SELECT summary FROM audit_measures WHERE audit_id = ? "
                          "ORDER BY seq DESC LIMIT 1", [audit_id])
        return str(rows[0][0]) if rows else None

    def n_measures(self, audit_id: str) -> int:
        return int(self._rows("SELECT count(*) FROM audit_measures WHERE audit_id = ?",
                              [audit_id])[0][0])

    # -- writing (each call one transaction) -------------------------------------------------
    def create(self, audit: StoredAudit, manifest: pl.DataFrame,
               external: pl.DataFrame | None = None) -> None:
        """Store a new audit with its manifest (:data:`MANIFEST_SCHEMA`) and, when one was
        given, the external manifest (:data:`EXTERNAL_SCHEMA`)."""
        marks = ", ".join(["?"] * len(fields(StoredAudit)))
        with self._transaction():
            self._rows(f"INSERT INTO audit_audits VALUES ({marks})", list(astuple(audit)))
            self._insert("audit_manifest", manifest.select(
                pl.lit(audit.audit_id).alias("audit_id"), *MANIFEST_SCHEMA))
            if external is not None:
                self._insert("audit_external_manifest", external.select(
                    pl.lit(audit.audit_id).alias("audit_id"), *EXTERNAL_SCHEMA))

    def add_round(self, audit_id: str, *, round: int, size_rule: str,
                  draws: pl.DataFrame, created_at: datetime) -> None:
        """Store a round and its draws (:data:`DRAW_SCHEMA`, ``round`` column included)."""
        with self._transaction():
            self._insert("audit_draws", draws.select(
                pl.lit(audit_id).alias("audit_id"), *DRAW_SCHEMA))
            self._rows("INSERT INTO audit_rounds VALUES (?, ?, ?, ?, ?, ?)",
                       [audit_id, round, int(draws["draw"][0]), int(draws["draw"][-1]),
                        size_rule, created_at])

    def add_counts(self, audit_id: str, counts: Sequence[tuple[StoredCount, int | None]], *,
                   source: str, source_sha256: str, recorded_at: datetime) -> None:
        """Append hand counts (each with its line in ``source``), numbered after the
        audit's last one."""
        if not counts:
            return
        with self._transaction():
            seq0 = int(self._rows("SELECT coalesce(max(seq), 0) FROM audit_counts "
                                  "WHERE audit_id = ?", [audit_id])[0][0])
            for i, (c, line) in enumerate(counts, start=1):  # a handful per file
                self._rows("INSERT INTO audit_counts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [audit_id, seq0 + i, c.acta_id, list(c.votes), c.blank, c.null,
                            c.challenged, source, source_sha256, line, recorded_at])

    def add_measure(self, audit_id: str, *, round: int, measured_at: datetime,
                    n_draws: int, status: str, risk: float, summary: str) -> None:
        with self._transaction():
            seq = int(self._rows("SELECT coalesce(max(seq), 0) FROM audit_measures "
                                 "WHERE audit_id = ?", [audit_id])[0][0]) + 1
            self._rows("INSERT INTO audit_measures VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       [audit_id, seq, round, measured_at, n_draws, status, risk, summary])


class DuckDBAuditRepository(AuditRepository):
    def __init__(self, store: DuckDBStore) -> None:
        self.store = store

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.store._use():  # the query and its fetch are never split by a release
            con = self.store.con
            cur = con.execute(sql, list(params)) if params else con.execute(sql)
            return list(cur.fetchall()) if cur.description else []

    def _insert(self, table: str, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        name = f"__audit_insert_{table}"
        with self.store._use():
            con = self.store.con
            con.register(name, frame.to_arrow())  # an Arrow view, dropped at once
            try:
                con.execute(f"INSERT INTO {table} SELECT * FROM {name}")
            finally:
                con.unregister(name)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self.store._use():
            self._rows("BEGIN TRANSACTION")
            try:
                yield
            except BaseException:
                self._rows("ROLLBACK")
                raise
            self._rows("COMMIT")

    def _tables(self) -> set[str]:
        marks = ", ".join(["?"] * len(TABLES))
        return {str(r[0]) for r in self._rows(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = current_schema() "
            f"AND table_name IN ({marks})", TABLES)}


class PostgresAuditRepository(AuditRepository):
    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.store.con.execute(sql.replace("?", "%s"), list(params))  # type: ignore[arg-type]
        return list(cur.fetchall()) if cur.description else []

    def _insert(self, table: str, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        from escrutinio.store.postgres_store import _csv_bytes

        self.store._copy_in(table, frame.columns, _csv_bytes(frame))

    def _transaction(self) -> AbstractContextManager[None]:
        return self.store.con.transaction()  # type: ignore[return-value]

    def _tables(self) -> set[str]:
        return {str(r[0]) for r in self._rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_name = ANY(?)", [list(TABLES)])}
