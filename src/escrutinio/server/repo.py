"""Every SQL statement of the observer server, on DuckDB and PostgreSQL.

:class:`Repo` never shares a connection with the rest of the app:

* **PostgreSQL**: a small pool of its own connections (``ESCRUTINIO_DB_POOL``, default 4
  per process) opened from the store's DSN with the server's connect options, migrated on
  first use (``store/migrations``). A connection that breaks is dropped and the
  call raises :class:`~escrutinio.server.resilience.DatabaseUnavailable` (answered 503 with
  ``Retry-After``); the next call opens a new one. Writes that touch the log take the
  ledger's advisory lock (:data:`escrutinio.store.ledger.LEDGER_LOCK`), so every writer of
  every process and node appends to one chain, one at a time.
* **DuckDB**: one dedicated cursor (its own transaction context) behind a lock: one
  writer, in the one process that may open the file read-write. The tables are created by
  running the same migration file (it is written in SQL both accept).

Rows are inserted once; only ``tokens`` (revocation, last use), ``sessions`` (logout) and
``accounts`` (disable) are ever updated. A submission and its ledger entry are written in
one transaction: neither exists without the other.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Final

from escrutinio.domain import Contest
from escrutinio.errors import EscrutinioError, UnknownReferenceError
from escrutinio.server.auth import (
    NAME_RE,
    Account,
    AuthError,
    Principal,
    Role,
    Scope,
    TokenInfo,
    acta_key,
    check_secret,
    new_session,
    new_token,
    parse_session,
    parse_token,
    place_key,
)
from escrutinio.store.base import Store
from escrutinio.store.ledger import (
    LEDGER_LOCK,
    LedgerEntry,
    Runner,
    SubmissionProof,
    append_checkpoint_with,
    append_entry,
    prove_submission_with,
    submission_entry,
)

MIGRATION_FILE: Final = "0002_observers.sql"
#: last_used_at is written at most this often per token
LAST_USED_EVERY: Final = timedelta(seconds=60)
#: the columns of a submission row, in the order :meth:`Repo.record_submission` writes them
SUBMISSION_ROW: Final = (
    "submission_id", "account_id", "client_id", "contest_id", "acta_id", "acta_key",
    "area1_code", "area2_code", "area3_code", "place_key", "received_at", "request_sha256",
    "payload", "payload_sha256", "photo_sha256", "official_snapshot_id", "category",
    "reconciliation", "ledger_seq")
_SELECT_SUBMISSION: Final = (
    "SELECT " + ", ".join(f"s.{c}" for c in SUBMISSION_ROW)
    + ", l.entry_hash FROM submissions s LEFT JOIN ledger_entries l ON l.seq = s.ledger_seq")
_ACCOUNT_COLS: Final = "account_id, name, role, scope, created_at, disabled_at"
_TOKEN_COLS: Final = ("token_id, account_id, created_at, expires_at, revoked_at, "
                      "last_used_at")


class ObserverApiDisabled(EscrutinioError):
    """The app's store cannot take writes (a read-only DuckDB file)."""


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _now() -> datetime:
    return datetime.now(UTC)


def migration_sql() -> str:
    return (resources.files("escrutinio.store").joinpath("migrations")
            .joinpath(MIGRATION_FILE).read_text("utf-8"))


def _is_postgres(store: Store) -> bool:
    return type(store).__module__.endswith("postgres_store")


# -- PostgreSQL connections ------------------------------------------------------------------
class _PgPool:
    """A few autocommit connections, handed out one per call, replaced when broken."""

    def __init__(self, dsn: str, size: int) -> None:
        from escrutinio.server.resilience import CONNECT_OPTIONS

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
        from escrutinio.server.resilience import DB_DOWN_ERRORS, unavailable

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
            raise AuthError(422, "bad_value",
                            "valor no admitido (caracteres de control o fuera de rango)",
                            "value not accepted (control characters or out of range)") from None
        return list(cur.fetchall()) if cur.description else []

    return run


def _duck_runner(cur: Any) -> Runner:
    def run(sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        res = cur.execute(sql, list(params))
        return list(res.fetchall()) if res.description else []

    return run


def _is_unique_violation(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name in ("UniqueViolation", "ConstraintException", "IntegrityError")


class Repo:
    """Accounts, tokens, sessions, photos and submissions over ``store``'s database (a
    :class:`~escrutinio.store.base.Store`, or a catalogue wrapping one)."""

    def __init__(self, store: Store, *, pool_size: int = 4) -> None:
        inner: Any = getattr(store, "inner", store)
        self.pg = _is_postgres(inner)
        self._pool: _PgPool | None = None
        self._cur: Any = None
        self._lock = threading.RLock()
        if self.pg:
            self._pool = _PgPool(str(inner.dsn), pool_size)
            return
        import duckdb

        try:
            self._cur = inner.con.cursor()
            self._cur.execute("SET TimeZone='UTC'")
            self._cur.execute(migration_sql())
        except duckdb.Error as exc:
            raise ObserverApiDisabled(
                "la API de observadores necesita un almacén escribible (PostgreSQL, o un "
                f"archivo DuckDB abierto para escritura): {exc}",
                "the observer API needs a writable store (PostgreSQL, or a DuckDB file "
                f"opened read-write): {exc}") from None

    @property
    def backend_name(self) -> str:
        return "postgresql" if self.pg else "duckdb"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._cur is not None:
            self._cur.close()

    # -- connections -------------------------------------------------------------------
    @contextmanager
    def _use(self, *, write: bool = False, ledger_lock: bool = False) -> Iterator[Runner]:
        """A runner on one connection; ``write``: inside one transaction (committed when
        the block ends, rolled back on any error); ``ledger_lock``: holding the log's
        lock for the whole transaction."""
        if self._pool is not None:
            with self._pool.connection() as con:
                if not write:
                    yield _pg_runner(con)
                    return
                with con.transaction():
                    if ledger_lock:
                        con.execute("SELECT pg_advisory_xact_lock(%s)", [LEDGER_LOCK])
                    yield _pg_runner(con)
            return
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

    def ping(self) -> None:
        with self._use() as run:
            run("SELECT 1", [])

    # -- accounts ----------------------------------------------------------------------
    @staticmethod
    def _account(row: Sequence[Any]) -> Account:
        return Account(str(row[0]), str(row[1]), Role(row[2]),
                       Scope.from_dict(json.loads(row[3])), _utc(row[4]), _utc(row[5]))

    @staticmethod
    def _token(row: Sequence[Any]) -> TokenInfo:
        return TokenInfo(str(row[0]), str(row[1]), _utc(row[2]), _utc(row[3]), _utc(row[4]),
                         _utc(row[5]))

    def create_account(self, name: str, role: Role | str, scope: Scope | None = None
                       ) -> Account:
        name = name.strip() if isinstance(name, str) else ""
        if not NAME_RE.match(name):
            raise AuthError(
                422, "bad_name",
                "nombre de cuenta no válido: 1-100 letras, cifras, espacio o . _ @ + ' -",
                "invalid account name: 1-100 letters, digits, space or . _ @ + ' -")
        try:
            role = Role(role)
        except ValueError:
            raise AuthError(422, "bad_role", f"rol desconocido {str(role)[:40]!r} (observer, "
                            "coordinator, admin)", f"unknown role {str(role)[:40]!r} "
                            "(observer, coordinator, admin)") from None
        acc = Account(f"acc_{secrets.token_hex(8)}", name, role, scope or Scope(), _now())
        try:
            with self._use(write=True) as run:
                if run("SELECT 1 FROM accounts WHERE name = ?", [name]):
                    raise AuthError(409, "name_taken", f"ya existe una cuenta {name!r}",
                                    f"there is already an account {name!r}")
                run(f"INSERT INTO accounts ({_ACCOUNT_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                    [acc.account_id, acc.name, acc.role.value,
                     json.dumps(acc.scope.to_dict(), ensure_ascii=False), acc.created_at,
                     None])
        except Exception as exc:
            if _is_unique_violation(exc):
                raise AuthError(409, "name_taken", f"ya existe una cuenta {name!r}",
                                f"there is already an account {name!r}") from None
            raise
        return acc

    def account(self, ref: str) -> Account | None:
        """An account by id or by name."""
        with self._use() as run:
            rows = run(f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE account_id = ? OR name = ?"
                       " ORDER BY account_id", [ref, ref])
        return self._account(rows[0]) if rows else None

    def require_account(self, ref: str) -> Account:
        acc = self.account(ref)
        if acc is None:
            raise UnknownReferenceError(f"cuenta desconocida: {ref[:80]!r} ('escrutinio "
                                        "accounts list' las muestra)",
                                        f"unknown account: {ref[:80]!r} ('escrutinio "
                                        "accounts list' shows them)")
        return acc

    def accounts(self) -> list[Account]:
        with self._use() as run:
            return [self._account(r) for r in run(
                f"SELECT {_ACCOUNT_COLS} FROM accounts ORDER BY name", [])]

    def set_disabled(self, account_id: str, disabled: bool) -> Account:
        with self._use(write=True) as run:
            run("UPDATE accounts SET disabled_at = ? WHERE account_id = ?",
                [_now() if disabled else None, account_id])
        return self.require_account(account_id)

    # -- tokens ------------------------------------------------------------------------
    def issue_token(self, account_id: str, *, days: float = 30.0) -> tuple[str, TokenInfo]:
        """A new token for the account: (the full token — shown once —, its record)."""
        if not 0 < days <= 3660:
            raise AuthError(422, "bad_expiry", "la validez debe estar entre 0 y 3660 días",
                            "the validity must be between 0 and 3660 days")
        acc = self.require_account(account_id)
        token_id, token, digest = new_token()
        now = _now()
        info = TokenInfo(token_id, acc.account_id, now, now + timedelta(days=days))
        with self._use(write=True) as run:
            run("INSERT INTO tokens (token_id, account_id, secret_sha256, created_at, "
                "expires_at, revoked_at, last_used_at) VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                [token_id, acc.account_id, digest, info.created_at, info.expires_at])
        return token, info

    def revoke_token(self, token_id: str) -> TokenInfo:
        now = _now()
        with self._use(write=True) as run:
            rows = run(f"SELECT {_TOKEN_COLS} FROM tokens WHERE token_id = ?", [token_id])
            if not rows:
                raise UnknownReferenceError(f"ficha desconocida: {token_id[:40]!r}",
                                            f"unknown token: {token_id[:40]!r}")
            if rows[0][4] is None:
                run("UPDATE tokens SET revoked_at = ? WHERE token_id = ?", [now, token_id])
                run("UPDATE sessions SET revoked_at = ? WHERE token_id = ? AND revoked_at "
                    "IS NULL", [now, token_id])
            rows = run(f"SELECT {_TOKEN_COLS} FROM tokens WHERE token_id = ?", [token_id])
        return self._token(rows[0])

    def tokens(self, account_id: str | None = None) -> list[TokenInfo]:
        with self._use() as run:
            if account_id is None:
                rows = run(f"SELECT {_TOKEN_COLS} FROM tokens ORDER BY created_at", [])
            else:
                rows = run(f"SELECT {_TOKEN_COLS} FROM tokens WHERE account_id = ? "
                           "ORDER BY created_at", [account_id])
        return [self._token(r) for r in rows]

    def authenticate(self, token: str) -> Principal:
        """The caller a bearer token stands for, or :class:`AuthError` (401) naming why."""
        token_id = parse_token(token)
        if token_id is None:
            raise AuthError(401, "malformed_token",
                            "ficha mal formada: se espera 'Bearer esc_<id>.<secreto>'",
                            "malformed token: expected 'Bearer esc_<id>.<secret>'")
        with self._use() as run:
            rows = run("SELECT t.secret_sha256, t.expires_at, t.revoked_at, t.last_used_at, "
                       + ", ".join(f"a.{c.strip()}" for c in _ACCOUNT_COLS.split(","))
                       + " FROM tokens t JOIN accounts a ON a.account_id = t.account_id "
                       "WHERE t.token_id = ?", [token_id])
        row = rows[0] if rows else None
        if not check_secret(token, row[0] if row else None) or row is None:
            raise AuthError(401, "invalid_token", "ficha no válida", "invalid token")
        now = _now()
        account = self._account(row[4:])
        self._check_usable(_utc(row[1]), row[2], account, now)
        last = _utc(row[3])
        if last is None or now - last >= LAST_USED_EVERY:
            with self._use(write=True) as run:
                run("UPDATE tokens SET last_used_at = ? WHERE token_id = ?", [now, token_id])
        return Principal(account, token_id)

    @staticmethod
    def _check_usable(expires_at: datetime, revoked_at: Any, account: Account,
                      now: datetime) -> None:
        if revoked_at is not None:
            raise AuthError(401, "revoked_token", "la ficha fue revocada",
                            "the token was revoked")
        if expires_at <= now:
            raise AuthError(401, "expired_token", "la ficha caducó", "the token expired")
        if account.disabled_at is not None:
            raise AuthError(401, "account_disabled", "la cuenta está desactivada",
                            "the account is disabled")

    # -- browser sessions --------------------------------------------------------------
    def create_session(self, principal: Principal, *, hours: float = 12.0
                       ) -> tuple[str, datetime]:
        """A session for a token holder: (cookie value, expiry). It never outlives its
        token."""
        with self._use() as run:
            exp = run("SELECT expires_at FROM tokens WHERE token_id = ?", [principal.token_id])
        now = _now()
        expires = min(now + timedelta(hours=hours), _utc(exp[0][0]) if exp else now)
        session_id, value, digest = new_session()
        with self._use(write=True) as run:
            run("INSERT INTO sessions (session_id, secret_sha256, token_id, account_id, "
                "created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                [session_id, digest, principal.token_id, principal.account.account_id, now,
                 expires])
        return value, expires

    def session(self, value: str) -> Principal:
        session_id = parse_session(value)
        if session_id is None:
            raise AuthError(401, "malformed_session", "sesión no válida", "invalid session")
        with self._use() as run:
            rows = run("SELECT s.secret_sha256, s.expires_at, s.revoked_at, t.token_id, "
                       "t.expires_at, t.revoked_at, "
                       + ", ".join(f"a.{c.strip()}" for c in _ACCOUNT_COLS.split(","))
                       + " FROM sessions s JOIN tokens t ON t.token_id = s.token_id "
                       "JOIN accounts a ON a.account_id = s.account_id "
                       "WHERE s.session_id = ?", [session_id])
        row = rows[0] if rows else None
        if not check_secret(value, row[0] if row else None) or row is None:
            raise AuthError(401, "invalid_session", "sesión no válida", "invalid session")
        now = _now()
        if row[2] is not None or _utc(row[1]) <= now:
            raise AuthError(401, "session_ended", "la sesión terminó; vuelva a entrar",
                            "the session ended; log in again")
        account = self._account(row[6:])
        self._check_usable(_utc(row[4]), row[5], account, now)
        return Principal(account, str(row[3]), "session", value)

    def end_session(self, value: str) -> None:
        session_id = parse_session(value)
        if session_id is None:
            return
        with self._use(write=True) as run:
            run("UPDATE sessions SET revoked_at = ? WHERE session_id = ? AND revoked_at IS "
                "NULL", [_now(), session_id])

    # -- photos ------------------------------------------------------------------------
    def put_photo(self, sha256: str, media_type: str, data: bytes, account_id: str) -> bool:
        """Store a photo under its SHA-256; False if it was already stored."""
        with self._use(write=True) as run:
            rows = run("INSERT INTO photos (sha256, media_type, size, bytes, account_id, "
                       "received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING "
                       "RETURNING sha256", [sha256, media_type, len(data), data, account_id,
                                            _now()])
        return bool(rows)

    def photo_meta(self, sha256: str) -> tuple[str, int, str] | None:
        """(media type, size, first uploader) of a stored photo."""
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

    def record_submission(self, row: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Write a submission row and its ledger entry in one transaction, under the
        ledger lock. Returns (the stored row, True), or (the row already stored under the
        same account and client id, False) — the caller decides replay or conflict."""
        try:
            with self._use(write=True, ledger_lock=True) as run:
                found = run(_SELECT_SUBMISSION + " WHERE s.account_id = ? AND s.client_id = ?",
                            [row["account_id"], row["client_id"]])
                if found:
                    return self._submission(found[0]), False
                entry = submission_entry(row)
                le = append_entry(run, "submission", row["submission_id"], entry)
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

    def _visible(self, principal: Principal) -> tuple[str, list[object]]:
        """SQL condition (and parameters) for the submissions a caller may see."""
        acc = principal.account
        if acc.role is Role.ADMIN:
            return "TRUE", []
        if acc.role is Role.OBSERVER:
            return "s.account_id = ?", [acc.account_id]
        parts = ["s.account_id = ?"]
        params: list[object] = [acc.account_id]
        sc = acc.scope
        if sc.actas:
            parts.append("s.acta_key = ANY(?)" if self.pg else "list_contains(?, s.acta_key)")
            params.append(sorted({acta_key(a) for a in sc.actas}))
        for p in sc.areas:
            parts.append("(starts_with(s.area1_code, ?) OR starts_with(s.area2_code, ?) OR "
                         "starts_with(s.area3_code, ?))")
            params += [p, p, p]
        for area, name in sc.place_rules():
            if area is None:
                parts.append("s.place_key = ?")
                params.append(name)
            else:
                parts.append("(s.place_key = ? AND (starts_with(s.area1_code, ?) OR "
                             "starts_with(s.area2_code, ?) OR starts_with(s.area3_code, ?)))")
                params += [name, area, area, area]
        return "(" + " OR ".join(parts) + ")", params

    def can_see(self, principal: Principal, row: dict[str, Any]) -> bool:
        """The same rule as :meth:`_visible`, for one row in Python."""
        acc = principal.account
        if acc.role is Role.ADMIN or row["account_id"] == acc.account_id:
            return True
        if acc.role is Role.OBSERVER:
            return False
        return acc.scope.covers(row["acta_key"], (row["area1_code"], row["area2_code"],
                                                  row["area3_code"]), row["place_key"])

    def list_submissions(self, principal: Principal, *, acta: str | None = None,
                         category: str | None = None, account: str | None = None,
                         contest: str | None = None, limit: int = 100, offset: int = 0
                         ) -> tuple[list[dict[str, Any]], int]:
        where, params = self._visible(principal)
        conds, args = [where], list(params)
        if acta is not None:
            conds.append("s.acta_key = ?")
            args.append(acta_key(acta))
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

    def photo_visible(self, principal: Principal, sha256: str) -> bool:
        meta = self.photo_meta(sha256)
        if meta is None:
            return False
        if principal.role is Role.ADMIN or meta[2] == principal.account.account_id:
            return True
        where, params = self._visible(principal)
        with self._use() as run:
            return bool(run("SELECT 1 FROM submissions s WHERE s.photo_sha256 = ? AND "
                            + where + " LIMIT 1", [sha256, *params]))

    # -- what the official side holds --------------------------------------------------
    def default_contest(self) -> str | None:
        """The contest of the most recent snapshot (as ``service.default_contest``)."""
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
        """The latest per-acta snapshot of the contest (``latest`` with kind actas)."""
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


def place_of(name: str | None) -> str | None:
    return place_key(name) if name else None


__all__ = ["ObserverApiDisabled", "Repo", "place_of"]
