"""The quick count: its design and public sample (JSON and page), and the estimate from
the sampled mesas' reports (sent to the API, or through the page's form)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from escrutinio.api import i18n, schemas
from escrutinio.api.app import dumps
from escrutinio.api.backend import Backend
from escrutinio.api.resources.base import Call, PageRoutes, Resource, api_links, query
from escrutinio.api.resources.params import ContestQ, LimitQ, PublicSeedQ, Ref
from escrutinio.api.resources.verify import upload_context
from escrutinio.errors import EscrutinioError, IngestError, Location


def _params(ref: Ref, seed: PublicSeedQ = None, limit: LimitQ = 200,
            contest: ContestQ = None) -> dict[str, Any]:
    return {"ref": ref, "seed": seed, "limit": limit, "contest": contest}


def _page_params(ref: str, seed: str | None = Query(None, min_length=1, max_length=200)
                 ) -> dict[str, Any]:
    return {"ref": ref, "seed": seed}


def _json(c: Call, v: Any) -> dict[str, Any]:
    seed, limit = c.args["seed"], c.args["limit"]
    return {"snapshot": c.info, "contest": c.contest_json(), "result": {
        "design": v.design, "strata": v.design.table().to_dicts(),
        "design_effect": v.design_effect, "margin_of_error": v.moe,
        "urban_rule_es": v.urban_rule_es, "urban_rule_en": v.urban_rule_en,
        "seed": seed, "n_sample": v.n_sample,
        "sample": [] if v.sample is None else v.sample.head(limit).to_dicts()},
        "links": api_links(c.info, f"/api/v1/s/{c.ref}/quickcount.json",
                           f"/s/{c.sid}/quickcount/{query(seed=seed)}",
                           query=query(seed=seed, limit=None if limit == 200 else limit))}


def _page(c: Call, v: Any, est: Any = None,
          error: EscrutinioError | None = None) -> tuple[Any, dict[str, Any]]:
    from escrutinio.api.pages import call_label

    seed, lang = c.args["seed"], c.lang or "es"
    q = f"?seed={quote(seed, safe='')}" if seed else ""
    p = c.page(f"/s/{c.sid}/quickcount/", info=c.info,
               json_url=f"/api/v1/s/{c.sid}/quickcount.json{q}", section="quickcount")
    p.permalink = f"/s/{c.sid}/quickcount/{q}"
    short = {x.code: i18n.short_name(x.name)
             for x in c.b.store.contest(c.snap.contest_id).candidates}
    return p, {"title": p.T("Conteo rápido", "Quick count"), "v": v, "est": est,
               **upload_context(c, error), "call_label": lambda e: call_label(e, lang, short)}


QUICKCOUNT = Resource(
    name="quickcount", api="/s/{ref}/quickcount",
    summary="Conteo rápido: diseño y muestra pública / quick count: design and public sample",
    api_params=_params, key=lambda c: (c.sid, c.args["seed"], c.args["limit"]),
    load=lambda c: c.b.quickcount(c.snap, c.args["seed"]), payload=_json,
    page="/s/{ref}/quickcount/", page_params=_page_params, template="quickcount.html",
    needs_actas=("el conteo rápido", "the quick count"), html=_page)


def install_estimate(app: FastAPI, b: Backend) -> None:
    """``POST /api/v1/s/{ref}/quickcount/estimate``: the estimate from the reports sent
    (never cached: it depends on them)."""
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
        raw = dumps({"snapshot": info, "contest": b.store.contest(info.contest_id).to_dict(),
                     "result": v.to_jsonable(limit), "links": links})
        return Response(raw, media_type="application/json",
                        headers={"Cache-Control": "no-store"})


def _check_seed(seed: str | None) -> str:
    if seed is None or len(seed) > 200:
        raise IngestError(Location("seed", None, "seed"), "bad_seed",
                          "indique la semilla pública de la muestra (1 a 200 caracteres)",
                          "give the public seed of the sample (1 to 200 characters)")
    return seed


def install_form(r: PageRoutes) -> None:
    """``POST /s/{ref}/quickcount/``: the reports form (works without JavaScript): the
    page with the sample of the seed sent and the estimate from the reports, or what was
    wrong with them."""
    from escrutinio.api import uploads
    from escrutinio.api.pages import acta_info, posted, render

    b = r.b

    @r.post("/s/{ref}/quickcount/")
    async def quickcount_upload(request: Request, ref: str) -> Response:
        info = acta_info(b, ref, "el conteo rápido", "the quick count")
        seed = request.query_params.get("seed")
        est = err = None
        try:
            upload = await uploads.read_upload(request, b.upload_limit)
            seed = (upload.fields.get("seed") or seed or "").strip() or None
            est = await run_in_threadpool(b.quickcount_estimate, info, _check_seed(seed),
                                          upload, info)
        except EscrutinioError as exc:
            err = exc
        c = r.call(request, ref=ref, seed=seed if seed and len(seed) <= 200 else None,
                   limit=200)
        c.info = info

        def draw() -> bytes:
            p, ctx = _page(c, b.quickcount(info, c.args["seed"]), est, err)
            return render("quickcount.html", p.context(**ctx))

        return posted(await run_in_threadpool(draw), err)
