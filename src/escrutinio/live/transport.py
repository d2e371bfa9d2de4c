"""HTTP with manners: browser-like headers, primed cookies, a global rate limit with
jitter, explicit timeouts, bounded exponential backoff, and every answer logged.

Standard library only (``http.client`` with kept-alive connections, as a browser keeps
them, and ``http.cookiejar``). Redirects are not followed: a redirect from a JSON API is a
WAF or a moved route, and the classifier treats its body like any other. TLS impersonation of
Chrome (``curl_cffi``) is optional: set ``transport.impersonate = "chrome"`` and install
``curl_cffi``; without it the transport says so in the log and uses urllib.

Proxies: ``transport.proxy = "env"`` (the default) honours ``HTTPS_PROXY``/``HTTP_PROXY``/
``NO_PROXY``; ``"none"`` ignores them; a URL forces that proxy. Loopback addresses
(127.0.0.0/8, ::1, localhost) never go through a proxy.

Time comes from an injectable :class:`Clock`, so a test can compress twelve hours of
polling (rate-limit pauses, backoffs, intervals) into seconds.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import http.cookiejar
import ipaddress
import logging
import random
import socket
import threading
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from escrutinio.live.classify import (
    RETRYABLE,
    Classification,
    Outcome,
    RawResponse,
    classify,
)
from escrutinio.live.config import Stack, TransportConfig

log = logging.getLogger("escrutinio.live")


# --- clocks ----------------------------------------------------------------------------

class Clock(Protocol):
    def now(self) -> datetime: ...  # aware, UTC

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Sleep up to ``seconds``, returning early (True) when ``event`` is set."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(max(0.0, seconds))


class FakeClock:
    """Virtual time: ``sleep`` advances it instantly. Thread-safe, so a fake server in
    another thread can read the same clock."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 6, 7, 23, 0, tzinfo=UTC)
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        with self._lock:
            return self._offset

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._offset += seconds

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        self.sleep(seconds)
        return event.is_set()


# --- rate limit ------------------------------------------------------------------------

class RateLimiter:
    """Global cap on request starts (``rate_per_s``) plus a uniform jitter."""

    def __init__(self, rate_per_s: float, jitter_s: float, clock: Clock,
                 rng: random.Random) -> None:
        self.interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self.jitter_s = max(0.0, jitter_s)
        self.clock = clock
        self.rng = rng
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> float:
        with self._lock:
            now = self.clock.monotonic()
            start = max(now, self._next) + self.rng.uniform(0.0, self.jitter_s)
            self._next = start + self.interval
        delay = start - now
        if delay > 0:
            self.clock.sleep(delay)
        return max(0.0, delay)


# --- the transport ---------------------------------------------------------------------

def browser_headers(site_url: str, user_agent: str, *, document: bool = False
                    ) -> dict[str, str]:
    """Headers of Chrome calling the site's own API (or loading the page)."""
    site = site_url.rstrip("/")
    h = {
        "User-Agent": user_agent,
        "Accept-Language": "es-PE,es;q=0.9,en-US;q=0.8,en;q=0.7",
        "Accept-Encoding": "gzip, deflate",
        "sec-ch-ua": '"Not/A)Brand";v="8", "Chromium";v="126", "Google Chrome";v="126"',
        "sec-ch-ua-mobile": "?0",
        "sec-ch-ua-platform": '"Windows"',
    }
    if document:
        h |= {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,"
                        "image/avif,image/webp,*/*;q=0.8",
              "Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate",
              "Sec-Fetch-Site": "none", "Sec-Fetch-User": "?1",
              "Upgrade-Insecure-Requests": "1"}
    else:
        h |= {"Accept": "application/json, text/plain, */*", "Referer": f"{site}/",
              "Origin": site, "Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors",
              "Sec-Fetch-Site": "same-origin"}
    return h


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _decode_body(body: bytes, encoding: str | None) -> bytes:
    from escrutinio.errors import IngestError
    from escrutinio.sources.base import gunzip_capped

    enc = (encoding or "").lower().strip()
    try:
        if enc == "gzip" or body[:2] == b"\x1f\x8b":
            try:  # capped: a hostile server's gzip bomb costs the cap, not the bomb
                return gunzip_capped(body, "response")
            except IngestError as exc:
                if exc.rule == "decompressed_too_large":
                    return b""  # nothing usable: the classifier sees an empty body
                raise OSError(exc.rule) from None
        if enc == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)
    except (OSError, EOFError, zlib.error):
        return body  # a cut compressed body: the classifier will see garbage
    return body


@dataclass(frozen=True, slots=True)
class FetchResult:
    response: RawResponse  # the last attempt
    classification: Classification
    attempts: int


class Transport:
    """One HTTP client per watcher. ``on_response`` sees every exchange (for the raw
    log) with its classification, retries included."""

    def __init__(self, cfg: TransportConfig, *, site_url: str, stack: Stack,
                 clock: Clock | None = None, seed: int | None = None,
                 on_response: Callable[[RawResponse, Classification], None] | None = None,
                 on_event: Callable[[str, str, str, dict[str, Any]], None] | None = None,
                 stop: threading.Event | None = None) -> None:
        self.cfg = cfg
        #: set (by SIGTERM) to cut a backoff short: the request returns what it has
        self.stop = stop or threading.Event()
        self.site_url = site_url.rstrip("/")
        self.stack = stack
        self.clock: Clock = clock or SystemClock()
        self.rng = random.Random(seed)
        self.limiter = RateLimiter(cfg.rate_per_s, cfg.jitter_s, self.clock, self.rng)
        self.on_response = on_response
        self.on_event = on_event
        self.cookies = http.cookiejar.CookieJar()
        self.primed = False
        self.requests = 0
        self._curl: Any = None
        if cfg.impersonate:
            try:
                from curl_cffi import requests as curl_requests  # type: ignore[import-not-found]

                # proxies are decided here (loopback never, "none" never), not by curl
                self._curl = curl_requests.Session(impersonate=cfg.impersonate,
                                                   trust_env=False)
            except ImportError:
                self._emit("impersonation_unavailable",
                           "curl_cffi no está instalado: se usa urllib sin huella TLS de Chrome",
                           "curl_cffi is not installed: using urllib without a Chrome TLS "
                           "fingerprint", {"impersonate": cfg.impersonate})
        self._pool: dict[tuple[str, str, int, str | None],
                         http.client.HTTPConnection] = {}

    def _emit(self, kind: str, es: str, en: str, detail: dict[str, Any]) -> None:
        log.warning("%s: %s", kind, en)
        if self.on_event is not None:
            self.on_event(kind, es, en, detail)

    def _proxy_for(self, split: urllib.parse.SplitResult) -> urllib.parse.SplitResult | None:
        url = urllib.parse.urlunsplit(split)
        if is_loopback(url) or self.cfg.proxy == "none":
            return None
        if self.cfg.proxy == "env":
            if urllib.request.proxy_bypass(split.hostname or ""):
                return None
            proxy = urllib.request.getproxies().get(split.scheme)
        else:
            proxy = self.cfg.proxy
        return urllib.parse.urlsplit(proxy) if proxy else None

    def _connection(self, split: urllib.parse.SplitResult
                    ) -> tuple[http.client.HTTPConnection, bool, bool]:
        """(connection, reused, via an absolute-URL HTTP proxy). Connections are kept
        alive and reused, as a browser does."""
        proxy = self._proxy_for(split)
        key = (split.scheme, split.hostname or "", split.port or 0,
               None if proxy is None else proxy.geturl())
        absolute = proxy is not None and split.scheme == "http"
        conn = self._pool.get(key)
        if conn is not None:
            return conn, True, absolute
        tls = split.scheme == "https"
        port = split.port or (443 if tls else 80)
        host = split.hostname or ""
        timeout = self.cfg.timeout_s
        if proxy is None:
            conn = (http.client.HTTPSConnection(host, port, timeout=timeout) if tls
                    else http.client.HTTPConnection(host, port, timeout=timeout))
        else:
            p_tls = proxy.scheme == "https"
            p_port = proxy.port or (443 if p_tls else 80)
            p_host = proxy.hostname or ""
            conn = (http.client.HTTPSConnection(p_host, p_port, timeout=timeout) if p_tls
                    else http.client.HTTPConnection(p_host, p_port, timeout=timeout))
            if tls:
                auth = {}
                if proxy.username:
                    cred = (f"{urllib.parse.unquote(proxy.username)}:"
                            f"{urllib.parse.unquote(proxy.password or '')}")
                    auth = {"Proxy-Authorization":
                            "Basic " + base64.b64encode(cred.encode()).decode()}
                conn.set_tunnel(host, port, headers=auth)
        self._pool[key] = conn
        return conn, False, absolute

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        for k, v in list(self._pool.items()):
            if v is conn:
                del self._pool[k]
        with contextlib.suppress(Exception):
            conn.close()

    def close(self) -> None:
        for conn in list(self._pool.values()):
            self._drop(conn)
        if self._curl is not None:
            with contextlib.suppress(Exception):
                self._curl.close()

    def _exchange(self, url: str, headers: dict[str, str]
                  ) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
        """One request on a kept-alive connection (one silent reconnect when a reused
        connection turns out to be closed by the server). Cookies in and out."""
        split = urllib.parse.urlsplit(url)
        req = urllib.request.Request(url, headers=headers)
        self.cookies.add_cookie_header(req)
        all_headers = dict(req.header_items())
        target = urllib.parse.urlunsplit(("", "", split.path or "/", split.query, ""))
        for again in (True, False):
            conn, reused, absolute = self._connection(split)
            try:
                conn.request("GET", url if absolute else target, headers=all_headers)
                resp = conn.getresponse()
                body = resp.read(self.cfg.max_body_bytes + 1)
                if len(body) <= self.cfg.max_body_bytes:
                    resp.read()  # drain, so that the connection can be reused
                self.cookies.extract_cookies(resp, req)  # type: ignore[arg-type]
                if resp.will_close:
                    self._drop(conn)
                return (int(resp.status),
                        tuple((str(k), str(v)) for k, v in resp.getheaders()), body)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady):
                self._drop(conn)
                if not (again and reused):
                    raise
            except BaseException:
                self._drop(conn)
                raise
        raise http.client.HTTPException("unreachable")  # pragma: no cover

    # -- one exchange --------------------------------------------------------------------
    def send_once(self, url: str, *, scope: str = "", endpoint: str = "", attempt: int = 1,
                  document: bool = False) -> RawResponse:
        """One GET, no retry. Never raises for network trouble: it becomes a response
        with ``status=None`` and ``error`` set."""
        headers = browser_headers(self.site_url, self.cfg.user_agent, document=document)
        self.requests += 1
        t0 = time.perf_counter()
        status: int | None = None
        hdrs: tuple[tuple[str, str], ...] = ()
        body = b""
        error: str | None = None
        if self._curl is not None:
            try:
                via = self._proxy_for(urllib.parse.urlsplit(url))
                proxies = None if via is None else {"http": via.geturl(),
                                                    "https": via.geturl()}
                r = self._curl.get(url, headers=headers, timeout=self.cfg.timeout_s,
                                   proxies=proxies, allow_redirects=False)
                status, body = int(r.status_code), bytes(r.content)
                hdrs = tuple((str(k), str(v)) for k, v in r.headers.items())
                if len(body) > self.cfg.max_body_bytes:
                    body, error, status = (b"", f"body above {self.cfg.max_body_bytes} bytes",
                                           None)
            except Exception as exc:  # curl_cffi raises its own error types
                error = f"{type(exc).__name__}: {exc}"
        else:
            try:
                status, hdrs, body = self._exchange(url, headers)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if isinstance(exc, socket.timeout | TimeoutError):
                    error = f"timeout after {self.cfg.timeout_s}s"
                else:
                    error = f"{type(exc).__name__}: {exc}"
            if body and len(body) > self.cfg.max_body_bytes:
                body, error, status = b"", f"body above {self.cfg.max_body_bytes} bytes", None
            enc = next((v for k, v in hdrs if k.lower() == "content-encoding"), None)
            body = _decode_body(body, enc)
        return RawResponse(url=url, status=status, headers=hdrs, body=body,
                           fetched_at=self.clock.now(), elapsed_s=time.perf_counter() - t0,
                           error=error, scope=scope, endpoint=endpoint, attempt=attempt)

    def prime(self) -> RawResponse:
        """Load the site once, as a browser would, to get its cookies."""
        self.limiter.wait()
        url = f"{self.site_url}{self.cfg.prime_path}"
        resp = self.send_once(url, scope="site", endpoint="prime", document=True)
        if self.on_response is not None:
            ok = resp.status is not None and resp.status < 400
            self.on_response(resp, Classification(
                Outcome.OK if ok else classify(resp, self.stack).outcome,
                "primed" if ok else "prime_failed"))
        self.primed = resp.status is not None and resp.status < 400
        return resp

    def backoff(self, attempt: int, cls: Classification) -> float:
        """Seconds to wait before attempt ``attempt + 1``: base·2^(attempt−1), capped,
        times a uniform jitter in [1, 1.5); a 429's Retry-After is honoured (capped)."""
        base = min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * 2 ** (attempt - 1))
        delay = base * self.rng.uniform(1.0, 1.5)
        if cls.retry_after_s is not None:
            delay = max(delay, min(cls.retry_after_s, self.cfg.backoff_max_s))
        return min(delay, self.cfg.backoff_max_s * 1.5)

    def get(self, url: str, *, scope: str = "", endpoint: str = "",
            max_attempts: int | None = None) -> FetchResult:
        """GET with the full policy: rate limit, classify, retry what is retryable
        (transient; blocked after re-priming cookies) with bounded exponential backoff.
        Hard blocks, API errors and no-data answers return at once."""
        attempts = max(1, max_attempts or self.cfg.max_attempts)
        resp: RawResponse | None = None
        cls: Classification | None = None
        for attempt in range(1, attempts + 1):
            self.limiter.wait()
            resp = self.send_once(url, scope=scope, endpoint=endpoint, attempt=attempt)
            cls = classify(resp, self.stack)
            if self.on_response is not None:
                self.on_response(resp, cls)
            if cls.outcome not in RETRYABLE or attempt == attempts:
                return FetchResult(resp, cls, attempt)
            if cls.outcome is Outcome.BLOCKED:
                self.prime()
            if self.clock.wait(self.stop, self.backoff(attempt, cls)):
                return FetchResult(resp, cls, attempt)  # stopping: no more attempts
        assert resp is not None and cls is not None  # the loop runs at least once
        return FetchResult(resp, cls, attempts)
