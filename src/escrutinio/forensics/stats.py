"""Small, dependency-free statistics used by every forensic test.

No SciPy: the few distributions needed here have closed forms or short exact
recursions. Everything is vectorised with numpy where it runs per acta.

* :func:`normal_sf`, :func:`chi2_sf` — upper tails (chi-square for integer degrees of
  freedom, closed form).
* :func:`poisson_binomial_sf` — P(X >= k) for a sum of independent Bernoulli(q_i), by the
  refined normal approximation (Volkova 1996), accurate for the large sums used here.
* :func:`log_factorials` — the table behind the exact binomial probabilities of
  :mod:`escrutinio.forensics.nulls`.
* :func:`wald_chi2` — (O − E)ᵀ Σ⁻¹ (O − E) for category counts whose units follow
  different categorical distributions (Σ = Σ_i diag(q_i) − q_i q_iᵀ).
* :func:`sign_flip_sf` — exact one-sided p-value of a cluster sign-flip test.
* :func:`hypergeom_sum_sf` — exact P(J >= j) for a sum of independent hypergeometric
  counts (the within-place permutation null of the fingerprint test).
* :func:`benjamini_hochberg` — adjusted p-values (q-values) and rejections.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

_SQRT2 = math.sqrt(2.0)


def normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z."""
    return 0.5 * math.erfc(z / _SQRT2)


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square with integer ``df`` >= 1 (closed form)."""
    if df < 1:
        return 1.0
    if x <= 0:
        return 1.0
    h = x / 2.0
    if df % 2 == 0:
        # Q = e^{-h} sum_{j < df/2} h^j / j!
        term = 1.0
        total = 1.0
        for j in range(1, df // 2):
            term *= h / j
            total += term
        return min(1.0, math.exp(-h) * total)
    # odd: Q = erfc(sqrt(h)) + e^{-h} sum_{j=1}^{(df-1)/2} h^{j-1/2} / Gamma(j + 1/2)
    total = math.erfc(math.sqrt(h))
    if df > 1:
        term = math.sqrt(h) / math.gamma(1.5)  # j = 1
        acc = term
        for j in range(2, (df - 1) // 2 + 1):
            term *= h / (j - 0.5)
            acc += term
        total += math.exp(-h) * acc
    return min(1.0, total)


def poisson_binomial_sf(k: float, q: np.ndarray) -> float:
    """P(X >= k) for X = sum of independent Bernoulli(q_i), refined normal approximation
    (Volkova 1996; Hong 2013, eq. 14) with a continuity correction."""
    mu = float(q.sum())
    var = float((q * (1 - q)).sum())
    if var <= 0:
        return 1.0 if k <= mu else 0.0
    sd = math.sqrt(var)
    gamma = float((q * (1 - q) * (1 - 2 * q)).sum()) / sd**3
    x = (k - 0.5 - mu) / sd
    phi = math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = 1 - normal_sf(x) + gamma * (1 - x * x) * phi / 6
    return float(min(1.0, max(0.0, 1 - cdf)))


@lru_cache(maxsize=8)
def log_factorials(nmax: int) -> np.ndarray:
    """log(k!) for k = 0..nmax."""
    out = np.zeros(nmax + 1)
    if nmax >= 1:
        out[1:] = np.cumsum(np.log(np.arange(1, nmax + 1, dtype=float)))
    return out


def wald_chi2(observed: np.ndarray, q: np.ndarray) -> tuple[float, int, np.ndarray]:
    """Wald statistic of observed category counts against per-unit categorical
    probabilities ``q`` (N, C). Returns (statistic, degrees of freedom, expected)."""
    expected = q.sum(axis=0)
    cov = np.diag(expected) - q.T @ q
    return wald_from_moments(observed, expected, cov)


def wald_from_moments(
    observed: np.ndarray, expected: np.ndarray, cov: np.ndarray, min_variance: float = 1e-9,
) -> tuple[float, int, np.ndarray]:
    """(O − E)ᵀ Σ⁻ (O − E) on the categories with variance > ``min_variance``, dropping
    one (the counts sum to the number of units, so Σ has rank C − 1)."""
    keep = np.flatnonzero(np.diag(cov) > min_variance)
    if len(keep) < 2:
        return 0.0, 0, expected
    keep = keep[:-1]
    d = (np.asarray(observed, dtype=float) - expected)[keep]
    sub = cov[np.ix_(keep, keep)]
    try:
        sol = np.linalg.solve(sub, d)
    except np.linalg.LinAlgError:
        sol = np.linalg.pinv(sub) @ d
    return float(d @ sol), len(keep), expected


def sign_flip_sf(net_by_cluster: np.ndarray) -> float:
    """Exact P(S* >= S) where S = Σ_g s_g and S* = Σ_g ε_g s_g with independent random
    signs ε_g = ±1: the cluster sign-flip null of 'outliers in favour of a candidate are
    as common as outliers against', robust to outliers that come in clusters."""
    s = np.asarray(net_by_cluster, dtype=np.int64)
    s = np.abs(s[s != 0])
    observed = int(np.asarray(net_by_cluster).sum())
    if len(s) == 0:
        return 1.0
    total = int(s.sum())
    # distribution of Σ ε_g |s_g| over -total..total, built by convolution
    dist = np.zeros(2 * total + 1)
    dist[total] = 1.0
    for v in s:
        v = int(v)
        new = np.zeros_like(dist)
        new[v:] += 0.5 * dist[:-v]
        new[:-v] += 0.5 * dist[v:]
        dist = new
    idx = observed + total
    if idx <= 0:
        return 1.0
    if idx > 2 * total:
        return 0.0
    return float(min(1.0, dist[idx:].sum()))


def sign_flip_normal_sf(net_by_cluster: np.ndarray) -> float:
    """Normal approximation of :func:`sign_flip_sf` (variance Σ s_g²)."""
    s = np.asarray(net_by_cluster, dtype=float)
    var = float((s * s).sum())
    if var == 0:
        return 1.0
    return normal_sf((float(s.sum()) - 0.5) / math.sqrt(var))


def hypergeom_pmf(m: int, a: int, b: int) -> np.ndarray:
    """pmf of J = |A ∩ B| for random subsets of sizes a and b of m items (J = 0..min)."""
    lf = log_factorials(max(m, 1))
    j = np.arange(0, min(a, b) + 1)
    valid = (b - j >= 0) & (a - j >= 0) & (m - a - b + j >= 0)
    jj = np.where(valid, j, 0)
    logp = (lf[a] - lf[jj] - lf[np.maximum(a - jj, 0)]
            + lf[m - a] - lf[np.maximum(b - jj, 0)] - lf[np.maximum(m - a - b + jj, 0)]
            - (lf[m] - lf[b] - lf[m - b]))
    return np.where(valid, np.exp(logp), 0.0)


def hypergeom_sum_sf(m: np.ndarray, a: np.ndarray, b: np.ndarray, observed: int) -> float:
    """Exact P(Σ_g J_g >= observed) for independent J_g ~ Hypergeometric(m_g, a_g, b_g)."""
    dist = np.ones(1)
    for mg, ag, bg in zip(m.tolist(), a.tolist(), b.tolist(), strict=True):
        if ag == 0 or bg == 0:
            continue
        dist = np.convolve(dist, hypergeom_pmf(int(mg), int(ag), int(bg)))
    if observed <= 0:
        return 1.0
    if observed >= len(dist):
        return 0.0
    return float(min(1.0, dist[observed:].sum()))


def benjamini_hochberg(
    pvalues: np.ndarray, q: float, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg step-up, optionally weighted. Returns (adjusted p-values,
    rejected mask).

    Unweighted: adjusted p_(i) = min_{j >= i} m p_(j) / j, capped at 1; reject H_(i) for
    i <= the largest k with p_(k) <= k q / m (equivalently adjusted <= q).
    Weighted (Genovese, Roeder & Wasserman 2006): the same on p_i / w_i, with weights
    fixed in advance and rescaled to mean 1 — FDR is still controlled at q."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    if m == 0:
        return p.copy(), np.zeros(0, dtype=bool)
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        w = w * m / w.sum()
        p = p / w
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    adj_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.minimum(adj_sorted, 1.0)
    return adj, adj <= q


def robust_scale(x: np.ndarray) -> float:
    """Median absolute deviation from 0, scaled to a standard deviation (MAD/0.6745)."""
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return 1.0
    s = float(np.median(np.abs(x))) / 0.6744897501960817
    return s if s > 0 else 1.0


def mc_pvalue(null_stats: np.ndarray, observed: float) -> float:
    """(1 + #{null >= observed}) / (B + 1): a valid Monte-Carlo p-value."""
    b = len(null_stats)
    return (1.0 + float(np.count_nonzero(null_stats >= observed - 1e-12))) / (b + 1.0)
