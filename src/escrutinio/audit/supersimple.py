"""Super-simple ballot-level comparison (Stark 2010): a reference point only.

It needs a cast-vote record for every ballot, which Peru does not produce. With diluted
margin ``mu = V / B`` (B = all ballots) and error inflation ``gamma`` (1.03905 by
convention), the Kaplan-Markov P-value after n ballots with o1, o2 one- and two-vote
overstatements and u1, u2 understatements is

    P = (1 - mu/(2 gamma))^n (1 - 1/(2 gamma))^-o1 (1 - 1/gamma)^-o2
        (1 + 1/(2 gamma))^-u1 (1 + 1/gamma)^-u2,

and the sample size is

    n = ceil( -2 gamma (ln alpha + o1 ln(1 - 1/(2gamma)) + o2 ln(1 - 1/gamma)
                        + u1 ln(1 + 1/(2gamma)) + u2 ln(1 + 1/gamma)) / mu ).

With expected rates r1, r2, s1, s2 per ballot instead of counts:
``n = ceil(-2 gamma ln alpha / (mu + 2 gamma (r1 ln(1 - 1/(2gamma)) + r2 ln(1 - 1/gamma)
+ s1 ln(1 + 1/(2gamma)) + s2 ln(1 + 1/gamma))))``.
"""

from __future__ import annotations

import math

GAMMA = 1.03905


def sample_size(mu: float, alpha: float, gamma: float = GAMMA, *, o1: int = 0, o2: int = 0,
                u1: int = 0, u2: int = 0) -> int:
    g = (math.log(alpha) + o1 * math.log(1 - 1 / (2 * gamma)) + o2 * math.log(1 - 1 / gamma)
         + u1 * math.log(1 + 1 / (2 * gamma)) + u2 * math.log(1 + 1 / gamma))
    return math.ceil(-2 * gamma * g / mu)


def sample_size_rates(mu: float, alpha: float, gamma: float = GAMMA, *, r1: float = 0.0,
                      r2: float = 0.0, s1: float = 0.0, s2: float = 0.0) -> int | None:
    den = mu + 2 * gamma * (r1 * math.log(1 - 1 / (2 * gamma)) + r2 * math.log(1 - 1 / gamma)
                            + s1 * math.log(1 + 1 / (2 * gamma))
                            + s2 * math.log(1 + 1 / gamma))
    if den <= 0:
        return None
    return math.ceil(-2 * gamma * math.log(alpha) / den)


def pvalue(n: int, mu: float, gamma: float = GAMMA, *, o1: int = 0, o2: int = 0, u1: int = 0,
           u2: int = 0) -> float:
    lp = (n * math.log(1 - mu / (2 * gamma)) - o1 * math.log(1 - 1 / (2 * gamma))
          - o2 * math.log(1 - 1 / gamma) - u1 * math.log(1 + 1 / (2 * gamma))
          - u2 * math.log(1 + 1 / gamma))
    return min(1.0, math.exp(lp))


#: the discrepancy rates Arlo uses when no sample has been drawn yet (and rlacalc's
#: defaults): one-vote over- and understatements 1 in 1,000, two-vote 1 in 10,000
COMMON_RATES = {"r1": 0.001, "r2": 0.0001, "s1": 0.001, "s2": 0.0001}


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def sample_size_common(mu: float, alpha: float, gamma: float = GAMMA, *,
                       r1: float = COMMON_RATES["r1"], r2: float = COMMON_RATES["r2"],
                       s1: float = COMMON_RATES["s1"], s2: float = COMMON_RATES["s2"],
                       converge: bool = False) -> int | None:
    """The initial super-simple size as the common tools compute it (Arlo's
    ``supersimple.get_sample_sizes``; rlacalc's ``KM_Expected_sample_size_rounded`` with
    ``converge``): n0 = ceil(ln alpha / (ln(1 - mu/(2 gamma)) - r1 ln(1 - 1/(2 gamma))
    - r2 ln(1 - 1/gamma) - s1 ln(1 + 1/(2 gamma)) - s2 ln(1 + 1/gamma))); then the expected
    discrepancy counts at n0, one-vote ones rounded up and two-vote ones to nearest, are
    put into :func:`sample_size` (at least their sum). Arlo does this once; rlacalc repeats
    it until n stops changing. None when the rates leave no drift (every ballot)."""
    denom = (math.log(1 - mu / (2 * gamma)) - r1 * math.log(1 - 1 / (2 * gamma))
             - r2 * math.log(1 - 1 / gamma) - s1 * math.log(1 + 1 / (2 * gamma))
             - s2 * math.log(1 + 1 / gamma))
    if denom >= 0:
        return None
    n = math.ceil(math.log(alpha) / denom)
    for _ in range(10 if converge else 1):
        o1, u1 = math.ceil(r1 * n), math.ceil(s1 * n)
        o2, u2 = _round_half_up(r2 * n), _round_half_up(s2 * n)
        new = max(o1 + o2 + u1 + u2, sample_size(mu, alpha, gamma, o1=o1, o2=o2, u1=u1,
                                                 u2=u2))
        if new == n:
            break
        n = new
    return n
