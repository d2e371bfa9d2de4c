"""Server mode on PostgreSQL: stateless workers, a database that may go away, a health check.

``escrutinio --db postgresql://... serve --workers N`` runs N worker processes (more nodes
can run behind a load balancer), all reading one database. This module is what makes that
safe:

* **Stateless workers.** A worker keeps in memory only what is keyed by immutable snapshot
  ids (analysis results, rendered bodies of permalinks). What moves — the snapshot list,
  the contests, ``latest``, the history — is checked against the database on every request:
  one small query (:data:`escrutinio.store.server_db.EPOCH_SQL`) gives the *catalogue
  epoch* (how many snapshots, contests and logged roots there are, and the newest ingest
  time). When it changes the worker reloads the catalogue, and every body cached from then
  on is filed under the new epoch (:class:`EpochCache`, and the epoch is part of
  :class:`~escrutinio.api.app.HotCache` keys through the ASGI scope). Two workers therefore
  never disagree for longer than one query; concurrent requests share one epoch query
  (single flight).
* **The database down.** Connections are opened lazily with short timeouts and TCP
  keepalives, and replaced when they break (a restart of PostgreSQL, a dropped network): a
  worker is never stuck on a dead connection and never needs a restart. While the database
  cannot be reached every endpoint answers ``503`` with ``Retry-After`` and a bilingual
  JSON error (HTML pages: the error page) — never a ``500``, and a write is either
  committed or answered with an error, never acknowledged and lost.
* **Health.** ``GET /api/v1/health`` answers ``200`` when the database answers (with the
  schema version, the ledger head, the catalogue and escrutinio's version) and ``503`` with
  ``Retry-After`` when it does not: what a load balancer polls. It works on DuckDB too.

For other server code (the observer endpoints, :mod:`escrutinio.server`): raise
:class:`~escrutinio.store.server_db.DatabaseUnavailable`, or let
``psycopg.OperationalError`` / ``psycopg.InterfaceError`` escape, and the answer is the
503 above; :data:`~escrutinio.store.server_db.CONNECT_OPTIONS` are the libpq parameters
every server connection uses. The queries (epoch, schema version, ledger head) are in
:mod:`escrutinio.store.server_db`: no SQL is written here.

This module was ``escrutinio.server.resilience``; it belongs to the web app (it extends the
app's caches and catalogue), so it moved here and the observer server (``server/``) no
longer imports ``api/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, cast

import polars as pl
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from escrutinio import __version__
from escrutinio.api.backend import _Cache
from escrutinio.api.catalog import CatalogStore, ReplayClock
from escrutinio.errors import EscrutinioError
from escrutinio.store.base import Store
from escrutinio.store.server_db import (
    CONNECT_OPTIONS,
    DB_DOWN_ERRORS,
    EPOCH_SQL,
    EPOCH_SQL_LEDGER,
    LEDGER_HEAD_SQL,
    RETRY_AFTER,
    SCHEMA_VERSION_SQL,
    DatabaseUnavailable,
    is_db_down,
    open_health,
    unavailable,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from escrutinio.api.backend import Backend

try:  # psycopg is an optional dependency (the "postgres" extra)
    import psycopg
except ImportError:  # pragma: no cover - DuckDB-only installs
    psycopg = None  # type: ignore[assignment]

log = logging.getLogger("escrutinio.server")

HEALTH_PATH = "/api/v1/health"
#: the ASGI scope key holding the request's catalogue epoch (read by HotCache)
EPOCH_SCOPE_KEY = "escrutinio.epoch"
#: bound on one epoch or health query, connection included (seconds)
PROBE_TIMEOUT = 5.0

#: the epoch of the request being served (read by EpochCache in worker threads too:
#: starlette's run_in_threadpool copies the context)
_EPOCH: contextvars.ContextVar[Hashable] = contextvars.ContextVar("escrutinio_epoch",
                                                                  default=None)


def unavailable_payload(exc: DatabaseUnavailable) -> dict[str, Any]:
    return {"error": "DatabaseUnavailable", "status": 503, "message_es": exc.message_es,
            "message_en": exc.message_en, "retry_after": RETRY_AFTER}


def unavailable_response(request: Request, exc: DatabaseUnavailable) -> Response:
    """503 + Retry-After: JSON under /api/, the HTML error page elsewhere."""
    headers = {"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"}
    payload = unavailable_payload(exc)
    if not request.url.path.startswith("/api/"):
        try:
            from escrutinio.api.pages import render_error

            resp = render_error(request, 503, payload)
            resp.headers.update(headers)
            return resp
        except Exception:  # the error page itself must never fail
            log.exception("error page failed; answering 503 as plain JSON")
    return JSONResponse(payload, status_code=503, headers=headers)


# -- stateless catalogue ----------------------------------------------------------------------
class EpochCache(_Cache):
    """A :class:`~escrutinio.api.backend._Cache` whose entries are filed under the catalogue
    epoch of the request that made them: a body rendered before a new snapshot arrived is
    never served after the worker has seen it (and a slow request that started under the old
    epoch files its body under the old epoch, where nobody looks any more)."""

    def get(self, key: Hashable) -> Any | None:
        return super().get((_EPOCH.get(), key))

    def put(self, key: Hashable, value: Any) -> None:
        super().put((_EPOCH.get(), key), value)


class ResultCache(_Cache):
    """Analysis results stay keyed by snapshot ids (immutable), except the few that read
    mutable tables (recorded audits): those are filed under the epoch too."""

    MUTABLE = frozenset({"audit"})

    def _key(self, key: Hashable) -> Hashable:
        if isinstance(key, tuple) and key and key[0] in self.MUTABLE:
            return (_EPOCH.get(), key)
        return key

    def get(self, key: Hashable) -> Any | None:
        return super().get(self._key(key))

    def put(self, key: Hashable, value: Any) -> None:
        super().put(self._key(key), value)


class LiveCatalog(CatalogStore):
    """A :class:`CatalogStore` over a PostgreSQL store that other processes write to: it
    reads nothing when created (a worker starts while the database is down) and reloads the
    snapshot list and the contests when the catalogue epoch changes (:meth:`reload`)."""

    def __init__(self, inner: Store, clock: ReplayClock | None = None, *,
                 read_only: bool = False) -> None:
        # CatalogStore.__init__ would read the catalogue now: set the same fields, empty
        #: False: this server writes (observer submissions, through its own connections
        #: to :attr:`dsn`); the catalogue itself is always read through a read-only one
        self.read_only = read_only
        self.inner = inner
        self.clock = clock
        self.lock = threading.RLock()
        self._all = ()
        self._contests = {}
        self._by_id = {}
        self.epoch: Hashable = None
        self.loaded = False

    @property
    def dsn(self) -> str:
        return str(self.inner.dsn)  # type: ignore[attr-defined]

    def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A read on the data connection, under the lock. Reads are idempotent: when the
        connection turns out to have died since its last use (PostgreSQL restarted), the
        read is tried once more on a new connection, so a restart costs no error."""
        with self.lock:
            try:
                return fn(*args)
            except DB_DOWN_ERRORS:
                con = getattr(self.inner, "_con", None)
                if con is not None and not (con.closed or con.broken):
                    raise
            return fn(*args)

    def load_actas(self, snapshot_id: str) -> pl.DataFrame:
        return self._read(self.inner.load_actas, snapshot_id)  # type: ignore[no-any-return]

    def load_units(self, snapshot_id: str) -> pl.DataFrame:
        return self._read(self.inner.load_units, snapshot_id)  # type: ignore[no-any-return]

    def load_row_reports(self, snapshot_id: str) -> pl.DataFrame:
        return self._read(self.inner.load_row_reports,  # type: ignore[no-any-return]
                          snapshot_id)

    def geography(self, contest_id: str) -> pl.DataFrame:
        return self._read(self.inner.geography, contest_id)  # type: ignore[no-any-return]

    def reload(self, epoch: Hashable) -> None:
        """Read the snapshot list and the contests again (on the data connection)."""
        with self.lock:
            snaps = tuple(self._read(self.inner.list_snapshots))
            contests = {c.id: c for c in self._read(self.inner.contests)}
            geo = getattr(self.inner, "_geography", None)
            if isinstance(geo, dict):
                geo.clear()  # a new snapshot may have added units
            # supersets first: a reader between two assignments finds what it looks up
            self._contests = contests
            self._by_id = {s.snapshot_id: s for s in snaps}
            self._all = snaps
            self.epoch = epoch
            self.loaded = True

    def _ensure_loaded(self) -> None:
        """Outside a request (the warm-up thread) nobody has checked the epoch yet."""
        if not self.loaded:
            try:
                self.reload(None)
            except DB_DOWN_ERRORS as exc:
                raise unavailable(exc) from exc

    def all_snapshots(self) -> tuple[Any, ...]:
        self._ensure_loaded()
        return super().all_snapshots()

    def contests(self) -> list[Any]:
        self._ensure_loaded()
        return super().contests()


class Probe:
    """The worker's own small async connection to PostgreSQL, for the epoch check and the
    health endpoint (separate from the data connection, which a long read may hold)."""

    def __init__(self, catalog: LiveCatalog, *, timeout: float = PROBE_TIMEOUT) -> None:
        self.catalog = catalog
        self.dsn = catalog.dsn
        self.timeout = timeout
        self._con: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inflight: asyncio.Future[Hashable] | None = None
        self._has_ledger = False
        self.down_since: float | None = None
        self.last_error = ""

    def _bind_loop(self) -> None:
        """An async connection belongs to one event loop: a server has one per worker, but
        a test client may run each request on a new loop."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            con, self._con, self._inflight, self._loop = self._con, None, None, loop
            if con is not None and not con.closed:
                con.pgconn.finish()  # the old loop is gone: close the socket directly

    async def _connection(self) -> Any:
        con = self._con
        if con is None or con.closed or con.broken:
            await self._drop()
            con = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True,
                                                        **CONNECT_OPTIONS)
            self._con = con
        return con

    async def _drop(self) -> None:
        con, self._con = self._con, None
        if con is not None and not con.closed:
            with contextlib.suppress(Exception):  # closing a dead connection may fail
                await con.close()

    async def _fetch(self, sql: str) -> tuple[Any, ...] | None:
        """One query, with one retry on a fresh connection when a kept connection turns
        out to be dead (the normal state right after PostgreSQL restarted)."""
        for attempt in (0, 1):
            kept = self._con is not None and not self._con.closed and not self._con.broken
            try:
                async with asyncio.timeout(self.timeout):
                    con = await self._connection()
                    cur = await con.execute(sql)  # type: ignore[arg-type]
                    return await cur.fetchone()  # type: ignore[no-any-return]
            except (psycopg.Error, TimeoutError, OSError) as exc:
                await self._drop()
                if not (kept and attempt == 0):
                    self._went_down(exc)
                    raise unavailable(exc) from exc
        raise AssertionError("unreachable")

    def _went_down(self, exc: BaseException) -> None:
        self.last_error = type(exc).__name__
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("database unavailable (%s); answering 503 until it is back",
                        type(exc).__name__)

    def _came_back(self) -> None:
        if self.down_since is not None:
            log.warning("database available again after %.1f s",
                        time.monotonic() - self.down_since)
            self.down_since = None

    async def _check(self) -> Hashable:
        row = await self._fetch(EPOCH_SQL_LEDGER if self._has_ledger else EPOCH_SQL)
        if row is None:  # pragma: no cover - the epoch query always answers one row
            raise unavailable()
        if not self._has_ledger and row[3]:
            self._has_ledger = True
            row = await self._fetch(EPOCH_SQL_LEDGER)
            assert row is not None
        epoch = (int(row[0]), str(row[1]), int(row[2]), int(row[3]))
        if epoch != self.catalog.epoch or not self.catalog.loaded:
            try:
                await run_in_threadpool(self.catalog.reload, epoch)
            except DB_DOWN_ERRORS as exc:
                self._went_down(exc)
                raise unavailable(exc) from exc
        self._came_back()
        return epoch

    async def epoch(self) -> Hashable:
        """The current catalogue epoch (reloading the catalogue if it moved). Requests that
        arrive while a check is running share it."""
        self._bind_loop()
        fut = self._inflight
        if fut is None:
            fut = self._inflight = asyncio.ensure_future(self._check())

            def done(f: asyncio.Future[Hashable]) -> None:
                if self._inflight is f:
                    self._inflight = None
                if not f.cancelled():
                    f.exception()  # retrieved: no "never retrieved" warning

            fut.add_done_callback(done)
        return await asyncio.shield(fut)

    async def health(self) -> dict[str, Any]:
        epoch = await self.epoch()
        row = await self._fetch(SCHEMA_VERSION_SQL)
        schema = None if row is None else row[0]
        head: dict[str, Any] = {"n_entries": 0, "head_hash": None}
        if self._has_ledger:
            row = await self._fetch(LEDGER_HEAD_SQL)
            if row is not None:
                head = {"n_entries": int(row[0]), "head_hash": str(row[1])}
        n_snaps, newest, n_contests, n_logged = cast("tuple[int, str, int, int]", epoch)
        return {"backend": "postgresql", "schema_version": schema, "ledger": head,
                "catalogue": {"n_snapshots": n_snaps, "n_contests": n_contests,
                              "n_logged_snapshots": n_logged, "newest_ingest": newest}}


# -- the ASGI gate ------------------------------------------------------------------------------
class Gate:
    """Outermost ASGI layer in server mode: settles the catalogue epoch of each request (or
    answers 503 when the database cannot be reached), and turns a database failure that
    escapes the application into a 503 as well."""

    def __init__(self, inner: Any, app: FastAPI, probe: Probe) -> None:
        self.inner = inner
        self.app = app
        self.probe = probe

    async def _unavailable(self, scope: Any, receive: Any, send: Any,
                           exc: DatabaseUnavailable) -> None:
        scope.setdefault("app", self.app)
        response = unavailable_response(Request(scope, receive), exc)
        await response(scope, receive, send)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith("/static/") or path == HEALTH_PATH:
            await self.inner(scope, receive, send)
            return
        try:
            epoch = await self.probe.epoch()
        except DatabaseUnavailable as exc:
            await self._unavailable(scope, receive, send, exc)
            return
        except EscrutinioError as exc:  # e.g. a database without escrutinio's schema
            log.error("catalogue unavailable: %s", exc.message_en)
            await self._unavailable(scope, receive, send, DatabaseUnavailable(
                exc.message_es, exc.message_en))
            return
        scope[EPOCH_SCOPE_KEY] = epoch
        token = _EPOCH.set(epoch)
        started = False

        async def tracked(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.inner(scope, receive, tracked)
        except Exception as exc:
            if not is_db_down(exc):
                raise
            if not started:
                await self._unavailable(scope, receive, send,
                                        exc if isinstance(exc, DatabaseUnavailable)
                                        else unavailable(exc))
            # else: the 503 was already sent by the exception handlers; nothing is lost
        finally:
            _EPOCH.reset(token)


# -- installation ---------------------------------------------------------------------------------
def live_catalog(dsn: str | Store) -> LiveCatalog:
    """The server's catalogue over ``dsn`` (a URL, or an open PostgresStore): read through
    a read-only connection opened lazily and re-opened when it breaks."""
    if isinstance(dsn, str):
        from escrutinio.store.postgres_store import PostgresStore

        inner: Store = PostgresStore(dsn, read_only=True, lazy=True,
                                     connect_options=CONNECT_OPTIONS)
        read_only = False
    else:
        inner = dsn
        read_only = bool(getattr(dsn, "read_only", False))
    return LiveCatalog(inner, read_only=read_only)


def install(app: FastAPI, backend: Backend) -> None:
    """Health route always; in server mode (a :class:`LiveCatalog`) also the gate, the
    epoch-keyed caches and the 503 handlers."""
    cat = backend.store
    probe = Probe(cat) if isinstance(cat, LiveCatalog) else None
    app.state.probe = probe

    @app.get(HEALTH_PATH, summary="Salud del servidor / server health (for load balancers)",
             responses={200: {"description": "database reachable"},
                        503: {"description": "database unavailable (Retry-After)"}})
    async def health() -> Response:
        body: dict[str, Any] = {"status": "ok", "version": __version__, "pid": os.getpid()}
        try:
            if probe is not None:
                body["database"] = await probe.health()
            else:
                body["database"] = await run_in_threadpool(_duckdb_health, backend)
        except DatabaseUnavailable as exc:
            body.update(status="unavailable", database={"reachable": False},
                        **{k: v for k, v in unavailable_payload(exc).items()
                           if k.startswith("message")})
            return JSONResponse(body, status_code=503, headers={
                "Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"})
        body["database"]["reachable"] = True
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def client_gone(request: Request, exc: Exception) -> Response:
        # the client closed the connection while its request was read: nothing to answer
        # and nothing went wrong here (was logged as a 500 with a traceback)
        log.info("client disconnected: %s %s", request.method, request.url.path)
        return Response(status_code=499)  # "client closed request"; nobody reads it

    app.add_exception_handler(ClientDisconnect, client_gone)
    if probe is None:
        return
    backend.bodies = EpochCache(backend.bodies.size)
    backend.results = ResultCache(backend.results.size)

    async def db_down(request: Request, exc: Exception) -> Response:
        return unavailable_response(request, exc if isinstance(exc, DatabaseUnavailable)
                                    else unavailable(exc))

    app.add_exception_handler(DatabaseUnavailable, db_down)
    for cls in DB_DOWN_ERRORS:
        app.add_exception_handler(cls, db_down)

    async def last_resort(request: Request, exc: Exception) -> Response:
        # errors that escape a middleware: a database failure is still a 503, anything
        # else a bilingual 500 (the traceback goes to the log, never to the client)
        if is_db_down(exc):
            return await db_down(request, exc)
        return JSONResponse({"error": "InternalError", "status": 500,
                             "message_es": "error interno del servidor",
                             "message_en": "internal server error"}, status_code=500,
                            headers={"Cache-Control": "no-store"})

    app.add_exception_handler(Exception, last_resort)
    app.hot = Gate(app.hot, app, probe)  # type: ignore[attr-defined]


def _duckdb_health(backend: Backend) -> dict[str, Any]:
    """Health of a DuckDB-backed (or any non-live) app: the store is open in-process."""
    store = backend.store
    inner = getattr(store, "inner", store)
    out = open_health(inner, getattr(store, "lock", None))
    snaps = store.all_snapshots() if isinstance(store, CatalogStore) else ()
    return {**out, "catalogue": {"n_snapshots": len(snaps),
                                 "n_contests": len(store.contests())}}


__all__ = ["CONNECT_OPTIONS", "DatabaseUnavailable", "EpochCache", "Gate", "LiveCatalog",
           "Probe", "install", "is_db_down", "live_catalog", "unavailable"]
