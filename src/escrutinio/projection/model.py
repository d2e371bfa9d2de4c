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
a group (home / abroad) share one more national shock. With one snapshot its scale comes
from the spread of swing between areas (:func:`national_scale`); with the count's earlier
per-acta snapshots (``history``) it is learned from the count itself: the model is
replayed at earlier cuts and its out-of-sample miss on the actas counted since, beyond its
own area and acta terms, sizes the shock (:func:`fit_arrival`). Everything is aggregated
analytically to cells (area1 × component × regime) and simulated by
:mod:`escrutinio.projection.engine`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
import polars as pl

from escrutinio.countries.peru import COURT_OUTCOMES_2021 as _PE_COURT
from escrutinio.domain import AT_JEE, ActaStatus, Contest
from escrutinio.errors import EscrutinioError
from escrutinio.projection import linalg as la
from escrutinio.projection.drift import MIN_TAIL_DF, PRIOR_WEIGHT
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
    j = df.select(pl.col(key)).join(base.frame.rename({base.key: key}), on=key, how="left",
                                    maintain_order="left")
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


#: fits of the earlier cuts replayed by :func:`fit_arrival`, by the digest of their exact
#: inputs: in a replay, or on a count night, the same earlier cut is refitted for every
#: later one (content-addressed: equal inputs, equal fit)
_FIT_CACHE: OrderedDict[bytes, _Regime] = OrderedDict()
_FIT_CACHE_SIZE = 64
_FIT_CACHE_LOCK = threading.Lock()


def _fit_regime_cached(name: str, xs: np.ndarray, xt: np.ndarray, ys: np.ndarray,
                       yt: np.ndarray, ws: np.ndarray, wt: np.ndarray,
                       groups: list[np.ndarray], lam: float) -> _Regime:
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{name}|{lam!r}|{xs.shape}|{xt.shape}|{ys.shape}".encode())
    for a in (xs, xt, ys, yt, ws, wt, *groups):
        h.update(np.ascontiguousarray(a).data)
    key = h.digest()
    with _FIT_CACHE_LOCK:
        got = _FIT_CACHE.get(key)
        if got is not None:
            _FIT_CACHE.move_to_end(key)
            return got
    fit = _fit_regime(name, xs, xt, ys, yt, ws, wt, groups, lam)
    with _FIT_CACHE_LOCK:
        _FIT_CACHE[key] = fit
        while len(_FIT_CACHE) > _FIT_CACHE_SIZE:
            _FIT_CACHE.popitem(last=False)
    return fit


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


@dataclass(frozen=True, slots=True)
class _Inputs:
    """The arrays of one per-acta snapshot the model reads (built once per projection)."""

    n: int
    k: int
    votes0: np.ndarray  # (N, K) candidate votes, 0 where unknown
    has_fig: np.ndarray
    counted: np.ndarray
    jee: np.ndarray
    pending: np.ndarray
    abroad: np.ndarray
    areas: tuple[np.ndarray, np.ndarray, np.ndarray]
    electors: np.ndarray
    train: np.ndarray  # counted actas the model may learn from
    ys: np.ndarray
    yt: np.ndarray
    ws: np.ndarray
    wt: np.ndarray
    xd: np.ndarray  # design without the baseline: intercept, abroad, vote types
    type_names: list[str]
    type_idx: np.ndarray
    feats: np.ndarray | None
    tb: np.ndarray | None
    base_ok: np.ndarray | None
    bloc_names: tuple[str, ...]
    xs_b: np.ndarray | None = None  # designs with the baseline (share, turnout)
    xt_b: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class _Fitted:
    """The model fitted on some counted actas, and its point predictions for ``idx``."""

    regimes: dict[str, _Regime]
    reg_list: list[_Regime]
    idx: np.ndarray
    reg_i: np.ndarray
    z_hat: np.ndarray
    t_hat: np.ndarray
    f_share: np.ndarray
    f_turn: np.ndarray
    extra_without: tuple[np.ndarray, float] | None


def _inputs(df: pl.DataFrame, contest: Contest, baseline: pl.DataFrame | Baseline | None,
            blocs: Mapping[str, Sequence[str]] | None) -> _Inputs:
    cols = contest.candidate_columns
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
    valid = votes0.sum(axis=1)
    train = counted_mask & (electors > 0) & has_fig
    ys = la.clr(votes0)
    yt = la.logit(np.clip((valid + 0.5) / (electors + 1.0), 1e-4, 1 - 1e-4))
    # vote types (election day, mail...; a ``vote_type`` column): one intercept per type
    # besides the largest; a type with nothing counted gets a wide shared prior
    types = (df["vote_type"].cast(pl.String).fill_null("").to_list()
             if "vote_type" in df.columns else [""] * n)
    type_names = sorted(set(types), key=lambda t: -float(
        electors[[x == t for x in types]].sum()))
    type_idx = np.array([type_names.index(t) for t in types], dtype=np.int64)
    tx = (type_idx[:, None] == np.arange(1, len(type_names))[None]).astype(float)
    xd = np.column_stack([np.ones(n), abroad.astype(float), tx])
    feats = tb = base_ok = None
    bloc_names: tuple[str, ...] = ()
    if baseline is not None:
        base = baseline if isinstance(baseline, Baseline) else prepare_baseline(baseline, blocs)
        bloc_names = base.blocs
        feats, tb, base_ok, base_ok_t = _align_baseline(df, base)
        base_ok = base_ok & base_ok_t
    return _Inputs(n, len(cols), votes0, has_fig, counted_mask, jee_mask, pending_mask, abroad,
                   (a1, a2, a3), electors, train, ys, yt, np.maximum(valid, 1.0),
                   np.maximum(electors, 1.0), xd, type_names, type_idx, feats, tb, base_ok,
                   bloc_names,
                   None if feats is None else np.column_stack([xd, feats]),
                   None if tb is None else np.column_stack([xd, tb]))


def _fit_predict(inp: _Inputs, train: np.ndarray, idx: np.ndarray, params: ModelParams,
                 *, always_n: bool = True, cached: bool = False) -> _Fitted:
    """Fit both regimes on the actas ``train`` and predict the actas ``idx``
    (``always_n=False``: the regime without baseline only if some of ``idx`` need it;
    ``cached``: reuse a fit of exactly the same inputs)."""
    fit_regime = _fit_regime_cached if cached else _fit_regime
    a1, a2, a3 = inp.areas
    xd = inp.xd
    regimes: dict[str, _Regime] = {}
    regime_of = np.ones(inp.n, dtype=np.int64)  # 0 with baseline, 1 without
    if inp.xs_b is not None and inp.xt_b is not None and inp.base_ok is not None:
        tr_b = train & inp.base_ok
        if tr_b.sum() >= params.min_regression:
            regimes["B"] = fit_regime(
                "B", inp.xs_b[tr_b], inp.xt_b[tr_b], inp.ys[tr_b], inp.yt[tr_b], inp.ws[tr_b],
                inp.wt[tr_b], [a1[tr_b], a2[tr_b], a3[tr_b]], params.ridge)
            regime_of = np.where(inp.base_ok, 0, 1)
    if always_n or "B" not in regimes or (regime_of[idx] == 1).any():
        regimes["N"] = fit_regime("N", xd[train], xd[train], inp.ys[train], inp.yt[train],
                                  inp.ws[train], inp.wt[train],
                                  [a1[train], a2[train], a3[train]], params.ridge)
    reg_list = [regimes["B"] if "B" in regimes else regimes["N"],
                regimes["N"] if "N" in regimes else regimes["B"]]
    k = inp.k
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
            assert inp.xs_b is not None and inp.xt_b is not None
            xs, xt = inp.xs_b[rows], inp.xt_b[rows]
        else:
            xs = xt = xd[rows]
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
        z_n = xd[with_b] @ rn.share_beta + rn.share_fit.predict(grp)[0]
        t_n = (xd[with_b] @ rn.turn_beta)[:, 0] + rn.turn_fit.predict(grp)[0][:, 0]
        wv = inp.electors[with_b]
        gap_z = ((z_n - z_hat[reg_i == 0]) * wv[:, None]).sum(0) / wv.sum()
        gap_t = float(((t_n - t_hat[reg_i == 0]) * wv).sum() / wv.sum())
        extra_without = (np.outer(gap_z, gap_z), gap_t ** 2)
    return _Fitted(regimes, reg_list, idx, reg_i, z_hat, t_hat, f_share, f_turn, extra_without)


def _predicted_cells(inp: _Inputs, fit: _Fitted, train: np.ndarray, comp: np.ndarray,
                     is_jee: np.ndarray, jee: JeeOutcomes, cell_area: np.ndarray) -> Cells:
    """The predicted actas ``fit.idx`` reduced to cells (see :func:`engine.build_cells`)."""
    idx = fit.idx
    rho = la.expit(fit.t_hat)
    p = la.softmax(fit.z_hat)
    scale = np.where(is_jee, 1.0 - jee.p_annulled, 1.0)
    v = inp.electors[idx] * rho * scale
    levels = [
        LevelVariance(codes[idx], fit.f_share[:, i], fit.f_turn[:, i],
                      tuple(rg.share_fit.levels[i].cov for rg in fit.reg_list),
                      tuple(float(rg.turn_fit.levels[i].cov[0, 0]) for rg in fit.reg_list))
        for i, codes in enumerate(inp.areas)
    ]
    if len(inp.type_names) > 1:
        levels.append(_type_level(inp.type_idx, idx, train, fit.reg_list, inp.k,
                                  inp.areas[2]))
    return build_cells(
        v=v, p=p, tder=1.0 - rho, component=comp, regime=fit.reg_i, cell=cell_area[idx],
        group=inp.abroad[idx].astype(np.int64), levels=levels,
        noise_share=tuple(rg.share_fit.resid_cov for rg in fit.reg_list),
        noise_turn=tuple(float(rg.turn_fit.resid_cov[0, 0]) for rg in fit.reg_list),
        cap=inp.electors[idx], jee=is_jee, p_annulled=jee.p_annulled,
        jee_scale=1.0 / scale)


#: the arrival shock learned from the count's earlier per-acta cuts (docs/projection.md
#: §3): at most this many earlier cuts are replayed (spread over the history) ...
MAX_BACKTESTS = 8
#: ... each with at least this many counted actas to learn from, and a batch arriving after
#: it of at least this many actas holding at least this share of the counted votes
MIN_BACKTEST_TRAIN = 50
MIN_BACKTEST_BATCH = 20
MIN_BACKTEST_SHARE = 0.01
#: weight, in earlier cuts, of the single-snapshot rule (:func:`national_scale`) beside
#: what the earlier cuts show: the drift's prior weight, one declared value for both
ARRIVAL_PRIOR_WEIGHT = PRIOR_WEIGHT


@dataclass(frozen=True, slots=True)
class ArrivalFit:
    """What the count's earlier cuts say about the arrival shock of the per-acta model:
    for each earlier cut replayed, the national shift (CLR, K) and turnout shift that
    would explain how the actas counted since then differed from what the model, fitted
    on that cut, predicted — each beyond what the model's own area and acta terms allow
    (the *excess*, an estimate of the shock's covariance)."""

    share_excess: tuple[np.ndarray, ...]
    turnout_excess: tuple[float, ...]
    weights: tuple[float, ...]  # votes of each batch
    cut_index: tuple[int, ...]
    #: how much further along the arrival order the remainder sits than each batch did
    #: (gap of mean arrival positions, remainder over batch, at least 1; the excess is ×
    #: its square)
    gap_ratio: tuple[float, ...] = ()

    @property
    def n(self) -> int:
        return len(self.share_excess)

    def mean_share_excess(self) -> np.ndarray:
        """The batches' share excess, vote-weighted (K × K; may be indefinite)."""
        w = np.asarray(self.weights, dtype=float)
        return np.einsum("j,jab->ab", w / w.sum(), np.stack(self.share_excess))

    def mean_turnout_excess(self) -> float:
        w = np.asarray(self.weights, dtype=float)
        return float((w / w.sum()) @ np.asarray(self.turnout_excess, dtype=float))


#: at most this many earlier per-acta snapshots are read as history (every caller: the
#: service, the replays, the validation), chosen by :func:`spread_indices`
MAX_ACTA_HISTORY = 12


def spread_indices(n: int, k: int) -> list[int]:
    """At most ``k`` of the indices 0..n−1, spread over them: every s-th from the first
    (s = ⌈(n − 1)/(k − 1)⌉) and always the last. Mostly the same indices from one n to the
    next (the fits of those cuts are reused, :func:`_fit_regime_cached`)."""
    if n <= k:
        return list(range(n))
    step = -(-(n - 1) // (k - 1))
    return sorted({*range(0, n - 1, step), n - 1})[-k:] if k > 1 else [n - 1]


def arrival_rank(df: pl.DataFrame, history: Sequence[pl.DataFrame]) -> np.ndarray:
    """For each acta of ``df``: the index of the first earlier snapshot (oldest first) in
    which it was already counted; ``len(history)`` if it was not counted in any."""
    counted = ActaStatus.COUNTED.value
    parts = [h.select(pl.col("acta_id").cast(pl.String)).filter(
        h["status"].cast(pl.String) == counted).with_columns(pl.lit(j, pl.Int64).alias("__j"))
        for j, h in enumerate(history)]
    first = (pl.concat(parts).group_by("acta_id").agg(pl.col("__j").min()) if parts
             else pl.DataFrame({"acta_id": [], "__j": []},
                               schema={"acta_id": pl.String, "__j": pl.Int64}))
    j = df.select(pl.col("acta_id").cast(pl.String)).join(first, on="acta_id", how="left",
                                                          maintain_order="left")
    return j["__j"].fill_null(len(history)).to_numpy().astype(np.int64)


def fit_arrival(inp: _Inputs, rank: np.ndarray, n_history: int, params: ModelParams
                ) -> ArrivalFit:
    """Replay the model at earlier cuts of this count (:data:`MAX_BACKTESTS`, spread over
    those with enough counted actas and a large enough batch since) and measure, out of
    sample, the shared shift of the home actas counted since each (see
    :class:`ArrivalFit`). Abroad is not part of the batches (it keeps the declared
    ``abroad_factor`` times home's shock)."""
    # the batches: home actas (and, with a baseline, those that have one: the shock of
    # the actas without keeps the gap term on top, see make_shocks)
    home_train = inp.train & ~inp.abroad
    if inp.base_ok is not None and (inp.train & inp.base_ok).sum() >= params.min_regression:
        home_train &= inp.base_ok
    total_now = float(inp.votes0[inp.train].sum())
    elig = []
    for j in range(n_history):
        tr = inp.train & (rank <= j)
        batch = home_train & (rank > j)
        if (tr.sum() >= MIN_BACKTEST_TRAIN and batch.sum() >= MIN_BACKTEST_BATCH
                and inp.votes0[batch].sum() >= MIN_BACKTEST_SHARE * total_now):
            elig.append(j)
    if not elig:
        return ArrivalFit((), (), (), ())
    pick = [elig[i] for i in spread_indices(len(elig), MAX_BACKTESTS)]
    # arrival positions: an acta first counted at cut r sits at the middle of the share of
    # actas counted between cut r − 1 and cut r (the current snapshot is cut n_history)
    f = np.array([(inp.counted & (rank <= r)).sum() for r in range(n_history + 1)],
                 dtype=float) / max(inp.n, 1)
    pos = ((np.concatenate([[0.0], f[:-1]]) + f) / 2)[np.minimum(rank, n_history)]
    wv = inp.votes0.sum(1)

    def mean_pos(mask: np.ndarray) -> float:
        return float((pos[mask] * wv[mask]).sum() / max(wv[mask].sum(), 1.0))

    # what remains sits, on average, halfway between here and the end
    gap_rest = (f[-1] + 1.0) / 2 - mean_pos(inp.train)
    jee_none = replace(params.jee, p_annulled=0.0)
    se: list[np.ndarray] = []
    te: list[float] = []
    wts: list[float] = []
    used: list[int] = []
    gaps: list[float] = []
    for j in pick:
        tr = inp.train & (rank <= j)
        idx = np.flatnonzero(home_train & (rank > j))
        fit = _fit_predict(inp, tr, idx, params, always_n=False, cached=True)
        comp = np.full(idx.size, Component.PENDING_HOME.value, dtype=object)
        cells = _predicted_cells(inp, fit, tr, comp, np.zeros(idx.size, dtype=bool),
                                 jee_none, np.zeros(inp.n, dtype=np.int64))
        m = cells.m.sum(0)
        v_cov = cells.cov.sum(0)
        g = cells.G.sum(0)
        u = cells.u.sum(0)
        d = inp.votes0[idx].sum(0) - m
        one = np.ones(inp.k)
        us = float(u.sum())
        if us <= 0:
            continue
        dt = float(d.sum()) / us
        t_var = float(one @ v_cov @ one) / us ** 2
        proj = np.eye(inp.k) - np.outer(u, one) / us  # removes the turnout part
        d_s = proj @ d
        g_inv = np.linalg.pinv(g, rcond=1e-10, hermitian=True)
        eps = g_inv @ d_s
        eps_cov = g_inv @ proj @ v_cov @ proj.T @ g_inv.T
        gap = mean_pos(home_train & (rank > j)) - mean_pos(tr)
        if gap <= 0:
            continue
        # a shift that grows along the arrival order: the remainder is as much further
        # from what is counted as its arrival position is (variance × the gap ratio²)
        # (never below 1: a remainder nearer than the batch is not taken to shift less)
        ratio = max(gap_rest, gap) / gap
        se.append(ratio ** 2 * (np.outer(eps, eps) - eps_cov))
        te.append(ratio ** 2 * (dt ** 2 - t_var))
        wts.append(float(inp.votes0[idx].sum()))
        used.append(j)
        gaps.append(ratio)
    return ArrivalFit(tuple(se), tuple(te), tuple(wts), tuple(used), tuple(gaps))


def prepare_actas(
    actas: pl.DataFrame, contest: Contest, *,
    baseline: pl.DataFrame | Baseline | None = None,
    blocs: Mapping[str, Sequence[str]] | None = None, params: ModelParams | None = None,
    history: Sequence[pl.DataFrame] = (),
) -> Prepared:
    """Fit the model on the counted actas and reduce what is to come to cells.
    ``history``: earlier per-acta snapshots of the same count, oldest first (only
    ``acta_id`` and ``status`` are read): the arrival shock is then learned from them
    (:func:`fit_arrival`)."""
    params = params or ModelParams()
    k = len(contest.candidate_columns)
    jee = params.jee
    df = actas
    inp = _inputs(df, contest, baseline, blocs)
    n = inp.n
    counted_votes = inp.votes0[inp.counted].sum(axis=0)

    # --- items to predict: pending actas, and actas at the JEE without figures
    predict = inp.pending | (inp.jee & ~inp.has_fig)
    comp = np.where(inp.jee, Component.JEE.value,
                    np.where(inp.abroad, Component.ABROAD.value, Component.PENDING_HOME.value))
    idx = np.flatnonzero(predict)
    fit = _fit_predict(inp, inp.train, idx, params)
    regimes, reg_i = fit.regimes, fit.reg_i
    is_jee = inp.jee[idx]
    cell_area = nested_codes(df, [params.cell_level])[0]
    if len(inp.type_names) > 1:
        cell_area = inp.type_idx  # one type's shared effect must stay within one cell
    parts = [_predicted_cells(inp, fit, inp.train, comp[idx], is_jee, jee, cell_area)]
    if jee.lean_margin_sd is not None:
        parts[0] = _held_sheets_lean(parts[0], jee.lean_margin_sd, k)

    # --- actas at the JEE with provisional figures: as is, corrected or annulled
    fig = inp.jee & inp.has_fig
    if fig.any():
        fidx = np.flatnonzero(fig)
        ukey, inv = la.dense_ids(cell_area[fidx])
        nc = ukey.size
        vv = inp.votes0[fidx]
        cov = la.group_outer(vv, np.full(fidx.size, jee.p_annulled * (1 - jee.p_annulled)),
                             inv, nc)
        cov += (np.bincount(inv, minlength=nc) * jee.p_corrected * jee.correction_sd**2
                )[:, None, None] * np.eye(k)[None]
        tot = la.group_sum(vv, inv, nc)
        el = la.group_sum(np.maximum(inp.electors[fidx], vv.sum(1)), inv, nc)
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
                         extra_without=fit.extra_without)
    if len(history) > MAX_ACTA_HISTORY:  # the same earlier cuts for every caller
        history = [history[i] for i in spread_indices(len(history), MAX_ACTA_HISTORY)]
    arrival_diag: dict[str, object] = {"n_history": len(history), "n_backtests": 0}
    if history:
        rank = arrival_rank(df, history)
        # the currently counted actas already counted in an earlier snapshot: none means
        # the snapshots do not share acta ids (another contest, or ids written otherwise)
        arrival_diag["n_counted_before"] = int((inp.counted & (rank < len(history))).sum())
        arr = fit_arrival(inp, rank, len(history), params)
        if arr.n:
            shocks = _learned_shocks(shocks, arr, params)
            arrival_diag = {**arrival_diag, "n_backtests": arr.n,
                            "backtest_cuts": list(arr.cut_index),
                            "gap_ratio": [round(float(g), 3) for g in arr.gap_ratio],
                            "excess_share_sd": share_sd(la.psd_clip(arr.mean_share_excess())),
                            "national_share_sd": shocks.scales.national_share}
    point = counted_votes + (cells.m.sum(0) if cells.m.size else 0.0)
    diagnostics: dict[str, object] = {
        "n_actas": n, "n_counted": int(inp.counted.sum()),
        "n_pending": int(inp.pending.sum()), "n_jee": int(inp.jee.sum()),
        "n_jee_with_figures": int(fig.sum()),
        "n_predicted_with_baseline": int((reg_i == 0).sum()) if "B" in regimes else 0,
        "n_predicted_without_baseline": int((reg_i == 1).sum()) if "B" in regimes
        else int(idx.size),
        "n_train": {r: reg.n_train for r, reg in regimes.items()},
        "blocs": list(inp.bloc_names),
        "arrival": arrival_diag,
        "expected_votes_point": {c.code: float(point[j])
                                 for j, c in enumerate(contest.candidates)},
    }
    return Prepared(counted_votes, cells, shocks, diagnostics)


def _learned_shocks(shocks: Shocks, arr: ArrivalFit, params: ModelParams) -> Shocks:
    """Replace the single-snapshot rule's national shocks by what the earlier cuts show:
    (w₀ · rule + n · vote-weighted mean excess) / (w₀ + n), w₀ =
    :data:`ARRIVAL_PRIOR_WEIGHT`, the same for every shock of the home group and times
    ``abroad_factor²`` abroad (the gap term of actas without a baseline is kept); Student t
    tails with n + w₀ degrees of freedom (few cuts cannot rule out a large shift)."""
    s_ex, t_ex = arr.mean_share_excess(), arr.mean_turnout_excess()
    w0, nb = ARRIVAL_PRIOR_WEIGHT, float(arr.n)
    cs = (w0 * shocks.share[0] + nb * la.psd_clip(s_ex)) / (w0 + nb)
    ct = (w0 * shocks.turnout[0] + nb * max(0.0, t_ex)) / (w0 + nb)
    ab2 = params.abroad_factor ** 2
    xs = shocks.share[1] - shocks.share[0]
    xt = shocks.turnout[1] - shocks.turnout[0]
    share_l = (cs, cs + xs, cs * ab2, (cs + xs) * ab2)
    turn_l = (ct, ct + xt, ct * ab2, (ct + xt) * ab2)
    sc = replace(shocks.scales, national_share=share_sd(cs), national_turnout=float(np.sqrt(ct)),
                 abroad_share=share_sd(cs * ab2),
                 notes=f"national scale learned from {arr.n} earlier cuts of this count "
                 "(out-of-sample batches, beyond the model's own terms), with the single-"
                 f"snapshot rule as a prior of weight {w0:g}")
    return replace(shocks, share=share_l, turnout=turn_l, scales=sc,
                   tail_df=max(MIN_TAIL_DF, nb + w0))


def project_actas(
    actas: pl.DataFrame, contest: Contest, *,
    baseline: pl.DataFrame | Baseline | None = None,
    blocs: Mapping[str, Sequence[str]] | None = None, params: ModelParams | None = None,
    snapshot_id: str = "", as_of: datetime | None = None,
    pairs: tuple[tuple[str, str], ...] = (),
    baseline_snapshot_id: str = "",
    history: Sequence[pl.DataFrame] = (),
) -> Projection:
    """Project the final result from a canonical acta frame (see the module docstring).

    ``baseline``: an earlier election's canonical acta frame for the same mesas (joined
    on ``acta_id``); ``blocs``: current-or-bloc name -> baseline candidate columns
    (default: every baseline candidate its own bloc); ``history``: earlier per-acta
    snapshots of the same count, oldest first (the arrival shock is learned from them)."""
    params = params or ModelParams()
    prep = prepare_actas(actas, contest, baseline=baseline, blocs=blocs, params=params,
                         history=history)
    ids = tuple(x for x in (snapshot_id, baseline_snapshot_id) if x)
    proj = simulate(
        contest, prep.counted, prep.cells, prep.shocks, n_sims=params.n_sims,
        seed=params.seed, levels=params.levels, call_rule=params.call_rule, basis="actas",
        snapshot_id=snapshot_id, as_of=as_of,
        parameters=_param_dict(params, blocs), diagnostics=prep.diagnostics, pairs=pairs)
    if len(ids) > 1:
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
