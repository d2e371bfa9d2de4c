"""What the HTML pages share (Jinja2 templates, server-side SVG): the page frame
(:class:`Page`: language, navigation, permalink, replay banner), rendering and the error
page, and the presentation helpers (colours, the map's join, the projection's headline,
the charts). Spanish at ``/``, English at ``/en/``.

The pages themselves are declared with their JSON twins, one resource per module, in
:mod:`escrutinio.api.resources`. The functions here pick colours, words and layout; they
never compute a number shown to the reader.
"""

from __future__ import annotations

import math
from datetime import UTC, tzinfo
from functools import cache
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup

from escrutinio import __version__, countries
from escrutinio.api import i18n, svg, uploads
from escrutinio.api.app import status_of
from escrutinio.api.backend import Backend, NeedsActas, ProjectionView
from escrutinio.api.geo import has_map, peru_geometry, peru_reniec_to_inei
from escrutinio.count import CountState, UnitState
from escrutinio.domain import Level, SnapshotKind, level_label, status_label
from escrutinio.errors import EscrutinioError
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


# --- the map page ------------------------------------------------------------------------------

def _map_shapes(p: Page, lv: Level, st: CountState, join: dict[str, Any],
                colours: dict[str, str], names: dict[str, str]) -> list[dict[str, Any]]:
    """The map's polygons, each filled by the state of its unit (or "no data")."""
    geom = peru_geometry(lv)
    by_key = {join["keys"][u.code]: u for u in st.units
              if u.abroad is False and u.code in join["keys"]}
    shapes = []
    for s in geom.shapes:
        u = by_key.get(s.key)
        if u is None:
            shapes.append({"d": s.d, "fill": "#eef0f3", "op": 1.0, "key": s.key,
                           "name": s.name, "label": p.T(
                               f"{s.name}: sin datos", f"{s.name}: no data"),
                           "code": ""})
            continue
        fill, op = unit_colour(u, colours)
        shapes.append({"d": s.d, "fill": fill, "op": op, "key": s.key, "name": u.name,
                       "label": unit_label(u, names, p.lang), "code": u.code})
    return shapes


def map_context(b: Backend, p: Page, info: SnapshotInfo, lv: Level,
                st: CountState | None) -> dict[str, Any]:
    """The map page's data: the state of ``lv`` drawn on the polygons (``st`` None: the
    snapshot has no such level; the page links the snapshots that have it)."""
    names_lv = b.area_labels(info.contest_id)
    lvname = (level_label(names_lv, lv, "es"), level_label(names_lv, lv, "en"))
    ctx: dict[str, Any] = {"level": lv, "lvname": lvname, "levels": [
        (x, level_label(names_lv, x, p.lang).capitalize(), b.map_snapshot(info, x))
        for x in (Level.AREA1, Level.AREA2, Level.AREA3)]}
    if st is None:
        return {"title": p.T("Mapa", "Map"), "available": False,
                "alt": b.map_snapshot(info, lv), **ctx}
    contest = b.store.contest(info.contest_id)
    colours = {c.code: candidate_colour(i) for i, c in enumerate(contest.candidates)}
    names = {c.code: c.name for c in contest.candidates}
    join = map_join(b, info, lv, st)
    shapes = _map_shapes(p, lv, st, join, colours, names) if join["available"] else []
    return {"title": p.T(f"Mapa por {lvname[0]}", f"Map by {lvname[1]}"),
            "available": True, "st": st, "geom": peru_geometry(lv) if join["available"]
            else None, "shapes": shapes, "join": join,
            "home_units": [u for u in st.units if u.abroad is False],
            "abroad_units": [u for u in st.units if u.abroad], "colours": colours,
            "names": names, "bins": MARGIN_BINS, "focusable": lv is Level.AREA1,
            "label": lambda u: unit_label(u, names, p.lang), **ctx}


# --- what the JSON twins and the pages share -----------------------------------------------------

def replay_payload(b: Backend) -> dict[str, Any]:
    """The replay's state (``/api/v1/replay`` and the pages' banner)."""
    if b.clock is None:
        return {"replay": False, "step": None, "n_steps": None, "as_of": None,
                "as_of_label": None,
                "snapshot_id": None, "seconds_to_next": None, "step_seconds": None}
    from escrutinio.provenance import to_jsonable

    info = b.overview_snapshot()
    now = b.clock.now()
    tz = zone_of(b, info.contest_id)
    return {"replay": True, "step": b.clock.index(), "n_steps": b.clock.n_steps,
            "as_of": to_jsonable(now), "snapshot_id": info.snapshot_id,
            "as_of_label": {lang: i18n.when(now, lang, tz=tz) for lang in i18n.LANGS},
            "seconds_to_next": round(b.clock.seconds_to_next(), 3),
            "step_seconds": b.clock.step_seconds}


def acta_info(b: Backend, ref: str, what_es: str, what_en: str) -> SnapshotInfo:
    info = b.resolve(ref)
    if info.kind is not SnapshotKind.ACTAS:
        raise NeedsActas(f"{what_es} necesita una instantánea por acta; "
                         f"{info.snapshot_id[:12]} es agregada",
                         f"{what_en} needs a per-acta snapshot; {info.snapshot_id[:12]} is an "
                         "aggregate one")
    return info


def posted(raw: bytes, error: EscrutinioError | None) -> Response:
    """The answer to a form: never cached (it holds the request's own data); the status
    of the error when the upload was refused."""
    status = 200
    if isinstance(error, uploads.UploadError):
        status = error.status
    elif error is not None:
        status = status_of(error)
    return Response(raw, status_code=status, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store"})


def mib(n: int) -> str:
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


def map_level(level: str) -> Level:
    slug = i18n.LEVEL_ALIASES.get(level)
    if slug is None or slug == "national":
        raise EscrutinioError(
            f"nivel de mapa desconocido {level!r}: use area1 (departamentos), area2 "
            "(provincias) o area3 (distritos)",
            f"unknown map level {level!r}: use area1 (departments), area2 (provinces) or "
            "area3 (districts)")
    return Level(slug)
