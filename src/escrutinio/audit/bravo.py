"""Ballot polling: BRAVO (Lindeman, Stark & Yates 2012) and Minerva's first round.

BRAVO for an assertion "W beats L" with reported vote shares p_w, p_l of *all* ballots
(blank and null included: they are drawn but do not move the test) and
``s = p_w / (p_w + p_l)``: each drawn ballot for W multiplies T by ``2s``, each for L by
``2 - 2s``; risk = 1/T; stop when T >= 1/alpha. Average sample number (BRAVO eq. 5):

    ASN = (ln(1/alpha) + ln(2s)/2) / (p_w ln(2s) + p_l ln(2 - 2s)).

Minerva (Zagórski et al. 2021): in a round of n relevant ballots with k for the winner,
stop if ``P(K >= k | s) / P(K >= k | 1/2) >= 1/alpha``. First-round sizes here use the
normal approximation to both binomial tails (accurate for the large n that thin margins
need); they are planning figures, not a stopping rule.

Ballot polling needs the paper ballots, retrievable one by one. At a margin of a quarter
of a percent it needs on the order of a million ballots: we say so instead of
recommending it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def bravo_asn(p_w: float, p_l: float, alpha: float) -> float | None:
    """BRAVO's average sample number in ballots (None when W does not lead)."""
    if p_w <= p_l or p_w <= 0:
        return None
    s = p_w / (p_w + p_l)
    z_w, z_l = math.log(2 * s), math.log(2 - 2 * s)
    return (math.log(1 / alpha) + z_w / 2) / (p_w * z_w + p_l * z_l)


def bravo_log_t(k_w: int | np.ndarray, k_l: int | np.ndarray, s: float) -> float | np.ndarray:
    return k_w * math.log(2 * s) + k_l * math.log(2 - 2 * s)


def bravo_risk(k_w: int, k_l: int, p_w: float, p_l: float) -> float:
    s = p_w / (p_w + p_l)
    return float(min(1.0, math.exp(-bravo_log_t(k_w, k_l, s))))


def _sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def bravo_first_round_probability(n: int, p_w: float, p_l: float, alpha: float) -> float:
    """P(T_n >= 1/alpha) after one round of n ballots (normal approximation to log T)."""
    s = p_w / (p_w + p_l)
    z_w, z_l = math.log(2 * s), math.log(2 - 2 * s)
    mean = p_w * z_w + p_l * z_l
    var = p_w * z_w**2 + p_l * z_l**2 - mean**2
    if n <= 0:
        return 0.0
    return _sf((math.log(1 / alpha) - n * mean) / math.sqrt(n * var))


def minerva_first_round_probability(n: int, s: float, alpha: float) -> float:
    """P(Minerva stops after a first round of n relevant ballots) (normal approximation)."""
    if n <= 0 or s <= 0.5:
        return 0.0
    sd0, sda = math.sqrt(n / 4), math.sqrt(n * s * (1 - s))
    lo, hi = n / 2, float(n)
    # smallest k with P_a(K>=k) >= P_0(K>=k)/alpha, searched on the continuous scale
    for _ in range(200):
        k = (lo + hi) / 2
        ok = _sf((k - n * s) / sda) * alpha >= _sf((k - n / 2) / sd0)
        if ok:
            hi = k
        else:
            lo = k
    return _sf((hi - n * s) / sda)


def first_round_size(prob: callable, target: float, start: int = 1,  # type: ignore[valid-type]
                     limit: int = 10**10) -> int | None:
    """Smallest n with prob(n) >= target (prob increasing in n), by doubling + bisection."""
    hi = max(1, start)
    while prob(hi) < target:
        hi *= 2
        if hi > limit:
            return None
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if prob(mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True, slots=True)
class PollingFigures:
    assertion: str
    p_w: float
    p_l: float
    asn_ballots: float | None
    bravo_90_ballots: int | None  # first round with a 90% chance of stopping
    minerva_90_relevant_ballots: int | None
    expected_actas_touched: float | None  # distinct actas holding the ASN ballots
    share_of_ballots: float | None
    impractical: bool


def polling_figures(name: str, votes_for: int, votes_against: int, ballots: np.ndarray,
                    alpha: float) -> PollingFigures:
    total = float(np.sum(ballots))
    p_w, p_l = votes_for / total, votes_against / total
    asn = bravo_asn(p_w, p_l, alpha)
    if asn is None:
        return PollingFigures(name, p_w, p_l, None, None, None, None, None, True)
    n90 = first_round_size(lambda n: bravo_first_round_probability(n, p_w, p_l, alpha), 0.9,
                           start=max(1, int(asn // 2)))
    s = p_w / (p_w + p_l)
    m90 = first_round_size(lambda n: minerva_first_round_probability(n, s, alpha), 0.9)
    share = np.asarray(ballots, np.float64) / total
    touched = float(np.sum(-np.expm1(asn * np.log1p(-np.minimum(share, 1 - 1e-16)))))
    frac = asn / total
    impractical = frac > 0.01 or touched > 0.5 * len(share)
    return PollingFigures(name, p_w, p_l, asn, n90, m90, touched, frac, impractical)
