"""The live follower's raw log in the store: every response, each body once, and the
watcher's structured events (:mod:`escrutinio.live.rawlog` buffers; this writes and reads).

One interface, :class:`RawLogRepo`, one implementation per backend. The tables are the
store's own but kept out of its snapshot schema; each backend's DDL is ONE constant below
(:data:`DUCKDB_DDL`, :data:`POSTGRES_DDL`), created idempotently (``CREATE TABLE IF NOT
EXISTS``) when a writer first uses the repository — ready to be folded into the versioned
migrations:

* ``live_bodies(sha256 PRIMARY KEY, size, body)`` — each distinct body once;
* ``live_responses`` — one row per HTTP exchange, retries included;
* ``live_events`` — the watcher's log: acceptances, rejections, corrections, alarms...

A flush is one transaction: all of its rows or none.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Final

from escrutinio.store.migration_repo import migration_sql

if TYPE_CHECKING:
    import psycopg

    from escrutinio.store.duckdb_store import LeasedConnection

#: the columns of ``live_responses`` / ``live_events``, in table order
RESPONSE_COLUMNS: Final = ("seq", "run_id", "cycle", "fetched_at", "url", "scope", "endpoint",
                           "attempt", "status", "headers", "sha256", "size", "elapsed_ms",
                           "error", "outcome", "reason")
EVENT_COLUMNS: Final = ("seq", "run_id", "ts", "level", "kind", "scope", "message_es",
                        "message_en", "detail")

#: the raw log's tables: migration 0004 (one file for both databases), also run by a writer
#: that finds them missing (idempotent)
DUCKDB_DDL: Final = migration_sql("0004_live_raw_log.sql")
POSTGRES_DDL: Final = DUCKDB_DDL

_TABLE: Final = {"responses": "live_responses", "events": "live_events"}


class RawLogRepo(ABC):
    """Rows in, rows out; the caller (:class:`escrutinio.live.rawlog.RawLog`) builds and
    interprets them. Response rows are tuples in :data:`RESPONSE_COLUMNS` order, event
    rows in :data:`EVENT_COLUMNS` order."""

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the tables if they are missing (idempotent)."""

    @abstractmethod
    def has_log(self) -> bool:
        """Do the tables exist (a store never watched has none)?"""

    @abstractmethod
    def max_seq(self, which: str) -> int:
        """The highest ``seq`` of ``responses`` or ``events`` (0 when none)."""

    @abstractmethod
    def write(self, bodies: dict[str, bytes], responses: list[dict[str, Any]],
              events: list[dict[str, Any]]) -> None:
        """One transaction: the bodies not stored yet, every response and event row."""

    #: the driver's parameter placeholder
    MARK: str = "?"

    @abstractmethod
    def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one read (``MARK`` placeholders) and return its rows."""

    def responses(self, *, run_id: str | None = None, scope: str | None = None,
                  limit: int | None = None) -> list[tuple[Any, ...]]:
        """Response rows in ``seq`` order."""
        where, args = _where({"run_id": run_id, "scope": scope}, self.MARK)
        return self._rows(f"SELECT {', '.join(RESPONSE_COLUMNS)} FROM live_responses "
                          f"{where} ORDER BY seq {_limit(limit)}", args)

    def body(self, sha256: str) -> bytes | None:
        rows = self._rows(f"SELECT body FROM live_bodies WHERE sha256 = {self.MARK}",
                          [sha256])
        return bytes(rows[0][0]) if rows else None

    def events(self, *, kind: str | None = None) -> list[tuple[Any, ...]]:
        """Event rows in ``seq`` order."""
        where, args = _where({"kind": kind}, self.MARK)
        return self._rows(f"SELECT {', '.join(EVENT_COLUMNS)} FROM live_events {where} "
                          "ORDER BY seq", args)

    def outcome_counts(self, run_id: str | None = None) -> dict[str, int]:
        where, args = _where({"run_id": run_id}, self.MARK)
        rows = self._rows(f"SELECT outcome, count(*) FROM live_responses {where} "
                          "GROUP BY outcome", args)
        return {str(k): int(v) for k, v in rows}

    def run_ids(self) -> list[str]:
        """Every run that logged a response, sorted."""
        if not self.has_log():
            return []
        return [str(r[0]) for r in
                self._rows("SELECT DISTINCT run_id FROM live_responses ORDER BY 1")]


def _where(filters: dict[str, Any], mark: str) -> tuple[str, list[Any]]:
    """``WHERE a = ? AND b = ?`` over the filters that are set (column names are ours)."""
    used = {k: v for k, v in filters.items() if v}
    if not used:
        return "", []
    return "WHERE " + " AND ".join(f"{k} = {mark}" for k in used), list(used.values())


def _limit(limit: int | None) -> str:
    return f"LIMIT {int(limit)}" if limit else ""


class DuckDBRawLogRepo(RawLogRepo):
    """Through the store's :class:`~escrutinio.store.duckdb_store.LeasedConnection`: each
    statement (and each transaction) holds the file only while it runs."""

    def __init__(self, con: LeasedConnection) -> None:
        self.con = con

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        # fetchall: a half-read result would block the connection for the next query
        return list(self.con.execute(sql, params or []).fetchall())

    def ensure_schema(self) -> None:
        self.con.execute(DUCKDB_DDL)

    def _has(self, table: str) -> bool:
        rows = self._rows("SELECT count(*) FROM information_schema.tables "
                          "WHERE table_name = ?", [table])
        return bool(rows and rows[0][0])

    def has_log(self) -> bool:
        return self._has("live_responses")

    def max_seq(self, which: str) -> int:
        table = _TABLE[which]
        if not self._has(table):
            return 0
        rows = self._rows(f"SELECT coalesce(max(seq), 0) FROM {table}")
        return int(rows[0][0]) if rows else 0

    def write(self, bodies: dict[str, bytes], responses: list[dict[str, Any]],
              events: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        resp_schema = pa.schema([
            ("seq", pa.int64()), ("run_id", pa.string()), ("cycle", pa.int64()),
            ("fetched_at", pa.timestamp("us", tz="UTC")), ("url", pa.string()),
            ("scope", pa.string()), ("endpoint", pa.string()), ("attempt", pa.int32()),
            ("status", pa.int32()), ("headers", pa.string()), ("sha256", pa.string()),
            ("size", pa.int64()), ("elapsed_ms", pa.float64()), ("error", pa.string()),
            ("outcome", pa.string()), ("reason", pa.string())])
        event_schema = pa.schema([
            ("seq", pa.int64()), ("run_id", pa.string()), ("ts", pa.timestamp("us", tz="UTC")),
            ("level", pa.string()), ("kind", pa.string()), ("scope", pa.string()),
            ("message_es", pa.string()), ("message_en", pa.string()), ("detail", pa.string())])
        tables = {
            "__live_bodies": pa.table({"sha256": list(bodies),
                                       "size": [len(b) for b in bodies.values()],
                                       "body": pa.array(list(bodies.values()), pa.binary())}),
            "__live_resp": pa.Table.from_pylist(responses, schema=resp_schema),
            "__live_events": pa.Table.from_pylist(events, schema=event_schema),
        }
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            for name, table in tables.items():
                con.register(name, table)
            con.execute("INSERT INTO live_bodies SELECT b.sha256, b.size, b.body FROM "
                        "__live_bodies b WHERE NOT EXISTS (SELECT 1 FROM live_bodies x "
                        "WHERE x.sha256 = b.sha256)")
            con.execute("INSERT INTO live_responses SELECT * FROM __live_resp")
            con.execute("INSERT INTO live_events SELECT * FROM __live_events")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            for name in tables:
                with contextlib.suppress(Exception):
                    con.unregister(name)


class PostgresRawLogRepo(RawLogRepo):
    """On the store's (autocommit) connection; a write is one explicit transaction.
    ``con`` is a callable returning the live connection (the store replaces a broken
    one on next use)."""

    MARK = "%s"

    def __init__(self, con: Any) -> None:
        self._con = con

    @property
    def con(self) -> psycopg.Connection[Any]:
        return self._con()  # type: ignore[no-any-return]

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return list(self.con.execute(sql, params or []).fetchall())  # type: ignore[arg-type]

    def ensure_schema(self) -> None:
        if not self.has_log() or not self._exists("live_bodies") \
                or not self._exists("live_events"):
            self.con.execute(POSTGRES_DDL)  # type: ignore[arg-type]

    def _exists(self, table: str) -> bool:
        rows = self._rows("SELECT to_regclass(%s)", [table])
        return bool(rows and rows[0][0] is not None)

    def has_log(self) -> bool:
        return self._exists("live_responses")

    def max_seq(self, which: str) -> int:
        table = _TABLE[which]
        if not self._exists(table):
            return 0
        rows = self._rows(f"SELECT coalesce(max(seq), 0) FROM {table}")
        return int(rows[0][0]) if rows else 0

    def write(self, bodies: dict[str, bytes], responses: list[dict[str, Any]],
              events: list[dict[str, Any]]) -> None:
        con = self.con
        with con.transaction(), con.cursor() as cur:
            if bodies:
                cur.executemany(
                    "INSERT INTO live_bodies (sha256, size, body) VALUES (%s, %s, %s) "
                    "ON CONFLICT (sha256) DO NOTHING",
                    [(k, len(v), v) for k, v in bodies.items()])
            for table, cols, rows in (("live_responses", RESPONSE_COLUMNS, responses),
                                      ("live_events", EVENT_COLUMNS, events)):
                if not rows:
                    continue
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN"  # type: ignore[arg-type]
                              ) as copy:
                    for row in rows:
                        copy.write_row([row[c] for c in cols])



__all__ = ["DUCKDB_DDL", "EVENT_COLUMNS", "POSTGRES_DDL", "RESPONSE_COLUMNS",
           "DuckDBRawLogRepo", "PostgresRawLogRepo", "RawLogRepo"]
