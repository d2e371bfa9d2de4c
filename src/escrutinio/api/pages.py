"""HTML pages (Jinja2 templates, server-side SVG): Spanish at ``/``, English at ``/en/``.

Each page is the presentation of one analysis result fetched through
:class:`~escrutinio.api.backend.Backend`; its JSON twin (linked from the page, also as
``<link rel="alternate">``) is the same result under ``/api/v1``. The functions here pick
colours, words and layout; they never compute a number shown to the reader.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, tzinfo
from functools import cache
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import FastAPI, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from escrutinio import __version__, countries
from escrutinio.api import i18n, svg, uploads
from escrutinio.api.app import (
    CC_MOVING,
    CC_PERMALINK,
    CC_REPLAY,
    etag_for,
    make_body,
    replay_payload,
    send,
    status_of,
)
from escrutinio.api.backend import Backend, NeedsActas, ProjectionView, Unavailable
from escrutinio.api.geo import has_map, peru_geometry, peru_reniec_to_inei
from escrutinio.count import CountState, UnitState
from escrutinio.defence.pvt import category_label
from escrutinio.domain import Level, SnapshotKind, level_label, status_label
from escrutinio.errors import EscrutinioError, IngestError, Location
from escrutinio.store.base import SnapshotInfo


def _mix(hex_colour: str, other: tuple[int, int, int], t: float) -> str:
    rgb = [int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (o - c) * t):02x}" for c, o in zip(rgb, other,
                                                                        strict=True))


def candidate_colour(i: int) -> str:
    """The colour of the i-th candidate (contest order), distinct for any number of
    candidates: the colour-blind-safe palette (Okabe-Ito based, svg.PALETTE) for the first
    eight; then the same hues lighter (9-16, drawn striped) and darker (17-24, drawn
    dotted), and so on — the hue, the lightness and the pattern (:func:`candidate_pattern`)
    together keep two candidates apart."""
    base = svg.PALETTE[i % len(svg.PALETTE)]
    tier = (i // len(svg.PALETTE)) % 3
    if tier == 1:
        return _mix(base, (255, 255, 255), 0.45)
    if tier == 2:
        return _mix(base, (0, 0, 0), 0.45)
    return base


def candidate_pattern(i: int) -> str:
    """CSS class of the fill pattern of the i-th candidate's swatches and bars ('' for the
    first eight; stripes, dots, cross-hatching beyond)."""
    tier = i // len(svg.PALETTE)
    return ("", "pat-stripe", "pat-dot", "pat-cross")[min(tier, 3)]


LEVEL_SLUGS = {Level.AREA1: "area1", Level.AREA2: "area2", Level.AREA3: "area3"}
#: map shading: margin in points of valid votes -> opacity of the leader's colour
MARGIN_BINS = ((5.0, 0.35), (15.0, 0.62), (math.inf, 0.9))


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("escrutinio.api", "templates"),
        autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined)
    env.filters.update(short=i18n.short_name, num=i18n.num, signed=i18n.signed, pct=i18n.pct,
                       prob=i18n.prob)
    env.globals.update(version=__version__, status_label=status_label,
                       colour=candidate_colour, vocabulary=countries.vocabulary)
    return env


class Page:
    """Everything a template needs besides its own data."""

    def __init__(self, request: Request, b: Backend, lang: str, path: str, *,
                 info: SnapshotInfo | None = None, json_url: str | None = None,
                 section: str = "", static_site: bool = False) -> None:
        self.request = request
        self.b = b
        self.lang = lang
        self.path = path
        self.info = info
        self.json_url = json_url
        self.section = section
        self.static_site = static_site
        #: the page itself at full snapshot ids (default: its path when it names the
        #: snapshot, else the snapshot's overview)
        self.permalink: str | None = None
        self._tz: tzinfo | None = None
        self._voc: countries.Vocabulary | bool | None = False  # False: not looked up yet

    @property
    def tz(self) -> tzinfo:
        """The contest's local time zone (:func:`zone_of`)."""
        if self._tz is None:
            cid = self.info.contest_id if self.info is not None else None
            if cid is None and self.b.store.all_snapshots():
                try:
                    cid = self.b.contest_id()
                except EscrutinioError:
                    cid = None
            self._tz = zone_of(self.b, cid) if cid is not None else UTC
        return self._tz

    def T(self, es: str, en: str) -> str:  # noqa: N802
        """The text in the page's language, in the words of the contest's country (texts
        are written with Peru's: JEE, ONPE, mesa — :meth:`Vocabulary.localize`)."""
        text = es if self.lang == "es" else en
        voc = self.vocabulary
        return text if voc is None else voc.localize(text, self.lang)

    @property
    def vocabulary(self) -> countries.Vocabulary | None:
        """The page's contest's words (its country pack); None when no contest is known."""
        if self._voc is False:
            b, info = self.b, self.info
            try:
                cid = info.contest_id if info is not None else (
                    b.contest_id() if b.store.all_snapshots() else None)
                self._voc = countries.vocabulary(b.store.contest(cid)) if cid else None
            except EscrutinioError:
                self._voc = None
        return self._voc  # type: ignore[return-value]

    def u(self, path: str) -> str:
        return ("/en" + path) if self.lang == "en" else path

    def when(self, d: Any, year: bool = False) -> str:
        return i18n.when(d, self.lang, year=year, tz=self.tz)

    def context(self, **extra: Any) -> dict[str, Any]:
        b, info = self.b, self.info
        contest = None
        cid = info.contest_id if info is not None else (
            b.contest_id() if b.store.all_snapshots() else None)
        if cid is not None:
            contest = b.store.contest(cid)
        alt = "en" if self.lang == "es" else "es"
        alt_url = ("/en" + self.path) if alt == "en" else self.path
        replay = None
        if b.clock is not None and not self.static_site:
            replay = {**replay_payload(b),
                      "as_of_label": i18n.when(b.clock.now(), self.lang, tz=self.tz)}
        return {
            "lang": self.lang, "alt_lang": alt, "alt_url": alt_url, "T": self.T, "u": self.u,
            "when": self.when, "json_url": self.json_url, "snapshot": info,
            "contest": contest, "nav": self.nav(), "replay": replay,
            "static_site": self.static_site, "path": self.path,
            "permalink": self.permalink_url(),
            "ledger": b.ledger_summary(info) if info is not None else None,
            "candidate_names": {c.code: c.name for c in contest.candidates} if contest else {},
            "candidate_colours": {c.code: candidate_colour(i) for i, c in
                                  enumerate(contest.candidates)} if contest else {},
            "candidate_patterns": {c.code: candidate_pattern(i) for i, c in
                                   enumerate(contest.candidates)} if contest else {},
            **extra,
        }

    def permalink_url(self) -> str | None:
        if self.permalink is not None:
            return self.u(self.permalink)
        if self.info is None:
            return None
        sid = self.info.snapshot_id
        return self.u(self.path if sid in self.path else f"/s/{sid}/")

    def nav(self) -> list[dict[str, Any]]:
        b, info = self.b, self.info
        if not b.store.all_snapshots():
            return []
        if info is None:
            try:
                info = b.overview_snapshot()
            except EscrutinioError:
                return []
        sid = info.snapshot_id
        items = [("overview", self.T("Resumen", "Overview"), f"/s/{sid}/")]
        msnap = b.map_snapshot(info, Level.AREA1)
        if msnap is not None:
            items.append(("map", self.T("Mapa", "Map"), f"/s/{msnap.snapshot_id}/map/area1/"))
        items.append(("history", self.T("Historia", "History"), "/history/"))
        items.append(("projection", self.T("Proyección", "Projection"), f"/s/{sid}/projection/"))
        if info.kind is SnapshotKind.ACTAS:
            items += [
                ("contested", self.T("Actas en disputa", "Contested actas"),
                 f"/s/{sid}/contested/"),
                ("verify", self.T("Verificación", "Verification"), f"/s/{sid}/verify/"),
                ("quickcount", self.T("Conteo rápido", "Quick count"),
                 f"/s/{sid}/quickcount/"),
                ("forensics", self.T("Forense", "Forensics"), f"/s/{sid}/forensics/"),
                ("audit", self.T("Auditoría", "Audit"), f"/s/{sid}/audit/"),
            ]
        prev = previous_snapshot(b, info)
        if prev is not None:
            items.append(("diff", self.T("Cambios", "Changes"),
                          f"/diff/{prev.snapshot_id}/{sid}/"))
        if not self.static_site:  # "mesa" as the contest's country says it
            es, en = countries.vocabulary(b.store.contest(info.contest_id)).polling_station
            items.append(("mesa", self.T(f"Buscar {es}", f"Find a {en}"), "/mesa/"))
        items.append(("snapshots", self.T("Instantáneas", "Snapshots"), "/snapshots/"))
        return [{"key": k, "label": lab, "href": self.u(h), "current": k == self.section}
                for k, lab, h in items]


def zone_of(b: Backend, contest_id: str) -> tzinfo:
    """The contest's local time zone: the sidecar's ``timezone`` in the snapshots'
    metadata, else the country's default, else UTC (``i18n.contest_zone``). The pages
    show local time with its UTC offset; the JSON keeps UTC."""
    def compute() -> tzinfo:
        contest = b.store.contest(contest_id)
        try:
            md = b.store.snapshot_metadata(contest_id)
        except EscrutinioError:
            md = {}
        return i18n.contest_zone(contest.country, md)

    return b.cached(("zone", contest_id), compute)


def previous_snapshot(b: Backend, info: SnapshotInfo) -> SnapshotInfo | None:
    same = [s for s in b.store.list_snapshots(info.contest_id, info.kind)
            if s.level == info.level and s.as_of < info.as_of]
    return same[-1] if same else None


def render(template: str, ctx: dict[str, Any]) -> bytes:
    return _env().get_template(template).render(**ctx).encode("utf-8")


def render_error(request: Request, status: int, payload: dict[str, Any]) -> Response:
    path = request.url.path
    lang = "en" if path == "/en" or path.startswith("/en/") else "es"
    b: Backend = request.app.state.backend
    plain = path[3:] if lang == "en" else path
    page = Page(request, b, lang, plain or "/", static_site=request.app.state.static_site)
    try:
        ctx = page.context(status=status, error=payload)
    except EscrutinioError:  # e.g. an empty store: the page frame without navigation
        ctx = {"lang": lang, "alt_lang": "en" if lang == "es" else "es",
               "alt_url": "/en/" if lang == "es" else "/", "T": page.T, "u": page.u,
               "when": page.when, "json_url": None, "snapshot": None, "contest": None,
               "nav": [], "replay": None, "static_site": False, "path": "/", "permalink": None,
               "candidate_names": {}, "candidate_colours": {}, "status": status,
               "error": payload}
    return Response(render("error.html", ctx), status_code=status, media_type="text/html",
                    headers={"Cache-Control": "no-store"})


# --- view helpers (presentation) --------------------------------------------------------------

def unit_colour(u: UnitState, colours: dict[str, str]) -> tuple[str, float]:
    """Fill and opacity of a unit on the map: the leader's colour, stronger with a wider
    margin; grey without counted votes."""
    if u.leader is None or u.valid == 0:
        return "#c8ccd2", 1.0
    op = next(o for bound, o in MARGIN_BINS if abs(u.margin_pct_valid) < bound)
    return colours.get(u.leader, "#666"), op


def unit_label(u: UnitState, names: dict[str, str], lang: str) -> str:
    T = (lambda es, en: es if lang == "es" else en)  # noqa: N806, E731
    if u.leader is None or u.valid == 0:
        lead = T("sin votos contados", "no votes counted")
    else:
        lead = T(f"lidera {names.get(u.leader, u.leader)} por {u.margin_votes:,} votos "
                 f"({u.margin_pct_valid:.1f} pts)",
                 f"{names.get(u.leader, u.leader)} leads by {u.margin_votes:,} votes "
                 f"({u.margin_pct_valid:.1f} pts)")
    return T(f"{u.name}: {lead}; {u.pct_counted:.1f}% de actas contabilizadas",
             f"{u.name}: {lead}; {u.pct_counted:.1f}% of actas counted")


def map_join(b: Backend, info: SnapshotInfo, level: Level, st: CountState) -> dict[str, Any]:
    """The RENIEC -> INEI join of the units of ``st`` with the map's polygons (for the
    JSON twin and the page)."""
    contest = b.store.contest(info.contest_id)
    home = [u for u in st.units if u.abroad is False]
    if not has_map(contest.country):
        return {"available": False, "source": None, "keys": {}, "without_polygon": [],
                "polygons_without_data": 0}
    keys = peru_reniec_to_inei(level)
    geom = peru_geometry(level)
    shape_keys = {s.key for s in geom.shapes}
    joined = {u.code: keys.get(u.code) for u in home}
    without = sorted(c for c, k in joined.items() if k is None or k not in shape_keys)
    with_data = {k for k in joined.values() if k}
    return {"available": True, "source": f"peru-geography/{geom.source}",
            "keys": {c: k for c, k in joined.items() if k and k in shape_keys},
            "without_polygon": without,
            "polygons_without_data": len(shape_keys - with_data)}


def projection_note(v: ProjectionView) -> tuple[str, str]:
    if v.reconstructed:
        return ("Repetición: proyección sobre la reconstrucción por acta de este corte (orden "
                "de llegada derivado de los cortes nacionales de ONPE y del archivo final; "
                "docs/projection.md). El conteo mostrado es el publicado por ONPE.",
                "Replay: projection on the per-acta reconstruction of this cut (arrival order "
                "derived from ONPE's national cuts and the final file; docs/projection.md). "
                "The count shown is the one ONPE published.")
    p = v.projection
    if p.basis == "units":
        es, en = ("Proyección sobre agregados por unidad: sin detalle por acta, el modelo solo "
                  "ve lo que la instantánea trae.",
                  "Projection on per-unit aggregates: without per-acta detail the model sees "
                  "only what the snapshot carries.")
    else:
        es, en = ("Proyección sobre la instantánea por acta.",
                  "Projection on the per-acta snapshot.")
    # the baseline (or its absence) and what is wrong with the input, as the CLI says them
    base = p.diagnostics.get("baseline")
    if isinstance(base, dict):
        es, en = f"{es} Línea de base: {base['es']}.", f"{en} Baseline: {base['en']}."
    elif p.basis != "series":
        es, en = f"{es} Sin línea de base.", f"{en} No baseline."
    warns = p.diagnostics.get("warnings")
    for w in warns if isinstance(warns, list) else []:
        es, en = f"{es} Atención: {w['es']}.", f"{en} Warning: {w['en']}."
    return es, en


#: a "technical tie" is said only when the projection's central interval at this level
#: contains a tie (both results remain plausible); a leader short of the declared call rule
#: but outside it is "not called yet", never a tie (docs/api.md)
TIE_INTERVAL_LEVEL = 0.95


def _prob_text(p: float) -> str:
    return i18n.prob(p)


def call_view(pr: Any, names: dict[str, str], threshold: float | None = None
              ) -> dict[str, str]:  # keys: status, es, en; detail_es/detail_en if any
    """The projection's headline, in both languages, as the page and its JSON twin say it:
    ``status`` (called / not_yet / tie / runoff / outright), ``es``, ``en``.

    A runoff: the call when the declared rule calls it; otherwise a technical tie only
    when the central 95% interval of the final margin contains a tie, else "not called
    yet" with the leader's probability. A first round never names a winner of a round
    nobody wins: it says who is projected to go to the runoff, and P(someone passes the
    threshold)."""
    rule = pr.call.rule
    nm = {c: names.get(c, c) for c in names}
    if pr.kind == "first_round":
        thr = f"{100 * threshold:g}%" if threshold else "50%"
        p_out = pr.p_outright
        out_es = (f"P(alguien supera el {thr} de los votos válidos) {_prob_text(p_out)}"
                  if p_out is not None else "")
        out_en = (f"P(someone passes {thr} of valid votes) {_prob_text(p_out)}"
                  if p_out is not None else "")
        first = max(pr.candidates, key=lambda c: c.p_win)
        if p_out is not None and p_out >= rule.min_probability:
            n = nm.get(first.code, first.name)
            return {"status": "outright",
                    "es": f"Se proyecta: {n} gana en primera vuelta ({out_es})",
                    "en": f"Projected: {n} wins in the first round ({out_en})"}
        ranked = sorted(pr.candidates, key=lambda c: -(c.p_top_two or 0.0))
        sure = [c for c in ranked if (c.p_top_two or 0.0) >= rule.min_probability][:2]
        contenders = [c for c in ranked if c not in sure][: 3 - len(sure)] if len(sure) < 2 \
            else []

        def lst(cs: list[Any], conj: str) -> str:
            items = [f"{nm.get(c.code, c.name)} ({_prob_text(c.p_top_two or 0.0)})" for c in cs]
            return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {conj} " + \
                items[-1]

        if len(sure) == 2:
            es = f"Segunda vuelta proyectada entre {lst(sure, 'y')}"
            en = f"Projected runoff between {lst(sure, 'and')}"
        elif sure:
            es = (f"Se proyecta que {lst(sure, 'y')} pasa a la segunda vuelta; el otro "
                  f"lugar está demasiado ajustado: {lst(contenders, 'o')}")
            en = (f"{lst(sure, 'and')} is projected to go to the runoff; the other place is "
                  f"too close to call: {lst(contenders, 'or')}")
        else:
            es = ("Demasiado ajustado para proyectar quién pasa a la segunda vuelta: "
                  + lst(contenders, "y"))
            en = "Too close to call who goes to the runoff: " + lst(contenders, "and")
        es += ". " + _capital(out_es)
        en += ". " + _capital(out_en)
        return {"status": "runoff" if sure else "tie", "es": es.rstrip(". ") + ".",
                "en": en.rstrip(". ") + "."}
    call = pr.call
    if call.status.value == "called":
        return {"status": "called", "es": call.label_es, "en": call.label_en}
    m = pr.margin
    leader = nm.get(m.leader, m.leader)
    p = m.p_leader_ahead
    iv = next((x for x in m.intervals if abs(x.level - TIE_INTERVAL_LEVEL) < 1e-9), None)
    tie = (iv.lower <= 0 <= iv.upper) if iv is not None else p < 1 - (1 - TIE_INTERVAL_LEVEL) / 2
    if tie:
        return {"status": "tie",
                "es": f"Empate técnico: demasiado ajustado para proyectar ({leader} adelante "
                      f"con probabilidad {_prob_text(p)})",
                "en": f"Technical tie: too close to call ({leader} ahead with probability "
                      f"{_prob_text(p)})"}
    return {"status": "not_yet",
            "es": f"Aún sin proyección: {leader} adelante con probabilidad {_prob_text(p)}",
            "en": f"Not called yet: {leader} ahead with probability {_prob_text(p)}",
            "detail_es": f"La regla declarada pide ≥ {100 * rule.min_probability:g}% y que "
                         f"el intervalo de {100 * rule.interval_level:g}% excluya el empate; "
                         "no es un empate técnico: el intervalo central de 95% lo excluye.",
            "detail_en": f"The declared rule needs ≥ {100 * rule.min_probability:g}% and the "
                         f"{100 * rule.interval_level:g}% interval to exclude a tie; not a "
                         "technical tie: the central 95% interval excludes one."}


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:] if text else ""


def hurdle_text(st: CountState, names: dict[str, str], lang: str) -> str:
    es, en = st.hurdle.sentence(names)
    return es if lang == "es" else en


def timeline_chart(b: Backend, page: Page, cid: str, current_sid: str | None,
                   height: int = 300, until: SnapshotInfo | None = None,
                   ranks: tuple[int, int] = (0, 1)) -> dict[str, Any]:
    """The margin between the candidates ranked ``ranks`` in the latest point over time:
    (0, 1) the leader and runner-up, with the lead changes marked; (1, 2) in a first round,
    the race for the runoff, with its changes marked."""
    hist = b.history(cid, until=until)
    contest = b.store.contest(cid)
    codes = [c.code for c in contest.candidates]
    names = {c.code: c.name for c in contest.candidates}
    # the plotted margin: the two leading candidates of the latest point, in the contest's
    # order (so the chart keeps its orientation while a replay advances)
    last = dict(hist.points[-1].votes) if hist.points else {}
    ranked = sorted(codes, key=lambda c: -last.get(c, 0)) + codes
    a, bb = pair_in_order(codes, [ranked[ranks[0]], ranked[ranks[1]]])
    margins = [dict(p.votes).get(a, 0) - dict(p.votes).get(bb, 0) for p in hist.points]
    race = ranks != (0, 1)
    flips_after = ({c.after.snapshot_id for c in hist.runoff_changes} if race
                   else {c.after.snapshot_id for c in hist.lead_changes})
    flips = [i for i, p in enumerate(hist.points) if p.snapshot_id in flips_after]
    cur = next((i for i, p in enumerate(hist.points) if p.snapshot_id == current_sid), None)
    T = page.T  # noqa: N806
    titles = [f"{i18n.short_when(p.as_of, page.lang, page.tz)} — "
              + (f"{p.pct_counted:.2f}% " + T("contabilizadas", "counted")
                 if p.pct_counted is not None else T("actas: sin datos", "actas: no data"))
              + f"; {i18n.short_name(names[a])} − {i18n.short_name(names[bb])}: {m:+,}"
              for p, m in zip(hist.points, margins, strict=True)]
    n_flips = len(flips_after)
    short = {c: i18n.short_name(names[c]) if names[c] else c for c in codes}
    chart = svg.timeline_svg(
        [p.as_of for p in hist.points], margins,
        [i18n.short_when(p.as_of, page.lang, page.tz) for p in hist.points], titles, flips,
        title=T(f"Margen {short[a]} − {short[bb]} en el tiempo",
                f"Margin {short[a]} − {short[bb]} over time"),
        desc=T(f"{len(hist.points)} instantáneas; {n_flips} "
               + ("cambios en el pase a la segunda vuelta" if race else
                  "cambios de liderazgo") + ". La tabla de abajo tiene los mismos números.",
               f"{len(hist.points)} snapshots; {n_flips} "
               + ("changes in who goes to the runoff" if race else "lead changes")
               + ". The table below has the same numbers."),
        above=T(f"{short[a]} adelante", f"{short[a]} ahead"),
        below=T(f"{short[bb]} adelante", f"{short[bb]} ahead"),
        colours=(candidate_colour(codes.index(a)), candidate_colour(codes.index(bb))),
        flip_label=T("cambio en el pase a la segunda vuelta", "runoff change") if race
        else T("cambio de liderazgo", "lead change"), current=cur, height=height)
    return {"svg": Markup(chart), "history": hist, "a": a, "b": bb, "margins": margins,
            "flips": flips_after}


def pair_in_order(codes: list[str], pair: list[str] | tuple[str, ...]) -> tuple[str, str]:
    a, b = sorted(pair[:2], key=codes.index)
    return a, b


def fan_chart(b: Backend, page: Page, cid: str, current_sid: str | None,
              until: SnapshotInfo | None = None) -> dict[str, Any]:
    ph = b.projection_history(cid, until=until)
    contest = b.store.contest(cid)
    names = {c.code: i18n.short_name(c.name) for c in contest.candidates}
    a, bb = ph.pair
    T = page.T  # noqa: N806
    cur = next((i for i, p in enumerate(ph.points) if p.snapshot_id == current_sid), None)
    raw = [p.counted.get(a, 0) - p.counted.get(bb, 0) for p in ph.points]
    final = None
    if b.clock is not None:  # a replay knows how the count ended: show it, labelled so
        ends = [s for s in b.store.all_snapshots() if s.contest_id == cid
                and (s.kind is SnapshotKind.ACTAS or s.level in (None, "national"))]
        if ends:
            votes = {c.code: c.votes for c in b.state(ends[-1], Level.NATIONAL).national.candidates}
            final = votes.get(a, 0) - votes.get(bb, 0)
    chart = svg.fan_svg(
        [p.as_of for p in ph.points], [p.median for p in ph.points],
        [p.intervals for p in ph.points], raw,
        [i18n.short_when(p.as_of, page.lang, page.tz) for p in ph.points], final=final,
        final_label=T(f"resultado final {final:+,} (conocido después)",
                      f"final result {final:+,} (known afterwards)") if final is not None else "",
        title=T(f"Proyección del margen final {names[a]} − {names[bb]}",
                f"Projected final margin {names[a]} − {names[bb]}"),
        desc=T("Bandas: intervalos centrales de 50%, 80%, 90%, 95% y 99% del margen final "
               "proyectado en cada instantánea; línea continua: mediana; línea punteada: "
               "margen contado en ese momento.",
               "Bands: central 50%, 80%, 90%, 95% and 99% intervals of the projected final "
               "margin at each snapshot; solid line: median; dotted line: counted margin at "
               "that moment."),
        current=cur)
    return {"svg": Markup(chart), "ph": ph, "raw": raw, "names": names}


def bars(candidates: list[tuple[str, str, float]]) -> list[dict[str, Any]]:
    """(code, name, share 0..100) -> widths for CSS bars."""
    top = max((s for _, _, s in candidates), default=0) or 1
    return [{"code": c, "name": n, "share": s, "width": max(0.5, 100 * s / top)}
            for c, n, s in candidates]


# --- routes ----------------------------------------------------------------------------------

def install_pages(app: FastAPI, b: Backend, *, static_site: bool = False) -> None:
    async def html(request: Request, key: tuple[Any, ...], make: Callable[[], bytes],
                   cache_control: str) -> Response:
        if b.clock is not None:
            # a replay: the banner names the step, so the step is part of the key (the
            # request's step is pinned: the page is drawn from this step, see replay.py)
            key = (*key, ("replay-step", b.clock.index()))
        etag = etag_for("html", key, static_site)
        body = b.bodies.get(("html", key, static_site))
        if body is None:
            from escrutinio.api.app import _inm_matches

            if _inm_matches(request, etag):
                return Response(status_code=304, headers={"ETag": etag,
                                                          "Cache-Control": cache_control})
            raw = await run_in_threadpool(make)
            body = make_body(etag, raw, "text/html; charset=utf-8")
            b.bodies.put(("html", key, static_site), body)
        return send(request, body, cache_control)

    def cc(ref: str, info: SnapshotInfo) -> str:
        if ref == info.snapshot_id:
            return CC_PERMALINK
        return CC_REPLAY if b.clock is not None else CC_MOVING

    for prefix, lang in (("", "es"), ("/en", "en")):
        _lang_routes(app, b, prefix, lang, html, cc, static_site)


def _lang_routes(app: FastAPI, b: Backend, prefix: str, lang: str, html: Any, cc: Any,
                 static_site: bool) -> None:
    def page(request: Request, path: str, **kw: Any) -> Page:
        return Page(request, b, lang, path, static_site=static_site, **kw)

    def route(path: str) -> Callable[[Any], Any]:
        return app.get(prefix + path, include_in_schema=False,
                       response_class=Response)

    def post(path: str) -> Callable[[Any], Any]:
        return app.post(prefix + path, include_in_schema=False, response_class=Response)

    @route("/")
    async def home(request: Request) -> Response:
        if not b.store.all_snapshots():
            p = page(request, "/", section="overview")
            return Response(render("empty.html", p.context(title=p.T(
                "Sin datos", "No data"))), media_type="text/html")
        info = b.overview_snapshot()
        step = b.clock.index() if b.clock is not None else None
        return await html(request, ("home", lang, info.snapshot_id, step),
                          lambda: overview_html(request, info, home=True),
                          CC_REPLAY if b.clock is not None else CC_MOVING)

    def overview_html(request: Request, info: SnapshotInfo, home: bool = False) -> bytes:
        sid = info.snapshot_id
        p = page(request, "/" if home else f"/s/{sid}/", info=info,
                 json_url=f"/api/v1/s/{sid}/state/national.json", section="overview")
        st = b.state(info, Level.NATIONAL)
        names = {c.code: c.name for c in st.national.candidates}
        proj = proj_err = None
        try:
            proj = b.projection(info)
        except (Unavailable, ValueError, EscrutinioError) as exc:
            proj_err = exc
        timeline = None
        try:
            timeline = timeline_chart(b, p, info.contest_id, sid, height=240)
        except EscrutinioError:
            timeline = None
        latest_actas = [s for s in b.store.list_snapshots(info.contest_id, SnapshotKind.ACTAS)
                        if s.as_of <= info.as_of]
        contest = b.store.contest(info.contest_id)
        headline = (call_view(proj.projection, {c.code: c.name for c in contest.candidates},
                              contest.majority_threshold) if proj else None)
        return render("overview.html", p.context(
            title=p.T("Dónde está el conteo", "Where the count stands"), st=st,
            headline=headline,
            n=st.national, hurdle=hurdle_text(st, names, lang), home=home,
            race=st.runoff_race, race_text=(
                p.T(*st.runoff_race.sentence(names)) if st.runoff_race else None),
            bars={x["code"]: x for x in bars([(c.code, c.name, c.pct_valid)
                                              for c in st.national.candidates])},
            proj=proj, proj_err=proj_err, proj_note=projection_note(proj) if proj else None,
            timeline=timeline, latest_actas=latest_actas[-1] if latest_actas else None))

    @route("/s/{ref}/")
    async def overview(request: Request, ref: str) -> Response:
        info = b.resolve(ref)
        return await html(request, ("overview", lang, info.snapshot_id),
                          lambda: overview_html(request, info), cc(ref, info))

    @route("/s/{ref}/map/{level}/")
    async def map_page(request: Request, ref: str, level: str) -> Response:
        info = b.resolve(ref)
        lv = _map_level(level)

        def make() -> bytes:
            sid = info.snapshot_id
            p = page(request, f"/s/{sid}/map/{lv.value}/", info=info,
                     json_url=f"/api/v1/s/{sid}/map/{lv.value}.json", section="map")
            names_lv = b.area_labels(info.contest_id)
            lvname = (level_label(names_lv, lv, "es"), level_label(names_lv, lv, "en"))
            ctx: dict[str, Any] = {"level": lv, "lvname": lvname, "levels": [
                (x, level_label(names_lv, x, lang).capitalize(), b.map_snapshot(info, x))
                for x in (Level.AREA1, Level.AREA2, Level.AREA3)]}
            if lv not in b.levels_of(info):
                alt = b.map_snapshot(info, lv)
                return render("map.html", p.context(
                    title=p.T("Mapa", "Map"), available=False, alt=alt, **ctx))
            st = b.state(info, lv)
            contest = b.store.contest(info.contest_id)
            colours = {c.code: candidate_colour(i) for i, c in enumerate(contest.candidates)}
            names = {c.code: c.name for c in contest.candidates}
            join = map_join(b, info, lv, st)
            shapes = []
            geom = None
            if join["available"]:
                geom = peru_geometry(lv)
                by_key = {join["keys"][u.code]: u for u in st.units
                          if u.abroad is False and u.code in join["keys"]}
                for s in geom.shapes:
                    u = by_key.get(s.key)
                    if u is None:
                        shapes.append({"d": s.d, "fill": "#eef0f3", "op": 1.0, "key": s.key,
                                       "name": s.name, "label": p.T(
                                           f"{s.name}: sin datos", f"{s.name}: no data"),
                                       "code": ""})
                        continue
                    fill, op = unit_colour(u, colours)
                    shapes.append({"d": s.d, "fill": fill, "op": op, "key": s.key,
                                   "name": u.name, "label": unit_label(u, names, lang),
                                   "code": u.code})
            home_units = [u for u in st.units if u.abroad is False]
            abroad_units = [u for u in st.units if u.abroad]
            return render("map.html", p.context(
                title=p.T(f"Mapa por {lvname[0]}", f"Map by {lvname[1]}"),
                available=True, st=st, geom=geom, shapes=shapes, join=join,
                home_units=home_units, abroad_units=abroad_units, colours=colours,
                names=names, bins=MARGIN_BINS, focusable=lv is Level.AREA1,
                label=lambda u: unit_label(u, names, lang), **ctx))

        return await html(request, ("map", lang, info.snapshot_id, lv.value), make,
                          cc(ref, info))

    def history_html(request: Request, cid: str, snaps: list[SnapshotInfo],
                     until: SnapshotInfo | None) -> bytes:
        cur = snaps[-1].snapshot_id if snaps else None
        if until is None:
            p = page(request, "/history/", json_url="/api/v1/history.json",
                     section="history")
            # the moving page's permalink: the same history, bound to its latest snapshot
            p.permalink = (None if cur is None or static_site else f"/s/{cur}/history/")
        else:
            sid = until.snapshot_id
            p = page(request, f"/s/{sid}/history/", info=until,
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
        return render("history.html", p.context(
            title=p.T("Historia del conteo", "Count history"), tl=tl, race_tl=race_tl,
            fan=fan,
            fan_err=fan_err, snaps={s.snapshot_id: s for s in snaps}, until=until,
            fan_json=(f"/api/v1/s/{until.snapshot_id}/projection-history.json" if until
                      else "/api/v1/projection-history.json")))

    @route("/history/")
    async def history(request: Request) -> Response:
        cid = b.contest_id()
        snaps = b.history_snapshots(cid)
        return await html(request, ("history", lang, cid, tuple(s.snapshot_id for s in snaps)),
                          lambda: history_html(request, cid, snaps, None),
                          CC_REPLAY if b.clock is not None else CC_MOVING)

    @route("/s/{ref}/history/")
    async def history_until(request: Request, ref: str) -> Response:
        """The history as it stood at a snapshot: the permalink of the history page."""
        info = b.resolve(ref)
        snaps = b.history_snapshots(info.contest_id, info)
        return await html(request, ("history-until", lang, info.snapshot_id,
                                    tuple(s.snapshot_id for s in snaps)),
                          lambda: history_html(request, info.contest_id, snaps, info),
                          cc(ref, info))

    @route("/s/{ref}/projection/")
    async def projection(request: Request, ref: str) -> Response:
        info = b.resolve(ref)

        def make() -> bytes:
            sid = info.snapshot_id
            p = page(request, f"/s/{sid}/projection/", info=info,
                     json_url=f"/api/v1/s/{sid}/projection.json", section="projection")
            v = b.projection(info)
            pr = v.projection
            contest = b.store.contest(info.contest_id)
            codes = [c.code for c in contest.candidates]
            names = {c.code: c.name for c in contest.candidates}
            m = pr.margin
            short = {c: i18n.short_name(names[c]) for c in codes}
            ivs = [(iv.level, iv.lower, iv.upper) for iv in m.intervals]
            chart = svg.interval_svg(
                ivs, m.median, m.counted_margin,
                title=p.T(f"Margen final proyectado {short[m.leader]} − {short[m.trailer]}",
                          f"Projected final margin {short[m.leader]} − {short[m.trailer]}"),
                desc=p.T("Intervalos centrales de 50% a 99% del margen final; marca vertical: "
                         "mediana; punto: margen contado; línea: empate. La tabla tiene los "
                         "números.", "Central 50% to 99% intervals of the final margin; "
                         "vertical mark: median; dot: counted margin; line: tie. The table "
                         "has the numbers."),
                median_label=p.T("mediana", "median"), counted_label=p.T("contado", "counted"),
                # a first round: the margin between first and second decides no winner
                left_label=p.T(f"← {short[m.trailer]} adelante", f"← {short[m.trailer]} ahead")
                if pr.kind == "first_round" else
                p.T(f"← gana {short[m.trailer]}", f"← {short[m.trailer]} wins"),
                right_label=p.T(f"{short[m.leader]} adelante →", f"{short[m.leader]} ahead →")
                if pr.kind == "first_round" else
                p.T(f"gana {short[m.leader]} →", f"{short[m.leader]} wins →"),
                colours=(candidate_colour(codes.index(m.leader)),
                         candidate_colour(codes.index(m.trailer))))
            return render("projection.html", p.context(
                title=p.T("Proyección del resultado final", "Projection of the final result"),
                headline=call_view(pr, names, contest.majority_threshold), v=v, pr=pr,
                chart=Markup(chart), note=projection_note(v),
                hurdle=p.T(*pr.hurdle.sentence(names)),
                pwin=bars([(c.code, c.name, 100 * c.p_win) for c in
                           sorted(pr.candidates, key=lambda c: -c.p_win)])))

        return await html(request, ("projection", lang, info.snapshot_id), make,
                          cc(ref, info))

    def per_acta(name: str, template: str, title: tuple[str, str],
                 fetch: Callable[[SnapshotInfo], Any]) -> None:
        @route(f"/s/{{ref}}/{name}/")
        async def view(request: Request, ref: str) -> Response:
            info = b.resolve(ref)
            if info.kind is not SnapshotKind.ACTAS:
                raise NeedsActas(
                    f"esta página necesita una instantánea por acta; {info.snapshot_id[:12]} "
                    "es agregada", f"this page needs a per-acta snapshot; "
                    f"{info.snapshot_id[:12]} is an aggregate one")

            def make() -> bytes:
                sid = info.snapshot_id
                p = page(request, f"/s/{sid}/{name}/", info=info,
                         json_url=f"/api/v1/s/{sid}/{name}.json", section=name)
                return render(template, p.context(title=p.T(*title), v=fetch(info)))

            return await html(request, (name, lang, info.snapshot_id), make, cc(ref, info))

        view.__name__ = f"page_{name}_{lang}"

    per_acta("contested", "contested.html", ("Actas en disputa", "Contested actas"),
             b.contested)
    per_acta("forensics", "forensics.html", ("Cribado forense: anomalía, no prueba",
                                             "Forensic screen: anomaly, not proof"),
             b.forensics)
    per_acta("audit", "audit.html", ("Auditoría que limita el riesgo",
                                     "Risk-limiting audit"), b.audit)

    # -- verification and parallel tabulation: the page and its upload form ----------------
    def verify_html(request: Request, info: SnapshotInfo, pvt: Any = None,
                    error: EscrutinioError | None = None) -> bytes:
        sid = info.snapshot_id
        p = page(request, f"/s/{sid}/verify/", info=info,
                 json_url=f"/api/v1/s/{sid}/verify.json", section="verify")
        return render("verify.html", p.context(
            title=p.T("Verificación y tabulación paralela",
                      "Verification and parallel tabulation"),
            v=b.verify(info), pvt=pvt, upload_error=error, limit_label=_mib(b.upload_limit),
            category_label=lambda k: category_label(k, lang)))

    @route("/s/{ref}/verify/")
    async def verify(request: Request, ref: str) -> Response:
        info = _acta_info(b, ref, "la verificación", "verification")
        return await html(request, ("verify", lang, info.snapshot_id),
                          lambda: verify_html(request, info), cc(ref, info))

    @post("/s/{ref}/verify/")
    async def verify_upload(request: Request, ref: str) -> Response:
        """The upload form (works without JavaScript): the page again, with the
        reconciliation of the copies sent, or what was wrong with them."""
        info = _acta_info(b, ref, "la tabulación paralela", "the parallel tabulation")
        res = err = None
        try:
            upload = await uploads.read_upload(request, b.upload_limit)
            res = await run_in_threadpool(b.pvt, info, upload)
        except EscrutinioError as exc:
            err = exc
        raw = await run_in_threadpool(verify_html, request, info, res, err)
        return _posted(raw, err)

    # -- quick count: design, public sample, estimate from uploaded reports ------------------
    def quickcount_html(request: Request, info: SnapshotInfo, seed: str | None,
                        est: Any = None, error: EscrutinioError | None = None) -> bytes:
        sid = info.snapshot_id
        query = f"?seed={quote(seed, safe='')}" if seed else ""
        p = page(request, f"/s/{sid}/quickcount/", info=info,
                 json_url=f"/api/v1/s/{sid}/quickcount.json{query}", section="quickcount")
        p.permalink = f"/s/{sid}/quickcount/{query}"
        return render("quickcount.html", p.context(
            title=p.T("Conteo rápido", "Quick count"), v=b.quickcount(info, seed),
            est=est, upload_error=error, limit_label=_mib(b.upload_limit),
            call_label=lambda e: call_label(e, lang, {
                c.code: i18n.short_name(c.name) for c in b.store.contest(
                    info.contest_id).candidates})))

    @route("/s/{ref}/quickcount/")
    async def quickcount(request: Request, ref: str,
                         seed: str | None = Query(None, min_length=1, max_length=200)
                         ) -> Response:
        info = _acta_info(b, ref, "el conteo rápido", "the quick count")
        return await html(request, ("quickcount", lang, info.snapshot_id, seed),
                          lambda: quickcount_html(request, info, seed), cc(ref, info))

    @post("/s/{ref}/quickcount/")
    async def quickcount_upload(request: Request, ref: str) -> Response:
        """The reports form (works without JavaScript): the page with the sample of the
        seed sent and the estimate from the reports, or what was wrong with them."""
        info = _acta_info(b, ref, "el conteo rápido", "the quick count")
        seed = request.query_params.get("seed")
        est = err = None
        try:
            upload = await uploads.read_upload(request, b.upload_limit)
            seed = (upload.fields.get("seed") or seed or "").strip() or None
            if seed is None or len(seed) > 200:
                raise IngestError(Location("seed", None, "seed"), "bad_seed",
                                  "indique la semilla pública de la muestra (1 a 200 "
                                  "caracteres)", "give the public seed of the sample (1 to "
                                  "200 characters)")
            est = await run_in_threadpool(b.quickcount_estimate, info, seed, upload, info)
        except EscrutinioError as exc:
            err = exc
        raw = await run_in_threadpool(quickcount_html, request, info,
                                      seed if seed and len(seed) <= 200 else None, est, err)
        return _posted(raw, err)

    @route("/diff/")
    async def diff_form(request: Request, older: str | None = Query(None, max_length=200),
                        newer: str | None = Query(None, max_length=200)) -> Response:
        if older and newer:
            a, c = b.resolve(older), b.resolve(newer)
            return RedirectResponse(f"{prefix}/diff/{a.snapshot_id}/{c.snapshot_id}/",
                                    status_code=303)
        info = b.overview_snapshot()
        prev = previous_snapshot(b, info)
        if prev is None:
            raise NeedsActas("no hay una instantánea anterior comparable",
                             "there is no earlier comparable snapshot")
        return RedirectResponse(f"{prefix}/diff/{prev.snapshot_id}/{info.snapshot_id}/",
                                status_code=303)

    @route("/diff/{older}/{newer}/")
    async def diff(request: Request, older: str, newer: str) -> Response:
        a, c = b.resolve(older), b.resolve(newer)
        if a.kind is not c.kind:
            raise EscrutinioError(
                "no se pueden comparar una instantánea por acta y una agregada",
                "cannot diff a per-acta snapshot against an aggregate one")

        def make() -> bytes:
            p = page(request, f"/diff/{a.snapshot_id}/{c.snapshot_id}/", info=c,
                     json_url=f"/api/v1/diff/{a.snapshot_id}/{c.snapshot_id}.json",
                     section="diff")
            return render("diff.html", p.context(
                title=p.T("Qué cambió entre dos instantáneas",
                          "What changed between two snapshots"),
                d=b.diff(a, c, 100), older=a, newer=c,
                choices=b.store.list_snapshots(c.contest_id, c.kind)))

        perm = older == a.snapshot_id and newer == c.snapshot_id
        return await html(request, ("diff", lang, a.snapshot_id, c.snapshot_id), make,
                          CC_PERMALINK if perm else CC_MOVING)

    # -- mesa lookup: the form, and one mesa (never cached: a coordinator sees copies) -----
    async def mesa_html(request: Request, typed: str | None) -> Response:
        from escrutinio.api import mesa as mesa_lookup
        from escrutinio.api.app import mesa_links

        view = err = cop = None
        who = None
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
        p = page(request, path, section="mesa",
                 json_url=mesa_links(view)["self"] if view is not None else None)
        p.permalink = path if view is not None else None
        names = {}
        if view is not None:
            names = {c.code: c.name for c in view.contest.candidates}
        raw = await run_in_threadpool(render, "mesa.html", p.context(
            title=p.T("Buscar una mesa", "Look up a mesa") if view is None else
            p.T(f"Mesa {view.acta_id}", f"Mesa {view.acta_id}"),
            view=view, error=err, typed=typed or "", copies=cop, coordinator=who,
            mesa_names=names, category_label=lambda k: category_label(k, lang)))
        status = 200 if err is None else status_of(err)
        return Response(raw, status_code=status, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "private, no-store" if who is not None
                                 else "no-cache", "Vary": "Cookie"})

    if not static_site:
        @route("/mesa/")
        async def mesa_form(request: Request,
                            mesa: str | None = Query(None, max_length=200)) -> Response:
            if mesa is not None and mesa.strip():
                from escrutinio.api.mesa import MESA_RE

                if MESA_RE.match(mesa.strip()):
                    return RedirectResponse(f"{prefix}/mesa/{quote(mesa.strip(), safe='')}/",
                                            status_code=303)
                return await mesa_html(request, mesa)
            return await mesa_html(request, None)

        @route("/mesa/{mesa}/")
        async def mesa_page(request: Request, mesa: str) -> Response:
            return await mesa_html(request, mesa)

    @route("/api/")
    async def api_reference(request: Request) -> Response:
        def make() -> bytes:
            p = page(request, "/api/", json_url="/api/v1/openapi.json", section="api")
            spec = request.app.openapi()
            ops = [{"method": m.upper(), "path": path, "summary": op.get("summary", ""),
                    "params": [(x["name"], x["in"], x.get("required", False),
                                x.get("description", "")) for x in op.get("parameters", [])]}
                   for path, item in spec["paths"].items() for m, op in item.items()]
            return render("api.html", p.context(title=p.T("API HTTP", "HTTP API"), ops=ops))

        return await html(request, ("api", lang), make, CC_MOVING)

    @route("/snapshots/")
    async def snapshots(request: Request) -> Response:
        snaps = b.snapshots()

        def make() -> bytes:
            p = page(request, "/snapshots/", json_url="/api/v1/snapshots.json",
                     section="snapshots")
            labels = {c: b.area_labels(c) for c in {s.contest_id for s in snaps}}
            return render("snapshots.html", p.context(
                title=p.T("Instantáneas", "Snapshots"), snaps=list(reversed(snaps)),
                level_name=lambda s: level_label(labels[s.contest_id], s.level, lang)
                if s.level else ""))

        return await html(request, ("snapshots", lang, tuple(s.snapshot_id for s in snaps)),
                          make, CC_REPLAY if b.clock is not None else CC_MOVING)


def _acta_info(b: Backend, ref: str, what_es: str, what_en: str) -> SnapshotInfo:
    info = b.resolve(ref)
    if info.kind is not SnapshotKind.ACTAS:
        raise NeedsActas(f"{what_es} necesita una instantánea por acta; "
                         f"{info.snapshot_id[:12]} es agregada",
                         f"{what_en} needs a per-acta snapshot; {info.snapshot_id[:12]} is an "
                         "aggregate one")
    return info


def _posted(raw: bytes, error: EscrutinioError | None) -> Response:
    """The answer to a form: never cached (it holds the request's own data); the status
    of the error when the upload was refused."""
    status = 200
    if isinstance(error, uploads.UploadError):
        status = error.status
    elif error is not None:
        status = status_of(error)
    return Response(raw, status_code=status, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store"})


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n:,} B"


def call_label(e: Any, lang: str, names: dict[str, str]) -> tuple[str, str]:
    """A quick-count call as (short label, the rest of its sentence): "Empate técnico" /
    "Technical tie", or who wins, by name."""
    if e.call == "technical_tie":
        label = "Empate técnico" if lang == "es" else "Technical tie"
    else:
        code = e.candidate_a if e.call == "a" else e.candidate_b
        name = names.get(code, code)
        label = f"Gana {name}" if lang == "es" else f"{name} wins"
    text = e.call_es if lang == "es" else e.call_en
    rest = text.split(": ", 1)[1] if ": " in text else text
    return label, rest[:1].upper() + rest[1:]


def _map_level(level: str) -> Level:
    slug = i18n.LEVEL_ALIASES.get(level)
    if slug is None or slug == "national":
        raise EscrutinioError(
            f"nivel de mapa desconocido {level!r}: use area1 (departamentos), area2 "
            "(provincias) o area3 (distritos)",
            f"unknown map level {level!r}: use area1 (departments), area2 (provinces) or "
            "area3 (districts)")
    return Level(slug)
