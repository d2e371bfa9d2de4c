"""Parallel vote tabulation on real 2021 actas: classification, materiality, generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from defence_data import final, june15
from escrutinio.defence.generator import generate_copies, score
from escrutinio.defence.observers import copy_columns
from escrutinio.defence.pvt import adjacent_transposition, reconcile
from escrutinio.sources.peru import PERU_2021_RUNOFF as RUNOFF

ZERO = {k: 0.0 for k in ("transposed_digits", "candidates_swapped", "sum_mismatch",
                         "votes_above_electors", "figures_differ", "official_missing",
                         "copy_code_mismatch", "unknown_mesa", "duplicate", "conflicting")}


@pytest.fixture(scope="module")
def official(data_dir: Path) -> pl.DataFrame:
    return final().frame


def copies_of(official: pl.DataFrame, ids: list[str], **changes: list[object]) -> pl.DataFrame:
    """Exact copies of the given actas, with per-row overrides (column -> values)."""
    cols = copy_columns(RUNOFF)
    figcols = ["electors", "cast", "blank", "null", "challenged", "v_castillo", "v_fujimori"]
    first = official.row(0, named=True)
    padded = pl.DataFrame({"acta_id": [i.zfill(6) for i in ids]})
    figs = (padded.join(official.select("acta_id", *figcols), on="acta_id", how="left",
                        maintain_order="left")
            .with_columns([pl.col(c).fill_null(first[c]) for c in figcols]).drop("acta_id"))
    n = len(ids)
    df = pl.DataFrame({
        "copy_id": [f"k{i}" for i in range(n)], "acta_id": ids, "copy_code": [None] * n,
        "observer_id": [f"o{i}" for i in range(n)], "organization": [None] * n,
        "image_sha256": [None] * n,
        "notes": [None] * n, "line": list(range(2, n + 2)),
    }).with_columns(pl.lit("2021-06-06T23:00:00Z").str.to_datetime(time_zone="UTC")
                    .alias("observed_at"))
    df = pl.concat([df, figs], how="horizontal")
    df = df.with_columns([pl.Series(k, v) for k, v in changes.items()])
    return df.select([pl.col(c).cast(t) for c, t in cols.items()])


def test_adjacent_transposition() -> None:
    x = np.array([123, 105, 12, 152, 10, 7, 118, 300])
    y = np.array([132, 150, 21, 251, 1, 7, 181, 30])
    assert adjacent_transposition(x, y).tolist() == [True, True, True, False, False, False,
                                                     True, False]
    assert adjacent_transposition(x, y, adjacent_only=False).tolist() == [
        True, True, True, True, False, False, True, False]


@given(st.integers(10, 10**9))
def test_every_adjacent_swap_is_found(x: int) -> None:
    s = str(x)
    for i in range(len(s) - 1):
        if s[i] == s[i + 1] or (i == 0 and s[1] == "0"):
            continue
        y = int(s[:i] + s[i + 1] + s[i] + s[i + 2:])
        assert adjacent_transposition(np.array([x]), np.array([y]))[0]
        # a change by a non-multiple of 9 can never be a transposition
        assert not adjacent_transposition(np.array([x]), np.array([x + 10**i + 1]))[0]


def test_each_category_by_hand(official: pl.DataFrame) -> None:
    # 000001 official: electors 300, cast 214, blank 1, null 14, castillo 118, fujimori 81
    ids = ["000001", "000002", "000003", "000004", "000005", "000006", "6", "999999",
           "000001"]
    o = official.filter(pl.col("acta_id").is_in(ids[:6])).sort("acta_id")
    c, f = o["v_castillo"].to_list(), o["v_fujimori"].to_list()
    cast = o["cast"].to_list()
    vc = [181, f[1], c[2] + 5, c[3] + 300, c[4] - 7, c[5], c[5], c[0], c[0]]
    vf = [f[0], c[1], f[2], f[3], f[4] + 7, f[5], f[5], f[0], f[0]]
    casts = [cast[0], cast[1], cast[2], cast[3] + 300, *cast[4:6], cast[5], cast[0], cast[0]]
    df = copies_of(official, ids, v_castillo=vc, v_fujimori=vf, cast=casts)
    r = reconcile(df, official, RUNOFF)
    got = dict(zip(r.copies["copy_id"], r.copies["category"], strict=True))
    assert got == {"k0": "transposed_digits", "k1": "candidates_swapped", "k2": "sum_mismatch",
                   "k3": "votes_above_electors", "k4": "figures_differ", "k5": "exact",
                   "k6": "exact", "k7": "unknown_mesa", "k8": "exact"}
    row = r.copies.filter(pl.col("copy_id") == "k0").row(0, named=True)
    assert row["net_change"] == 181 - 118 and row["differing_fields"] == "v_castillo"
    assert row["likely_wrong"] == "copy"  # the copy no longer adds up, the official does
    k6 = r.copies.filter(pl.col("copy_id") == "k6").row(0, named=True)
    assert k6["acta_id"] == "000006" and k6["duplicate_copy"] and not k6["alarm"]
    k8 = r.copies.filter(pl.col("copy_id") == "k8").row(0, named=True)
    assert k8["conflicting_copies"] and k8["alarm"]  # k0 and k8 disagree on 000001
    assert r.summary.n_conflicting_actas == 1 and r.summary.n_duplicates == 1
    # materiality: every change toward Fujimori (the runner-up) adds to X
    changes = r.actas.select("acta_id", "min_change", "max_change").sort("acta_id").rows()
    toward = sum(max(0, -mn) for _, mn, _ in changes if mn is not None)
    assert r.summary.toward_runner_up == toward > 0
    assert r.summary.margin == 43_957
    assert f"{toward:,} votos de 43,957" in r.summary.statement_es


def test_official_states_and_roll(official: pl.DataFrame) -> None:
    annulled = official.filter(pl.col("status") == "annulled")["acta_id"][0]
    counted = official.filter(pl.col("status") == "counted")["acta_id"][:2].to_list()
    df = copies_of(official, [annulled, *counted])
    shrunk = official.filter(pl.col("acta_id") != counted[1])
    r = reconcile(df, shrunk, RUNOFF, roll=official["acta_id"])
    got = dict(zip(r.copies["acta_id"], r.copies["category"], strict=True))
    assert got == {annulled: "official_annulled", counted[0]: "exact",
                   counted[1]: "official_missing"}
    r2 = reconcile(df, shrunk, RUNOFF)
    assert dict(zip(r2.copies["acta_id"], r2.copies["category"], strict=True))[counted[1]] \
        == "unknown_mesa"
    codes = pl.DataFrame({"acta_id": [counted[0]], "copy_code": ["91L"]})
    r3 = reconcile(df.with_columns(pl.lit("92L").alias("copy_code")), official, RUNOFF,
                   copy_codes=codes)
    row = r3.copies.filter(pl.col("acta_id") == counted[0]).row(0, named=True)
    assert row["category"] == "copy_code_mismatch" and not row["material"]


def test_copies_of_jee_actas_compare_with_provisional_figures(data_dir: Path) -> None:
    prov = june15().frame
    jee = prov.filter((pl.col("status") == "jee") & pl.col("v_castillo").is_not_null()
                      & pl.col("blank").is_not_null())["acta_id"][:50].to_list()
    df = copies_of(prov, jee)
    r = reconcile(df, prov, RUNOFF)
    assert set(r.copies["category"]) == {"exact"}
    assert r.summary.margin == 8_649_164 - 8_563_590


def test_generator_ground_truth(official: pl.DataFrame) -> None:
    rates = {"transposed_digits": 0.03, "candidates_swapped": 0.02, "sum_mismatch": 0.03,
             "votes_above_electors": 0.02, "figures_differ": 0.02, "official_missing": 0.01,
             "copy_code_mismatch": 0.01, "unknown_mesa": 0.01, "duplicate": 0.05,
             "conflicting": 0.03}
    g = generate_copies(official, RUNOFF, coverage=0.25, rates=rates, seed=2021)
    assert g.truth["defect"].value_counts().height >= 8
    r = reconcile(g.copies, g.official, RUNOFF, copy_codes=g.copy_codes)
    s = score(r, g.truth)
    assert s.numeric_recall >= 0.99 and s.numeric_precision >= 0.99
    assert s.false_alarms_on_exact == 0 and s.exact_copies > 15_000
    assert s.conflicts_found == s.conflicts_injected > 100
    for t in s.per_type:
        assert t.recall >= 0.99 and t.precision >= 0.99, t
    # same seed, same copies; another seed, other copies
    again = generate_copies(official, RUNOFF, coverage=0.25, rates=rates, seed=2021)
    assert again.copies.equals(g.copies)
    other = generate_copies(official, RUNOFF, coverage=0.25, rates=rates, seed=2022)
    assert not other.copies.equals(g.copies)


def test_exact_copies_of_every_acta_raise_no_alarm(official: pl.DataFrame) -> None:
    g = generate_copies(official, RUNOFF, coverage=1.0, rates=ZERO, seed=5)
    assert g.copies.height == official.filter(pl.col("status") == "counted").height
    r = reconcile(g.copies, g.official, RUNOFF, copy_codes=g.copy_codes)
    assert r.summary.n_alarms == 0
    assert r.summary.toward_runner_up == r.summary.toward_leader == 0
    assert r.summary.categories == {"exact": g.copies.height}
    assert not r.summary.could_flip
