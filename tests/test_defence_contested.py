"""Contested actas on the 2021 provisional states, checked against what happened."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defence_data import final, june8, june15
from escrutinio.defence import contested as ct
from escrutinio.sources.peru import PERU_2021_RUNOFF as RUNOFF


@pytest.fixture(scope="module")
def outcome(data_dir: Path) -> dict[str, int]:
    """What became of the 1,354 actas bound for the JEE on 15 June (final file)."""
    jee = june15().frame.filter(pl.col("status") == "jee").select("acta_id")
    fin = final().frame.join(jee, on="acta_id")
    return {"n": jee.height, "annulled": int((fin["status"] == "annulled").sum()),
            "change": int((fin["v_castillo"] - fin["v_fujimori"]).sum())}


def test_actual_outcome_is_as_documented(outcome: dict[str, int]) -> None:
    assert outcome == {"n": 1_354, "annulled": 187, "change": -47_612}


def test_bounds_and_no_flip_on_15_june(outcome: dict[str, int]) -> None:
    r = ct.analyse_contested(june15().frame, RUNOFF, earlier=[june8().frame], n_sims=4000,
                             seed=3)
    assert (r.leader, r.runner_up) == ("castillo", "fujimori")
    assert r.counted_margin == 8_649_164 - 8_563_590 == 85_574
    assert r.n_contested == 1_354 and r.n_without_figures == 36
    assert r.margin_all_counted == 85_574 + r.contested_net
    # the actual change lies between the bounds "all annulled" (0) and "all counted"
    assert r.contested_net < outcome["change"] < 0
    assert r.margin_min <= r.counted_margin + outcome["change"] <= r.margin_max
    # no set of contested actas can flip it: the proof is a number below the margin
    assert not r.flip.possible and r.flip.n_to_flip is None
    nets = r.actas["net"].drop_nulls().to_numpy()
    assert r.flip.removable == int(nets[nets > 0].sum()) < r.margin_all_counted
    assert "Ningún conjunto" in r.flip.explanation_es
    # rates were learned from the 120 JEE actas resolved between 8 and 15 June
    assert r.n_resolved_since == 120 == r.resolved_actas.height
    assert sum(sum(v) for v in r.observed_outcomes.values()) == 120
    outcomes = dict(r.resolved_actas.group_by("outcome").len().iter_rows())
    assert outcomes["annulled"] == 12 and sum(outcomes.values()) == 120
    ann = r.resolved_actas.filter(pl.col("outcome") == "annulled")
    assert set(ann["final_net"].to_list()) == {0}


@pytest.mark.parametrize("prior", ["2021", "historical"])
def test_prediction_against_what_happened(outcome: dict[str, int], prior: str) -> None:
    """Predicted (90% interval) against actual: 187 annulled, net change −47,612.
    The 'historical' prior uses only 2011/2016 rates and 8→15 June outcomes: no 2021
    hindsight."""
    p = ct.RATES_2021 if prior == "2021" else ct.historical_prior()
    r = ct.analyse_contested(june15().frame, RUNOFF, earlier=[june8().frame], prior=p,
                             n_sims=6000, seed=11)
    d = r.distribution
    assert d is not None
    assert d.annulled_quantiles["p05"] <= outcome["annulled"] <= d.annulled_quantiles["p95"]
    assert d.change_quantiles["p05"] <= outcome["change"] <= d.change_quantiles["p95"]
    assert d.p_leader_keeps == 1.0 and d.p_flip == 0.0
    # the median is within 10% of the actual change, far inside the bounds
    assert abs(d.change_quantiles["p50"] - outcome["change"]) < 0.1 * abs(outcome["change"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-300, 300), min_size=1, max_size=9), st.integers(-600, 600))
def test_flip_set_is_minimal(nets: list[int], margin: int) -> None:
    arr = np.array(nets)
    ids = np.array([f"{i:06d}" for i in range(len(nets))])
    fs = ct.flip_set(arr, ids, margin, "a", "b")
    sign = 1 if margin >= 0 else -1
    # brute force: the smallest subset whose removal reverses the sign
    best = None
    for k in range(len(nets) + 1):
        for comb in itertools.combinations(range(len(nets)), k):
            rest = margin - int(arr[list(comb)].sum())
            if rest * sign < 0:
                best = k
                break
        if best is not None:
            break
    assert fs.n_to_flip == best
    if best is not None:
        chosen = [int(arr[int(i)]) for i in fs.acta_ids]
        assert len(chosen) == best and (margin - sum(chosen)) * sign < 0
    else:
        assert fs.removable <= abs(margin)


def test_nullity_request(outcome: dict[str, int]) -> None:
    cur = june15().frame
    counted = cur.filter(pl.col("status") == "counted").with_columns(
        (pl.col("v_castillo") - pl.col("v_fujimori")).alias("net")).sort("net", descending=True)
    top = counted.head(300)
    request = [str(int(x)) for x in top["acta_id"]] + ["999999"]  # unpadded ids, one unknown
    r = ct.analyse_contested(cur, RUNOFF, requested=request, n_sims=0)
    q = r.request
    assert q is not None and q.n_requested == 301 and q.n_found == 300
    assert q.not_found == ("999999",)
    removed = int(top["net"].sum())
    assert q.margin_if_all_annulled == r.margin_all_counted - removed
    assert q.flip.possible == (removed > r.margin_all_counted)
    if q.flip.possible:
        k = q.flip.n_to_flip
        assert k is not None and int(top["net"].head(k).sum()) > r.margin_all_counted
        assert int(top["net"].head(k - 1).sum()) <= r.margin_all_counted
    assert r.actas["requested"].sum() == 0  # none of them is a contested acta


def test_learned_rates_arithmetic() -> None:
    prior = ct.ResolutionRates({ct.ANY_TYPE: ct.TypeRates(8, 1, 1, 10.0)}, "test")
    resolved = pl.DataFrame({"observation": ["x"] * 10, "outcome": ["annulled"] * 5 +
                             ["as_is"] * 5, "had_figures": [True] * 10})
    lr = ct.learn_rates(prior, resolved, strength=10)
    x = lr.rates.by_type["x"]
    assert (x.as_is, x.corrected, x.annulled) == pytest.approx((8 + 5, 1, 1 + 5))
    assert x.probs()[2] == pytest.approx(6 / 20)
    assert lr.n_resolved == 10
