"""Per-acta projection of the final result (docs/methods.md §2; docs/projection.md).

Every acta of the snapshot is in one of four situations:

* **counted** (*contabilizada*): its votes are known and final;
* **void** (annulled, mesa not installed): no candidate votes;
* **pending** (*pendiente*): nothing is known but its electors (from the roll). Its valid
  votes per elector ρ and candidate shares p are predicted; component *pending at home*
  or *abroad*;
* **at the JEE** (observed, lost, destroyed): its provisional figures, when published,
  are counted as they are, corrected or annulled with the empirical outcome rates of
  :class:`JeeOutcomes`; without figures it is predicted like a pending acta and may be
  annulled. Component *JEE*.

Prediction of a pending acta i (two model regimes, chosen per acta):

* **with a baseline** (the same mesa's earlier result — a first round — joined on
  ``acta_id``): a weighted ridge regression, fitted on the counted actas, of the centred
  log-ratio (CLR) of the candidates' shares on the baseline's bloc shares s_j and
  log s_j (blocs: a mapping of earlier candidates to blocs, a parameter) and an abroad
  intercept; and of the log-odds of valid votes per elector on the baseline's. The
  residuals of the counted actas then give nested area effects (area1 ⊃ area2 ⊃ area3,
  :mod:`escrutinio.projection.effects`): the runoff swing of similar places, learned from
  the count itself and shrunk towards the level above when an area has few counted actas.
* **without a baseline** (no earlier result for that mesa): the same nested effects fitted
  directly on the counted actas' shares and turnout (intercept + abroad). An acta in a
  district with counted actas gets that district's pattern, else its province's, else
  its department's, else the nation's (home or abroad).

Errors (docs/projection.md §Uncertainty): the area effects a pending acta relies on are
estimates (posterior covariance (1 − k)Σ_L, or Σ_L for an area with nothing counted), the
acta itself deviates (Σ_e), and the count's order is not random, so all pending actas of
a group (home / abroad) share one more national shock whose scale comes from the spread
of swing between areas (:func:`national_scale`). Everything is aggregated analytically to
cells (area1 × component × regime) and simulated by :mod:`escrutinio.projection.engine`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
import polars as pl

from escrutinio.countries.peru import COURT_OUTCOMES_2021 as _PE_COURT
from escrutinio.domain import AT_JEE, ActaStatus, Contest
from escrutinio.errors import EscrutinioError
from escrutinio.projection import linalg as la
from escrutinio.projection.effects import HierarchyFit, fit_hierarchy
from escrutinio.projection.engine import (
    Cells,
    LevelVariance,
    Shocks,
    build_cells,
    concat_cells,
    simulate,
)
from escrutinio.projection.result import (
    DEFAULT_CALL_RULE,
    LEVELS,
    CallRule,
    Component,
    Projection,
    ShockScales,
)

_AT_JEE = [s.value for s in AT_JEE]


@dataclass(frozen=True, slots=True)
class JeeOutcomes:
    """What becomes of an acta at the electoral court (JEE), as probabilities.

    Defaults (Peru's pack, :data:`escrutinio.countries.peru.COURT_OUTCOMES_2021`; for
    other countries ``service.review_outcomes`` decides): Peru 2021 runoff, the 1,354
    actas at the JEE in ONPE's per-acta state of 8 June 20:23 (Lima) compared with the
    final per-acta file (15-17 June): 187 annulled
    (13.8%), 910 counted with identical candidate figures (67.2%), 223 counted with
    corrected figures (16.5%; per-candidate change ~ N(0, 21²) votes, from the margin
    change SD of 30 votes), 34 without provisional figures. ``rate_prior_n`` is the
    weight, in actas, of the annulment rate: the rate itself is uncertain from one
    election to the next (2011: 607/4,575 = 13%; 2016: 300/1,637 = 18%; 2021: 222/1,619
    = 14%, unofficial curated counts, docs/methods.md §2), which is drawn as one shared shock.
    """

    p_annulled: float = _PE_COURT.p_annulled  # 187 / 1354
    p_corrected: float = _PE_COURT.p_corrected  # 223 / 1354
    correction_sd: float = _PE_COURT.correction_sd
    rate_prior_n: float = _PE_COURT.rate_prior_n
    source: str = _PE_COURT.source[0]
    #: how far the actas held for review may lean from their unit's counted ones (SD of
    #: the margin's share; Peru 2021: 0.07); None when not measured. Used by the per-unit
    #: projection, where the part of a unit under review is not a place arriving late
    #: (the drift's lumpiness) but sheets scattered over the unit
    lean_margin_sd: float | None = _PE_COURT.lean_margin_sd


@dataclass(frozen=True, slots=True)
class ModelParams:
    """Parameters of a projection. Declared before the count; the replay uses these
    defaults unchanged."""

    n_sims: int = 10_000
    seed: int = 0
    levels: tuple[float, ...] = LEVELS
    call_rule: CallRule = DEFAULT_CALL_RULE
    jee: JeeOutcomes = field(default_factory=JeeOutcomes)
    ridge: float = 1.0  # ridge penalty, in units of "actas" of weight
    min_regression: int = 50  # counted actas with a baseline needed to use the baseline
    #: SD multiplier of the national shock rule (see :func:`national_scale`)
    national_fraction: float = 1.0
    abroad_factor: float = 1.5  # abroad's national shock SD, × home's
    cell_level: str = "area1_code"


@dataclass(frozen=True, slots=True)
class Prepared:
    """Counted votes, cells still to come and shocks: the input of the simulation."""

    counted: np.ndarray
    cells: Cells
    shocks: Shocks
    diagnostics: dict[str, object]


def share_sd(cov: np.ndarray) -> float:
    """A K × K CLR covariance as one SD on the log-odds scale: √(tr Σ · K/(K − 1)) (for
    two candidates, exactly the SD of the log-odds of the first)."""
    k = cov.shape[0]
    return float(np.sqrt(max(0.0, np.trace(cov)) * k / max(1, k - 1)))


def national_scale(share_fit: HierarchyFit, turnout_fit: HierarchyFit,
                   counted_fraction: float, params: ModelParams, level: int = 0,
                   ) -> tuple[np.ndarray, float, float]:
    """Covariance of the national share shock (CLR scale), variance of the turnout one
    (log-odds), and the inflation factor, for the actas predicted by one fit.

    The non-random order of a count shows up as the pending actas, *as a whole*, swinging
    differently from what the counted actas of the same places predict. One snapshot
    cannot show that shift; the model sizes it by what the snapshot can show — how much
    the swing (the residual after the baseline regression) still differs between area1
    units, as the cluster-sampling variance of a national mean: raw between-area1
    covariance of mean residuals / Kish's effective number of area1 units — and inflates
    it by 1 / counted_fraction while the count is young (half counted: twice the
    variance). ``national_fraction`` scales the SD (1 = this rule as stated).
    """
    infl = 1.0 / max(counted_fraction, 0.05)
    f = params.national_fraction ** 2 * infl

    def one(fit: HierarchyFit) -> np.ndarray:
        if len(fit.levels) <= level or fit.levels[level].n_eff <= 0:
            return np.zeros_like(fit.resid_cov)
        lv = fit.levels[level]
        return lv.raw_cov / lv.n_eff

    return f * one(share_fit), float(f * one(turnout_fit)[0, 0]), infl


def _ridge(x: np.ndarray, y: np.ndarray, w: np.ndarray, lam: float) -> np.ndarray:
    """Weighted ridge regression (no penalty on the first column, the intercept)."""
    w = w / w.mean() if w.size and w.mean() > 0 else w
    xw = x * w[:, None]
    # einsum, not BLAS: small Gram matrices, and threaded BLAS stalls beside polars
    a = np.einsum("ni,nj->ij", xw, x)
    pen = np.full(x.shape[1], lam)
    pen[0] = 0.0
    a[np.diag_indices_from(a)] += pen
    return np.linalg.solve(a + 1e-9 * np.eye(x.shape[1]), np.einsum("ni,nj->ij", xw, y))


def _impute_electors(electors: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """Electors of each acta; a missing value gets the mean of its area3, else area2,
    else area1, else the nation."""
    e = np.where(np.isfinite(electors) & (electors > 0), electors, np.nan)
    ok = ~np.isnan(e)
    if ok.all():
        return e
    out = e.copy()
    for g in reversed(list(groups)):
        s = np.bincount(g, weights=np.where(ok, e, 0.0))
        n = np.bincount(g, weights=ok.astype(float))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)
        fill = np.isnan(out) & ~np.isnan(mean[g])
        out[fill] = mean[g][fill]
    nat = float(np.nanmean(e)) if ok.any() else 0.0
    return np.where(np.isnan(out), nat, out)


@dataclass(frozen=True, slots=True)
class Baseline:
    """An earlier result per acta (or per unit) turned into model features once:
    ``frame`` has the key column, ``__f0..`` (bloc shares then log shares) and ``__tb``
    (log-odds of valid votes per elector, null when electors are unknown)."""

    key: str
    frame: pl.DataFrame
    blocs: tuple[str, ...]
    n_features: int


def prepare_baseline(baseline: pl.DataFrame, blocs: Mapping[str, Sequence[str]] | None = None,
                     *, key: str = "acta_id") -> Baseline:
    """Bloc shares (+ log shares) and the log-odds of valid votes per elector of an
    earlier result. ``blocs``: bloc name -> baseline candidate columns (``v_x`` or ``x``);
    default: every baseline candidate its own bloc. Rows without valid votes are
    dropped (no usable baseline)."""
    bcols = [c for c in baseline.columns if c.startswith("v_")]
    if not bcols:
        raise ValueError("the baseline frame has no candidate columns (v_*)")
    if blocs is None:
        blocs = {c[2:]: [c] for c in bcols}
    bl = {name: [c if c.startswith("v_") else f"v_{c}" for c in cols]
          for name, cols in blocs.items()}
    missing = sorted({c for cols in bl.values() for c in cols} - set(bcols))
    if missing:
        raise ValueError(f"bloc columns not in the baseline: {missing}")
    bv = pl.sum_horizontal([pl.col(c).fill_null(0) for c in bcols]).cast(pl.Float64)
    shares = [(pl.sum_horizontal([pl.col(c).fill_null(0) for c in cols]).cast(pl.Float64)
               / bv) for cols in bl.values()]
    has_e = "electors" in baseline.columns
    e = pl.col("electors").cast(pl.Float64) if has_e else pl.lit(None, pl.Float64)
    rate = ((bv + 0.5) / (e + 1.0)).clip(1e-4, 1 - 1e-4)
    nb = len(bl)
    f = baseline.filter(bv > 0).select(
        pl.col(key),
        *[sh.alias(f"__f{i}") for i, sh in enumerate(shares)],
        *[(sh + 0.005).log().alias(f"__f{nb + i}") for i, sh in enumerate(shares)],
        pl.when(e > 0).then((rate / (1 - rate)).log()).otherwise(None).alias("__tb"),
    ).unique(key, keep="first")
    return Baseline(key, f, tuple(bl), 2 * nb)


def _align_baseline(df: pl.DataFrame, base: Baseline, key: str = "acta_id"
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features (N × F), turnout feature (N,), has-shares and has-turnout flags."""
    j = df.select(pl.col(key)).join(base.frame.rename({base.key: key}), on=key, how="left")
    feats = j.select([f"__f{i}" for i in range(base.n_features)]).to_numpy()
    ok = ~np.isnan(feats).any(axis=1)
    tb = j["__tb"].to_numpy().astype(float)
    ok_t = ok & ~np.isnan(tb)
    return np.nan_to_num(feats), np.nan_to_num(tb), ok, ok_t


@dataclass(frozen=True, slots=True)
class _Regime:
    name: str
    share_beta: np.ndarray
    turn_beta: np.ndarray
    share_fit: HierarchyFit
    turn_fit: HierarchyFit
    n_train: int


def _fit_regime(name: str, xs: np.ndarray, xt: np.ndarray, ys: np.ndarray, yt: np.ndarray,
                ws: np.ndarray, wt: np.ndarray, groups: list[np.ndarray],
                lam: float, keys: Sequence[str] = ("area1", "area2", "area3")) -> _Regime:
    bs = _ridge(xs, ys, ws, lam)
    bt = _ridge(xt, yt[:, None], wt, lam)
    sf = fit_hierarchy(ys - xs @ bs, ws, groups, list(keys))
    tf = fit_hierarchy(yt[:, None] - xt @ bt, wt, groups, list(keys))
    return _Regime(name, bs, bt, sf, tf, xs.shape[0])


def nested_codes(df: pl.DataFrame, columns: Sequence[str]) -> list[np.ndarray]:
    """Integer codes of nested areas (each level made unique within its parents), for
    grouping: the dense rank of each level combined with its parent's code."""
    ranks = df.select([pl.col(c).cast(pl.String).fill_null("?").rank("dense")
                       .cast(pl.Int64).alias(c) for c in columns])
    out: list[np.ndarray] = []
    acc: np.ndarray | None = None
    for c in columns:
        r = ranks[c].to_numpy()
        if acc is None:
            acc = r
        else:
            acc = acc * (int(r.max()) + 1) + r
            _, acc = la.dense_ids(acc)
            acc = acc.astype(np.int64)
        out.append(acc)
    return out


def _held_sheets_lean(cells: Cells, lean_margin_sd: float, k: int) -> Cells:
    """Sheets held for review without figures are scattered over their areas, not the
    count's next arrivals: where the country has measured how far such sheets lean from
    the rest (:attr:`JeeOutcomes.lean_margin_sd`), that lean is their shared deviation in
    each cell, instead of the national arrival shocks (share and turnout) — as per unit
    (``projection/units.py``). Unmeasured (None): the national shocks stay."""
    held = cells.component == Component.JEE.value
    if not held.any():
        return cells
    lean = la.isotropic_clr_cov(k, 2.0 * lean_margin_sd)  # margin share → log-odds
    cov = cells.cov.copy()
    cov[held] += np.einsum("cij,jk,clk->cil", cells.G[held], lean, cells.G[held])
    g = cells.G.copy()
    g[held] = 0.0
    u = cells.u.copy()
    u[held] = 0.0
    return replace(cells, G=g, u=u, cov=cov)


def make_shocks(regimes: Mapping[str, _Regime], counted_fraction: float, params: ModelParams,
                jee: JeeOutcomes, fine_level: int,
                extra_without: tuple[np.ndarray, float] | None = None) -> Shocks:
    """Shock list in the order of :func:`engine.build_cells` (index 2·group + regime:
    0/2 with baseline, 1/3 without) and the scales reported. ``extra_without``: added
    share covariance and turnout variance of the national shock of the items without a
    baseline (see :func:`prepare_actas`)."""
    ref = regimes.get("B", regimes["N"])
    # with a baseline: the swing's spread between area1 units; without any baseline
    # there is no swing, only levels, whose spread between regions is geography, not
    # error: the rule then uses the finest area level
    cs, ct, infl = national_scale(ref.share_fit, ref.turn_fit, counted_fraction, params,
                                  level=0 if ref.name == "B" else fine_level)
    ab2 = params.abroad_factor ** 2
    xs, xt = extra_without if extra_without is not None else (np.zeros_like(cs), 0.0)
    share_l = (cs, cs + xs, cs * ab2, (cs + xs) * ab2)
    turn_l = (ct, ct + xt, ct * ab2, (ct + xt) * ab2)
    jee_sd = float(np.sqrt(jee.p_annulled * (1 - jee.p_annulled) / (jee.rate_prior_n + 1)))
    sf = ref.share_fit
    lv_sd = [share_sd(lv.cov) for lv in sf.levels] + [0.0] * (3 - len(sf.levels))
    scales = ShockScales(
        national_share=share_sd(cs), national_turnout=float(np.sqrt(ct)),
        abroad_share=share_sd(cs * ab2), area1_share=lv_sd[0], area2_share=lv_sd[1],
        area3_share=lv_sd[2], acta_share=share_sd(sf.resid_cov),
        counted_fraction=counted_fraction, inflation=infl,
        notes=("national scale from the swing between area1 units (baseline regression)"
               if ref.name == "B" else "no baseline: national scale from the spread "
               "between the finest areas")
        + (f"; actas without a baseline: + {share_sd(xs):.4f} (gap between the "
           "geography-only and the baseline model on pending actas with a baseline)"
           if extra_without is not None else ""),
    )
    return Shocks(share_l, turn_l, (0, 0, 1, 1), jee_sd, scales)


#: prior SD (log-odds between any two candidates) of the lean of a vote type with nothing
#: counted yet (mail ballots, early votes, abroad or observed sheets published as their own
#: rows), per acta and per unit: the RMS lean of late blocks measured on real counts,
#: 0.66 over 26 comparisons (``validation/late_lean.py``: US 2020 states' last 5% of
#: votes 0.61 over 24, Peru 2021 runoff abroad v home 0.69, Peru 2021 first round abroad
#: v home, top four pairwise, 1.32), rounded; a test pins it to that measurement
PRIOR_TYPE_SD = 0.7
PRIOR_TYPE_TURNOUT_SD = 0.2


def _type_level(type_idx: np.ndarray, idx: np.ndarray, train: np.ndarray,
                reg_list: Sequence[_Regime], k: int, area: np.ndarray) -> LevelVariance:
    """One shared effect per vote type, for the items ``idx`` still to come: prior SD
    :data:`PRIOR_TYPE_SD` for a type with nothing counted; for a type with counted items,
    the standard error of its mean over the (finest) areas that counted it."""
    n_types = int(type_idx.max()) + 1
    pairs = np.unique(np.column_stack([type_idx[train], area[train]]), axis=0)
    seen = np.bincount(pairs[:, 0], minlength=n_types).astype(float) if pairs.size \
        else np.zeros(n_types)
    sd_u = max(share_sd(reg_list[-1].share_fit.levels[-1].cov), 0.05)
    f_type = np.where(seen > 0, (sd_u / PRIOR_TYPE_SD) ** 2 / np.maximum(seen, 1.0), 1.0)
    prior = la.isotropic_clr_cov(k, PRIOR_TYPE_SD)
    ti = type_idx[idx]
    return LevelVariance(ti, f_type[ti], f_type[ti], (prior, prior),
                         (PRIOR_TYPE_TURNOUT_SD ** 2,) * 2)


def prepare_actas(
    actas: pl.DataFrame, contest: Contest, *,
    baseline: pl.DataFrame | Baseline | None = None,
    blocs: Mapping[str, Sequence[str]] | None = None, params: ModelParams | None = None,
) -> Prepared:
    """Fit the model on the counted actas and reduce what is to come to cells."""
    params = params or ModelParams()
    cols = contest.candidate_columns
    k = len(cols)
    jee = params.jee
    df = actas
    n = df.height
    status = df["status"].to_numpy()
    votes = df.select([pl.col(c).cast(pl.Float64) for c in cols]).to_numpy()
    has_fig = ~np.isnan(votes).any(axis=1)
    votes0 = np.nan_to_num(votes)
    counted_mask = status == ActaStatus.COUNTED.value
    jee_mask = np.isin(status, _AT_JEE)
    pending_mask = status == ActaStatus.PENDING.value
    abroad = df["abroad"].fill_null(False).to_numpy().astype(bool)
    a1, a2, a3 = nested_codes(df, ["area1_code", "area2_code", "area3_code"])
    raw_electors = df["electors"].cast(pl.Float64).to_numpy().astype(float)
    if not (np.isfinite(raw_electors) & (raw_electors > 0)).any():
        if not (jee_mask | pending_mask).any():
            raise EscrutinioError(
                "todas las actas están contabilizadas: el resultado es el conteo "
                "(escrutinio status), no queda nada que proyectar",
                "every acta is counted: the result is the count (escrutinio status), there is "
                "nothing left to project")
        raise EscrutinioError(
            "no hay electores hábiles por acta: sin ellos no se pueden proyectar las actas "
            "pendientes (use la proyección por unidades o indique electors)",
            "no electors per acta: pending actas cannot be projected without them (use the "
            "per-unit projection or provide electors)")
    electors = _impute_electors(raw_electors, (a1, a2, a3))
    counted_votes = votes0[counted_mask].sum(axis=0)

    valid = votes0.sum(axis=1)
    train = counted_mask & (electors > 0) & has_fig
    ys = la.clr(votes0)
    yt = la.logit(np.clip((valid + 0.5) / (electors + 1.0), 1e-4, 1 - 1e-4))
    ws = np.maximum(valid, 1.0)
    wt = np.maximum(electors, 1.0)
    ab = abroad.astype(float)
    ones = np.ones(n)
    # vote types (election day, mail...; a ``vote_type`` column): one intercept per type
    # besides the largest; a type with nothing counted gets a wide shared prior below
    types = (df["vote_type"].cast(pl.String).fill_null("").to_list()
             if "vote_type" in df.columns else [""] * n)
    type_names = sorted(set(types), key=lambda t: -float(
        electors[[x == t for x in types]].sum()))
    type_idx = np.array([type_names.index(t) for t in types], dtype=np.int64)
    tx = (type_idx[:, None] == np.arange(1, len(type_names))[None]).astype(float)
    xd = np.column_stack([ones, ab, tx])

    regimes: dict[str, _Regime] = {}
    regime_of = np.zeros(n, dtype=np.int64)  # 0 with baseline, 1 without
    feats = tb = None
    bloc_names: tuple[str, ...] = ()
    if baseline is not None:
        base = baseline if isinstance(baseline, Baseline) else prepare_baseline(baseline, blocs)
        bloc_names = base.blocs
        feats, tb, base_ok, base_ok_t = _align_baseline(df, base)
        base_ok &= base_ok_t
        tr_b = train & base_ok
        if tr_b.sum() >= params.min_regression:
            xs_all = np.column_stack([xd, feats])
            xt_all = np.column_stack([xd, tb])
            regimes["B"] = _fit_regime(
                "B", xs_all[tr_b], xt_all[tr_b], ys[tr_b], yt[tr_b], ws[tr_b], wt[tr_b],
                [a1[tr_b], a2[tr_b], a3[tr_b]], params.ridge)
            regime_of = np.where(base_ok, 0, 1)
        else:
            regime_of = np.ones(n, dtype=np.int64)
    else:
        regime_of = np.ones(n, dtype=np.int64)
    x_n = xd
    regimes["N"] = _fit_regime("N", x_n[train], x_n[train], ys[train], yt[train], ws[train],
                               wt[train], [a1[train], a2[train], a3[train]], params.ridge)
    reg_list = [regimes.get("B", regimes["N"]), regimes["N"]]

    # --- items to predict: pending actas, and actas at the JEE without figures
    predict = pending_mask | (jee_mask & ~has_fig)
    comp = np.where(jee_mask, Component.JEE.value,
                    np.where(abroad, Component.ABROAD.value, Component.PENDING_HOME.value))
    idx = np.flatnonzero(predict)
    z_hat = np.zeros((idx.size, k))
    t_hat = np.zeros(idx.size)
    f_share = np.ones((idx.size, 3))
    f_turn = np.ones((idx.size, 3))
    reg_i = regime_of[idx]
    for r, reg in enumerate(reg_list):
        sel = reg_i == r
        if not sel.any():
            continue
        rows = idx[sel]
        if r == 0:
            assert feats is not None and tb is not None
            xs = np.column_stack([xd[rows], feats[rows]])
            xt = np.column_stack([xd[rows], tb[rows]])
        else:
            xs = xt = x_n[rows]
        grp = [a1[rows], a2[rows], a3[rows]]
        eff_s, fac_s = reg.share_fit.predict(grp)
        eff_t, fac_t = reg.turn_fit.predict(grp)
        z_hat[sel] = xs @ reg.share_beta + eff_s
        t_hat[sel] = (xt @ reg.turn_beta)[:, 0] + eff_t[:, 0]
        f_share[sel] = np.column_stack(fac_s)
        f_turn[sel] = np.column_stack(fac_t)

    # The geography-only model (N) cannot see selection inside an area. On the pending
    # actas that do have a baseline, compare its prediction with the baseline model's:
    # the vote-weighted mean gap δ says how far N is off there; nothing says it is off
    # less (or in the same direction) on the actas without a baseline, so δδᵀ is added to
    # the national shock of those actas (a variance, not a shift).
    extra_without = None
    with_b = idx[reg_i == 0]
    if "B" in regimes and with_b.size and (reg_i == 1).any():
        rn = regimes["N"]
        grp = [a1[with_b], a2[with_b], a3[with_b]]
        z_n = x_n[with_b] @ rn.share_beta + rn.share_fit.predict(grp)[0]
        t_n = (x_n[with_b] @ rn.turn_beta)[:, 0] + rn.turn_fit.predict(grp)[0][:, 0]
        wv = electors[with_b]
        gap_z = ((z_n - z_hat[reg_i == 0]) * wv[:, None]).sum(0) / wv.sum()
        gap_t = float(((t_n - t_hat[reg_i == 0]) * wv).sum() / wv.sum())
        extra_without = (np.outer(gap_z, gap_z), gap_t ** 2)

    rho = la.expit(t_hat)
    p = la.softmax(z_hat)
    is_jee = jee_mask[idx]
    scale = np.where(is_jee, 1.0 - jee.p_annulled, 1.0)
    v = electors[idx] * rho * scale
    cell_area = nested_codes(df, [params.cell_level])[0]
    levels = [
        LevelVariance(codes[idx], f_share[:, i], f_turn[:, i],
                      tuple(rg.share_fit.levels[i].cov for rg in reg_list),
                      tuple(float(rg.turn_fit.levels[i].cov[0, 0]) for rg in reg_list))
        for i, codes in enumerate((a1, a2, a3))
    ]
    if len(type_names) > 1:
        levels.append(_type_level(type_idx, idx, train, reg_list, k, a3))
        cell_area = type_idx  # one type's shared effect must stay within one cell
    parts = [build_cells(
        v=v, p=p, tder=1.0 - rho, component=comp[idx], regime=reg_i, cell=cell_area[idx],
        group=abroad[idx].astype(np.int64), levels=levels,
        noise_share=tuple(rg.share_fit.resid_cov for rg in reg_list),
        noise_turn=tuple(float(rg.turn_fit.resid_cov[0, 0]) for rg in reg_list),
        cap=electors[idx], jee=is_jee, p_annulled=jee.p_annulled,
        jee_scale=1.0 / scale)]
    if jee.lean_margin_sd is not None:
        parts[0] = _held_sheets_lean(parts[0], jee.lean_margin_sd, k)

    # --- actas at the JEE with provisional figures: as is, corrected or annulled
    fig = jee_mask & has_fig
    if fig.any():
        fidx = np.flatnonzero(fig)
        ukey, inv = la.dense_ids(cell_area[fidx])
        nc = ukey.size
        vv = votes0[fidx]
        cov = la.group_outer(vv, np.full(fidx.size, jee.p_annulled * (1 - jee.p_annulled)),
                             inv, nc)
        cov += (np.bincount(inv, minlength=nc) * jee.p_corrected * jee.correction_sd**2
                )[:, None, None] * np.eye(k)[None]
        tot = la.group_sum(vv, inv, nc)
        el = la.group_sum(np.maximum(electors[fidx], vv.sum(1)), inv, nc)
        parts.append(Cells(
            (1 - jee.p_annulled) * tot, np.zeros((nc, k, k)), np.zeros((nc, k)), cov,
            np.repeat(el[:, None], k, axis=1), np.zeros(nc, dtype=np.int64),
            np.full(nc, Component.JEE.value, dtype=object), tot,
            np.bincount(inv, minlength=nc)))
    cells = concat_cells(parts, k)

    expected_rest = cells.m.sum() if cells.m.size else 0.0
    counted_fraction = float(counted_votes.sum() / max(1.0, counted_votes.sum()
                                                        + expected_rest))
    shocks = make_shocks(regimes, counted_fraction, params, jee, fine_level=2,
                         extra_without=extra_without)
    point = counted_votes + (cells.m.sum(0) if cells.m.size else 0.0)
    diagnostics: dict[str, object] = {
        "n_actas": n, "n_counted": int(counted_mask.sum()),
        "n_pending": int(pending_mask.sum()), "n_jee": int(jee_mask.sum()),
        "n_jee_with_figures": int(fig.sum()),
        "n_predicted_with_baseline": int((reg_i == 0).sum()) if "B" in regimes else 0,
        "n_predicted_without_baseline": int((reg_i == 1).sum()) if "B" in regimes
        else int(idx.size),
        "n_train": {r: reg.n_train for r, reg in regimes.items()},
        "blocs": list(bloc_names),
        "expected_votes_point": {c.code: float(point[j])
                                 for j, c in enumerate(contest.candidates)},
    }
    return Prepared(counted_votes, cells, shocks, diagnostics)


def project_actas(
    actas: pl.DataFrame, contest: Contest, *,
    baseline: pl.DataFrame | Baseline | None = None,
    blocs: Mapping[str, Sequence[str]] | None = None, params: ModelParams | None = None,
    snapshot_id: str = "", as_of: datetime | None = None,
    pairs: tuple[tuple[str, str], ...] = (),
    baseline_snapshot_id: str = "",
) -> Projection:
    """Project the final result from a canonical acta frame (see the module docstring).

    ``baseline``: an earlier election's canonical acta frame for the same mesas (joined
    on ``acta_id``); ``blocs``: current-or-bloc name -> baseline candidate columns
    (default: every baseline candidate its own bloc)."""
    params = params or ModelParams()
    prep = prepare_actas(actas, contest, baseline=baseline, blocs=blocs, params=params)
    ids = tuple(x for x in (snapshot_id, baseline_snapshot_id) if x)
    proj = simulate(
        contest, prep.counted, prep.cells, prep.shocks, n_sims=params.n_sims,
        seed=params.seed, levels=params.levels, call_rule=params.call_rule, basis="actas",
        snapshot_id=snapshot_id, as_of=as_of,
        parameters=_param_dict(params, blocs), diagnostics=prep.diagnostics, pairs=pairs)
    if len(ids) > 1:
        from dataclasses import replace

        proj = replace(proj, provenance=replace(proj.provenance, snapshot_ids=ids))
    return proj


def _param_dict(params: ModelParams, blocs: Mapping[str, Sequence[str]] | None
                ) -> dict[str, object]:
    return {
        "n_sims": params.n_sims, "levels": list(params.levels),
        "call_rule": {"min_probability": params.call_rule.min_probability,
                      "interval_level": params.call_rule.interval_level},
        "jee": {"p_annulled": params.jee.p_annulled, "p_corrected": params.jee.p_corrected,
                "correction_sd": params.jee.correction_sd,
                "rate_prior_n": params.jee.rate_prior_n,
                "lean_margin_sd": params.jee.lean_margin_sd},
        "ridge": params.ridge, "min_regression": params.min_regression,
        "national_fraction": params.national_fraction,
        "abroad_factor": params.abroad_factor, "cell_level": params.cell_level,
        "blocs": None if blocs is None else {k: list(v) for k, v in blocs.items()},
    }
