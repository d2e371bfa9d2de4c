"""Acta verification and the parallel tabulation of observers' copies: the analysis (JSON
and page), the copies sent to the API, and the page's upload form."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from escrutinio.api import schemas
from escrutinio.api.app import dumps
from escrutinio.api.backend import Backend
from escrutinio.api.resources.base import Call, PageRoutes, analysis, api_links
from escrutinio.api.resources.params import ContestQ, LimitQ, Ref
from escrutinio.errors import EscrutinioError


def upload_context(c: Call, error: EscrutinioError | None) -> dict[str, Any]:
    """What a page with an upload form shows besides its analysis."""
    from escrutinio.api.pages import mib

    return {"upload_error": error, "limit_label": mib(c.b.upload_limit)}


def _context(c: Call, v: Any, pvt: Any = None,
             error: EscrutinioError | None = None) -> dict[str, Any]:
    from escrutinio.defence.pvt import category_label

    lang = c.lang or "es"
    return {"pvt": pvt, **upload_context(c, error),
            "category_label": lambda k: category_label(k, lang)}


VERIFY = analysis(
    "verify", "Verificación de actas / acta verification",
    title=("Verificación y tabulación paralela", "Verification and parallel tabulation"),
    template="verify.html", load=lambda c: c.b.verify(c.snap),
    result=lambda c, v: {"previous": v.previous, **v.result.to_jsonable(c.args["limit"])},
    needs_actas=("la verificación", "verification"), extra=_context)


def install_pvt(app: FastAPI, b: Backend) -> None:
    """``POST /api/v1/s/{ref}/pvt``: the reconciliation of the copies sent (never cached:
    it depends on them)."""
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
        raw = dumps({"snapshot": info, "contest": b.store.contest(info.contest_id).to_dict(),
                     "result": res.to_jsonable(limit), "links": links})
        return Response(raw, media_type="application/json",
                        headers={"Cache-Control": "no-store"})


def install_form(r: PageRoutes) -> None:
    """``POST /s/{ref}/verify/``: the upload form (works without JavaScript): the page
    again, with the reconciliation of the copies sent, or what was wrong with them."""
    from escrutinio.api import uploads
    from escrutinio.api.pages import acta_info, posted, render

    b = r.b

    @r.post("/s/{ref}/verify/")
    async def verify_upload(request: Request, ref: str) -> Response:
        c = r.call(request, ref=ref, limit=200)
        c.info = acta_info(b, ref, "la tabulación paralela", "the parallel tabulation")
        res = err = None
        try:
            upload = await uploads.read_upload(request, b.upload_limit)
            res = await run_in_threadpool(b.pvt, c.info, upload)
        except EscrutinioError as exc:
            err = exc

        def draw() -> bytes:
            assert VERIFY.html is not None
            p, ctx = VERIFY.html(c, b.verify(c.snap))
            return render("verify.html", p.context(**{**ctx, **_context(c, None, res, err)}))

        return posted(await run_in_threadpool(draw), err)
