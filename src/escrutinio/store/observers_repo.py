"""Every SQL statement of the observer server: accounts, tokens, browser sessions, photos,
submissions and their ledger entries (docs/observers.md).

One interface, :class:`ObserverRepo`, and one implementation per backend:

* :class:`PostgresObserverRepo` — a small pool of its own autocommit connections
  (``pool_size``, default 4 per process) opened from the store's DSN with the server's
  connect options (:data:`~escrutinio.store.server_db.CONNECT_OPTIONS`), migrated on first
  use (``store/migrations``). A connection that breaks is dropped and the call
  raises :class:`~escrutinio.store.server_db.DatabaseUnavailable` (the web app answers 503
  with ``Retry-After``); the next call opens a new one. Writes that touch the log take the
  ledger's advisory lock (:data:`escrutinio.store.ledger.LEDGER_LOCK`), so every writer of
  every process and node appends to one chain, one at a time.
* :class:`DuckDBObserverRepo` — one dedicated cursor (its own transaction context) behind a
  lock: one writer, in the one process that may open the file read-write. The tables are
  created by running the same migration file (``0002_observers.sql``, written in SQL both
  accept).

The SQL is written once (:class:`_SqlObserverRepo`), in the dialect both databases accept;
a backend gives its connections and the one fragment that differs (a list parameter).
Rows come back as tuples in the column orders declared here (:data:`ACCOUNT_COLUMNS`,
:data:`TOKEN_COLUMNS`) or as dicts keyed by :data:`SUBMISSION_ROW`; what they mean (an
account, a principal, who may see what) is the server's business
(:mod:`escrutinio.server.repo`).

Rows are inserted once; only ``tokens`` (revocation, last use), ``sessions`` (logout) and
``accounts`` (disable) are ever updated. A submission and its ledger entry are written in
one transaction: neither exists without the other.
"""

from __future__ import annotations

import json
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final

from escrutinio.domain import Contest
from escrutinio.errors import EscrutinioError
from escrutinio.store.base import Store
from escrutinio.store.ledger import (
    LEDGER_LOCK,
    LedgerEntry,
    Runner,
    SubmissionProof,
    append_checkpoint_with,
    append_entry,
    prove_submission_with,
)
from escrutinio.store.server_db import (
    CONNECT_OPTIONS,
    DB_DOWN_ERRORS,
    is_postgres,
    unavailable,
)

#: the migration that creates the observer tables (run as is on DuckDB)
MIGRATION_FILE: Final = "0002_observers.sql"
#: an account row, in this order
ACCOUNT_COLUMNS: Final = ("account_id", "name", "role", "scope", "created_at", "disabled_at")
#: a token row, in this order
TOKEN_COLUMNS: Final = ("token_id", "account_id", "created_at", "expires_at", "revoked_at",
                        "last_used_at")
#: the columns of a submission row, in the order :meth:`ObserverRepo.record_submission`
#: writes them
SUBMISSION_ROW: Final = (
    "submission_id", "account_id", "client_id", "contest_id", "acta_id", "acta_key",
    "area1_code", "area2_code", "area3_code", "place_key", "received_at", "request_sha256",
    "payload", "payload_sha256", "photo_sha256", "official_snapshot_id", "category",
    "reconciliation", "ledger_seq")

_ACCOUNT_COLS: Final = ", ".join(ACCOUNT_COLUMNS)
_TOKEN_COLS: Final = ", ".join(TOKEN_COLUMNS)
_A_COLS: Final = ", ".join(f"a.{c}" for c in ACCOUNT_COLUMNS)
_SELECT_SUBMISSION: Final = (
    "SELECT " + ", ".join(f"s.{c}" for c in SUBMISSION_ROW)
    + ", l.entry_hash FROM submissions s LEFT JOIN ledger_entries l ON l.seq = s.ledger_seq")
_AREA_PREFIX: Final = ("(starts_with(s.area1_code, ?) OR starts_with(s.area2_code, ?) OR "
                       "starts_with(s.area3_code, ?))")


class ObserverStoreReadOnly(EscrutinioError):
    """The store cannot take the observer tables' writes (a read-only DuckDB file)."""


class ValueNotAccepted(EscrutinioError):
    """The database refused a value (a NUL byte in a text, a number out of range): said
    without the database's own words."""

    def __init__(self) -> None:
        super().__init__("valor no admitido (caracteres de control o fuera de rango)",
                         "value not accepted (control characters or out of range)")


@dataclass(frozen=True, slots=True)
class Visibility:
    """Which submissions a caller may see: everything (``everything``), or those sent by
    ``account_id``, plus — for a coordinator — those whose acta key is in ``acta_keys``, whose
    area code starts with one of ``area_prefixes``, or whose polling place matches one of
    ``places`` (``(area prefix or None, place key)``)."""

    account_id: str
    everything: bool = False
    acta_keys: tuple[str, ...] = ()
    area_prefixes: tuple[str, ...] = ()
    places: tuple[tuple[str | None, str], ...] = ()


def migration_sql() -> str:
    return (resources.files("escrutinio.store").joinpath("migrations")
            .joinpath(MIGRATION_FILE).read_text("utf-8"))


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _is_unique_violation(exc: BaseException) -> bool:
    return type(exc).__name__ in ("UniqueViolation", "ConstraintException", "IntegrityError")


class ObserverRepo(ABC):
    """The observer server's tables, over one store's database."""

    backend_name: str

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def ping(self) -> None:
        """A trivial query: raises when the database cannot be reached."""

    # accounts
    @abstractmethod
    def insert_account(self, row: Sequence[object]) -> bool:
        """Insert an account (values in :data:`ACCOUNT_COLUMNS` order); False when the
        name is taken."""

    @abstractmethod
    def account(self, ref: str) -> tuple[Any, ...] | None:
        """An account row by id or by name."""

    @abstractmethod
    def accounts(self) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def set_disabled(self, account_id: str, at: datetime | None) -> None: ...

    # tokens
    @abstractmethod
    def insert_token(self, token_id: str, account_id: str, secret_sha256: str,
                     created_at: datetime, expires_at: datetime) -> None: ...

    @abstractmethod
    def revoke_token(self, token_id: str, now: datetime) -> tuple[Any, ...] | None:
        """Revoke a token and its sessions (once); its row after, or None if unknown."""

    @abstractmethod
    def tokens(self, account_id: str | None = None) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def token_with_account(self, token_id: str) -> tuple[Any, ...] | None:
        """(secret_sha256, expires_at, revoked_at, last_used_at, *account row)."""

    @abstractmethod
    def touch_token(self, token_id: str, now: datetime) -> None: ...

    @abstractmethod
    def token_expiry(self, token_id: str) -> datetime | None: ...

    # sessions
    @abstractmethod
    def insert_session(self, session_id: str, secret_sha256: str, token_id: str,
                       account_id: str, created_at: datetime, expires_at: datetime) -> None: ...

    @abstractmethod
    def session_with_token(self, session_id: str) -> tuple[Any, ...] | None:
        """(secret_sha256, expires_at, revoked_at, token_id, token expires_at, token
        revoked_at, *account row)."""

    @abstractmethod
    def end_session(self, session_id: str, now: datetime) -> None: ...

    # photos
    @abstractmethod
    def put_photo(self, sha256: str, media_type: str, data: bytes, account_id: str,
                  now: datetime) -> bool:
        """Store a photo under its SHA-256; False if it was already stored."""

    @abstractmethod
    def photo_meta(self, sha256: str) -> tuple[str, int, str] | None: ...

    @abstractmethod
    def photo_bytes(self, sha256: str) -> bytes | None: ...

    # submissions
    @abstractmethod
    def submission_by_key(self, account_id: str, client_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def submission(self, submission_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def record_submission(self, row: dict[str, Any],
                          entry_of: Callable[[dict[str, Any]], Mapping[str, object]]
                          ) -> tuple[dict[str, Any], bool]:
        """Write a submission row and its ledger entry (``entry_of(row)``) in one
        transaction, under the ledger lock: (the stored row, True), or (the row already
        stored under the same account and client id, False)."""

    @abstractmethod
    def list_submissions(self, visible: Visibility, *, acta_key: str | None = None,
                         category: str | None = None, account: str | None = None,
                         contest: str | None = None, limit: int = 100, offset: int = 0
                         ) -> tuple[list[dict[str, Any]], int]:
        """The visible submissions, newest first, and how many match in all.
        ``category="pending"``: not reconciled yet."""

    @abstractmethod
    def photo_in_visible_submission(self, sha256: str, visible: Visibility) -> bool: ...

    # the official side
    @abstractmethod
    def default_contest(self) -> str | None: ...

    @abstractmethod
    def contest(self, contest_id: str) -> Contest | None: ...

    @abstractmethod
    def latest_actas_snapshot(self, contest_id: str) -> str | None: ...

    # the log
    @abstractmethod
    def checkpoint(self) -> LedgerEntry | None: ...

    @abstractmethod
    def checkpoints(self) -> list[dict[str, Any]]: ...

    @abstractmethod
    def prove(self, submission_id: str) -> SubmissionProof: ...

    @abstractmethod
    def head(self) -> tuple[int, str | None]: ...


class _SqlObserverRepo(ObserverRepo):
    """The statements, once; a backend gives :meth:`_use` and :meth:`_in_list`."""

    @abstractmethod
    def _use(self, *, write: bool = False, ledger_lock: bool = False
             ) -> Any:
        """A context manager giving a :data:`~escrutinio.store.ledger.Runner` on one
        connection; ``write``: inside one transaction (committed when the block ends, rolled
        back on any error); ``ledger_lock``: holding the log's lock for the whole
        transaction."""

    @abstractmethod
    def _in_list(self, column: str) -> str:
        """SQL: ``column`` is one of the values of a list parameter."""

    def ping(self) -> None:
        with self._use() as run:
            run("SELECT 1", [])

    # -- accounts ----------------------------------------------------------------------
    def insert_account(self, row: Sequence[object]) -> bool:
        try:
            with self._use(write=True) as run:
                if run("SELECT 1 FROM accounts WHERE name = ?", [row[1]]):
                    return False
                run(f"INSERT INTO accounts ({_ACCOUNT_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                    list(row))
        except Exception as exc:
            if _is_unique_violation(exc):
                return False
            raise
        return True

    def account(self, ref: str) -> tuple[Any, ...] | None:
        with self._use() as run:
            rows = run(f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE account_id = ? OR name = ?"
                       " ORDER BY account_id", [ref, ref])
        return rows[0] if rows else None

    def accounts(self) -> list[tuple[Any, ...]]:
        with self._use() as run:
            return run(f"SELECT {_ACCOUNT_COLS} FROM accounts ORDER BY name", [])

    def set_disabled(self, account_id: str, at: datetime | None) -> None:
        with self._use(write=True) as run:
            run("UPDATE accounts SET disabled_at = ? WHERE account_id = ?", [at, account_id])

    # -- tokens ------------------------------------------------------------------------
    def insert_token(self, token_id: str, account_id: str, secret_sha256: str,
                     created_at: datetime, expires_at: datetime) -> None:
        with self._use(write=True) as run:
            run("INSERT INTO tokens (token_id, account_id, secret_sha256, created_at, "
                "expires_at, revoked_at, last_used_at) VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                [token_id, account_id, secret_sha256, created_at, expires_at])

    def revoke_token(self, token_id: str, now: datetime) -> tuple[Any, ...] | None:
        with self._use(write=True) as run:
            rows = run(f"SELECT {_TOKEN_COLS} FROM tokens WHERE token_id = ?", [token_id])
            if not rows:
                return None
            if rows[0][4] is None:
                run("UPDATE tokens SET revoked_at = ? WHERE token_id = ?", [now, token_id])
                run("UPDATE sessions SET revoked_at = ? WHERE token_id = ? AND revoked_at "
                    "IS NULL", [now, token_id])
            rows = run(f"SELECT {_TOKEN_COLS} FROM tokens WHERE token_id = ?", [token_id])
        return rows[0]

    def tokens(self, account_id: str | None = None) -> list[tuple[Any, ...]]:
        with self._use() as run:
            if account_id is None:
                return run(f"SELECT {_TOKEN_COLS} FROM tokens ORDER BY created_at", [])
            return run(f"SELECT {_TOKEN_COLS} FROM tokens WHERE account_id = ? "
                       "ORDER BY created_at", [account_id])

    def token_with_account(self, token_id: str) -> tuple[Any, ...] | None:
        with self._use() as run:
            rows = run("SELECT t.secret_sha256, t.expires_at, t.revoked_at, t.last_used_at, "
                       f"{_A_COLS} FROM tokens t JOIN accounts a ON a.account_id = "
                       "t.account_id WHERE t.token_id = ?", [token_id])
        return rows[0] if rows else None

    def touch_token(self, token_id: str, now: datetime) -> None:
        with self._use(write=True) as run:
            run("UPDATE tokens SET last_used_at = ? WHERE token_id = ?", [now, token_id])

    def token_expiry(self, token_id: str) -> datetime | None:
        with self._use() as run:
            rows = run("SELECT expires_at FROM tokens WHERE token_id = ?", [token_id])
        return _utc(rows[0][0]) if rows else None

    # -- browser sessions --------------------------------------------------------------
    def insert_session(self, session_id: str, secret_sha256: str, token_id: str,
                       account_id: str, created_at: datetime, expires_at: datetime) -> None:
        with self._use(write=True) as run:
            run("INSERT INTO sessions (session_id, secret_sha256, token_id, account_id, "
                "created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                [session_id, secret_sha256, token_id, account_id, created_at, expires_at])

    def session_with_token(self, session_id: str) -> tuple[Any, ...] | None:
        with self._use() as run:
            rows = run("SELECT s.secret_sha256, s.expires_at, s.revoked_at, t.token_id, "
                       f"t.expires_at, t.revoked_at, {_A_COLS} FROM sessions s "
                       "JOIN tokens t ON t.token_id = s.token_id "
                       "JOIN accounts a ON a.account_id = s.account_id "
                       "WHERE s.session_id = ?", [session_id])
        return rows[0] if rows else None

    def end_session(self, session_id: str, now: datetime) -> None:
        with self._use(write=True) as run:
            run("UPDATE sessions SET revoked_at = ? WHERE session_id = ? AND revoked_at IS "
                "NULL", [now, session_id])

    # -- photos ------------------------------------------------------------------------
    def put_photo(self, sha256: str, media_type: str, data: bytes, account_id: str,
                  now: datetime) -> bool:
        with self._use(write=True) as run:
            rows = run("INSERT INTO photos (sha256, media_type, size, bytes, account_id, "
                       "received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING "
                       "RETURNING sha256", [sha256, media_type, len(data), data, account_id,
                                            now])
        return bool(rows)

    def photo_meta(self, sha256: str) -> tuple[str, int, str] | None:
        with self._use() as run:
            rows = run("SELECT media_type, size, account_id FROM photos WHERE sha256 = ?",
                       [sha256])
        return (str(rows[0][0]), int(rows[0][1]), str(rows[0][2])) if rows else None

    def photo_bytes(self, sha256: str) -> bytes | None:
        with self._use() as run:
            rows = run("SELECT bytes FROM photos WHERE sha256 = ?", [sha256])
        return bytes(rows[0][0]) if rows else None

    # -- submissions -------------------------------------------------------------------
    @staticmethod
    def _submission(row: Sequence[Any]) -> dict[str, Any]:
        out = dict(zip((*SUBMISSION_ROW, "entry_hash"), row, strict=True))
        out["received_at"] = _utc(out["received_at"])
        return out

    def submission_by_key(self, account_id: str, client_id: str) -> dict[str, Any] | None:
        with self._use() as run:
            rows = run(_SELECT_SUBMISSION + " WHERE s.account_id = ? AND s.client_id = ?",
                       [account_id, client_id])
        return self._submission(rows[0]) if rows else None

    def submission(self, submission_id: str) -> dict[str, Any] | None:
        with self._use() as run:
            rows = run(_SELECT_SUBMISSION + " WHERE s.submission_id = ?", [submission_id])
        return self._submission(rows[0]) if rows else None

    def record_submission(self, row: dict[str, Any],
                          entry_of: Callable[[dict[str, Any]], Mapping[str, object]]
                          ) -> tuple[dict[str, Any], bool]:
        try:
            with self._use(write=True, ledger_lock=True) as run:
                found = run(_SELECT_SUBMISSION + " WHERE s.account_id = ? AND s.client_id = ?",
                            [row["account_id"], row["client_id"]])
                if found:
                    return self._submission(found[0]), False
                le = append_entry(run, "submission", row["submission_id"], entry_of(row))
                row = {**row, "ledger_seq": le.seq}
                run(f"INSERT INTO submissions ({', '.join(SUBMISSION_ROW)}) VALUES "
                    f"({', '.join('?' for _ in SUBMISSION_ROW)})",
                    [row[c] for c in SUBMISSION_ROW])
        except Exception as exc:
            if not _is_unique_violation(exc):
                raise
            # another process won the race for this (account, client id): theirs stands
            again = self.submission_by_key(row["account_id"], row["client_id"])
            if again is None:
                raise
            return again, False
        return {**row, "entry_hash": le.entry_hash}, True

    def _visible(self, v: Visibility) -> tuple[str, list[object]]:
        """SQL condition (and parameters) for the submissions a caller may see."""
        if v.everything:
            return "TRUE", []
        parts = ["s.account_id = ?"]
        params: list[object] = [v.account_id]
        if v.acta_keys:
            parts.append(self._in_list("s.acta_key"))
            params.append(list(v.acta_keys))
        for p in v.area_prefixes:
            parts.append(_AREA_PREFIX)
            params += [p, p, p]
        for area, name in v.places:
            if area is None:
                parts.append("s.place_key = ?")
                params.append(name)
            else:
                parts.append(f"(s.place_key = ? AND {_AREA_PREFIX})")
                params += [name, area, area, area]
        return "(" + " OR ".join(parts) + ")", params

    def list_submissions(self, visible: Visibility, *, acta_key: str | None = None,
                         category: str | None = None, account: str | None = None,
                         contest: str | None = None, limit: int = 100, offset: int = 0
                         ) -> tuple[list[dict[str, Any]], int]:
        where, params = self._visible(visible)
        conds, args = [where], list(params)
        if acta_key is not None:
            conds.append("s.acta_key = ?")
            args.append(acta_key)
        if category == "pending":
            conds.append("s.category IS NULL")
        elif category is not None:
            conds.append("s.category = ?")
            args.append(category)
        if account is not None:
            conds.append("s.account_id = ?")
            args.append(account)
        if contest is not None:
            conds.append("s.contest_id = ?")
            args.append(contest)
        clause = " WHERE " + " AND ".join(conds)
        with self._use() as run:
            total = int(run("SELECT count(*) FROM submissions s" + clause, args)[0][0])
            rows = run(_SELECT_SUBMISSION + clause + " ORDER BY s.ledger_seq DESC LIMIT ? "
                       "OFFSET ?", [*args, limit, offset])
        return [self._submission(r) for r in rows], total

    def photo_in_visible_submission(self, sha256: str, visible: Visibility) -> bool:
        where, params = self._visible(visible)
        with self._use() as run:
            return bool(run("SELECT 1 FROM submissions s WHERE s.photo_sha256 = ? AND "
                            + where + " LIMIT 1", [sha256, *params]))

    # -- what the official side holds --------------------------------------------------
    def default_contest(self) -> str | None:
        with self._use() as run:
            rows = run("SELECT contest_id FROM snapshots ORDER BY as_of DESC, label DESC "
                       "LIMIT 1", [])
            if not rows:
                rows = run("SELECT contest_id FROM contests ORDER BY contest_id LIMIT 1", [])
        return str(rows[0][0]) if rows else None

    def contest(self, contest_id: str) -> Contest | None:
        with self._use() as run:
            rows = run("SELECT definition FROM contests WHERE contest_id = ?", [contest_id])
        return Contest.from_dict(json.loads(rows[0][0])) if rows else None

    def latest_actas_snapshot(self, contest_id: str) -> str | None:
        with self._use() as run:
            rows = run("SELECT snapshot_id FROM snapshots WHERE contest_id = ? AND kind = "
                       "'actas' ORDER BY as_of DESC, label DESC LIMIT 1", [contest_id])
        return str(rows[0][0]) if rows else None

    # -- the log -----------------------------------------------------------------------
    def checkpoint(self) -> LedgerEntry | None:
        with self._use(write=True, ledger_lock=True) as run:
            return append_checkpoint_with(run)

    def checkpoints(self) -> list[dict[str, Any]]:
        with self._use() as run:
            rows = run("SELECT seq, entry, entry_hash, recorded_at FROM ledger_entries WHERE "
                       "entry_type = 'checkpoint' ORDER BY seq", [])
        out = []
        for seq, text, h, at in rows:
            e = json.loads(text)
            out.append({"seq": int(seq), "tree_size": e.get("tree_size"),
                        "merkle_root": e.get("merkle_root"), "last_seq": e.get("last_seq"),
                        "entry_hash": h, "recorded_at": _utc(at)})
        return out

    def prove(self, submission_id: str) -> SubmissionProof:
        with self._use() as run:
            return prove_submission_with(run, submission_id)

    def head(self) -> tuple[int, str | None]:
        with self._use() as run:
            rows = run("SELECT seq, entry_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1",
                       [])
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, None)


# -- PostgreSQL ------------------------------------------------------------------------------
class _PgPool:
    """A few autocommit connections, handed out one per call, replaced when broken."""

    def __init__(self, dsn: str, size: int) -> None:
        self.dsn = dsn
        self.options = {**CONNECT_OPTIONS, "application_name": "escrutinio-observers"}
        self.free: queue.LifoQueue[Any] = queue.LifoQueue()
        self.slots = threading.BoundedSemaphore(max(1, size))
        self.migrated = False
        self.lock = threading.Lock()

    def _connect(self) -> Any:
        import psycopg

        con = psycopg.connect(self.dsn, autocommit=True, **self.options)
        try:
            con.execute("SET TIME ZONE 'UTC'")
            con.execute("SET statement_timeout = '30s'")
            if not self.migrated:
                from escrutinio.store.postgres_store import migrate

                with self.lock:
                    if not self.migrated:
                        migrate(con)  # idempotent; serialised across processes
                        self.migrated = True
        except BaseException:
            con.close()
            raise
        return con

    @contextmanager
    def connection(self) -> Iterator[Any]:
        if not self.slots.acquire(timeout=30):
            raise unavailable()
        con = None
        try:
            try:
                con = self.free.get_nowait()
                if con.closed or con.broken:
                    con.close()
                    con = None
            except queue.Empty:
                con = None
            if con is None:
                con = self._connect()
            yield con
        except DB_DOWN_ERRORS as exc:
            if con is not None:
                con.close()
                con = None
            raise unavailable(exc) from exc
        finally:
            if con is not None:
                from psycopg.pq import TransactionStatus

                if (not con.closed and not con.broken
                        and con.info.transaction_status == TransactionStatus.IDLE):
                    self.free.put(con)
                else:
                    con.close()
            self.slots.release()

    def close(self) -> None:
        while True:
            try:
                self.free.get_nowait().close()
            except queue.Empty:
                return


def _pg_runner(con: Any) -> Runner:
    import psycopg

    def run(sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            cur = con.execute(sql.replace("?", "%s"), list(params))
        except psycopg.DataError:  # e.g. a NUL byte in a text parameter
            # no database detail in the answer: what was wrong, not how the store said it
            raise ValueNotAccepted() from None
        return list(cur.fetchall()) if cur.description else []

    return run


class PostgresObserverRepo(_SqlObserverRepo):
    backend_name = "postgresql"

    def __init__(self, dsn: str, *, pool_size: int = 4) -> None:
        self._pool = _PgPool(dsn, pool_size)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _use(self, *, write: bool = False, ledger_lock: bool = False) -> Iterator[Runner]:
        with self._pool.connection() as con:
            if not write:
                yield _pg_runner(con)
                return
            with con.transaction():
                if ledger_lock:
                    con.execute("SELECT pg_advisory_xact_lock(%s)", [LEDGER_LOCK])
                yield _pg_runner(con)

    def _in_list(self, column: str) -> str:
        return f"{column} = ANY(?)"


# -- DuckDB ----------------------------------------------------------------------------------
def _duck_runner(cur: Any) -> Runner:
    def run(sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        res = cur.execute(sql, list(params))
        return list(res.fetchall()) if res.description else []

    return run


class DuckDBObserverRepo(_SqlObserverRepo):
    backend_name = "duckdb"

    def __init__(self, con: Any) -> None:
        import duckdb

        self._lock = threading.RLock()
        try:
            self._cur = con.cursor()
            self._cur.execute("SET TimeZone='UTC'")
            self._cur.execute(migration_sql())
        except duckdb.Error as exc:
            raise ObserverStoreReadOnly(
                "la API de observadores necesita un almacén escribible (PostgreSQL, o un "
                f"archivo DuckDB abierto para escritura): {exc}",
                "the observer API needs a writable store (PostgreSQL, or a DuckDB file "
                f"opened read-write): {exc}") from None

    def close(self) -> None:
        self._cur.close()

    @contextmanager
    def _use(self, *, write: bool = False, ledger_lock: bool = False) -> Iterator[Runner]:
        # one cursor behind one lock: the lock is the ledger's lock too
        with self._lock:
            cur = self._cur
            if not write:
                yield _duck_runner(cur)
                return
            cur.execute("BEGIN TRANSACTION")
            try:
                yield _duck_runner(cur)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def _in_list(self, column: str) -> str:
        return f"list_contains(?, {column})"


def open_observer_repo(store: Store, *, pool_size: int = 4) -> ObserverRepo:
    """The observer repository over ``store``'s database (a
    :class:`~escrutinio.store.base.Store`, or a catalogue wrapping one in ``.inner``): its
    own connections, never the store's."""
    inner: Any = getattr(store, "inner", store)
    if is_postgres(inner):
        return PostgresObserverRepo(str(inner.dsn), pool_size=pool_size)
    return DuckDBObserverRepo(inner.con)


__all__ = ["ACCOUNT_COLUMNS", "SUBMISSION_ROW", "TOKEN_COLUMNS", "DuckDBObserverRepo",
           "ObserverRepo", "ObserverStoreReadOnly", "PostgresObserverRepo", "ValueNotAccepted",
           "Visibility", "migration_sql", "open_observer_repo"]
