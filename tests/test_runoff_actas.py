"""The 2021 runoff per-acta files: real totals, provisional states, JEE outcomes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from escrutinio.sources.base import ParsedSnapshot
from escrutinio.sources.onpe_files import parse_provisional, parse_ronderos
from escrutinio.sources.peru import PERU_2021_PROCLAMATION
from escrutinio.verify.reconcile import reconcile_with_reference

ACTAS = "peru-2021-runoff/actas"


@pytest.fixture(scope="session")
def final(data_dir: Path) -> ParsedSnapshot:
    return parse_ronderos(data_dir / ACTAS / "actas_electorales_ronderos.pe.csv.gz",
                          as_of="2021-06-17T00:00:00Z")


@pytest.fixture(scope="session")
def provisional(data_dir: Path) -> list[ParsedSnapshot]:
    names = ["hist_actas_electorales_20210608T1121_cadd76f.csv.gz",
             "hist_actas_electorales_20210608T2023_78f03ce.csv.gz",
             "actas_electorales.csv.gz"]
    return [parse_provisional(data_dir / ACTAS / n) for n in names]


def test_final_file_totals(final: ParsedSnapshot) -> None:
    f = final.frame
    assert f.height == 86_488
    assert final.rejected.height == 0
    assert f["v_castillo"].sum() == 8_835_653
    assert f["v_fujimori"].sum() == 8_791_696
    assert f["electors"].sum() == 25_287_954
    abroad = f.filter(pl.col("abroad"))
    assert abroad["v_castillo"].sum() == 112_671
    assert abroad["v_fujimori"].sum() == 220_588
    counts = dict(f.group_by("status").len().iter_rows())
    assert counts == {"counted": 86_262, "annulled": 220, "not_installed": 6}
    # identities hold on every row: emitidos = candidates + blank + null + challenged
    s = f.select(pl.sum_horizontal("v_castillo", "v_fujimori", "blank", "null", "challenged")
                 == pl.col("cast")).to_series()
    assert s.all()


def test_final_geography_levels(final: ParsedSnapshot) -> None:
    geo = final.geography
    assert geo is not None
    by_level = dict(geo.group_by("level").len().iter_rows())
    # 25 departments + 5 continents abroad
    assert by_level["area1"] == 30
    assert geo.filter((pl.col("level") == "area1") & pl.col("abroad")).height == 5
    lima = geo.filter(pl.col("code") == "140000")
    assert lima["name"].item() == "LIMA"


def test_provisional_jee_counts(provisional: list[ParsedSnapshot]) -> None:
    jee = [p.frame.filter(pl.col("status") == "jee").height for p in provisional]
    assert jee[0] == 1_367
    assert jee[1] == 1_354
    assert provisional[0].as_of.isoformat().startswith("2021-06-08T16:15")
    assert provisional[1].as_of.isoformat().startswith("2021-06-09T01:12")
    # pending actas carry no figures (zeros in the scrape are a gap, not votes)
    pend = provisional[1].frame.filter(pl.col("status") == "pending")
    assert pend.height == 1_648
    assert pend["cast"].null_count() == pend.height


def test_jee_outcomes(provisional: list[ParsedSnapshot], final: ParsedSnapshot) -> None:
    jee = provisional[2].frame.filter(pl.col("status") == "jee")
    assert jee.height == 1_354
    outcome = jee.join(final.frame, on="acta_id", suffix="_final")
    counts = dict(outcome.group_by("status_final").len().iter_rows())
    assert counts == {"counted": 1_167, "annulled": 187}


def test_uncounted_arithmetic_is_flagged_not_rejected(provisional: list[ParsedSnapshot]) -> None:
    p = provisional[1]
    assert p.rejected.height == 0
    rules = set(p.findings["rule"].to_list())
    assert rules <= {"sum_mismatch_uncounted", "cast_exceeds_electors_uncounted"}
    flagged = p.frame.join(p.findings.select("acta_id"), on="acta_id")
    assert set(flagged["status"].unique().to_list()) <= {"jee", "annulled"}


def test_reconciliation_with_proclamation(final: ParsedSnapshot,
                                          provisional: list[ParsedSnapshot]) -> None:
    rec = reconcile_with_reference(final.frame, final.contest, PERU_2021_PROCLAMATION,
                                   earlier=provisional[2].frame)
    gaps = {g.candidate: g.gap for g in rec.gaps}
    assert gaps == {"castillo": 727, "fujimori": 421}
    assert rec.margin_file == 43_957
    assert rec.margin_reference == 44_263
    # the gap is far smaller than what the annulled actas held provisionally, so a handful of
    # annulled actas reinstated (or corrected) after the scrape explains it
    assert rec.annulled_actas == 220
    held = dict(rec.annulled_provisional_votes)
    assert held["castillo"] > gaps["castillo"] and held["fujimori"] > gaps["fujimori"]
    assert rec.explained
