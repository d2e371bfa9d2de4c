"""The FastAPI application: JSON API under ``/api/v1`` and HTML pages (Spanish at ``/``,
English under ``/en/``), every page with its JSON twin (see docs/api.md).

Presenter only: :class:`~escrutinio.api.backend.Backend` fetches the analyses' results;
this module turns them into JSON, HTML and HTTP headers.

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
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from escrutinio import __version__
from escrutinio.api import schemas
from escrutinio.api.backend import (
    PROJECTION_SEED,
    PROJECTION_SIMS,
    Backend,
    NeedsActas,
    Unavailable,
)
from escrutinio.api.catalog import CatalogStore, replay_steps
from escrutinio.api.i18n import LEVEL_ALIASES
from escrutinio.domain import Level, level_label
from escrutinio.errors import EscrutinioError, IngestError, NotFoundError
from escrutinio.provenance import to_jsonable
from escrutinio.store.base import SnapshotInfo, Store

#: bump when the shape of a response changes (it is part of every ETag)
API_REVISION = "1"
CC_PERMALINK = "public, max-age=86400"
CC_MOVING = "public, max-age=10"
CC_REPLAY = "no-cache"
STATIC_DIR = FilePath(__file__).parent / "static"


class LevelName(StrEnum):
    national = "national"
    area1 = "area1"
    area2 = "area2"
    area3 = "area3"
    nacional = "nacional"
    department = "department"
    departamento = "departamento"
    province = "province"
    provincia = "provincia"
    district = "district"
    distrito = "distrito"


LevelP = Annotated[LevelName, Path(description="national, area1, area2, area3, o / or "
                                   "departamento/department, provincia/province, "
                                   "distrito/district")]

Ref = Annotated[str, Path(
    max_length=300, description="id, prefijo (>= 6), etiqueta, latest, first, latest-N / id, "
    "prefix (>= 6), label, latest, first, latest-N",
    openapi_examples={"latest": {"value": "latest"}, "first": {"value": "first"}})]
ContestQ = Annotated[str | None, Query(max_length=200, description="contest id (default: the "
                                       "contest of the most recent snapshot)")]
SimsQ = Annotated[int | None, Query(ge=200, le=20_000, description="simulations "
                                    f"(default {PROJECTION_SIMS:,})")]
SeedQ = Annotated[int, Query(ge=0, le=2**32 - 1, description="seed of the simulations")]
BaselineQ = Annotated[str | None, Query(
    max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    description="baseline contest id, per acta or per unit at any level (default: the "
                "earlier round of the same election when stored); 'none': no baseline")]
LimitQ = Annotated[int, Query(ge=1, le=100_000, description="rows listed")]


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


def strip_json(ref: str) -> str:
    return ref[:-5] if ref.endswith(".json") else ref


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
    elif (store is not None and not (static_site or replay)
          and type(store).__module__.endswith("postgres_store")):
        store = open_pg_store(store, live=True)  # type: ignore[arg-type]
    if store is None:
        if db_path is None:
            raise ValueError("give db_path or store")
        from escrutinio.store import is_postgres_url

        if is_postgres_url(db_path):
            # a static export or a replay reads one consistent catalogue now; a server
            # connects lazily and follows the catalogue (escrutinio.api.resilience)
            store = open_pg_store(str(db_path), live=not (static_site or replay))
    if store is None:
        assert db_path is not None
        if not FilePath(db_path).exists():
            raise EscrutinioError(
                f"no existe el almacén {db_path}; ejecute 'escrutinio ingest' primero",
                f"store {db_path} does not exist; run 'escrutinio ingest' first")
        from escrutinio.store.duckdb_store import DuckDBStore

        store = DuckDBStore(db_path, read_only=not writable)
    if backend is None and replay:
        from escrutinio import service

        cat = CatalogStore(store)
        cid = replay_contest or service.default_contest(cat, None)
        steps = replay_steps(service.history_snapshots(cat, cid))
        from escrutinio.api.replay import StepClock

        cat.clock = StepClock(steps, step_seconds=step_seconds, loop=loop, fixed=replay_at)
        backend = Backend(cat, replay_contest=cid, baseline=baseline,
                          projection_sims=projection_sims)
    elif backend is None:
        backend = Backend(store, baseline=baseline, projection_sims=projection_sims)
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
    _api_routes(app, backend)
    if not static_site:
        from escrutinio.api.pages import Page, _env
        from escrutinio.server.routes import PageHost, install_observers

        # /api/v1/observer, /api/v1/admin, /coordinator/ (docs/observers.md): the observer
        # server's router, given this app's page frame (server/ never imports api/)
        install_observers(app, store, backend, host=PageHost(env=_env, page=Page))
    from escrutinio.api.pages import install_pages

    install_pages(app, backend, static_site=static_site)
    from escrutinio.api.resilience import install

    install(app, backend)  # /api/v1/health; in server mode the 503 gate
    from escrutinio.server.security import install_security

    install_security(app)  # headers, CORS, security log: outermost
    return app


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


# --- API routes ------------------------------------------------------------------------------

def api_links(info: SnapshotInfo | None, json_path: str, html_path: str | None, *,
              query: str = "", permalink: str | None = None) -> dict[str, str]:
    """``self``, the page (``html``, ``html_en``) and the ``permalink``: the same JSON at
    the full snapshot id (whatever reference was asked: ``latest``, ``latest-2``, a
    label, an id prefix), with the parameters that change the answer (``query``)."""
    out = {"self": json_path + query}
    if html_path is not None:
        out["html"] = html_path
        out["html_en"] = "/en" + html_path
    if permalink is not None:
        out["permalink"] = permalink + query
    elif info is not None:
        parts = json_path.split("/")
        if len(parts) > 4 and parts[1:4] == ["api", "v1", "s"]:
            parts[4] = info.snapshot_id + (".json" if parts[4].endswith(".json") else "")
        out["permalink"] = "/".join(parts) + query
    return out


def _query(**params: Any) -> str:
    """``?a=1&b=2`` of the parameters that are not None (for links)."""
    from urllib.parse import urlencode

    kept = {k: v for k, v in params.items() if v is not None}
    return "?" + urlencode(kept) if kept else ""


def _api_routes(app: FastAPI, b: Backend) -> None:
    def get(path: str, name: str, summary: str, **kw: Any) -> Callable[[Any], Any]:
        def deco(fn: Any) -> Any:
            app.get(path + ".json", include_in_schema=False)(fn)
            app.get(path, responses=schemas.ok(name, summary), summary=summary, **kw)(fn)
            return fn
        return deco

    def cc(ref: str, info: SnapshotInfo) -> str:
        if b.clock is not None and ref != info.snapshot_id:
            return CC_REPLAY
        return CC_PERMALINK if ref == info.snapshot_id else CC_MOVING

    async def respond(request: Request, key: tuple[Any, ...], build: Callable[[], Any],
                      cache_control: str) -> Response:
        etag = etag_for("json", key)
        if _inm_matches(request, etag):
            return Response(status_code=304, headers={"ETag": etag,
                                                      "Cache-Control": cache_control})
        body = b.bodies.get(("json", key))
        if body is None:
            raw = await run_in_threadpool(lambda: dumps(build()))
            body = make_body(etag, raw, "application/json")
            b.bodies.put(("json", key), body)
        return send(request, body, cache_control)

    def contest_of(info: SnapshotInfo) -> dict[str, object]:
        return b.store.contest(info.contest_id).to_dict()

    def level_label_json(info: SnapshotInfo, lv: Level) -> dict[str, str]:
        names = b.area_labels(info.contest_id)
        return {"es": level_label(names, lv, "es"), "en": level_label(names, lv, "en")}

    @get("/api/v1/contests", "ContestList", "Contiendas / contests")
    async def contests(request: Request) -> Response:
        cur = b.contest_id() if b.store.all_snapshots() else None
        return await respond(request, ("contests", cur), lambda: {
            "contests": [c.to_dict() for c in b.store.contests()], "current": cur},
            CC_REPLAY if b.clock else CC_MOVING)

    @get("/api/v1/snapshots", "SnapshotList", "Instantáneas / snapshots")
    async def snapshots(request: Request, contest: ContestQ = None) -> Response:
        snaps = b.snapshots(contest)
        if contest is not None:
            b.store.contest(contest)
        return await respond(
            request, ("snapshots", contest, tuple(s.snapshot_id for s in snaps)),
            lambda: {"contest": contest, "snapshots": snaps,
                     "links": api_links(None, "/api/v1/snapshots.json", "/snapshots/")},
            CC_REPLAY if b.clock else CC_MOVING)

    @get("/api/v1/s/{ref}", "SnapshotDetail", "Una instantánea / one snapshot")
    async def snapshot(request: Request, ref: Ref, contest: ContestQ = None) -> Response:
        ref = strip_json(ref)
        info = b.resolve(ref, contest=contest)
        sid = info.snapshot_id
        return await respond(request, ("snapshot", sid), lambda: {
            "snapshot": info, "contest": contest_of(info),
            "levels": [lv.value for lv in b.levels_of(info)],
            "ledger": b.ledger_summary(info),
            "links": api_links(info, f"/api/v1/s/{ref}.json", f"/s/{sid}/")}, cc(ref, info))

    @app.get("/api/v1/s/{ref}/proof/{key}", responses=schemas.ok(
        "InclusionProof", "Prueba de inclusión de una fila en la raíz Merkle publicada / "
        "inclusion proof of a row in the published Merkle root"),
        summary="Prueba de inclusión / inclusion proof (docs/store.md)")
    async def proof(request: Request, ref: Ref,
                    key: Annotated[str, Path(
                        max_length=200, description="acta id; level:unit_code for aggregate "
                                                    "snapshots")],
                    contest: ContestQ = None) -> Response:
        key = strip_json(key)
        info = b.resolve(ref, contest=contest)
        sid = info.snapshot_id
        if b.ledger_entry(info) is None:
            raise NotFoundError(
                f"la instantánea {sid[:12]} no está en el registro (ejecute 'escrutinio "
                "log-sync')", f"snapshot {sid[:12]} is not in the log (run 'escrutinio "
                "log-sync')")
        pr = await run_in_threadpool(b.cached, ("proof", sid, key),
                                     lambda: b.store.prove(sid, key))
        return JSONResponse({"proof": pr.to_dict(), "snapshot_id": sid,
                             "verify": "escrutinio verify-proof FILE [--root ROOT]"},
                            headers={"Cache-Control": cc(ref, info)})

    @app.get("/api/v1/ledger.json", include_in_schema=False)
    @app.get("/api/v1/ledger", responses=schemas.ok(
        "LedgerResponse", "Cabeza de la cadena y raíz Merkle de cada instantánea / chain "
        "head and the Merkle root of every snapshot"),
        summary="Registro a prueba de manipulación / tamper-evident log (docs/store.md)")
    async def ledger_view(request: Request) -> Response:
        def build() -> dict[str, Any]:
            n, head = b.store.ledger_head()
            logged = b.store.logged_snapshots()
            snaps = [{"snapshot_id": s.snapshot_id, "label": s.label, "as_of": s.as_of,
                      "contest_id": s.contest_id, "seq": e.seq, "entry_hash": e.entry_hash,
                      "merkle_root": e.entry.get("merkle_root"),
                      "tree_size": e.entry.get("tree_size")}
                     for s in b.store.list_snapshots()
                     if (e := logged.get(s.snapshot_id)) is not None]
            return {"head": {"n_entries": n, "head_hash": head},
                    "snapshots": snaps,
                    "check": "escrutinio verify-log --head HEAD_HASH"}

        raw = dumps(await run_in_threadpool(build))
        return Response(raw, media_type="application/json",
                        headers={"Cache-Control": "no-cache"})

    @get("/api/v1/s/{ref}/state/{level}", "StateResponse",
         "Estado del conteo por nivel / count state by level")
    async def state(request: Request, ref: Ref, level: LevelP,
                    contest: ContestQ = None) -> Response:
        info = b.resolve(ref, contest=contest)
        lv = Level(LEVEL_ALIASES[level.value])
        sid = info.snapshot_id
        return await respond(request, ("state", sid, lv.value), lambda: {
            "snapshot": info, "contest": contest_of(info), "level": lv.value,
            "level_label": level_label_json(info, lv), "state": b.state(info, lv),
            "links": api_links(info, f"/api/v1/s/{ref}/state/{lv.value}.json",
                               f"/s/{sid}/" if lv is Level.NATIONAL
                               else f"/s/{sid}/map/{lv.value}/")}, cc(ref, info))

    @get("/api/v1/s/{ref}/map/{level}", "MapResponse",
         "Mapa: estado por unidad con la clave del mapa / map: state per unit with map keys")
    async def map_(request: Request, ref: Ref, level: LevelP,
                   contest: ContestQ = None) -> Response:
        info = b.resolve(ref, contest=contest)
        lv = Level(LEVEL_ALIASES[level.value])
        if lv is Level.NATIONAL:
            raise EscrutinioError("el mapa es por área: area1, area2 o area3",
                                  "the map is by area: area1, area2 or area3")
        from escrutinio.api.pages import map_join

        sid = info.snapshot_id

        def build() -> dict[str, Any]:
            st = b.state(info, lv)
            return {"snapshot": info, "contest": contest_of(info), "level": lv.value,
                    "level_label": level_label_json(info, lv),
                    "state": st, "map": map_join(b, info, lv, st),
                    "links": api_links(info, f"/api/v1/s/{ref}/map/{lv.value}.json",
                                       f"/s/{sid}/map/{lv.value}/")}

        return await respond(request, ("map", sid, lv.value), build, cc(ref, info))

    @get("/api/v1/s/{ref}/projection", "ProjectionResponse",
         "Proyección del resultado final / projection of the final result")
    async def projection(request: Request, ref: Ref, sims: SimsQ = None,
                         seed: SeedQ = PROJECTION_SEED, contest: ContestQ = None,
                         baseline_contest: BaselineQ = None) -> Response:
        info = b.resolve(ref, contest=contest)
        n = sims or b.projection_sims
        sid = info.snapshot_id

        def build() -> dict[str, Any]:
            from escrutinio.api.pages import call_view, projection_note

            v = b.projection(info, n, seed, baseline_contest=baseline_contest)
            es, en = projection_note(v)
            contest = b.store.contest(info.contest_id)
            head = call_view(v.projection, {c.code: c.name for c in contest.candidates},
                             contest.majority_threshold)
            return {"snapshot": info, "contest": contest_of(info),
                    "reconstructed": v.reconstructed, "note_es": es, "note_en": en,
                    "headline": head["status"], "text_headline_es": head["es"],
                    "text_headline_en": head["en"],
                    "text_headline_detail_es": head.get("detail_es"),
                    "text_headline_detail_en": head.get("detail_en"),
                    "projection": v.projection,
                    "links": api_links(info, f"/api/v1/s/{ref}/projection.json",
                                       f"/s/{sid}/projection/", query=_query(
                                           sims=sims, seed=None if seed == PROJECTION_SEED
                                           else seed, baseline_contest=baseline_contest))}

        return await respond(request, ("projection", sid, n, seed, b.clock is not None,
                                       baseline_contest), build, cc(ref, info))

    def analysis(path: str, key: str, summary: str,
                 make: Callable[[SnapshotInfo, int], Any], html: str | None) -> None:
        @get(f"/api/v1/s/{{ref}}/{path}", "AnalysisResponse", summary)
        async def route(request: Request, ref: Ref, limit: LimitQ = 200,
                        contest: ContestQ = None) -> Response:
            info = b.resolve(ref, contest=contest)
            sid = info.snapshot_id
            return await respond(request, (key, sid, limit), lambda: {
                "snapshot": info, "contest": contest_of(info), "result": make(info, limit),
                "links": api_links(info, f"/api/v1/s/{ref}/{path}.json",
                                   f"/s/{sid}/{html}/" if html else None,
                                   query=_query(limit=None if limit == 200 else limit))},
                cc(ref, info))

        route.__name__ = f"api_{key}"

    analysis("contested", "contested", "Actas en disputa / contested actas",
             lambda info, limit: b.contested(info).result.to_jsonable(limit), "contested")
    analysis("verify", "verify", "Verificación de actas / acta verification",
             lambda info, limit: {
                 "previous": b.verify(info).previous,
                 **b.verify(info).result.to_jsonable(limit)}, "verify")
    analysis("forensics", "forensics", "Cribado forense (anomalía, no prueba) / forensic "
             "screen (anomaly, not proof)",
             lambda info, limit: _forensics_json(b, info, limit), "forensics")
    analysis("audit", "audit", "Plan de auditoría y auditorías registradas / audit plan "
             "and recorded audits",
             lambda info, limit: {"plan": b.audit(info).plan, "audits": b.audit(info).audits},
             "audit")

    @get("/api/v1/s/{ref}/quickcount", "AnalysisResponse",
         "Conteo rápido: diseño y muestra pública / quick count: design and public sample")
    async def quickcount(request: Request, ref: Ref,
                         seed: Annotated[str | None, Query(
                             min_length=1, max_length=200,
                             description="semilla pública / public seed")] = None,
                         limit: LimitQ = 200, contest: ContestQ = None) -> Response:
        info = b.resolve(ref, contest=contest)
        sid = info.snapshot_id

        def build() -> dict[str, Any]:
            v = b.quickcount(info, seed)
            return {"snapshot": info, "contest": contest_of(info), "result": {
                "design": v.design, "strata": v.design.table().to_dicts(),
                "design_effect": v.design_effect, "margin_of_error": v.moe,
                "urban_rule_es": v.urban_rule_es, "urban_rule_en": v.urban_rule_en,
                "seed": seed, "n_sample": v.n_sample,
                "sample": [] if v.sample is None else v.sample.head(limit).to_dicts()},
                "links": api_links(info, f"/api/v1/s/{ref}/quickcount.json",
                                   f"/s/{sid}/quickcount/{_query(seed=seed)}",
                                   query=_query(seed=seed,
                                                limit=None if limit == 200 else limit))}

        return await respond(request, ("quickcount", sid, seed, limit), build, cc(ref, info))

    @app.get("/api/v1/s/{ref}/forensics/fingerprint.png", summary="Huella de votación "
             "(PNG) / election fingerprint (PNG)",
             responses={200: {"content": {"image/png": {}}, "description": "PNG image"},
                        404: schemas.ok("Error", "")[404], 422: schemas.ok("Error", "")[422]})
    async def fingerprint(request: Request, ref: Ref, contest: ContestQ = None) -> Response:
        info = b.resolve(ref, contest=contest)
        etag = etag_for("png", info.snapshot_id)
        if _inm_matches(request, etag):
            return Response(status_code=304, headers={"ETag": etag})
        png = await run_in_threadpool(b.fingerprint_png, info)
        return Response(png, media_type="image/png",
                        headers={"ETag": etag, "Cache-Control": cc(ref, info)})

    @app.post("/api/v1/s/{ref}/pvt", responses=schemas.upload_responses(
        "AnalysisResponse", "Tabulación paralela de copias de personeros / parallel "
        "tabulation of observers' copies"), summary="Tabulación paralela / parallel "
        "tabulation (observers' copies as JSON records, CSV or a file; docs/defence.md)",
        openapi_extra=schemas.upload_body(
            "copias de personeros en el formato documentado / observers' copies in the "
            "documented format (docs/defence.md)", "copies"))
    async def pvt(request: Request, ref: Ref, limit: LimitQ = 100,
                  contest: ContestQ = None) -> Response:
        from escrutinio.api import uploads

        info = b.resolve(ref, contest=contest)
        try:
            upload = await uploads.read_upload(request, b.upload_limit)
            res = await run_in_threadpool(b.pvt, info, upload)
        except uploads.UploadError as exc:
            return uploads.error_response(exc)
        links = api_links(info, f"/api/v1/s/{ref}/pvt", f"/s/{info.snapshot_id}/verify/")
        links.pop("permalink")  # the result depends on the copies sent: no permalink
        raw = dumps({"snapshot": info, "contest": contest_of(info),
                     "result": res.to_jsonable(limit), "links": links})
        return Response(raw, media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    @app.post("/api/v1/s/{ref}/quickcount/estimate", responses=schemas.upload_responses(
        "AnalysisResponse", "Estimación del conteo rápido / quick-count estimate"),
        summary="Estimación del conteo rápido con los reportes de las mesas de la muestra / "
        "quick-count estimate from the reports of the sampled mesas (copy format)",
        openapi_extra=schemas.upload_body(
            "reportes de las mesas de la muestra, en el formato de copias / reports of the "
            "sampled mesas, in the copy format (docs/defence.md)", "reports"))
    async def quickcount_estimate(
            request: Request, ref: Ref,
            seed: Annotated[str, Query(min_length=1, max_length=200,
                                       description="semilla pública de la muestra / public "
                                                   "seed of the sample")],
            fuse: Annotated[str | None, Query(
                max_length=300, description="instantánea por acta cuyo conteo oficial se "
                "fusiona (por defecto esta; 'none': sin fusión) / per-acta snapshot whose "
                "official count is fused (default: this one; 'none': no fusion)")] = None,
            limit: LimitQ = 100, contest: ContestQ = None) -> Response:
        from urllib.parse import quote

        from escrutinio.api import uploads

        info = b.resolve(ref, contest=contest)
        partner = (None if fuse == "none" else info if fuse is None
                   else b.resolve(fuse, contest=contest))
        try:
            upload = await uploads.read_upload(request, b.upload_limit)
            v = await run_in_threadpool(b.quickcount_estimate, info, seed, upload, partner)
        except uploads.UploadError as exc:
            return uploads.error_response(exc)
        links = api_links(info, f"/api/v1/s/{ref}/quickcount/estimate",
                          f"/s/{info.snapshot_id}/quickcount/?seed=" + quote(seed, safe=""))
        links.pop("permalink")  # the result depends on the reports sent: no permalink
        raw = dumps({"snapshot": info, "contest": contest_of(info),
                     "result": v.to_jsonable(limit), "links": links})
        return Response(raw, media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    @get("/api/v1/history", "HistoryResponse",
         "Historia del margen y cambios de liderazgo / margin history and lead changes")
    async def history(request: Request, contest: ContestQ = None) -> Response:
        cid = b.contest_id(contest)
        from escrutinio import service

        snaps = service.history_snapshots(b.store, cid)
        return await respond(request, ("history", cid, tuple(s.snapshot_id for s in snaps)),
                             lambda: {"contest": b.store.contest(cid).to_dict(),
                                      "history": b.history(cid), "snapshots": snaps,
                                      "links": api_links(
                                          None, "/api/v1/history.json", "/history/",
                                          permalink=f"/api/v1/s/{snaps[-1].snapshot_id}/"
                                          "history.json" if snaps else None)},
                             CC_REPLAY if b.clock else CC_MOVING)

    @get("/api/v1/s/{ref}/history", "HistoryResponse",
         "Historia del margen hasta una instantánea (enlace permanente) / margin history up "
         "to a snapshot (permalink)")
    async def history_until(request: Request, ref: Ref, contest: ContestQ = None
                            ) -> Response:
        info = b.resolve(strip_json(ref), contest=contest)
        sid = info.snapshot_id
        snaps = b.history_snapshots(info.contest_id, info)
        return await respond(request, ("history-until", sid, tuple(s.snapshot_id for s in snaps)),
                             lambda: {"contest": contest_of(info),
                                      "history": b.history(until=info), "snapshots": snaps,
                                      "links": api_links(info, f"/api/v1/s/{ref}/history.json",
                                                         f"/s/{sid}/history/")},
                             cc(ref, info))

    @get("/api/v1/projection-history", "ProjectionHistoryResponse",
         "La proyección en cada instantánea (abanico) / the projection at each snapshot "
         "(fan chart)")
    async def projection_history(request: Request, contest: ContestQ = None) -> Response:
        # the server's own projection parameters only: each point is the projection page
        # of that snapshot (cached), so the fan costs nothing once the pages exist
        cid = b.contest_id(contest)
        n, seed = b.projection_sims, PROJECTION_SEED
        from escrutinio import service

        snaps = service.history_snapshots(b.store, cid)
        return await respond(
            request, ("projection-history", cid, tuple(s.snapshot_id for s in snaps), n, seed,
                      b.clock is not None),
            lambda: {"contest": b.store.contest(cid).to_dict(),
                     "projection_history": b.projection_history(cid, n, seed),
                     "links": api_links(None, "/api/v1/projection-history.json", "/history/",
                                        permalink=f"/api/v1/s/{snaps[-1].snapshot_id}/"
                                        "projection-history.json" if snaps else None)},
            CC_REPLAY if b.clock else CC_MOVING)

    @get("/api/v1/s/{ref}/projection-history", "ProjectionHistoryResponse",
         "La proyección en cada instantánea hasta esta (enlace permanente) / the projection "
         "at each snapshot up to this one (permalink)")
    async def projection_history_until(request: Request, ref: Ref,
                                       contest: ContestQ = None) -> Response:
        info = b.resolve(strip_json(ref), contest=contest)
        sid = info.snapshot_id
        n, seed = b.projection_sims, PROJECTION_SEED
        snaps = b.history_snapshots(info.contest_id, info)
        return await respond(
            request, ("projection-history-until", sid, tuple(s.snapshot_id for s in snaps),
                      n, seed, b.clock is not None),
            lambda: {"contest": contest_of(info),
                     "projection_history": b.projection_history(sims=n, seed=seed,
                                                                until=info),
                     "links": api_links(info, f"/api/v1/s/{ref}/projection-history.json",
                                        f"/s/{sid}/history/")},
            cc(ref, info))

    @get("/api/v1/diff/{older}/{newer}", "DiffResponse",
         "Qué cambió entre dos instantáneas / what changed between two snapshots")
    async def diff(request: Request, older: Ref, newer: Ref, limit: LimitQ = 100,
                   contest: ContestQ = None) -> Response:
        newer = strip_json(newer)
        a = b.resolve(older, contest=contest)
        c = b.resolve(newer, contest=contest)
        if a.kind is not c.kind:
            raise EscrutinioError(
                "no se pueden comparar una instantánea por acta y una agregada",
                "cannot diff a per-acta snapshot against an aggregate one")
        perm = older == a.snapshot_id and newer == c.snapshot_id
        return await respond(
            request, ("diff", a.snapshot_id, c.snapshot_id, limit),
            lambda: {"contest": b.store.contest(a.contest_id).to_dict(), "older": a,
                     "newer": c, "diff": b.diff(a, c, limit),
                     "links": api_links(None, f"/api/v1/diff/{older}/{newer}.json",
                                        f"/diff/{a.snapshot_id}/{c.snapshot_id}/",
                                        query=_query(limit=None if limit == 100 else limit),
                                        permalink=f"/api/v1/diff/{a.snapshot_id}/"
                                        f"{c.snapshot_id}.json")},
            CC_PERMALINK if perm else (CC_REPLAY if b.clock else CC_MOVING))

    mesa_summary = ("Una mesa: sus cifras oficiales y su estado en cada instantánea "
                    "(copias de personeros solo para coordinadores) / one mesa: its official "
                    "figures and its state in every snapshot (observers' copies for "
                    "coordinators only)")
    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

    @app.get("/api/v1/mesa/{mesa}.json", include_in_schema=False)
    @app.get("/api/v1/mesa/{mesa}", summary=mesa_summary, responses={
        **schemas.ok("MesaResponse", mesa_summary),
        401: {"description": "Cabecera Authorization no válida / invalid Authorization "
                             "header", **err},
        403: {"description": "No es coordinador / not a coordinator", **err}})
    async def mesa(request: Request,
                   mesa: Annotated[str, Path(max_length=200, description=(
                       "número de mesa (p. ej. 000043 o 43) / mesa number (e.g. 000043 "
                       "or 43)"), openapi_examples={"jee": {"value": "000043"}})],
                   contest: ContestQ = None) -> Response:
        from escrutinio.api import mesa as mesa_lookup

        mesa = strip_json(mesa)
        view = await run_in_threadpool(mesa_lookup.find, b, mesa, contest)
        who = await mesa_lookup.coordinator_of(request, api=True)
        cop = (await run_in_threadpool(mesa_lookup.copies, request, who, view)
               if who is not None else None)
        raw = dumps({"contest": view.contest.to_dict(), "mesa": view.to_jsonable(),
                     "coordinator": who is not None, "copies": cop,
                     "links": mesa_links(view)})
        return Response(raw, media_type="application/json", headers={
            "Cache-Control": "private, no-store" if who is not None else "no-cache",
            "Vary": "Authorization"})

    @app.get("/api/v1/replay", responses=schemas.ok("ReplayState", "Estado de la repetición "
             "/ replay state"), summary="Estado de la repetición / replay state")
    async def replay_state() -> Response:
        return JSONResponse(replay_payload(b), headers={"Cache-Control": "no-store"})


def mesa_links(view: Any) -> dict[str, str]:
    """The mesa's JSON, its page (both languages) and its permalink (the contest named)."""
    from urllib.parse import quote

    m = quote(view.acta_id, safe="")
    return {"self": f"/api/v1/mesa/{m}.json", "html": f"/mesa/{m}/",
            "html_en": f"/en/mesa/{m}/",
            "permalink": f"/api/v1/mesa/{m}.json?contest={quote(view.contest.id, safe='')}"}


def replay_payload(b: Backend) -> dict[str, Any]:
    if b.clock is None:
        return {"replay": False, "step": None, "n_steps": None, "as_of": None,
                "as_of_label": None,
                "snapshot_id": None, "seconds_to_next": None, "step_seconds": None}
    from escrutinio.api import i18n
    from escrutinio.api.pages import zone_of

    info = b.overview_snapshot()
    now = b.clock.now()
    tz = zone_of(b, info.contest_id)
    return {"replay": True, "step": b.clock.index(), "n_steps": b.clock.n_steps,
            "as_of": to_jsonable(now), "snapshot_id": info.snapshot_id,
            "as_of_label": {lang: i18n.when(now, lang, tz=tz) for lang in i18n.LANGS},
            "seconds_to_next": round(b.clock.seconds_to_next(), 3),
            "step_seconds": b.clock.step_seconds}


def _forensics_json(b: Backend, info: SnapshotInfo, limit: int) -> dict[str, Any]:
    v = b.forensics(info)
    rep = to_jsonable(v.report)
    rep["flagged_actas"] = rep["flagged_actas"][:limit]
    rep["first_round_snapshot"] = to_jsonable(v.first_round)
    rep["fingerprint_png"] = f"/api/v1/s/{info.snapshot_id}/forensics/fingerprint.png"
    return rep


__all__ = ["create_app"]
