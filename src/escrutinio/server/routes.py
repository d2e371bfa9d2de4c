"""The observer and admin API, and the coordinator pages (docs/observers.md).

The routes are one router (:func:`observer_router`); :func:`install_observers` mounts it
on the web app (``escrutinio.api`` calls it and hands over its page frame, a
:class:`PageHost`): this package never imports the web app. Presenter only: the rules are
in :mod:`escrutinio.server.submissions`, :mod:`escrutinio.server.auth` and
:mod:`escrutinio.server.repo`, the SQL in :mod:`escrutinio.store.observers_repo`.

Every refusal is an :class:`~escrutinio.server.auth.AuthError` (or a subclass) carrying
its HTTP status and a short reason; the reason, the account and the token id go to the
security log (:mod:`escrutinio.server.security`), never the secret.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from escrutinio.errors import EscrutinioError
from escrutinio.provenance import to_jsonable
from escrutinio.server.auth import (
    AuthError,
    Principal,
    Role,
    Scope,
    bearer,
    check_csrf,
    csrf_token,
)
from escrutinio.server.repo import ObserverApiDisabled, Repo
from escrutinio.server.security import STATE_ACCOUNT, STATE_REASON, STATE_TOKEN
from escrutinio.server.submissions import (
    SHA256_RE,
    Invalid,
    Submissions,
    parse_json,
    submission_json,
)
from escrutinio.store.base import Store
from escrutinio.store.observers_repo import ValueNotAccepted

ALL_ROLES: Final = (Role.OBSERVER, Role.COORDINATOR, Role.ADMIN)
PHOTO_TYPES: Final = ("image/jpeg", "image/png", "image/webp")
SUBMISSION_ID_RE: Final = re.compile(r"^sub_[0-9a-f]{24}$")
SESSION_COOKIE: Final = "esc_session"
CSRF_COOKIE: Final = "esc_csrf"
LOGIN_BODY_MAX: Final = 8192
ENV: Final = "ESCRUTINIO_"


@dataclass(frozen=True, slots=True)
class ObserverConfig:
    photo_max_bytes: int = 5 * 1024 * 1024
    body_max_bytes: int = 64 * 1024
    pool_size: int = 4
    session_hours: float = 12.0
    #: False on a public-only node (``serve --no-observers``): the API answers 503
    enabled: bool = True

    @staticmethod
    def from_env() -> ObserverConfig:
        env = os.environ

        def num(name: str, default: float) -> float:
            try:
                return float(env.get(ENV + name, default))
            except ValueError:
                return default

        return ObserverConfig(int(num("PHOTO_MAX_BYTES", 5 * 1024 * 1024)),
                              int(num("SUBMISSION_MAX_BYTES", 64 * 1024)),
                              int(num("DB_POOL", 4)), num("SESSION_HOURS", 12.0),
                              env.get(ENV + "OBSERVERS", "1") != "0")


def sniff_image(data: bytes) -> str | None:
    """The image type by its first bytes (never by a name or a header)."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it exceeds ``limit`` bytes (whatever
    Content-Length claims)."""
    too_big = AuthError(413, "too_large", f"el cuerpo supera {limit:,} bytes",
                        f"the body exceeds {limit:,} bytes")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise AuthError(400, "bad_content_length", "Content-Length no válido",
                            "invalid Content-Length")
        if int(declared) > limit:
            raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class PageHost:
    """What the coordinator pages borrow from the web app that mounts them: its Jinja
    environment (filters, globals and base templates, overlaid with ours) and its page
    frame (``page(request, backend, lang, path, section=...)`` with ``context()``, ``T``,
    ``u`` and ``when``)."""

    env: Callable[[], jinja2.Environment]
    page: Callable[..., Any]


def _finite(obj: Any) -> Any:
    """JSON has no NaN or infinity: write them as null (as the web API does)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _dumps(obj: Any) -> bytes:
    """The web API's JSON encoding: compact, UTF-8, no NaN."""
    return json.dumps(_finite(to_jsonable(obj)), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_dumps(obj), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store", **(headers or {})})


def _error_body(exc: EscrutinioError, status: int) -> dict[str, Any]:
    out: dict[str, Any] = {"error": type(exc).__name__, "status": status,
                           "message_es": exc.message_es, "message_en": exc.message_en}
    reason = getattr(exc, "reason", None)
    if reason:
        out["reason"] = reason
    detail = getattr(exc, "detail", None)
    if detail is not None:
        out["detail"] = detail
    elif getattr(exc, "field", None) is not None:
        out["detail"] = [{"field": exc.field, "rule": reason}]  # type: ignore[attr-defined]
    return out


class ObserverApp:
    """What the routes share: the repository (or why there is none) and the limits."""

    def __init__(self, store: Store, reader: Store, config: ObserverConfig,
                 host: PageHost | None = None) -> None:
        self.config = config
        self.host = host
        self._env: jinja2.Environment | None = None
        self.repo: Repo | None = None
        self.subs: Submissions | None = None
        self.disabled: EscrutinioError | None = None
        if not config.enabled:
            self.disabled = ObserverApiDisabled(
                "la API de observadores está desactivada en este nodo (serve --no-observers)",
                "the observer API is disabled on this node (serve --no-observers)")
            return
        try:
            self.repo = Repo(store, pool_size=config.pool_size)
            self.subs = Submissions(self.repo, reader)
        except ObserverApiDisabled as exc:
            self.disabled = exc

    def env(self) -> jinja2.Environment:
        """The host's template environment, overlaid with the coordinator templates (ours
        first, then the host's: the pages extend its base template)."""
        if self._env is None:
            if self.host is None:
                raise RuntimeError("the coordinator pages need a PageHost")
            base = self.host.env()
            loaders = [jinja2.PackageLoader("escrutinio.server", "templates")]
            if base.loader is not None:
                loaders.append(base.loader)  # type: ignore[arg-type]
            self._env = base.overlay(loader=jinja2.ChoiceLoader(loaders))
        return self._env

    def need(self) -> tuple[Repo, Submissions]:
        if self.repo is None or self.subs is None:
            exc = self.disabled or ObserverApiDisabled("la API de observadores no está activa",
                                                       "the observer API is not enabled")
            raise AuthError(503, "observer_api_disabled", exc.message_es, exc.message_en)
        return self.repo, self.subs

    async def principal(self, request: Request, roles: Iterable[Role] = ALL_ROLES
                        ) -> Principal:
        """The caller of a token-header API call (401/403 otherwise)."""
        repo, _ = self.need()
        token = bearer(request.headers.get("authorization"))
        if token is None:
            raise AuthError(401, "missing_token",
                            "falta la cabecera 'Authorization: Bearer esc_...'",
                            "the 'Authorization: Bearer esc_...' header is missing")
        if not token:
            raise AuthError(401, "malformed_token", "se espera 'Authorization: Bearer esc_...'",
                            "expected 'Authorization: Bearer esc_...'")
        request.state.__setattr__(STATE_TOKEN, token[4:20] if token.startswith("esc_")
                                  else None)
        p = await run_in_threadpool(repo.authenticate, token)
        request.state.__setattr__(STATE_ACCOUNT, p.pseudonym)
        p.require(roles)
        return p


def observer_router(oa: ObserverApp, backend: Any | None = None) -> APIRouter:
    """The observer/admin API and the coordinator pages, as one router."""
    router = APIRouter()
    _api(router, oa)
    _admin(router, oa)
    for prefix, lang in (("", "es"), ("/en", "en")):
        _pages(router, oa, backend, prefix, lang)
    return router


def install_observers(app: FastAPI, store: Store, backend: Any | None = None,
                      config: ObserverConfig | None = None, *,
                      host: PageHost | None = None) -> ObserverApp:
    """Mount the observer router on ``app``, with the handlers of its refusals. ``store`` is
    the app's store (or catalogue); ``backend`` the app's Backend (its store, with its lock,
    reads the official actas); ``host`` the app's page frame (the coordinator pages)."""
    reader: Store = backend.store if backend is not None else store
    oa = ObserverApp(store, reader, config or ObserverConfig.from_env(), host)
    app.state.observers = oa

    async def refused(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ValueNotAccepted):
            # a value the database refused (a NUL byte...): a 422 that names no database
            exc = AuthError(422, "bad_value", exc.message_es, exc.message_en)
        assert isinstance(exc, AuthError)
        request.state.__setattr__(STATE_REASON, exc.reason)
        path = request.url.path
        if not path.startswith("/api/"):
            return _page_error(request, exc)
        headers = {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="escrutinio"'
        return _json(_error_body(exc, exc.status), exc.status, headers)

    app.add_exception_handler(AuthError, refused)
    app.add_exception_handler(ValueNotAccepted, refused)
    app.include_router(observer_router(oa, backend))
    return oa


# -- OpenAPI documentation of the routes (only when the observer API is enabled) ------------
_ERROR_REF: Final = {"content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/Error"}}}}
_ERRORS: Final = {
    400: "Cuerpo vacío o ilegible / empty or unreadable body",
    401: "Sin ficha, o ficha no válida, caducada o revocada / no token, or an invalid, "
         "expired or revoked token",
    403: "El rol o el alcance no lo permiten / the role or the scope does not allow it",
    404: "No existe, o no es visible para quien pregunta / does not exist, or is not "
         "visible to the caller",
    409: "client_id ya usado con otro contenido, o conflicto / client_id reused with "
         "other content, or a conflict",
    413: "Cuerpo demasiado grande / body too large",
    415: "Tipo de contenido no admitido / unsupported content type",
    422: "Datos no válidos: el detalle nombra campo y regla / invalid data: the detail "
         "names field and rule",
    503: "Base de datos no disponible (Retry-After) o API de observadores desactivada / "
         "database unavailable (Retry-After) or observer API disabled",
}
_OBJECT: Final = {"type": "object", "additionalProperties": True}


def _responses(ok: dict[int, str], *errors: int, media: str = "application/json",
               schema: dict[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {
        code: {"description": text, "content": {media: {"schema": schema or _OBJECT}}}
        for code, text in ok.items()}
    for code in (*errors, 401, 422, 503):
        out[code] = {"description": _ERRORS[code], **_ERROR_REF}
    return out


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": schema}}}}


def _submission_body() -> dict[str, Any]:
    from escrutinio.defence.observers import schema as copy_schema

    copy = {k: v for k, v in copy_schema().items() if not k.startswith("$")}
    copy["required"] = [k for k in copy["required"] if k != "observer_id"]
    return _json_body({
        "type": "object", "required": ["client_id", "copy"], "additionalProperties": False,
        "properties": {
            "client_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
            "contest_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
            "copy": copy,
            "photo_sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"}}},
        "una copia de acta (docs/observers.md) / one copy of an acta (docs/observers.md)")


_PHOTO_BODY: Final = {"requestBody": {"required": True, "description": (
    "los bytes de la foto / the photo's bytes (JPEG, PNG or WebP, checked by signature)"),
    "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in PHOTO_TYPES}}}
_ACCOUNT_BODY: Final = _json_body({
    "type": "object", "required": ["name", "role"], "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "role": {"type": "string", "enum": ["observer", "coordinator", "admin"]},
        "scope": {"type": "object", "additionalProperties": False, "properties": {
            k: {"type": "array", "items": {"type": "string", "minLength": 1,
                                           "maxLength": 200}}
            for k in ("actas", "places", "areas")}}}}, "una cuenta / an account")
_TOKEN_BODY: Final = _json_body({
    "type": "object", "additionalProperties": False, "properties": {
        "expires_in_days": {"type": "number", "exclusiveMinimum": 0, "maximum": 3660}}},
    "validez de la ficha / validity of the token")


# -- the observer API ------------------------------------------------------------------------
def _api(app: APIRouter, oa: ObserverApp) -> None:
    cfg = oa.config
    doc = oa.repo is not None  # documented in the OpenAPI schema only when it is offered

    @app.post("/api/v1/observer/photos", status_code=201, summary="Subir la foto de un acta / "
              "upload the photo of an acta (raw JPEG, PNG or WebP body)",
              include_in_schema=doc, openapi_extra=_PHOTO_BODY,
              responses=_responses({200: "Ya guardada / already stored",
                                    201: "Guardada / stored"}, 400, 403, 413, 415))
    async def upload_photo(request: Request) -> Response:
        repo, _ = oa.need()
        p = await oa.principal(request)
        declared = media_type(request)
        if declared not in PHOTO_TYPES:
            raise AuthError(415, "unsupported_media_type",
                            f"tipo no admitido {declared[:60]!r}: use {', '.join(PHOTO_TYPES)}",
                            f"unsupported type {declared[:60]!r}: use {', '.join(PHOTO_TYPES)}")
        data = await read_body(request, cfg.photo_max_bytes)
        if not data:
            raise AuthError(400, "empty_body", "la foto está vacía", "the photo is empty")
        sniffed = sniff_image(data)
        if sniffed != declared:
            raise AuthError(415, "content_mismatch",
                            f"los bytes no son {declared} (firma: {sniffed or 'desconocida'})",
                            f"the bytes are not {declared} (signature: {sniffed or 'unknown'})")
        sha = hashlib.sha256(data).hexdigest()
        created = await run_in_threadpool(repo.put_photo, sha, sniffed, data, p.pseudonym)
        meta = await run_in_threadpool(repo.photo_meta, sha)
        assert meta is not None
        return _json({"sha256": sha, "size": meta[1], "media_type": meta[0]},
                     201 if created else 200,
                     {"Location": f"/api/v1/observer/photos/{sha}"})

    @app.get("/api/v1/observer/photos/{sha256}", summary="Una foto / one photo",
             include_in_schema=doc, response_class=Response,
             responses=_responses({200: "La foto / the photo"}, 403, 404, media="image/*",
                                  schema={"type": "string", "format": "binary"}))
    async def get_photo(request: Request, sha256: Annotated[str, Path(max_length=64)]
                        ) -> Response:
        repo, _ = oa.need()
        p = await oa.principal(request)
        return await _photo_response(repo, p, sha256)

    @app.post("/api/v1/observer/submissions", status_code=201,
              summary="Enviar la copia de un acta / submit the copy of an acta "
              "(idempotent by client_id)", include_in_schema=doc,
              openapi_extra=_submission_body(),
              responses=_responses({200: "Repetición: el mismo envío / replay: the same "
                                    "submission", 201: "Guardado / stored"},
                                   400, 403, 409, 413, 415))
    async def submit(request: Request) -> Response:
        _, subs = oa.need()
        p = await oa.principal(request)
        if media_type(request) != "application/json":
            raise AuthError(415, "unsupported_media_type", "use Content-Type: application/json",
                            "use Content-Type: application/json")
        body = await read_body(request, cfg.body_max_bytes)
        obj = parse_json(body)
        row, created = await run_in_threadpool(subs.submit, p, obj)
        headers = {"Location": f"/api/v1/observer/submissions/{row['submission_id']}"}
        if not created:
            headers["Idempotent-Replay"] = "true"
        return _json({"submission": submission_json(row)}, 201 if created else 200, headers)

    @app.get("/api/v1/observer/submissions", summary="Envíos visibles / visible submissions",
             include_in_schema=doc, responses=_responses({200: "Envíos / submissions"}, 403))
    async def list_submissions(
            request: Request,
            acta: Annotated[str | None, Query(max_length=64)] = None,
            category: Annotated[str | None, Query(max_length=40)] = None,
            account: Annotated[str | None, Query(max_length=40)] = None,
            contest: Annotated[str | None, Query(max_length=200)] = None,
            limit: Annotated[int, Query(ge=1, le=500)] = 100,
            offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> Response:
        repo, _ = oa.need()
        p = await oa.principal(request)
        _check_text(acta=acta, category=category, account=account, contest=contest)
        _check_category(category)
        if account is not None and p.role is Role.OBSERVER and account != p.pseudonym:
            # an observer filtering by another account sees nothing (and no query runs)
            return _json({"submissions": [], "total": 0, "limit": limit, "offset": offset,
                          "next": None})
        rows, total = await run_in_threadpool(
            lambda: repo.list_submissions(p, acta=acta, category=category, account=account,
                                          contest=contest, limit=limit, offset=offset))
        nxt = None
        if offset + len(rows) < total:
            q = {k: v for k, v in {"acta": acta, "category": category, "account": account,
                                   "contest": contest}.items() if v is not None}
            nxt = "/api/v1/observer/submissions?" + urlencode(
                {**q, "limit": limit, "offset": offset + limit})
        return _json({"submissions": [submission_json(r) for r in rows], "total": total,
                      "limit": limit, "offset": offset, "next": nxt})

    async def visible_submission(request: Request, sid: str) -> tuple[Repo, dict[str, Any]]:
        repo, _ = oa.need()
        p = await oa.principal(request)
        row = None
        if SUBMISSION_ID_RE.match(sid):
            row = await run_in_threadpool(repo.submission, sid)
        if row is None or not repo.can_see(p, row):
            raise AuthError(404, "not_found", "no existe ese envío", "there is no such "
                            "submission")
        return repo, row

    @app.get("/api/v1/observer/submissions/{submission_id}", summary="Un envío / one "
             "submission (404 if not visible)", include_in_schema=doc,
             responses=_responses({200: "El envío / the submission"}, 403, 404))
    async def get_submission(request: Request,
                             submission_id: Annotated[str, Path(max_length=64)]) -> Response:
        _, row = await visible_submission(request, submission_id)
        return _json({"submission": submission_json(row)})

    @app.get("/api/v1/observer/submissions/{submission_id}/proof",
             summary="Prueba de inclusión del envío / inclusion proof of the submission",
             include_in_schema=doc,
             responses=_responses({200: "La prueba / the proof"}, 403, 404))
    async def submission_proof(request: Request,
                               submission_id: Annotated[str, Path(max_length=64)]
                               ) -> Response:
        repo, row = await visible_submission(request, submission_id)
        proof = await run_in_threadpool(repo.prove, row["submission_id"])
        return _json(proof.to_dict())

    @app.get("/api/v1/observer/me", summary="Quién soy / who am I", include_in_schema=doc,
             responses=_responses({200: "La cuenta / the account"}, 403))
    async def me(request: Request) -> Response:
        repo, _ = oa.need()
        p = await oa.principal(request)
        tokens = await run_in_threadpool(repo.tokens, p.account.account_id)
        tok = next((t for t in tokens if t.token_id == p.token_id), None)
        return _json({"account": p.account.to_dict(),
                      "token": tok.to_dict() if tok else None})

    @app.get("/api/v1/ledger/submission-checkpoints",
             summary="Raíces publicadas de los envíos / published roots of the submissions",
             include_in_schema=doc, responses=_responses({200: "Puntos de control / "
                                                          "checkpoints"}))
    async def checkpoints() -> Response:
        repo, _ = oa.need()
        cps = await run_in_threadpool(repo.checkpoints)
        seq, head = await run_in_threadpool(repo.head)
        return _json({"checkpoints": cps, "head": {"seq": seq, "entry_hash": head}})


def _check_text(**params: str | None) -> None:
    """Query parameters are plain text: no control characters (PostgreSQL refuses NUL)."""
    for name, value in params.items():
        if value is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise AuthError(422, "control_characters",
                            f"'{name}' contiene caracteres de control",
                            f"'{name}' contains control characters")


ACCOUNT_ID_RE: Final = re.compile(r"^acc_[0-9a-f]{16}$")


def _check_category(category: str | None) -> None:
    from escrutinio.defence.pvt import Category

    if category is not None and category != "pending" and category not in {
            c.value for c in Category}:
        raise AuthError(422, "bad_category", f"categoría desconocida {category[:40]!r}",
                        f"unknown category {category[:40]!r}")


async def _photo_response(repo: Repo, p: Principal, sha256: str) -> Response:
    visible = SHA256_RE.match(sha256) is not None and await run_in_threadpool(
        repo.photo_visible, p, sha256)
    data = await run_in_threadpool(repo.photo_bytes, sha256) if visible else None
    meta = await run_in_threadpool(repo.photo_meta, sha256) if visible else None
    if data is None or meta is None:
        raise AuthError(404, "not_found", "no existe esa foto", "there is no such photo")
    return Response(data, media_type=meta[0], headers={
        "Cache-Control": "private, no-store", "Content-Security-Policy":
        "default-src 'none'; sandbox", "Content-Disposition": "inline",
        "ETag": f'"{sha256[:32]}"'})


# -- the admin API ---------------------------------------------------------------------------
def _admin(app: APIRouter, oa: ObserverApp) -> None:
    cfg = oa.config
    doc = oa.repo is not None

    async def admin(request: Request) -> tuple[Repo, Principal]:
        repo, _ = oa.need()
        return repo, await oa.principal(request, (Role.ADMIN,))

    async def body(request: Request) -> dict[str, Any]:
        if media_type(request) != "application/json":
            raise AuthError(415, "unsupported_media_type", "use Content-Type: application/json",
                            "use Content-Type: application/json")
        obj = parse_json(await read_body(request, cfg.body_max_bytes))
        if not isinstance(obj, dict):
            raise Invalid(422, "not_an_object", None, "el cuerpo debe ser un objeto JSON",
                          "the body must be a JSON object")
        return obj

    @app.post("/api/v1/admin/accounts", status_code=201, summary="Crear una cuenta / create "
              "an account (admin)", include_in_schema=doc, openapi_extra=_ACCOUNT_BODY,
              responses=_responses({201: "Creada / created"}, 400, 403, 409, 413, 415))
    async def create_account(request: Request) -> Response:
        repo, _ = await admin(request)
        obj = await body(request)
        extra = sorted(set(obj) - {"name", "role", "scope"})
        if extra:
            raise Invalid(422, "unexpected_field", extra[0], "campo no reconocido",
                          "unrecognised field")
        name, role = obj.get("name"), obj.get("role")
        if not isinstance(name, str) or not isinstance(role, str):
            raise Invalid(422, "required", "name" if not isinstance(name, str) else "role",
                          "'name' y 'role' son textos obligatorios",
                          "'name' and 'role' are required strings")
        scope = Scope.from_dict(obj.get("scope"))
        acc = await run_in_threadpool(repo.create_account, name, role, scope)
        return _json({"account": acc.to_dict()}, 201)

    @app.get("/api/v1/admin/accounts", summary="Cuentas y sus fichas / accounts and their "
             "tokens (admin)", include_in_schema=doc,
             responses=_responses({200: "Cuentas / accounts"}, 403))
    async def list_accounts(request: Request) -> Response:
        repo, _ = await admin(request)
        accs = await run_in_threadpool(repo.accounts)
        toks = await run_in_threadpool(repo.tokens)
        by: dict[str, list[dict[str, Any]]] = {}
        for t in toks:
            by.setdefault(t.account_id, []).append(t.to_dict())
        return _json({"accounts": [{**a.to_dict(), "tokens": by.get(a.account_id, [])}
                                   for a in accs]})

    @app.post("/api/v1/admin/accounts/{account_id}/tokens", status_code=201,
              summary="Emitir una ficha (se muestra una vez) / issue a token (shown once)",
              include_in_schema=doc, openapi_extra=_TOKEN_BODY,
              responses=_responses({201: "La ficha / the token"}, 400, 403, 404, 413, 415))
    async def issue(request: Request, account_id: Annotated[str, Path(max_length=40)]
                    ) -> Response:
        repo, _ = await admin(request)
        obj = await body(request)
        days = obj.get("expires_in_days", 30)
        if set(obj) - {"expires_in_days"} or isinstance(days, bool) or not isinstance(
                days, int | float) or not 0 < days <= 3660:
            raise Invalid(422, "bad_expiry", "expires_in_days",
                          "expires_in_days: número de días entre 0 y 3660",
                          "expires_in_days: a number of days between 0 and 3660")
        acc = (await run_in_threadpool(repo.account, account_id)
               if ACCOUNT_ID_RE.match(account_id) else None)
        if acc is None or acc.account_id != account_id:
            raise AuthError(404, "not_found", "no existe esa cuenta", "there is no such account")
        token, info = await run_in_threadpool(lambda: repo.issue_token(account_id,
                                                                       days=float(days)))
        return _json({"token": token, **info.to_dict()}, 201)

    @app.post("/api/v1/admin/tokens/{token_id}/revoke", summary="Revocar una ficha / "
              "revoke a token (admin)", include_in_schema=doc,
              responses=_responses({200: "Revocada / revoked"}, 403, 404))
    async def revoke(request: Request, token_id: Annotated[str, Path(max_length=40)]
                     ) -> Response:
        repo, _ = await admin(request)
        if not re.fullmatch(r"[0-9a-f]{16}", token_id):
            raise AuthError(404, "not_found", "no existe esa ficha", "there is no such token")
        info = await run_in_threadpool(repo.revoke_token, token_id)
        return _json(info.to_dict())

    @app.post("/api/v1/admin/accounts/{account_id}/disable", summary="Desactivar una cuenta "
              "/ disable an account (admin)", include_in_schema=doc,
              responses=_responses({200: "Desactivada / disabled"}, 403, 404, 409))
    async def disable(request: Request, account_id: Annotated[str, Path(max_length=40)]
                      ) -> Response:
        repo, p = await admin(request)
        acc = (await run_in_threadpool(repo.account, account_id)
               if ACCOUNT_ID_RE.match(account_id) else None)
        if acc is None or acc.account_id != account_id:
            raise AuthError(404, "not_found", "no existe esa cuenta", "there is no such account")
        if acc.account_id == p.account.account_id:
            raise AuthError(409, "self_disable", "no puede desactivar su propia cuenta",
                            "you cannot disable your own account")
        acc = await run_in_threadpool(repo.set_disabled, account_id, True)
        return _json({"account": acc.to_dict()})

    @app.post("/api/v1/admin/checkpoint", status_code=201, summary="Publicar un punto de "
              "control (raíz de Merkle de los envíos) / publish a checkpoint (admin)",
              include_in_schema=doc, responses=_responses({
                  200: "Nada nuevo / nothing new", 201: "Publicado / published"}, 403))
    async def checkpoint(request: Request) -> Response:
        repo, _ = await admin(request)
        entry = await run_in_threadpool(repo.checkpoint)
        if entry is None:
            return _json({"checkpoint": None}, 200)
        return _json({"checkpoint": {"seq": entry.seq, "entry_hash": entry.entry_hash,
                                     **entry.entry}}, 201)


# -- coordinator pages (browser: session cookie + CSRF) --------------------------------------
def _render(request: Request, template: str, ctx: dict[str, Any]) -> bytes:
    oa: ObserverApp = request.app.state.observers
    return oa.env().get_template(template).render(**ctx).encode("utf-8")


def _lang_of(path: str) -> str:
    return "en" if path == "/en" or path.startswith("/en/") else "es"


def _context(request: Request, lang: str, path: str, title: str, **extra: Any) -> dict[str, Any]:
    oa: ObserverApp = request.app.state.observers
    if oa.host is None:
        raise RuntimeError("the coordinator pages need a PageHost")
    page = oa.host.page(request, request.app.state.backend, lang, path, section="coordinator")
    try:
        ctx = page.context(title=title, **extra)
    except EscrutinioError:
        ctx = {"lang": lang, "alt_lang": "en" if lang == "es" else "es",
               "alt_url": ("/en" + path) if lang == "es" else path, "T": page.T, "u": page.u,
               "when": page.when, "json_url": None, "snapshot": None, "contest": None,
               "nav": [], "replay": None, "static_site": False, "path": path,
               "candidate_names": {}, "candidate_colours": {}, "title": title, **extra}
    return ctx


def _page_error(request: Request, exc: AuthError) -> Response:
    path = request.url.path
    lang = _lang_of(path)
    prefix = "/en" if lang == "en" else ""
    if exc.status == 401:
        return RedirectResponse(f"{prefix}/coordinator/login", status_code=303)
    plain = path[3:] if lang == "en" else path
    T = (lambda es, en: es if lang == "es" else en)  # noqa: N806, E731
    ctx = _context(request, lang, plain, T("Error", "Error"), status=exc.status,
                   error=_error_body(exc, exc.status))
    return Response(_render(request, "error.html", ctx), status_code=exc.status,
                    media_type="text/html; charset=utf-8")


def _cookie_args(request: Request) -> dict[str, Any]:
    return {"httponly": True, "samesite": "strict", "path": "/",
            "secure": request.url.scheme == "https"}


def _same_origin(request: Request) -> None:
    """A browser form POST must come from this site (Origin, else Referer, when sent)."""
    here = f"{request.url.scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    if origin is not None:
        if origin != here:
            raise AuthError(403, "cross_origin", "petición desde otro sitio",
                            "request from another site")
        return
    ref = request.headers.get("referer")
    if ref is not None and not (ref == here or ref.startswith(here + "/")):
        raise AuthError(403, "cross_origin", "petición desde otro sitio",
                        "request from another site")


async def _form(request: Request) -> dict[str, str]:
    if media_type(request) != "application/x-www-form-urlencoded":
        raise AuthError(415, "unsupported_media_type", "se espera un formulario",
                        "a form was expected")
    raw = await read_body(request, LOGIN_BODY_MAX)
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=10,
                          strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise AuthError(400, "bad_form", "formulario ilegible", "unreadable form") from None
    return {k: v[0] for k, v in parsed.items() if v}


def _pages(app: APIRouter, oa: ObserverApp, backend: Any, prefix: str, lang: str) -> None:
    def T(es: str, en: str) -> str:  # noqa: N802
        return es if lang == "es" else en

    def html(body: bytes, status: int = 200) -> Response:
        return Response(body, status_code=status, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store"})

    async def session(request: Request) -> Principal:
        repo, _ = oa.need()
        value = request.cookies.get(SESSION_COOKIE)
        if not value:
            raise AuthError(401, "no_session", "entre con su ficha", "log in with your token")
        p = await run_in_threadpool(repo.session, value)
        request.state.__setattr__(STATE_ACCOUNT, p.pseudonym)
        request.state.__setattr__(STATE_TOKEN, p.token_id)
        return p

    def login_page(request: Request, csrf: str, error: str | None = None,
                   status: int = 200) -> Response:
        ctx = _context(request, lang, "/coordinator/login", T("Entrar", "Log in"),
                       csrf=csrf, error=error, action=f"{prefix}/coordinator/login",
                       disabled=None if oa.repo is not None else oa.disabled)
        resp = html(_render(request, "coordinator_login.html", ctx), status)
        resp.set_cookie(CSRF_COOKIE, csrf, max_age=3600, **_cookie_args(request))
        return resp

    @app.get(prefix + "/coordinator/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        return login_page(request, secrets.token_urlsafe(24))

    @app.post(prefix + "/coordinator/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        repo, _ = oa.need()
        _same_origin(request)
        form = await _form(request)
        cookie = request.cookies.get(CSRF_COOKIE)
        if not cookie or not check_csrf(cookie, form.get("csrf")):
            raise AuthError(403, "csrf", "el formulario caducó o no viene de este sitio; "
                            "vuelva a cargar la página", "the form expired or does not come "
                            "from this site; reload the page")
        token = form.get("token", "").strip()
        try:
            request.state.__setattr__(STATE_TOKEN, token[4:20] if token.startswith("esc_")
                                      else None)
            p = await run_in_threadpool(repo.authenticate, token)
        except AuthError as exc:
            request.state.__setattr__(STATE_REASON, exc.reason)
            return login_page(request, cookie, T(exc.message_es, exc.message_en), 401)
        request.state.__setattr__(STATE_ACCOUNT, p.pseudonym)
        value, expires = await run_in_threadpool(
            lambda: repo.create_session(p, hours=oa.config.session_hours))
        resp = RedirectResponse(f"{prefix}/coordinator/", status_code=303)
        max_age = max(1, int((expires - datetime.now(UTC)).total_seconds()))
        resp.set_cookie(SESSION_COOKIE, value, max_age=max_age, **_cookie_args(request))
        resp.delete_cookie(CSRF_COOKIE, path="/", httponly=True, samesite="strict")
        return resp

    @app.post(prefix + "/coordinator/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        repo, _ = oa.need()
        _same_origin(request)
        p = await session(request)
        form = await _form(request)
        assert p.session_value is not None
        if not check_csrf(csrf_token(p.session_value), form.get("csrf")):
            raise AuthError(403, "csrf", "token CSRF no válido", "invalid CSRF token")
        await run_in_threadpool(repo.end_session, p.session_value)
        resp = RedirectResponse(f"{prefix}/coordinator/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return resp

    @app.get(prefix + "/coordinator/", include_in_schema=False)
    async def coordinator(
            request: Request, acta: Annotated[str | None, Query(max_length=64)] = None,
            category: Annotated[str | None, Query(max_length=40)] = None,
            offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> Response:
        from escrutinio.defence.pvt import LABELS, Category

        repo, _ = oa.need()
        p = await session(request)
        acta = acta or None
        category = category or None
        _check_text(acta=acta, category=category)
        _check_category(category)
        limit = 100
        rows, total = await run_in_threadpool(
            lambda: repo.list_submissions(p, acta=acta, category=category, limit=limit,
                                          offset=offset))
        subs = [submission_json(r) for r in rows]
        q = {k: v for k, v in {"acta": acta, "category": category}.items() if v}
        more = (f"{prefix}/coordinator/?" + urlencode({**q, "offset": offset + limit})
                if offset + limit < total else None)
        ctx = _context(request, lang, "/coordinator/", T("Coordinación", "Coordination"),
                       principal=p, submissions=subs, total=total, offset=offset,
                       more=more, acta=acta or "", category=category or "",
                       categories=[c.value for c in Category], labels=LABELS,
                       csrf=csrf_token(p.session_value or ""), prefix=prefix)
        return html(_render(request, "coordinator.html", ctx))

    @app.get(prefix + "/coordinator/submissions/{submission_id}", include_in_schema=False)
    async def coordinator_submission(request: Request,
                                     submission_id: Annotated[str, Path(max_length=64)]
                                     ) -> Response:
        from escrutinio.defence.pvt import LABELS

        repo, _ = oa.need()
        p = await session(request)
        row = None
        if SUBMISSION_ID_RE.match(submission_id):
            row = await run_in_threadpool(repo.submission, submission_id)
        if row is None or not repo.can_see(p, row):
            raise AuthError(404, "not_found", "no existe ese envío",
                            "there is no such submission")
        ctx = _context(request, lang, f"/coordinator/submissions/{submission_id}",
                       T("Envío", "Submission"), principal=p, s=submission_json(row),
                       labels=LABELS, csrf=csrf_token(p.session_value or ""), prefix=prefix)
        return html(_render(request, "coordinator_submission.html", ctx))

    @app.get(prefix + "/coordinator/photos/{sha256}", include_in_schema=False)
    async def coordinator_photo(request: Request,
                                sha256: Annotated[str, Path(max_length=64)]) -> Response:
        repo, _ = oa.need()
        p = await session(request)
        return await _photo_response(repo, p, sha256)


__all__ = ["ObserverApp", "ObserverConfig", "install_observers", "sniff_image"]
