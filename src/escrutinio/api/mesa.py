"""The mesa lookup: what personeros ask first — "what happened to my mesa?".

Given a mesa (acta) number, :func:`lookup` reads its row in every stored per-acta snapshot
of a contest with **one store query** (``Store.acta_history``) plus one for the rows the
ingest rejected or flagged for it (``Store.acta_reports``), and says, snapshot by snapshot,
its state and what changed: first published, counted, sent to the JEE (the electoral
court), figures corrected, annulled. A snapshot that does not carry the mesa is said so
("absent"), never read as zero votes.

Presentation-free: the page (``/mesa/{mesa}/``) and its JSON twin
(``/api/v1/mesa/{mesa}``) format what this returns. Observers' copies (coordinators only)
are added by the routes from the observer server's repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from escrutinio.countries import vocabulary
from escrutinio.domain import Contest, SnapshotKind, status_label
from escrutinio.errors import EscrutinioError, NotFoundError
from escrutinio.store.base import SnapshotInfo, Store

#: a mesa number as typed: letters, digits, '.', '_' or '-', 1-40 characters
MESA_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$")
FIGURES = ("electors", "cast", "blank", "null", "challenged")


class InvalidMesa(EscrutinioError):
    """The text typed is not a mesa number (HTTP 422)."""


def acta_ids_for(mesa: str) -> list[str]:
    """The stored acta ids a typed mesa number may be: itself, and for a number every
    zero padding up to 12 digits (``43`` is ONPE's ``000043``)."""
    m = mesa.strip()
    if not MESA_RE.match(m):
        shown = m if len(m) <= 40 else m[:40] + "…"
        raise InvalidMesa(
            f"«{shown}» no es un número de mesa: use de 1 a 40 letras o dígitos (por "
            "ejemplo 000043 o 43)",
            f"“{shown}” is not a mesa number: use 1 to 40 letters or digits (for example "
            "000043 or 43)")
    ids = {m}
    if m.isascii() and m.isdigit():
        core = m.lstrip("0") or "0"
        ids |= {core.zfill(w) for w in range(len(core), 13)}
    return sorted(ids)


@dataclass(frozen=True, slots=True)
class MesaState:
    """The mesa in one per-acta snapshot; ``present`` False when the snapshot does not
    carry it (its figures are then unknown, not zero)."""

    snapshot: SnapshotInfo
    present: bool
    status: str | None
    observation: str | None
    resolved: bool | None
    figures: dict[str, int | None]  # electors, cast, blank, null, challenged
    votes: dict[str, int | None]  # candidate code -> votes
    changes: tuple[tuple[str, str, str], ...]  # (code, es, en)

    def to_jsonable(self) -> dict[str, Any]:
        return {"snapshot_id": self.snapshot.snapshot_id, "label": self.snapshot.label,
                "as_of": self.snapshot.as_of, "present": self.present,
                "status": self.status, "observation": self.observation,
                "resolved": self.resolved, **self.figures, "votes": self.votes,
                "changes": [{"code": c, "es": es, "en": en} for c, es, en in self.changes]}


@dataclass(frozen=True, slots=True)
class MesaView:
    typed: str
    acta_id: str
    contest: Contest
    area_codes: tuple[str | None, str | None, str | None]
    area_names: tuple[str | None, str | None, str | None]
    abroad: bool | None
    polling_place: str | None
    states: tuple[MesaState, ...]  # every per-acta snapshot, oldest first
    reports: tuple[dict[str, Any], ...]  # rows rejected or flagged for this mesa

    @property
    def latest(self) -> MesaState:
        """The latest snapshot (the official figures now; may be ``present`` False)."""
        return self.states[-1]

    @property
    def latest_present(self) -> MesaState | None:
        return next((s for s in reversed(self.states) if s.present), None)

    def to_jsonable(self) -> dict[str, Any]:
        return {
            "mesa": self.typed, "acta_id": self.acta_id, "contest_id": self.contest.id,
            "area_codes": list(self.area_codes), "area_names": list(self.area_names),
            "abroad": self.abroad, "polling_place": self.polling_place,
            "latest": self.latest.to_jsonable(),
            "states": [s.to_jsonable() for s in self.states],
            "reports": list(self.reports),
            "candidates": [{"code": c.code, "name": c.name} for c in self.contest.candidates],
        }


_STATUS_EVENT = {
    "counted": ("counted", "contabilizada", "counted"),
    "jee": ("sent_to_jee", "enviada al JEE (Jurado Electoral Especial)",
            "sent to the JEE (the electoral court)"),
    "observed": ("observed", "observada", "observed"),
    "annulled": ("annulled", "anulada", "annulled"),
    "not_installed": ("not_installed", "mesa no instalada", "polling station not installed"),
    "pending": ("pending", "pendiente", "pending"),
    "lost": ("lost", "extraviada", "lost"),
    "destroyed": ("destroyed", "siniestrada", "destroyed"),
}


def _changes(prev: MesaState | None, cur: dict[str, Any], present: bool,
             cand: list[str]) -> tuple[tuple[str, str, str], ...]:
    if not present:
        if prev is not None and prev.present:
            return (("absent", "ya no figura en esta instantánea (cifras desconocidas)",
                     "no longer in this snapshot (figures unknown)"),)
        return (("absent", "no figura en esta instantánea (cifras desconocidas)",
                 "not in this snapshot (figures unknown)"),)
    status = cur["status"]
    ev = _STATUS_EVENT.get(status, (status, status_label(status, "es"),
                                    status_label(status, "en")))
    if prev is None or not prev.present:
        return (("published", f"publicada: {ev[1]}", f"published: {ev[2]}"),)
    out: list[tuple[str, str, str]] = []
    if prev.status != status:
        out.append(ev)
    if cur["resolved"] and not prev.resolved:
        out.append(("resolved", "resuelta por el JEE", "resolved by the JEE"))
    changed = [f for f in FIGURES if prev.figures.get(f) != cur[f]]
    changed += [code for code, col in zip(prev.votes, cand, strict=True)
                if prev.votes[code] != cur[col]]
    if changed and (prev.status == status or status == "counted"):
        out.append(("corrected", "cifras corregidas: " + ", ".join(changed),
                    "figures corrected: " + ", ".join(changed)))
    return tuple(out) or (("unchanged", "sin cambios", "unchanged"),)


def lookup(store: Store, contest_id: str, mesa: str) -> MesaView:
    """The mesa across every per-acta snapshot of the contest (see the module doc)."""
    ids = acta_ids_for(mesa)
    contest = store.contest(contest_id)
    voc = vocabulary(contest)
    snaps = store.list_snapshots(contest_id, SnapshotKind.ACTAS)
    if not snaps:
        raise NotFoundError(
            "esta contienda no tiene instantáneas por acta: no se puede buscar una mesa",
            "this contest has no per-acta snapshots: a mesa cannot be looked up")
    rows = store.acta_history(contest_id, ids)
    reports = store.acta_reports(contest_id, ids)
    found = set(rows["acta_id"].to_list()) | {a for a in reports["acta_id"].to_list() if a}
    if not found:
        typed = mesa.strip()
        raise NotFoundError(
            f"la mesa {typed} no figura en ninguna de las {len(snaps)} instantáneas por acta "
            f"de {contest.name}", f"mesa {typed} is in none of the {len(snaps)} per-acta "
            f"snapshots of {contest.name}")
    # the id as typed if stored so, else the stored padding (one acta per lookup)
    acta_id = mesa.strip() if mesa.strip() in found else sorted(found)[0]
    rows = rows.filter(pl.col("acta_id") == acta_id)
    cand = contest.candidate_columns
    codes = [c.code for c in contest.candidates]
    by_sid = {r["snapshot_id"]: r for r in rows.iter_rows(named=True)}
    states: list[MesaState] = []
    prev: MesaState | None = None
    for s in snaps:
        r = by_sid.get(s.snapshot_id)
        present = r is not None
        cur = r or {}
        st = MesaState(
            s, present, cur.get("status"), cur.get("observation"), cur.get("resolved"),
            {f: cur.get(f) for f in FIGURES},
            {code: cur.get(col) for code, col in zip(codes, cand, strict=True)},
            tuple((k, voc.localize(es, "es"), voc.localize(en, "en"))  # the country's words
                  for k, es, en in _changes(prev, cur, present, cand)))
        states.append(st)
        if present:
            prev = st
    last = rows.tail(1).row(0, named=True) if rows.height else {}
    area = tuple(last.get(f"area{i}_code") for i in (1, 2, 3))
    geo = store.geography(contest_id)
    names = dict(zip(geo["code"].to_list(), geo["name"].to_list(), strict=True)) \
        if geo.height else {}
    rep = reports.filter(pl.col("acta_id") == acta_id).to_dicts()
    return MesaView(mesa.strip(), acta_id, contest, area,  # type: ignore[arg-type]
                    tuple(names.get(c) if c else None for c in area),  # type: ignore[arg-type]
                    last.get("abroad"), last.get("polling_place"), tuple(states),
                    tuple(rep))


def find(b: Any, mesa: str, contest: str | None = None) -> MesaView:
    """The lookup through the app's backend (its catalogue: in a replay, only the
    snapshots published so far). A malformed number is refused before anything is read."""
    acta_ids_for(mesa)
    return lookup(b.store, b.contest_id(contest), mesa)


# -- observers' copies: coordinators (and admins) only --------------------------------------

COPY_ROLES = ("coordinator", "admin")


async def coordinator_of(request: Any, *, api: bool) -> Any:
    """The coordinator (or admin) asking, else None (the public answer: no copies).

    The API reads the ``Authorization: Bearer`` header: a header that is there but wrong
    is refused (401/403, as on the observer API); the page reads the coordinator's session
    cookie, and without a valid coordinator session shows the public page."""
    from starlette.concurrency import run_in_threadpool

    from escrutinio.server.auth import AuthError, Role
    from escrutinio.server.routes import SESSION_COOKIE

    oa = getattr(request.app.state, "observers", None)
    if oa is None or oa.repo is None:
        return None
    if api:
        if request.headers.get("authorization") is None:
            return None
        return await oa.principal(request, (Role.COORDINATOR, Role.ADMIN))
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        return None
    try:
        p = await run_in_threadpool(oa.repo.session, value)
    except AuthError:
        return None
    return p if p.role.value in COPY_ROLES else None


def copies(request: Any, principal: Any, view: MesaView) -> dict[str, Any]:
    """The copies of this mesa the coordinator may see, each with its parallel-tabulation
    verdict (its reconciliation against the official acta when it was received), and the
    count of copies by verdict."""
    from escrutinio.server.submissions import submission_json

    repo = request.app.state.observers.repo
    rows, total = repo.list_submissions(principal, acta=view.acta_id,
                                        contest=view.contest.id, limit=200)
    subs = [submission_json(r) for r in rows]
    verdicts: dict[str, int] = {}
    for s in subs:
        cat = (s.get("reconciliation") or {}).get("category") or "pending"
        verdicts[cat] = verdicts.get(cat, 0) + 1
    return {"n_copies": total, "listed": len(subs), "by_verdict": verdicts, "copies": subs}
