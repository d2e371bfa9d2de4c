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
from escrutinio.defence.pvt import adjacent_transposition, reconcile, reconcile_units
from escrutinio.errors import BadOptionError
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


# --- the headline counts only plausible discrepancies on published actas (#14.4) ----------

RATES = {"transposed_digits": 0.02, "candidates_swapped": 0.01, "sum_mismatch": 0.03,
         "votes_above_electors": 0.02, "figures_differ": 0.02, "official_missing": 0.01,
         "copy_code_mismatch": 0.005, "unknown_mesa": 0.005, "duplicate": 0.03,
         "conflicting": 0.03}


def _toward(copies: pl.DataFrame) -> int:
    """Σ over actas of max(0, −min change), computed here independently of the module."""
    per: dict[str, int] = {}
    for a, ch in copies.select("acta_id", "net_change").iter_rows():
        per[a] = min(per.get(a, 0), ch)
    return sum(-v for v in per.values())


def test_headline_excludes_impossible_and_unpublished_copies(official: pl.DataFrame) -> None:
    g = generate_copies(official, RUNOFF, coverage=0.3, rates=RATES, seed=14)
    r = reconcile(g.copies, g.official, RUNOFF, copy_codes=g.copy_codes)
    c, s = r.copies, r.summary
    comp = c.filter(pl.col("comparable"))
    impossible = comp.filter(pl.col("copy_sum_mismatch") | pl.col("copy_above_electors"))
    assert impossible.height > 500  # the injected sum mismatches and inflated casts
    assert set(impossible["scope"]) <= {"impossible"} | {"published"} and \
        set(impossible.filter(pl.col("material"))["scope"]) == {"impossible"}
    unpublished = comp.filter(pl.col("category") == "official_missing")
    assert unpublished.height > 100 and set(unpublished["scope"]) <= {"unpublished",
                                                                      "impossible"}
    head = comp.filter(pl.col("scope") == "published")
    # the headline is exactly the published, plausible part; the rest are separate lines
    assert s.toward_runner_up == _toward(head) > 0
    assert s.scopes["impossible"]["toward_runner_up"] == _toward(
        comp.filter(pl.col("scope") == "impossible")) > 0
    assert s.scopes["unpublished"]["toward_runner_up"] == _toward(
        comp.filter(pl.col("scope") == "unpublished")) > 0
    assert _toward(comp) > s.toward_runner_up  # the old sum overstated the headline
    assert f"{s.toward_runner_up:,} votos de {abs(s.margin):,}" in s.statement_es
    assert f"{s.toward_runner_up:,} votes of {abs(s.margin):,}" in s.statement_en
    assert any("imposibles" in n and f"{s.scopes['impossible']['toward_runner_up']:,}" in n
               for n in s.notes_es)
    assert any("not yet published" in n for n in s.notes_en)
    assert sum(v["n_copies"] for v in s.scopes.values()) == s.n_copies


def test_majority_copy_tie_rule(official: pl.DataFrame) -> None:
    o = official.filter(pl.col("acta_id") == "000001").row(0, named=True)
    c0, f0 = o["v_castillo"], o["v_fujimori"]
    # two copies of 000001 disagree 1 to 1: +5 votes to either side (both add up)
    df = copies_of(official, ["000001", "000001"], v_castillo=[c0 + 5, c0 - 5],
                   v_fujimori=[f0 - 5, f0 + 5])
    later = df.with_columns(pl.Series("observed_at", [
        "2021-06-06T23:00:00Z", "2021-06-06T22:00:00Z"]).str.to_datetime(time_zone="UTC"))
    r = reconcile(later, official, RUNOFF)
    assert r.summary.net_if_copies_right == -10  # the copy observed first (k1) wins
    r_rev = reconcile(later.reverse(), official, RUNOFF)
    assert r_rev.summary == r.summary
    # same time: the lowest SHA-256 of the canonical content decides
    import hashlib

    sigs = {ch: "|".join(str(v) for v in (o["electors"], o["cast"], o["blank"], o["null"],
                                          o["challenged"], c0 + ch // 2, f0 - ch // 2))
            for ch in (+10, -10)}
    want = min(sigs, key=lambda ch: hashlib.sha256(sigs[ch].encode()).hexdigest())
    same = reconcile(df, official, RUNOFF)
    assert same.summary.net_if_copies_right == want
    assert reconcile(df.reverse(), official, RUNOFF).summary == same.summary
    # untimed copies come after timed ones
    untimed = later.with_columns(pl.lit(None, dtype=pl.Datetime("us", "UTC"))
                                 .alias("observed_at"))
    assert reconcile(untimed, official, RUNOFF).summary.net_if_copies_right == want
    one_timed = later.with_columns(pl.when(pl.col("copy_id") == "k1").then(None)
                                   .otherwise(pl.col("observed_at")).alias("observed_at"))
    assert reconcile(one_timed, official, RUNOFF).summary.net_if_copies_right == 10


def test_every_figure_is_identical_between_runs_and_row_orders(official: pl.DataFrame
                                                                ) -> None:
    g = generate_copies(official, RUNOFF, coverage=0.3, rates=RATES, seed=15)
    r = reconcile(g.copies, g.official, RUNOFF, copy_codes=g.copy_codes)
    for seed in (1, 2):
        shuffled = g.copies.sample(fraction=1.0, shuffle=True, seed=seed)
        r2 = reconcile(shuffled, g.official, RUNOFF, copy_codes=g.copy_codes)
        assert r2.summary == r.summary
        assert r2.actas.equals(r.actas)
    assert r.summary.n_conflicting_actas > 100


def test_copy_codes_checked_whenever_present(official: pl.DataFrame) -> None:
    df = copies_of(official, ["000001", "000001", "000002"]).with_columns(
        pl.Series("copy_code", ["91L", "17K", "55A"]))
    r = reconcile(df, official, RUNOFF)  # no official codes: compared among the copies
    got = dict(zip(r.copies["copy_id"], r.copies["alarm"], strict=True))
    assert got == {"k0": True, "k1": True, "k2": False}
    assert r.summary.n_copy_code_conflicts == 1 and r.summary.n_copy_codes_unchecked == 3
    assert any("3 copies carry a copy code" in n for n in r.summary.notes_en)
    codes = pl.DataFrame({"acta_id": ["000001", "000002"], "copy_code": ["91L", "55A"]})
    r2 = reconcile(df, official, RUNOFF, copy_codes=codes)
    assert r2.summary.n_copy_codes_unchecked == 0
    assert r2.copies.filter(pl.col("copy_id") == "k1")["category"][0] == "copy_code_mismatch"


def test_mistyped_pair_is_a_bad_option(official: pl.DataFrame) -> None:
    from escrutinio.errors import BadOptionError

    df = copies_of(official, ["000001"])
    with pytest.raises(BadOptionError) as ei:
        reconcile(df, official, RUNOFF, pair=("castilo", "fujimori"))
    assert ei.value.exit_code == 2 and "castillo, fujimori" in ei.value.message_en


# --- against published totals only (#16.4) ----------------------------------------------

def _units_of(frame: pl.DataFrame, level: str) -> pl.DataFrame:
    """Unit totals as an authority publishes them, summed here from the per-acta file."""
    key = pl.lit("") if level == "national" else pl.col(f"{level}_code")
    figs = ["electors", "cast", "blank", "null", "challenged", "v_castillo", "v_fujimori"]
    counted = pl.col("status") == "counted"
    return (frame.with_columns(key.alias("unit_code")).group_by("unit_code").agg(
        pl.len().alias("actas_total"), counted.sum().cast(pl.Int64).alias("actas_counted"),
        *[pl.col(f).filter(counted).sum().alias(f) for f in figs])
        .with_columns(pl.lit(level).alias("level")))


def test_units_full_coverage_finds_the_altered_actas(official: pl.DataFrame) -> None:
    units = _units_of(official, "area1")
    dep = official.filter((pl.col("area1_code") == "170000") & (pl.col("status") == "counted"))
    ids = dep["acta_id"].to_list()
    assert 100 < len(ids) < 1000  # Madre de Dios
    exact = copies_of(official, ids)
    r = reconcile_units(exact, units, RUNOFF, acta_areas=official, level="area1")
    row = r.units.filter(pl.col("unit_code") == "170000").row(0, named=True)
    assert row["full_coverage"] and row["gap_change"] == 0 and not row["has_excess"]
    assert r.summary.n_units_full == 1 and r.summary.gap_change_full == 0
    assert r.summary.n_units == 30 and not r.alarms().height  # 25 + 5 continents
    # three tallies altered: 10 votes moved from Castillo to Fujimori on each (sums intact)
    moved = exact.with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(pl.col("v_castillo") - 10)
        .otherwise(pl.col("v_castillo")).alias("v_castillo"),
        pl.when(pl.int_range(pl.len()) < 3).then(pl.col("v_fujimori") + 10)
        .otherwise(pl.col("v_fujimori")).alias("v_fujimori"))
    r2 = reconcile_units(moved, units, RUNOFF, acta_areas=official, level="area1")
    row = r2.units.filter(pl.col("unit_code") == "170000").row(0, named=True)
    assert row["gap_change"] == -60 and row["diff_v_fujimori"] == 30
    assert row["excess_v_fujimori"] == 30 and row["has_excess"]
    assert "−60" in r2.summary.statement_es.replace("-", "−")
    assert r2.alarms().height == len(ids)  # every copy of the unit is named for review
    # a partial set of the same altered copies: only the excess can speak
    part = moved.head(len(ids) // 2)
    r3 = reconcile_units(part, units, RUNOFF, acta_areas=official, level="area1")
    row = r3.units.filter(pl.col("unit_code") == "170000").row(0, named=True)
    assert not row["full_coverage"] and row["gap_change"] is None and not row["has_excess"]
    assert "no prueba que no las haya" in r3.summary.statement_es
    # the copies ranked by the part of the gap resting on their acta
    nets = r3.copies["copy_net"].abs().to_list()
    assert nets == sorted(nets, reverse=True)
    # a unit the authority has not counted yet: strict JSON (no NaN / Infinity)
    import json

    none_yet = units.with_columns(pl.when(pl.col("unit_code") == "170000").then(0)
                                  .otherwise(pl.col("actas_counted")).alias("actas_counted"))
    r4 = reconcile_units(part, none_yet, RUNOFF, acta_areas=official, level="area1")
    json.dumps(r4.to_jsonable(), allow_nan=False, default=str)
    row = r4.units.filter(pl.col("unit_code") == "170000").row(0, named=True)
    assert row["pct_covered"] is None and not row["full_coverage"]


def test_units_against_real_national_progress(official: pl.DataFrame, data_dir: Path
                                              ) -> None:
    from escrutinio.sources.onpe_aggregates import parse_progress_tables

    cut = parse_progress_tables(data_dir / "peru-2021-runoff" / "progress_national",
                                "national")[-1]  # 8 Jun 23:19Z, 96.7% counted
    g = generate_copies(official, RUNOFF, coverage=0.5, rates=ZERO, seed=3)
    r = reconcile_units(g.copies, cut.frame, RUNOFF)  # national needs no areas
    s = r.summary
    assert s.level == "national" and s.margin == 8_670_028 - 8_567_920
    assert s.n_units_excess == 0 and s.n_units_full == 0 and s.n_impossible == 0
    assert s.n_actas_with_copies == g.copies["acta_id"].n_unique()
    # copies of every acta of the final file: more actas than ONPE had counted that night;
    # the excess is named, never called a fraud, and no margin change is claimed
    every = generate_copies(official, RUNOFF, coverage=1.0, rates=ZERO, seed=3)
    r2 = reconcile_units(every.copies, cut.frame, RUNOFF)
    s2 = r2.summary
    assert s2.n_units_full == 0 and s2.n_units_excess == 1
    assert s2.excess["v_fujimori"] == 8_791_696 - 8_567_920
    assert any("more actas than the authority has counted" in n for n in s2.notes_en)
    with pytest.raises(BadOptionError):
        reconcile_units(every.copies, cut.frame, RUNOFF, level="area1")


def test_cli_pvt_against_published_totals(official: pl.DataFrame, data_dir: Path,
                                          tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from defence_data import final
    from escrutinio.cli import app
    from escrutinio.defence.observers import write_observer_copies
    from escrutinio.sources.onpe_aggregates import parse_progress_tables
    from escrutinio.store.duckdb_store import DuckDBStore

    cut = parse_progress_tables(data_dir / "peru-2021-runoff" / "progress_national",
                                "national")[-1]
    db = tmp_path / "n.duckdb"
    with DuckDBStore(db) as store:
        store.put_snapshots([cut])
    g = generate_copies(official, RUNOFF, coverage=0.2, rates=ZERO, seed=8)
    copies = write_observer_copies(g.copies, tmp_path / "c.csv")
    runner = CliRunner()
    res = runner.invoke(app, ["--db", str(db), "pvt", str(copies), "--json", "--limit", "3"])
    assert res.exit_code == 0, res.stdout
    r = json.loads(res.stdout)
    assert r["summary"]["level"] == "national" and r["summary"]["n_units_excess"] == 0
    assert len(r["copies"]) == 3 and r["provenance"]["snapshot_ids"][0] == cut.snapshot_id
    res = runner.invoke(app, ["--db", str(db), "--lang", "en", "pvt", str(copies)])
    assert res.exit_code == 0 and "compared with the national total" in res.stdout
    for bad in (["--level", "area1"], ["--pair", "castilo,fujimori"]):
        res = runner.invoke(app, ["--db", str(db), "pvt", str(copies), *bad])
        assert res.exit_code == 2, res.stdout
        assert isinstance(res.exception, SystemExit)  # a message, not a traceback
    # with a per-acta snapshot in the store, a unit snapshot compares per department
    with DuckDBStore(db) as store:
        store.put_snapshots([final()])
    res = runner.invoke(app, ["--db", str(db), "pvt", str(copies), "-s",
                              cut.snapshot_id[:12], "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["summary"]["level"] == "national"
    res = runner.invoke(app, ["--db", str(db), "pvt", str(copies), "--json"])  # latest acta
    assert res.exit_code == 0 and json.loads(res.stdout)["summary"]["n_copies"] == \
        g.copies.height


def test_api_pvt_against_a_unit_snapshot(official: pl.DataFrame, data_dir: Path,
                                         tmp_path: Path) -> None:
    import warnings

    from escrutinio.api.app import create_app
    from escrutinio.sources.onpe_aggregates import parse_progress_tables
    from escrutinio.store.duckdb_store import DuckDBStore

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    cut = parse_progress_tables(data_dir / "peru-2021-runoff" / "progress_national",
                                "national")[-1]
    db = tmp_path / "api.duckdb"
    with DuckDBStore(db) as store:
        store.put_snapshots([cut])
    df = copies_of(official, ["000001", "000002", "000003"])
    records = [{k: v for k, v in r.items() if k not in ("line", "observed_at")
                and v is not None} for r in df.to_dicts()]
    with TestClient(create_app(db)) as client:
        r = client.post(f"/api/v1/s/{cut.snapshot_id}/pvt", json=records)
    assert r.status_code == 200, r.text
    res = r.json()["result"]
    assert res["summary"]["level"] == "national"
    assert res["summary"]["n_actas_with_copies"] == 3 and res["summary"]["n_units_excess"] == 0
    assert [c["rank"] for c in res["copies"]] == [1, 2, 3]


def test_copy_codes_of_the_snapshot_source_are_checked(official: pl.DataFrame,
                                                       tmp_path: Path) -> None:
    """No --copy-codes: the per-acta snapshot's own source file (ONPE's v2_CCOPIA_ACTA in
    the ronderos.pe export) gives the official codes, so a copy of another acta is named."""
    import json

    from typer.testing import CliRunner

    from defence_data import final
    from escrutinio.cli import app
    from escrutinio.defence.observers import read_copy_codes, write_observer_copies
    from escrutinio.store.duckdb_store import DuckDBStore

    snap = final()
    real = read_copy_codes(snap.source_uri)
    ids = ["000001", "000002", "000003"]
    right = real.filter(pl.col("acta_id").is_in(ids)).sort("acta_id")["copy_code"].to_list()
    df = copies_of(official, ids).with_columns(
        pl.Series("copy_code", [right[0], right[1], "ZZZ"]))
    path = write_observer_copies(df, tmp_path / "c.csv")
    db = tmp_path / "cc.duckdb"
    with DuckDBStore(db) as store:
        store.put_snapshots([snap])
    res = CliRunner().invoke(app, ["--db", str(db), "pvt", str(path), "--json", "--limit",
                                   "0"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["summary"]["categories"] == {"copy_code_mismatch": 1, "exact": 2}
    assert r["summary"]["n_copy_codes_unchecked"] == 0
    assert r["provenance"]["parameters"]["copy_codes_source"].startswith("snapshot source")
    assert [a["acta_id"] for a in r["alarms"]] == ["000003"]


def test_copies_of_a_country_without_electors(tmp_path, data_dir) -> None:
    """Chile publishes no electors per mesa: copies are still generated (only the
    candidates' figures are needed) and never given an electors-based defect."""
    from escrutinio.defence.generator import generate_copies
    from escrutinio.sources.chile import convert_chile_2021
    from escrutinio.sources.tabular import parse_tabular

    data, _ = convert_chile_2021(data_dir / "chile-2021-first-round/chile_election_2021.csv.gz",
                                 tmp_path / "cl.csv.gz", as_of="2021-11-22T03:00:00Z")
    snap = parse_tabular(data)
    gen = generate_copies(snap.frame, snap.contest, coverage=0.2, seed=3)
    assert gen.copies.height > 5_000
    assert "votes_above_electors" not in set(gen.truth["defect"].to_list())
