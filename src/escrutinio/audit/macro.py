"""MACRO / Kaplan-Markov batch-level comparison with PPEB sampling (Stark 2008-2010).

Every acta p is a batch with error bound ``u_p = w_p / Q`` (see :mod:`escrutinio.audit.model`),
``U = sum u_p``. Actas are drawn with replacement with probability ``u_p / U``. For a drawn
acta the overstatement of assertion a is ``e_pa = (m_pa - audited m_pa) / V_a`` and its taint
``t_pa = e_pa / u_p <= 1``; MACRO takes ``t_p = max_a t_pa``. The Kaplan-Markov P-value after
n draws is

    P_n = prod_j (1 - 1/U) / (1 - t_j),

and the audit may stop as soon as ``P_n <= alpha``. With no discrepancies the number of
draws is ``n = ceil(ln alpha / ln(1 - 1/U))`` (Arlo adds one; we do not).

Arithmetic: U, taints and P are exact :class:`fractions.Fraction`; the stop decision is an
exact comparison. Floats appear only in reports and in the next-round estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from escrutinio.audit.ids import AuditInputError
from escrutinio.audit.model import AuditPopulation


def as_fraction(x: float | str | Fraction) -> Fraction:
    """Risk limits as exact fractions: 0.05 -> 1/20 (through its decimal text)."""
    f = x if isinstance(x, Fraction) else Fraction(str(x))
    if not 0 < f < 1:
        raise AuditInputError(f"el límite de riesgo debe estar en (0, 1): {x}",
                              f"the risk limit must be in (0, 1): {x}")
    return f


def zero_discrepancy_draws(U: Fraction, alpha: float | str | Fraction) -> int:  # noqa: N803
    """Smallest n with (1 - 1/U)^n <= alpha, decided exactly."""
    a = as_fraction(alpha)
    if U <= 1:
        return 1 if U == 1 else 0  # U <= 1: one draw of a batch with no error suffices
    rho = 1 - 1 / U
    guess = max(1, math.ceil(math.log(float(a)) / math.log1p(-1 / float(U))))

    def ok(n: int) -> bool:
        return rho.numerator ** n * a.denominator <= a.numerator * rho.denominator ** n

    n = guess
    while not ok(n):
        n += 1
    while n > 1 and ok(n - 1):
        n -= 1
    return n


def km_pvalue(U: Fraction, taints: Sequence[Fraction], *,  # noqa: N803
              running_min: bool = True) -> Fraction:
    """Kaplan-Markov P-value (exact, capped at 1) for draws with the given taints.

    ``running_min``: the smallest P_j over j <= n (valid by Ville's inequality because
    1/P_j is a non-negative supermartingale under the null); otherwise P_n.
    """
    rho = 1 - 1 / U
    best = Fraction(1)
    p = Fraction(1)
    zeros = 0
    for t in taints:
        if t >= 1:
            # the drawn acta may hide its whole bound: the wealth 1/P is 0 from here on
            if zeros:
                p *= rho ** zeros
            best = min(best, p) if running_min else Fraction(1)
            return min(best, Fraction(1)) if running_min else Fraction(1)
        if t == 0:
            zeros += 1
            continue
        if zeros:
            p *= rho ** zeros
            zeros = 0
            best = min(best, p)
        p *= rho / (1 - t)
        best = min(best, p)
    if zeros:
        p *= rho ** zeros
    best = min(best, p)
    return min(best if running_min else p, Fraction(1))


def taint_fraction(pop: AuditPopulation, position: int, audited_margins: Sequence[int],
                   *, clip: bool = False) -> tuple[Fraction, list[Fraction]]:
    """(MACRO taint = max over assertions, per-assertion taints) of one audited acta."""
    w = int(pop.weights[position])
    per: list[Fraction] = []
    for a, v in enumerate(pop.margin):
        diff = int(pop.batch_margin[position, a]) - int(audited_margins[a])
        if w == 0:
            t = Fraction(0) if diff <= 0 else Fraction(10**9)
        else:
            t = Fraction(diff * pop.scale, v * w)
        per.append(max(t, Fraction(0)) if clip else t)
    return max(per), per


def next_round_draws(U: Fraction, taints: Sequence[Fraction],  # noqa: N803
                     alpha: float | str | Fraction) -> int | None:
    """Further draws needed if future draws look like the ones so far (None: never)."""
    a = float(as_fraction(alpha))
    p = float(km_pvalue(U, taints, running_min=False))
    if p <= a:
        return 0
    if any(t >= 1 for t in taints):
        return None
    log_rho = math.log1p(-1 / float(U))
    n = len(taints)
    mean_log = (sum(-math.log1p(-float(t)) for t in taints) / n) if n else 0.0
    g = log_rho + mean_log
    if g >= 0:
        return None
    return max(1, math.ceil((math.log(a) - math.log(p)) / g))


def expected_distinct(probabilities: np.ndarray, draws: int) -> float:
    """Expected number of distinct actas in ``draws`` draws with replacement."""
    return float(np.sum(-np.expm1(draws * np.log1p(-np.minimum(probabilities, 1 - 1e-16)))))


def expected_ballots(probabilities: np.ndarray, ballots: np.ndarray, draws: int) -> float:
    """Expected number of ballots (or acta lines) to examine for ``draws`` draws."""
    hit = -np.expm1(draws * np.log1p(-np.minimum(probabilities, 1 - 1e-16)))
    return float(np.sum(hit * ballots))
