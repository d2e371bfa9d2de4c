"""The projection of the final result: its JSON (with the headline as the page says it)
and its page (the interval chart, the probabilities)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from escrutinio.api import i18n, svg
from escrutinio.api.backend import PROJECTION_SEED, ProjectionView
from escrutinio.api.resources.base import Call, Resource, api_links, query
from escrutinio.api.resources.params import BaselineQ, ContestQ, Ref, SeedQ, SimsQ


def _params(ref: Ref, sims: SimsQ = None, seed: SeedQ = PROJECTION_SEED,
            contest: ContestQ = None, baseline_contest: BaselineQ = None) -> dict[str, Any]:
    return {"ref": ref, "sims": sims, "seed": seed, "contest": contest,
            "baseline_contest": baseline_contest}


def _sims(c: Call) -> int:
    return int(c.args["sims"] or c.b.projection_sims)


def _load(c: Call) -> ProjectionView:
    return c.b.projection(c.snap, _sims(c), c.args["seed"],
                          baseline_contest=c.args["baseline_contest"])


def _json(c: Call, v: ProjectionView) -> dict[str, Any]:
    from escrutinio.api.pages import call_view, projection_note

    es, en = projection_note(v)
    contest = c.b.store.contest(c.snap.contest_id)
    head = call_view(v.projection, {x.code: x.name for x in contest.candidates},
                     contest.majority_threshold)
    seed, sims = c.args["seed"], c.args["sims"]
    return {"snapshot": c.info, "contest": c.contest_json(),
            "reconstructed": v.reconstructed, "note_es": es, "note_en": en,
            "headline": head["status"], "text_headline_es": head["es"],
            "text_headline_en": head["en"],
            "text_headline_detail_es": head.get("detail_es"),
            "text_headline_detail_en": head.get("detail_en"),
            "projection": v.projection,
            "links": api_links(c.info, f"/api/v1/s/{c.ref}/projection.json",
                               f"/s/{c.sid}/projection/", query=query(
                                   sims=sims, seed=None if seed == PROJECTION_SEED else seed,
                                   baseline_contest=c.args["baseline_contest"]))}


def _page(c: Call, v: ProjectionView) -> tuple[Any, dict[str, Any]]:
    from escrutinio.api.pages import bars, call_view, candidate_colour, projection_note

    p = c.page(f"/s/{c.sid}/projection/", info=c.info,
               json_url=f"/api/v1/s/{c.sid}/projection.json", section="projection")
    pr = v.projection
    contest = c.b.store.contest(c.snap.contest_id)
    codes = [x.code for x in contest.candidates]
    names = {x.code: x.name for x in contest.candidates}
    m = pr.margin
    short = {x: i18n.short_name(names[x]) for x in codes}
    first = pr.kind == "first_round"  # the margin between first and second decides nothing
    chart = svg.interval_svg(
        [(iv.level, iv.lower, iv.upper) for iv in m.intervals], m.median, m.counted_margin,
        title=p.T(f"Margen final proyectado {short[m.leader]} − {short[m.trailer]}",
                  f"Projected final margin {short[m.leader]} − {short[m.trailer]}"),
        desc=p.T("Intervalos centrales de 50% a 99% del margen final; marca vertical: "
                 "mediana; punto: margen contado; línea: empate. La tabla tiene los "
                 "números.", "Central 50% to 99% intervals of the final margin; "
                 "vertical mark: median; dot: counted margin; line: tie. The table "
                 "has the numbers."),
        median_label=p.T("mediana", "median"), counted_label=p.T("contado", "counted"),
        left_label=p.T(f"← {short[m.trailer]} adelante", f"← {short[m.trailer]} ahead")
        if first else p.T(f"← gana {short[m.trailer]}", f"← {short[m.trailer]} wins"),
        right_label=p.T(f"{short[m.leader]} adelante →", f"{short[m.leader]} ahead →")
        if first else p.T(f"gana {short[m.leader]} →", f"{short[m.leader]} wins →"),
        colours=(candidate_colour(codes.index(m.leader)),
                 candidate_colour(codes.index(m.trailer))))
    return p, {
        "title": p.T("Proyección del resultado final", "Projection of the final result"),
        "headline": call_view(pr, names, contest.majority_threshold), "v": v, "pr": pr,
        "chart": Markup(chart), "note": projection_note(v),
        "hurdle": p.T(*pr.hurdle.sentence(names)),
        "pwin": bars([(x.code, x.name, 100 * x.p_win) for x in
                      sorted(pr.candidates, key=lambda x: -x.p_win)])}


PROJECTION = Resource(
    name="projection", api="/s/{ref}/projection", schema="ProjectionResponse",
    summary="Proyección del resultado final / projection of the final result",
    api_params=_params,
    key=lambda c: (c.sid, _sims(c), c.args["seed"], c.b.clock is not None,
                   c.args["baseline_contest"]),
    load=_load, payload=_json, page="/s/{ref}/projection/", template="projection.html",
    html=_page)
