"""Projection from unit snapshots (aggregates per district, province, department...).

When only aggregates are published, the smallest unit available plays the part of the
acta (docs/projection.md §Units). Per unit u of the finest level in the snapshot:

* **counted**: its candidate votes so far (final);
* **still to come**: ``actas_total − actas_counted`` actas, of which ``actas_jee`` are at
  the JEE (component *JEE*: annulled with probability p, :class:`JeeOutcomes`) and the
  rest pending (component *pending at home* / *abroad*). Their valid votes are
  (actas to come) × (valid votes per counted acta), their shares those of the unit's
  counted votes. When acta counts are unknown (some republished files), an external
  estimate of the votes still to come per unit can be passed as ``remaining``.
* a unit with nothing counted yet borrows from similar places: a regression on a
  baseline (the unit's earlier result, e.g. a first round, bloc-mapped) when one is
  given, plus nested area effects (area1 ⊃ area2 ⊃ unit, from ``parents``) learned from
  the units with counted votes — its province's pattern, else its department's, else
  the nation's.

Errors: the part still to come of a unit deviates from its counted part like a sibling
unit would (the between-unit covariance within area2, Σ_unit, for every unit); units with
nothing counted add the posterior uncertainty of their area effects; and all units of a
group share the national shock of :func:`escrutinio.projection.model.national_scale`.
Simulation: :mod:`escrutinio.projection.engine`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from escrutinio.domain import Contest, Level
from escrutinio.errors import EscrutinioError
from escrutinio.projection import linalg as la
from escrutinio.projection.drift import (
    PRIOR_WEIGHT,
    DriftFit,
    TurnoutDrift,
    fit_drift,
    fit_turnout,
    fit_volume,
)
from escrutinio.projection.engine import (
    LevelVariance,
    Shocks,
    build_cells,
    concat_cells,
    simulate,
)
from escrutinio.projection.model import (
    PRIOR_TYPE_SD,
    Baseline,
    JeeOutcomes,
    ModelParams,
    Prepared,
    _align_baseline,
    _fit_regime,
    _param_dict,
    _Regime,
    nested_codes,
    prepare_baseline,
    share_sd,
)
from escrutinio.projection.result import Component, Projection, ShockScales

_ORDER = [Level.NATIONAL.value, Level.AREA1.value, Level.AREA2.value, Level.AREA3.value]
#: with fewer units with votes than this, no spread can be learned: priors are used
MIN_UNITS = 3
#: prior SD (log-odds) of the shares of what is to come when nothing can be learned: about
#: the spread of a candidate's share between the regions of a country
PRIOR_SD = 1.0
PRIOR_TURNOUT_SD = 0.2


def finest_units(units: pl.DataFrame) -> pl.DataFrame:
    """The rows of the finest level present in a unit snapshot."""
    levels = units["level"].unique().to_list()
    finest = max(levels, key=lambda lv: _ORDER.index(lv) if lv in _ORDER else -1)
    return units.filter(pl.col("level") == finest)


#: the unit :func:`complete_with_national` adds for the national row's remainder
REST_CODE = "__rest__"


def complete_with_national(units: pl.DataFrame, national: pl.DataFrame, *,
                           rest_code: str = REST_CODE, rest_abroad: bool | None = True
                           ) -> pl.DataFrame:
    """Append one unit for what the national row holds beyond the listed units.

    Some authorities publish subnational tables only for part of the country (ONPE 2021:
    districts at home only; abroad is only in the national table). The remainder
    national − Σ units (actas and votes) becomes unit ``rest_code`` flagged
    ``rest_abroad``: True when it is known to be abroad, None when nothing says what it
    is (units missing from the cut: the model keeps it apart like abroad, component
    *not in the listed units*); nothing is added when the remainder is empty."""
    fine = finest_units(units)
    nat = national.filter(pl.col("level") == Level.NATIONAL.value) \
        if "level" in national.columns else national
    if nat.height != 1:
        raise ValueError("expected exactly one national row")
    num = [c for c, t in fine.schema.items() if t.is_numeric() and c in nat.columns]
    rest = {c: (int(nat[c][0]) - int(fine[c].fill_null(0).sum()))
            if nat[c][0] is not None else None for c in num}
    if not any(v for v in rest.values() if v):
        return fine
    row = pl.DataFrame({"level": [fine["level"][0]], "unit_code": [rest_code],
                        "abroad": [rest_abroad], **{c: [v] for c, v in rest.items()}},
                       schema={c: fine.schema[c] for c in ("level", "unit_code", "abroad",
                                                           *num)})
    row = row.select([pl.col(c) if c in row.columns else pl.lit(None, dtype=t).alias(c)
                      for c, t in fine.schema.items()])
    return pl.concat([fine, row])


def _areas(fine: pl.DataFrame, parents: Mapping[str, str] | None) -> pl.DataFrame:
    """area1 / area2 codes of each unit from a child -> parent mapping (or none)."""
    codes = fine["unit_code"].to_list()
    par = dict(parents or {})
    a2 = [par.get(c, "") for c in codes]
    a1 = [par.get(p, p) if p else "" for p in a2]
    return pl.DataFrame({"__a1": a1, "__a2": a2, "__u": codes})


def _keyed(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows keyed for the model: ``unit_code`` becomes unit|vote type when the frame has
    a ``vote_type`` column (one row per unit and type); the area code is kept apart."""
    vt = (pl.col("vote_type").cast(pl.String).fill_null("") if "vote_type" in frame.columns
          else pl.lit(""))
    out = frame.with_columns(pl.col("unit_code").alias("__area_code"), vt.alias("__vote_type"))
    if "vote_type" in frame.columns:
        out = out.with_columns(pl.when(pl.col("__vote_type") == "").then(pl.col("unit_code"))
                               .otherwise(pl.col("unit_code") + "|" + pl.col("__vote_type"))
                               .alias("unit_code"))
    return out


class UnknownRemaining(EscrutinioError):
    """The snapshot does not say how much is still to come, and nothing estimates it."""


def prepare_units(
    units: pl.DataFrame, contest: Contest, *, parents: Mapping[str, str] | None = None,
    baseline: pl.DataFrame | Baseline | None = None,
    blocs: Mapping[str, Sequence[str]] | None = None, remaining: pl.DataFrame | None = None,
    params: ModelParams | None = None, history: Sequence[pl.DataFrame] = (),
) -> Prepared:
    """Fit on the units with counted votes and reduce what is to come to cells.

    ``remaining`` (optional): ``unit_code`` and ``fraction_counted`` (0-1] — used for the
    units whose acta counts are unknown: votes still to come = counted valid votes ×
    (1/fraction − 1). ``history``: the earlier cuts of the same count (unit frames, oldest
    first, without this one): the late-count drift and every error term of the units
    with counted votes are learned from them (:mod:`escrutinio.projection.drift`)."""
    params = params or ModelParams()
    jee = params.jee
    cols = contest.candidate_columns
    k = len(cols)
    fine = _keyed(finest_units(units))
    n = fine.height
    votes = fine.select([pl.col(c).cast(pl.Float64).fill_null(0) for c in cols]).to_numpy()
    valid = votes.sum(axis=1)
    counted_votes = votes.sum(axis=0)

    def col(name: str) -> np.ndarray:
        if name not in fine.columns:
            return np.full(n, np.nan)
        return fine[name].cast(pl.Float64).to_numpy().astype(float)

    total, counted, jee_n = col("actas_total"), col("actas_counted"), col("actas_jee")
    annulled = np.nan_to_num(col("actas_annulled"))
    not_inst = np.nan_to_num(col("actas_not_installed"))
    electors = col("electors")
    with_votes = counted - annulled - not_inst
    known = ~np.isnan(total) & ~np.isnan(counted)
    to_come = np.where(known, np.clip(total - counted, 0, None), 0.0)
    jee_come = np.where(known, np.clip(np.nan_to_num(jee_n), 0, to_come), 0.0)
    pend_come = to_come - jee_come
    per_acta = np.where(known & (with_votes > 0), valid / np.where(with_votes > 0,
                                                                   with_votes, 1), np.nan)
    el_per_acta = np.where(known & (with_votes > 0) & ~np.isnan(electors),
                           electors / np.where(with_votes > 0, with_votes, 1), np.nan)
    ext_rest = np.zeros(n)
    if remaining is None and not known.all():
        raise UnknownRemaining(
            f"{int((~known).sum()):,} de {n:,} unidades no dicen cuántas actas tienen ni cuántas "
            "se contaron, y no hay una estimación de lo que falta: proyectar daría una "
            "certeza falsa (como si no faltara nada)",
            f"{int((~known).sum()):,} of {n:,} units do not say how many actas they have or "
            "how many were counted, and there is no estimate of what remains: a projection "
            "would give a false certainty (as if nothing remained)")
    if remaining is not None:
        r = fine.select("unit_code").join(remaining, on="unit_code", how="left")
        frac = r["fraction_counted"].cast(pl.Float64).to_numpy().astype(float)
        use = ~known & ~np.isnan(frac) & (frac > 0)
        ext_rest = np.where(use, valid * (1.0 / np.where(use, frac, 1.0) - 1.0), 0.0)

    # the national row's remainder when nothing says it is abroad (abroad null): modelled
    # apart like abroad (its own shock group), named "not in the listed units"
    outside = ((fine["__area_code"] == REST_CODE) & fine["abroad"].is_null()).to_numpy()
    abroad = fine["abroad"].fill_null(False).to_numpy().astype(bool) | outside
    areas = _areas(fine.with_columns(pl.col("__area_code").alias("unit_code")), parents) \
        .with_columns(pl.Series("__u", fine["unit_code"].to_list()))
    a1, a2, a3 = nested_codes(areas, ["__a1", "__a2", "__u"])
    ab = abroad.astype(float)
    ones = np.ones(n)
    # vote types (election day, mail...): one intercept per type besides the largest
    types = fine["__vote_type"].to_list()
    type_names = sorted(set(types), key=lambda t: -float(valid[[x == t for x in types]].sum()))
    type_idx = np.array([type_names.index(t) for t in types], dtype=np.int64)
    tx = (type_idx[:, None] == np.arange(1, len(type_names))[None]).astype(float)
    xd = np.column_stack([ones, ab, tx])

    train_s = valid > 0
    train_t = ~np.isnan(per_acta) & (per_acta > 0)
    ys = la.clr(votes)
    yt = np.log(np.where(train_t, per_acta, 1.0))
    ws = np.maximum(valid, 1.0)
    wt = np.where(train_t, with_votes, 0.0)
    keys = ("area1", "area2", "unit")

    regimes: dict[str, _Regime] = {}
    regime_of = np.ones(n, dtype=np.int64)
    feats = None
    bloc_names: tuple[str, ...] = ()
    if baseline is not None:
        base = baseline if isinstance(baseline, Baseline) else \
            prepare_baseline(baseline, blocs, key="unit_code")
        bloc_names = base.blocs
        feats, _tb, base_ok, _ = _align_baseline(fine, base, key="unit_code")
        tr = train_s & base_ok
        if tr.sum() >= min(params.min_regression, 20):
            xs_all = np.column_stack([xd, feats])
            reg = _fit_regime("B", xs_all[tr], xd[tr], ys[tr],
                              yt[tr], ws[tr], np.where(train_t, wt, 0.0)[tr],
                              [a1[tr], a2[tr], a3[tr]], params.ridge, keys)
            regimes["B"] = reg
            regime_of = np.where(base_ok, 0, 1)
    x_n = xd
    # turnout is fitted on the units with actas counted; shares on units with votes
    regimes["N"] = _fit_regime("N", x_n[train_s], x_n[train_s], ys[train_s],
                               yt[train_s], ws[train_s], wt[train_s],
                               [a1[train_s], a2[train_s], a3[train_s]], params.ridge, keys)
    reg_list = [regimes.get("B", regimes["N"]), regimes["N"]]

    # items: the pending part and the JEE part of every unit with something to come
    comp_p = np.where(outside, Component.OUTSIDE_UNITS.value,
                      np.where(abroad, Component.ABROAD.value, Component.PENDING_HOME.value))
    parts_idx = [np.flatnonzero((pend_come > 0) | (ext_rest > 0)), np.flatnonzero(jee_come > 0)]
    idx = np.concatenate(parts_idx)
    is_jee = np.concatenate([np.zeros(parts_idx[0].size, bool), np.ones(parts_idx[1].size,
                                                                          bool)])
    acts = np.concatenate([pend_come[parts_idx[0]], jee_come[parts_idx[1]]])
    ext = np.concatenate([ext_rest[parts_idx[0]], np.zeros(parts_idx[1].size)])
    comp = np.where(is_jee, Component.JEE.value, comp_p[idx])
    reg_i = regime_of[idx]
    z_hat = np.zeros((idx.size, k))
    t_hat = np.zeros(idx.size)
    fs = np.ones((idx.size, 3))
    ft = np.ones((idx.size, 3))
    for ri, reg in enumerate(reg_list):
        sel = reg_i == ri
        if not sel.any():
            continue
        rows = idx[sel]
        xs = np.column_stack([xd[rows], feats[rows]]) if (ri == 0 and feats is not None) \
            else x_n[rows]
        grp = [a1[rows], a2[rows], a3[rows]]
        eff_s, fac_s = reg.share_fit.predict(grp)
        eff_t, fac_t = reg.turn_fit.predict(grp)
        z_hat[sel] = xs @ reg.share_beta + eff_s
        t_hat[sel] = (x_n[rows] @ reg.turn_beta)[:, 0] + eff_t[:, 0]
        fs[sel] = np.column_stack(fac_s)
        ft[sel] = np.column_stack(fac_t)
    # units with counted votes: the part to come is centred on the unit's own counted
    # shares (and valid votes per acta) plus the drift learned from the earlier cuts;
    # its errors are the drift's (common + own), never the spread between areas
    own = train_s[idx]
    own_t = own & train_t[idx]
    t_hat[own_t] = yt[idx[own_t]]
    fs[own] = 0.0
    ft[own_t] = 0.0
    # units with nothing counted: like a sibling unit (their area effects still unknown)
    fs[~own, 2] = 1.0
    ft[~own_t, 2] = 1.0
    vpa = np.exp(t_hat)
    scale = np.where(is_jee, 1.0 - jee.p_annulled, 1.0)
    v = np.where(ext > 0, ext, acts * vpa) * scale
    rem_u = np.zeros(n)
    np.add.at(rem_u, idx, v)
    # with a baseline, the unit term's prior is the spread of the swing between units
    swing = regimes["B"].share_fit.levels[-1].cov if "B" in regimes else None
    drift = _unit_drift(fine, cols, votes, history, counted_votes, rem_u, swing)
    # sheets held for review, where the country measured how they lean, are scattered over
    # their unit: the count's arrival drift (centre, volume, common shock) is not theirs
    scattered = is_jee & (jee.lean_margin_sd is not None)
    if drift.volume_center is not None and own_t.any():
        # the valid votes per acta still to come move like those of the recent batches
        moved = own_t & ~scattered
        t_hat[moved] += drift.volume_center[idx[moved]]
        vpa = np.exp(t_hat)
        v = np.where(ext > 0, ext, acts * vpa) * scale
        rem_u = np.zeros(n)
        np.add.at(rem_u, idx, v)
    z_hat[own] = la.clr(votes[idx[own]]) + np.where(scattered[own, None], 0.0,
                                                    drift.center[idx[own]])
    p = la.softmax(z_hat)
    # with an external estimate of the votes to come, the volume is given: no turnout shock
    tder = np.where(ext > 0, 0.0, 1.0)
    epa = el_per_acta[idx]
    cap = np.where(np.isnan(epa), 3.0 * v + 50.0, acts * np.nan_to_num(epa))
    cap = np.maximum(cap, v)
    levels = [
        LevelVariance(codes[idx], fs[:, i], ft[:, i],
                      tuple(rg.share_fit.levels[i].cov for rg in reg_list),
                      tuple(float(rg.turn_fit.levels[i].cov[0, 0]) for rg in reg_list))
        for i, codes in enumerate((a1, a2, a3))
    ]
    few = int(train_s.sum()) < MIN_UNITS
    if few:
        # too few units to learn any spread from: a unit with nothing counted gets the
        # prior of a whole region instead of a zero variance
        prior = la.isotropic_clr_cov(k, PRIOR_SD)
        lv = levels[2]
        levels[2] = LevelVariance(lv.codes, np.where(own, 0.0, 1.0),
                                  np.where(own_t, 0.0, 1.0),
                                  (prior, prior), (PRIOR_TURNOUT_SD ** 2,) * 2)
    # the unit's own deviation from the drift (independent between units)
    if len(type_names) > 1:
        # a vote type with nothing counted yet may lean anywhere: one shared effect per
        # type, prior SD PRIOR_TYPE_SD on the log-odds (the lean of late blocks measured
        # on real counts, as per acta); a type with counted units: the standard error of
        # its mean over them
        seen = np.bincount(type_idx[train_s], minlength=len(type_names)).astype(float)
        sd_u = max(share_sd(reg_list[-1].share_fit.levels[-1].cov), 0.05)
        f_type = np.where(seen > 0, (sd_u / PRIOR_TYPE_SD) ** 2 / np.maximum(seen, 1.0),
                          1.0)
        prior_t = la.isotropic_clr_cov(k, PRIOR_TYPE_SD)
        ti = type_idx[idx]
        levels.append(LevelVariance(ti, np.where(own, 0.0, f_type[ti]),
                                    np.where(own_t, 0.0, f_type[ti]), (prior_t, prior_t),
                                    (PRIOR_TURNOUT_SD ** 2,) * 2))
    # the unit's own deviation: its pending part is the next places of the count (as lumpy
    # as its batches were); its part held for review is sheets scattered over the unit,
    # not a place: where the country measured how far such sheets lean from their unit
    # (JeeOutcomes.lean_margin_sd), that is their deviation instead
    own_f = drift.unit_factor(rem_u[idx], valid[idx], idx)
    if jee.lean_margin_sd is not None:
        # scattered sheets: their sampling (the B/n part of the unit term, n their votes)
        # plus the lean measured for such sheets; no lumpiness, no look-ahead
        own_f = np.where(scattered, jee.lean_margin_sd ** 2 / 2.0
                         + drift.fit.scattered_factor(v, idx), own_f)
    levels.append(LevelVariance(
        a3[idx], np.where(own, own_f, 0.0),
        np.where(own_t, drift.turnout_unit, 0.0), (drift.shape, drift.shape),
        (1.0, 1.0)))
    zero_k = np.zeros((k, k))
    # shock groups: home 0, abroad 1; sheets under review with a measured lean, 2: the
    # count's arrival drift (how late places differ) is not theirs — their lean is
    group = abroad[idx].astype(np.int64)
    group = np.where(scattered & own, 2, group)
    cells = concat_cells([build_cells(
        v=v, p=p, tder=tder, component=comp, regime=reg_i,
        cell=type_idx[idx] if len(type_names) > 1 else a1[idx],
        group=group, levels=levels, noise_share=(zero_k, zero_k),
        noise_turn=(0.0, 0.0), cap=cap, jee=is_jee, p_annulled=jee.p_annulled,
        jee_scale=1.0 / scale, jee_sheets=np.where(is_jee, acts, 1.0))], k)
    expected_rest = cells.m.sum() if cells.m.size else 0.0
    counted_fraction = float(counted_votes.sum() / max(1.0, counted_votes.sum()
                                                        + expected_rest))
    shocks = _drift_shocks(drift, float(expected_rest), float(counted_votes.sum()),
                           counted_fraction, jee, regimes,
                           params)
    point = counted_votes + (cells.m.sum(0) if cells.m.size else 0.0)
    diagnostics: dict[str, object] = {
        "n_units": n, "n_units_with_votes": int(train_s.sum()),
        "n_units_to_come": int(np.unique(idx).size),
        "n_units_without_counts": int((~known).sum()),
        "actas_to_come": float(to_come.sum()), "actas_jee": float(jee_come.sum()),
        "actas_to_come_by_component": _actas_by_component(comp, acts, ext),
        "external_remaining_votes": float(ext_rest.sum()),
        "prior_used": few,
        "review_lean_margin_sd": jee.lean_margin_sd,
        "drift": drift.diagnostics,
        "blocs": list(bloc_names),
        "expected_votes_point": {c.code: float(point[j])
                                 for j, c in enumerate(contest.candidates)},
        "vote_types": _type_diagnostics(type_names, type_idx, valid, rem_u),
    }
    return Prepared(counted_votes, cells, shocks, diagnostics)


def _actas_by_component(comp: np.ndarray, acts: np.ndarray, ext: np.ndarray
                        ) -> dict[str, int | None]:
    """Actas still to come per component (the items are units); None for a component
    with a unit whose acta counts are unknown (its part to come is an external
    estimate)."""
    out: dict[str, int | None] = {}
    for c in dict.fromkeys(comp.tolist()):
        sel = comp == c
        unknown = bool((ext[sel] > 0).any() or np.isnan(acts[sel]).any())
        out[str(c)] = None if unknown else round(float(acts[sel].sum()))
    return out


def unit_components(proj: Projection, actas_word: tuple[str, str] = ("actas", "actas")
                    ) -> Projection:
    """The components of a per-unit projection named as units (their items are units,
    never actas), with the actas they hold when known, in the country's word."""
    from dataclasses import replace

    from escrutinio.projection.result import UNIT_COMPONENT_LABELS

    by = proj.diagnostics.get("actas_to_come_by_component")
    actas = by if isinstance(by, dict) else {}
    comps = []
    for c in proj.components:
        es, en = UNIT_COMPONENT_LABELS[c.component]
        n = actas.get(c.component.value)
        comps.append(replace(c, label_es=es.format(w=actas_word[0]),
                             label_en=en.format(w=actas_word[1]),
                             n_actas=n if isinstance(n, int) else None,
                             actas_word=actas_word))
    return replace(proj, components=tuple(comps))


def _type_diagnostics(names: Sequence[str], idx: np.ndarray, valid: np.ndarray,
                      to_come: np.ndarray) -> dict[str, dict[str, float]]:
    """Per vote type (the rows of a unit published per type; empty without types): the
    rows, the valid votes counted and the expected valid votes still to come."""
    if names == [""]:
        return {}
    m = len(names)
    rows = np.bincount(idx, minlength=m)
    got = np.bincount(idx, weights=valid, minlength=m)
    come = np.bincount(idx, weights=to_come, minlength=m)
    return {(t or "-"): {"rows": int(rows[i]), "counted_valid": float(got[i]),
                         "expected_to_come": float(come[i])} for i, t in enumerate(names)}


@dataclass(frozen=True, slots=True)
class _UnitDrift:
    """The drift of :mod:`escrutinio.projection.drift` for the units of one cut."""

    fit: DriftFit
    turnout: TurnoutDrift
    volume_center: np.ndarray | None = None  # (U,) log shift of valid votes per acta

    @property
    def center(self) -> np.ndarray:
        return self.fit.center

    @property
    def shape(self) -> np.ndarray:
        return self.fit.shape

    @property
    def turnout_unit(self) -> float:
        return self.turnout.unit

    @property
    def diagnostics(self) -> dict[str, object]:
        vc = self.volume_center
        return {**self.fit.diagnostics, "turnout_common_sd": float(np.sqrt(self.turnout.common)),
                "volume_log_shift_max": float(np.abs(vc).max()) if vc is not None and vc.size
                else 0.0,
                "turnout_unit_sd": float(np.sqrt(self.turnout.unit))}

    def unit_factor(self, remaining: np.ndarray, counted: np.ndarray,
                    units: np.ndarray | None = None) -> np.ndarray:
        return self.fit.unit_factor(remaining, counted, units)


def _aligned(frames: Sequence[pl.DataFrame], codes: pl.DataFrame, columns: list[str]
             ) -> np.ndarray:
    """(J, U, C) values of ``columns`` for the units ``codes`` in each frame's finest rows
    (NaN where a frame lacks the unit or the value): one concatenation, one join."""
    out = np.full((len(frames), codes.height, len(columns)), np.nan)
    keep = [(j, fr) for j, fr in enumerate(frames) if "unit_code" in fr.columns and fr.height]
    if not keep:
        return out
    # the cut index as one column added after the concatenation (not one operation per
    # frame: a replay aligns every earlier cut at every cut)
    cut = np.repeat(np.array([j for j, _ in keep], dtype=np.int64),
                    [fr.height for _, fr in keep])
    allf = pl.concat([fr for _, fr in keep], how="diagonal_relaxed").with_columns(
        pl.Series("__cut", cut))
    if "level" in allf.columns:
        rank = pl.col("level").replace_strict(
            {lv: i for i, lv in enumerate(_ORDER)}, default=-1, return_dtype=pl.Int64)
        allf = allf.with_columns(rank.alias("__rank")).filter(
            pl.col("__rank") == pl.col("__rank").max().over("__cut"))
    allf = _keyed(allf).select(
        "__cut", "unit_code",
        *[(pl.col(c) if c in allf.columns else pl.lit(None)).cast(pl.Float64).alias(c)
          for c in columns]).unique(["__cut", "unit_code"], keep="last")
    got = allf.join(codes.with_row_index("__pos"), on="unit_code", how="inner")
    out[got["__cut"].to_numpy(), got["__pos"].to_numpy()] = \
        got.select(columns).to_numpy().astype(float)
    return out


def _unit_drift(fine: pl.DataFrame, cols: list[str], votes: np.ndarray,
                history: Sequence[pl.DataFrame], counted_votes: np.ndarray,
                remaining: np.ndarray, unit_prior_cov: np.ndarray | None = None
                ) -> _UnitDrift:
    """Fit the drift on the earlier cuts plus this one (units aligned on ``unit_code``)."""
    codes = fine.select("unit_code")
    k = len(cols)
    with_actas = "actas_counted" in fine.columns
    extra = ["actas_counted", "actas_annulled", "actas_not_installed"] if with_actas else []
    past = _aligned(list(history), codes, cols + extra)
    cur = _aligned([fine], codes, cols + extra)
    allc = np.concatenate([past, cur]) if past.shape[0] else cur
    cum = allc[:, :, :k]
    cum[-1] = votes  # this cut as the model sees it (nulls as 0)
    p_ref = counted_votes / max(float(counted_votes.sum()), 1.0)
    fit = fit_drift(cum, reference=p_ref, remaining=remaining, unit_prior_cov=unit_prior_cov)
    if with_actas:
        acts = allc[:, :, k] - np.nan_to_num(allc[:, :, k + 1]) - np.nan_to_num(allc[:, :, k + 2])
        valid_j = np.nansum(cum, axis=2) + np.where(np.isfinite(cum).all(axis=2), 0.0, np.nan)
        turnout = fit_turnout(valid_j, acts)
        volume = fit_volume(valid_j, acts, remaining)
    else:
        turnout = fit_turnout(np.zeros((1, codes.height)), np.zeros((1, codes.height)))
        volume = np.zeros(codes.height)
    return _UnitDrift(fit, turnout, volume)


def _drift_shocks(drift: _UnitDrift, remaining_total: float, counted_total: float,
                  counted_fraction: float,
                  jee: JeeOutcomes, regimes: Mapping[str, _Regime], params: ModelParams
                  ) -> Shocks:
    """National shocks from the drift: the common residuals' covariance for the votes
    still to come (home and abroad: the same scale, independent draws), Student t tails
    while few cuts have been seen."""
    cs = drift.fit.common_cov(max(remaining_total, 1.0), counted_total)
    ct = drift.turnout.common
    jee_sd = float(np.sqrt(jee.p_annulled * (1 - jee.p_annulled) / (jee.rate_prior_n + 1)))
    sf = regimes.get("B", regimes["N"]).share_fit
    lv_sd = [share_sd(lv.cov) for lv in sf.levels] + [0.0] * (3 - len(sf.levels))
    d = drift.fit
    scales = ShockScales(
        national_share=share_sd(cs), national_turnout=float(np.sqrt(ct)),
        abroad_share=share_sd(cs), area1_share=lv_sd[0], area2_share=lv_sd[1],
        area3_share=lv_sd[2], acta_share=share_sd(drift.shape * float(d.unit.at(1.0))),
        counted_fraction=counted_fraction, inflation=1.0,
        notes=(f"drift learned from the count itself: {d.n_cuts} cuts, "
               f"{d.common.n_resid} common and {d.unit.n_resid} unit out-of-sample "
               "residuals" if d.common.n_resid else
               "no earlier cut: declared drift priors (docs/projection.md)")
        + (f"; common shock Student t, {d.tail_df:.0f} df" if d.tail_df else ""),
    )
    # group 2 (sheets under review, when the country measured their lean): no drift
    # shock; the turnout shock of home
    zero = np.zeros_like(cs)
    # one unit: the prior is kept apart as a mixture (DriftFit.prior_mix; 0 otherwise)
    mp, mc = d.prior_mix()
    return Shocks((cs, cs, cs, cs, zero, zero), (ct,) * 6, (0, 0, 1, 1, 0, 0), jee_sd,
                  scales, tail_df=d.tail_df, mix_prob=mp,
                  mix_cov=(mc, mc, mc, mc, zero, zero),
                  revision_cov=d.revision_cov, n_revisions=d.n_corrections)


def project_units(
    units: pl.DataFrame, contest: Contest, *, parents: Mapping[str, str] | None = None,
    baseline: pl.DataFrame | Baseline | None = None,
    blocs: Mapping[str, Sequence[str]] | None = None, remaining: pl.DataFrame | None = None,
    params: ModelParams | None = None, snapshot_id: str = "", as_of: datetime | None = None,
    pairs: tuple[tuple[str, str], ...] = (), history: Sequence[pl.DataFrame] = (),
    actas_word: tuple[str, str] = ("actas", "actas"),
) -> Projection:
    """Project the final result from a unit snapshot (see the module docstring).
    ``actas_word``: the country's word for actas (Chile: mesas), in the components'
    labels (their items are units: :func:`unit_components`)."""
    params = params or ModelParams()
    prep = prepare_units(units, contest, parents=parents, baseline=baseline, blocs=blocs,
                         remaining=remaining, params=params, history=history)
    return unit_components(simulate(
        contest, prep.counted, prep.cells, prep.shocks, n_sims=params.n_sims,
        seed=params.seed, levels=params.levels, call_rule=params.call_rule, basis="units",
        snapshot_id=snapshot_id, as_of=as_of, parameters=_param_dict(params, blocs),
        diagnostics=prep.diagnostics, pairs=pairs), actas_word)


# --- national series: no geography, batches as units ------------------------------------

def clean_series(history: Sequence[tuple[Sequence[float], float]]
                 ) -> list[tuple[Sequence[float], float]]:
    """Drop cuts whose valid votes are more than 1% below the running maximum (broken
    scrapes); the last cut is always kept so that "now" stays now."""
    out: list[tuple[Sequence[float], float]] = []
    best = 0.0
    for i, (votes, frac) in enumerate(history):
        tot = float(np.sum(votes))
        if tot < 0.99 * best and i < len(history) - 1:
            continue
        best = max(best, tot)
        out.append((votes, frac))
    return out


#: a national series cannot see which kind of votes remain: with probability BREAK_PROB
#: the votes still to come are a block unlike anything counted, shifting the margin's share
#: of them with SD BREAK_MARGIN_SD (declared: Peru 2021's abroad and observed actas, US
#: 2020's mail ballots were such blocks)
BREAK_PROB = 0.10
BREAK_MARGIN_SD = 0.30
#: declared prior of how much a source's "share counted" may still be revised: SD of the
#: log of the implied final total, per unit of share still to count (2% at 20% to come)
PRIOR_TOTAL_LOG_SD = 0.02 / np.sqrt(0.2)


def _volume_variance(valid: np.ndarray, frac: np.ndarray, rest: float) -> float:
    """Variance of the log of the votes still to come, R, in a series.

    A source's share counted (or its "votes remaining") is an estimate: the final total it
    implies, T = valid / f, is revised from cut to cut. Those revisions, against the share
    counted in between, size a random walk of log T until the end (variance s²·(1 − f));
    an error σ in log T is an error T·σ/R in log R. Declared prior:
    :data:`PRIOR_TOTAL_LOG_SD`, weight :data:`~escrutinio.projection.drift.PRIOR_WEIGHT`
    steps."""
    if rest <= 0:
        return 0.0
    ok = (frac > 0) & (valid > 0)
    lt = np.log(valid[ok] / frac[ok])
    fo = frac[ok]
    d = np.diff(lt)
    h = np.diff(fo)
    step = h > 0
    d, h = d[step], h[step]
    prior = PRIOR_TOTAL_LOG_SD ** 2
    w0 = PRIOR_WEIGHT * (float(h.mean()) if h.size else 0.05)
    s2 = (w0 * prior + float((d ** 2).sum())) / (w0 + float(h.sum()))
    f_now = float(frac[-1])
    total = float(valid[-1]) / max(f_now, 1e-9)
    var_t = s2 * max(0.0, 1.0 - f_now)
    return float(min(1.0, var_t * (total / rest) ** 2))


def prepare_series(
    history: Sequence[tuple[Sequence[float], float]], contest: Contest, *,
    params: ModelParams | None = None,
) -> Prepared:
    """A projection from national totals alone (no geography).

    ``history``: (votes per candidate, fraction of the votes counted in (0, 1]) of every
    national cut so far, oldest first; the last one is "now". The votes still to come,
    R = valid × (1/f − 1), are one block whose shares are the counted shares moved by the
    drift that the series itself shows (:mod:`escrutinio.projection.drift`: how each
    batch of new votes differed from what was counted before it, how much of that
    carried over to the next batch, and how wrong that rule was — one batch ahead and
    all the way to now). With one cut there is no history: the declared drift prior.
    Cuts whose valid votes fall by more than 1% below an earlier cut are taken as broken
    scrapes and skipped (a correction removes a few hundred votes, not millions).
    """
    params = params or ModelParams()
    k = len(contest.candidates)
    history = clean_series(history)
    v = np.array([h[0] for h in history], dtype=float)
    f = np.array([h[1] for h in history], dtype=float)
    now, f_now = v[-1], float(f[-1])
    valid_now = float(now.sum())
    rest = valid_now * (1.0 / max(f_now, 1e-6) - 1.0) if f_now < 1 else 0.0
    # the votes still to come per share of the count move like the recent batches'
    vol_shift = float(fit_volume(v.sum(axis=1)[:, None], f[:, None], np.array([rest]))[0])
    rest *= float(np.exp(vol_shift))
    drift = fit_drift(v[:, None, :], remaining=np.array([rest]))
    p = la.softmax(la.clr(now[None])[0][None] + drift.center)[0] if valid_now > 0 \
        else np.full(k, 1.0 / k)
    g = rest * (np.diag(p) - np.outer(p, p))
    cells = concat_cells([], k)
    if rest > 0:
        from escrutinio.projection.engine import Cells

        cells = Cells(
            (rest * p)[None], g[None], (rest * p)[None], np.zeros((1, k, k)),
            np.full((1, k), 3.0 * rest), np.zeros(1, dtype=np.int64),
            np.array([Component.REMAINDER.value], dtype=object), np.zeros((1, k)),
            np.ones(1, dtype=np.int64))
    cov = drift.common_cov(max(rest, 1.0), valid_now)
    vol_var = _volume_variance(v.sum(axis=1), f, rest)
    zero = np.zeros((k, k))
    how = (f"drift learned from {drift.n_cuts} cuts ({drift.common.n_resid} out-of-sample "
           "residuals)" if drift.common.n_resid else "one cut: declared drift prior")
    scales = ShockScales(share_sd(cov), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, f_now, 1.0,
                         notes=f"national series: {how}"
                         + (f"; Student t, {drift.tail_df:.0f} df" if drift.tail_df else ""))
    # national totals cannot show which kind of votes remain: a late block unlike
    # anything counted (mail ballots, abroad, sheets under review) stays possible
    brk = drift.shape * (BREAK_MARGIN_SD ** 2 / 2)
    mp, mc = drift.prior_mix()
    shocks = Shocks((cov, cov, zero, zero), (vol_var, vol_var, 0.0, 0.0), (0, 0, 1, 1), 0.0,
                    scales, tail_df=drift.tail_df, break_prob=BREAK_PROB, break_cov=brk,
                    mix_prob=mp, mix_cov=(mc, mc, zero, zero),
                    revision_cov=drift.revision_cov, n_revisions=drift.n_corrections)
    diagnostics: dict[str, object] = {"n_cuts": len(history), "remaining_valid": rest,
                                      "remaining_log_shift": vol_shift,
                                      "remaining_log_sd": float(np.sqrt(vol_var)),
                                      "method": how, "drift": drift.diagnostics}
    return Prepared(now, cells, shocks, diagnostics)


def project_series(
    history: Sequence[tuple[Sequence[float], float]], contest: Contest, *,
    params: ModelParams | None = None, snapshot_id: str = "",
    as_of: datetime | None = None, pairs: tuple[tuple[str, str], ...] = (),
) -> Projection:
    """Project from a series of national totals (see :func:`prepare_series`)."""
    params = params or ModelParams()
    prep = prepare_series(history, contest, params=params)
    return simulate(
        contest, prep.counted, prep.cells, prep.shocks, n_sims=params.n_sims,
        seed=params.seed, levels=params.levels, call_rule=params.call_rule, basis="series",
        snapshot_id=snapshot_id, as_of=as_of,
        parameters=_param_dict(params, None),
        diagnostics=prep.diagnostics, pairs=pairs)
