"""Replay two Peruvian first rounds per district, with many cuts (issue #13 item 7).

Both sources publish district results (home only: no city abroad in either) at several
moments of the count; each cut is projected with the per-unit model (project_units,
drift learned from the earlier cuts of the same replay) and scored by the replay harness
(escrutinio.projection.replay) on two races: 1st v 2nd and 2nd v 3rd (who goes to the
runoff). Nothing here changes the model: the declared defaults are used unchanged.

1. **Peru 2021, 11 April** — ONPE's district tables scraped by jmcastagnetto at 9 dates,
   13 Apr → 11 May (``date_upd``/``hour_upd``: ONPE's ``actData`` stamp, Lima time, UTC−5;
   see ``PERU_TZ``). Acta counters per district (MESAS_HABILES, CONTABILIZA, TOTAL_JEE,
   CONT_ANULADA, MESAS_NO_INST) and votes per party (``cod_partido``). The first three
   cuts hold only 1,097 of the 1,874 districts (a partial scrape, not a partial count:
   those districts were 95% counted), so there are two replays:

   a. **the 1,097 districts present in every cut**: 8 cuts (13 Apr → 28 Apr);
   b. **all 1,874 districts**: 5 cuts (16 Apr 20:22 → 28 Apr).

   The truth is the 11 May cut (100% of actas counted, same source, same districts): it
   is the final and is not itself scored. The per-acta file (presidencial-actas_ronderos)
   is **not** used as the truth: it lacks 9,335 mesas (it holds 2,616,687 Castillo votes
   at home against 2,714,152 in the 100% district table); the gap is printed.
2. **Peru 2026, 12 April** — antoniocuga/2026-peru-elecciones district results at 4
   commits (13, 16, 21, 27 Apr), 36 candidates, no acta counts: only ``conteo`` (ONPE's %
   of actas counted per district), which is given to the model as ``remaining``
   (``fraction_counted``). How unreliable ``conteo`` is, is measured and printed; where
   it cannot be used (0 or missing while the district has votes) the district's best
   earlier ``conteo`` is used, else its province's vote-weighted ``conteo`` of that cut
   (see ``fractions_2026``). The truth is the latest state in the shared data: the 4 May
   bundle (97.9% counted nationally), on the same home districts — not a final result.
   The first cut holds only 869 districts with votes (a partial scrape again), so:

   a. **the 869 districts with votes on 13 Apr**: 4 cuts;
   b. **all home districts**: 3 cuts (16, 21, 27 Apr).

Per replay: coverage of the 50/80/90/95% intervals, wrong calls (a call for the wrong
candidate), when the call became correct and stayed, mean abs error of the projected
median v the naive extrapolations (national: counted margin / share counted; per unit:
each district's counted shares applied to its own remaining votes).

Usage::

    .venv/bin/python validation/replay_first_rounds.py [--sims 2000] [--seed 0]
        [--only 2021|2026]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from escrutinio import datasets
from escrutinio.domain import Contest
from escrutinio.projection.model import ModelParams
from escrutinio.projection.replay import (
    CutMeta,
    ReplayResult,
    earlier_frames,
    run_replay,
    score_replay,
)
from escrutinio.projection.result import Projection
from escrutinio.projection.units import project_units
from escrutinio.sources.peru import PERU_2021_FIRST_ROUND, PERU_2026_FIRST_ROUND

REPO = Path(__file__).resolve().parents[1]
#: ONPE stamps its results (``actData.FECHA/HORA``, and the scrapes that copy it) in Lima
#: time; Peru keeps UTC−5 all year
PERU_TZ = timezone(timedelta(hours=-5))

D2021 = "peru-2021-first-round"
D2026 = "peru-2026-first-round"

#: ONPE ``cod_partido`` (C_CODI_AGRUPOL) -> candidate code of PERU_2021_FIRST_ROUND
PARTY_2021: dict[str, str] = {
    "00000001": "ap", "00000002": "app", "00000003": "avpais", "00000004": "dd",
    "00000005": "fa", "00000007": "fp", "00000008": "jpp", "00000010": "sp",
    "00000011": "morado", "00000012": "pnp", "00000014": "perulibre", "00000015": "ppc",
    "00000017": "pps", "00000018": "pp", "00000019": "runa", "00000020": "rp",
    "00000021": "upp", "00000022": "vn",
}
RACES_2021 = (("perulibre", "fp"), ("fp", "rp"))
RACES_2026 = (("fujimori", "sanchez"), ("sanchez", "lopez_aliaga"))
NAMES = {"perulibre": "Castillo", "fp": "K. Fujimori", "rp": "López Aliaga",
         "avpais": "De Soto", "fujimori": "K. Fujimori", "sanchez": "Sánchez",
         "lopez_aliaga": "López Aliaga"}


def data_file(dataset: str, relpath: str) -> Path:
    """A file (or registered folder) of the shared data, found and size-checked by
    :mod:`escrutinio.datasets` (``ESCRUTINIO_DATA_DIR``, then ``../shared/data``)."""
    return datasets.locate_path(dataset, relpath)


def parents_of(codes: Sequence[str]) -> dict[str, str]:
    """District -> province -> department from 6-digit RENIEC ubigeos (units abroad,
    ``9xxxxx``, have no parent here: 2026's abroad is one unit)."""
    out: dict[str, str] = {}
    for c in codes:
        if c.startswith("9"):
            continue
        prov, dep = c[:4] + "00", c[:2] + "0000"
        out[c] = prov
        out[prov] = dep
    return out


@dataclass(frozen=True, slots=True)
class Cut:
    """One published district table, as the model sees it."""

    as_of: datetime
    label: str
    frame: pl.DataFrame  # level, unit_code, abroad, acta counters (or nulls), v_<code>
    source_pct: float | None  # the source's own national figure (2021 pct_avance)
    fraction: pl.DataFrame | None = None  # 2026: unit_code, fraction_counted


# --- 2021 -----------------------------------------------------------------------------

_RESUMEN = {"MESAS_HABILES": "actas_total", "CONTABILIZA": "actas_counted",
            "TOTAL_JEE": "actas_jee", "CONT_ANULADA": "actas_annulled",
            "MESAS_NO_INST": "actas_not_installed", "ELECTORES_HABIL": "electors"}


def _int(col: str) -> pl.Expr:
    return pl.col(col).str.replace_all(",", "").str.strip_chars().cast(pl.Float64) \
        .cast(pl.Int64)


def load_2021() -> list[Cut]:
    """The 9 district cuts of the 2021 first round, oldest first."""
    folder = data_file(D2021, "district_snapshots")
    stamps = sorted({m[1] for p in folder.iterdir()
                     if (m := re.search(r"\.(\d{4}-\d\d-\d\dT\d{4})\.csv\.gz$", p.name))})
    contest = PERU_2021_FIRST_ROUND
    cols = contest.candidate_columns
    out = []
    for st in stamps:
        res = pl.read_csv(folder / f"presidencial-datos-resumen.{st}.csv.gz",
                          infer_schema_length=0)
        par = pl.read_csv(folder / f"presidencial-resultados-partidos.{st}.csv.gz",
                          infer_schema_length=0)
        if (res["ubigeo"] != res["CCODI_UBIGEO"]).any():
            raise ValueError(f"{st}: ubigeo differs from CCODI_UBIGEO")
        unknown = set(par["cod_partido"].unique()) - set(PARTY_2021)
        if unknown:
            raise ValueError(f"{st}: unknown party codes {sorted(unknown)}")
        wide = (par.with_columns(
            pl.col("cod_partido").replace_strict(PARTY_2021).alias("code"),
            pl.col("total_votos").cast(pl.Float64).cast(pl.Int64).alias("votes"))
            .pivot(on="code", index="ubigeo", values="votes", aggregate_function="sum"))
        missing = [c.code for c in contest.candidates if c.code not in wide.columns]
        if missing or wide.height != res.height:
            raise ValueError(f"{st}: parties {missing} or units missing in resultados")
        frame = res.select(
            pl.lit("area3").alias("level"), pl.col("ubigeo").alias("unit_code"),
            pl.col("ubigeo").str.starts_with("9").alias("abroad"),
            *[_int(k).alias(v) for k, v in _RESUMEN.items()],
        ).join(wide.rename({c.code: c.column for c in contest.candidates})
               .rename({"ubigeo": "unit_code"}), on="unit_code", how="left")
        frame = frame.select("level", "unit_code", "abroad", *_RESUMEN.values(), *cols) \
            .sort("unit_code")
        # ONPE's stamp per row (a few rows carry a later minute): the cut's time is the
        # latest stamp, converted from Lima time to UTC
        when = max(datetime.strptime(f"{a} {b}", "%Y-%m-%d %H:%M")
                   for a, b in res.select("date_upd", "hour_upd").unique().iter_rows())
        as_of = when.replace(tzinfo=PERU_TZ).astimezone(UTC)
        pct = float(res["pct_avance"].cast(pl.Float64).to_numpy().max())
        out.append(Cut(as_of, f"{as_of:%d %b %H:%M}Z ({when:%H:%M} Lima)", frame, pct))
    return out


def acta_file_check(truth: dict[str, int]) -> str:
    """How far the per-acta file is from the 100% district table (why it is not the truth)."""
    from escrutinio.sources import onpe_files

    s = onpe_files.parse_ronderos(data_file(D2021, "presidencial-actas_ronderos.pe.csv.gz"),
                                  as_of="2021-05-11T14:15:00Z")
    c = s.frame.filter((pl.col("status") == "counted") & ~pl.col("abroad"))
    got = {k: int(c[f"v_{k}"].sum()) for k in ("perulibre", "fp", "rp")}
    return (f"per-acta file (home, counted actas): {s.frame.height:,} actas parsed, "
            f"{s.rejected.height:,} rows without data; " + ", ".join(
                f"{NAMES[k]} {got[k]:,} v {truth[k]:,} in the 100% table "
                f"({got[k] - truth[k]:+,})" for k in got))


# --- 2026 -----------------------------------------------------------------------------

BUNDLE = "ikusij_first_round_district_bundle_20260504.json.gz"
#: the code given to antoniocuga's single abroad row (its own code is 000000)
ABROAD = "900000"


def _cand_map_2026(slugs: Sequence[str]) -> dict[str, str]:
    """antoniocuga ``candidato_id`` (slug of the display name) -> candidate code: the one
    candidate whose code's words are all words of the slug (checked one to one)."""
    out = {}
    for s in slugs:
        words = set(s.split("-"))
        hits = [c.code for c in PERU_2026_FIRST_ROUND.candidates
                if set(c.code.split("_")) <= words]
        if len(hits) != 1:
            raise ValueError(f"candidate slug {s!r} matches {hits}")
        out[s] = hits[0]
    if sorted(out.values()) != sorted(c.code for c in PERU_2026_FIRST_ROUND.candidates):
        raise ValueError("the 2026 slugs do not map one to one onto the contest")
    return out


def load_2026() -> list[Cut]:
    """The 4 district cuts of antoniocuga's history, oldest first. ``conteo`` is kept raw
    (column ``conteo``, %); :func:`fractions_2026` turns it into ``fraction_counted``."""
    folder = data_file(D2026, "antoniocuga_district_snapshots")
    contest = PERU_2026_FIRST_ROUND
    cols = contest.candidate_columns
    out = []
    for path in folder.glob("district_results_*.csv.gz"):
        df = pl.read_csv(path, infer_schema_length=0)
        cmap = _cand_map_2026(df["candidato_id"].unique().to_list())
        df = df.with_columns(
            pl.col("candidato_id").replace_strict(cmap).alias("code"),
            pl.col("total_votos").cast(pl.Float64).cast(pl.Int64).alias("votes"),
            pl.col("conteo").cast(pl.Float64))
        per_unit = df.group_by("ubigeo_reniec").agg(
            pl.col("conteo").n_unique().alias("n_conteo"), pl.len().alias("n"))
        if (per_unit["n_conteo"] != 1).any() or (per_unit["n"] != len(cols)).any():
            raise ValueError(f"{path.name}: a district with several conteo or candidates")
        wide = df.pivot(on="code", index=["ubigeo_reniec", "conteo"], values="votes",
                        aggregate_function="sum")
        # one row "000000" (departamento "Extranjero", distrito "Total") is the whole of
        # abroad: it becomes one abroad unit, scored against the bundle's cities abroad
        code = pl.when(pl.col("ubigeo_reniec") == "000000").then(pl.lit(ABROAD)) \
            .otherwise(pl.col("ubigeo_reniec"))
        frame = wide.select(
            pl.lit("area3").alias("level"), code.alias("unit_code"),
            code.str.starts_with("9").alias("abroad"),
            *[pl.lit(None, pl.Int64).alias(c) for c in ("actas_total", "actas_counted",
                                                        "actas_jee", "actas_annulled",
                                                        "actas_not_installed")],
            *[pl.col(c.code).alias(c.column) for c in contest.candidates],
            "conteo").sort("unit_code")
        # each district carries its own ONPE stamp (Lima time): the cut is the latest
        when = max(datetime.strptime(h.removesuffix(" h").strip(), "%d/%m/%Y %H:%M")
                   for h in df["hora"].unique().to_list())
        as_of = when.replace(tzinfo=PERU_TZ).astimezone(UTC)
        out.append(Cut(as_of, f"{as_of:%d %b %H:%M}Z ({when:%H:%M} Lima, "
                       f"{path.name.split('_')[-1][:7]})", frame, None))
    return sorted(out, key=lambda c: c.as_of)


def truth_2026() -> tuple[pl.DataFrame, pl.DataFrame]:
    """The 4 May bundle (97.9% counted nationally): its unit frame and ONPE's share of
    actas counted per unit recovered from it (pct_actas_counted_implied)."""
    from escrutinio.sources import onpe_aggregates

    path = data_file(D2026, BUNDLE)
    b = onpe_aggregates.parse_2026_district_bundle(path)
    rem = onpe_aggregates.read_2026_bundle_remaining(path)
    return b.frame, rem


def truth_units(frame: pl.DataFrame, rem: pl.DataFrame) -> pl.DataFrame:
    """The bundle per replay unit: districts at home as they are, the cities abroad summed
    into the one abroad unit; with the votes still to come then (``votos_restantes``) and
    ONPE's % of actas counted recovered from them."""
    cols = PERU_2026_FIRST_ROUND.candidate_columns
    f = frame.join(rem.select("unit_code", "votos_restantes"), on="unit_code", how="left")
    code = pl.when(pl.col("abroad")).then(pl.lit(ABROAD)).otherwise(pl.col("unit_code"))
    return (f.with_columns(code.alias("unit_code"))
            .group_by("unit_code").agg(*[pl.col(c).sum() for c in cols],
                                       pl.col("cast").sum(), pl.col("votos_restantes").sum())
            .with_columns(pl.when(pl.col("cast") + pl.col("votos_restantes") > 0)
                          .then(100 * pl.col("cast") / (pl.col("cast")
                                                        + pl.col("votos_restantes")))
                          .alias("pct_actas_counted_implied"))
            .sort("unit_code"))


def extrapolated(truth: pl.DataFrame, contest: Contest) -> dict[str, int]:
    """The 4 May state with each unit's votes still to come (``votos_restantes``, votes
    cast) split like its votes cast so far: the nearest thing to a final result the shared
    data has (nationally 2.1% of the votes were still to come)."""
    scale = pl.when(pl.col("cast") > 0).then(pl.col("votos_restantes").fill_null(0)
                                             / pl.col("cast")).otherwise(0.0)
    f = truth.select(*[(pl.col(c) * (1 + scale)).alias(c)
                       for c in contest.candidate_columns])
    return {c.code: round(float(f[c.column].sum())) for c in contest.candidates}


def fractions_2026(cuts: Sequence[Cut]) -> tuple[list[Cut], list[dict[str, int]]]:
    """``fraction_counted`` per district for each cut from ``conteo``, and how often it
    could not be used as published. Rules (each cut sees only itself and earlier cuts):
    a district with votes and ``conteo`` in (0, 100] uses it; with votes and ``conteo``
    0 or missing it uses its best earlier ``conteo`` > 0, else its province's
    vote-weighted ``conteo`` of the cut; a ``conteo`` below an earlier one is kept (the
    count's own revision; counted in ``fell``). A district without votes has no share to
    extrapolate: it is left out of ``remaining`` (its votes are the model's blind spot,
    counted in ``no_votes``)."""
    out, stats = [], []
    best: pl.DataFrame | None = None
    for c in cuts:
        f = c.frame
        valid = pl.sum_horizontal([pl.col(x).fill_null(0) for x in
                                   PERU_2026_FIRST_ROUND.candidate_columns])
        f2 = f.with_columns(valid.alias("__valid"),
                            (pl.col("unit_code").str.slice(0, 4)).alias("__prov"))
        prov = f2.filter(pl.col("conteo") > 0).group_by("__prov").agg(
            ((pl.col("conteo") * pl.col("__valid")).sum() / pl.col("__valid").sum())
            .alias("__prov_conteo"))
        f2 = f2.join(prov, on="__prov", how="left")
        if best is not None:
            f2 = f2.join(best, on="unit_code", how="left")
        else:
            f2 = f2.with_columns(pl.lit(None, pl.Float64).alias("__best"))
        has = pl.col("__valid") > 0
        bad = has & (pl.col("conteo").is_null() | (pl.col("conteo") <= 0))
        use = (pl.when(~has).then(None)
               .when(~bad).then(pl.col("conteo"))
               .when(pl.col("__best") > 0).then(pl.col("__best"))
               .otherwise(pl.col("__prov_conteo")))
        f2 = f2.with_columns(use.alias("__use"))
        stats.append({
            "units": f.height,
            "no_votes": int(f2.filter(~has).height),
            "zero_with_votes": int(f2.filter(bad).height),
            "fixed_by_earlier": int(f2.filter(bad & (pl.col("__best") > 0)).height),
            "fell": int(f2.filter(pl.col("conteo") < pl.col("__best") - 1e-9).height),
            "at_100": int(f2.filter(pl.col("conteo") >= 100).height),
        })
        frac = f2.select("unit_code", (pl.col("__use") / 100).clip(0, 1)
                         .alias("fraction_counted")).filter(pl.col("fraction_counted") > 0)
        out.append(Cut(c.as_of, c.label, f, c.source_pct, frac))
        now = f.select("unit_code", pl.col("conteo").alias("__best"))
        best = now if best is None else pl.concat([best, now]).group_by("unit_code").agg(
            pl.col("__best").max())
    return out, stats


def valid_votes(frame: pl.DataFrame, contest: Contest) -> pl.Expr:
    del frame
    return pl.sum_horizontal([pl.col(c).cast(pl.Float64).fill_null(0)
                              for c in contest.candidate_columns])


def conteo_report(cuts: Sequence[Cut], stats: Sequence[dict[str, int]],
                  truth: pl.DataFrame) -> str:
    """How unreliable ``conteo`` is, per cut, against the 4 May state of the same
    districts (itself 97.9% counted nationally: votes that arrived after 4 May are
    missing from the 'later' columns, so the 'grew' counts are lower bounds)."""
    c26 = PERU_2026_FIRST_ROUND
    tv = truth.select("unit_code", valid_votes(truth, c26).alias("__final"),
                      "pct_actas_counted_implied", "votos_restantes")
    lines = ["| cut | districts | without votes | conteo 0 with votes | conteo fell | "
             "conteo 100 | of which votes grew by 4 May | conteo > 4 May's % (+0.5) | "
             "votes to come implied by conteo | votes that came by 4 May + still to come "
             "then (bundle) | median abs "
             "error of the implied district total |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c, st in zip(cuts, stats, strict=True):
        assert c.fraction is not None
        f = (c.frame.select("unit_code", "conteo", valid_votes(c.frame, c26).alias("__v"))
             .join(c.fraction, on="unit_code", how="left").join(tv, on="unit_code",
                                                                how="inner"))
        used = f.filter(pl.col("fraction_counted") > 0)
        implied = used["__v"] / used["fraction_counted"]
        rest = float((implied - used["__v"]).sum())
        came = float((used["__final"] - used["__v"]).sum())
        err = ((implied - used["__final"]).abs() / used["__final"]).to_numpy()
        rel = float(np.nanmedian(err[np.isfinite(err)])) if np.isfinite(err).any() else 0.0
        grew = f.filter((pl.col("conteo") >= 100) & (pl.col("__final") > pl.col("__v"))).height
        ahead = f.filter(pl.col("conteo") > pl.col("pct_actas_counted_implied") + 0.5).height
        after = float(used["votos_restantes"].fill_null(0).sum())
        lines.append(
            f"| {c.label} | {st['units']:,} | {st['no_votes']:,} | {st['zero_with_votes']:,} "
            f"| {st['fell']:,} | {st['at_100']:,} | {grew:,} | {ahead:,} | {rest:,.0f} | "
            f"{came:,.0f} + {after:,.0f} | {100 * rel:.2f}% |")
    return "\n".join(lines)


# --- replays ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Replay:
    """One replay scored on several races (one projection per cut, every race read from
    it)."""

    name: str
    results: tuple[ReplayResult, ...]  # one per truth and race (the first truth first)
    truths: tuple[str, ...]  # the truth each result is scored against
    naive_units: tuple[tuple[float, ...], ...]  # per result, per cut: per-unit naive margin
    n_units: int


def naive_unit_margin(frame: pl.DataFrame, fraction: pl.DataFrame | None, a: str, b: str
                      ) -> float:
    """Each unit's counted A − B scaled to the whole unit: by its actas (to come / with
    votes counted) or, without acta counts, by 1 / fraction counted. A unit with nothing
    counted adds nothing (there is no share of its own to apply)."""
    va = frame[f"v_{a}"].cast(pl.Float64).fill_null(0).to_numpy()
    vb = frame[f"v_{b}"].cast(pl.Float64).fill_null(0).to_numpy()
    if fraction is not None:
        f = frame.select("unit_code").join(fraction, on="unit_code", how="left")[
            "fraction_counted"].cast(pl.Float64).fill_null(0).to_numpy()
        scale = np.divide(1.0, f, out=np.ones_like(f), where=f > 0)
    else:
        tot, cnt, ann, ni = (frame[c].cast(pl.Float64).fill_null(0).to_numpy() for c in
                             ("actas_total", "actas_counted", "actas_annulled",
                              "actas_not_installed"))
        with_votes = cnt - ann - ni
        scale = 1.0 + np.divide(tot - cnt, with_votes, out=np.zeros_like(tot),
                                where=with_votes > 0)
    return float(((va - vb) * scale).sum())


def run(name: str, cuts: Sequence[Cut], contest: Contest, finals: dict[str, dict[str, int]],
        races: Sequence[tuple[str, str]], params: ModelParams, *, from_pct: float,
        pct: Sequence[float]) -> Replay:
    """Project every cut once (with every race as a pair); score each race against each
    truth in ``finals`` (the first one is the main truth)."""
    codes = contest.candidate_columns
    parents = parents_of(cuts[0].frame["unit_code"].to_list())
    items: list[tuple[CutMeta, pl.DataFrame, dict[str, Any]]] = []
    for c, p in zip(cuts, pct, strict=True):
        counted = {col[2:]: int(c.frame[col].fill_null(0).sum()) for col in codes}
        kw: dict[str, Any] = {"parents": parents}
        if c.fraction is not None:
            kw["remaining"] = c.fraction
        items.append((CutMeta(c.as_of, c.label, f"{name}@{c.as_of:%Y%m%dT%H%MZ}", p, counted),
                      c.frame, kw))
    done: dict[int, Projection] = {}

    def one(i: int) -> Projection:
        meta, frame, kw = items[i]
        proj = project_units(frame, contest, params=params, snapshot_id=meta.snapshot_id,
                             as_of=meta.as_of, pairs=tuple(races),
                             history=earlier_frames(items, i), **kw)
        done[i] = proj
        return proj

    names = list(finals)
    first = run_replay(contest.id, "units", [m for m, _, _ in items], one, finals[names[0]],
                       race=races[0], from_pct=from_pct, seed=params.seed)
    scored = [(items[i][0], done[i]) for i in sorted(done)]
    results, truths = [first], [names[0]]
    for t in names:
        for r in races:
            if t == names[0] and r == races[0]:
                continue
            results.append(score_replay(contest.id, "units", scored, finals[t], race=r,
                                        from_pct=from_pct, elapsed_seconds=0.0,
                                        seed=params.seed, skipped=first.skipped))
            truths.append(t)
    naive = []
    for res in results:
        naive.append(tuple(naive_unit_margin(items[i][1], cuts[i].fraction, res.candidate_a,
                                             res.candidate_b) for i in sorted(done)))
    return Replay(name, tuple(results), tuple(truths), tuple(naive), cuts[0].frame.height)


def restrict(cuts: Sequence[Cut], codes: Sequence[str]) -> list[Cut]:
    keep = pl.DataFrame({"unit_code": list(codes)})
    return [Cut(c.as_of, c.label, c.frame.join(keep, on="unit_code", how="semi"),
                c.source_pct, None if c.fraction is None else
                c.fraction.join(keep, on="unit_code", how="semi")) for c in cuts]


def votes_of(frame: pl.DataFrame, contest: Contest) -> dict[str, int]:
    return {c.code: int(frame[c.column].fill_null(0).sum()) for c in contest.candidates}


def pct_actas(c: Cut) -> float:
    f = c.frame
    return 100.0 * float(f["actas_counted"].sum()) / float(f["actas_total"].sum())


def pct_implied(c: Cut, contest: Contest) -> float:
    """Share of the domain's valid votes counted, as conteo implies it (%)."""
    assert c.fraction is not None
    f = c.frame.select("unit_code", valid_votes(c.frame, contest).alias("v")).join(
        c.fraction, on="unit_code", how="left")
    v = f["v"].to_numpy()
    fr = f["fraction_counted"].fill_null(0).to_numpy()
    return 100.0 * float(v.sum()) / float(np.where(fr > 0, v / np.where(fr > 0, fr, 1), v).sum())


def cut_table(rep: Replay, k: int) -> str:
    res = rep.results[k]
    a, b = NAMES.get(res.candidate_a, res.candidate_a), NAMES.get(res.candidate_b,
                                                                  res.candidate_b)
    lines = [f"| cut | % counted | raw {a} − {b} | naive (national) | naive (per unit) | "
             f"projected median | 90% interval | P({a}) | call |",
             "|---|---:|---:|---:|---:|---:|---|---:|---|"]
    for c, nu in zip(res.cuts, rep.naive_units[k], strict=True):
        lo, hi = c.intervals["0.9"]
        call = c.call_status + (" ❌" if c.wrong_call else "")
        lines.append(f"| {c.label} | {c.pct_counted:.2f} | {c.raw_margin:+,} | "
                     f"{c.naive_margin:+,.0f} | {nu:+,.0f} | {c.median:+,.0f} | "
                     f"[{lo:+,.0f}, {hi:+,.0f}] | {c.p_a:.3f} | {call} |")
    return "\n".join(lines)


def block(rep: Replay, k: int) -> str:
    """replay_2021's summary plus the per-unit naive baseline and P ≥ 0.99 calls."""
    from replay_2021 import summary

    res = rep.results[k]
    fm = res.final_margin
    mae_unit = float(np.mean([abs(x - fm) for x in rep.naive_units[k]]))
    wrong99 = sum(1 for c in res.cuts if c.p_a <= 0.01)
    hw = float(np.median([(c.intervals["0.9"][1] - c.intervals["0.9"][0]) / 2
                          for c in res.cuts]))
    return (summary(res) + f"\n- naive per unit: mean |error| {mae_unit:,.0f}"
            f"\n- cuts with P(wrong candidate) ≥ 0.99: {wrong99}; median 90% half-width "
            f"{hw:,.0f}; min P({NAMES.get(res.candidate_a, res.candidate_a)}) "
            f"{min(c.p_a for c in res.cuts):.3f}")


def row(rep: Replay, k: int) -> dict[str, Any]:
    """Figures of one race of one replay (the summary table, the test)."""
    res = rep.results[k]
    fm = res.final_margin
    return {"cuts": res.n_cuts, "wrong": len(res.wrong_calls),
            "coverage": [c.covered / max(c.n_cuts, 1) for c in res.coverage
                         if c.level in (0.5, 0.8, 0.9, 0.95)],
            "mae": res.mean_abs_error,
            "mae_naive_national": res.baselines[2].mean_abs_error,
            "mae_naive_unit": float(np.mean([abs(x - fm) for x in rep.naive_units[k]])),
            "mae_raw": res.baselines[1].mean_abs_error}


def replay_2021_first_round(params: ModelParams, *, max_cuts: int | None = None,
                            out: list[str] | None = None) -> list[Replay]:
    """The two 2021 replays (1,097 districts, 8 cuts; all districts, 5 cuts)."""
    contest = PERU_2021_FIRST_ROUND
    cuts = load_2021()
    truth_cut = cuts[-1]
    if pct_actas(truth_cut) < 100.0:
        raise ValueError("the last 2021 cut is not at 100%: no final to score against")
    scored = cuts[:-1]
    early = scored[0].frame["unit_code"].to_list()
    races = (*RACES_2021, ("rp", "avpais"))
    reps = []
    for name, part in (
            (f"2021 (a): the {len(early):,} districts of every cut",
             restrict(scored, early)),
            ("2021 (b): all districts", [c for c in scored
                                         if c.frame.height == truth_cut.frame.height])):
        part = part[:max_cuts] if max_cuts else part
        codes = part[0].frame["unit_code"].to_list()
        final = votes_of(truth_cut.frame.join(pl.DataFrame({"unit_code": codes}),
                                              on="unit_code", how="semi"), contest)
        rep = run(name, part, contest, {"11 May (100%)": final}, races, params,
                  from_pct=97.0,
                  pct=[pct_actas(c) for c in part])
        reps.append(rep)
        if out is not None:
            out.append(f"### {name}: {len(codes):,} districts, {len(part)} cuts "
                       f"({part[0].label} → {part[-1].label}), final = the 11 May table\n")
            out.append("Final (11 May, 100%): " + ", ".join(
                f"{NAMES[c]} {final[c]:,}" for c in ("perulibre", "fp", "rp", "avpais"))
                + "\n")
            out.extend(race_sections(rep))
    return reps


def race_sections(rep: Replay) -> list[str]:
    """The markdown of each race of a replay scored against its first truth."""
    lines = []
    for k, res in enumerate(rep.results):
        if rep.truths[k] != rep.truths[0]:
            continue
        lines.append(f"#### {NAMES[res.candidate_a]} v {NAMES[res.candidate_b]} "
                     f"(truth: {rep.truths[k]})\n")
        lines.append(block(rep, k) + "\n")
        lines.append(cut_table(rep, k) + "\n")
    return lines


def replay_2026_first_round(params: ModelParams, *, max_cuts: int | None = None,
                            out: list[str] | None = None) -> list[Replay]:
    """The two 2026 replays (districts with votes on 13 Apr, 4 cuts; all, 3 cuts)."""
    contest = PERU_2026_FIRST_ROUND
    raw = load_2026()
    cuts, stats = fractions_2026(raw)
    tf, tr = truth_2026()
    if out is not None:
        out.append("### How unreliable is `conteo`?\n")
        out.append(conteo_report(cuts, stats, truth_units(tf, tr)) + "\n")
    home = truth_units(tf, tr)
    absent = tf.filter(~pl.col("abroad")).join(cuts[-1].frame, on="unit_code", how="anti")
    if out is not None:
        out.append(f"Districts in the 4 May bundle but not in the last antoniocuga cut ("
                   f"newer districts; left out of every total): {absent.height}, "
                   f"{int(absent.select(valid_votes(absent, contest)).sum().item()):,} valid "
                   "votes. antoniocuga's row 000000 ('Extranjero, Total') is all of abroad: "
                   f"one unit ({ABROAD}), scored against the sum of the bundle's cities "
                   "abroad.\n")
    first_votes = set(cuts[0].frame.filter(valid_votes(cuts[0].frame, contest) > 0)
                      ["unit_code"].to_list())
    reps = []
    for name, part, keep in (
            ("2026 (a): the districts with votes on 13 Apr", cuts, first_votes),
            ("2026 (b): all districts", cuts[1:], None)):
        part = part[:max_cuts] if max_cuts else part
        # the units of every cut of the replay (one district is missing from the last)
        codes = sorted(set.intersection(*[set(c.frame["unit_code"].to_list())
                                          for c in part]) & (keep or set(
                                              part[0].frame["unit_code"].to_list())))
        part = restrict(part, codes)
        truth = home.join(pl.DataFrame({"unit_code": codes}), on="unit_code", how="semi")
        final = extrapolated(truth, contest)
        counted = votes_of(truth, contest)
        rep = run(name, part, contest, {"4 May + its remaining": final,
                                        "4 May as counted": counted},
                  RACES_2026, params, from_pct=90.0,
                  pct=[pct_implied(c, contest) for c in part])
        reps.append(rep)
        if out is not None:
            lacking = set(codes) - set(truth["unit_code"].to_list())
            n_ab = sum(1 for x in codes if x == ABROAD)
            out.append(f"### {name}: {len(codes) - n_ab:,} districts"
                       + (" + abroad" if n_ab else "") + f", {len(part)} cuts "
                       f"({part[0].label} → {part[-1].label}); 'final' = their 4 May state "
                       "(units in every cut of the replay only)\n")
            out.append("4 May (97.9% nationally) + each unit's remaining: " + ", ".join(
                f"{NAMES[c]} {final[c]:,}" for c in ("fujimori", "sanchez", "lopez_aliaga"))
                + "; as counted on 4 May: " + ", ".join(
                f"{NAMES[c]} {counted[c]:,}" for c in ("fujimori", "sanchez", "lopez_aliaga"))
                + f"; districts of the replay not in the bundle: {len(lacking)}; % counted ="
                " valid votes counted / those implied by conteo\n")
            out.extend(race_sections(rep))
    return reps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--sims", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=("2021", "2026"), default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    params = ModelParams(n_sims=args.sims, seed=args.seed)
    t0 = time.perf_counter()
    cmd = "validation/replay_first_rounds.py " + " ".join(argv if argv is not None
                                                           else sys.argv[1:])
    out = [f"# Per-district replays of two first rounds — {datetime.now(UTC):%Y-%m-%d %H:%M}"
           f" UTC, {platform.machine()} {platform.system()}, Python "
           f"{platform.python_version()}, {os.cpu_count()} CPUs; sims {params.n_sims}, seed "
           f"{params.seed}\n", f"Command: `.venv/bin/python {cmd.strip()}`\n"]
    reps: list[Replay] = []
    if args.only in (None, "2021"):
        out.append("## Peru 2021 first round (district tables, 9 cuts)\n")
        cuts = load_2021()
        out.append("Cuts (ONPE's stamp is Lima time, UTC−5): " + "; ".join(
            f"{c.label}: {c.frame.height:,} districts, "
            f"{pct_actas(c):.2f}% of their actas (ONPE national {c.source_pct:.2f}%)"
            for c in cuts) + "\n")
        out.append(acta_file_check(votes_of(cuts[-1].frame, PERU_2021_FIRST_ROUND)) + "\n")
        reps += replay_2021_first_round(params, out=out)
    if args.only in (None, "2026"):
        out.append("## Peru 2026 first round (antoniocuga district tables, 4 cuts)\n")
        reps += replay_2026_first_round(params, out=out)
    out.append("## Summary\n")
    out.append("| replay | race | truth | cuts | wrong calls | coverage 50/80/90/95 | mean abs "
               "error: projection / naive national / naive per unit / raw |")
    out.append("|---|---|---|---:|---:|---|---|")
    summary_rows: dict[str, Any] = {}
    for rep in reps:
        for k, res in enumerate(rep.results):
            r = row(rep, k)
            race = f"{NAMES[res.candidate_a]} v {NAMES[res.candidate_b]}"
            summary_rows[f"{rep.name} | {race} | {rep.truths[k]}"] = r
            out.append(f"| {rep.name} | {race} (final {res.final_margin:+,}) | "
                       f"{rep.truths[k]} | {r['cuts']} | "
                       f"{r['wrong']} | " + "/".join(f"{100 * x:.0f}" for x in r["coverage"])
                       + f" | {r['mae']:,.0f} / {r['mae_naive_national']:,.0f} / "
                       f"{r['mae_naive_unit']:,.0f} / {r['mae_raw']:,.0f} |")
    out.append(f"\nTotal time {time.perf_counter() - t0:.1f} s")
    print("\n".join(out))
    if args.json:
        args.json.write_text(json.dumps(summary_rows, indent=1, ensure_ascii=False))
    return 0 if all(not r.wrong_calls for rep in reps for r in rep.results) else 1


if __name__ == "__main__":
    sys.exit(main())
