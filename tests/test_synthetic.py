"""The synthetic election generator of the benchmarks (benchmarks/synthetic.py), small."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import polars as pl
import pytest

from escrutinio.count import SnapshotRef, count_state_actas
from escrutinio.domain import ACTA_COLUMNS, CONTABILIZADA, ActaStatus, Level
from escrutinio.sources.tabular import parse_tabular
from escrutinio.verify.checks import validate_actas

N = 20_000


def _load_generator():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "synthetic.py"
    name = "escrutinio_benchmarks_synthetic"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while building
        spec.loader.exec_module(module)
    return sys.modules[name]


synthetic = _load_generator()


@pytest.fixture(scope="module")
def election():
    return synthetic.generate(N, seed=7)


def test_canonical_frame_passes_validation(election) -> None:
    f = election.frame
    assert f.height == N
    assert f.columns == [*ACTA_COLUMNS, "v_azul", "v_rojo"]
    assert dict(f.schema) == dict(ACTA_COLUMNS) | {"v_azul": pl.Int64(), "v_rojo": pl.Int64()}
    result = validate_actas(f, election.contest)
    assert result.rejected.height == 0
    assert result.frame.height == N
    # actas at the JEE with an arithmetic error are flagged, never rejected
    assert result.findings.height > 0
    assert set(result.findings["rule"].unique()) <= {"sum_mismatch_uncounted",
                                                     "cast_exceeds_electors_uncounted"}
    flagged = f.filter(pl.col("acta_id").is_in(result.findings["acta_id"].implode()))
    assert set(flagged["status"].unique()) == {ActaStatus.JEE.value}


def test_realistic_shape(election) -> None:
    f = election.frame
    statuses = set(f["status"].unique())
    assert statuses == {"counted", "pending", "jee", "annulled", "not_installed"}
    assert f["acta_id"].n_unique() == N
    assert f["electors"].min() > 0 and f["electors"].max() <= 300
    counted = f.filter(pl.col("status") == "counted")
    # identities of a counted acta
    assert (counted["v_azul"] + counted["v_rojo"] + counted["blank"] + counted["null"]
            + counted["challenged"] == counted["cast"]).all()
    assert (counted["cast"] <= counted["electors"]).all()
    home = counted.filter(~pl.col("abroad"))
    abroad = counted.filter(pl.col("abroad"))
    assert 0.70 < home["cast"].sum() / home["electors"].sum() < 0.80
    assert 0.25 < abroad["cast"].sum() / abroad["electors"].sum() < 0.45
    share = home["v_azul"].sum() / (home["v_azul"].sum() + home["v_rojo"].sum())
    assert 0.48 < share < 0.52  # a close race at home
    # pending actas carry no figures; mesas not installed carry zeros
    pending = f.filter(pl.col("status") == "pending")
    assert pending["cast"].null_count() == pending.height
    assert pending["v_azul"].null_count() == pending.height
    assert f.filter(pl.col("status") == "not_installed")["cast"].max() == 0
    # geography: ~25 x 8 x 10 districts at home plus cities abroad, all named
    geo = election.geography
    assert geo.filter(pl.col("level") == "area1", ~pl.col("abroad")).height == 25
    assert 1_000 < geo.filter(pl.col("level") == "area3").height < 3_500
    assert set(f["area3_code"].unique()) <= set(geo["code"])
    assert geo["name"].null_count() == 0


def test_deterministic_for_a_seed(election, tmp_path: Path) -> None:
    again = synthetic.generate(N, seed=7)
    assert again.frame.equals(election.frame)
    assert again.geography.equals(election.geography)
    other = synthetic.generate(N, seed=8)
    assert not other.frame.equals(election.frame)
    a, _ = synthetic.write(election, tmp_path / "a" / "actas.csv.gz")
    b, _ = synthetic.write(again, tmp_path / "b" / "actas.csv.gz")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


@pytest.mark.parametrize("ext", ["csv.gz", "parquet"])
def test_generic_format_round_trip(election, tmp_path: Path, ext: str) -> None:
    data, _ = synthetic.write(election, tmp_path / f"actas.{ext}")
    snap = parse_tabular(data)
    assert snap.rejected.height == 0
    assert snap.frame.equals(election.frame)
    assert snap.contest == election.contest
    assert snap.as_of == election.as_of
    names = dict(zip(snap.geography["code"], snap.geography["name"], strict=True))
    assert names["010000"] == "Departamento 01"


def test_count_state_sums_are_consistent(election) -> None:
    f = election.frame
    ref = SnapshotRef("synthetic", election.as_of, "synthetic")
    counted = f.filter(pl.col("status") == "counted")
    azul, rojo = int(counted["v_azul"].sum()), int(counted["v_rojo"].sum())
    n_contab = f.filter(pl.col("status").is_in([s.value for s in CONTABILIZADA])).height
    for level in Level:
        s = count_state_actas(f, election.contest, ref, level=level)
        n = s.national
        assert n.actas_total == N and n.actas_counted == n_contab
        assert (n.candidates[0].votes, n.candidates[1].votes) == (azul, rojo)
        assert n.valid == azul + rojo
        assert n.leader == ("azul" if azul > rojo else "rojo")
        assert n.margin_votes == abs(azul - rojo)
        assert s.home is not None and s.abroad is not None
        for attr in ("actas_total", "actas_counted", "actas_pending", "actas_jee", "cast",
                     "valid", "blank", "null", "electors"):
            assert getattr(s.home, attr) + getattr(s.abroad, attr) == getattr(n, attr), attr
        assert n.actas_pending == f.filter(pl.col("status") == "pending").height
        assert n.actas_jee == f.filter(pl.col("status") == "jee").height
        if level is Level.NATIONAL:
            assert s.units == ()
            continue
        key = f"{level.value}_code"
        assert len(s.units) == f.select(pl.struct(key, "abroad").n_unique()).item()
        for attr in ("actas_total", "actas_counted", "cast", "blank", "null", "valid"):
            assert sum(getattr(u, attr) for u in s.units) == getattr(n, attr), attr
        assert sum(u.candidates[0].votes for u in s.units) == azul
        assert sum(u.candidates[1].votes for u in s.units) == rojo
        # the hurdle: votes still to come come from pending and JEE actas
        assert s.hurdle.remaining_two_candidate > 0
