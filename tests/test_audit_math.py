"""Audit formulas against hand-computed values, bounds, assertions and risk properties."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escrutinio.audit import alpha, bravo, macro, supersimple
from escrutinio.audit.model import Policy, build_assertions, build_population
from escrutinio.audit.simulate import (
    bravo_trials,
    risk_limit_trials,
    synthetic_population,
    wrong_truth,
)
from escrutinio.domain import Candidate, Contest, ContestKind

RUNOFF = Contest("t", "t", ContestKind.RUNOFF, "ZZ", "2000-01-01",
                 (Candidate("a", "A"), Candidate("b", "B")))


def frame(rows):
    cols = ["acta_id", "status", "electors", "cast", "blank", "null", "challenged", "v_a", "v_b"]
    return pl.DataFrame([dict(zip(cols, r, strict=True)) for r in rows],
                        schema={c: (pl.String if c in ("acta_id", "status") else pl.Int64)
                                for c in cols})


ROWS = [  # acta, status, electors, cast, blank, null, challenged, A, B
    ("000001", "counted", 300, 200, 5, 15, 0, 100, 80),
    ("000002", "counted", 300, 150, 0, 10, 0, 60, 80),
    ("000003", "annulled", 300, 120, 0, 120, 0, 0, 0),
    ("000004", "not_installed", 250, 0, 0, 0, 0, 0, 0),
    ("000005", "jee", 200, 90, 0, 0, 0, 50, 40),
    ("000006", "counted", 300, 210, 10, 0, 0, 130, 70),
]


def test_error_bounds_and_conservative_policies_by_hand():
    pop = build_population(frame(ROWS), RUNOFF)
    # reported A - B = 20 - 20 + 60 = 60; the JEE acta (no reported figures) is subtracted
    # with its 200 electors: V = 60 - 200 < 0 -> not auditable
    assert pop.reported_margin == (60,) and pop.subtracted == (200,)
    assert not pop.auditable
    pop = build_population(frame(ROWS), RUNOFF, policy=Policy(unresolved="batch"))
    assert pop.margin == (60,)
    # u_p V = m_p + b_p: 20+200, -20+150, 0+120 (annulled), 0+250 (phantom), 0+200, 60+210
    assert pop.weights.tolist() == [220, 130, 120, 250, 200, 270]
    assert pop.total_weight == 1190 and pop.scale == 60
    sub = build_population(frame(ROWS), RUNOFF, policy=Policy(
        unresolved="batch", annulled="subtract", not_installed="subtract"))
    assert sub.margin == (60 - 120 - 250,) and not sub.auditable
    el = build_population(frame(ROWS), RUNOFF, policy=Policy(unresolved="batch",
                                                             ballot_bound="electors"))
    assert el.weights.tolist() == [320, 280, 300, 250, 200, 360]


def test_assertions_runoff_majority_and_no_majority():
    c3 = Contest("f", "f", ContestKind.FIRST_ROUND, "ZZ", "2000-01-01",
                 (Candidate("x", "X"), Candidate("y", "Y"), Candidate("z", "Z")), 0.5)
    a, win = build_assertions(c3, {"x": 60, "y": 30, "z": 10})
    assert win == ("x",)
    assert [s.id for s in a] == ["majority:x", "x>y", "x>z"]
    assert a[0].coef == (1, -1, -1) and a[0].neg == 1
    a, win = build_assertions(c3, {"x": 45, "y": 40, "z": 15})
    assert win == ("x", "y")
    assert [s.id for s in a] == ["x>z", "y>z", "no_majority:x", "no_majority:y"]
    assert a[2].coef == (-1, 1, 1)
    a, win = build_assertions(RUNOFF, {"a": 10, "b": 12})
    assert win == ("b",) and a[0].id == "b>a"


def test_macro_sample_sizes_and_pvalues_by_hand():
    # ln(0.05)/ln(0.99) = 298.07 -> 299 draws for U = 100
    assert macro.zero_discrepancy_draws(Fraction(100), "0.05") == 299
    assert macro.zero_discrepancy_draws(Fraction(100), "0.10") == 230  # 229.1
    # exact boundary: (1 - 1/2)^n <= 1/8 needs exactly n = 3
    assert macro.zero_discrepancy_draws(Fraction(2), Fraction(1, 8)) == 3
    U = Fraction(4)  # noqa: N806
    assert macro.km_pvalue(U, [Fraction(0)] * 3) == Fraction(27, 64)
    # (3/4)^3 / (1 - 1/4) = 9/16
    assert macro.km_pvalue(U, [Fraction(0), Fraction(0), Fraction(1, 4)],
                           running_min=False) == Fraction(9, 16)
    assert macro.km_pvalue(U, [Fraction(0), Fraction(1)]) == Fraction(3, 4)  # min before
    assert macro.km_pvalue(U, [Fraction(1), Fraction(0)]) == 1
    assert macro.km_pvalue(U, [Fraction(-1, 2)], running_min=False) == Fraction(1, 2)


def test_supersimple_bravo_alpha_by_hand():
    assert supersimple.sample_size(0.05, 0.10) == 96  # Stark's "4.8 / mu"
    assert supersimple.sample_size(0.05, 0.10, o1=1) == 123  # 122.98
    # the sample-size formula uses ln(1 - x) ~ -x, so it asks for one ballot more than
    # the exact P-value needs: (1 - 0.05/2.0781)^95 = 0.0989
    assert supersimple.pvalue(95, 0.05) <= 0.10 < supersimple.pvalue(94, 0.05)
    assert bravo.bravo_asn(0.55, 0.45, 0.10) == pytest.approx(469.26, abs=0.01)
    assert bravo.bravo_asn(0.45, 0.55, 0.10) is None
    # ALPHA with no discrepancies bets c_max of the all-in (KM) bet: a few more draws
    n_km = macro.zero_discrepancy_draws(Fraction(100), 0.05)
    n_al = alpha.zero_discrepancy_draws(100.0, 0.05)
    assert n_km <= n_al <= n_km * 1.02 + 1
    x0 = alpha.comparison_x(np.zeros(1), 100.0)[0]
    assert x0 == pytest.approx(1 / (2 * 0.99))
    assert alpha.eta_of_bet(0.0, 0.5, 1.0) == 0.5


taints = st.lists(st.fractions(min_value=Fraction(-1), max_value=Fraction(49, 50),
                               max_denominator=50), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(taints, st.integers(0, 39), st.fractions(min_value=Fraction(0),
                                                 max_value=Fraction(1), max_denominator=20))
def test_risk_never_falls_when_discrepancies_grow(ts, i, bump):
    U = Fraction(37, 2)  # noqa: N806
    i %= len(ts)
    worse = list(ts)
    worse[i] = min(Fraction(49, 50), worse[i] + bump)
    assert macro.km_pvalue(U, worse) >= macro.km_pvalue(U, ts)
    assert macro.km_pvalue(U, worse, running_min=False) >= macro.km_pvalue(U, ts,
                                                                             running_min=False)
    a = np.array([float(t) for t in ts])
    b = np.array([float(t) for t in worse])
    for n_pop in (None, 60):
        la = alpha.log_wealth(alpha.comparison_x(a, 18.5), 18.5, n_pop=n_pop)
        lb = alpha.log_wealth(alpha.comparison_x(b, 18.5), 18.5, n_pop=n_pop)
        assert alpha.risk_from_log_wealth(lb) >= alpha.risk_from_log_wealth(la) - 1e-12


def test_risk_limit_holds_on_simulated_wrong_outcomes():
    """Reduced version of validation/audit_risk_limit.py (which runs >= 10,000 audits)."""
    pop = synthetic_population(1500, 0.03, seed=11)
    for scenario in ("concentrated", "mixed"):
        truth = wrong_truth(pop, scenario, seed=12)
        for chk in risk_limit_trials(pop, truth, risk_limit=0.10, trials=1500, seed=13,
                                     scenario=scenario):
            assert chk.ok, chk
        # the same check catches a broken audit that understates the error bound
        broken = risk_limit_trials(pop, truth, risk_limit=0.10, trials=1500, seed=13,
                                   scenario=scenario, bound_factor=0.5)
        assert not any(b.ok for b in broken)
    assert bravo_trials(0.55, 0.40, risk_limit=0.10, trials=1500, max_ballots=1500).ok
    # concentrated errors make Kaplan-Markov nearly tight: the rate is close to the limit
    tight = risk_limit_trials(pop, wrong_truth(pop, "concentrated", seed=12),
                              risk_limit=0.10, trials=1500, seed=14)[0]
    assert 0.06 < tight.rate <= 0.10 + 3 * math.sqrt(0.09 / 1500)


def test_sparse_first_passage_matches_dense_paths():
    from escrutinio.audit.plan import first_passage_sparse

    rng = np.random.Generator(np.random.PCG64(5))
    n, r, c, thr = 300, 400, 0.02, math.log(20)
    dense = np.zeros((r, n))
    pos = np.full((r, 4), n + 1)
    d = np.zeros((r, 4))
    for i in range(r):
        k = int(rng.integers(0, 5))
        where = np.sort(rng.choice(np.arange(1, n + 1), size=k, replace=False))
        vals = rng.uniform(-0.5, 0.05, size=k)
        pos[i, :k], d[i, :k] = where, vals
        dense[i, where - 1] = vals
    path = np.cumsum(c + dense, axis=1)
    hit = path >= thr
    expected = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)
    assert np.array_equal(first_passage_sparse(c, pos, d, thr, n), expected)
