"""Ballot polling: BRAVO (Lindeman, Stark & Yates 2012) and Minerva's first round.

BRAVO for an assertion "W beats L" with reported vote shares p_w, p_l of *all* ballots
(blank and null included: they are drawn but do not move the test) and
``s = p_w / (p_w + p_l)``: each drawn ballot for W multiplies T by ``2s``, each for L by
``2 - 2s``; risk = 1/T; stop when T >= 1/alpha. Average sample number (BRAVO eq. 5):

    ASN = (ln(1/alpha) + ln(2s)/2) / (p_w ln(2s) + p_l ln(2 - 2s)).

Minerva (Zagórski et al. 2021): in a round of n relevant ballots with k for the winner,
stop if ``P(K >= k | s) / P(K >= k | 1/2) >= 1/alpha``. First-round sizes (the smallest n
with a 90% chance to stop) use the **exact** binomial tails (log-space sums of the
binomial probabilities, :func:`minerva_first_round_probability_exact`) up to
:data:`MINERVA_EXACT_MAX` ballots, i.e. for every contest whose size is not astronomic;
for n <= :data:`MINERVA_SCAN_MAX` every n is tried (the probability is not monotone in n
for small n: discreteness), above it bisection. The normal approximation to both tails
(:func:`minerva_first_round_probability`) was ~11% too small for small contests; it is
used only above ``MINERVA_EXACT_MAX`` where its relative error is below 0.1%.

Ballot polling needs the paper ballots, retrievable one by one. At a margin of a quarter
of a percent it needs on the order of a million ballots: we say so instead of
recommending it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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


#: exact binomial tails up to this many relevant ballots (O(n) memory and time per n)
MINERVA_EXACT_MAX = 5_000_000
#: below this size every n is tried (the exact probability is not monotone in n)
MINERVA_SCAN_MAX = 3_000


def minerva_first_round_probability_exact(n: int, s: float, alpha: float) -> float:
    """P(Minerva stops after a first round of n relevant ballots), exact: with k_min the
    smallest k such that P(K >= k | s) >= P(K >= k | 1/2) / alpha (K ~ Binomial(n, .)),
    the probability is P(K >= k_min | s). The tails are summed in log space."""
    if n <= 0 or s <= 0.5:
        return 0.0
    # only k from ~n/2 (below it the ratio of the tails is below 2 <= 1/alpha) up to 40
    # standard deviations above n s (beyond it every term is below e^-800) matter
    lo = max(0, math.floor(n / 2 - 5 * math.sqrt(n)))
    hi = min(n, math.ceil(n * s + 40 * math.sqrt(n * s * (1 - s)) + 10))
    k = np.arange(lo, hi + 1, dtype=np.float64)
    log_c = (math.lgamma(n + 1) - math.lgamma(lo + 1) - math.lgamma(n - lo + 1)
             + np.concatenate([[0.0], np.cumsum(np.log(n - k[1:] + 1) - np.log(k[1:]))]))
    lp_s = log_c + k * math.log(s) + (n - k) * math.log1p(-s)
    lp_0 = log_c + n * math.log(0.5)
    lsf_s = np.logaddexp.accumulate(lp_s[::-1])[::-1]
    lsf_0 = np.logaddexp.accumulate(lp_0[::-1])[::-1]
    ok = np.flatnonzero(lsf_s - lsf_0 >= math.log(1 / alpha) - 1e-12)
    if ok.size == 0:
        return 0.0
    return float(math.exp(min(0.0, lsf_s[ok[0]])))


def minerva_size(s: float, alpha: float, target: float = 0.9) -> tuple[int | None, str]:
    """Smallest first round (relevant ballots) with a ``target`` chance that Minerva stops,
    and how it was computed: ``exact`` (every n tried), ``exact_bisection`` or ``normal``."""
    approx = first_round_size(lambda n: minerva_first_round_probability(n, s, alpha), target)
    if approx is None:
        return None, "normal"
    if approx > MINERVA_EXACT_MAX:
        return approx, "normal"

    def exact(n: int) -> bool:
        return minerva_first_round_probability_exact(n, s, alpha) >= target

    if approx <= MINERVA_SCAN_MAX:
        for n in range(1, 2 * MINERVA_SCAN_MAX + 1):
            if exact(n):
                return n, "exact"
    lo, hi = max(1, int(approx * 0.8)), int(approx * 1.25) + 10
    while not exact(hi):
        lo, hi = hi, hi * 2
        if hi > MINERVA_EXACT_MAX:
            return approx, "normal"
    while exact(lo) and lo > 1:
        lo, hi = max(1, lo // 2), lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if exact(mid):
            hi = mid
        else:
            lo = mid
    return hi, "exact_bisection"


def first_round_size(prob: Callable[[int], float], target: float, start: int = 1,
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
    minerva_method: str = ""  # exact | exact_bisection | normal (minerva_size)


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
    m90, how = minerva_size(s, alpha)
    share = np.asarray(ballots, np.float64) / total
    touched = float(np.sum(-np.expm1(asn * np.log1p(-np.minimum(share, 1 - 1e-16)))))
    frac = asn / total
    impractical = frac > 0.01 or touched > 0.5 * len(share)
    return PollingFigures(name, p_w, p_l, asn, n90, m90, touched, frac, impractical, how)
