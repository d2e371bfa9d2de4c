"""The forensic screen (anomaly, not proof) and its fingerprint image."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from escrutinio.api import schemas
from escrutinio.api.app import _inm_matches, etag_for
from escrutinio.api.backend import Backend
from escrutinio.api.resources.base import Call, analysis, snapshot_cc
from escrutinio.api.resources.params import ContestQ, Ref
from escrutinio.provenance import to_jsonable


def _report(c: Call, v: Any) -> dict[str, Any]:
    rep = to_jsonable(v.report)
    rep["flagged_actas"] = rep["flagged_actas"][:c.args["limit"]]
    rep["first_round_snapshot"] = to_jsonable(v.first_round)
    rep["fingerprint_png"] = f"/api/v1/s/{c.sid}/forensics/fingerprint.png"
    return rep


FORENSICS = analysis(
    "forensics", "Cribado forense (anomalía, no prueba) / forensic screen (anomaly, not "
    "proof)", title=("Cribado forense: anomalía, no prueba",
                     "Forensic screen: anomaly, not proof"), template="forensics.html",
    load=lambda c: c.b.forensics(c.snap), result=_report)


def install_fingerprint(app: FastAPI, b: Backend) -> None:
    """``/api/v1/s/{ref}/forensics/fingerprint.png``: the election fingerprint."""
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
        c = Call(b, request, {"ref": ref}, info=info)
        return Response(png, media_type="image/png",
                        headers={"ETag": etag, "Cache-Control": snapshot_cc(c)})
