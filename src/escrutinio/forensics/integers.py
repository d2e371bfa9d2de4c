"""Integer-percentage excess (Kobak, Shpilkin & Pshenichnikov 2016).

People who invent or "adjust" a result like round numbers. If turnout or a candidate's
share is written as a whole percentage more often than the arithmetic of each mesa's
size allows, something other than counting may have produced it.

For a count k out of a base n (cast of electors; a candidate's votes of valid votes)
the percentage 100·k/n lies within ±0.05 points of an integer iff
``20 · min(r, n − r) <= n`` with ``r = 100·k mod n`` (exact integer arithmetic). How
often that happens depends on n: with n = 100 every count is a whole percentage, with
n = 200 every even count, with n = 300 every third. So the expected number of such
actas is computed **at each acta's own size**: under Binomial(n_i, k_i/n_i) the
probability q_i of a hit is summed exactly over the binomial probabilities — conditioned,
like the observed value, on the percentage lying in the units' range — and the observed
number of hits H is compared with Σq_i (a Poisson-binomial law), or with ``draws``
Monte-Carlo draws of the hit indicators.

Units as in Kobak et al.: base ≥ 100 (electors for turnout, valid votes for a share) and
the percentage ≤ 99 % (100 % is trivially whole); shares ≥ 1 %.
One-sided: only an *excess* is suspicious.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from escrutinio.forensics.common import Scope, ScopeResult, per_region_sum
from escrutinio.forensics.inputs import ForensicInput
from escrutinio.forensics.stats import mc_pvalue, poisson_binomial_sf

MIN_BASE = 100


def integer_hit(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """1 where 100·k/n is within ±0.05 points of an integer, else 0.

    Exactly ``20 · min(r, n − r) <= n`` with ``r = 100·k mod n``; computed in floating
    point (twice as fast as integer modulo): the distance to the nearest whole
    percentage is min(r, n − r)/n, and the tolerance 1e-9 is far below the 1/(20n) gap
    between the boundary and the next possible value for any n < 10⁷."""
    x = k * (100.0 / np.maximum(n, 1))
    return (np.abs(x - np.rint(x)) <= 0.05 + 1e-9).astype(np.int64)


def _in_range(k: np.ndarray, n: np.ndarray, turnout: bool) -> np.ndarray:
    pct = k / np.maximum(n, 1)
    ok = pct <= 0.99
    return ok if turnout else ok & (pct >= 0.01)


def integer_units(count: np.ndarray, base: np.ndarray, turnout: bool) -> np.ndarray:
    """Kobak's units: base ≥ 100, percentage ≤ 99 % (shares also ≥ 1 %)."""
    return (base >= MIN_BASE) & (count <= base) & _in_range(count, base, turnout)


def integer_category_turnout(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """0 = in range, not whole; 1 = in range, whole; 2 = outside the units' range."""
    return np.where(_in_range(k, n, True), integer_hit(k, n), 2)


def integer_category_share(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """As :func:`integer_category_turnout`, for a share (range 1 %-99 %)."""
    return np.where(_in_range(k, n, False), integer_hit(k, n), 2)


def integer_candidates(inp: ForensicInput, candidates: list[int]) -> list[int]:
    """In a two-candidate race both shares are whole together: test the first only."""
    if len(inp.codes) == 2 and len(candidates) == 2:
        return candidates[:1]
    return candidates


def hit_probability(q3: np.ndarray) -> np.ndarray:
    """P(whole | inside the units' range) from the 3-category probabilities.

    Units are chosen by their observed percentage (≤ 99 %, shares ≥ 1 %), so the null
    must be conditioned the same way: a redraw to 0 % or 100 % — trivially whole — must
    not count. Without this, a candidate with ~10 votes per mesa gets an expected count
    of whole percentages far above the truth (Chile 2021, Parisi: 4,445 vs 4,229)."""
    inside = q3[:, 0] + q3[:, 1]
    return np.where(inside > 0, q3[:, 1] / np.where(inside > 0, inside, 1.0), 0.0)


def simulate_hits(q: np.ndarray, reg: np.ndarray, n_reg: int, draws: int,
                  rng: np.random.Generator, *, max_cells: int = 4_000_000) -> np.ndarray:
    """Monte-Carlo null of the hit counts per region: each unit's hit indicator is
    Bernoulli(q_i) (its exact conditional binomial law). Returns (draws, regions)."""
    out = np.zeros((draws, n_reg), dtype=np.int64)
    if len(q) == 0:
        return out
    step = max(1, min(draws, max_cells // len(q)))
    order = np.argsort(reg, kind="stable")
    rs, qs = reg[order], q[order]
    starts = np.flatnonzero(np.r_[True, rs[1:] != rs[:-1]])
    for d0 in range(0, draws, step):
        b = min(step, draws - d0)
        hits = (rng.random((b, len(qs))) < qs[None, :]).astype(np.int64)
        out[d0:d0 + b, rs[starts]] = np.add.reduceat(hits, starts, axis=1)
    return out


def summarize_integer(
    hits: np.ndarray, q: np.ndarray, reg: np.ndarray, n_reg: int, scopes: list[Scope],
    null_hits: np.ndarray | None,
) -> list[ScopeResult]:
    """Per-scope results from observed hits (units,), their null probabilities q (units,),
    the units' regions and optional Monte-Carlo hits per draw and region (B, R)."""
    obs_r = per_region_sum(hits.astype(float), reg, n_reg)
    exp_r = per_region_sum(q, reg, n_reg)
    units_r = np.bincount(reg, minlength=n_reg)
    rows = []
    for sc in scopes:
        regs = list(sc.regions)
        h = float(obs_r[regs].sum())
        e = float(exp_r[regs].sum())
        n_units = int(units_r[regs].sum())
        qq = q if sc.kind == "national" else q[np.isin(reg, regs)]
        p_an = poisson_binomial_sf(h, qq) if n_units else 1.0
        p, method = p_an, "analytic"
        details: dict[str, object] = {"hits": int(h), "expected_hits": round(e, 2),
                                      "p_analytic": p_an}
        if null_hits is not None and n_units:
            nulls = null_hits[:, regs].sum(axis=1).astype(float)
            p_mc = mc_pvalue(nulls, h)
            details |= {"p_monte_carlo": p_mc, "null_mean": float(nulls.mean()),
                        "null_sd": float(nulls.std()), "draws": len(nulls)}
            # beyond the Monte-Carlo resolution the analytic tail is the better estimate
            if int(np.count_nonzero(nulls >= h)) < 5:
                p, method = p_an, "analytic_tail"
            else:
                p, method = p_mc, "monte_carlo"
        rows.append(ScopeResult(
            scope=sc.id, n_units=n_units, statistic=h, expected=e,
            effect=(h / e if e > 0 else float("nan")), p_value=float(p), p_method=method,
            details=details))
    return rows


def integer_hits_mask(inp: ForensicInput, candidate: int | None) -> np.ndarray:
    """Which actas report a whole percentage (turnout when ``candidate`` is None)."""
    if candidate is None:
        if inp.electors is None:
            return np.zeros(inp.n, dtype=bool)
        return integer_hit(inp.cast, inp.electors).astype(bool) & integer_units(
            inp.cast, inp.electors, True)
    count = inp.votes[:, candidate]
    return integer_hit(count, inp.valid).astype(bool) & integer_units(count, inp.valid, False)


# -- Kobak, Shpilkin & Pshenichnikov's combined count -------------------------------------
#: Monte-Carlo draws of the combined count when the report asks for none: resolution
#: 1/200, and the analytic Poisson-binomial tail beyond it (as for the integer test)
KOBAK_DRAWS = 199
COMBINED = "turnout_or_share"


def combined_hits(cast: np.ndarray, electors: np.ndarray, lead: np.ndarray,
                  valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hit, unit): the acta reports turnout *or* the leader's share as a whole percentage
    (±0.05 points), each within its own units' range (base ≥ 100; ≤ 99 %; shares ≥ 1 %);
    unit = it is a unit for either. Works on arrays of any shape."""
    t_unit = integer_units(cast, electors, True)
    s_unit = integer_units(lead, valid, False)
    hit = ((t_unit & integer_hit(cast, electors).astype(bool))
           | (s_unit & integer_hit(lead, valid).astype(bool)))
    return hit, t_unit | s_unit


def run_combined(
    inp: ForensicInput, leader: int, scopes: list[Scope], draws: int,
    rng: np.random.Generator, probs: dict[str, tuple[np.ndarray, np.ndarray]],
) -> list[ScopeResult]:
    """Kobak et al.'s combined count against the binomial null at each acta's own size.

    Per acta, the probability of a whole turnout under Binomial(electors, turnout) and of
    a whole leader share under Binomial(valid, share) are the integer test's exact ones
    (``probs``, from :func:`escrutinio.forensics.engine.run_count_tests`); the two
    redraws are independent, so P(turnout or share whole) = 1 − (1 − q_t)(1 − q_s). The
    count's law is then simulated over actas (``draws`` Bernoulli redraws of every acta,
    Kobak's Monte Carlo without redrawing the counts themselves each time), with the
    analytic Poisson-binomial tail beyond the Monte-Carlo resolution, as for the
    integer test."""
    assert inp.electors is not None
    code = inp.codes[leader]
    hit, unit = combined_hits(inp.cast, inp.electors, inp.votes[:, leader], inp.valid)
    q_t = np.zeros(inp.n)
    q_s = np.zeros(inp.n)
    if "turnout" in probs:
        q_t[probs["turnout"][0]] = probs["turnout"][1]
    if code in probs:
        q_s[probs[code][0]] = probs[code][1]
    q_or = 1.0 - (1.0 - q_t) * (1.0 - q_s)
    rows = np.flatnonzero(unit)
    n_reg = len(inp.region_codes)
    reg = inp.region_idx[rows]
    null = simulate_hits(q_or[rows], reg, n_reg, draws, rng) if draws > 0 else None
    out = summarize_integer(hit[rows], q_or[rows], reg, n_reg, scopes, null)
    return [replace(r, details=r.details | {"leader": code}) for r in out]
