"""The per-acta arrival shock learned from the count's earlier cuts
(escrutinio.projection.model.fit_arrival; docs/projection.md §4; issue 13).

A count whose later actas differ from what the model predicts from the earlier ones
(rural places last, with a rural slope) must widen the per-acta interval; a count
counted in random order (the control) must not. Reduced versions of
``validation/projection_counts.py --granularity actas``; the full runs are in
``validation/RESULTS-projection.md``.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from escrutinio.projection.drift import PRIOR_COMMON_MARGIN_SD
from escrutinio.projection.model import (
    ModelParams,
    arrival_rank,
    prepare_actas,
    project_actas,
    share_sd,
)

VALIDATION = Path(__file__).resolve().parents[1] / "validation"
sys.path.insert(0, str(VALIDATION))

import count_simulator as cs  # noqa: E402
import projection_counts as pc  # noqa: E402

FRACS = np.round(np.arange(0.30, 0.601, 0.025), 4)


def _states(sim: cs.SimCount) -> tuple[list[pl.DataFrame], pl.DataFrame]:
    sizes = cs.cut_sizes(sim, FRACS)
    return ([cs.acta_states(sim, int(c)) for c in sizes[:-1]],
            cs.acta_frame(sim, int(sizes[-1]), typed=False))


def _random_order(sim: cs.SimCount, seed: int) -> cs.SimCount:
    """The same count, counted in random order (held sheets still last): the control."""
    rng = np.random.default_rng(seed)
    key = rng.random(sim.n) + 2.0 * sim.held
    order = np.empty(sim.n, dtype=np.int64)
    order[np.argsort(key, kind="stable")] = np.arange(sim.n)
    return replace(sim, order=order)


def _drifting_seed() -> int:
    """A count whose rural places arrive last and lean strongly (|slope| > 1, γ high)."""
    for s in range(1, 400):
        sim = cs.simulate(s)
        if abs(sim.rural_slope) > 1.2 and sim.late.mean() < 0.05:
            return s
    raise AssertionError("no drifting count in 400 seeds")


def test_arrival_rank_is_the_first_earlier_cut_that_counted_each_acta() -> None:
    now = pl.DataFrame({"acta_id": ["a", "b", "c", "d"],
                        "status": ["C", "C", "C", "P"]})
    h0 = pl.DataFrame({"acta_id": ["a", "b", "c", "d"], "status": ["P", "C", "P", "P"]})
    h1 = pl.DataFrame({"acta_id": ["a", "b", "c", "d"], "status": ["C", "C", "P", "P"]})
    h0 = h0.with_columns(pl.col("status").replace({"C": "counted", "P": "pending"}))
    h1 = h1.with_columns(pl.col("status").replace({"C": "counted", "P": "pending"}))
    assert arrival_rank(now, [h0, h1]).tolist() == [1, 0, 2, 2]
    assert arrival_rank(now, []).tolist() == [0, 0, 0, 0]


def test_a_drifting_count_widens_and_a_random_one_does_not() -> None:
    """The learned national shock on a count whose rural places arrive last is several
    times the one learned on the same count counted in random order; the random order's
    stays within the declared prior (nothing beyond the model's own terms is seen)."""
    sim = cs.simulate(_drifting_seed())
    params = ModelParams(n_sims=500, seed=1, jee=cs.REVIEW)
    sds, excess = {}, {}
    for name, s in (("drift", sim), ("random", _random_order(sim, 7))):
        hist, now = _states(s)
        prep = prepare_actas(now, cs.CONTEST, params=params, history=hist)
        arrival = prep.diagnostics["arrival"]
        assert isinstance(arrival, dict) and arrival["n_backtests"] >= 3, arrival
        sds[name] = share_sd(prep.shocks.share[0])
        excess[name] = float(arrival["excess_share_sd"])
    # random order: the batches differ from the model's predictions by no more than its
    # own area and acta terms allow (no excess), and the shock is the declared prior's
    # (2·5 points of margin on the log-odds, weight 2 of 2 + 4 backtests: ≈ 0.058)
    assert excess["random"] < 0.01, excess
    assert sds["random"] < 2 * PRIOR_COMMON_MARGIN_SD * 1.05, sds
    # rural places last with a slope of −1.3: the batches show a shift of several points
    assert excess["drift"] > 0.03, excess
    assert sds["drift"] > 1.2 * sds["random"], sds


def test_without_history_the_single_snapshot_rule_stays() -> None:
    sim = cs.simulate(_drifting_seed())
    hist, now = _states(sim)
    params = ModelParams(n_sims=500, seed=1, jee=cs.REVIEW)
    alone = prepare_actas(now, cs.CONTEST, params=params)
    learned = prepare_actas(now, cs.CONTEST, params=params, history=hist)
    assert "single" not in alone.shocks.scales.notes
    assert "earlier cuts" in learned.shocks.scales.notes
    assert alone.shocks.tail_df is None and learned.shocks.tail_df is not None
    # the point projection does not depend on the history (only the spread does)
    np.testing.assert_allclose(alone.cells.m, learned.cells.m)
    p = project_actas(now, cs.CONTEST, params=params, history=hist)
    assert p.diagnostics["arrival"]["n_backtests"] >= 3  # type: ignore[index]


def test_a_small_baseline_does_not_switch_the_learning_off() -> None:
    """A baseline too small for the baseline model (30 actas) leaves every acta to the
    geography-only model: the batches are not cut down to those 30 (review finding)."""
    sim = cs.simulate(_drifting_seed())
    hist, now = _states(sim)
    base = now.head(30).select("acta_id", "electors", "v_a", "v_b").with_columns(
        pl.col("v_a").fill_null(60), pl.col("v_b").fill_null(60))
    params = ModelParams(n_sims=300, seed=1, jee=cs.REVIEW)
    alone = prepare_actas(now, cs.CONTEST, params=params, history=hist)
    small = prepare_actas(now, cs.CONTEST, params=params, history=hist, baseline=base)
    a, b = alone.diagnostics["arrival"], small.diagnostics["arrival"]
    assert isinstance(a, dict) and isinstance(b, dict)
    assert b["n_backtests"] == a["n_backtests"] >= 3, (a, b)


def test_snapshots_that_share_no_acta_id_are_said_so() -> None:
    sim = cs.simulate(_drifting_seed())
    hist, now = _states(sim)
    other = [h.with_columns(("x" + pl.col("acta_id")).alias("acta_id")) for h in hist]
    prep = prepare_actas(now, cs.CONTEST, params=ModelParams(n_sims=200), history=other)
    arrival = prep.diagnostics["arrival"]
    assert isinstance(arrival, dict)
    assert arrival["n_counted_before"] == 0 and arrival["n_backtests"] == 0


def test_history_is_capped_the_same_way_for_every_caller() -> None:
    from escrutinio.projection.model import MAX_ACTA_HISTORY, spread_indices

    for n in range(0, 60):
        got = spread_indices(n, MAX_ACTA_HISTORY)
        assert len(got) == min(n, len(got)) <= MAX_ACTA_HISTORY
        assert got == sorted(set(got)) and (not n or (got[0] == 0 and got[-1] == n - 1))
    # most of the cuts picked at n are picked at n + 1 too (their fits are reused)
    assert len(set(spread_indices(40, 12)) & set(spread_indices(41, 12))) >= 9


@pytest.mark.slow  # 20 counts, seconds each: make test runs it
def test_synthetic_actas_reduced() -> None:
    """20 synthetic counts per acta with their earlier cuts as history (the full 1,000 are
    in validation/RESULTS-projection.md): no wrong call, and the 50% and 90% intervals
    cover within 10 points of nominal."""
    rows = [r for s in range(1, 21) for r in pc.run_count(s, "actas", 1000)]
    summ = pc.summarise(rows)
    assert summ["counts_with_a_wrong_call"] == 0
    cov = summ["coverage"]
    assert isinstance(cov, dict) and cov["90%"] >= 0.80 and cov["50%"] >= 0.40, cov
