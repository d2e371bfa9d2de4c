"""The main CLI commands give the same answers on DuckDB and on PostgreSQL.

One small real input (the 2021 runoff's Amazonas department at two cuts: the provisional
count of 8 June and the final one), ingested once per backend; then every question with
``--json`` on each store — ``status``, ``history``, ``diff``, ``project``, ``verify``,
``contested``, ``quickcount``, ``forensics``, ``pvt`` (one file of generated observers'
copies), ``replay``, ``snapshots``, ``audit plan`` and ``audit sample`` — and the answers
compared figure by figure (only what names the store or the clock may differ).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from escrutinio.cli import app
from escrutinio.sources.onpe_files import parse_provisional, parse_ronderos
from escrutinio.sources.tabular import write_tabular

ACTAS = "peru-2021-runoff/actas"
EARLY = "hist_actas_electorales_20210608T1121_cadd76f.csv.gz"
FINAL = "actas_electorales_ronderos.pe.csv.gz"
SEED = "41592653589793238462"
AREA = "010000"  # Amazonas: 1,500-odd actas, the point is the backends, not the volume
#: keys whose values name the store, or say when something was stored or computed
VOLATILE = frozenset({"db", "created_at", "ingested_at", "elapsed_seconds"})

runner = CliRunner()


@pytest.fixture(scope="module")
def inputs(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("matrix")
    out = []
    for name, snap in (("early", parse_provisional(data_dir / ACTAS / EARLY)),
                       ("final", parse_ronderos(data_dir / ACTAS / FINAL,
                                                as_of="2021-06-17T00:00:00Z"))):
        part = snap.frame.filter(pl.col("area1_code") == AREA)
        data, _ = write_tabular(part, snap.contest, folder / f"amazonas-{name}.csv", snap.as_of,
                                label=f"amazonas-{name}")
        out.append(data)
    return out


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _answers(db: str, inputs: list[Path], copies: Path) -> dict[str, Any]:
    def run(*args: str) -> Any:
        res = runner.invoke(app, ["--db", db, *args])
        if res.exception and not isinstance(res.exception, SystemExit):
            raise res.exception
        assert res.exit_code == 0, (args, res.stdout)
        return json.loads(res.stdout) if "--json" in args else res.stdout

    out: dict[str, Any] = {}
    for data in inputs:
        out[f"ingest {data.name}"] = run("ingest", str(data), "--json")
    out["status"] = run("status", "--json")
    out["status first"] = run("status", "--snapshot", "first", "--json")
    out["history"] = run("history", "--json")
    out["diff"] = run("diff", "first", "latest", "--limit", "0", "--json")
    out["project"] = run("project", "-s", "first", "--sims", "400", "--json")
    out["verify"] = run("verify", "--json")
    out["contested"] = run("contested", "-s", "first", "--sims", "400", "--json")
    out["quickcount"] = run("quickcount", "--seed", SEED, "--mesas", "60", "--json")
    out["forensics"] = run("forensics", "--draws", "200", "--json")
    if not copies.exists():  # the first backend writes the copies both compare
        run("pvt", "--generate", str(copies), "--coverage", "0.3", "--seed", "7")
    out["pvt"] = run("pvt", str(copies), "--limit", "0", "--json")
    out["replay"] = run("replay", "--mode", "snapshots", "--sims", "300", "--json")
    out["snapshots"] = run("snapshots", "--json")
    out["audit plan"] = run("audit", "plan", "--replicates", "50", "--json")
    out["audit sample"] = run("audit", "sample", "-a", "m1", "--seed", SEED, "--size", "12",
                              "--json")
    out["audit sample 2"] = run("audit", "sample", "-a", "m1", "--size", "4", "--json")
    out["migrate"] = run("migrate", "--json")  # the schema's record, listed by the store
    return out


@pytest.fixture(scope="module")
def pg_url(pg_server: object) -> Iterator[str]:
    from pg_support import schema_url

    with schema_url(pg_server) as url:  # type: ignore[arg-type]
        yield url


def test_cli_answers_match_on_duckdb_and_postgresql(tmp_path: Path, inputs: list[Path],
                                                    pg_url: str) -> None:
    copies = tmp_path / "copies.csv"
    duck = _answers(str(tmp_path / "m.duckdb"), inputs, copies)
    pg = _answers(pg_url, inputs, copies)
    assert list(duck) == list(pg)
    # the answers carry real figures (a comparison of two empty answers proves nothing)
    final = duck["status"]
    assert json.dumps(final).count("castillo") and duck["history"]
    assert len(duck["audit sample"]["round"]["draws"]) == 12
    assert duck["audit sample 2"]["round"]["first_draw"] == 13
    assert duck["project"] and duck["verify"] and duck["forensics"] and duck["diff"]
    assert duck["pvt"] and duck["replay"]["n_cuts"] >= 1 and len(duck["snapshots"]) >= 2
    # one migration sequence: the same versions and names; the same bytes except where a
    # dialect variant exists (0001)
    mig = {k: v.pop("migrations") for k, v in (("duck", duck["migrate"]), ("pg", pg["migrate"]))}
    assert [(m["version"], m["name"]) for m in mig["duck"]] == \
        [(m["version"], m["name"]) for m in mig["pg"]] and len(mig["pg"]) >= 3
    assert [m["sha256"] == n["sha256"] for m, n in zip(mig["duck"], mig["pg"], strict=True)
            ][:3] == [False, True, True]
    assert duck["migrate"]["applied"] == [] == pg["migrate"]["applied"]
    for key in duck:
        assert _scrub(duck[key]) == _scrub(pg[key]), key
