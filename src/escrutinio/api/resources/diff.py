"""What changed between two snapshots (JSON and page), and the page's picker."""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response

from escrutinio.api.app import CC_MOVING, CC_PERMALINK
from escrutinio.api.backend import NeedsActas
from escrutinio.api.resources.base import Call, PageRoutes, Resource, api_links, query
from escrutinio.api.resources.params import ContestQ, DiffLimitQ, Ref, strip_json
from escrutinio.errors import EscrutinioError
from escrutinio.service import DIFF_LIMIT


def _params(older: Ref, newer: Ref, limit: DiffLimitQ = DIFF_LIMIT,
            contest: ContestQ = None) -> dict[str, Any]:
    return {"older": older, "newer": strip_json(newer), "limit": limit, "contest": contest}


def _resolve(c: Call) -> None:
    contest = c.args["contest"]
    a = c.b.resolve(c.args["older"], contest=contest)
    n = c.b.resolve(c.args["newer"], contest=contest)
    if a.kind is not n.kind:
        raise EscrutinioError(
            "no se pueden comparar una instantánea por acta y una agregada",
            "cannot diff a per-acta snapshot against an aggregate one")
    c.data["older"], c.data["newer"] = a, n
    c.info = n


def _cache(c: Call) -> str:
    a, n = c.data["older"], c.data["newer"]
    if c.args["older"] == a.snapshot_id and c.args["newer"] == n.snapshot_id:
        return CC_PERMALINK
    return c.moving() if c.lang is None else CC_MOVING


def _json(c: Call, d: Any) -> dict[str, Any]:
    a, n, limit = c.data["older"], c.data["newer"], c.args["limit"]
    return {"contest": c.contest_json(a), "older": a, "newer": n, "diff": d,
            "links": api_links(None, f"/api/v1/diff/{c.args['older']}/{c.args['newer']}.json",
                               f"/diff/{a.snapshot_id}/{n.snapshot_id}/",
                               query=query(limit=None if limit == DIFF_LIMIT else limit),
                               permalink=f"/api/v1/diff/{a.snapshot_id}/"
                               f"{n.snapshot_id}.json")}


def _page(c: Call, d: Any) -> tuple[Any, dict[str, Any]]:
    a, n = c.data["older"], c.data["newer"]
    p = c.page(f"/diff/{a.snapshot_id}/{n.snapshot_id}/", info=n,
               json_url=f"/api/v1/diff/{a.snapshot_id}/{n.snapshot_id}.json", section="diff")
    return p, {"title": p.T("Qué cambió entre dos instantáneas",
                            "What changed between two snapshots"),
               "d": d, "older": a, "newer": n,
               "choices": c.b.store.list_snapshots(n.contest_id, n.kind)}


DIFF = Resource(
    name="diff", api="/diff/{older}/{newer}", schema="DiffResponse",
    summary="Qué cambió entre dos instantáneas / what changed between two snapshots",
    api_params=_params, snapshot=False, prepare=_resolve,
    key=lambda c: (c.data["older"].snapshot_id, c.data["newer"].snapshot_id,
                   c.args["limit"]),
    cache=_cache,
    load=lambda c: c.b.diff(c.data["older"], c.data["newer"], c.args["limit"]),
    payload=_json, page="/diff/{older}/{newer}/",
    page_params=lambda older, newer: {"older": older, "newer": newer},
    template="diff.html", html=_page)


def install_picker(r: PageRoutes) -> None:
    """``/diff/``: to the two snapshots asked, or the latest against the one before."""
    from escrutinio.api.pages import previous_snapshot

    b = r.b

    @r.get("/diff/")
    async def diff_form(request: Request, older: str | None = Query(None, max_length=200),
                        newer: str | None = Query(None, max_length=200)) -> Response:
        if older and newer:
            a, n = b.resolve(older), b.resolve(newer)
            return RedirectResponse(f"{r.prefix}/diff/{a.snapshot_id}/{n.snapshot_id}/",
                                    status_code=303)
        info = b.overview_snapshot()
        prev = previous_snapshot(b, info)
        if prev is None:
            raise NeedsActas("no hay una instantánea anterior comparable",
                             "there is no earlier comparable snapshot")
        return RedirectResponse(f"{r.prefix}/diff/{prev.snapshot_id}/{info.snapshot_id}/",
                                status_code=303)
