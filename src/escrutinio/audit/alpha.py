"""ALPHA (Stark 2023) for batch-level comparison audits, in SHANGRLA's form (Stark 2020).

SHANGRLA turns each assertion into "the mean of a bounded, non-negative list of numbers is
above 1/2". With actas as batches drawn by PPEB (probability u_p / U, with replacement),
the taint ``t_j = e_j / u_{p_j} <= 1`` of draw j gives

    X_j = (1 - t_j) / (2 (1 - 1/U)),    0 <= X_j <= 1 / (1 - 1/U),

and under the null (the outcome is wrong: sum_p e_p >= 1) ``E[X_j] <= 1/2``. With uniform
sampling without replacement (the consistent sampler), ``u*`` = the largest u_p and
``U* = N u*`` replace u_p and U, and the null mean of what is left after j - 1 draws is
``mu_j = (N/2 - sum_{i<j} X_i) / (N - j + 1)``.

The ALPHA supermartingale is ``T_n = prod_j (X_j eta_j / mu_j + (u - X_j)(u - eta_j) /
(u - mu_j)) / u``; writing ``eta_j = mu_j (1 + lambda_j (u - mu_j))`` (ALPHA eq. 12) it is
the betting martingale ``prod_j (1 + lambda_j (X_j - mu_j))``. As SHANGRLA does for
comparison audits, eta (equivalently the bet lambda) is fixed before the audit from a
declared design error model (a share ``prior_rate`` of draws with taint ``prior_taint``):
the growth-optimal constant bet for that model, ``lambda* = -((1-r) a + r b) / (a b)``
with ``a = x0 - 1/2``, ``b = x_tau - 1/2``, truncated to ``[0, c_max / mu_j]`` so that one
acta with taint 1 cannot zero the wealth (KM is the all-in bet ``1/mu``). A fixed bet keeps
the risk monotone: a larger discrepancy never lowers the measured risk (an adaptive bet
that shrinks after errors can break that, so we do not learn the bet from the sample).

Risk = ``min(1, 1 / max_{j<=n} T_j)`` (Ville's inequality). Arithmetic: log space in
float64; the audit stops only if ``max log T >= ln(1/alpha) + 1e-9 (n + 1)``, a margin
far larger than the rounding error of the sum, so rounding can only delay a stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class AlphaParams:
    c_max: float = 0.99  # largest bet, as a fraction of 1/mu
    prior_rate: float = 0.005  # design: share of draws with a discrepancy...
    prior_taint: float = 0.05  # ...of this taint

    def to_dict(self) -> dict[str, Any]:
        return {"c_max": self.c_max, "prior_rate": self.prior_rate,
                "prior_taint": self.prior_taint}


def slack(n: int) -> float:
    return 1e-9 * (n + 1)


def comparison_x(taints: np.ndarray, U: float) -> np.ndarray:  # noqa: N803
    """SHANGRLA overstatement values X for taints (U = total bound, or N u* uniformly)."""
    return (1.0 - np.asarray(taints, dtype=np.float64)) / (2.0 * (1.0 - 1.0 / U))


def design_bet(U: float, params: AlphaParams) -> float:  # noqa: N803
    """Growth-optimal constant bet for the design error model (before truncation)."""
    x0 = 1.0 / (2.0 * (1.0 - 1.0 / U))
    a = x0 - 0.5
    b = (1.0 - params.prior_taint) * x0 - 0.5
    r = params.prior_rate
    if r <= 0 or b >= 0:
        return math.inf
    num = (1 - r) * a + r * b
    return 0.0 if num <= 0 else -num / (a * b)


def eta_of_bet(lam: float, mu: float, upper: float) -> float:
    """ALPHA's eta for a bet lambda (eq. 12): eta = mu (1 + lambda (u - mu))."""
    return mu * (1.0 + lam * (upper - mu))


def log_wealth(x: np.ndarray, U: float, params: AlphaParams | None = None, *,  # noqa: N803
               n_pop: int | None = None) -> np.ndarray:
    """Cumulative log T_j along the last axis (vectorised over leading axes).

    ``n_pop`` None: with replacement (mu = 1/2); else without replacement from n_pop actas.
    """
    params = params or AlphaParams()
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    if n == 0:
        return np.zeros_like(x)
    lam0 = design_bet(U, params)
    if n_pop is None:
        lam = min(lam0, params.c_max / 0.5)
        return np.cumsum(np.log1p(lam * (x - 0.5)), axis=-1)
    j = np.arange(1, n + 1, dtype=np.float64)
    zero = np.zeros((*x.shape[:-1], 1))
    s_prev = np.concatenate([zero, np.cumsum(x, axis=-1)[..., :-1]], axis=-1)
    mu = (n_pop / 2.0 - s_prev) / (n_pop - j + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam_j = np.minimum(lam0, params.c_max / np.where(mu > 0, mu, 1.0))
        logf = np.log1p(lam_j * (x - mu))
    logf = np.where(mu <= 0, np.inf, logf)  # null mean impossible: outcome confirmed
    return np.cumsum(logf, axis=-1)


def risk_from_log_wealth(lw: np.ndarray) -> float:
    if lw.size == 0:
        return 1.0
    top = float(np.max(lw))
    return 1.0 if top <= 0 else float(math.exp(-top)) if math.isfinite(top) else 0.0


def confirms(lw: np.ndarray, alpha: float) -> bool:
    """Stop decision, conservative in floating point."""
    return lw.size > 0 and float(np.max(lw)) >= math.log(1.0 / alpha) + slack(lw.shape[-1])


def zero_discrepancy_draws(U: float, alpha: float,  # noqa: N803
                           params: AlphaParams | None = None, *,
                           n_pop: int | None = None,
                           max_draws: int | None = None) -> int | None:
    """Draws ALPHA needs when every audited acta matches (None if not within max_draws)."""
    x0 = 1.0 / (2.0 * (1.0 - 1.0 / U))
    limit = max_draws or int(min(50 * U * math.log(1 / alpha) + 100, 50_000_000))
    if n_pop is not None:
        limit = min(limit, n_pop)
    size = min(limit, 4096)
    while True:
        lw = log_wealth(np.full(size, x0), U, params, n_pop=n_pop)
        thr = math.log(1.0 / alpha) + slack(size)
        hit = np.nonzero(lw >= thr)[0]
        if hit.size:
            return int(hit[0]) + 1
        if size >= limit:
            return None
        size = min(limit, size * 4)


# --- ONEAudit (card-level sampling inside actas; reference) -----------------------------

def oneaudit_expected_cards(votes_for: np.ndarray, votes_against: np.ndarray,
                            ballots: np.ndarray, alpha: float) -> float | None:
    """Expected cards for ONEAudit with the acta mean as every card's CVR (Stark 2023).

    Card-level comparison against the "overstatement-net-equivalent" CVR: every card of
    acta p is given the acta's mean assorter value a_p = (for_p + (b_p - for_p -
    against_p)/2) / b_p; with the reported margin v = 2 mean(a) - 1 the comparison value
    of a card whose true assorter is a is ``B = (1 - (a_p - a)) / (2 - v)`` (u = 1). We
    assume the cards are as reported and return ``ln(1/alpha) / g*``, g* the growth rate
    of the best constant bet (an optimistic expected sample size: an adaptive bet needs
    somewhat more). Needs the ballots kept per acta. None if the margin is not positive.
    """
    f = np.asarray(votes_for, np.float64)
    g = np.asarray(votes_against, np.float64)
    b = np.asarray(ballots, np.float64)
    keep = b > 0
    f, g, b = f[keep], g[keep], b[keep]
    o = b - f - g
    n_total = b.sum()
    a_bar = (f.sum() + 0.5 * o.sum()) / n_total
    v = 2 * a_bar - 1
    if v <= 0:
        return None
    a_p = (f + 0.5 * o) / b
    vals = np.concatenate([(2 - a_p) / (2 - v), (1 - a_p) / (2 - v), (1.5 - a_p) / (2 - v)])
    wts = np.concatenate([f, g, o]) / n_total
    dev = vals - 0.5

    def slope(lam: float) -> float:
        return float(np.sum(wts * dev / (1.0 + lam * dev)))

    lo, hi = 0.0, 2.0 * 0.999999  # the growth rate is concave: bisect its derivative
    if slope(lo) <= 0:
        return None
    for _ in range(45):
        mid = (lo + hi) / 2
        if slope(mid) > 0:
            lo = mid
        else:
            hi = mid
    best = float(np.sum(wts * np.log1p(lo * dev)))
    return None if best <= 0 else math.log(1 / alpha) / best
