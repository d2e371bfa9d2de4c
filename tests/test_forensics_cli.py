"""``escrutinio forensics`` driven as a user would, on a store with real actas."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from escrutinio.commands import forensics as forensics_cmd
from escrutinio.commands.common import opts
from escrutinio.sources.onpe_files import parse_ronderos
from escrutinio.store.duckdb_store import DuckDBStore

RUNOFF = "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz"
FIRST = "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz"
runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main(db: Annotated[str, typer.Option()] = "e.duckdb",
             lang: Annotated[str, typer.Option()] = "es") -> None:
        opts.db = db
        opts.lang = "en" if lang.startswith("en") else "es"

    forensics_cmd.register(app)
    return app


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """Cusco and Puno, runoff and first round (the panel test finds it by itself)."""
    path = tmp_path_factory.mktemp("forensics") / "e.duckdb"
    keep = pl.col("area1_code").is_in(["070000", "200000"])
    snaps = []
    for rel, as_of in ((RUNOFF, "2021-06-17T00:00:00Z"), (FIRST, "2021-05-11T09:15:00Z")):
        s = parse_ronderos(data_dir / rel, as_of=as_of)
        snaps.append(dataclasses.replace(s, frame=s.frame.filter(keep)))
    with DuckDBStore(path) as store:
        store.put_snapshots(snaps)
    return path


def test_forensics_json_image_and_languages(db: Path, tmp_path: Path) -> None:
    app = _app()
    res = runner.invoke(app, ["--db", str(db), "forensics", "--contest",
                              "pe-2021-presidencial-2v", "--json"])
    assert res.exit_code == 0, res.stdout
    doc = json.loads(res.stdout)
    assert {t["test"] for t in doc["tests"]} == {"integer", "last_digit", "second_digit",
                                                "fingerprint", "place", "panel"}
    assert doc["panel_info"]["actas_joined"] > 5_000  # first round found automatically
    assert len(doc["provenance"]["snapshot_ids"]) == 2
    assert doc["stakes"]["n_listed"] == len(doc["flagged_actas"])
    assert doc["stakes"]["n_actas"] == sum(a["in_flagged_scope"] for a in doc["flagged_actas"])
    assert "sha256:" in doc["footer_es"] and doc["summary_en"]

    png = tmp_path / "huella.png"
    res = runner.invoke(app, ["--db", str(db), "--lang", "en", "forensics", "--contest",
                              "pe-2021-presidencial-2v", "--tests", "fingerprint,integer",
                              "--image", str(png), "--first-round", "none"])
    assert res.exit_code == 0, res.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "anomaly, not proof" in res.stdout and "Reproducibility" in res.stdout
    res = runner.invoke(app, ["--db", str(db), "forensics", "--contest",
                              "pe-2021-presidencial-2v", "--tests", "integer",
                              "--draws", "50"])
    assert res.exit_code == 0 and "Sin anomalía detectable" in res.stdout
    assert "50 sorteos Monte Carlo" in res.stdout


def test_forensics_refuses_benford(db: Path) -> None:
    app = _app()
    res = runner.invoke(app, ["--db", str(db), "forensics", "--benford"])
    assert res.exit_code == 2
    assert "Benford" in res.stdout and "no es una prueba válida" in res.stdout
    res = runner.invoke(app, ["--db", str(db), "--lang", "en", "forensics", "--benford",
                              "--json"])
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    assert doc["refused"] is True and "not a valid election test" in doc["message_en"]
    res = runner.invoke(app, ["--db", str(db), "forensics", "--tests", "benford", "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)["test"] == "benford_first_digit"


def test_forensics_errors_are_bilingual(db: Path, tmp_path: Path) -> None:
    app = _app()
    res = runner.invoke(app, ["--db", str(tmp_path / "none.duckdb"), "forensics", "--json"])
    assert res.exit_code == 1 and "escrutinio ingest" in json.loads(res.stdout)["message_en"]
    res = runner.invoke(app, ["--db", str(db), "forensics", "--contest",
                              "pe-2021-presidencial-2v", "--tests", "astrology", "--json"])
    # a bad option value: exit 2, the valid tests listed (tests/test_cli_options.py)
    assert res.exit_code == 2 and "--tests" in json.loads(res.stdout)["message_en"]
    assert "last_digit" in json.loads(res.stdout)["message_en"]
