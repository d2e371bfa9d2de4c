"""Quick count on the 2021 runoff final: design, public sample, estimators, fusion, and a
reduced repeated-sampling validation (the full one is validation/quickcount_coverage.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from defence_data import final, june8, urban_table
from escrutinio.defence import quickcount as qc
from escrutinio.defence.strata import assign_strata, peru_urban_districts

PAIR = ("castillo", "fujimori")
TRUE_SHARE = 8_835_653 / (8_835_653 + 8_791_696)


@pytest.fixture(scope="module")
def universe(data_dir: Path) -> pl.DataFrame:
    return assign_strata(final().frame, peru_urban_districts(urban_table()))


def test_urban_proxy_and_strata(universe: pl.DataFrame) -> None:
    assert universe.height == 86_488
    home = universe.filter(~pl.col("abroad"))
    share_urban = float(home["urban"].mean())
    assert 0.6 < share_urban < 0.75  # density >= 100/km²: 67% of home mesas
    assert universe.filter(pl.col("abroad"))["stratum"].unique().to_list() == ["abroad"]
    assert universe["stratum"].n_unique() == 49  # 24 departments × U/R + Callao U + abroad
    f = final().frame.join(universe.select("acta_id", "urban"), on="acta_id")
    def share(df: pl.DataFrame) -> float:
        return float(df["v_castillo"].sum() / (df["v_castillo"].sum() + df["v_fujimori"].sum()))
    assert share(f.filter(pl.col("urban") == True)) < 0.45 < 0.65 < share(  # noqa: E712
        f.filter(pl.col("urban") == False))  # noqa: E712


def test_sample_size_formula() -> None:
    s = qc.sample_size(0.01, population_voters=17_600_000, mean_votes_per_mesa=200, deff=10)
    pq = 0.25
    n = pq / ((0.01 / qc.Z95) ** 2 + pq / 17_600_000)
    assert s.voters_srs == pytest.approx(n) and 9_590 < n < 9_610
    assert s.mesas == int(np.ceil(n * 10 / 200))
    moe = qc.margin_of_error(s.mesas, mean_votes_per_mesa=200, deff=10,
                             population_voters=17_600_000)
    assert moe <= 0.01 < qc.margin_of_error(s.mesas - 1, mean_votes_per_mesa=200, deff=10,
                                            population_voters=17_600_000)


def test_allocation() -> None:
    e = np.array([1000.0, 50_000, 300_000, 1, 200])
    m = np.array([3, 170, 1000, 1, 1])
    for n in (8, 100, 900):
        a = qc.allocate(e, m, n)
        assert a.sum() == n and (a <= m).all() and (a >= np.minimum(m, 2)).all()
    assert qc.allocate(e, m, 2000).tolist() == m.tolist()
    with pytest.raises(ValueError):
        qc.allocate(e, m, 5)


def test_design_effect_on_real_data(universe: pl.DataFrame) -> None:
    f = final().frame.filter(pl.col("status") == "counted").join(universe, on="acta_id")
    de = qc.design_effect(f["v_castillo"].to_numpy(), f["v_fujimori"].to_numpy(),
                          f["stratum"].to_numpy())
    assert de.share == pytest.approx(TRUE_SHARE)
    assert 30 < de.deff_unstratified < 50 and 7 < de.deff_stratified < 14
    # stratification by department × urban/rural cuts the variance by ~3.7×
    assert de.deff_unstratified / de.deff_stratified > 3


def test_public_sample_is_reproducible(universe: pl.DataFrame) -> None:
    plan = qc.design(universe, n_mesas=1500)
    assert plan.n_mesas == 1500 and plan.n_strata == 49
    s1 = qc.draw_sample(universe, plan, "4 6 1 2 6 3")
    shuffled = universe.sample(fraction=1.0, shuffle=True, seed=3)
    s2 = qc.draw_sample(shuffled, plan, "4 6 1 2 6 3")
    assert s1.equals(s2)  # the row order of the mesa list does not matter
    r = s1.row(0, named=True)
    assert r["sha256"] == hashlib.sha256(f"4 6 1 2 6 3,{r['acta_id']}".encode()).hexdigest()
    # in each stratum, the chosen mesas are those with the smallest keys
    st = r["stratum"]
    keys = sorted(hashlib.sha256(f"4 6 1 2 6 3,{a}".encode()).hexdigest()
                  for a in universe.filter(pl.col("stratum") == st)["acta_id"])
    n_h = next(x.sample for x in plan.strata if x.stratum == st)
    assert s1.filter(pl.col("stratum") == st)["sha256"].to_list() == keys[:n_h]
    s3 = qc.draw_sample(universe, plan, "4 6 1 2 6 4")
    overlap = len(set(s1["acta_id"]) & set(s3["acta_id"]))
    assert overlap < 150  # another seed, another sample (~1.7% expected overlap)


def test_estimate_and_technical_tie(universe: pl.DataFrame) -> None:
    plan = qc.design(universe, n_mesas=1500)
    sample = qc.draw_sample(universe, plan, "dice 2021")
    reports = final().frame.join(sample.select("acta_id"), on="acta_id")
    e = qc.estimate(universe, reports, PAIR, seed=1, n_boot=1000, n_draws=2000)
    for iv in (e.ratio, e.model, e.combined):
        assert iv.lower < iv.estimate < iv.upper
        assert 0.003 < iv.half_width < 0.009
    assert e.combined.lower <= min(e.ratio.lower, e.model.lower)
    assert e.call == "technical_tie"  # 50.12% cannot be told from 50% with 1,500 mesas
    assert "Empate técnico" in e.call_es
    assert qc.call_rule(0.501, 0.52) == "a" and qc.call_rule(0.47, 0.499) == "b"
    # a stratum with one report is collapsed into its department
    one = sample.filter(pl.col("stratum") == "010000|U").head(1)
    thin = pl.concat([sample.filter(pl.col("stratum") != "010000|U"), one])
    e2 = qc.estimate(universe, final().frame.join(thin.select("acta_id"), on="acta_id"), PAIR,
                     seed=1, n_boot=200, n_draws=500)
    assert e2.n_collapsed_strata >= 1


def test_fusion_with_the_official_partial_count(universe: pl.DataFrame) -> None:
    partial = june8().frame  # 8 June 16:15 UTC: 95.7% of electors in counted actas
    plan = qc.design(universe, n_mesas=1500)
    covered = 0
    widths = []
    for seed in ("a", "b", "c", "d"):
        sample = qc.draw_sample(universe, plan, seed)
        reports = final().frame.join(sample.select("acta_id"), on="acta_id")
        f = qc.fuse(universe, partial, reports, PAIR, n_boot=500, n_draws=1000)
        covered += f.combined.lower <= TRUE_SHARE <= f.combined.upper
        widths.append(f.combined.half_width)
        assert 0.95 < (f.known_fraction_electors or 0) < 0.96
    assert covered >= 3
    assert max(widths) < 0.0015  # far narrower than the quick count alone (~0.006)


@pytest.mark.slow  # seconds of Monte-Carlo / random inputs: make test runs it
def test_repeated_sampling_reduced(universe: pl.DataFrame) -> None:
    """300 quick counts of 1,500 mesas: 95% intervals cover the true share (the full
    validation runs 1,000; binomial sd at 300 runs is 1.3 points)."""
    r = qc.simulate(universe, final().frame, PAIR, n_mesas=1500, n_sims=300, seed=7,
                    n_boot=300, n_draws=800)
    assert r.true_share == pytest.approx(TRUE_SHARE)
    assert r.coverage_ratio >= 0.89 and r.coverage_model >= 0.89
    assert r.coverage_combined >= r.coverage_ratio
    assert 0.004 < r.mean_half_width_ratio < 0.008
    assert abs(r.mean_error) < 0.0015
    assert r.wrong_call_rate <= 0.05


def test_a_universe_without_electors_is_a_ratio_to_mesas() -> None:
    """Without every mesa's electors the estimator scales by mesas (never 0/0), says so,
    and still finds a 60% share from the reports of 200 equal mesas."""
    import polars as pl

    from escrutinio.defence.quickcount import estimate, size_measure

    n = 2_000
    uni = pl.DataFrame({"acta_id": [f"{i:06d}" for i in range(n)],
                        "stratum": [f"s{i % 4}" for i in range(n)],
                        "electors": [None] * n}, schema_overrides={"electors": pl.Int64})
    assert size_measure(uni)[1] == "stations"
    assert size_measure(uni.with_columns(pl.lit(300).alias("electors")))[1] == "electors"
    rep = pl.DataFrame({"acta_id": [f"{i:06d}" for i in range(0, n, 10)],
                        "v_a": [60 + (i % 7) - 3 for i in range(0, n, 10)],
                        "v_b": [40 - (i % 7) + 3 for i in range(0, n, 10)]})
    est = estimate(uni, rep, ("a", "b"), n_boot=200, n_draws=400)
    assert est.size_basis == "stations" and "número de actas" in est.call_es
    assert 0.58 < est.combined.lower <= 0.6 <= est.combined.upper < 0.62
