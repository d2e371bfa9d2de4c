"""One answer per defence question: ``escrutinio verify|contested|quickcount|pvt --json``
and the matching ``/api/v1/...`` endpoint, on one store of the real 2021 runoff (the
provisional per-acta states of 8 and 15 June and the final file) with the same
parameters, give identical figures — both go through :mod:`escrutinio.service`.

The observers' copies and the quick-count reports are built from the final per-acta file
(some altered, one broken row), written once and sent as the same bytes to the CLI (a
file) and to the API (a multipart upload).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from defence_data import final, june8, june15
from escrutinio.cli import app as cli_app
from escrutinio.store.duckdb_store import DuckDBStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.slow  # end to end through the CLI and the web app

runner = CliRunner()
SEED = "dados-2021"
COLS = ["acta_id", "observer_id", "observed_at", "cast", "blank", "null", "v_castillo",
        "v_fujimori"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("service-defence") / "e.duckdb"
    with DuckDBStore(path) as store:
        store.put_snapshots([june8(), june15(), final()])
    return path


@pytest.fixture(scope="module")
def client(db: Path) -> Iterator[TestClient]:
    from escrutinio.api.app import create_app

    with TestClient(create_app(db)) as c:
        yield c


def cli(db: Path, *args: str) -> dict[str, Any]:
    res = runner.invoke(cli_app, ["--db", str(db), *args])
    assert res.exit_code == 0, res.output
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def api(client: TestClient, url: str, **kw: Any) -> dict[str, Any]:
    r = client.post(url, **kw) if kw else client.get(url)
    assert r.status_code == 200, r.text[:800]
    out: dict[str, Any] = r.json()["result"]
    return out


def copy_rows(acta_ids: list[str]) -> pl.DataFrame:
    """Observers' copies equal to the final official actas (the copy format's columns)."""
    return (final().frame.filter(pl.col("acta_id").is_in(acta_ids)).sort("acta_id")
            .with_columns(pl.format("obs{}", pl.int_range(pl.len())).alias("observer_id"),
                          pl.lit("2021-06-06T20:00:00-05:00").alias("observed_at"))
            .select(COLS))


def without_source_names(tree: Any) -> Any:
    """``tree`` without the names the two presenters give the same bytes (a file path on
    the command line, the upload's file name on the web); their SHA-256 stays."""
    if isinstance(tree, dict):
        return {k: without_source_names(v) for k, v in tree.items()
                if k not in ("source", "reports", "source_uri")}
    if isinstance(tree, list):
        return [without_source_names(v) for v in tree]
    return tree


def test_verify(db: Path, client: TestClient) -> None:
    for snap, prev in ((final(), june15()), (june15(), june8())):
        by_cli = cli(db, "verify", "-s", snap.snapshot_id, "--json", "--limit", "40")
        by_api = api(client, f"/api/v1/s/{snap.snapshot_id}/verify?limit=40")
        assert by_cli == by_api
        assert by_cli["previous"]["snapshot_id"] == prev.snapshot_id
        service = by_cli["provenance"]["parameters"]["service"]
        assert service["parameters"] == {"against": "previous", "pair": None}
        assert [(i["role"], i["source_sha256"]) for i in service["inputs"]] == [
            ("snapshot", snap.source_sha256), ("previous", prev.source_sha256)]
    # the final file against 15 June: the one counted acta that changed (data README)
    assert by_cli["n_flagged"] == 686  # 15 June, against 8 June
    final_v = api(client, f"/api/v1/s/{final().snapshot_id}/verify")
    assert final_v["n_changed"] == 1 and final_v["margin"] == 43_957


def test_contested(db: Path, client: TestClient) -> None:
    sid = june15().snapshot_id
    by_cli = cli(db, "contested", "-s", sid, "--json", "--limit", "25")
    by_api = api(client, f"/api/v1/s/{sid}/contested?limit=25")
    assert by_cli == by_api
    assert by_cli["n_contested"] == 1354 and by_cli["counted_margin"] == 85_574
    assert by_cli["n_resolved_since"] == 120  # learned from 8 June
    dist = by_cli["distribution"]
    assert dist["n_sims"] == 20_000 and dist["seed"] == 0
    inputs = by_cli["provenance"]["parameters"]["service"]["inputs"]
    assert [(i["role"], i["snapshot_id"]) for i in inputs] == [
        ("snapshot", sid), ("earlier", june8().snapshot_id)]


def test_quickcount_design_and_sample(db: Path, client: TestClient) -> None:
    sid = final().snapshot_id
    by_cli = cli(db, "quickcount", "-s", sid, "--seed", SEED, "--json", "--limit", "60")
    by_api = api(client, f"/api/v1/s/{sid}/quickcount?seed={SEED}&limit=60")
    assert {k: by_cli[k] for k in by_api} == by_api
    assert by_cli["n_sample"] == 1500 == sum(s["sample"] for s in by_cli["strata"])
    assert len(by_cli["sample"]) == 60 and 7 < by_cli["design_effect"]["deff_stratified"] < 14
    assert by_cli["design"]["provenance"]["parameters"]["service"]["parameters"]["seed"] == SEED


@pytest.fixture(scope="module")
def reports(db: Path, client: TestClient, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Path, list[str]]:
    """Reports of the 8 June sample of SEED, from the final file (as a field team would
    send them), one of a mesa outside the sample and one broken row."""
    sample = api(client, f"/api/v1/s/{june8().snapshot_id}/quickcount?seed={SEED}"
                         "&limit=100000")["sample"]
    ids = [x["acta_id"] for x in sample]
    counted = final().frame.filter(pl.col("status") == "counted")
    outside = counted.filter(~pl.col("acta_id").is_in(ids))["acta_id"][0]
    rows = copy_rows(counted.filter(pl.col("acta_id").is_in(ids))["acta_id"].to_list())
    text = rows.write_csv()
    text += f"{outside},o,2021-06-06T20:00:00Z,10,1,1,4,4\n"
    text += "000123,o,2021-06-06T20:00:00Z,10,1,1,4,\n"  # an empty figure: rejected
    path = tmp_path_factory.mktemp("reports") / "reportes.csv"
    path.write_text(text, encoding="utf-8")
    return path, ids


def test_quickcount_estimate_from_reports(db: Path, client: TestClient,
                                          reports: tuple[Path, list[str]]) -> None:
    path, _ = reports
    sid = june8().snapshot_id
    by_cli = cli(db, "quickcount", "-s", sid, "--seed", SEED, "--reports", str(path),
                 "--json", "--limit", "50")
    by_api = api(client, f"/api/v1/s/{sid}/quickcount/estimate?seed={SEED}&limit=50",
                 files={"reports": ("reportes.csv", path.read_bytes(), "text/csv")})
    assert {k: without_source_names(by_cli[k]) for k in by_api} == \
        without_source_names(by_api)
    est, fus = by_cli["estimate"], by_cli["fusion"]
    assert est["call"] == "technical_tie" and est["candidate_a"] == "castillo"
    assert fus["kind"] == "fusion" and 0.95 < fus["known_fraction_electors"] < 0.96
    assert by_cli["fused_with"]["snapshot_id"] == sid
    assert by_cli["n_refused"] == 1 and by_cli["n_rejected"] == 1
    prov = by_cli["provenance"]
    assert prov["reports_sha256"] == by_api["provenance"]["reports_sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", prov["reports_sha256"])
    assert prov["estimator"] == {"n_boot": 2000, "seed": 0}
    roles = [i["role"] for i in fus["provenance"]["parameters"]["service"]["inputs"]]
    assert roles == ["snapshot", "reports", "fused_with"]


@pytest.fixture(scope="module")
def copies_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of 300 counted actas of the final file: two altered (40 votes moved, two
    digits transposed), then one broken row."""
    counted = final().frame.filter(pl.col("status") == "counted")
    ids = counted["acta_id"].head(300).to_list()
    df = copy_rows(ids).with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(pl.col("v_fujimori") + 40)
        .otherwise(pl.col("v_fujimori")).alias("v_fujimori"))
    text = df.write_csv() + f"{ids[0]},obs-x,2021-06-06T20:05:00-05:00,10,-1,0,5,4\n"
    path = tmp_path_factory.mktemp("copies") / "copias.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_pvt(db: Path, client: TestClient, copies_file: Path) -> None:
    sid = final().snapshot_id
    by_cli = cli(db, "pvt", str(copies_file), "-s", sid, "--json", "--limit", "50")
    by_api = api(client, f"/api/v1/s/{sid}/pvt?limit=50",
                 files={"copies": ("copias.csv", copies_file.read_bytes(), "text/csv")})
    assert without_source_names(by_cli) == without_source_names(by_api)
    s = by_cli["summary"]
    assert s["n_copies"] == 300 and s["categories"]["exact"] == 299
    assert [a["acta_id"] for a in by_cli["alarms"]] == [
        final().frame.filter(pl.col("status") == "counted")["acta_id"][1]]
    assert [r["rule"] for r in by_cli["rejected"]] == ["negative_count"]
    inputs = by_cli["provenance"]["parameters"]["service"]["inputs"]
    assert inputs[1]["role"] == "copies"
    assert inputs[1]["sha256"] == by_cli["provenance"]["snapshot_ids"][-1]  # the copies'
    assert inputs[1]["sha256"] == by_api["provenance"]["snapshot_ids"][-1]
