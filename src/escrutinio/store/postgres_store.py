"""PostgreSQL store: the same interface and behaviour as the DuckDB store, for a server
shared by several processes.

* Rows move in with ``COPY ... FROM STDIN (FORMAT csv)``: polars writes the whole frame
  as CSV (the votes list as a PostgreSQL array literal ``{1,2,NULL}``) in one call, so no
  Python loop touches the rows. They move out with ``COPY (SELECT ...) TO STDOUT`` read
  back by ``polars.read_csv`` with the canonical schema. CSV keeps NULL (an unquoted
  empty field) apart from the empty string (``""``) in both directions.
* One transaction per ``put_snapshots`` (all snapshots of a command or none), serialised
  between processes by a transaction-level advisory lock.
* The schema is versioned: the ``store/migrations/NNNN_name[.postgres].sql`` files
  (one set for both databases, store/migration_repo.py) applied in order, each in its
  own transaction, and recorded in ``schema_migrations`` (see docs/store.md).
"""

from __future__ import annotations

import io
import json
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl
import psycopg
from psycopg import sql

from escrutinio import __version__
from escrutinio.domain import ACTA_COLUMNS, UNIT_COLUMNS, VOTE_TYPE, Contest, SnapshotKind
from escrutinio.errors import (
    ContestConflictError,
    EscrutinioError,
    NotFoundError,
    UnknownReferenceError,
)
from escrutinio.sources.base import REJECTED_SCHEMA, ParsedSnapshot
from escrutinio.store import migration_repo
from escrutinio.store.base import IngestOutcome, SnapshotInfo, Store
from escrutinio.store.frontier_repo import PostgresFrontierRepo
from escrutinio.store.migration_repo import AppliedMigration, Migration, PostgresMigrations
from escrutinio.store.rawlog_repo import PostgresRawLogRepo

if TYPE_CHECKING:
    from escrutinio.store.audit_repo import PostgresAuditRepository

#: loaded snapshot frames kept per store object (snapshots never change once stored)
FRAME_CACHE_SIZE = 2
#: advisory lock keys (arbitrary constants; pg_advisory locks are per database;
#: MIGRATION_LOCK = 7_301_946_001 is in store/migration_repo.py)
WRITE_LOCK = 7_301_946_002

_SNAPSHOT_COLS = ("snapshot_id, contest_id, kind, level, as_of, source_uri, source_sha256, "
                  "part, parser, label, n_rows, n_rejected, n_findings, ingested_at, "
                  "escrutinio_version")
_GEO_COLUMNS = ("code", "name", "level", "parent", "abroad", "alt_code")


def _q(col: str) -> str:
    return f'"{col}"'


# -- migrations (store/migration_repo.py: one versioned set for both databases) ----------
def migrations() -> list[Migration]:
    """The migrations PostgreSQL applies, in version order."""
    return migration_repo.migrations("postgres")


def migrate(con: psycopg.Connection[Any]) -> list[int]:
    """Apply the migrations not yet recorded in ``schema_migrations``; return their
    versions. Idempotent, and safe when several processes start at once (an advisory
    lock serialises them). A migration already applied whose file has since changed is an
    error: migrations are append-only."""
    return PostgresMigrations(con).migrate()


def migrate_database(dsn: str, *, connect_timeout: int = 10
                     ) -> tuple[list[int], list[AppliedMigration]]:
    """``escrutinio migrate``: apply the pending migrations on the database at ``dsn``
    (as its owner role, so that the servers' roles need no right to create tables);
    return the versions applied now and every recorded migration."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout) as con:
        repo = PostgresMigrations(con)
        applied = repo.migrate()
        return applied, repo.applied()


# -- CSV in and out ----------------------------------------------------------------------
def _array_literal(cols: list[str]) -> pl.Expr:
    """``{v1,v2,...}`` with NULL for missing figures, built by polars for every row."""
    if not cols:
        return pl.lit("{}").alias("votes")
    parts = [pl.col(c).cast(pl.String).fill_null("NULL") for c in cols]
    return pl.concat_str([pl.lit("{"), pl.concat_str(parts, separator=","), pl.lit("}")]
                         ).alias("votes")


def _csv_bytes(frame: pl.DataFrame) -> bytes:
    # null -> unquoted empty field (NULL for COPY csv); "" -> a quoted "" (empty string)
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False)
    return buf.getvalue()


class PostgresStore(Store):
    """``lazy``: connect on first use instead of now (a server worker must start even while
    the database is down). ``connect_options``: extra libpq parameters (``connect_timeout``,
    ``keepalives_idle``, ``tcp_user_timeout``...). A connection that broke (the server
    restarted, the network dropped) is replaced by a new one on the next use: the query
    that met the broken connection raises ``psycopg.OperationalError``, the next one
    reconnects."""

    def __init__(self, dsn: str, *, read_only: bool = False, lazy: bool = False,
                 connect_options: dict[str, Any] | None = None) -> None:
        self.dsn = dsn
        self.read_only = read_only
        self.connect_options = dict(connect_options or {})
        self._con: psycopg.Connection[Any] | None = None
        self._frames: OrderedDict[tuple[str, str], pl.DataFrame] = OrderedDict()
        self._geography: dict[str, pl.DataFrame] = {}
        self._unit_types = False  # the units table has vote_type (known once seen)
        if not lazy:
            self._connect()

    @property
    def con(self) -> psycopg.Connection[Any]:
        con = self._con
        if con is None or con.closed or con.broken:
            con = self._connect()
        return con

    def _connect(self) -> psycopg.Connection[Any]:
        if self._con is not None:
            self._con.close()
            self._con = None
        con: psycopg.Connection[Any] = psycopg.connect(self.dsn, autocommit=True,
                                                       **self.connect_options)
        try:
            con.execute("SET TIME ZONE 'UTC'")
            if self.read_only:
                row = con.execute("SELECT to_regclass('schema_migrations')").fetchone()
                if row is None or row[0] is None:
                    raise EscrutinioError(
                        "la base de datos PostgreSQL no tiene el esquema de escrutinio; "
                        "ejecute 'escrutinio ingest' primero",
                        "the PostgreSQL database has no escrutinio schema; run "
                        "'escrutinio ingest' first")
                con.execute("SET default_transaction_read_only = on")
            else:
                migrate(con)
        except BaseException:
            con.close()
            raise
        self._con = con
        return con

    @property
    def path(self) -> str:
        """Where the store lives (the DSN), for messages; mirrors DuckDBStore.path."""
        return self.dsn

    def _one(self, sql: str, params: list[object] | None = None) -> tuple[Any, ...] | None:
        return self.con.execute(sql, params or []).fetchone()  # type: ignore[arg-type]

    def close(self) -> None:
        self._frames.clear()
        self._geography.clear()
        if self._con is not None:
            self._con.close()

    @property
    def audits(self) -> PostgresAuditRepository:
        """The audit workflow's record (store/audit_repo.py)."""
        from escrutinio.store.audit_repo import PostgresAuditRepository

        return PostgresAuditRepository(self)

    @property
    def migrations(self) -> PostgresMigrations:
        """The schema's version record (store/migration_repo.py)."""
        return PostgresMigrations(self.con)

    def schema_versions(self) -> list[int]:
        return self.migrations.versions()

    # -- writing -------------------------------------------------------------------------
    def put_snapshots(self, snapshots: list[ParsedSnapshot], *,
                      before_commit: Callable[[], object] | None = None
                      ) -> list[IngestOutcome]:
        outcomes: list[IngestOutcome] = []
        self._geography.clear()
        with self.con.transaction():
            self.con.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
            seen: set[str] = set()
            for snap in snapshots:
                sid = snap.snapshot_id
                info = self._one("SELECT n_rows, n_rejected, n_findings FROM snapshots "
                                 "WHERE snapshot_id = %s", [sid])
                if sid in seen or info is not None:
                    n = info if info else (snap.frame.height, snap.n_rejected,
                                           snap.findings.height)
                    outcomes.append(IngestOutcome(sid, snap.label, snap.as_of, snap.kind, False,
                                                  int(n[0]), int(n[1]), int(n[2])))
                    continue
                seen.add(sid)
                self._put_contest(snap.contest, snap.source_uri)
                self._put_rows(snap)
                if snap.geography is not None and snap.geography.height:
                    self._put_geography(snap.contest.id, snap.geography)
                self.con.execute(
                    f"INSERT INTO snapshots ({_SNAPSHOT_COLS}, metadata) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [sid, snap.contest.id, snap.kind.value, snap.level, snap.as_of,
                     snap.source_uri, snap.source_sha256, snap.part, snap.parser, snap.label,
                     snap.frame.height, snap.n_rejected, snap.findings.height,
                     datetime.now(UTC), __version__, json.dumps(dict(snap.metadata))],
                )
                outcomes.append(IngestOutcome(sid, snap.label, snap.as_of, snap.kind, True,
                                              snap.frame.height, snap.n_rejected,
                                              snap.findings.height))
            if before_commit is not None:
                before_commit()
        return outcomes

    def _put_contest(self, contest: Contest, source: str = "?") -> None:
        row = self._one("SELECT definition FROM contests WHERE contest_id = %s", [contest.id])
        definition = json.dumps(contest.to_dict(), ensure_ascii=False, sort_keys=True)
        if row is None:
            self.con.execute("INSERT INTO contests VALUES (%s, %s)", [contest.id, definition])
        elif json.loads(row[0]) != json.loads(definition):
            raise ContestConflictError(source, contest.id, json.loads(row[0]),
                                       json.loads(definition))

    def _copy_in(self, table: str, columns: list[str], data: bytes) -> None:
        cols = ", ".join(_q(c) for c in columns)
        with self.con.cursor() as cur, cur.copy(  # type: ignore[call-overload]
                f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(data)

    def _put_rows(self, snap: ParsedSnapshot) -> None:
        sid = snap.snapshot_id
        cand = snap.contest.candidate_columns
        base = ACTA_COLUMNS if snap.kind is SnapshotKind.ACTAS else UNIT_COLUMNS
        table = "actas" if snap.kind is SnapshotKind.ACTAS else "units"
        # a unit published in one row per vote type keeps the type (migration 0006)
        typed = snap.kind is SnapshotKind.UNITS and VOTE_TYPE in snap.frame.columns
        rows = snap.frame.select(pl.lit(sid).alias("snapshot_id"), *base.keys(),
                                 _array_literal(cand), *([VOTE_TYPE] if typed else []))
        if rows.height:
            self._copy_in(table, rows.columns, _csv_bytes(rows))
        reports = pl.concat([
            snap.rejected.with_columns(pl.lit("reject").alias("severity")),
            snap.findings.with_columns(pl.lit("flag").alias("severity")),
        ]).select(pl.lit(sid).alias("snapshot_id"), "severity", *REJECTED_SCHEMA.keys())
        if reports.height:
            self._copy_in("row_reports", reports.columns, _csv_bytes(reports))

    def _put_geography(self, contest_id: str, geo: pl.DataFrame) -> None:
        self.con.execute("CREATE TEMP TABLE __escrutinio_geo (LIKE geography) ON COMMIT DROP")
        g = geo.select(pl.lit(contest_id).alias("contest_id"), *_GEO_COLUMNS)
        self._copy_in("__escrutinio_geo", g.columns, _csv_bytes(g))
        self.con.execute(
            "INSERT INTO geography SELECT n.* FROM __escrutinio_geo n WHERE NOT EXISTS ("
            "SELECT 1 FROM geography g WHERE g.contest_id = %s "
            "AND g.code = n.code AND g.level = n.level)", [contest_id])
        self.con.execute("DROP TABLE __escrutinio_geo")

    # -- reading -------------------------------------------------------------------------
    def _copy_out(self, select: str, params: list[object],
                  schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """Run ``select`` through COPY ... TO STDOUT and read it with the given schema.
        Boolean columns must be selected as ``::int`` (PostgreSQL writes t/f)."""
        query = sql.SQL(select).format(*[sql.Literal(p) for p in params])
        buf = io.BytesIO()
        with self.con.cursor() as cur, cur.copy(
                sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)) as copy:
            for block in copy:
                buf.write(block)
        read_schema = {k: (pl.Int8() if v == pl.Boolean() else v) for k, v in schema.items()}
        if buf.tell() == 0:
            return pl.DataFrame(schema=schema)
        df = pl.read_csv(buf.getvalue(), has_header=False, schema=read_schema,
                         infer_schema=False)
        return df.cast(schema)  # type: ignore[arg-type]

    def list_snapshots(self, contest_id: str | None = None,
                       kind: SnapshotKind | None = None) -> list[SnapshotInfo]:
        where, args = [], []
        if contest_id:
            where.append("contest_id = %s")
            args.append(contest_id)
        if kind:
            where.append("kind = %s")
            args.append(kind.value)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        rows = self.con.execute(  # type: ignore[call-overload]
            f"SELECT {_SNAPSHOT_COLS} FROM snapshots {clause} ORDER BY as_of, label", args
        ).fetchall()
        return [SnapshotInfo(r[0], r[1], SnapshotKind(r[2]), r[3], r[4].astimezone(UTC),
                             r[5], r[6], r[7], r[8], r[9], int(r[10]), int(r[11]),
                             int(r[12]), r[13].astimezone(UTC), r[14]) for r in rows]

    @property
    def live_rawlog(self) -> PostgresRawLogRepo:
        return PostgresRawLogRepo(lambda: self.con)

    @property
    def live_frontier(self) -> PostgresFrontierRepo:
        return PostgresFrontierRepo(lambda: self.con)

    def snapshot_metadata(self, contest_id: str) -> dict[str, dict[str, str]]:
        rows = self.con.execute(
            "SELECT snapshot_id, metadata FROM snapshots WHERE contest_id = %s "
            "ORDER BY as_of, label", [contest_id]).fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    def contest(self, contest_id: str) -> Contest:
        row = self._one("SELECT definition FROM contests WHERE contest_id = %s", [contest_id])
        if row is None:
            known = ", ".join(c.id for c in self.contests()) or "—"
            raise UnknownReferenceError(
                f"contienda desconocida: {contest_id!r}; las del almacén: {known}",
                f"unknown contest: {contest_id!r}; the store holds: {known}")
        return Contest.from_dict(json.loads(row[0]))

    def contests(self) -> list[Contest]:
        rows = self.con.execute("SELECT definition FROM contests ORDER BY contest_id").fetchall()
        return [Contest.from_dict(json.loads(r[0])) for r in rows]

    def _contest_of(self, snapshot_id: str) -> Contest:
        row = self._one("SELECT contest_id FROM snapshots WHERE snapshot_id = %s", [snapshot_id])
        if row is None:
            raise NotFoundError(f"instantánea desconocida: {snapshot_id}",
                                f"unknown snapshot: {snapshot_id}")
        return self.contest(row[0])

    def _load(self, table: str, base: dict[str, pl.DataType], snapshot_id: str) -> pl.DataFrame:
        key = (table, snapshot_id)
        cached = self._frames.get(key)
        if cached is not None:
            self._frames.move_to_end(key)
            return cached.clone()
        frame = self._read(table, base, snapshot_id)
        self._frames[key] = frame
        while len(self._frames) > FRAME_CACHE_SIZE:
            self._frames.popitem(last=False)
        return frame.clone()

    def _read(self, table: str, base: dict[str, pl.DataType], snapshot_id: str) -> pl.DataFrame:
        contest = self._contest_of(snapshot_id)
        cand = contest.candidate_columns
        cols = ", ".join(f"{_q(c)}::int" if t == pl.Boolean() else _q(c)
                         for c, t in base.items())
        # arrays are 1-based; an index past the end gives NULL, as in DuckDB
        votes = "".join(f", votes[{i + 1}]" for i in range(len(cand)))
        order = "acta_id" if table == "actas" else "level, unit_code"
        schema = dict(base) | {c: pl.Int64() for c in cand}
        typed = table == "units" and self._has_unit_types()
        if typed:  # the vote type of each row ('' or NULL: not given), migration 0006
            votes += f", NULLIF({VOTE_TYPE}, '')"
            order += f', {VOTE_TYPE} COLLATE "C" NULLS FIRST'  # bytewise, as DuckDB
            schema[VOTE_TYPE] = pl.String()
        df = self._copy_out(
            f"SELECT {cols}{votes} FROM {table} WHERE snapshot_id = {{}} ORDER BY {order}",
            [snapshot_id], schema)
        if typed and df[VOTE_TYPE].null_count() == df.height:
            df = df.drop(VOTE_TYPE)  # no row of a type: the canonical unit frame
        return df

    def _has_unit_types(self) -> bool:
        """The units table has the ``vote_type`` column (migration 0006); a read-only
        connection to a database not migrated yet has none, and no types."""
        if not self._unit_types:
            self._unit_types = self._one(
                "SELECT 1 FROM information_schema.columns WHERE table_name = 'units' AND "
                "column_name = %s AND table_schema = current_schema()", [VOTE_TYPE]) is not None
        return self._unit_types

    def load_actas(self, snapshot_id: str) -> pl.DataFrame:
        return self._load("actas", ACTA_COLUMNS, snapshot_id)

    def load_units(self, snapshot_id: str) -> pl.DataFrame:
        return self._load("units", UNIT_COLUMNS, snapshot_id)

    def acta_history(self, contest_id: str, acta_ids: list[str]) -> pl.DataFrame:
        """One query: the rows of ``acta_ids`` in every per-acta snapshot of the contest."""
        cand = self.contest(contest_id).candidate_columns
        cols = ", ".join(f"a.{_q(c)}::int" if t == pl.Boolean() else f"a.{_q(c)}"
                         for c, t in ACTA_COLUMNS.items())
        votes = "".join(f", a.votes[{i + 1}]" for i in range(len(cand)))
        return self._copy_out(
            f"SELECT a.snapshot_id, {cols}{votes} FROM actas a JOIN snapshots s USING "
            "(snapshot_id) WHERE s.contest_id = {} AND s.kind = 'actas' AND "
            "a.acta_id = ANY({}) ORDER BY s.as_of, s.label, a.acta_id",
            [contest_id, list(acta_ids)],
            {"snapshot_id": pl.String(), **ACTA_COLUMNS, **{c: pl.Int64() for c in cand}})

    def acta_reports(self, contest_id: str, acta_ids: list[str]) -> pl.DataFrame:
        cols = ", ".join(f"r.{c}" for c in ["severity", *REJECTED_SCHEMA.keys()])
        return self._copy_out(
            f"SELECT r.snapshot_id, {cols} FROM row_reports r JOIN snapshots s USING "
            "(snapshot_id) WHERE s.contest_id = {} AND r.acta_id = ANY({}) "
            "ORDER BY s.as_of, s.label, r.line, r.seq", [contest_id, list(acta_ids)],
            {"snapshot_id": pl.String(), "severity": pl.String(), **REJECTED_SCHEMA})

    def load_row_reports(self, snapshot_id: str) -> pl.DataFrame:
        cols = ", ".join(["severity", *REJECTED_SCHEMA.keys()])
        return self._copy_out(
            f"SELECT {cols} FROM row_reports WHERE snapshot_id = {{}} ORDER BY line, seq",
            [snapshot_id], {"severity": pl.String()} | REJECTED_SCHEMA)

    def geography(self, contest_id: str) -> pl.DataFrame:
        cached = self._geography.get(contest_id)
        if cached is None:
            cached = self._geography[contest_id] = self._copy_out(
                "SELECT code, name, level, parent, abroad::int, alt_code FROM geography "
                "WHERE contest_id = {} ORDER BY level, code", [contest_id],
                {"code": pl.String(), "name": pl.String(), "level": pl.String(),
                 "parent": pl.String(), "abroad": pl.Boolean(), "alt_code": pl.String()})
        return cached.clone()
