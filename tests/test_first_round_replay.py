"""Reduced per-district replays of the 2021 and 2026 first rounds on the real files (the
full ones: validation/replay_first_rounds.py, results in validation/RESULTS-projection.md).

Each can fail: a cut read in the wrong time zone or out of order, a call for the wrong
candidate at P ≥ 0.99, a projection no better than applying the counted shares to the
national remainder, or ``conteo`` turned into nonsense fractions."""

from __future__ import annotations

import itertools
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from escrutinio.projection.model import ModelParams
from escrutinio.sources.peru import PERU_2021_FIRST_ROUND, PERU_2026_FIRST_ROUND

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
import replay_first_rounds as rf

pytestmark = pytest.mark.slow
PARAMS = ModelParams(n_sims=500, seed=3)


def _check(reps: list[rf.Replay]) -> None:
    for rep in reps:
        for k, res in enumerate(rep.results):
            label = f"{rep.name}, {res.candidate_a} v {res.candidate_b}, {rep.truths[k]}"
            assert res.n_cuts == len(rep.naive_units[k]) and not res.skipped, label
            # the share counted goes up from cut to cut
            pct = [c.pct_counted for c in res.cuts]
            assert all(b > a for a, b in itertools.pairwise(pct)), (label, pct)
            # never a call for the wrong candidate, never P(wrong one ahead) ≥ 0.99
            assert not res.wrong_calls, label
            assert all(c.p_a > 0.01 for c in res.cuts), label


def test_2021_first_round_three_cuts(data_dir: Path) -> None:
    cuts = rf.load_2021()
    assert len(cuts) == 9
    # ONPE's stamp is Lima time: 13 Apr 12:16 (the latest row of the first file) is 17:16Z
    assert cuts[0].as_of == datetime(2021, 4, 13, 17, 16, tzinfo=UTC)
    assert [c.frame.height for c in cuts] == [1097] * 3 + [1874] * 6
    final = rf.votes_of(cuts[-1].frame, PERU_2021_FIRST_ROUND)
    # the 100% table: Castillo, Fujimori, then López Aliaga ahead of De Soto by < 5,000
    top = sorted(final, key=lambda c: -final[c])[:4]
    assert top == ["perulibre", "fp", "rp", "avpais"]
    assert 0 < final["rp"] - final["avpais"] < 5_000
    reps = rf.replay_2021_first_round(PARAMS, max_cuts=3)
    assert [r.results[0].n_cuts for r in reps] == [3, 3]
    _check(reps)
    for rep in reps:
        for k, res in enumerate(rep.results):
            row = rf.row(rep, k)
            if (res.candidate_a, res.candidate_b) == ("perulibre", "fp"):
                # the counted shares applied to the national remainder miss by > 10,000
                # (the JEE actas are not a random sample); the per-unit model must not
                assert row["mae"] < 0.3 * row["mae_naive_national"], (rep.name, row)
                assert row["mae"] < row["mae_raw"], (rep.name, row)
            # the 90% interval holds the final at 2 of the 3 cuts at least
            cov90 = res.coverage_at(0.9)
            assert cov90.covered >= 2, (rep.name, res.candidate_a, res.candidate_b)


def test_2026_conteo_fractions(data_dir: Path) -> None:
    raw = rf.load_2026()
    assert [c.as_of.day for c in raw] == [13, 16, 21, 27]
    cuts, stats = rf.fractions_2026(raw)
    # antoniocuga's 'Extranjero / Total' row is the one abroad unit
    assert all(c.frame.filter(pl.col("abroad"))["unit_code"].to_list() == [rf.ABROAD]
               for c in cuts)
    for c, st in zip(cuts, stats, strict=True):
        assert c.fraction is not None
        f = c.fraction["fraction_counted"].to_numpy()
        assert ((f > 0) & (f <= 1)).all()
        # every district with votes gets a fraction; none without
        with_votes = c.frame.filter(rf.valid_votes(c.frame, PERU_2026_FIRST_ROUND) > 0)
        assert set(c.fraction["unit_code"]) == set(with_votes["unit_code"])
        assert st["no_votes"] + with_votes.height == st["units"]
    # the first cut is a partial scrape (about half the districts have no votes yet)
    assert stats[0]["no_votes"] > 900 and all(s["no_votes"] < 20 for s in stats[1:])
    # the share of votes counted implied by conteo rises
    pct = [rf.pct_implied(c, PERU_2026_FIRST_ROUND) for c in cuts]
    assert all(b > a for a, b in itertools.pairwise(pct[1:])) and pct[-1] < 100


def test_2026_first_round_three_cuts(data_dir: Path) -> None:
    reps = rf.replay_2026_first_round(PARAMS, max_cuts=3)
    _check(reps)
    main = reps[0]  # the districts with votes on 13 Apr, 13 → 21 Apr
    for k in range(len(main.results)):
        if main.truths[k] != main.truths[0]:
            continue
        row = rf.row(main, k)
        # from 72% counted, the national naive extrapolation is tens of thousands off;
        # the per-unit projection is within a few thousand of the extrapolated 4 May
        assert row["mae"] < 0.5 * row["mae_naive_national"], row
        assert np.isfinite(row["mae_naive_unit"])
