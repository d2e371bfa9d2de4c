"""The count over time: the margin history with its lead changes, and the projection at
each snapshot (the fan chart). Each has a moving address (``/history``) and a permalink
bound to a snapshot (``/s/{ref}/history``); one page shows both."""

from __future__ import annotations

from typing import Any

from escrutinio.api.backend import PROJECTION_SEED
from escrutinio.api.resources.base import Call, Resource, api_links
from escrutinio.api.resources.params import ContestQ, Ref, strip_json
from escrutinio.errors import EscrutinioError
from escrutinio.store.base import SnapshotInfo


def _contest_params(contest: ContestQ = None) -> dict[str, Any]:
    return {"contest": contest}


def _ref_params(ref: Ref, contest: ContestQ = None) -> dict[str, Any]:
    return {"ref": strip_json(ref), "contest": contest}


def _moving(c: Call) -> None:
    cid = c.b.contest_id(c.args["contest"])
    c.data["cid"], c.data["snaps"] = cid, c.b.history_snapshots(cid)


def _until(c: Call) -> None:
    c.data["cid"] = c.snap.contest_id
    c.data["snaps"] = c.b.history_snapshots(c.snap.contest_id, c.snap)


def _ids(c: Call) -> tuple[str, ...]:
    return tuple(s.snapshot_id for s in c.data["snaps"])


def _latest(c: Call, what: str) -> str | None:
    snaps = c.data["snaps"]
    return f"/api/v1/s/{snaps[-1].snapshot_id}/{what}.json" if snaps else None


def _sims_seed(c: Call) -> tuple[int, int, bool]:
    # the server's own projection parameters only: each point is the projection page
    # of that snapshot (cached), so the fan costs nothing once the pages exist
    return c.b.projection_sims, PROJECTION_SEED, c.b.clock is not None


def history_page(c: Call, until: SnapshotInfo | None) -> tuple[Any, dict[str, Any]]:
    """The history page: the margin over time (and the race for the runoff in a first
    round), the projection's fan, the table of snapshots."""
    from escrutinio.api.pages import fan_chart, timeline_chart

    b, cid, snaps = c.b, c.data["cid"], c.data["snaps"]
    cur = snaps[-1].snapshot_id if snaps else None
    if until is None:
        p = c.page("/history/", json_url="/api/v1/history.json", section="history")
        # the moving page's permalink: the same history, bound to its latest snapshot
        p.permalink = None if cur is None or c.static_site else f"/s/{cur}/history/"
    else:
        sid = until.snapshot_id
        p = c.page(f"/s/{sid}/history/", info=until,
                   json_url=f"/api/v1/s/{sid}/history.json", section="history")
    tl = timeline_chart(b, p, cid, cur, until=until)
    race_tl = None
    if any(pt.third is not None for pt in tl["history"].points):
        race_tl = timeline_chart(b, p, cid, cur, until=until, ranks=(1, 2))
    fan = fan_err = None
    try:
        fan = fan_chart(b, p, cid, cur, until=until)
    except EscrutinioError as exc:
        fan_err = exc
    return p, {
        "title": p.T("Historia del conteo", "Count history"), "tl": tl, "race_tl": race_tl,
        "fan": fan, "fan_err": fan_err, "snaps": {s.snapshot_id: s for s in snaps},
        "until": until,
        "fan_json": (f"/api/v1/s/{until.snapshot_id}/projection-history.json" if until
                     else "/api/v1/projection-history.json")}


HISTORY = Resource(
    name="history", api="/history", schema="HistoryResponse",
    summary="Historia del margen y cambios de liderazgo / margin history and lead changes",
    api_params=_contest_params, snapshot=False, prepare=_moving,
    key=lambda c: (c.data["cid"], _ids(c)), cache=Call.moving,
    payload=lambda c, _: {
        "contest": c.b.store.contest(c.data["cid"]).to_dict(),
        "history": c.b.history(c.data["cid"]), "snapshots": c.data["snaps"],
        "links": api_links(None, "/api/v1/history.json", "/history/",
                           permalink=_latest(c, "history"))},
    page="/history/", page_params=lambda: {}, template="history.html",
    html=lambda c, _: history_page(c, None))

HISTORY_UNTIL = Resource(
    name="history-until", api="/s/{ref}/history", schema="HistoryResponse",
    summary="Historia del margen hasta una instantánea (enlace permanente) / margin history "
    "up to a snapshot (permalink)", api_params=_ref_params, api_name="history_until",
    prepare=_until, key=lambda c: (c.sid, _ids(c)),
    payload=lambda c, _: {
        "contest": c.contest_json(), "history": c.b.history(until=c.info),
        "snapshots": c.data["snaps"],
        "links": api_links(c.info, f"/api/v1/s/{c.ref}/history.json",
                           f"/s/{c.sid}/history/")},
    page="/s/{ref}/history/", template="history.html",
    html=lambda c, _: history_page(c, c.snap))

PROJECTION_HISTORY = Resource(
    name="projection-history", api="/projection-history", schema="ProjectionHistoryResponse",
    summary="La proyección en cada instantánea (abanico) / the projection at each snapshot "
    "(fan chart)", api_params=_contest_params, api_name="projection_history",
    snapshot=False, prepare=_moving, key=lambda c: (c.data["cid"], _ids(c), *_sims_seed(c)),
    cache=Call.moving,
    payload=lambda c, _: {
        "contest": c.b.store.contest(c.data["cid"]).to_dict(),
        "projection_history": c.b.projection_history(c.data["cid"], *_sims_seed(c)[:2]),
        "links": api_links(None, "/api/v1/projection-history.json", "/history/",
                           permalink=_latest(c, "projection-history"))})

PROJECTION_HISTORY_UNTIL = Resource(
    name="projection-history-until", api="/s/{ref}/projection-history",
    schema="ProjectionHistoryResponse",
    summary="La proyección en cada instantánea hasta esta (enlace permanente) / the "
    "projection at each snapshot up to this one (permalink)", api_params=_ref_params,
    api_name="projection_history_until", prepare=_until,
    key=lambda c: (c.sid, _ids(c), *_sims_seed(c)),
    payload=lambda c, _: {
        "contest": c.contest_json(),
        "projection_history": c.b.projection_history(
            sims=_sims_seed(c)[0], seed=_sims_seed(c)[1], until=c.info),
        "links": api_links(c.info, f"/api/v1/s/{c.ref}/projection-history.json",
                           f"/s/{c.sid}/history/")})
