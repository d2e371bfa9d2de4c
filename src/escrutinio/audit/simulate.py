"""Simulated audits of a wrongly reported outcome: the empirical check of the risk limit.

A synthetic runoff is reported with winner W, but the true tallies (what a hand count
would find) make L the winner or a tie. Every simulated audit draws actas as the real
audit would (PPEB with replacement, or uniformly without replacement) and checks the risk
after each draw, up to ``max_draws`` (standing for the full hand count that would reveal
the truth). The share of audits that *confirm* the wrong outcome must stay at or below the
risk limit. Draws use ``numpy.random.Generator(PCG64(seed))`` for speed; the SHA-256
samplers are checked separately against published vectors and for proportionality.

Scenarios (how the wrong outcome hides in the actas):

* ``concentrated`` — a few actas carry their whole error bound (every ballot really for
  L); the least favourable case for Kaplan-Markov, whose risk limit is then nearly tight;
* ``spread`` — one or two votes moved from W to L in many actas;
* ``mixed`` — half of the needed overstatement each way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from escrutinio.audit import alpha as alpha_mod
from escrutinio.audit import bravo as bravo_mod
from escrutinio.audit import macro
from escrutinio.audit.model import AuditPopulation, population_from_arrays
from escrutinio.domain import Candidate, Contest, ContestKind

SIM_CONTEST = Contest(id="sim-runoff", name="simulated runoff", kind=ContestKind.RUNOFF,
                      country="ZZ", date="2000-01-01",
                      candidates=(Candidate("w", "W"), Candidate("l", "L")))


def synthetic_population(n_batches: int = 2000, margin_share: float = 0.02,
                         seed: int = 1) -> AuditPopulation:
    """Batches of 100-300 ballots, ~8% blank/null, reported margin ~``margin_share``."""
    rng = np.random.Generator(np.random.PCG64(seed))
    ballots = rng.integers(100, 301, n_batches)
    valid = np.round(ballots * rng.uniform(0.88, 0.96, n_batches)).astype(np.int64)
    p = np.clip(rng.normal(0.5 + margin_share / 2, 0.12, n_batches), 0.02, 0.98)
    w = np.round(valid * p).astype(np.int64)
    votes = np.column_stack([w, valid - w])
    ids = [f"{i:06d}" for i in range(1, n_batches + 1)]
    return population_from_arrays(SIM_CONTEST, ids, votes, ballots)


def wrong_truth(pop: AuditPopulation, scenario: str, seed: int = 2) -> np.ndarray:
    """True margins per batch (W minus L) such that the true overall margin is <= 0."""
    rng = np.random.Generator(np.random.PCG64(seed))
    m = pop.batch_margin[:, 0].astype(np.int64).copy()
    b = pop.ballots.astype(np.int64)
    need = int(pop.margin[0])  # total overstatement (in votes of margin) to erase it
    order = rng.permutation(pop.size)
    if scenario == "concentrated":
        gain = m + b  # making every ballot a vote for L removes m_p + b_p
        k = int(np.searchsorted(np.cumsum(gain[order]), need)) + 1
        m[order[:k]] = -b[order[:k]]
    elif scenario == "spread":
        # move one vote from W to L (2 votes of margin) in as many actas as needed
        k = need // 2 + 1
        idx = order[:k] if k <= pop.size else np.resize(order, k)
        np.add.at(m, idx, -2)
    elif scenario == "mixed":
        half = need // 2
        gain = m + b
        k = int(np.searchsorted(np.cumsum(gain[order]), half)) + 1
        m[order[:k]] = -b[order[:k]]
        rest = order[k:]
        n_spread = (need - int(gain[order[:k]].sum())) // 2 + 1
        if n_spread > 0:
            np.add.at(m, rest[np.arange(n_spread) % len(rest)], -2)
    else:
        raise ValueError(f"unknown scenario {scenario}")
    assert m.sum() <= 0, "the simulated truth must reverse (or tie) the outcome"
    return m


@dataclass(frozen=True, slots=True)
class RiskLimitCheck:
    scenario: str
    method: str
    risk_limit: float
    trials: int
    max_draws: int
    wrongly_confirmed: int
    rate: float
    upper_3se: float  # rate + 3 standard errors
    ok: bool  # the rate is within 3 standard errors of the limit or below it


def _check(scenario: str, method: str, a: float, trials: int, max_draws: int,
           hits: int) -> RiskLimitCheck:
    rate = hits / trials
    se = math.sqrt(a * (1 - a) / trials)
    return RiskLimitCheck(scenario, method, a, trials, max_draws, hits, rate, rate + 3 * se,
                          rate <= a + 3 * se)


def risk_limit_trials(pop: AuditPopulation, true_margin: np.ndarray, *, risk_limit: float,
                      trials: int, seed: int = 3, scenario: str = "",
                      params: alpha_mod.AlphaParams | None = None,
                      bound_factor: float = 1.0,
                      max_draws: int | None = None) -> list[RiskLimitCheck]:
    """Simulated MACRO, ALPHA-PPEB and ALPHA-uniform audits of the wrong outcome.

    ``bound_factor`` < 1 deliberately understates U (a *broken* audit) to show that the
    check can fail.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    w = pop.weights_float()
    v = float(pop.margin[0])
    u_p = w / pop.scale
    taint = np.where(u_p > 0, ((pop.batch_margin[:, 0] - true_margin) / v) / u_p, 0.0)
    U = float(pop.U) * bound_factor  # noqa: N806
    n0 = macro.zero_discrepancy_draws(pop.U, risk_limit)
    n_max = max_draws or 3 * n0
    u_star = pop.size * float(u_p.max())
    taint_u = ((pop.batch_margin[:, 0] - true_margin) / v) / float(u_p.max())
    cum = np.cumsum(w)
    thr = math.log(1 / risk_limit)
    hits = {"macro": 0, "alpha": 0, "alpha_uniform": 0}
    chunk = max(1, 2_000_000 // n_max)
    done = 0
    n_u = min(n_max, pop.size)
    while done < trials:
        r = min(chunk, trials - done)
        done += r
        pos = np.minimum(np.searchsorted(cum, rng.random((r, n_max)) * cum[-1], side="right"),
                         pop.size - 1)
        t = taint[pos]
        with np.errstate(divide="ignore"):
            km = -np.cumsum(math.log1p(-1 / U) - np.log1p(-np.minimum(t, 1.0)), axis=1)
        hits["macro"] += int(np.sum(km.max(axis=1) >= thr))
        lw = alpha_mod.log_wealth(alpha_mod.comparison_x(t, U), U, params)
        hits["alpha"] += int(np.sum(lw.max(axis=1) >= thr + alpha_mod.slack(n_max)))
        perm = np.argsort(rng.random((r, pop.size)), axis=1)[:, :n_u]
        xu = alpha_mod.comparison_x(taint_u[perm], u_star * bound_factor)
        lwu = alpha_mod.log_wealth(xu, u_star * bound_factor, params, n_pop=pop.size)
        hits["alpha_uniform"] += int(np.sum(lwu.max(axis=1) >= thr + alpha_mod.slack(n_u)))
    return [_check(scenario, m, risk_limit, trials, n_u if m == "alpha_uniform" else n_max,
                   h) for m, h in hits.items()]


def bravo_trials(p_w: float, p_l: float, *, risk_limit: float, trials: int,
                 max_ballots: int, seed: int = 4) -> RiskLimitCheck:
    """BRAVO audits of a reported W-win (shares p_w, p_l) when the truth is a tie."""
    rng = np.random.Generator(np.random.PCG64(seed))
    s = p_w / (p_w + p_l)
    relevant = p_w + p_l
    zw, zl = math.log(2 * s), math.log(2 - 2 * s)
    thr = math.log(1 / risk_limit)
    hits = 0
    chunk = max(1, 2_000_000 // max_ballots)
    done = 0
    while done < trials:
        r = min(chunk, trials - done)
        done += r
        u = rng.random((r, max_ballots))
        steps = np.where(u < relevant / 2, zw, np.where(u < relevant, zl, 0.0))
        hits += int(np.sum(np.cumsum(steps, axis=1).max(axis=1) >= thr))
    _ = bravo_mod  # the formulas live there; here only the path is simulated
    return _check("tie", "bravo", risk_limit, trials, max_ballots, hits)
