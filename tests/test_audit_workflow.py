"""The audit workflow on the real 2021 runoff, driven through the CLI, and real first rounds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from escrutinio.audit.model import Policy, build_population
from escrutinio.audit.plan import plan_audit
from escrutinio.cli import main as cli_main
from escrutinio.commands import audit as audit_cmd
from escrutinio.sources.onpe_files import parse_ronderos

RUNOFF = "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz"
SEED = "41592653589793238462"
runner = CliRunner()


def make_app() -> typer.Typer:
    from escrutinio import cli

    app = typer.Typer()
    app.callback()(cli_main)
    app.command()(cli.ingest)
    audit_cmd.register(app)
    return app


@pytest.fixture(scope="module")
def runoff(data_dir):
    return parse_ronderos(data_dir / RUNOFF, as_of="2021-06-17T00:00:00Z")


def test_peru_2021_runoff_zero_discrepancy_sizes(runoff):
    pop = build_population(runoff.frame, runoff.contest, snapshot_id=runoff.snapshot_id)
    assert pop.margin == (43_957,) and pop.size == 86_488
    # U = (margin + all ballots of counted and annulled actas + electors of the 6 mesas
    # not installed) / margin
    assert pop.total_weight == 43_957 + 18_811_683 + 44_953 + 731
    plan = plan_audit(pop, replicates=200)
    sizes = {(m.method, m.risk_limit): m.zero_error for m in plan.methods}
    assert sizes[("macro", 0.05)] == 1287 and sizes[("macro", 0.10)] == 989
    assert 1287 <= sizes[("alpha", 0.05)] <= 1300
    bravo5 = next(m for m in plan.methods if m.method == "bravo" and m.risk_limit == 0.05)
    assert 900_000 < bravo5.zero_error < 1_200_000 and not bravo5.practical
    assert bravo5.expected_actas > 0.99 * pop.size  # polling would open every acta
    # treating the 220 annulled actas as unknown erases the margin: no audit can help
    worst = build_population(runoff.frame, runoff.contest, policy=Policy(annulled="subtract"))
    assert worst.margin == (43_957 - 44_953,) and not plan_audit(worst).auditable


def test_chile_first_round_every_pair_and_threshold(data_dir):
    from escrutinio.sources.chile import CHILE_2021_FIRST_ROUND, chile_2021_actas

    frame, _ = chile_2021_actas(data_dir / "chile-2021-first-round/chile_election_2021.csv.gz")
    pop = build_population(frame, CHILE_2021_FIRST_ROUND)
    ids = [a.id for a in pop.assertions]
    assert pop.winners == ("kast", "boric")
    assert len(ids) == 2 * 5 + 2 and "no_majority:kast" in ids and "boric>parisi" in ids
    assert pop.auditable and min(pop.margin) == 897_186  # Boric over Parisi
    # one weight bounds every assertion: w_p / Q >= bound_pa / V_a
    w = pop.weights.astype(float) / pop.scale
    ratio = pop.bound / np.array(pop.margin, dtype=float)
    assert (w[:, None] >= ratio - 1e-12).all()


def _counts_csv(path: Path, draws: list[dict], frame: pl.DataFrame,
                change: dict[str, tuple[int, int]]) -> None:
    ids = sorted({d["acta_id"] for d in draws})
    rep = frame.filter(pl.col("acta_id").is_in(ids)).sort("acta_id")
    rows = []
    for r in rep.iter_rows(named=True):
        dc, df = change.get(r["acta_id"], (0, 0))
        rows.append({"acta_id": r["acta_id"], "v_castillo": r["v_castillo"] + dc,
                     "v_fujimori": r["v_fujimori"] + df, "blank": r["blank"],
                     "null": r["null"], "challenged": r["challenged"]})
    pl.DataFrame(rows).write_csv(path)


def test_cli_plan_sample_record_measure_escalate_report(tmp_path, data_dir, runoff):
    app = make_app()
    db = str(tmp_path / "a.duckdb")

    def run(*args: str) -> tuple[int, str]:
        res = runner.invoke(app, ["--db", db, *args])
        if res.exception and not isinstance(res.exception, SystemExit):
            raise res.exception
        return res.exit_code, res.stdout

    code, _ = run("ingest", str(data_dir / RUNOFF), "--as-of", "2021-06-17T00:00:00Z")
    assert code == 0
    code, out = run("audit", "plan", "--replicates", "100", "--json")
    assert code == 0, out
    plan = json.loads(out)
    assert plan["margins"] == [43957] and plan["auditable"]
    # the proclaimed totals differ from this scrape: nothing is drawn
    code, out = run("audit", "sample", "-a", "t1", "--seed", SEED, "--totals",
                    "castillo=8836380,fujimori=8792117", "--json")
    assert code != 0 and "manifest" in json.loads(out)["message_en"]
    code, out = run("audit", "sample", "-a", "t1", "--seed", SEED, "--totals",
                    "castillo=8835653,fujimori=8791696", "--size", "60", "--json",
                    "--manifest-out", str(tmp_path / "manifest.csv"))
    assert code == 0, out
    r1 = json.loads(out)["round"]
    assert r1["round"] == 1 and len(r1["draws"]) == 60 and r1["first_draw"] == 1
    assert pl.read_csv(tmp_path / "manifest.csv", schema_overrides={"acta_id": pl.String}
                       ).height == 86_488
    # hand counts: all match except one acta where 3 votes moved from Castillo to Fujimori
    bad = r1["draws"][0]["acta_id"]
    csv1 = tmp_path / "c1.csv"
    _counts_csv(csv1, r1["draws"], runoff.frame, {bad: (-3, 3)})
    code, out = run("audit", "record", "-a", "t1", str(csv1), "--json")
    assert code == 0, out
    rec1 = json.loads(out)
    assert rec1["not_yet_counted"] == 0 and rec1["recorded"] > 0
    # the counts name the audit they belong to (seed, limit, manifest)
    assert rec1["provenance"]["parameters"]["counts_sha256"] == rec1["source_sha256"]
    assert rec1["provenance"]["parameters"]["public_seed"] == SEED
    code, out = run("audit", "measure", "-a", "t1", "--json")
    m1 = json.loads(out)
    assert m1["status"] == "continue" and m1["n_with_discrepancy"] == 1
    assert m1["next_round_draws"] > 1000  # 60 draws are far from enough at this margin
    # escalation continues the same counter sequence
    code, out = run("audit", "sample", "-a", "t1", "--size", "25", "--json")
    r2 = json.loads(out)["round"]
    assert r2["first_draw"] == 61 and r2["last_draw"] == 85
    code, out = run("audit", "measure", "-a", "t1", "--json")
    m2 = json.loads(out)
    assert m2["status"] == "incomplete" and m2["n_missing"] > 0  # worst case meanwhile
    assert not m2["confirmed"]
    csv2 = tmp_path / "c2.csv"
    _counts_csv(csv2, r1["draws"] + r2["draws"], runoff.frame, {bad: (-3, 3)})
    code, out = run("audit", "record", "-a", "t1", str(csv2), "--json")
    assert code == 0, out
    code, out = run("audit", "measure", "-a", "t1", "--json")
    m3 = json.loads(out)
    assert m3["status"] == "continue" and m3["risk"] <= m1["risk"]
    code, out = run("audit", "report", "-a", "t1", "--json")
    rep = json.loads(out)
    assert rep["replay"] == {"manifest_ok": True, "draws_ok": True, "measures_ok": True,
                             "n_rounds": 2, "n_measures": 3}
    row = next(d for d in rep["measurement"]["discrepancies"] if d["acta_id"] == bad)
    assert row["overstatement_votes"] == [6] and row["taint"] > 0
    code, out = run("--lang", "en", "audit", "report", "-a", "t1", "--only-discrepancies")
    assert code == 0 and bad in out and "Drawn actas" in out


def test_hand_count_errors_name_file_line_field(tmp_path, data_dir):
    app = make_app()
    db = str(tmp_path / "b.duckdb")
    runner.invoke(app, ["--db", db, "ingest", str(data_dir / RUNOFF), "--as-of",
                        "2021-06-17T00:00:00Z"])
    res = runner.invoke(app, ["--db", db, "audit", "sample", "-a", "x", "--seed", SEED,
                              "--size", "5", "--json"])
    draws = json.loads(res.stdout)["round"]["draws"]
    f = tmp_path / "bad.csv"
    f.write_text("acta_id,v_castillo,v_fujimori,blank,null\n"
                 f"{draws[0]['acta_id']},10,-1,0,0\n")
    res = runner.invoke(app, ["--db", db, "audit", "record", "-a", "x", str(f), "--json"])
    err = json.loads(res.stdout)
    assert res.exit_code == 2 and err["line"] == 2 and err["field"] == "v_fujimori"
    f.write_text("acta_id,v_castillo,v_fujimori,blank,null\n999999,1,1,0,0\n")
    res = runner.invoke(app, ["--db", db, "audit", "record", "-a", "x", str(f), "--json"])
    assert json.loads(res.stdout)["rule"] == "not_drawn"
    # a second sample with another seed is refused
    res = runner.invoke(app, ["--db", db, "audit", "sample", "-a", "x", "--seed", "1" * 20,
                              "--json"])
    assert res.exit_code != 0 and "seed" in json.loads(res.stdout)["message_en"]
