"""DuckDB store: one file, embedded, the default.

Writes go through one transaction per ingest (all snapshots of a command or none).
Frames move in and out as Arrow tables, so no Python loop touches the rows.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from escrutinio import __version__
from escrutinio.domain import ACTA_COLUMNS, UNIT_COLUMNS, Contest, SnapshotKind
from escrutinio.errors import NotFoundError
from escrutinio.sources.base import REJECTED_SCHEMA, ParsedSnapshot
from escrutinio.store.base import IngestOutcome, SnapshotInfo, Store

SCHEMA_VERSION = 1
#: loaded snapshot frames kept per store object (snapshots never change once stored)
FRAME_CACHE_SIZE = 2

_SNAPSHOT_COLS = ("snapshot_id, contest_id, kind, level, as_of, source_uri, source_sha256, "
                  "part, parser, label, n_rows, n_rejected, n_findings, ingested_at, "
                  "escrutinio_version")


def _q(col: str) -> str:
    return f'"{col}"'


class DuckDBStore(Store):
    def __init__(self, path: str | Path = "escrutinio.duckdb", *, read_only: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(self.path, read_only=read_only)
        # snapshots are immutable, so a frame once loaded stays right: keep the last few
        # (a server asked for several levels of the same snapshot reads it once)
        self._frames: OrderedDict[tuple[str, str], pl.DataFrame] = OrderedDict()
        self._geography: dict[str, pl.DataFrame] = {}
        self.con.execute("SET TimeZone='UTC'")
        if not read_only:
            self._migrate()

    def _migrate(self) -> None:
        sql = resources.files("escrutinio.store").joinpath("schema.sql").read_text("utf-8")
        self.con.execute(sql)
        row = self._one("SELECT max(version) FROM schema_version")
        if row is None or row[0] is None:
            self.con.execute("INSERT INTO schema_version VALUES (?, ?)",
                             [SCHEMA_VERSION, datetime.now(UTC)])

    def _one(self, sql: str, params: list[object] | None = None) -> tuple[object, ...] | None:
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0] if rows else None

    def close(self) -> None:
        self._frames.clear()
        self._geography.clear()
        self.con.close()

    # -- writing -------------------------------------------------------------------------
    def put_snapshots(self, snapshots: list[ParsedSnapshot], *,
                      before_commit: Callable[[], object] | None = None
                      ) -> list[IngestOutcome]:
        outcomes: list[IngestOutcome] = []
        con = self.con
        self._geography.clear()
        con.execute("BEGIN TRANSACTION")
        try:
            seen: set[str] = set()
            for snap in snapshots:
                sid = snap.snapshot_id
                exists = sid in seen or self._one(
                    "SELECT 1 FROM snapshots WHERE snapshot_id = ?", [sid])
                if exists:
                    info = self._one("SELECT n_rows, n_rejected, n_findings FROM snapshots "
                        "WHERE snapshot_id = ?", [sid])
                    n = info if info else (snap.frame.height, snap.rejected.height,
                                           snap.findings.height)
                    outcomes.append(IngestOutcome(sid, snap.label, snap.as_of, snap.kind, False,
                                                  int(n[0]), int(n[1]), int(n[2])))
                    continue
                seen.add(sid)
                self._put_contest(snap.contest)
                self._put_rows(snap)
                if snap.geography is not None and snap.geography.height:
                    self._put_geography(snap.contest.id, snap.geography)
                con.execute(
                    f"INSERT INTO snapshots ({_SNAPSHOT_COLS}, metadata) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [sid, snap.contest.id, snap.kind.value, snap.level, snap.as_of,
                     snap.source_uri, snap.source_sha256, snap.part, snap.parser, snap.label,
                     snap.frame.height, snap.rejected.height, snap.findings.height,
                     datetime.now(UTC), __version__, json.dumps(dict(snap.metadata))],
                )
                outcomes.append(IngestOutcome(sid, snap.label, snap.as_of, snap.kind, True,
                                              snap.frame.height, snap.rejected.height,
                                              snap.findings.height))
            if before_commit is not None:
                before_commit()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return outcomes

    def _put_contest(self, contest: Contest) -> None:
        row = self._one("SELECT definition FROM contests WHERE contest_id = ?",
                               [contest.id])
        definition = json.dumps(contest.to_dict(), ensure_ascii=False, sort_keys=True)
        if row is None:
            self.con.execute("INSERT INTO contests VALUES (?, ?)", [contest.id, definition])
        elif json.loads(row[0]) != json.loads(definition):
            raise ValueError(
                f"contest {contest.id} is already stored with a different definition "
                "(candidate order or names differ); use another contest id"
            )

    def _put_rows(self, snap: ParsedSnapshot) -> None:
        sid = snap.snapshot_id
        cand = snap.contest.candidate_columns
        base = ACTA_COLUMNS if snap.kind is SnapshotKind.ACTAS else UNIT_COLUMNS
        table = "actas" if snap.kind is SnapshotKind.ACTAS else "units"
        # the snapshot id and the votes list are built by DuckDB while it inserts: a
        # repeated id and a list column built in polars cost more than the insert itself
        frame = snap.frame
        if snap.kind is SnapshotKind.ACTAS and not frame["acta_id"].is_sorted():
            frame = frame.sort("acta_id")  # stored in the order load_actas returns
        rows = frame.select(*base.keys(), *cand).to_arrow()
        cols = ", ".join(_q(c) for c in base)
        votes = f"[{', '.join(_q(c) for c in cand)}]" if cand else "[]::BIGINT[]"
        with self._registered("__escrutinio_rows", rows):
            self.con.execute(f"INSERT INTO {table} (snapshot_id, {cols}, votes) "
                             f"SELECT ?, {cols}, {votes} FROM __escrutinio_rows", [sid])
        reports = pl.concat([
            snap.rejected.with_columns(pl.lit("reject").alias("severity")),
            snap.findings.with_columns(pl.lit("flag").alias("severity")),
        ]).select("severity", *REJECTED_SCHEMA.keys())
        if reports.height:
            with self._registered("__escrutinio_reports", reports.to_arrow()):
                self.con.execute("INSERT INTO row_reports SELECT ?, * FROM __escrutinio_reports",
                                 [sid])

    @contextmanager
    def _registered(self, name: str, table: pa.Table) -> Iterator[None]:
        self.con.register(name, table)
        try:
            yield
        finally:
            self.con.unregister(name)

    def _put_geography(self, contest_id: str, geo: pl.DataFrame) -> None:
        g = geo.select("code", "name", "level", "parent", "abroad", "alt_code").to_arrow()
        with self._registered("__escrutinio_geo", g):
            self.con.execute(
                "INSERT INTO geography SELECT ?, n.* FROM __escrutinio_geo n WHERE NOT EXISTS ("
                "SELECT 1 FROM geography g WHERE g.contest_id = ? "
                "AND g.code = n.code AND g.level = n.level)", [contest_id, contest_id]
            )

    # -- reading -------------------------------------------------------------------------
    def list_snapshots(self, contest_id: str | None = None,
                       kind: SnapshotKind | None = None) -> list[SnapshotInfo]:
        where, args = [], []
        if contest_id:
            where.append("contest_id = ?")
            args.append(contest_id)
        if kind:
            where.append("kind = ?")
            args.append(kind.value)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        rows = self.con.execute(
            f"SELECT {_SNAPSHOT_COLS} FROM snapshots {clause} ORDER BY as_of, label", args
        ).fetchall()
        out = []
        for r in rows:
            as_of = r[4] if r[4].tzinfo else r[4].replace(tzinfo=UTC)
            ing = r[13] if r[13].tzinfo else r[13].replace(tzinfo=UTC)
            out.append(SnapshotInfo(r[0], r[1], SnapshotKind(r[2]), r[3], as_of.astimezone(UTC),
                                    r[5], r[6], r[7], r[8], r[9], int(r[10]), int(r[11]),
                                    int(r[12]), ing.astimezone(UTC), r[14]))
        return out

    def snapshot_metadata(self, contest_id: str) -> dict[str, dict[str, str]]:
        rows = self.con.execute(
            "SELECT snapshot_id, metadata FROM snapshots WHERE contest_id = ? "
            "ORDER BY as_of, label", [contest_id]).fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    def contest(self, contest_id: str) -> Contest:
        row = self._one("SELECT definition FROM contests WHERE contest_id = ?",
                               [contest_id])
        if row is None:
            raise NotFoundError(f"contienda desconocida: {contest_id}",
                                f"unknown contest: {contest_id}")
        return Contest.from_dict(json.loads(row[0]))

    def contests(self) -> list[Contest]:
        rows = self.con.execute("SELECT definition FROM contests ORDER BY contest_id").fetchall()
        return [Contest.from_dict(json.loads(r[0])) for r in rows]

    def _contest_of(self, snapshot_id: str) -> Contest:
        row = self._one("SELECT contest_id FROM snapshots WHERE snapshot_id = ?",
                               [snapshot_id])
        if row is None:
            raise NotFoundError(f"instantánea desconocida: {snapshot_id}",
                                f"unknown snapshot: {snapshot_id}")
        return self.contest(row[0])

    def _load(self, table: str, base: dict[str, pl.DataType], snapshot_id: str) -> pl.DataFrame:
        key = (table, snapshot_id)
        cached = self._frames.get(key)
        if cached is not None:
            self._frames.move_to_end(key)
            return cached.clone()  # a clone shares the data; the caller may rename freely
        frame = self._read(table, base, snapshot_id)
        self._frames[key] = frame
        while len(self._frames) > FRAME_CACHE_SIZE:
            self._frames.popitem(last=False)
        return frame.clone()

    def _read(self, table: str, base: dict[str, pl.DataType], snapshot_id: str) -> pl.DataFrame:
        contest = self._contest_of(snapshot_id)
        cols = ", ".join(_q(c) for c in base)
        # actas are stored in acta_id order and come back in storage order (checked
        # below: sorting a million ids in the query costs more than the rest of it)
        order = "" if table == "actas" else " ORDER BY level, unit_code"
        cand = contest.candidate_columns
        # DuckDB takes the candidates out of the votes list (1-based; NULL past the end):
        # cheaper than moving a list column through Arrow and splitting it in polars
        votes = "".join(f", votes[{i + 1}] AS {_q(c)}" for i, c in enumerate(cand))
        df = pl.from_arrow(self.con.sql(
            f"SELECT {cols}{votes} FROM {table} WHERE snapshot_id = ?{order}",
            params=[snapshot_id]).to_arrow_table())
        assert isinstance(df, pl.DataFrame)
        if df.height == 0:
            return pl.DataFrame(schema=dict(base) | {c: pl.Int64() for c in cand})
        if table == "actas" and not df["acta_id"].is_sorted():
            df = df.sort("acta_id")  # stored by an older version, or reordered by DuckDB
        # one chunk per column: DuckDB hands over many small batches, and every later
        # group_by on a frame in thousands of pieces is several times slower
        return df.cast(dict(base) | {c: pl.Int64() for c in cand}).rechunk()

    def load_actas(self, snapshot_id: str) -> pl.DataFrame:
        return self._load("actas", ACTA_COLUMNS, snapshot_id)

    def load_units(self, snapshot_id: str) -> pl.DataFrame:
        return self._load("units", UNIT_COLUMNS, snapshot_id)

    def load_row_reports(self, snapshot_id: str) -> pl.DataFrame:
        cols = ", ".join(["severity", *REJECTED_SCHEMA.keys()])
        df = pl.from_arrow(self.con.sql(
            f"SELECT {cols} FROM row_reports WHERE snapshot_id = ? ORDER BY line",
            params=[snapshot_id]).to_arrow_table())
        assert isinstance(df, pl.DataFrame)
        return df

    def geography(self, contest_id: str) -> pl.DataFrame:
        cached = self._geography.get(contest_id)
        if cached is None:  # emptied by every write through this store
            df = pl.from_arrow(self.con.sql(
                "SELECT code, name, level, parent, abroad, alt_code FROM geography "
                "WHERE contest_id = ? ORDER BY level, code", params=[contest_id]
            ).to_arrow_table())
            assert isinstance(df, pl.DataFrame)
            cached = self._geography[contest_id] = df
        return cached.clone()
