"""Nested random effects by area, estimated by the method of moments (vectorised).

A residual vector r_i (D dimensions: the centred log-ratios of candidate shares, or the
log-odds of turnout) of a counted acta or unit is decomposed as

    r_i = a_area1(i) + a_area2(i) + a_area3(i) + e_i,

with independent zero-mean effects of covariance Σ_1, Σ_2, Σ_3 and Σ_e (D × D).

**Components (bottom-up, moment estimators for a nested design).** With weights w_i:

* Σ_e: pooled weighted covariance of residuals around their finest-group means,
  corrected by n/(n − groups);
* for each level L from the finest up: the weighted covariance of the group means around
  their parent's mean, minus the average sampling covariance a group mean inherits from
  the levels below it, Σ_{lower} Σ_l · Σ_h (W_h/W_g)² + Σ_e · Σ_i (w_i/W_g)²;
* each estimate is projected onto the positive semi-definite matrices (negative
  eigenvalues set to zero) — the usual truncation of moment estimators at zero.

**Effects (top-down shrinkage).** For a group g at level L with weighted mean residual
r̄_g and sampling covariance V_g (from the levels below), the estimated effect is
k_g · r̄_g with the scalar shrinkage k_g = tr Σ_L / (tr Σ_L + tr V_g); its posterior
covariance is (1 − k_g) Σ_L. A group with no observation has effect 0 and posterior Σ_L.
The effect is subtracted before the next, finer level is estimated.

References: Searle, Casella & McCulloch, *Variance Components* (1992), ch. 4-5 (ANOVA
estimators for nested designs); Gelman & Hill (2007) §12 (partial pooling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from escrutinio.projection.linalg import psd_clip


@dataclass(frozen=True, slots=True)
class LevelEffects:
    """Effects of one level: ``codes`` (sorted unique group codes seen in the data),
    ``effect`` (G × D), ``post_factor`` (G,: posterior covariance = factor · ``cov``),
    ``n`` observations per group; ``raw_cov``: weighted covariance of the group means
    around their parent's (sampling noise included) and ``n_eff``: Kish's effective
    number of groups, (Σ W_g)² / Σ W_g² — together the cluster-sampling variance of a
    national mean, ``raw_cov / n_eff``."""

    key: str
    cov: np.ndarray
    codes: np.ndarray
    effect: np.ndarray
    post_factor: np.ndarray
    n: np.ndarray
    raw_cov: np.ndarray
    n_eff: float

    def lookup(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Effect (N × D) and posterior factor (N,) for arbitrary group codes; an unseen
        group gets 0 and factor 1."""
        d = self.cov.shape[0]
        if self.codes.size == 0:
            return np.zeros((codes.size, d)), np.ones(codes.size)
        pos = np.searchsorted(self.codes, codes)
        pos = np.clip(pos, 0, self.codes.size - 1)
        found = self.codes[pos] == codes
        eff = np.where(found[:, None], self.effect[pos], 0.0)
        fac = np.where(found, self.post_factor[pos], 1.0)
        return eff, fac


@dataclass(frozen=True, slots=True)
class HierarchyFit:
    levels: tuple[LevelEffects, ...]  # coarse to fine
    resid_cov: np.ndarray  # Σ_e
    n: int

    def predict(self, groups: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Sum of effects (N × D) and, per level, the factor (N,) of that level's
        covariance in the prediction's error.

        A coarse level's estimation error reaches a prediction only in part when the
        item's finer groups were observed: each finer effect is estimated (top-down) from
        the group's mean *after* the coarser effects were subtracted, so it absorbs the
        share k = 1 − f of the coarser error (f its posterior factor). With the item's
        groups g_0 (coarse) … g_L (fine), level l's error enters times
        Π_{m > l} f_m² (the error of a nested shrinkage predictor, each level shrinking
        what the coarser ones left); an unseen finer group (f = 1) absorbs nothing. Counting
        every level's posterior in full instead (as before the ninth session) made a
        region's uncertainty weigh on every sheet of an already-counted polling place."""
        total = None
        factors = []
        for lv, codes in zip(self.levels, groups, strict=True):
            eff, fac = lv.lookup(codes)
            total = eff if total is None else total + eff
            factors.append(fac)
        if total is None:
            total = np.zeros((groups[0].size if groups else 0, self.resid_cov.shape[0]))
        absorbed = list(factors)
        through: np.ndarray | float = 1.0  # what the finer levels let through, Π f_m²
        for i in range(len(factors) - 1, -1, -1):
            absorbed[i] = factors[i] * through
            through = through * factors[i] ** 2
        return total, absorbed


def _group_ids(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from escrutinio.projection.linalg import dense_ids

    return dense_ids(codes)


def _wmean(x: np.ndarray, w: np.ndarray, inv: np.ndarray, g: int) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    wsum = np.bincount(inv, weights=w, minlength=g)
    d = x.shape[1]
    s = np.empty((g, d))
    for j in range(d):
        s[:, j] = np.bincount(inv, weights=x[:, j] * w, minlength=g)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(wsum[:, None] > 0, s / wsum[:, None], 0.0)
    return mean, wsum


def fit_hierarchy(resid: np.ndarray, weights: np.ndarray, groups: Sequence[np.ndarray],
                  keys: Sequence[str]) -> HierarchyFit:
    """Fit the nested effects. ``groups``: codes per level, coarse to fine, each (N,) of
    one sortable dtype (integers are fastest); every finer code must be nested in its
    coarser one (make codes unique by prefixing the parent if needed)."""
    n, d = resid.shape
    w = np.asarray(weights, dtype=float)
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
    nl = len(groups)
    if n == 0 or w.sum() == 0:
        zero = np.zeros((d, d))
        empty = tuple(LevelEffects(k, zero, np.array([], dtype=object), np.zeros((0, d)),
                                   np.zeros(0), np.zeros(0, dtype=np.int64), zero, 0.0)
                      for k in keys)
        return HierarchyFit(empty, zero, 0)
    ids = [_group_ids(np.asarray(g)) for g in groups]
    # --- residual covariance within the finest groups
    if nl:
        uniq_f, inv_f = ids[-1]
        mean_f, _ = _wmean(resid, w, inv_f, uniq_f.size)
        dev = resid - mean_f[inv_f]
        n_groups = uniq_f.size
    else:
        dev = resid - (resid * w[:, None]).sum(0) / w.sum()
        n_groups = 1
    cov_e = (dev * w[:, None]).T @ dev / w.sum()
    nz = int((w > 0).sum())
    cov_e = psd_clip(cov_e * (nz / max(1, nz - n_groups)))

    # --- sampling structure: for each level, the coefficients Σ_h (W_h/W_g)² of every
    # lower level and Σ_i (w_i/W_g)² of the residual, per group
    covs: list[np.ndarray] = [np.zeros((d, d))] * nl
    w2_acta: list[np.ndarray] = []
    for lv in range(nl):
        uniq, inv = ids[lv]
        wsum = np.bincount(inv, weights=w, minlength=uniq.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            w2_acta.append(np.where(wsum > 0, np.bincount(inv, weights=w * w,
                                                          minlength=uniq.size) / wsum**2, 0))
    lower_coef: dict[tuple[int, int], np.ndarray] = {}
    for lv in range(nl):
        uniq, inv = ids[lv]
        wsum = np.bincount(inv, weights=w, minlength=uniq.size)
        for low in range(lv + 1, nl):
            uq_l, inv_l = ids[low]
            wl = np.bincount(inv_l, weights=w, minlength=uq_l.size)
            parent = np.zeros(uq_l.size, dtype=np.int64)
            parent[inv_l] = inv
            with np.errstate(invalid="ignore", divide="ignore"):
                lower_coef[(lv, low)] = np.where(
                    wsum > 0, np.bincount(parent, weights=wl**2, minlength=uniq.size)
                    / wsum**2, 0.0)

    def sampling(lv: int, covs_: list[np.ndarray]) -> np.ndarray:
        """(G, D, D) sampling covariance of each group mean at level lv."""
        out = w2_acta[lv][:, None, None] * cov_e[None]
        for low in range(lv + 1, nl):
            out = out + lower_coef[(lv, low)][:, None, None] * covs_[low][None]
        return out

    # --- components bottom-up
    raw: list[np.ndarray] = [np.zeros((d, d))] * nl
    neff: list[float] = [0.0] * nl
    for lv in range(nl - 1, -1, -1):
        uniq, inv = ids[lv]
        mean_g, wsum = _wmean(resid, w, inv, uniq.size)
        if lv == 0:
            pmean = (resid * w[:, None]).sum(0) / w.sum()
            dev_g = mean_g - pmean
            n_parent = 1
        else:
            puniq, pinv = ids[lv - 1]
            gparent = np.zeros(uniq.size, dtype=np.int64)
            gparent[inv] = pinv
            pm, _ = _wmean(mean_g, wsum, gparent, puniq.size)
            dev_g = mean_g - pm[gparent]
            n_parent = int(np.unique(gparent[wsum > 0]).size)
        ok = wsum > 0
        gw = wsum[ok]
        between = (dev_g[ok] * gw[:, None]).T @ dev_g[ok] / gw.sum()
        n_ok = int(ok.sum())
        between = between * (n_ok / max(1, n_ok - n_parent))
        raw[lv] = psd_clip(between)
        neff[lv] = float(gw.sum() ** 2 / (gw**2).sum())
        samp = sampling(lv, covs)[ok]
        avg_samp = (samp * gw[:, None, None]).sum(0) / gw.sum()
        covs[lv] = psd_clip(between - avg_samp)

    # --- effects top-down
    levels: list[LevelEffects] = []
    r = resid.copy()
    for lv in range(nl):
        uniq, inv = ids[lv]
        mean_g, wsum = _wmean(r, w, inv, uniq.size)
        samp = sampling(lv, covs)
        tr_b = float(np.trace(covs[lv]))
        tr_s = np.trace(samp, axis1=1, axis2=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = np.where((wsum > 0) & (tr_b > 0), tr_b / (tr_b + tr_s), 0.0)
        eff = mean_g * k[:, None]
        r = r - eff[inv]
        levels.append(LevelEffects(keys[lv], covs[lv], uniq, eff, 1.0 - k,
                                   np.bincount(inv, minlength=uniq.size), raw[lv], neff[lv]))
    return HierarchyFit(tuple(levels), cov_e, n)
