"""``escrutinio diff`` on per-unit cuts whose source breaks (a newcomer's trial, Chile 2021).

Small per-unit files built in ``tmp_path`` through the generic format: a cut that leaves
two regions out, a cut whose acta total changes, a source without electors. The diff must
name the units that vanished and the totals that changed (never a silent inner join), and
must not print "electors +0" for a figure the source does not have.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from escrutinio.cli import app

runner = CliRunner()

HEADER = "level,unit_code,unit_name,abroad,actas_total,actas_counted,cast,v_ana,v_beto"
SIDECAR = {
    "format": "escrutinio-tabular", "format_version": 2, "kind": "units",
    "contest": {"id": "xx-units-gaps", "name": "Prueba", "kind": "runoff", "country": "CL",
                "date": "2021-11-21", "majority_threshold": None,
                "candidates": [{"code": "ana", "name": "Ana"}, {"code": "beto", "name": "Beto"}]},
    "timezone": "America/Santiago",
}


def _cut(folder: Path, i: int, rows: list[str]) -> None:
    path = folder / f"cut-{i:02d}.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    side = SIDECAR | {"as_of": f"2021-11-21T2{i}:00:00", "label": f"corte {i}"}
    (folder / f"cut-{i:02d}.csv.contest.json").write_text(json.dumps(side), encoding="utf-8")


def _store(tmp_path: Path) -> str:
    folder = tmp_path / "cuts"
    folder.mkdir()
    _cut(folder, 1, ["national,,Chile,,30,10,1000,600,400",
                     "area1,01,Norte,false,10,5,500,300,200",
                     "area1,02,Centro,false,10,3,300,200,100",
                     "area1,03,Sur,false,10,2,200,100,100"])
    # Centro and Sur left out; Norte's acta total grows
    _cut(folder, 2, ["national,,Chile,,30,20,2000,1100,900",
                     "area1,01,Norte,false,12,8,800,500,300"])
    db = str(tmp_path / "s.duckdb")
    res = runner.invoke(app, ["--db", db, "ingest", str(folder)])
    assert res.exit_code == 0, res.output
    return db


def test_diff_names_vanished_units_and_changed_totals(tmp_path: Path) -> None:
    db = _store(tmp_path)
    res = runner.invoke(app, ["--db", db, "--lang", "en", "diff", "corte 1", "corte 2",
                              "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    changes = {(r["unit_code"], r["change"]): (r["before"], r["after"])
               for r in d["unit_changes"]}
    assert changes == {("02", "vanished"): (None, None), ("03", "vanished"): (None, None),
                       ("01", "actas_total"): (10, 12)}
    assert d["n_unit_changes"] == 3 and d["n_unit_alarms"] == 3
    # no electors column: unknown, so no "electors" change at all (never +0)
    assert "electors" not in d["national_delta"]
    assert d["national_delta"]["v_ana"] == 500

    text = runner.invoke(app, ["--db", db, "--lang", "en", "diff", "corte 1", "corte 2"])
    assert text.exit_code == 0
    assert "area1 02: in the older snapshot, missing from the newer" in text.output
    assert "area1 01: acta total 10 → 12 (+2)" in text.output
    assert "electors" not in text.output
    # backwards: the same units appear (listed, not alarms) and the total goes down
    back = json.loads(runner.invoke(app, ["--db", db, "diff", "corte 2", "corte 1",
                                          "--json"]).stdout)
    assert {r["change"] for r in back["unit_changes"]} == {"appeared", "actas_total"}
    assert back["n_unit_alarms"] == 1


def test_went_down_rows_are_readable(tmp_path: Path) -> None:
    db = _store(tmp_path)
    res = runner.invoke(app, ["--db", db, "--lang", "en", "diff", "corte 2", "corte 1"])
    assert res.exit_code == 0, res.output
    assert "national cast: 2,000 → 1,000 (-1,000)" in res.output
    assert "{'" not in res.output  # no Python dict printed


def test_python_m_escrutinio(tmp_path: Path) -> None:
    db = _store(tmp_path)
    src = str(Path(__file__).resolve().parents[1] / "src")
    res = subprocess.run([sys.executable, "-m", "escrutinio", "--db", db, "--lang", "en",
                          "history", "--json"], capture_output=True, text=True, check=False,
                         env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)["points"]) == 2
