"""The live crawl's frontier in the store (:class:`escrutinio.live.crawl.Frontier` keeps
it in memory and hands the changed rows here): one row per item — meta, geography,
geography tasks, districts, actas — keyed by ``(contest_id, kind, key)``, its state as
JSON text.

One interface, :class:`FrontierRepo`, one implementation per backend; each backend's DDL
is ONE constant (:data:`DUCKDB_DDL`, :data:`POSTGRES_DDL`), created idempotently by
:meth:`FrontierRepo.ensure_schema`. A save is one transaction (all rows or none); a row
saved again replaces the previous state of its item.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from escrutinio.store.migration_repo import migration_sql

if TYPE_CHECKING:
    import psycopg

    from escrutinio.store.duckdb_store import LeasedConnection

#: the frontier's table: migration 0005 (one file for both databases), also run by a writer
#: that finds it missing (idempotent)
DUCKDB_DDL: Final = migration_sql("0005_live_crawl.sql")
POSTGRES_DDL: Final = DUCKDB_DDL

#: one saved item: (kind, key, state as JSON text)
FrontierRow = tuple[str, str, str]


class FrontierRepo(ABC):
    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the table if it is missing (idempotent)."""

    @abstractmethod
    def load(self, contest_id: str) -> list[FrontierRow]:
        """Every saved item of ``contest_id``."""

    @abstractmethod
    def save(self, contest_id: str, rows: list[FrontierRow], updated_at: datetime) -> None:
        """Insert or replace ``rows`` in one transaction."""


class DuckDBFrontierRepo(FrontierRepo):
    def __init__(self, con: LeasedConnection) -> None:
        self.con = con

    def ensure_schema(self) -> None:
        self.con.execute(DUCKDB_DDL)

    def load(self, contest_id: str) -> list[FrontierRow]:
        rows = self.con.execute("SELECT kind, key, state FROM live_crawl WHERE contest_id = ?",
                                [contest_id]).fetchall()
        return [(str(k), str(key), str(s)) for k, key, s in rows]

    def save(self, contest_id: str, rows: list[FrontierRow], updated_at: datetime) -> None:
        import pyarrow as pa

        schema = pa.schema([("contest_id", pa.string()), ("kind", pa.string()),
                            ("key", pa.string()), ("state", pa.string()),
                            ("updated_at", pa.timestamp("us", tz="UTC"))])
        table = pa.table({"contest_id": [contest_id] * len(rows),
                          "kind": [r[0] for r in rows], "key": [r[1] for r in rows],
                          "state": [r[2] for r in rows],
                          "updated_at": [updated_at] * len(rows)}, schema=schema)
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("__live_crawl", table)
            con.execute("INSERT OR REPLACE INTO live_crawl SELECT * FROM __live_crawl")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            with contextlib.suppress(Exception):
                con.unregister("__live_crawl")


class PostgresFrontierRepo(FrontierRepo):
    """``con``: a callable returning the store's live (autocommit) connection."""

    def __init__(self, con: Any) -> None:
        self._con = con

    @property
    def con(self) -> psycopg.Connection[Any]:
        return self._con()  # type: ignore[no-any-return]

    def ensure_schema(self) -> None:
        # checked first: CREATE ... IF NOT EXISTS needs the right to create tables even
        # when the table exists
        row = self.con.execute("SELECT to_regclass('live_crawl')").fetchone()
        if row is None or row[0] is None:
            self.con.execute(POSTGRES_DDL)  # type: ignore[arg-type]

    def load(self, contest_id: str) -> list[FrontierRow]:
        rows = self.con.execute("SELECT kind, key, state FROM live_crawl "
                                "WHERE contest_id = %s", [contest_id]).fetchall()
        return [(str(k), str(key), str(s)) for k, key, s in rows]

    def save(self, contest_id: str, rows: list[FrontierRow], updated_at: datetime) -> None:
        con = self.con
        with con.transaction(), con.cursor() as cur:
            cur.executemany(
                "INSERT INTO live_crawl (contest_id, kind, key, state, updated_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (contest_id, kind, key) DO UPDATE "
                "SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
                [(contest_id, k, key, s, updated_at) for k, key, s in rows])


__all__ = ["DUCKDB_DDL", "POSTGRES_DDL", "DuckDBFrontierRepo", "FrontierRepo", "FrontierRow",
           "PostgresFrontierRepo"]
