"""The FastAPI application: JSON API under ``/api/v1`` and HTML pages (Spanish at ``/``,
English under ``/en/``), every page with its JSON twin (see docs/api.md).

Presenter only: :class:`~escrutinio.api.backend.Backend` fetches the analyses' results.
This module builds the app (middleware, the front cache, error handling, the OpenAPI
document) and holds the HTTP caching helpers; the routes are declared one resource per
module in :mod:`escrutinio.api.resources`.

HTTP caching: a response bound to snapshots carries an ``ETag`` computed from what it
depends on (snapshot ids, parameters, escrutinio's version), so a revalidation is answered
``304`` without computing anything. ``Cache-Control`` is long for a permalink (a full
snapshot id: its content never changes) and short for anything that moves with the count
(``latest``, the history, the home page).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from escrutinio import __version__
from escrutinio.api import schemas
from escrutinio.api.backend import (
    PROJECTION_SIMS,
    Backend,
    NeedsActas,
    Unavailable,
)
from escrutinio.api.catalog import CatalogStore, replay_steps
from escrutinio.errors import EscrutinioError, IngestError, NotFoundError
from escrutinio.provenance import to_jsonable
from escrutinio.store.base import Store

#: bump when the shape of a response changes (it is part of every ETag)
API_REVISION = "1"
CC_PERMALINK = "public, max-age=86400"
CC_MOVING = "public, max-age=10"
CC_REPLAY = "no-cache"
STATIC_DIR = FilePath(__file__).parent / "static"


@dataclass(frozen=True, slots=True)
class CachedBody:
    etag: str
    raw: bytes
    gz: bytes | None
    media_type: str


# --- JSON ------------------------------------------------------------------------------------

def _clean(obj: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def dumps(obj: Any) -> bytes:
    return json.dumps(_clean(to_jsonable(obj)), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


def etag_for(*parts: Any) -> str:
    h = hashlib.sha256(repr((API_REVISION, __version__, parts)).encode()).hexdigest()
    return f'"{h[:32]}"'


def make_body(etag: str, raw: bytes, media_type: str) -> CachedBody:
    gz = gzip.compress(raw, compresslevel=6, mtime=0) if len(raw) > 1024 else None
    return CachedBody(etag, raw, gz, media_type)


def _inm_matches(request: Request, etag: str) -> bool:
    inm = request.headers.get("if-none-match")
    if not inm:
        return False
    tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
    return "*" in tags or etag in tags


HOT_HEADER = "x-escrutinio-hot"


def send(request: Request, body: CachedBody, cache_control: str, status: int = 200) -> Response:
    headers = {"ETag": body.etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if cache_control in (CC_PERMALINK, CC_MOVING):
        headers[HOT_HEADER] = "1"  # same URL, same bytes for the life of the process
    if _inm_matches(request, body.etag):
        return Response(status_code=304, headers=headers)
    if body.gz is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(body.gz, status_code=status, media_type=body.media_type,
                        headers=headers)
    return Response(body.raw, status_code=status, media_type=body.media_type, headers=headers)


class HotCache:
    """ASGI front cache: a GET whose response was marked hot (same URL, same bytes for the
    life of the process — a permalink, or anything while the catalogue cannot change) is
    answered from memory without routing, validation or rendering. This is what keeps
    the p99 latency low with hundreds of clients on two cores (benchmarks/RESULTS-api.md).
    ETag revalidation (304) is answered here too."""

    def __init__(self, app: Any, size: int = 4096) -> None:
        self.app = app
        self.size = size
        # key: (catalogue epoch or None, path, query string, gzip accepted)
        self.data: dict[tuple[Hashable, str, bytes, bool],
                        tuple[bytes, list[tuple[bytes, bytes]], bytes]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        gz = inm = b""
        for k, v in scope["headers"]:
            if k == b"accept-encoding":
                gz = v
            elif k == b"if-none-match":
                inm = v
            elif k == b"authorization":  # a personal answer is never shared
                await self.app(scope, receive, send)
                return
        # server mode: the catalogue epoch of the request (escrutinio.api.resilience)
        key = (scope.get("escrutinio.epoch"), scope["path"], scope["query_string"],
               b"gzip" in gz)
        hit = self.data.get(key)
        if hit is not None:
            etag, headers, body = hit
            if inm and (etag in [t.strip().removeprefix(b"W/") for t in inm.split(b",")]
                        or inm.strip() == b"*"):
                await send({"type": "http.response.start", "status": 304,
                            "headers": [h for h in headers if h[0] in (
                                b"etag", b"cache-control", b"vary")]})
                await send({"type": "http.response.body", "body": b""})
                return
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        captured: dict[str, Any] = {}

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if message["status"] == 200 and any(k == HOT_HEADER.encode()
                                                    for k, _ in headers):
                    headers = [(k, v) for k, v in headers if k != HOT_HEADER.encode()]
                    captured["headers"] = headers
                    message = {**message, "headers": headers}
            elif (message["type"] == "http.response.body" and "headers" in captured
                  and not message.get("more_body", False)):
                etag = next((v for k, v in captured["headers"] if k == b"etag"), b"")
                if len(self.data) >= self.size:
                    self.data.pop(next(iter(self.data)))
                self.data[key] = (etag, captured["headers"], message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)


class EscrutinioAPI(FastAPI):
    """FastAPI with :class:`HotCache` in front of everything (even the error middleware):
    a hot hit costs a dictionary lookup and two ASGI messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hot = HotCache(super().__call__)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        clock = getattr(getattr(self.state, "backend", None), "clock", None)
        if clock is None or scope["type"] != "http":
            await self.hot(scope, receive, send)
            return
        from escrutinio.api.replay import pinned_step

        # a replay: the whole request (banner, numbers, cache key) sees one step
        with pinned_step(clock):
            await self.hot(scope, receive, send)


def error_payload(status: int, exc: EscrutinioError | None = None, *, es: str = "",
                  en: str = "", detail: list[Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "error": type(exc).__name__ if exc is not None else "HTTPError", "status": status,
        "message_es": exc.message_es if exc is not None else es,
        "message_en": exc.message_en if exc is not None else en,
    }
    if isinstance(exc, IngestError):
        out["detail"] = [{"file": exc.location.file, "line": exc.location.line,
                          "field": exc.location.field, "rule": exc.rule}]
    if detail is not None:
        out["detail"] = detail
    return out


def status_of(exc: EscrutinioError) -> int:
    from escrutinio.api.mesa import InvalidMesa

    if isinstance(exc, NotFoundError):
        return 404
    if getattr(exc, "http_status", None) == 503:  # a DuckDB file held too long elsewhere
        return 503
    if isinstance(exc, InvalidMesa):
        return 422
    if isinstance(exc, (NeedsActas, Unavailable, IngestError)):
        return 422
    return 400


# --- the application -------------------------------------------------------------------------

def create_app(db_path: str | FilePath | None = None, *, store: Store | None = None,
               backend: Backend | None = None,
               replay: bool = False, step_seconds: float = 5.0, replay_at: int | None = None,
               loop: bool = True, replay_contest: str | None = None, baseline: str = "auto",
               projection_sims: int = PROJECTION_SIMS, static_site: bool = False,
               root_path: str = "", warm: bool = False, writable: bool = False) -> FastAPI:
    """Build the app over a DuckDB file (opened read-only; read-write with ``writable``,
    which enables the observer API — one process only), a PostgreSQL URL or an open
    ``store``.

    ``replay``: advance through the stored snapshots of ``replay_contest`` (default: the
    contest of the most recent snapshot) one step every ``step_seconds``; ``replay_at``
    pins a step. ``static_site``: pages for ``export-site`` (no forms, no live updates).
    ``backend``: share another app's backend (and its caches), e.g. to export a site.
    ``warm``: compute in the background the count state and projection of every
    whole-country snapshot (in a replay: ahead of the clock)."""
    if backend is not None:
        store = backend.store
    else:
        store = _open_store(db_path, store, writable=writable,
                            live=not (static_site or replay))
        backend = _backend(store, replay=replay, step_seconds=step_seconds,
                           replay_at=replay_at, loop=loop, replay_contest=replay_contest,
                           baseline=baseline, projection_sims=projection_sims)
    if warm:
        import threading

        threading.Thread(target=backend.warm, name="escrutinio-warm", daemon=True).start()

    app = EscrutinioAPI(
        title="escrutinio API",
        version=__version__,
        description=(
            "Conteo, proyección, actas en disputa, verificación, forense y auditoría de una "
            "elección reñida; cada página HTML tiene su gemelo JSON. / Count, projection, "
            "contested actas, verification, forensics and audit of a close election; every "
            "HTML page has a JSON twin. Snapshot references: a full id, an id prefix "
            "(>= 6 hex digits), a label, `latest`, `first` or `latest-N`. See docs/api.md."),
        root_path=root_path,
        # no Swagger UI: it loads its assets from a CDN; /api/ is an offline reference page
        docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json",
    )
    app.state.backend = backend
    app.state.static_site = static_site
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _install_errors(app)
    _install_openapi(app)
    from escrutinio.api.resources import install_api, install_pages

    install_api(app, backend)  # the JSON routes (api/resources/)
    if not static_site:
        from escrutinio.api.pages import Page, _env
        from escrutinio.server.routes import PageHost, install_observers

        # /api/v1/observer, /api/v1/admin, /coordinator/ (docs/observers.md): the observer
        # server's router, given this app's page frame (server/ never imports api/)
        install_observers(app, store, backend, host=PageHost(env=_env, page=Page))
    install_pages(app, backend, static_site=static_site)  # the pages (api/resources/)
    from escrutinio.api.resilience import install

    install(app, backend)  # /api/v1/health; in server mode the 503 gate
    from escrutinio.server.security import install_security

    install_security(app)  # headers, CORS, security log: outermost
    return app



def _open_store(db_path: str | FilePath | None, store: Store | None, *, writable: bool,
                live: bool) -> Store:
    """The app's store: an open one (PostgreSQL made live in server mode), a PostgreSQL
    URL, or a DuckDB file (read-only unless ``writable``)."""
    if store is not None:
        if live and type(store).__module__.endswith("postgres_store"):
            return open_pg_store(store, live=True)
        return store
    if db_path is None:
        raise ValueError("give db_path or store")
    from escrutinio.store import is_postgres_url

    if is_postgres_url(db_path):
        # a static export or a replay reads one consistent catalogue now; a server
        # connects lazily and follows the catalogue (escrutinio.api.resilience)
        return open_pg_store(str(db_path), live=live)
    if not FilePath(db_path).exists():
        raise EscrutinioError(
            f"no existe el almacén {db_path}; ejecute 'escrutinio ingest' primero",
            f"store {db_path} does not exist; run 'escrutinio ingest' first")
    from escrutinio.store.duckdb_store import DuckDBStore

    return DuckDBStore(db_path, read_only=not writable)


def _backend(store: Store, *, replay: bool, step_seconds: float, replay_at: int | None,
             loop: bool, replay_contest: str | None, baseline: str,
             projection_sims: int) -> Backend:
    """The Backend over ``store``; in a replay, over the catalogue seen through the step
    clock of ``replay_contest`` (default: the contest of the most recent snapshot)."""
    if not replay:
        return Backend(store, baseline=baseline, projection_sims=projection_sims)
    from escrutinio import service
    from escrutinio.api.replay import StepClock

    cat = CatalogStore(store)
    cid = replay_contest or service.default_contest(cat, None)
    steps = replay_steps(service.history_snapshots(cat, cid))
    cat.clock = StepClock(steps, step_seconds=step_seconds, loop=loop, fixed=replay_at)
    return Backend(cat, replay_contest=cid, baseline=baseline,
                   projection_sims=projection_sims)

def open_pg_store(url: str | Store, *, live: bool) -> Store:
    """PostgreSQL for the app (a URL, or an open PostgresStore): a live, lazily connected
    catalogue (server mode) or a read-only store opened now (static export, replay)."""
    if live:
        from escrutinio.api.resilience import live_catalog

        return live_catalog(url)
    from escrutinio.store.postgres_store import PostgresStore

    return PostgresStore(str(url), read_only=True)


def _install_errors(app: FastAPI) -> None:
    def wants_html(request: Request) -> bool:
        return not request.url.path.startswith("/api/")

    def respond(request: Request, status: int, payload: dict[str, Any]) -> Response:
        if wants_html(request):
            from escrutinio.api.pages import render_error

            return render_error(request, status, payload)
        return JSONResponse(payload, status_code=status,
                            headers={"Cache-Control": "no-store"})

    @app.exception_handler(EscrutinioError)
    async def _escrutinio(request: Request, exc: EscrutinioError) -> Response:
        status = status_of(exc)
        return respond(request, status, error_payload(status, exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        detail = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()]
        where = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in detail)
        return respond(request, 422, error_payload(
            422, es=f"parámetros no válidos — {where}", en=f"invalid parameters — {where}",
            detail=detail))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            es, en = "no existe esta página", "there is no such page"
        elif exc.status_code == 405:
            es, en = "método no permitido", "method not allowed"
        else:
            es = en = str(exc.detail)
        resp = respond(request, exc.status_code, error_payload(exc.status_code, es=es, en=en))
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError) -> Response:
        # an analysis refused its input: the request cannot be served, not a crash
        return respond(request, 422, error_payload(
            422, es=f"no se puede calcular: {exc}", en=f"cannot be computed: {exc}"))


def _install_openapi(app: FastAPI) -> None:
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = default()
        spec.setdefault("components", {}).setdefault("schemas", {}).update(
            schemas.components())
        # FastAPI's own validation-error schema is replaced by ours (bilingual Error)
        for path in spec.get("paths", {}).values():
            for op in path.values():
                op.get("responses", {})["422"] = {
                    "description": "Invalid parameters, or the analysis does not apply",
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}}
        spec["components"]["schemas"].pop("HTTPValidationError", None)
        spec["components"]["schemas"].pop("ValidationError", None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["create_app"]
