"""DuckDB store: one file, embedded, the default.

Writes go through one transaction per ingest (all snapshots of a command or none).
Frames move in and out as Arrow C streams (no pyarrow), so no Python loop touches the rows.

**Read while writing** (docs/store.md). DuckDB lets one process hold a file read-write,
or any number of processes hold it read-only, never both. So a store holds the file only
while it uses it: the connection is opened on first use (and again after a release),
waiting with a bounded backoff while another process holds a conflicting lock; with
``lease`` set (``serve``, ``watch``) it is released after ``lease`` seconds without use
(and at the latest after :data:`MAX_HOLD` seconds of continuous use, between two calls,
never inside a transaction), so that readers (``status``, ``snapshots``, ``serve``)
get in between the writer's short transactions and a writer gets in between the
readers' requests. A process that has to wait leaves a marker file (``<db>.write-wait``
or ``<db>.read-wait``) that the others respect (for a bounded time) before they open again
and that makes a leased holder release at its next pause, so neither a steady stream of
reads nor a busy writer can starve the other side. When the wait exceeds
``lock_timeout`` (``ESCRUTINIO_LOCK_TIMEOUT``, default 60 s) the store raises
:class:`StoreBusyError` (exit 2, a message naming the file and the process that holds
it), never a raw lock error. Each thread works on its own cursor of the one connection,
so ``serve --watch`` shares one store between the watcher and the server.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import duckdb
import polars as pl

from escrutinio import __version__
from escrutinio.domain import ACTA_COLUMNS, UNIT_COLUMNS, VOTE_TYPE, Contest, SnapshotKind
from escrutinio.errors import (
    ContestConflictError,
    EscrutinioError,
    NotFoundError,
    UnknownReferenceError,
)
from escrutinio.sources.base import REJECTED_SCHEMA, ParsedSnapshot
from escrutinio.store.base import IngestOutcome, SnapshotInfo, Store
from escrutinio.store.frontier_repo import DuckDBFrontierRepo
from escrutinio.store.rawlog_repo import DuckDBRawLogRepo

if TYPE_CHECKING:  # imported when used: a reader's start-up needs neither
    from escrutinio.store.audit_repo import DuckDBAuditRepository
    from escrutinio.store.migration_repo import DuckDBMigrations

#: loaded snapshot frames kept per store object (snapshots never change once stored)
FRAME_CACHE_SIZE = 2
#: seconds a process waits for another one's lock on the file before giving up
DEFAULT_LOCK_TIMEOUT: Final = 60.0
LOCK_TIMEOUT_ENV: Final = "ESCRUTINIO_LOCK_TIMEOUT"
#: idle seconds after which a long-running process (``serve``, ``watch``) releases the file
DEFAULT_LEASE: Final = 0.5
#: a leased connection is released after this many seconds of continuous use (between
#: two calls), so that a waiting writer or reader gets its turn
MAX_HOLD: Final = 2.0
#: quiet time after a call before a forced release (its caller may still be fetching)
GRACE_S: Final = 0.2
#: a wait marker older than this is stale (its process died while waiting)
MARKER_STALE_S: Final = 5.0
#: the longest a process lets others waiting for the file go first before it opens
TURN_S: Final = 1.0

#: rows per row group in the store's file (DuckDB's default: 122,880). DuckDB writes a row
#: group to the file, compressed, as soon as an INSERT fills it (its "optimistic writes"),
#: while the rows that fill no group wait for the COMMIT, which then checkpoints them. At
#: the default size a snapshot of fewer than 122,880 rows (the 86,488 actas of Peru 2021)
#: was compressed and written by the COMMIT, single-threaded, after the ledger's hashing;
#: at 32,768 most of that work is done by the INSERT, while the leaves are hashed. Same
#: rows; the same file size for that one file, +2% for the 69-snapshot 2021 runoff bundle
#: (61,440 left 21 free blocks in that bundle's file: +28%; tests/test_store.py).
ROW_GROUP_SIZE: Final = 32_768
#: the name of the store's file on its connection (``ATTACH ... AS``, then ``USE``)
CATALOG: Final = "escrutinio_store"

_SNAPSHOT_COLS = ("snapshot_id, contest_id, kind, level, as_of, source_uri, source_sha256, "
                  "part, parser, label, n_rows, n_rejected, n_findings, ingested_at, "
                  "escrutinio_version")


def _q(col: str) -> str:
    return f'"{col}"'


class _ArrowStream:
    """A polars frame seen by DuckDB through the Arrow C stream interface only, so that
    neither side goes through pyarrow (whose import, ~0.1 s with numpy, is most of what
    a write would otherwise add to a command's start-up). Each scan gets a new stream."""

    __slots__ = ("frame",)

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self.frame.__arrow_c_stream__(requested_schema)


def _frame(relation: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """A query's result as a polars frame, through the Arrow C stream interface (no
    pyarrow; polars takes DuckDB's Arrow batches without copying them)."""
    return pl.DataFrame(relation)


class StoreBusyError(EscrutinioError):
    """Another process held the DuckDB file longer than the lock timeout."""

    exit_code = 2
    http_status = 503  # the web layer: try again later


def connect(path: str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckDB file at ``path`` (``:memory:``: a database in memory).
    The file is attached (``ATTACH``, which takes the row group size when writing:
    :data:`ROW_GROUP_SIZE`) and made the connection's default catalog; the errors (a lock
    held by another process, a missing or foreign file) are those of ``duckdb.connect``."""
    if path == ":memory:":
        return duckdb.connect(path, read_only=read_only)
    con = duckdb.connect()
    try:
        mode = "READ_ONLY" if read_only else f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}"
        con.execute(f"ATTACH '{path.replace(chr(39), chr(39) * 2)}' AS {CATALOG} ({mode})")
        con.execute(f"USE {CATALOG}")
    except BaseException:
        con.close()
        raise
    return con


def is_lock_conflict(exc: BaseException) -> bool:
    """A DuckDB error saying another process holds a conflicting lock on the file."""
    msg = str(exc)
    return isinstance(exc, duckdb.Error) and ("Could not set lock" in msg
                                              or "Conflicting lock" in msg)


def lock_timeout_default() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_LOCK_TIMEOUT
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT


def _held(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a store method with the connection held for its whole duration (a query and
    the fetch of its result are never split by a release)."""
    import functools

    @functools.wraps(fn)
    def wrapper(self: DuckDBStore, *args: Any, **kwargs: Any) -> Any:
        with self._use():
            return fn(self, *args, **kwargs)

    return wrapper


class LeasedConnection:
    """What :attr:`DuckDBStore.con` is: a connection-like object that opens the file on
    demand (see the module docstring) and hands each thread its own cursor. It answers
    ``execute``, ``sql``, ``register``, ``unregister``, ``cursor`` and ``close`` like a
    ``duckdb.DuckDBPyConnection``; anything else is passed to the thread's cursor."""

    def __init__(self, store: DuckDBStore) -> None:
        self._store = store

    def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        st = self._store
        sql = args[0] if name == "execute" and args and isinstance(args[0], str) else None
        if sql is not None:
            st._begin_statement(sql)
        try:
            with st._use() as cur:
                out = getattr(cur, name)(*args, **kwargs)
        except BaseException:
            if sql is not None:
                st._end_statement(sql, failed=True)
            raise
        if sql is not None:
            st._end_statement(sql, failed=False)
        return out

    def execute(self, query: str, parameters: Any = None) -> Any:
        if parameters is None:
            return self._run("execute", query)
        return self._run("execute", query, parameters)

    def sql(self, query: str, *, params: Any = None) -> Any:
        return self._run("sql", query, params=params)

    def register(self, name: str, obj: Any) -> Any:
        return self._run("register", name, obj)

    def unregister(self, name: str) -> Any:
        return self._run("unregister", name)

    def cursor(self) -> Any:
        return self._store._session(self._run("cursor"))

    def close(self) -> None:
        self._store.release()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store._cursor(), name)


class DuckDBStore(Store):
    def __init__(self, path: str | Path = "escrutinio.duckdb", *, read_only: bool = False,
                 lease: float | None = None, lock_timeout: float | None = None) -> None:
        self.path = str(path)
        self.read_only = read_only
        self.memory = self.path == ":memory:"
        if not self.memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.lease = None if self.memory else lease
        self.lock_timeout = lock_timeout_default() if lock_timeout is None else lock_timeout
        # snapshots are immutable, so a frame once loaded stays right: keep the last few
        # (a server asked for several levels of the same snapshot reads it once)
        self._frames: OrderedDict[tuple[str, str], pl.DataFrame] = OrderedDict()
        self._geography: dict[str, pl.DataFrame] = {}
        self._unit_types = False  # the units table has vote_type (known once seen)
        self._guard = threading.RLock()
        self._tx_lock = threading.RLock()
        self._root: duckdb.DuckDBPyConnection | None = None
        self._cursors: dict[int, duckdb.DuckDBPyConnection] = {}
        self._in_tx: set[int] = set()
        self._active = 0
        self._opened_at = self._last_use = 0.0
        self._migrated = read_only
        self.baselined = False  # opened a store from before versioned migrations
        self.migrated_now: list[int] = []  # migrations this store applied when it opened
        self._closed = False
        self.n_opens = 0  # how many times the file was opened (tests, diagnostics)
        self.con = LeasedConnection(self)
        self._open()  # the file exists (and is migrated) from the start, as before
        self._releaser: threading.Thread | None = None
        if lease is not None:
            self.start_lease(lease)

    def start_lease(self, seconds: float) -> None:
        """From now on, release the file after ``seconds`` without use (long-running
        processes: ``serve``, ``watch``); a store in memory is never released."""
        if self.memory:
            return
        self.lease = seconds
        if self._releaser is None:
            self._releaser = threading.Thread(target=self._release_idle, daemon=True,
                                              name=f"duckdb-lease:{Path(self.path).name}")
            self._releaser.start()

    # -- the connection lease ------------------------------------------------------------
    def _marker(self, role: str) -> Path:
        return Path(f"{self.path}.{role}-wait")

    @property
    def marker(self) -> Path:
        """The marker this store leaves while it waits for the file."""
        return self._marker("read" if self.read_only else "write")

    def _waiting(self, role: str) -> bool:
        try:
            return time.time() - self._marker(role).stat().st_mtime < MARKER_STALE_S
        except OSError:
            return False

    def _others_waiting(self) -> bool:
        """Someone this store's hold blocks is waiting: a writer (always), or a reader
        (when this store writes)."""
        return self._waiting("write") or (not self.read_only and self._waiting("read"))

    def _writer_waiting(self) -> bool:
        return self._waiting("write")

    def _open(self) -> duckdb.DuckDBPyConnection:
        """The root connection, opening the file if needed (with the bounded wait).

        Turn taking between processes: a store that finds the file held leaves a marker
        (``<db>.read-wait`` / ``<db>.write-wait``, touched on every retry); before it
        opens, a reader lets a waiting writer go first and a writer a waiting reader, each
        for at most :data:`TURN_S` (so neither side can starve the other), and a holder
        with a lease releases the file at its next pause when someone waits."""
        if self._root is not None:
            return self._root
        if self._closed:
            raise EscrutinioError("el almacén está cerrado", "the store is closed")
        start = time.monotonic()
        deadline = start + self.lock_timeout
        delay = 0.01
        marked = False
        last: BaseException | None = None
        other = "write" if self.read_only else "read"
        try:
            while True:
                if not self.memory and self._waiting(other) \
                        and time.monotonic() - start < TURN_S:
                    time.sleep(0.02)  # someone blocked by us is waiting: their turn first
                    continue
                try:
                    root = connect(self.path, read_only=self.read_only)
                    break
                except duckdb.Error as exc:
                    if not is_lock_conflict(exc):
                        raise
                    last = exc
                self.marker.touch()
                marked = True
                if time.monotonic() >= deadline:
                    raise self._busy(last)
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        finally:
            if marked:
                self.marker.unlink(missing_ok=True)
        root.execute("SET TimeZone='UTC'")
        self._root = root
        self._opened_at = time.monotonic()
        self.n_opens += 1
        self._geography.clear()  # another process may have added units meanwhile
        if not self._migrated:
            self._migrated = True
            self._migrate(root)
        return root

    def _busy(self, exc: BaseException | None) -> StoreBusyError:
        m = re.search(r"PID (\d+)", str(exc or ""))
        who_es = f" (proceso {m.group(1)})" if m else ""
        who_en = f" (process {m.group(1)})" if m else ""
        mode_es, mode_en = (("leer", "read") if self.read_only else ("escribir", "write"))
        return StoreBusyError(
            f"el almacén {self.path} está ocupado por otro proceso{who_es} que no lo liberó "
            f"en {self.lock_timeout:g} s; no se pudo {mode_es}. Vuelva a intentarlo, o suba "
            f"{LOCK_TIMEOUT_ENV} (segundos)",
            f"the store {self.path} is held by another process{who_en} that did not free it "
            f"within {self.lock_timeout:g} s; could not {mode_en}. Try again, or raise "
            f"{LOCK_TIMEOUT_ENV} (seconds)")

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the (re)opened connection."""
        with self._guard:
            root = self._open()
            tid = threading.get_ident()
            cur = self._cursors.get(tid)
            if cur is None:
                cur = self._session(root.cursor())
                self._cursors[tid] = cur
            return cur

    def _session(self, cur: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """A new cursor set up like the root connection: UTC, the store's catalog."""
        cur.execute("SET TimeZone='UTC'")
        if not self.memory:
            cur.execute(f"USE {CATALOG}")
        return cur

    @contextmanager
    def _use(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._guard:
            cur = self._cursor()
            self._active += 1
        try:
            yield cur
        finally:
            with self._guard:
                self._active -= 1
                self._last_use = time.monotonic()

    # One writer at a time inside the process: a transaction holds ``_tx_lock`` from BEGIN
    # to COMMIT/ROLLBACK, and a statement of another thread waits for it (DuckDB would
    # otherwise answer a write-write conflict between the watcher and the server of
    # ``serve --watch``). Reentrant: the transaction's own statements pass.
    def _begin_statement(self, sql: str) -> None:
        self._tx_lock.acquire()
        if sql.lstrip()[:5].upper() == "BEGIN":
            with self._guard:
                self._in_tx.add(threading.get_ident())
            self._tx_lock.acquire()  # held until the transaction ends

    def _end_statement(self, sql: str, *, failed: bool) -> None:
        word = sql.lstrip()[:8].upper()
        tid = threading.get_ident()
        if word.startswith("BEGIN") and failed:
            with self._guard:
                self._in_tx.discard(tid)
            self._tx_lock.release()
        elif word.startswith(("COMMIT", "ROLLBACK", "ABORT", "END")) and tid in self._in_tx:
            # a failed COMMIT ends the transaction too (DuckDB rolls it back)
            with self._guard:
                self._in_tx.discard(tid)
            self._tx_lock.release()
        self._tx_lock.release()

    def release(self) -> bool:
        """Close the connection now unless it is in use or inside a transaction (the next
        use opens it again). True when released."""
        with self._guard:
            if self._root is None:
                return True
            if self._active or self._in_tx or self.memory:
                return False
            self._close_connection()
            return True

    def _close_connection(self) -> None:
        for cur in self._cursors.values():
            with suppress(duckdb.Error):
                cur.close()
        self._cursors.clear()
        root, self._root = self._root, None
        if root is not None:
            root.close()

    def _release_idle(self) -> None:
        assert self.lease is not None
        tick = min(0.1, max(self.lease / 2, 0.01))
        while not self._closed:
            assert self.lease is not None
            time.sleep(tick)
            if self._root is None or not self._guard.acquire(blocking=False):
                continue
            try:
                now = time.monotonic()
                quiet = now - self._last_use
                idle = quiet >= self.lease
                # a long hold or a waiting writer: release in the next gap between calls
                # (a caller may still be fetching the result of its last call: GRACE)
                turn = quiet >= GRACE_S and (now - self._opened_at >= MAX_HOLD
                                             or self._others_waiting())
                if self._root is not None and (idle or turn):
                    self.release()
            finally:
                self._guard.release()

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        """Apply the pending migrations (store/migration_repo.py); a store from before
        versioned migrations is baselined on the way (``baselined``)."""
        from escrutinio.store.migration_repo import DuckDBMigrations

        repo = DuckDBMigrations(con)
        self.migrated_now = repo.migrate()
        self.baselined = repo.baselined

    @property
    def audits(self) -> DuckDBAuditRepository:
        """The audit workflow's record (store/audit_repo.py)."""
        from escrutinio.store.audit_repo import DuckDBAuditRepository

        return DuckDBAuditRepository(self)

    @property
    def migrations(self) -> DuckDBMigrations:
        """The schema's version record (store/migration_repo.py), on this thread's
        cursor (the store's connection stays held only while a query runs)."""
        from escrutinio.store.migration_repo import DuckDBMigrations

        return DuckDBMigrations(self.con)

    def schema_versions(self) -> list[int]:
        return self.migrations.versions()

    @_held
    def _one(self, sql: str, params: list[object] | None = None) -> tuple[object, ...] | None:
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0] if rows else None

    def close(self) -> None:
        self._frames.clear()
        self._geography.clear()
        with self._guard:
            self._closed = True
            self._close_connection()

    @_held
    def catalog_epoch(self) -> tuple[int, str]:
        """What changes whenever a snapshot or contest is stored (a following server
        reloads its catalogue when this moves): counts and the newest ingest time."""
        row = self._one("SELECT (SELECT count(*) FROM snapshots), "
                        "(SELECT count(*) FROM contests), "
                        "(SELECT CAST(max(ingested_at) AS VARCHAR) FROM snapshots)")
        assert row is not None
        return (int(row[0]) * 1_000_003 + int(row[1]), str(row[2]))  # type: ignore[call-overload]

    # -- writing -------------------------------------------------------------------------
    @_held
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
                con.execute(
                    f"INSERT INTO snapshots ({_SNAPSHOT_COLS}, metadata) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            con.execute("COMMIT")
        except BaseException:
            with suppress(duckdb.Error):  # a failed COMMIT has already rolled back
                con.execute("ROLLBACK")
            raise
        return outcomes

    def _put_contest(self, contest: Contest, source: str = "?") -> None:
        row = self._one("SELECT definition FROM contests WHERE contest_id = ?",
                               [contest.id])
        definition = json.dumps(contest.to_dict(), ensure_ascii=False, sort_keys=True)
        if row is None:
            self.con.execute("INSERT INTO contests VALUES (?, ?)", [contest.id, definition])
        elif json.loads(row[0]) != json.loads(definition):
            raise ContestConflictError(source, contest.id, json.loads(row[0]),
                                       json.loads(definition))

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
        # a unit published in one row per vote type keeps the type (migration 0006)
        typed = snap.kind is SnapshotKind.UNITS and VOTE_TYPE in frame.columns
        names = [*base, *([VOTE_TYPE] if typed else [])]
        rows = _ArrowStream(frame.select(*names, *cand))
        cols = ", ".join(_q(c) for c in names)
        votes = f"[{', '.join(_q(c) for c in cand)}]" if cand else "[]::BIGINT[]"
        with self._registered("__escrutinio_rows", rows):
            self.con.execute(f"INSERT INTO {table} (snapshot_id, {cols}, votes) "
                             f"SELECT ?, {cols}, {votes} FROM __escrutinio_rows", [sid])
        reports = pl.concat([
            snap.rejected.with_columns(pl.lit("reject").alias("severity")),
            snap.findings.with_columns(pl.lit("flag").alias("severity")),
        ]).select("severity", *REJECTED_SCHEMA.keys())
        if reports.height:
            with self._registered("__escrutinio_reports", _ArrowStream(reports)):
                self.con.execute("INSERT INTO row_reports SELECT ?, * FROM __escrutinio_reports",
                                 [sid])

    @contextmanager
    def _registered(self, name: str, table: _ArrowStream) -> Iterator[None]:
        self.con.register(name, table)
        try:
            yield
        finally:
            self.con.unregister(name)

    def _put_geography(self, contest_id: str, geo: pl.DataFrame) -> None:
        g = _ArrowStream(geo.select("code", "name", "level", "parent", "abroad", "alt_code"))
        with self._registered("__escrutinio_geo", g):
            self.con.execute(
                "INSERT INTO geography SELECT ?, n.* FROM __escrutinio_geo n WHERE NOT EXISTS ("
                "SELECT 1 FROM geography g WHERE g.contest_id = ? "
                "AND g.code = n.code AND g.level = n.level)", [contest_id, contest_id]
            )

    # -- reading -------------------------------------------------------------------------
    @_held
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

    @property
    def live_rawlog(self) -> DuckDBRawLogRepo:
        return DuckDBRawLogRepo(self.con)

    @property
    def live_frontier(self) -> DuckDBFrontierRepo:
        return DuckDBFrontierRepo(self.con)

    @_held
    def snapshot_metadata(self, contest_id: str) -> dict[str, dict[str, str]]:
        rows = self.con.execute(
            "SELECT snapshot_id, metadata FROM snapshots WHERE contest_id = ? "
            "ORDER BY as_of, label", [contest_id]).fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    @_held
    def contest(self, contest_id: str) -> Contest:
        row = self._one("SELECT definition FROM contests WHERE contest_id = ?",
                               [contest_id])
        if row is None:
            known = ", ".join(c.id for c in self.contests()) or "—"
            raise UnknownReferenceError(
                f"contienda desconocida: {contest_id!r}; las del almacén: {known}",
                f"unknown contest: {contest_id!r}; the store holds: {known}")
        return Contest.from_dict(json.loads(row[0]))

    @_held
    def contests(self) -> list[Contest]:
        rows = self.con.execute("SELECT definition FROM contests ORDER BY contest_id").fetchall()
        return [Contest.from_dict(json.loads(r[0])) for r in rows]

    @_held
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

    @_held
    def _read(self, table: str, base: dict[str, pl.DataType], snapshot_id: str) -> pl.DataFrame:
        contest = self._contest_of(snapshot_id)
        cols = ", ".join(_q(c) for c in base)
        # actas are stored in acta_id order and come back in storage order (checked
        # below: sorting a million ids in the query costs more than the rest of it)
        order = "" if table == "actas" else " ORDER BY level, unit_code, vote_type NULLS FIRST"
        typed = table == "units" and self._has_unit_types()
        if not typed:  # a store not migrated to 0006 (opened read-only): no types
            order = order.replace(", vote_type NULLS FIRST", "")
        cand = contest.candidate_columns
        # DuckDB takes the candidates out of the votes list (1-based; NULL past the end):
        # cheaper than moving a list column through Arrow and splitting it in polars
        votes = "".join(f", votes[{i + 1}] AS {_q(c)}" for i, c in enumerate(cand))
        vt = f", NULLIF({VOTE_TYPE}, '') AS {VOTE_TYPE}" if typed else ""
        df = _frame(self.con.sql(
            f"SELECT {cols}{votes}{vt} FROM {table} WHERE snapshot_id = ?{order}",
            params=[snapshot_id]))
        assert isinstance(df, pl.DataFrame)
        if df.height == 0:
            return pl.DataFrame(schema=dict(base) | {c: pl.Int64() for c in cand})
        if table == "actas" and not df["acta_id"].is_sorted():
            df = df.sort("acta_id")  # stored by an older version, or reordered by DuckDB
        if typed and df[VOTE_TYPE].null_count() == df.height:
            df = df.drop(VOTE_TYPE)  # no row of a type: the canonical unit frame
        # one chunk per column: DuckDB hands over many small batches, and every later
        # group_by on a frame in thousands of pieces is several times slower
        schema = dict(base) | {c: pl.Int64() for c in cand}
        return df.cast(schema | ({VOTE_TYPE: pl.String()} if VOTE_TYPE in df.columns
                                 else {})).rechunk()

    def _has_unit_types(self) -> bool:
        """The units table has the ``vote_type`` column (migration 0006). A store opened
        read-only is not migrated: an older one lacks it, and holds no types."""
        if not self._unit_types:
            self._unit_types = bool(self._one(
                "SELECT 1 FROM duckdb_columns() WHERE table_name = 'units' AND column_name = ? "
                "AND schema_name = current_schema()", [VOTE_TYPE]))
        return self._unit_types

    def load_actas(self, snapshot_id: str) -> pl.DataFrame:
        return self._load("actas", ACTA_COLUMNS, snapshot_id)

    def load_units(self, snapshot_id: str) -> pl.DataFrame:
        return self._load("units", UNIT_COLUMNS, snapshot_id)

    @_held
    def acta_history(self, contest_id: str, acta_ids: list[str]) -> pl.DataFrame:
        """One query: the rows of ``acta_ids`` in every per-acta snapshot of the contest."""
        cand = self.contest(contest_id).candidate_columns
        cols = ", ".join(f"a.{_q(c)}" for c in ACTA_COLUMNS)
        votes = "".join(f", a.votes[{i + 1}] AS {_q(c)}" for i, c in enumerate(cand))
        df = _frame(self.con.sql(
            f"SELECT a.snapshot_id, {cols}{votes} FROM actas a JOIN snapshots s USING "
            "(snapshot_id) WHERE s.contest_id = ? AND s.kind = 'actas' AND "
            "list_contains(?, a.acta_id) ORDER BY s.as_of, s.label, a.acta_id",
            params=[contest_id, list(acta_ids)]))
        assert isinstance(df, pl.DataFrame)
        schema = {"snapshot_id": pl.String(), **ACTA_COLUMNS, **{c: pl.Int64() for c in cand}}
        return pl.DataFrame(schema=schema) if df.height == 0 else df.cast(schema)

    @_held
    def acta_reports(self, contest_id: str, acta_ids: list[str]) -> pl.DataFrame:
        cols = ", ".join(f"r.{c}" for c in ["severity", *REJECTED_SCHEMA.keys()])
        df = _frame(self.con.sql(
            f"SELECT r.snapshot_id, {cols} FROM row_reports r JOIN snapshots s USING "
            "(snapshot_id) WHERE s.contest_id = ? AND list_contains(?, r.acta_id) "
            "ORDER BY s.as_of, s.label, r.line",
            params=[contest_id, list(acta_ids)]))
        assert isinstance(df, pl.DataFrame)
        schema = {"snapshot_id": pl.String(), "severity": pl.String(), **REJECTED_SCHEMA}
        # polars types cast() with an invariant key union, so a dict[str, DataType] is refused
        # although it is accepted at run time (pola-rs/polars#14468)
        return (pl.DataFrame(schema=schema) if df.height == 0
                else df.cast(schema))  # type: ignore[arg-type]

    @_held
    def load_row_reports(self, snapshot_id: str) -> pl.DataFrame:
        cols = ", ".join(["severity", *REJECTED_SCHEMA.keys()])
        df = _frame(self.con.sql(
            f"SELECT {cols} FROM row_reports WHERE snapshot_id = ? ORDER BY line",
            params=[snapshot_id]))
        assert isinstance(df, pl.DataFrame)
        return df

    @_held
    def geography(self, contest_id: str) -> pl.DataFrame:
        cached = self._geography.get(contest_id)
        if cached is None:  # emptied by every write through this store
            df = _frame(self.con.sql(
                "SELECT code, name, level, parent, abroad, alt_code FROM geography "
                "WHERE contest_id = ? ORDER BY level, code", params=[contest_id]
            ))
            assert isinstance(df, pl.DataFrame)
            cached = self._geography[contest_id] = df
        return cached.clone()
