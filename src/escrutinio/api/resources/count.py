"""Where the count stands: the state by level (its page is the overview, ``/s/{ref}/``,
and the home page ``/``) and the map by area."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from escrutinio.api.backend import Unavailable
from escrutinio.api.i18n import LEVEL_ALIASES
from escrutinio.api.resources.base import Call, PageRoutes, Resource, api_links, html
from escrutinio.api.resources.params import ContestQ, LevelP, Ref
from escrutinio.count import CountState
from escrutinio.domain import Level, SnapshotKind, level_label
from escrutinio.errors import EscrutinioError


def level_json(c: Call, lv: Level) -> dict[str, str]:
    names = c.b.area_labels(c.snap.contest_id)
    return {"es": level_label(names, lv, "es"), "en": level_label(names, lv, "en")}


def _state_params(ref: Ref, level: LevelP, contest: ContestQ = None) -> dict[str, Any]:
    return {"ref": ref, "level": Level(LEVEL_ALIASES[level.value]), "contest": contest}


def _state_json(c: Call, st: CountState) -> dict[str, Any]:
    lv: Level = c.args["level"]
    return {"snapshot": c.info, "contest": c.contest_json(), "level": lv.value,
            "level_label": level_json(c, lv), "state": st,
            "links": api_links(c.info, f"/api/v1/s/{c.ref}/state/{lv.value}.json",
                               f"/s/{c.sid}/" if lv is Level.NATIONAL
                               else f"/s/{c.sid}/map/{lv.value}/")}


def overview(c: Call, st: CountState, home: bool = False) -> tuple[Any, dict[str, Any]]:
    """The overview page: the national count, the projection's headline, the timeline."""
    from escrutinio.api.pages import (
        bars,
        call_view,
        hurdle_text,
        projection_note,
        timeline_chart,
    )

    b, info, sid = c.b, c.snap, c.sid
    p = c.page("/" if home else f"/s/{sid}/", info=info,
               json_url=f"/api/v1/s/{sid}/state/national.json", section="overview")
    names = {x.code: x.name for x in st.national.candidates}
    proj = proj_err = None
    try:
        proj = b.projection(info)
    except (Unavailable, ValueError, EscrutinioError) as exc:
        proj_err = exc
    try:
        timeline = timeline_chart(b, p, info.contest_id, sid, height=240)
    except EscrutinioError:
        timeline = None
    latest_actas = [s for s in b.store.list_snapshots(info.contest_id, SnapshotKind.ACTAS)
                    if s.as_of <= info.as_of]
    contest = b.store.contest(info.contest_id)
    headline = (call_view(proj.projection, {x.code: x.name for x in contest.candidates},
                          contest.majority_threshold) if proj else None)
    return p, {
        "title": p.T("Dónde está el conteo", "Where the count stands"), "st": st,
        "headline": headline, "n": st.national,
        "hurdle": hurdle_text(st, names, p.lang), "home": home, "race": st.runoff_race,
        "race_text": p.T(*st.runoff_race.sentence(names)) if st.runoff_race else None,
        "bars": {x["code"]: x for x in bars([(x.code, x.name, x.pct_valid)
                                             for x in st.national.candidates])},
        "proj": proj, "proj_err": proj_err,
        "proj_note": projection_note(proj) if proj else None,
        "timeline": timeline, "latest_actas": latest_actas[-1] if latest_actas else None}


STATE = Resource(
    name="state", api="/s/{ref}/state/{level}", schema="StateResponse",
    summary="Estado del conteo por nivel / count state by level", api_params=_state_params,
    key=lambda c: (c.sid, c.args["level"].value),
    load=lambda c: c.b.state(c.snap, c.args["level"]), payload=_state_json,
    page="/s/{ref}/", page_params=lambda ref: {"ref": ref, "level": Level.NATIONAL},
    template="overview.html", html=overview)


def install_home(r: PageRoutes) -> None:
    """``/``: the overview of the latest snapshot (or the empty store's page)."""
    b = r.b

    @r.get("/")
    async def home(request: Request) -> Response:
        from escrutinio.api.pages import render

        c = r.call(request, level=Level.NATIONAL)
        if not b.store.all_snapshots():
            p = c.page("/", section="overview")
            return Response(render("empty.html", p.context(title=p.T(
                "Sin datos", "No data"))), media_type="text/html")
        c.info = b.overview_snapshot()
        c.args["ref"] = c.sid
        step = b.clock.index() if b.clock is not None else None

        def make() -> bytes:
            p, ctx = overview(c, b.state(c.snap, Level.NATIONAL), home=True)
            return render("overview.html", p.context(**ctx))

        return await html(request, b, ("home", r.lang, c.sid, step), make, c.moving(),
                          r.static_site)


# --- the map -----------------------------------------------------------------------------------

def _map_params(ref: Ref, level: LevelP, contest: ContestQ = None) -> dict[str, Any]:
    return {"ref": ref, "level": level.value, "contest": contest}


def _map_level(c: Call) -> None:
    from escrutinio.api.pages import map_level

    if c.lang is not None:  # a page: only the areas have a map
        c.data["level"] = map_level(c.args["level"])
        return
    lv = Level(LEVEL_ALIASES[c.args["level"]])
    if lv is Level.NATIONAL:
        raise EscrutinioError("el mapa es por área: area1, area2 o area3",
                              "the map is by area: area1, area2 or area3")
    c.data["level"] = lv


def _map_state(c: Call) -> CountState | None:
    lv = c.data["level"]
    if c.lang is not None and lv not in c.b.levels_of(c.snap):
        return None  # the page says so, and links the snapshots that have it
    return c.b.state(c.snap, lv)


def _map_json(c: Call, st: CountState) -> dict[str, Any]:
    from escrutinio.api.pages import map_join

    lv: Level = c.data["level"]
    return {"snapshot": c.info, "contest": c.contest_json(), "level": lv.value,
            "level_label": level_json(c, lv), "state": st,
            "map": map_join(c.b, c.snap, lv, st),
            "links": api_links(c.info, f"/api/v1/s/{c.ref}/map/{lv.value}.json",
                               f"/s/{c.sid}/map/{lv.value}/")}


def _map_page(c: Call, st: CountState | None) -> tuple[Any, dict[str, Any]]:
    from escrutinio.api.pages import map_context

    lv: Level = c.data["level"]
    p = c.page(f"/s/{c.sid}/map/{lv.value}/", info=c.info,
               json_url=f"/api/v1/s/{c.sid}/map/{lv.value}.json", section="map")
    return p, map_context(c.b, p, c.snap, lv, st)


MAP = Resource(
    name="map", api="/s/{ref}/map/{level}", schema="MapResponse",
    summary="Mapa: estado por unidad con la clave del mapa / map: state per unit with map "
    "keys", api_params=_map_params, api_name="map_", prepare=_map_level,
    key=lambda c: (c.sid, c.data["level"].value), load=_map_state, payload=_map_json,
    page="/s/{ref}/map/{level}/", page_params=lambda ref, level: {"ref": ref, "level": level},
    template="map.html", html=_map_page)
