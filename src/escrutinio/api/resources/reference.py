"""The API's own pages: the replay state (JSON) and the HTTP API reference (a page over
the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from escrutinio.api import schemas
from escrutinio.api.app import CC_MOVING
from escrutinio.api.backend import Backend
from escrutinio.api.resources.base import Call, Resource, no_params


def install_replay(app: FastAPI, b: Backend) -> None:
    """``/api/v1/replay``: the replay's step and clock (never cached)."""
    @app.get("/api/v1/replay", responses=schemas.ok("ReplayState", "Estado de la repetición "
             "/ replay state"), summary="Estado de la repetición / replay state")
    async def replay_state() -> Response:
        from escrutinio.api.pages import replay_payload

        return JSONResponse(replay_payload(b), headers={"Cache-Control": "no-store"})


def _page(c: Call, _: Any) -> tuple[Any, dict[str, Any]]:
    p = c.page("/api/", json_url="/api/v1/openapi.json", section="api")
    spec = c.request.app.openapi()
    ops = [{"method": m.upper(), "path": path, "summary": op.get("summary", ""),
            "params": [(x["name"], x["in"], x.get("required", False),
                        x.get("description", "")) for x in op.get("parameters", [])]}
           for path, item in spec["paths"].items() for m, op in item.items()]
    return p, {"title": p.T("API HTTP", "HTTP API"), "ops": ops}


#: the reference page; its JSON twin is the OpenAPI document itself
REFERENCE = Resource(name="api", snapshot=False, key=lambda c: (),
                     cache=lambda c: CC_MOVING, page="/api/", page_params=no_params,
                     template="api.html", html=_page)
