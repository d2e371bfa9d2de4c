"""The command line, driven as a user would, on real files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from typer.testing import CliRunner

from escrutinio.cli import app

ACTAS = "peru-2021-runoff/actas"
runner = CliRunner()


def run(db: Path, *args: str) -> tuple[int, str]:
    res = runner.invoke(app, ["--db", str(db), *args])
    return res.exit_code, res.stdout


def test_ingest_status_history_diff(tmp_path: Path, data_dir: Path) -> None:
    db = tmp_path / "e.duckdb"
    early = data_dir / ACTAS / "hist_actas_electorales_20210608T1121_cadd76f.csv.gz"
    final = data_dir / ACTAS / "actas_electorales_ronderos.pe.csv.gz"
    code, out = run(db, "ingest", str(early), "--json")
    assert code == 0, out
    assert json.loads(out)["snapshots"][0]["created"] is True
    code, out = run(db, "ingest", str(final), "--as-of", "2021-06-17T00:00:00Z", "--json")
    assert code == 0, out
    # same bytes again: a no-op
    code, out = run(db, "ingest", str(early), "--json")
    assert json.loads(out)["snapshots"][0]["created"] is False

    code, out = run(db, "status", "--level", "district", "--json")
    assert code == 0, out
    st = json.loads(out)
    assert st["national"]["candidates"][0]["votes"] == 8_835_653
    assert st["national"]["margin_votes"] == 43_957
    assert len(st["units"]) > 1800
    assert st["provenance"]["snapshot_ids"][0] == st["snapshot"]["snapshot_id"]

    code, out = run(db, "status", "-s", "first", "--level", "department", "--abroad", "--json")
    st = json.loads(out)
    assert code == 0 and {u["abroad"] for u in st["units"]} == {True}
    assert st["national"]["actas_jee"] == 1_367

    code, out = run(db, "history", "--json")
    h = json.loads(out)
    assert [p["margin_votes"] for p in h["points"]] == [77_921, 43_957]

    code, out = run(db, "diff", "first", "latest", "--json", "--limit", "0")
    d = json.loads(out)
    assert code == 0 and d["n_state_changes"] == len(d["state_changes"]) > 0

    code, out = run(db, "--lang", "en", "status")
    assert code == 0 and "Margin: 43,957 votes" in out and "By department" in out
    code, out = run(db, "status", "--level", "province")
    assert "Margen: 43,957 votos" in out and "Por provincia" in out
    code, out = run(db, "status", "--json")
    assert json.loads(out)["area_labels"]["area3"] == {"es": "distrito", "en": "district"}


def test_status_names_a_second_countrys_levels(tmp_path: Path, data_dir: Path) -> None:
    """Chile through the generic format: its levels are regiones and comunas, not area1."""
    from escrutinio.sources.chile import convert_chile_2021

    data, _ = convert_chile_2021(data_dir / "chile-2021-first-round/chile_election_2021.csv.gz",
                                 tmp_path / "chile.csv.gz", as_of="2021-11-22T03:00:00Z")
    db = tmp_path / "cl.duckdb"
    assert run(db, "ingest", str(data), "--json")[0] == 0
    code, out = run(db, "status", "--level", "area2")
    # the file has no comuna column: no table, said with the level's Chilean name
    assert code == 0 and "no hay tabla por comuna" in " ".join(out.split())
    code, out = run(db, "--lang", "en", "status", "--level", "area1")
    assert code == 0 and "By region" in out
    # the first round of the second place: Boric ahead of Parisi, nothing left to count
    code, out = run(db, "status", "--level", "national")
    flat = " ".join(out.split())
    assert "Segundo lugar (pase a la segunda vuelta): Gabriel Boric Font aventaja a Franco " \
           "Parisi Fernández por 897,186 votos" in flat
    # a complete count without electors: nothing to project, said plainly
    code, out = run(db, "project", "--sims", "200", "--json")
    assert code != 0 and "nothing left to project" in json.loads(out)["message_en"]
    # nothing contested in Chile's file: said in one plain sentence
    code, out = run(db, "contested", "--json", "--sims", "200")
    flip = json.loads(out)["flip"]
    assert code == 0 and flip["possible"] is False and flip["n_favouring_leader"] == 0
    assert flip["explanation_en"] == ("No contested acta favours kast: no set can change the "
                                      "result (margin 157,516).")


def test_bad_file_exit_code_and_store_unchanged(tmp_path: Path, data_dir: Path) -> None:
    db = tmp_path / "e.duckdb"
    early = data_dir / ACTAS / "hist_actas_electorales_20210608T1121_cadd76f.csv.gz"
    assert run(db, "ingest", str(early))[0] == 0
    bad = tmp_path / "bad.csv"
    raw = gzip.decompress(early.read_bytes())
    lines = raw.split(b"\n")
    lines[3] = lines[3].replace(b",300,", b",tres cientos,", 1)
    bad.write_bytes(b"\n".join(lines))
    code, out = run(db, "ingest", str(bad), "--json")
    assert code == 2
    err = json.loads(out)
    assert err["rule"] == "not_an_integer" and err["line"] == 4
    assert err["field"] == "num_electores" and err["file"].endswith("bad.csv")
    code, out = run(db, "snapshots", "--json")
    assert len(json.loads(out)) == 1


def test_status_without_store_is_a_clear_error(tmp_path: Path) -> None:
    code, _ = run(tmp_path / "none.duckdb", "status")
    assert code == 1


def test_datasets_json(tmp_path: Path) -> None:
    code, out = run(tmp_path / "x.duckdb", "datasets", "--json")
    assert code == 0
    names = {d["name"] for d in json.loads(out)}
    assert {"peru-2021-runoff", "chile-2021-first-round"} <= names


def test_first_round_2026_race_for_the_runoff(tmp_path: Path, data_dir: Path) -> None:
    """The 2026 dataset (district bundle + 230 national cuts): no acta counts, so nothing is
    said about actas remaining; second place and its one change are."""
    db = tmp_path / "p26.duckdb"
    code, out = run(db, "ingest", "peru-2026-first-round", "--json")
    assert code == 0, out
    assert len(json.loads(out)["snapshots"]) == 231
    code, out = run(db, "status", "--level", "national")
    assert code == 0, out
    flat = " ".join(out.split())
    assert "no publica cuántas hay" in flat and "0 de 0" not in flat
    assert "no quedan votos" not in flat
    assert "Segundo lugar (pase a la segunda vuelta): ROBERTO HELBERT SANCHEZ PALOMINO " \
           "aventaja a RAFAEL BERNARDO LÓPEZ ALIAGA CAZORLA por 26,491 votos" in flat
    # the latest cut is national only: the department table is the bundle's, named
    code, out = run(db, "status", "--level", "department")
    flat = " ".join(out.split())
    assert "no tiene cifras por departamento; la más reciente que sí:" in flat
    assert "(ikusij bundle ikusij_first_round_district_bundle_20260504" in flat
    code, out = run(db, "--lang", "en", "history")
    flat = " ".join(out.split())
    assert "Change in who goes to the runoff: sanchez in, lopez_aliaga out" in flat
    assert "Lead change" not in flat
