"""One mesa (polling station): its official figures in every snapshot, and the observers'
copies for coordinators. A personal answer (the copies), so never cached: the JSON route
and the page (with its lookup form) are plain routes."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from escrutinio.api import schemas
from escrutinio.api.app import dumps, status_of
from escrutinio.api.backend import Backend
from escrutinio.api.resources.base import PageRoutes
from escrutinio.api.resources.params import ContestQ, strip_json
from escrutinio.errors import EscrutinioError


def mesa_links(view: Any) -> dict[str, str]:
    """The mesa's JSON, its page (both languages) and its permalink (the contest named)."""
    m = quote(view.acta_id, safe="")
    return {"self": f"/api/v1/mesa/{m}.json", "html": f"/mesa/{m}/",
            "html_en": f"/en/mesa/{m}/",
            "permalink": f"/api/v1/mesa/{m}.json?contest={quote(view.contest.id, safe='')}"}


SUMMARY = ("Una mesa: sus cifras oficiales y su estado en cada instantánea (copias de "
           "personeros solo para coordinadores) / one mesa: its official figures and its "
           "state in every snapshot (observers' copies for coordinators only)")
MesaP = Annotated[str, Path(max_length=200, description=(
    "número de mesa (p. ej. 000043 o 43) / mesa number (e.g. 000043 or 43)"),
    openapi_examples={"jee": {"value": "000043"}})]


def install_api(app: FastAPI, b: Backend) -> None:
    """``/api/v1/mesa/{mesa}``."""
    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

    @app.get("/api/v1/mesa/{mesa}.json", include_in_schema=False)
    @app.get("/api/v1/mesa/{mesa}", summary=SUMMARY, responses={
        **schemas.ok("MesaResponse", SUMMARY),
        401: {"description": "Cabecera Authorization no válida / invalid Authorization "
                             "header", **err},
        403: {"description": "No es coordinador / not a coordinator", **err}})
    async def mesa(request: Request, mesa: MesaP, contest: ContestQ = None) -> Response:
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


async def _page(r: PageRoutes, request: Request, typed: str | None) -> Response:
    from escrutinio.api import mesa as mesa_lookup
    from escrutinio.api.pages import render
    from escrutinio.defence.pvt import category_label

    b, lang = r.b, r.lang
    view = err = cop = who = None
    if typed is not None:
        try:
            view = await run_in_threadpool(mesa_lookup.find, b, typed)
        except EscrutinioError as exc:
            err = exc
    if view is not None:
        who = await mesa_lookup.coordinator_of(request, api=False)
        if who is not None:
            cop = await run_in_threadpool(mesa_lookup.copies, request, who, view)
    path = "/mesa/" if view is None else f"/mesa/{quote(view.acta_id, safe='')}/"
    p = r.call(request).page(path, section="mesa",
                             json_url=mesa_links(view)["self"] if view is not None else None)
    p.permalink = path if view is not None else None
    names = {x.code: x.name for x in view.contest.candidates} if view is not None else {}
    raw = await run_in_threadpool(render, "mesa.html", p.context(
        title=p.T("Buscar una mesa", "Look up a mesa") if view is None else
        p.T(f"Mesa {view.acta_id}", f"Mesa {view.acta_id}"),
        view=view, error=err, typed=typed or "", copies=cop, coordinator=who,
        mesa_names=names, category_label=lambda k: category_label(k, lang)))
    status = 200 if err is None else status_of(err)
    return Response(raw, status_code=status, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "private, no-store" if who is not None
                             else "no-cache", "Vary": "Cookie"})


def install_pages(r: PageRoutes) -> None:
    """``/mesa/`` (the lookup form) and ``/mesa/{mesa}/`` (not in a static copy)."""
    if r.static_site:
        return

    @r.get("/mesa/")
    async def mesa_form(request: Request,
                        mesa: str | None = Query(None, max_length=200)) -> Response:
        if mesa is not None and mesa.strip():
            from escrutinio.api.mesa import MESA_RE

            if MESA_RE.match(mesa.strip()):
                return RedirectResponse(f"{r.prefix}/mesa/{quote(mesa.strip(), safe='')}/",
                                        status_code=303)
            return await _page(r, request, mesa)
        return await _page(r, request, None)

    @r.get("/mesa/{mesa}/")
    async def mesa_page(request: Request, mesa: str) -> Response:
        return await _page(r, request, mesa)
