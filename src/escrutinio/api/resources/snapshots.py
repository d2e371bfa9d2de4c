"""The catalogue: contests, snapshots (list and page), one snapshot, the tamper-evident log
and its inclusion proofs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from escrutinio.api import schemas
from escrutinio.api.app import dumps
from escrutinio.api.backend import Backend
from escrutinio.api.resources.base import (
    Call,
    Resource,
    api_links,
    no_params,
    snapshot_cc,
)
from escrutinio.api.resources.params import ContestQ, Ref, strip_json
from escrutinio.domain import level_label
from escrutinio.errors import NotFoundError


def _current(c: Call) -> None:
    b = c.b
    c.data["current"] = b.contest_id() if b.store.all_snapshots() else None


CONTESTS = Resource(
    name="contests", api="/contests", schema="ContestList", summary="Contiendas / contests",
    snapshot=False, prepare=_current, key=lambda c: (c.data["current"],),
    cache=Call.moving,
    payload=lambda c, _: {"contests": [x.to_dict() for x in c.b.store.contests()],
                          "current": c.data["current"]})


def _snapshots_params(contest: ContestQ = None) -> dict[str, Any]:
    return {"contest": contest}


def _list(c: Call) -> None:
    contest = c.args["contest"]
    c.data["snaps"] = c.b.snapshots(contest)
    if contest is not None:
        c.b.store.contest(contest)  # an unknown contest is a 404


def _snapshots_page(c: Call, _: Any) -> tuple[Any, dict[str, Any]]:
    b, lang, snaps = c.b, c.lang or "es", c.data["snaps"]
    p = c.page("/snapshots/", json_url="/api/v1/snapshots.json", section="snapshots")
    labels = {cid: b.area_labels(cid) for cid in {s.contest_id for s in snaps}}
    return p, {"title": p.T("Instantáneas", "Snapshots"), "snaps": list(reversed(snaps)),
               "level_name": lambda s: level_label(labels[s.contest_id], s.level, lang)
               if s.level else ""}


SNAPSHOTS = Resource(
    name="snapshots", api="/snapshots", schema="SnapshotList",
    summary="Instantáneas / snapshots", api_params=_snapshots_params, snapshot=False,
    prepare=_list, key=lambda c: (c.args["contest"],
                                  tuple(s.snapshot_id for s in c.data["snaps"])),
    cache=Call.moving,
    payload=lambda c, _: {"contest": c.args["contest"], "snapshots": c.data["snaps"],
                          "links": api_links(None, "/api/v1/snapshots.json", "/snapshots/")},
    page="/snapshots/", page_params=no_params, template="snapshots.html",
    html=_snapshots_page)


def _snapshot_params(ref: Ref, contest: ContestQ = None) -> dict[str, Any]:
    return {"ref": strip_json(ref), "contest": contest}


SNAPSHOT = Resource(
    name="snapshot", api="/s/{ref}", schema="SnapshotDetail",
    summary="Una instantánea / one snapshot", api_params=_snapshot_params,
    payload=lambda c, _: {
        "snapshot": c.info, "contest": c.contest_json(),
        "levels": [lv.value for lv in c.b.levels_of(c.snap)],
        "ledger": c.b.ledger_summary(c.snap),
        "links": api_links(c.info, f"/api/v1/s/{c.ref}.json", f"/s/{c.sid}/")})


def install_proof(app: FastAPI, b: Backend) -> None:
    """``/api/v1/s/{ref}/proof/{key}``: a row's inclusion proof (docs/store.md)."""
    @app.get("/api/v1/s/{ref}/proof/{key}", responses=schemas.ok(
        "InclusionProof", "Prueba de inclusión de una fila en la raíz Merkle publicada / "
        "inclusion proof of a row in the published Merkle root"),
        summary="Prueba de inclusión / inclusion proof (docs/store.md)")
    async def proof(request: Request, ref: Ref,
                    key: Annotated[str, Path(
                        max_length=200, description="acta id; level:unit_code for aggregate "
                                                    "snapshots")],
                    contest: ContestQ = None) -> Response:
        key = strip_json(key)
        info = b.resolve(ref, contest=contest)
        sid = info.snapshot_id
        if b.ledger_entry(info) is None:
            raise NotFoundError(
                f"la instantánea {sid[:12]} no está en el registro (ejecute 'escrutinio "
                "log-sync')", f"snapshot {sid[:12]} is not in the log (run 'escrutinio "
                "log-sync')")
        pr = await run_in_threadpool(b.cached, ("proof", sid, key),
                                     lambda: b.store.prove(sid, key))
        c = Call(b, request, {"ref": ref}, info=info)
        return JSONResponse({"proof": pr.to_dict(), "snapshot_id": sid,
                             "verify": "escrutinio verify-proof FILE [--root ROOT]"},
                            headers={"Cache-Control": snapshot_cc(c)})


def _ledger(b: Backend) -> dict[str, Any]:
    n, head = b.store.ledger_head()
    logged = b.store.logged_snapshots()
    snaps = [{"snapshot_id": s.snapshot_id, "label": s.label, "as_of": s.as_of,
              "contest_id": s.contest_id, "seq": e.seq, "entry_hash": e.entry_hash,
              "merkle_root": e.entry.get("merkle_root"),
              "tree_size": e.entry.get("tree_size")}
             for s in b.store.list_snapshots()
             if (e := logged.get(s.snapshot_id)) is not None]
    return {"head": {"n_entries": n, "head_hash": head}, "snapshots": snaps,
            "check": "escrutinio verify-log --head HEAD_HASH"}


def install_ledger(app: FastAPI, b: Backend) -> None:
    """``/api/v1/ledger``: the chain head and every snapshot's Merkle root (never cached:
    ``log-sync`` appends to it)."""
    @app.get("/api/v1/ledger.json", include_in_schema=False)
    @app.get("/api/v1/ledger", responses=schemas.ok(
        "LedgerResponse", "Cabeza de la cadena y raíz Merkle de cada instantánea / chain "
        "head and the Merkle root of every snapshot"),
        summary="Registro a prueba de manipulación / tamper-evident log (docs/store.md)")
    async def ledger_view(request: Request) -> Response:
        raw = dumps(await run_in_threadpool(_ledger, b))
        return Response(raw, media_type="application/json",
                        headers={"Cache-Control": "no-cache"})
