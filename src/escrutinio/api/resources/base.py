"""The registry: one :class:`Resource` declaration becomes its JSON route (``/api/v1/...``,
also at ``... .json``) and its page (Spanish at ``/``, English under ``/en``), with the
app's HTTP caching (ETag, 304, gzip, ``Cache-Control``) and its error handling.

A resource declares, once: its paths, the JSON route's parameters (a function whose
FastAPI-annotated signature is the route's; the page is the resource at the defaults of
the parameters it does not take), how the request's snapshot is found, what the answer
depends on (its cache key), ``load`` — the analysis result, fetched through the
:class:`~escrutinio.api.backend.Backend` — and the two presentations of that one result:
``payload`` (the JSON twin) and ``html`` (the page frame and the template's data).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from escrutinio.api import schemas
from escrutinio.api.app import (
    CC_MOVING,
    CC_PERMALINK,
    CC_REPLAY,
    _inm_matches,
    dumps,
    etag_for,
    make_body,
    send,
)
from escrutinio.api.backend import Backend, NeedsActas
from escrutinio.domain import SnapshotKind
from escrutinio.store.base import SnapshotInfo

if TYPE_CHECKING:  # pages imports the app's helpers, as this module does
    from escrutinio.api.pages import Page


@dataclass(slots=True)
class Call:
    """One request to a resource: its parsed parameters, its snapshot, and whether it asks
    for the JSON twin (``lang`` None) or the page in ``lang``."""

    b: Backend
    request: Request
    args: dict[str, Any]
    lang: str | None = None
    prefix: str = ""
    static_site: bool = False
    info: SnapshotInfo | None = None
    #: what ``prepare`` found (the cache key may depend on it)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def snap(self) -> SnapshotInfo:
        assert self.info is not None, "a snapshot resource"
        return self.info

    @property
    def sid(self) -> str:
        return self.snap.snapshot_id

    @property
    def ref(self) -> str:
        return str(self.args["ref"])

    def contest_json(self, info: SnapshotInfo | None = None) -> dict[str, object]:
        return self.b.store.contest((info or self.snap).contest_id).to_dict()

    def page(self, path: str, **kw: Any) -> Page:
        from escrutinio.api.pages import Page

        assert self.lang is not None, "a page request"
        return Page(self.request, self.b, self.lang, path, static_site=self.static_site,
                    **kw)

    def moving(self) -> str:
        """Cache-Control of an answer that moves with the count."""
        return CC_REPLAY if self.b.clock is not None else CC_MOVING


def snapshot_cc(c: Call) -> str:
    """Long for a permalink (the full id asked), short for anything that moves."""
    if c.ref == c.sid:
        return CC_PERMALINK
    return c.moving()


def page_ref(ref: str) -> dict[str, Any]:
    """The page's parameters by default: the snapshot reference."""
    return {"ref": ref}


def no_params() -> dict[str, Any]:
    return {}


@dataclass(frozen=True, kw_only=True)
class Resource:
    """One resource: a JSON route and/or a page built from one result."""

    name: str
    summary: str = ""
    #: JSON path under /api/v1 (None: a page only)
    api: str | None = None
    #: OpenAPI schema of the JSON answer (schemas.components)
    schema: str = "AnalysisResponse"
    #: the JSON route's parameters: its signature is the route's (FastAPI annotations)
    api_params: Callable[..., dict[str, Any]] = no_params
    #: the route's function name (the OpenAPI operationId)
    api_name: str = ""
    #: page path (None: JSON only); the English page is under /en
    page: str | None = None
    page_params: Callable[..., dict[str, Any]] = page_ref
    template: str = ""
    #: args["ref"] names the snapshot of the answer
    snapshot: bool = True
    #: a page that needs a per-acta snapshot: (what, in Spanish and English)
    needs_actas: tuple[str, str] | None = None
    prepare: Callable[[Call], None] | None = None
    key: Callable[[Call], tuple[Any, ...]] = lambda c: (c.sid,)
    cache: Callable[[Call], str] = snapshot_cc
    #: the one result both presentations show (through the Backend)
    load: Callable[[Call], Any] = lambda c: None
    payload: Callable[[Call, Any], dict[str, Any]] | None = None
    #: the page: (its frame, the template's data) from the same result
    html: Callable[[Call, Any], tuple[Page, dict[str, Any]]] | None = None

    def page_args(self, page_kw: dict[str, Any]) -> dict[str, Any]:
        """The page is the resource at the JSON route's defaults for what it does not
        take (no ``limit``, ``contest``... on a page)."""
        return {**_defaults(self.api_params), **self.page_params(**page_kw)}


@cache
def _defaults(params: Callable[..., Any]) -> dict[str, Any]:
    sig = inspect.signature(params)
    return {k: p.default for k, p in sig.parameters.items()
            if p.default is not inspect.Parameter.empty}


def _with_request(params: Callable[..., Any]) -> inspect.Signature:
    sig = inspect.signature(params, eval_str=True)
    req = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                            annotation=Request)
    return sig.replace(parameters=[req, *sig.parameters.values()], return_annotation=Response)


# --- the two caches: JSON bodies and pages ---------------------------------------------------

async def respond(request: Request, b: Backend, key: tuple[Any, ...],
                  build: Callable[[], Any], cache_control: str) -> Response:
    """A JSON answer: 304 on a matching ETag without computing, else the cached body."""
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


async def html(request: Request, b: Backend, key: tuple[Any, ...], make: Callable[[], bytes],
               cache_control: str, static_site: bool) -> Response:
    """A page: drawn once per key (and replay step), revalidated by its ETag."""
    if b.clock is not None:
        # a replay: the banner names the step, so the step is part of the key (the
        # request's step is pinned: the page is drawn from this step, see replay.py)
        key = (*key, ("replay-step", b.clock.index()))
    etag = etag_for("html", key, static_site)
    body = b.bodies.get(("html", key, static_site))
    if body is None:
        if _inm_matches(request, etag):
            return Response(status_code=304, headers={"ETag": etag,
                                                      "Cache-Control": cache_control})
        raw = await run_in_threadpool(make)
        body = make_body(etag, raw, "text/html; charset=utf-8")
        b.bodies.put(("html", key, static_site), body)
    return send(request, body, cache_control)


# --- links -----------------------------------------------------------------------------------

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


def query(**params: Any) -> str:
    """``?a=1&b=2`` of the parameters that are not None (for links)."""
    from urllib.parse import urlencode

    kept = {k: v for k, v in params.items() if v is not None}
    return "?" + urlencode(kept) if kept else ""


# --- the registry ----------------------------------------------------------------------------

def _start(res: Resource, c: Call) -> None:
    if res.snapshot:
        c.info = c.b.resolve(c.ref, contest=c.args.get("contest") if c.lang is None
                             else None)
        if c.lang is not None and res.needs_actas and c.info.kind is not SnapshotKind.ACTAS:
            what_es, what_en = res.needs_actas
            sid = c.info.snapshot_id[:12]
            raise NeedsActas(f"{what_es} necesita una instantánea por acta; {sid} es agregada",
                             f"{what_en} needs a per-acta snapshot; {sid} is an aggregate one")
    if res.prepare is not None:
        res.prepare(c)


def add_json(app: FastAPI, b: Backend, res: Resource) -> None:
    """The resource's JSON route, at its path and its path + ``.json``."""
    assert res.api is not None and res.payload is not None
    payload = res.payload

    async def endpoint(request: Request, **kw: Any) -> Response:
        c = Call(b, request, res.api_params(**kw))
        _start(res, c)
        return await respond(request, b, (res.name, *res.key(c)),
                             lambda: payload(c, res.load(c)), res.cache(c))

    endpoint.__signature__ = _with_request(res.api_params)  # type: ignore[attr-defined]
    endpoint.__name__ = endpoint.__qualname__ = res.api_name or res.name
    path = "/api/v1" + res.api
    app.get(path + ".json", include_in_schema=False)(endpoint)
    app.get(path, responses=schemas.ok(res.schema, res.summary), summary=res.summary)(endpoint)


def add_page(app: FastAPI, b: Backend, res: Resource, prefix: str, lang: str,
             static_site: bool) -> None:
    """The resource's page in ``lang`` (at ``prefix``)."""
    assert res.page is not None and res.html is not None and res.template
    draw = res.html

    async def endpoint(request: Request, **kw: Any) -> Response:
        c = Call(b, request, res.page_args(kw), lang=lang, prefix=prefix,
                 static_site=static_site)
        _start(res, c)

        def make() -> bytes:
            from escrutinio.api.pages import render

            page, ctx = draw(c, res.load(c))
            return render(res.template, page.context(**ctx))

        return await html(request, b, (res.name, lang, *res.key(c)), make, res.cache(c),
                          static_site)

    endpoint.__signature__ = _with_request(res.page_params)  # type: ignore[attr-defined]
    endpoint.__name__ = endpoint.__qualname__ = f"page_{res.name}_{lang}"
    app.get(prefix + res.page, include_in_schema=False, response_class=Response)(endpoint)


@dataclass(frozen=True, slots=True)
class PageRoutes:
    """What a module's own page routes (forms, redirects) need: the app, the language and
    its prefix."""

    app: FastAPI
    b: Backend
    prefix: str
    lang: str
    static_site: bool

    def get(self, path: str) -> Callable[[Any], Any]:
        return self.app.get(self.prefix + path, include_in_schema=False,
                            response_class=Response)

    def post(self, path: str) -> Callable[[Any], Any]:
        return self.app.post(self.prefix + path, include_in_schema=False,
                             response_class=Response)

    def call(self, request: Request, **args: Any) -> Call:
        return Call(self.b, request, args, lang=self.lang, prefix=self.prefix,
                    static_site=self.static_site)


def analysis(name: str, summary: str, *, title: tuple[str, str], template: str,
             load: Callable[[Call], Any], result: Callable[[Call, Any], Any],
             needs_actas: tuple[str, str] = ("esta página", "this page"),
             section: str | None = None,
             extra: Callable[[Call, Any], dict[str, Any]] | None = None) -> Resource:
    """A per-acta analysis of one snapshot: ``/api/v1/s/{ref}/NAME`` (``result`` of the
    loaded view, ``limit`` rows) and the page ``/s/{ref}/NAME/`` (the view as ``v``)."""
    from escrutinio.api.resources.params import analysis_params

    def payload(c: Call, view: Any) -> dict[str, Any]:
        limit = c.args["limit"]
        return {"snapshot": c.info, "contest": c.contest_json(), "result": result(c, view),
                "links": api_links(c.info, f"/api/v1/s/{c.ref}/{name}.json",
                                   f"/s/{c.sid}/{name}/",
                                   query=query(limit=None if limit == 200 else limit))}

    def page(c: Call, view: Any) -> tuple[Page, dict[str, Any]]:
        p = c.page(f"/s/{c.sid}/{name}/", info=c.info,
                   json_url=f"/api/v1/s/{c.sid}/{name}.json", section=section or name)
        return p, {"title": p.T(*title), "v": view, **(extra(c, view) if extra else {})}

    return Resource(name=name, api=f"/s/{{ref}}/{name}", summary=summary,
                    # "route": the operationId these four have always had
                    api_params=analysis_params, api_name="route",
                    key=lambda c: (c.sid, c.args["limit"]), load=load, payload=payload,
                    page=f"/s/{{ref}}/{name}/", template=template, needs_actas=needs_actas,
                    html=page)
