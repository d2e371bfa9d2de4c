"""Security headers, CORS and the security log, for every response of the app.

:func:`install_security` puts :class:`SecurityLayer` outside everything else (the front
cache and, in server mode, the database gate included), so that every response — a page,
a cached permalink, a 503 — carries the same headers:

* ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and CSP
  ``frame-ancestors 'none'`` (no framing, no clickjacking), ``Referrer-Policy:
  same-origin``, ``Cross-Origin-Opener-Policy: same-origin``, a ``Permissions-Policy``
  that turns off camera, microphone and location, and ``Strict-Transport-Security`` when
  the request came over https (behind a TLS proxy: run uvicorn with ``--proxy-headers``).
* A ``Content-Security-Policy`` the pages satisfy: scripts and styles only from the site
  itself (no CDN; ``/static/app.js`` is the only script and there is no inline script);
  ``style-src`` also allows inline ``style`` attributes, which the server-rendered bars
  and swatches use (widths and colours computed per row) — never ``<style>`` from users.
* CORS: the public read-only API (GET/HEAD under ``/api/v1/``) answers
  ``Access-Control-Allow-Origin: *``; the observer and admin endpoints and the
  coordinator pages send no CORS header and refuse preflights, so no other site can call
  them from a browser. Everything under those prefixes is ``Cache-Control: no-store``.
* One structured (JSON) log line per refused request (4xx/5xx) on logger
  ``escrutinio.security``: method, path, status, reason, account pseudonym, token id,
  client address — with every secret redacted (the ``Authorization`` header keeps only
  its public token id; cookies and bodies are never logged).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Final

from fastapi import FastAPI

from escrutinio.server.auth import redact, redact_header

log = logging.getLogger("escrutinio.security")

#: paths that act for an account: no CORS, no caching, every refusal logged as a warning
SENSITIVE: Final = ("/api/v1/observer", "/api/v1/admin", "/coordinator", "/en/coordinator")
PUBLIC_API: Final = "/api/v1/"
CSP: Final = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
              "img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; "
              "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
HSTS: Final = "max-age=31536000; includeSubDomains"
BASE_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)
#: where a route leaves what the log should say about a refusal (``request.state``)
STATE_REASON: Final = "security_reason"
STATE_ACCOUNT: Final = "security_account"
STATE_TOKEN: Final = "security_token_id"


def is_sensitive(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in SENSITIVE)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")
    return None


def _clip(text: str | None, n: int) -> str | None:
    if text is None:
        return None
    text = redact(text) or ""
    return text if len(text) <= n else text[:n] + "…"


class SecurityLayer:
    """Outermost ASGI layer: headers, CORS, preflights, and the security log."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        sensitive = is_sensitive(path)
        public_api = path.startswith(PUBLIC_API) and not sensitive
        https = scope.get("scheme") == "https"
        started = time.monotonic()
        if method == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await self._preflight(scope, send, public_api, started)
            return
        status_box: list[int] = []

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                status_box.append(int(message["status"]))
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                extra = [h for h in BASE_HEADERS if h[0] not in have]
                if b"content-security-policy" not in have:
                    extra.append((b"content-security-policy", CSP.encode()))
                if https:
                    extra.append((b"strict-transport-security", HSTS.encode()))
                if (public_api and method in ("GET", "HEAD")
                        and b"access-control-allow-origin" not in have):
                    extra.append((b"access-control-allow-origin", b"*"))
                if sensitive:
                    headers = [(k, v) for k, v in headers
                               if not k.lower().startswith(b"access-control-")
                               and k.lower() != b"cache-control"]
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers + extra}
            await send(message)

        try:
            await self.inner(scope, receive, wrapped)
        finally:
            status = status_box[0] if status_box else 500
            if status >= 400:
                self._log(scope, status, started, sensitive)

    async def _preflight(self, scope: Any, send: Any, public_api: bool,
                         started: float) -> None:
        if public_api:
            status, headers = 204, [
                (b"access-control-allow-origin", b"*"),
                (b"access-control-allow-methods", b"GET, HEAD"),
                (b"access-control-allow-headers", b"Accept, Accept-Encoding, If-None-Match"),
                (b"access-control-max-age", b"600"), *BASE_HEADERS]
            body = b""
        else:
            state = scope.setdefault("state", {})
            state[STATE_REASON] = "cors_refused"
            status = 403
            body = json.dumps({
                "error": "HTTPError", "status": 403,
                "message_es": "esta dirección no admite llamadas desde otros sitios",
                "message_en": "this address does not accept calls from other sites"}).encode()
            headers = [(b"content-type", b"application/json"),
                       (b"cache-control", b"no-store"), *BASE_HEADERS]
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        if status >= 400:
            self._log(scope, status, started, True)

    @staticmethod
    def _log(scope: Any, status: int, started: float, sensitive: bool) -> None:
        state = scope.get("state") or {}
        client = scope.get("client")
        qs = scope.get("query_string", b"").decode("latin-1")
        line = {
            "event": "refused" if status < 500 else "error", "status": status,
            "method": scope.get("method"), "path": _clip(scope.get("path"), 300),
            "query": _clip(qs, 300) if qs else None,
            "reason": state.get(STATE_REASON), "account": state.get(STATE_ACCOUNT),
            "token_id": state.get(STATE_TOKEN),
            "authorization": _clip(redact_header(_header(scope, b"authorization")), 80),
            "cookie": "present" if _header(scope, b"cookie") else None,
            "origin": _clip(_header(scope, b"origin"), 120),
            "client": client[0] if client else None,
            "user_agent": _clip(_header(scope, b"user-agent"), 160),
            "ms": round(1000 * (time.monotonic() - started), 1),
        }
        text = json.dumps({k: v for k, v in line.items() if v is not None},
                          ensure_ascii=False)
        if status >= 500:
            log.error(text)
        elif sensitive or status in (401, 403):
            log.warning(text)
        else:
            log.info(text)


def install_security(app: FastAPI) -> None:
    """Wrap the whole app (front cache and gate included) in :class:`SecurityLayer`."""
    app.hot = SecurityLayer(app.hot)  # type: ignore[attr-defined]
