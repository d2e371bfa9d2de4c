"""The observer server's accounts, tokens, sessions, photos and submissions: the rules
(who may sign in, who may see what, what is idempotent), over the observer repository of
the store (:mod:`escrutinio.store.observers_repo`), which holds every SQL statement, on
DuckDB and on PostgreSQL.

:class:`Repo` never shares a connection with the rest of the app: on PostgreSQL the
repository has a small pool of its own (``ESCRUTINIO_DB_POOL``, default 4 per process); a
connection that breaks raises
:class:`~escrutinio.store.server_db.DatabaseUnavailable` (answered 503 with
``Retry-After``). On DuckDB it has one dedicated cursor behind a lock (one writer, in the
one process that may open the file read-write).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
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
from escrutinio.store.ledger import LedgerEntry, SubmissionProof, submission_entry
from escrutinio.store.observers_repo import (
    SUBMISSION_ROW,
    ObserverRepo,
    ObserverStoreReadOnly,
    Visibility,
    open_observer_repo,
)

#: last_used_at is written at most this often per token
LAST_USED_EVERY: Final = timedelta(seconds=60)


class ObserverApiDisabled(EscrutinioError):
    """The app's store cannot take writes (a read-only DuckDB file)."""


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _now() -> datetime:
    return datetime.now(UTC)


class Repo:
    """Accounts, tokens, sessions, photos and submissions over ``store``'s database (a
    :class:`~escrutinio.store.base.Store`, or a catalogue wrapping one). The SQL is in
    :attr:`db` (:class:`~escrutinio.store.observers_repo.ObserverRepo`)."""

    def __init__(self, store: Store, *, pool_size: int = 4) -> None:
        try:
            self.db: ObserverRepo = open_observer_repo(store, pool_size=pool_size)
        except ObserverStoreReadOnly as exc:
            raise ObserverApiDisabled(exc.message_es, exc.message_en) from None

    @property
    def backend_name(self) -> str:
        return self.db.backend_name

    def close(self) -> None:
        self.db.close()

    def ping(self) -> None:
        self.db.ping()

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
        if not self.db.insert_account([
                acc.account_id, acc.name, acc.role.value,
                json.dumps(acc.scope.to_dict(), ensure_ascii=False), acc.created_at, None]):
            raise AuthError(409, "name_taken", f"ya existe una cuenta {name!r}",
                            f"there is already an account {name!r}")
        return acc

    def account(self, ref: str) -> Account | None:
        """An account by id or by name."""
        row = self.db.account(ref)
        return self._account(row) if row else None

    def require_account(self, ref: str) -> Account:
        acc = self.account(ref)
        if acc is None:
            raise UnknownReferenceError(f"cuenta desconocida: {ref[:80]!r} ('escrutinio "
                                        "accounts list' las muestra)",
                                        f"unknown account: {ref[:80]!r} ('escrutinio "
                                        "accounts list' shows them)")
        return acc

    def accounts(self) -> list[Account]:
        return [self._account(r) for r in self.db.accounts()]

    def set_disabled(self, account_id: str, disabled: bool) -> Account:
        self.db.set_disabled(account_id, _now() if disabled else None)
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
        self.db.insert_token(token_id, acc.account_id, digest, info.created_at,
                             info.expires_at)
        return token, info

    def revoke_token(self, token_id: str) -> TokenInfo:
        row = self.db.revoke_token(token_id, _now())
        if row is None:
            raise UnknownReferenceError(f"ficha desconocida: {token_id[:40]!r}",
                                        f"unknown token: {token_id[:40]!r}")
        return self._token(row)

    def tokens(self, account_id: str | None = None) -> list[TokenInfo]:
        return [self._token(r) for r in self.db.tokens(account_id)]

    def authenticate(self, token: str) -> Principal:
        """The caller a bearer token stands for, or :class:`AuthError` (401) naming why."""
        token_id = parse_token(token)
        if token_id is None:
            raise AuthError(401, "malformed_token",
                            "ficha mal formada: se espera 'Bearer esc_<id>.<secreto>'",
                            "malformed token: expected 'Bearer esc_<id>.<secret>'")
        row = self.db.token_with_account(token_id)
        if not check_secret(token, row[0] if row else None) or row is None:
            raise AuthError(401, "invalid_token", "ficha no válida", "invalid token")
        now = _now()
        account = self._account(row[4:])
        self._check_usable(_utc(row[1]), row[2], account, now)
        last = _utc(row[3])
        if last is None or now - last >= LAST_USED_EVERY:
            self.db.touch_token(token_id, now)
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
        exp = self.db.token_expiry(principal.token_id)
        now = _now()
        expires = min(now + timedelta(hours=hours), exp if exp is not None else now)
        session_id, value, digest = new_session()
        self.db.insert_session(session_id, digest, principal.token_id,
                               principal.account.account_id, now, expires)
        return value, expires

    def session(self, value: str) -> Principal:
        session_id = parse_session(value)
        if session_id is None:
            raise AuthError(401, "malformed_session", "sesión no válida", "invalid session")
        row = self.db.session_with_token(session_id)
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
        self.db.end_session(session_id, _now())

    # -- photos ------------------------------------------------------------------------
    def put_photo(self, sha256: str, media_type: str, data: bytes, account_id: str) -> bool:
        """Store a photo under its SHA-256; False if it was already stored."""
        return self.db.put_photo(sha256, media_type, data, account_id, _now())

    def photo_meta(self, sha256: str) -> tuple[str, int, str] | None:
        """(media type, size, first uploader) of a stored photo."""
        return self.db.photo_meta(sha256)

    def photo_bytes(self, sha256: str) -> bytes | None:
        return self.db.photo_bytes(sha256)

    # -- submissions -------------------------------------------------------------------
    def submission_by_key(self, account_id: str, client_id: str) -> dict[str, Any] | None:
        return self.db.submission_by_key(account_id, client_id)

    def submission(self, submission_id: str) -> dict[str, Any] | None:
        return self.db.submission(submission_id)

    def record_submission(self, row: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Write a submission row and its ledger entry in one transaction, under the
        ledger lock. Returns (the stored row, True), or (the row already stored under the
        same account and client id, False) — the caller decides replay or conflict."""
        return self.db.record_submission(row, submission_entry)

    @staticmethod
    def visibility(principal: Principal) -> Visibility:
        """Which submissions a caller may see: an admin all, an observer their own, a
        coordinator their own and those their scope covers (actas, areas, places)."""
        acc = principal.account
        if acc.role is Role.ADMIN:
            return Visibility(acc.account_id, everything=True)
        if acc.role is Role.OBSERVER:
            return Visibility(acc.account_id)
        sc = acc.scope
        return Visibility(acc.account_id,
                          acta_keys=tuple(sorted({acta_key(a) for a in sc.actas})),
                          area_prefixes=tuple(sc.areas), places=tuple(sc.place_rules()))

    def can_see(self, principal: Principal, row: dict[str, Any]) -> bool:
        """The same rule as :meth:`visibility`, for one row in Python."""
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
        return self.db.list_submissions(
            self.visibility(principal), acta_key=None if acta is None else acta_key(acta),
            category=category, account=account, contest=contest, limit=limit, offset=offset)

    def photo_visible(self, principal: Principal, sha256: str) -> bool:
        meta = self.photo_meta(sha256)
        if meta is None:
            return False
        if principal.role is Role.ADMIN or meta[2] == principal.account.account_id:
            return True
        return self.db.photo_in_visible_submission(sha256, self.visibility(principal))

    # -- what the official side holds --------------------------------------------------
    def default_contest(self) -> str | None:
        """The contest of the most recent snapshot (as ``service.default_contest``)."""
        return self.db.default_contest()

    def contest(self, contest_id: str) -> Contest | None:
        return self.db.contest(contest_id)

    def latest_actas_snapshot(self, contest_id: str) -> str | None:
        """The latest per-acta snapshot of the contest (``latest`` with kind actas)."""
        return self.db.latest_actas_snapshot(contest_id)

    # -- the log -----------------------------------------------------------------------
    def checkpoint(self) -> LedgerEntry | None:
        return self.db.checkpoint()

    def checkpoints(self) -> list[dict[str, Any]]:
        return self.db.checkpoints()

    def prove(self, submission_id: str) -> SubmissionProof:
        return self.db.prove(submission_id)

    def head(self) -> tuple[int, str | None]:
        return self.db.head()


def place_of(name: str | None) -> str | None:
    return place_key(name) if name else None


__all__ = ["LAST_USED_EVERY", "SUBMISSION_ROW", "ObserverApiDisabled", "Repo", "place_of"]
