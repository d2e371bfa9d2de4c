"""Tokens, roles, scopes, browser sessions and CSRF tokens (docs/observers.md).

Pure functions and small value types: the SQL is in :mod:`escrutinio.server.repo`.

* A token is ``esc_<token_id>.<secret>``: ``token_id`` 16 hex digits (public), ``secret``
  32 random bytes in URL-safe base64 (43 characters). Only SHA-256 of the whole token is
  stored; comparisons are constant-time.
* A session cookie is ``ess_<session_id>.<secret>``, stored the same way. Its CSRF token
  is HMAC-SHA256(secret, "csrf"): any worker can check it without shared state.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from escrutinio.errors import EscrutinioError

TOKEN_PREFIX: Final = "esc_"
SESSION_PREFIX: Final = "ess_"
_TOKEN_RE: Final = re.compile(r"^esc_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")
_SESSION_RE: Final = re.compile(r"^ess_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")
#: a syntactically valid token that matches nothing, to spend the same time on misses
_SECRET_RE: Final = re.compile(r"(es[cs]_[0-9A-Za-z]{0,16})\.[A-Za-z0-9_\-]+")
_DUMMY_HASH: Final = hashlib.sha256(b"escrutinio-dummy-token").hexdigest()
#: scope limits: entries per list and characters per entry
SCOPE_MAX_ENTRIES: Final = 20_000
SCOPE_MAX_CHARS: Final = 200
#: account names: letters (any script), digits, space and . _ @ + ' - ; 1-100 characters
NAME_RE: Final = re.compile(r"^[^\W_][\w .@+'-]{0,99}$")


class Role(StrEnum):
    OBSERVER = "observer"
    COORDINATOR = "coordinator"
    ADMIN = "admin"


class AuthError(EscrutinioError):
    """A request that cannot be served for who is asking. ``status`` is the HTTP status,
    ``reason`` a short code for the security log and the client."""

    def __init__(self, status: int, reason: str, message_es: str, message_en: str) -> None:
        super().__init__(message_es, message_en)
        self.status = status
        self.reason = reason


# -- secrets -------------------------------------------------------------------------------
def hash_secret(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))


def new_token() -> tuple[str, str, str]:
    """(token_id, full token, SHA-256 of the full token)."""
    token_id = secrets.token_hex(8)
    token = f"{TOKEN_PREFIX}{token_id}.{secrets.token_urlsafe(32)}"
    return token_id, token, hash_secret(token)


def new_session() -> tuple[str, str, str]:
    """(session_id, cookie value, SHA-256 of the cookie value)."""
    session_id = secrets.token_hex(8)
    value = f"{SESSION_PREFIX}{session_id}.{secrets.token_urlsafe(32)}"
    return session_id, value, hash_secret(value)


def parse_token(token: str) -> str | None:
    """The token id of a well-formed token, else None."""
    m = _TOKEN_RE.match(token)
    return m.group(1) if m else None


def parse_session(value: str) -> str | None:
    m = _SESSION_RE.match(value)
    return m.group(1) if m else None


def check_secret(presented: str, stored_sha256: str | None) -> bool:
    """Constant-time check of a presented token/cookie against its stored hash (a missing
    record is compared against a dummy hash, so a miss costs the same time)."""
    ok = same_hash(hash_secret(presented), stored_sha256 or _DUMMY_HASH)
    return ok and stored_sha256 is not None


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header; "" if the header is there but
    is not a bearer token; None if there is no header."""
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return ""
    return value.strip()


def redact(text: str | None) -> str | None:
    """``text`` with the secret part of every token or session value replaced (the public
    id stays): safe to log."""
    if text is None:
        return None
    return _SECRET_RE.sub(r"\1.[REDACTED]", text)


def redact_header(value: str | None) -> str | None:
    """An ``Authorization`` or ``Cookie`` value safe to log: tokens keep their public id;
    anything else keeps only its scheme."""
    if value is None:
        return None
    out = redact(value)
    if out != value:
        return out
    scheme, sep, rest = value.strip().partition(" ")
    return f"{scheme[:20]} [REDACTED]" if sep and rest else "[REDACTED]"


def csrf_token(session_value: str) -> str:
    """The synchronizer token of a session (derived from its secret: stateless)."""
    return hmac.new(session_value.encode("utf-8"), b"escrutinio-csrf",
                    hashlib.sha256).hexdigest()


def check_csrf(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected.encode(),
                                                   str(presented).encode("utf-8", "replace"))


# -- scopes --------------------------------------------------------------------------------
def acta_key(acta_id: str) -> str:
    """How acta ids are compared in scopes: trimmed, and numeric ids by value (``1`` is
    ``000001``), so a scope need not know the authority's zero padding."""
    s = acta_id.strip()
    if s.isascii() and s.isdigit():
        return s.lstrip("0") or "0"
    return s


def place_key(name: str) -> str:
    """Polling places compare case-insensitively with runs of spaces collapsed."""
    return " ".join(name.split()).upper()


@dataclass(frozen=True, slots=True)
class Scope:
    """What an observer covers and a coordinator sees (docs/observers.md, "Roles and
    scopes"). ``places`` entries are ``NAME`` or ``AREA:NAME``."""

    actas: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.actas or self.places or self.areas)

    def to_dict(self) -> dict[str, list[str]]:
        return {"actas": list(self.actas), "places": list(self.places),
                "areas": list(self.areas)}

    @staticmethod
    def from_dict(data: Any) -> Scope:
        """Validate a scope given by an admin (JSON); errors name the list and entry."""
        if data is None:
            return Scope()
        if not isinstance(data, Mapping):
            raise _scope_error("scope", "el alcance debe ser un objeto {actas, places, areas}",
                               "the scope must be an object {actas, places, areas}")
        unknown = sorted(set(data) - {"actas", "places", "areas"})
        if unknown:
            raise _scope_error(unknown[0], f"clave de alcance desconocida {unknown[0]!r}",
                               f"unknown scope key {unknown[0]!r}")
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("actas", "places", "areas"):
            raw = data.get(key) or []
            if not isinstance(raw, list) or len(raw) > SCOPE_MAX_ENTRIES:
                raise _scope_error(key, f"'{key}' debe ser una lista de hasta "
                                   f"{SCOPE_MAX_ENTRIES} textos",
                                   f"'{key}' must be a list of up to {SCOPE_MAX_ENTRIES} "
                                   "strings")
            seen: list[str] = []
            for item in raw:
                if (not isinstance(item, str) or not item.strip()
                        or len(item) > SCOPE_MAX_CHARS or any(ord(ch) < 32 for ch in item)):
                    raise _scope_error(key, f"entrada no válida en '{key}': {str(item)[:40]!r}",
                                       f"invalid entry in '{key}': {str(item)[:40]!r}")
                v = " ".join(item.split())
                if key == "areas" and not re.fullmatch(r"[A-Za-z0-9_.-]+", v):
                    raise _scope_error(key, f"código de área no válido {v[:40]!r}",
                                       f"invalid area code {v[:40]!r}")
                if v not in seen:
                    seen.append(v)
            lists[key] = tuple(seen)
        return Scope(lists["actas"], lists["places"], lists["areas"])

    # -- matching --------------------------------------------------------------------
    def place_rules(self) -> list[tuple[str | None, str]]:
        """(area prefix or None, place key) for every place entry."""
        out: list[tuple[str | None, str]] = []
        for p in self.places:
            area, sep, name = p.partition(":")
            if sep and name.strip() and re.fullmatch(r"[A-Za-z0-9_.-]+", area.strip()):
                out.append((area.strip(), place_key(name)))
            else:
                out.append((None, place_key(p)))
        return out

    def covers(self, acta_id: str, areas: Sequence[str | None] = (),
               place: str | None = None) -> bool:
        """Is this acta (with the area codes and polling place the official actas give
        it; none if the official actas do not have it) in the scope?"""
        if acta_key(acta_id) in {acta_key(a) for a in self.actas}:
            return True
        codes = [a for a in areas if a]
        if any(c.startswith(p) for c in codes for p in self.areas):
            return True
        if place:
            key = place_key(place)
            for area, name in self.place_rules():
                if name == key and (area is None or any(c.startswith(area) for c in codes)):
                    return True
        return False


def _scope_error(field_name: str, es: str, en: str) -> AuthError:
    err = AuthError(422, "bad_scope", es, en)
    err.field = field_name  # type: ignore[attr-defined]
    return err


# -- who is asking -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    name: str
    role: Role
    scope: Scope
    created_at: datetime
    disabled_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "name": self.name, "role": self.role.value,
                "scope": self.scope.to_dict(), "created_at": self.created_at,
                "disabled_at": self.disabled_at}


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    account_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "account_id": self.account_id,
                "created_at": self.created_at, "expires_at": self.expires_at,
                "revoked_at": self.revoked_at, "last_used_at": self.last_used_at}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the account, the token used, and how it came (a bearer
    header or a browser session, whose cookie value derives the CSRF token)."""

    account: Account
    token_id: str
    via: str = "token"  # token | session
    session_value: str | None = field(default=None, repr=False)

    @property
    def role(self) -> Role:
        return self.account.role

    @property
    def pseudonym(self) -> str:
        return self.account.account_id

    def require(self, roles: Iterable[Role]) -> None:
        allowed = set(roles)
        if self.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise AuthError(403, "forbidden_role",
                            f"el rol {self.role.value} no puede usar esto (requiere: {names})",
                            f"role {self.role.value} may not use this (requires: {names})")
