"""What a server needs of its database besides the snapshots: connection options, the
"database unavailable" error, and the small queries of the catalogue epoch and the health
check (docs/deploy.md).

Used by the observer repository (:mod:`escrutinio.store.observers_repo`) and by the web
app's server mode (:mod:`escrutinio.api.resilience`), so that no SQL lives outside
``store/``. Nothing here imports psycopg unless it is installed (the "postgres" extra).
"""

from __future__ import annotations

import threading
from typing import Any, Final

from escrutinio.errors import EscrutinioError

try:  # psycopg is an optional dependency (the "postgres" extra)
    import psycopg

    DB_DOWN_ERRORS: tuple[type[Exception], ...] = (
        psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # pragma: no cover - DuckDB-only installs
    DB_DOWN_ERRORS = ()

#: seconds a client should wait before retrying while the database is unavailable
RETRY_AFTER: Final = 5
#: libpq parameters of every server connection: give up connecting after a few seconds,
#: and notice a peer that vanished (keepalives; unacknowledged data after 15 s)
CONNECT_OPTIONS: dict[str, Any] = {
    "connect_timeout": 3, "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3,
    "keepalives_count": 3, "tcp_user_timeout": 15_000, "application_name": "escrutinio-serve",
}

#: the catalogue epoch: how many snapshots and contests, the newest ingest, and whether the
#: ledger exists (then :data:`EPOCH_SQL_LEDGER` counts its logged roots instead)
EPOCH_SQL: Final = (
    "SELECT (SELECT count(*) FROM snapshots), (SELECT max(ingested_at) FROM snapshots),"
    " (SELECT count(*) FROM contests), to_regclass('ledger_leaves') IS NOT NULL")
EPOCH_SQL_LEDGER: Final = EPOCH_SQL.replace(
    "to_regclass('ledger_leaves') IS NOT NULL", "(SELECT count(*) FROM ledger_leaves)")
#: the newest applied migration (PostgreSQL)
SCHEMA_VERSION_SQL: Final = "SELECT max(version) FROM schema_migrations"
#: the last entry of the tamper-evident log: (seq, entry_hash)
LEDGER_HEAD_SQL: Final = ("SELECT seq, entry_hash FROM ledger_entries ORDER BY seq DESC "
                          "LIMIT 1")
_HAS_LEDGER_SQL: Final = ("SELECT table_name FROM information_schema.tables WHERE "
                          "table_name = 'ledger_entries'")


class DatabaseUnavailable(EscrutinioError):
    """The database cannot be reached (down, restarting, unreachable): answered 503."""

    exit_code = 4


def is_db_down(exc: BaseException) -> bool:
    return isinstance(exc, (DatabaseUnavailable, *DB_DOWN_ERRORS))


def unavailable(cause: BaseException | None = None) -> DatabaseUnavailable:
    what = "" if cause is None else f" ({type(cause).__name__})"
    return DatabaseUnavailable(
        f"la base de datos no está disponible{what}; reintente en {RETRY_AFTER} s — un envío "
        "sin confirmar puede repetirse con el mismo client_id sin duplicarse",
        f"the database is unavailable{what}; retry in {RETRY_AFTER} s — an unacknowledged "
        "submission can be sent again with the same client_id without creating a duplicate")


def is_postgres(store: object) -> bool:
    """True for a :class:`~escrutinio.store.postgres_store.PostgresStore` (checked by module:
    psycopg need not be importable to ask)."""
    return type(store).__module__.endswith("postgres_store")


def open_health(inner: object, lock: Any = None) -> dict[str, Any]:
    """Schema version and ledger head of a store open in this process (a DuckDB file, or a
    PostgreSQL store with its own connection): ``{"backend", "schema_version", "ledger"}``.
    A dead PostgreSQL connection raises :class:`DatabaseUnavailable`."""
    con = getattr(inner, "con", None)
    pg = is_postgres(inner)
    head: dict[str, Any] = {"n_entries": 0, "head_hash": None}
    schema = None
    if con is not None:
        with lock or threading.RLock():
            try:
                if pg:
                    schema = con.execute(SCHEMA_VERSION_SQL).fetchall()[0][0]
                if con.execute(_HAS_LEDGER_SQL).fetchall():
                    # fetchall: a half-read result would block DuckDB's shared connection
                    rows = con.execute(LEDGER_HEAD_SQL).fetchall()
                    if rows:
                        head = {"n_entries": int(rows[0][0]), "head_hash": str(rows[0][1])}
            except DB_DOWN_ERRORS as exc:
                raise unavailable(exc) from exc
    return {"backend": "postgresql" if pg else "duckdb", "schema_version": schema,
            "ledger": head}


__all__ = ["CONNECT_OPTIONS", "DB_DOWN_ERRORS", "EPOCH_SQL", "EPOCH_SQL_LEDGER",
           "LEDGER_HEAD_SQL", "RETRY_AFTER", "SCHEMA_VERSION_SQL", "DatabaseUnavailable",
           "is_db_down", "is_postgres", "open_health", "unavailable"]
