"""Projection model: properties on synthetic elections with a known truth.

Each test can fail: the synthetic elections are generated with a known structure
(area swings, a baseline, a non-random arrival order) and the projection is checked
against the truth and against its own promises (nested intervals, bounds, call rule)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from numpy.random import PCG64, Generator

from escrutinio.count import hurdle
from escrutinio.domain import Candidate, Contest, ContestKind
from escrutinio.projection.effects import fit_hierarchy
from escrutinio.projection.model import JeeOutcomes, ModelParams, project_actas
from escrutinio.projection.result import CallStatus, Component
from escrutinio.projection.units import project_series, project_units
from escrutinio.provenance import to_jsonable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
from projection_synthetic import RUNOFF, partial, synthetic, truth

FIRST = Contest("zz-1v", "Sintética 1v", ContestKind.FIRST_ROUND, "ZZ", "2031-04-01",
                tuple(Candidate(c, c.title()) for c in ("a", "b", "c", "d")),
                majority_threshold=0.5)


def test_fully_counted_is_exact() -> None:
    final, _, _ = synthetic(800)
    p = project_actas(final, RUNOFF, params=ModelParams(n_sims=500))
    m = truth(final)
    lead = 1 if p.margin.leader == "azul" else -1
    assert lead * p.margin.median == pytest.approx(m)
    for iv in p.margin.intervals:
        assert iv.upper - iv.lower == pytest.approx(0.0)
    assert p.call.status is CallStatus.CALLED and p.call.winner == p.margin.leader
    assert p.components == ()


def test_nested_intervals_and_never_below_counted() -> None:
    final, base, rural = synthetic(3000)
    counted = rural < np.quantile(rural, 0.6)
    snap = partial(final, counted)
    p = project_actas(snap, RUNOFF, baseline=base, params=ModelParams(n_sims=3000))
    for c in p.candidates:
        ivs = sorted(c.intervals, key=lambda iv: iv.level)
        for small, big in itertools.pairwise(ivs):
            assert big.lower <= small.lower and small.upper <= big.upper
        assert ivs[-1].lower >= c.counted  # nobody loses counted votes
        remaining_electors = snap.filter(pl.col("status") == "pending")["electors"].sum()
        assert ivs[-1].upper <= c.counted + remaining_electors
    m = sorted(p.margin.intervals, key=lambda iv: iv.level)
    assert all(b.lower <= a.lower and a.upper <= b.upper for a, b in itertools.pairwise(m))


def test_baseline_corrects_non_random_order() -> None:
    """Urban places counted first: the raw count is biased, the projection is not."""
    final, base, rural = synthetic(6000, seed=3)
    counted = rural < np.quantile(rural, 0.7)
    snap = partial(final, counted)
    p = project_actas(snap, RUNOFF, baseline=base, params=ModelParams(n_sims=4000))
    m = truth(final)
    lead = 1 if p.margin.leader == "azul" else -1
    raw = int(snap["v_azul"].sum() - snap["v_rojo"].sum())
    proj = lead * p.margin.median
    assert abs(proj - m) < 0.25 * abs(raw / 0.7 - m)  # far better than the naive baseline
    iv = p.margin.interval(0.95)
    lo, hi = sorted((lead * iv.lower, lead * iv.upper))
    assert lo <= m <= hi
    pend = next(c for c in p.components if c.component is Component.PENDING_HOME)
    assert pend.n_items == int((~counted & ~final["abroad"].to_numpy()).sum())


def test_correlated_errors_widen_intervals() -> None:
    """The national shock is what makes errors correlated: switching it off narrows the
    interval; a principled model must not be narrower than that."""
    final, base, rural = synthetic(4000, seed=5)
    snap = partial(final, rural < np.quantile(rural, 0.5))
    widths = []
    for frac in (0.0, 1.0, 3.0):
        p = project_actas(snap, RUNOFF, baseline=base,
                          params=ModelParams(n_sims=4000, national_fraction=frac))
        iv = p.margin.interval(0.9)
        widths.append(iv.upper - iv.lower)
        if frac == 0.0:
            assert p.shocks.national_share == 0.0
        else:
            assert p.shocks.national_share > 0.0
    assert widths[0] < widths[1] < widths[2]


def test_calibration_over_many_synthetic_counts() -> None:
    """Coverage of the 80% interval over independent synthetic counts with a non-random
    order is at least nominal minus sampling slack (20 counts: ≥ 12)."""
    hits80 = hits50 = 0
    n = 20
    for seed in range(n):
        final, base, rural = synthetic(2500, seed=100 + seed, lean=0.05 * (seed % 5 - 2))
        snap = partial(final, rural < np.quantile(rural, 0.65))
        p = project_actas(snap, RUNOFF, baseline=base, params=ModelParams(n_sims=2000,
                                                                         seed=seed))
        m = truth(final)
        lead = 1 if p.margin.leader == "azul" else -1
        for level, counter in ((0.8, "80"), (0.5, "50")):
            iv = p.margin.interval(level)
            lo, hi = sorted((lead * iv.lower, lead * iv.upper))
            if lo <= m <= hi:
                if counter == "80":
                    hits80 += 1
                else:
                    hits50 += 1
    assert hits80 >= 12
    assert hits50 >= 5  # and not absurdly wide either: 50% must miss sometimes or cover


def test_jee_actas_with_figures() -> None:
    final, _, rural = synthetic(1500, seed=7)
    jee = np.zeros(final.height, bool)
    jee[:100] = True
    snap = partial(final, ~jee, jee_mask=jee)
    out = JeeOutcomes()
    p = project_actas(snap, RUNOFF, params=ModelParams(n_sims=3000))
    comp = next(c for c in p.components if c.component is Component.JEE)
    assert comp.n_items == 100
    exp_azul = (1 - out.p_annulled) * final["v_azul"][:100].sum()
    assert comp.expected_votes["azul"] == pytest.approx(exp_azul, rel=0.02)
    del rural


def test_pending_without_baseline_uses_the_district() -> None:
    final, base, rural = synthetic(3000, seed=9)
    counted = rural < np.quantile(rural, 0.8)
    snap = partial(final, counted)
    p = project_actas(snap, RUNOFF, baseline=base.head(1500), params=ModelParams(n_sims=2000))
    d = p.diagnostics
    assert d["n_predicted_with_baseline"] > 0 and d["n_predicted_without_baseline"] > 0
    m = truth(final)
    lead = 1 if p.margin.leader == "azul" else -1
    iv = p.margin.interval(0.99)
    lo, hi = sorted((lead * iv.lower, lead * iv.upper))
    assert lo <= m <= hi


def test_hurdle_and_call_rule() -> None:
    final, base, rural = synthetic(3000, seed=11, lean=0.0)
    snap = partial(final, rural < np.quantile(rural, 0.5))
    p = project_actas(snap, RUNOFF, baseline=base, params=ModelParams(n_sims=2000))
    h = p.hurdle
    counted = {c.code: c.counted for c in p.candidates}
    lead = max(counted, key=counted.get)  # type: ignore[arg-type]
    assert h.leader == lead
    ref = hurdle(h.margin, h.remaining_two_candidate)
    assert h.required_share == ref.required_share
    if p.call.status is CallStatus.CALLED:
        assert p.call.probability >= 0.99
        assert p.margin.interval(0.99).lower > 0
    # the rule holds for every race
    for r in p.races:
        called = r.call.status is CallStatus.CALLED
        assert called == (r.p_leader_ahead >= 0.99 and r.interval(0.99).lower > 0)
    to_jsonable(p)  # serialisable


def test_effects_recover_variance_components() -> None:
    rng = Generator(PCG64(3))
    n1, n2, n3, per = 30, 8, 6, 10
    s1, s2, s3, se = 0.4, 0.2, 0.15, 0.5
    a1 = np.repeat(np.arange(n1), n2 * n3 * per)
    a2 = np.repeat(np.arange(n1 * n2), n3 * per)
    a3 = np.repeat(np.arange(n1 * n2 * n3), per)
    r = (rng.normal(0, s1, n1)[a1] + rng.normal(0, s2, n1 * n2)[a2]
         + rng.normal(0, s3, n1 * n2 * n3)[a3] + rng.normal(0, se, a1.size))
    fit = fit_hierarchy(r[:, None], np.ones(a1.size), [a1, a2, a3], ["a1", "a2", "a3"])
    est = [float(np.sqrt(lv.cov[0, 0])) for lv in fit.levels]
    assert est[0] == pytest.approx(s1, rel=0.35)
    assert est[1] == pytest.approx(s2, rel=0.2)
    assert est[2] == pytest.approx(s3, rel=0.2)
    assert float(np.sqrt(fit.resid_cov[0, 0])) == pytest.approx(se, rel=0.05)
    # an unseen group gets no effect and its full variance
    eff, fac = fit.levels[2].lookup(np.array([10**6]))
    assert eff[0, 0] == 0.0 and fac[0] == 1.0


def test_effects_predictive_variance_of_an_item_in_observed_groups() -> None:
    """Held-out items whose groups at every level were observed: the variance the factors
    give (Σ_level factor · Σ_level) matches their actual error around the predicted
    effects. A coarse level's error is absorbed by the finer levels' shrinkage estimates
    (factor f_coarse · Π f_finer²); counting every level's posterior in full, as before
    the ninth session, overstated it here by far."""
    rng = Generator(PCG64(11))
    n1, n2, n3, per = 20, 6, 5, 8
    s1, s2, s3 = 0.5, 0.3, 0.35
    a1 = np.repeat(np.arange(n1), n2 * n3 * per)
    a2 = np.repeat(np.arange(n1 * n2), n3 * per)
    a3 = np.repeat(np.arange(n1 * n2 * n3), per)
    truth_3 = (rng.normal(0, s1, n1)[np.arange(n1 * n2 * n3) // (n2 * n3)]
               + rng.normal(0, s2, n1 * n2)[np.arange(n1 * n2 * n3) // n3]
               + rng.normal(0, s3, n1 * n2 * n3))
    r = truth_3[a3] + rng.normal(0, 0.15, a1.size)
    held = rng.random(a1.size) < 0.1  # a tenth of each place, predicted from the rest
    fit = fit_hierarchy(r[~held, None], np.ones(int((~held).sum())),
                        [a1[~held], a2[~held], a3[~held]], ["a1", "a2", "a3"])
    places = np.unique(a3[held])
    grp = [places // (n2 * n3), places // n3, places]
    eff, fac = fit.predict(grp)
    err = truth_3[places] - eff[:, 0]
    var = sum(f * float(lv.cov[0, 0]) for f, lv in zip(fac, fit.levels, strict=True))
    ratio = float(np.sqrt(np.mean(var)) / np.sqrt(np.mean(err ** 2)))
    assert 0.75 < ratio < 1.3, ratio
    # an unseen place absorbs nothing: its region keeps its full posterior factor
    _, fac_new = fit.predict([np.array([0]), np.array([0]), np.array([10**6])])
    _, fac_obs = fit.predict([np.array([0]), np.array([0]), np.array([0])])
    assert fac_new[2][0] == 1.0 and fac_new[0][0] > 10 * fac_obs[0][0]


def _units_frame(rng: Generator, n: int, counted_share: np.ndarray) -> pl.DataFrame:
    k = len(FIRST.candidates)
    area = rng.integers(0, 6, n)
    lean = rng.normal(0, 0.6, (6, k))[area] + rng.normal(0, 0.3, (n, k))
    p = np.exp(lean) / np.exp(lean).sum(1, keepdims=True)
    actas = rng.integers(20, 80, n)
    counted = np.round(actas * counted_share).astype(int)
    per = rng.integers(150, 220, n)
    votes = np.array([rng.multinomial(int(c * q), pr) for c, q, pr in zip(counted, per, p,
                                                                            strict=True)])
    return pl.DataFrame({
        "level": "area3", "unit_code": [f"U{i}" for i in range(n)], "abroad": False,
        "actas_total": actas, "actas_counted": counted, "actas_processed": counted,
        "actas_jee": 0, "actas_pending": actas - counted, "actas_annulled": 0,
        "actas_not_installed": 0, "electors": counted * 250, "electors_total": None,
        "cast": votes.sum(1), "blank": 0, "null": 0, "challenged": None,
        **{c.column: votes[:, j] for j, c in enumerate(FIRST.candidates)},
    }, schema_overrides={"electors_total": pl.Int64, "challenged": pl.Int64}), area


def test_units_first_round_probabilities() -> None:
    rng = Generator(PCG64(21))
    frame, area = _units_frame(rng, 120, rng.uniform(0.3, 1.0, 120))
    parents = {f"U{i}": f"P{a}" for i, a in enumerate(area)}
    p = project_units(frame, FIRST, parents=parents, params=ModelParams(n_sims=3000))
    assert sum(c.p_top_two or 0 for c in p.candidates) == pytest.approx(2.0)
    assert sum(c.p_win for c in p.candidates) == pytest.approx(1.0)
    assert p.p_outright is not None and 0.0 <= p.p_outright <= 1.0
    assert len(p.races) == 2
    assert p.races[1].leader == sorted(p.candidates, key=lambda c: -c.median)[1].code
    for c in p.candidates:
        assert min(iv.lower for iv in c.intervals) >= c.counted


def test_units_all_counted_no_uncertainty() -> None:
    rng = Generator(PCG64(2))
    frame, _ = _units_frame(rng, 40, np.ones(40))
    p = project_units(frame, FIRST, params=ModelParams(n_sims=500))
    for c in p.candidates:
        assert c.median == c.counted


def test_series_without_history_is_humble() -> None:
    """One national cut and nothing else: the model must not call a 5-point race with a
    fifth of the votes to come."""
    p = project_series([([520_000, 480_000], 0.8)], RUNOFF, params=ModelParams(n_sims=2000))
    assert p.call.status is CallStatus.TOO_CLOSE
    assert 0.5 < p.p_win("azul") < 0.99


def test_actas_without_electors_is_a_clear_error() -> None:
    from escrutinio.errors import EscrutinioError

    final, _, rural = synthetic(300, seed=4)
    snap = partial(final, rural < 0).with_columns(pl.lit(None, pl.Int64).alias("electors"))
    with pytest.raises(EscrutinioError) as exc:
        project_actas(snap, RUNOFF, params=ModelParams(n_sims=100))
    assert "electores" in exc.value.message_es and "electors" in exc.value.message_en
