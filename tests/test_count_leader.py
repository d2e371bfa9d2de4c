"""Leader, runner-up and margin of every unit: the polars expression that replaced a numpy
stable sort (issue #15.6, so that a count command does not import numpy) gives the same
answers, ties included (the first candidate in contest order goes first)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from escrutinio.count import _finish_units
from escrutinio.domain import Candidate, Contest, ContestKind


def _reference(votes: np.ndarray, codes: list[str]) -> tuple[list, list, list]:
    """The former numpy implementation, verbatim in substance."""
    order = np.argsort(-votes, axis=1, kind="stable")
    top = np.take_along_axis(votes, order[:, :1], axis=1)[:, 0]
    second = (np.take_along_axis(votes, order[:, 1:2], axis=1)[:, 0]
              if votes.shape[1] > 1 else np.zeros(len(votes), dtype=np.int64))
    code_arr = np.array(codes, dtype=object)
    has = top > 0
    leader = np.where(has, code_arr[order[:, 0]], None).tolist()
    runner = np.where(has & (votes.shape[1] > 1),
                      code_arr[order[:, min(1, votes.shape[1] - 1)]], None).tolist()
    return leader, runner, (top - second).tolist()


@pytest.mark.parametrize("k", [1, 2, 3, 7, 40])
def test_leader_runner_up_and_margin_match_a_stable_sort(k: int) -> None:
    rng = np.random.default_rng(k)
    n = 400
    codes = [f"c{i}" for i in range(k)]
    kind = ContestKind.RUNOFF if k == 2 else ContestKind.FIRST_ROUND
    contest = Contest("t", "t", kind, "PE", "2021-06-06",
                      tuple(Candidate(c, c) for c in codes))
    # few distinct values: many ties, rows with no votes, NULLs (a candidate not reported)
    raw = rng.integers(0, 4, size=(n, k))
    nulls = rng.random((n, k)) < 0.1
    frame = pl.DataFrame({f"v_{c}": [None if nulls[r, i] else int(raw[r, i]) for r in range(n)]
                          for i, c in enumerate(codes)}, schema={f"v_{c}": pl.Int64 for c in codes})
    frame = frame.with_columns(pl.lit(10, pl.Int64).alias(x) for x in (
        "actas_total", "actas_counted", "actas_processed", "electors", "cast"))
    got = _finish_units(frame, contest)
    leader, runner, margin = _reference(np.where(nulls, 0, raw), codes)
    assert got["leader"].to_list() == leader
    assert got["runner_up"].to_list() == runner
    assert got["margin_votes"].to_list() == margin
    assert got["margin_votes"].dtype == pl.Int64 and got["leader"].dtype == pl.String
    assert _finish_units(frame.head(0), contest).height == 0
