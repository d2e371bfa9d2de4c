"""The defence commands driven as a coordinator would, on a store of the real 2021 files."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from defence_data import final, june8, june15
from escrutinio.cli import app
from escrutinio.store.duckdb_store import DuckDBStore

runner = CliRunner()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("defence") / "e.duckdb"
    with DuckDBStore(path) as store:
        store.put_snapshots([june8(), june15(), final()])
    return path


def run(db: Path, *args: str) -> tuple[int, str]:
    res = runner.invoke(app, ["--db", str(db), *args])
    return res.exit_code, res.stdout


def test_verify_finds_the_counted_acta_that_changed(db: Path, tmp_path: Path) -> None:
    csv = tmp_path / "verify.csv"
    code, out = run(db, "verify", "--json", "--csv", str(csv))
    assert code == 0, out
    v = json.loads(out)
    assert v["n_changed"] == 1 and v["margin"] == 43_957
    item = v["items"][0]
    assert (item["acta_id"], item["kind"], item["net_change"]) == ("001972", "changed", -107)
    raw = csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: a spreadsheet reads the accents right
    assert pl.read_csv(csv)["acta_id"].cast(pl.String).str.zfill(6).to_list() == ["001972"]
    code, out = run(db, "verify", "-s", june15().snapshot_id[:12], "--against", "none",
                    "--json", "--limit", "0")
    v = json.loads(out)
    assert v["n_flagged"] == 686 and v["n_changed"] == 0 and len(v["items"]) == 686


def test_pvt_generate_then_reconcile(db: Path, tmp_path: Path) -> None:
    gen = tmp_path / "copias.csv.gz"
    code, out = run(db, "pvt", "--generate", str(gen), "--coverage", "0.1", "--seed", "9",
                    "--json")
    assert code == 0, out
    made = json.loads(out)
    csv = tmp_path / "pvt.csv"
    code, out = run(db, "pvt", str(gen), "--copy-codes", made["copy_codes"], "--json",
                    "--csv", str(csv), "--limit", "5")
    assert code == 0, out
    r = json.loads(out)
    s = r["summary"]
    assert s["n_copies"] == made["n_copies"] and len(r["alarms"]) == 5
    truth = pl.read_csv(made["truth"])
    numeric = {"transposed_digits", "candidates_swapped", "sum_mismatch",
               "votes_above_electors", "figures_differ"}
    assert s["n_numeric"] == truth.filter(pl.col("defect").is_in(numeric)).height
    assert s["categories"]["exact"] > 0.9 * s["n_copies"]
    report = pl.read_csv(csv, infer_schema=False)
    assert report.height == s["n_copies"] and report["rank"].to_list()[:3] == ["1", "2", "3"]
    code, out = run(db, "--lang", "en", "pvt", str(gen), "--limit", "3")
    assert code == 0 and "discrepancies on published actas together could move the margin by" \
        in out


def test_pvt_bad_file_is_a_located_error(db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("acta_id,observer_id,observed_at,cast,blank,null,v_castillo,v_fujimori\n"
                   "000001,o,2021-06-06T20:00:00Z,214,1,14,118,81\n"
                   "000002,o,2021-06-06T20:00:00Z,226,0,16,ciento,87\n", encoding="utf-8")
    code, out = run(db, "pvt", str(bad), "--json")
    assert code == 2
    e = json.loads(out)
    assert (e["rule"], e["line"], e["field"]) == ("not_an_integer", 3, "v_castillo")


def test_quickcount_design_sample_and_estimate(db: Path, tmp_path: Path) -> None:
    csv = tmp_path / "muestra.csv"
    code, out = run(db, "quickcount", "--seed", "6 6 1 3", "--mesas", "1500", "--json",
                    "--csv", str(csv), "--limit", "0")
    assert code == 0, out
    d = json.loads(out)
    assert d["n_sample"] == 1500 and len(d["sample"]) == 1500
    assert 7 < d["design_effect"]["deff_stratified"] < 14
    sample = pl.read_csv(csv, infer_schema=False)
    assert sample.height == 1500 and set(sample.columns) == {"stratum", "rank", "acta_id",
                                                             "sha256"}
    # the field team reports the sampled actas in the observer-copy format
    rep = final().frame.join(sample.select("acta_id"), on="acta_id").select(
        "acta_id", pl.lit("obs").alias("observer_id"),
        pl.lit("2021-06-06T21:00:00Z").alias("observed_at"), "cast", "blank", "null",
        "v_castillo", "v_fujimori")
    rep_path = tmp_path / "reportes.csv"
    rep.write_csv(rep_path)
    code, out = run(db, "quickcount", "--seed", "6 6 1 3", "--mesas", "1500", "--reports",
                    str(rep_path), "--json", "--boot", "500")
    assert code == 0, out
    e = json.loads(out)["estimate"]
    assert e["n_reports"] == 1500 and e["call"] == "technical_tie"
    _, out2 = run(db, "quickcount", "--seed", "6 6 1 3", "--mesas", "1500",
                  "--simulate-reports", "--json", "--boot", "500")
    assert json.loads(out2)["estimate"]["ratio"] == e["ratio"]  # same figures, same answer
    code, out = run(db, "quickcount", "--mesas", "1500")
    assert code == 2  # no public seed: a missing option is bad input (exit 2)


def test_contested_with_history_and_request(db: Path, tmp_path: Path) -> None:
    req = tmp_path / "nulidad.txt"
    req.write_text("# pedido\n1\n2\n3\n", encoding="utf-8")
    csv = tmp_path / "disputa.csv"
    code, out = run(db, "contested", "-s", june15().snapshot_id[:12], "--request", str(req),
                    "--sims", "2000", "--json", "--csv", str(csv), "--limit", "10")
    assert code == 0, out
    r = json.loads(out)
    assert r["n_contested"] == 1354 and r["counted_margin"] == 85_574
    assert r["n_resolved_since"] == 120 and not r["flip"]["possible"]
    assert r["request"]["n_found"] == 3
    assert len(r["actas"]) == 10
    assert pl.read_csv(csv).height == 1354
    code, out = run(db, "contested", "--json")  # the final file: nothing left at the JEE
    r = json.loads(out)
    assert code == 0 and r["n_contested"] == 0 and r["distribution"] is None
