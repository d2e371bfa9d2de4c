"""``escrutinio project`` / ``escrutinio replay`` driven as a user would, on real files.

The command module is registered on a fresh Typer app here (the lead adds it to
COMMAND_MODULES)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from escrutinio.cli import app as main_app
from escrutinio.commands import projection as projection_commands
from escrutinio.commands.projection import parse_blocs
from escrutinio.errors import EscrutinioError

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """A fresh app with the global options (--db, --lang) and these commands only."""
    from escrutinio import cli

    fresh = typer.Typer()
    fresh.callback()(cli.main)
    projection_commands.register(fresh)
    return fresh


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("proj") / "e.duckdb"
    run = data_dir / "peru-2021-runoff"
    files = [str(run / "progress_national"),
             str(run / "actas/hist_actas_electorales_20210608T1121_cadd76f.csv.gz"),
             str(data_dir / "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz"),
             str(data_dir / "peru-2026-first-round/"
                 "ikusij_first_round_district_bundle_20260504.json.gz")]
    res = runner.invoke(main_app, ["--db", str(path), "ingest", *files[:2], "--json"])
    assert res.exit_code == 0, res.stdout
    res = runner.invoke(main_app, ["--db", str(path), "ingest", files[2], "--as-of",
                                   "2021-05-11T09:15:00Z", "--json"])
    assert res.exit_code == 0, res.stdout
    res = runner.invoke(main_app, ["--db", str(path), "ingest", files[3], "--json"])
    assert res.exit_code == 0, res.stdout
    return path


def test_project_acta_snapshot_with_first_round(app: typer.Typer, db: Path) -> None:
    res = runner.invoke(app, ["--db", str(db), "project", "--contest",
                              "pe-2021-presidencial-2v", "--kind", "actas",
                              "--baseline-contest", "pe-2021-presidencial-1v",
                              "--sims", "2000", "--json"])
    assert res.exit_code == 0, res.stdout
    p = json.loads(res.stdout)
    assert p["basis"] == "actas" and p["n_simulations"] == 2000
    assert p["margin"]["leader"] == "castillo"
    # 8 June 16:15Z, 95.7% counted: the final +43,957 inside the 95% interval
    iv = next(i for i in p["margin"]["intervals"] if i["level"] == 0.95)
    assert iv["lower"] <= 43_957 <= iv["upper"]
    # P(Castillo) about 0.995: called or "too close" depending on the draws, never wrong
    assert p["call"]["winner"] in (None, "castillo") and p["call"]["probability"] > 0.98
    comps = {c["component"] for c in p["components"]}
    assert {"pending_home", "jee", "abroad"} <= comps
    assert p["provenance"]["parameters"]["n_sims"] == 2000
    assert p["hurdle"]["leader"] == "castillo"
    # human output, in English
    res = runner.invoke(app, ["--db", str(db), "--lang", "en", "project", "--contest",
                              "pe-2021-presidencial-2v", "--kind", "actas", "--sims", "500"])
    assert res.exit_code == 0, res.stdout
    assert "Final margin" in res.stdout and "Call rule" in res.stdout


def test_project_first_round_units(app: typer.Typer, db: Path) -> None:
    res = runner.invoke(app, ["--db", str(db), "project", "--contest",
                              "pe-2026-presidencial-1v", "--sims", "1000", "--json"])
    assert res.exit_code == 0, res.stdout
    p = json.loads(res.stdout)
    assert p["basis"] == "units" and p["kind"] == "first_round"
    tops = {c["code"]: c["p_top_two"] for c in p["candidates"]}
    assert tops["fujimori"] == pytest.approx(1.0)
    assert sum(tops.values()) == pytest.approx(2.0)
    assert len(p["races"]) == 2 and p["p_outright"] is not None
    # the bundle has no acta counts: what is to come is the source's own estimate per unit
    # (fraction_counted_by_unit), ~2% of the votes, never "nothing remains"
    assert p["diagnostics"]["external_remaining_votes"] > 300_000
    race = next(r for r in p["races"] if r["leader"] == "sanchez")
    assert race["trailer"] == "lopez_aliaga" and 0.5 < race["p_leader_ahead"] < 1.0


def test_project_a_national_cut_without_actas_from_its_series(
        app: typer.Typer, tmp_path: Path, data_dir: Path) -> None:
    """A national cut of the 2026 series has votes and the source's fraction counted but
    no acta counts: it is projected from the series up to that cut (basis "series"), and
    the race for second place stays too close to call, as in validation/replay_2026.py."""
    db = tmp_path / "series.duckdb"
    series = str(data_dir / "peru-2026-first-round/"
                 "ikusij_first_round_national_timeseries.csv.gz")
    res = runner.invoke(main_app, ["--db", str(db), "ingest", series, "--json"])
    assert res.exit_code == 0, res.stdout
    res = runner.invoke(app, ["--db", str(db), "project", "--contest",
                              "pe-2026-presidencial-1v", "--sims", "2000", "--json"])
    assert res.exit_code == 0, res.stdout
    p = json.loads(res.stdout)
    assert p["basis"] == "series"
    race = next(r for r in p["races"] if r["leader"] == "sanchez")
    assert race["trailer"] == "lopez_aliaga" and 0.6 < race["p_leader_ahead"] < 0.9
    assert race["call"]["winner"] is None  # too close to call
    # the remainder, and one more correction like those the series showed (cuts that took
    # votes away from a candidate)
    assert [c["component"] for c in p["components"]] == ["remainder", "revision"]
    assert p["components"][1]["n_items"] >= 1
    # every cut the model saw is in the provenance, this one first (229: one is rejected)
    ids = p["provenance"]["snapshot_ids"]
    assert len(ids) == 229 and ids[0] == p["snapshot_id"]


def test_units_without_acta_counts_or_estimate_are_refused(data_dir: Path) -> None:
    """Without acta counts and without an estimate of what remains, a projection would be
    a false certainty (as if nothing remained): refused, with the reason."""
    from escrutinio.projection.model import ModelParams
    from escrutinio.projection.units import UnknownRemaining, project_units
    from escrutinio.sources.onpe_aggregates import parse_2026_district_bundle

    b = parse_2026_district_bundle(data_dir / "peru-2026-first-round/"
                                   "ikusij_first_round_district_bundle_20260504.json.gz")
    with pytest.raises(UnknownRemaining) as err:
        project_units(b.frame, b.contest, params=ModelParams(n_sims=200))
    assert "certeza falsa" in err.value.message_es
    assert "false certainty" in err.value.message_en


def test_replay_series_cli(app: typer.Typer, db: Path, tmp_path: Path) -> None:
    svg = tmp_path / "r.svg"
    res = runner.invoke(app, ["--db", str(db), "replay", "--contest",
                              "pe-2021-presidencial-2v", "--mode", "series", "--final",
                              "latest", "--sims", "300", "--svg", str(svg), "--json"])
    assert res.exit_code == 0, res.stdout
    r = json.loads(res.stdout)
    assert r["basis"] == "series" and r["n_cuts"] == 48
    assert r["wrong_calls"] == []
    assert svg.read_text().startswith("<svg")
    res = runner.invoke(app, ["--db", str(db), "replay", "--contest",
                              "pe-2021-presidencial-2v", "--mode", "nonsense"])
    assert res.exit_code != 0


def test_parse_blocs() -> None:
    assert parse_blocs("castillo=perulibre+jpp; fujimori=fp") == {
        "castillo": ["perulibre", "jpp"], "fujimori": ["fp"]}
    assert parse_blocs(None) is None
    with pytest.raises(EscrutinioError):
        parse_blocs("castillo")
