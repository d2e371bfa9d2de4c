"""Forensics and the risk-limiting audit are assembled once (``escrutinio.service``): the
CLI with ``--json`` and the matching ``/api/v1`` endpoint give the same figures on the
same 2021 runoff store (issue #15, item 1).

The store and the app are the session's (``api_support``), shared with ``test_api``, so
the API's results are computed once per session; only the audit sample writes, on a copy.
"""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api_support import TEST_SIMS, live_app, runoff_db

SEED = "41592653589793238462"  # a dice seed (>= 20 digits)
runner = CliRunner()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return live_app(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def client(app: Any) -> Any:
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def db(app: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return runoff_db(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def final(app: Any) -> str:
    """The final per-acta snapshot (86,488 actas)."""
    actas = [s for s in app.state.backend.store.all_snapshots() if s.kind.value == "actas"]
    return actas[-1].snapshot_id


def cli_json(db: Path, *args: str) -> dict[str, Any]:
    from escrutinio.cli import app as cli

    res = runner.invoke(cli, ["--db", str(db), *args, "--json"])
    assert res.exit_code == 0, res.output
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


def test_the_service_defaults_are_the_analyses_defaults() -> None:
    """One set of defaults: the service's are those the pure analyses declare."""
    from escrutinio.audit.model import Policy
    from escrutinio.audit.plan import plan_audit
    from escrutinio.forensics.report import run_forensics
    from escrutinio.service import audit, forensics

    f = inspect.signature(run_forensics).parameters
    p = forensics.ForensicsParams()
    assert (p.seed, p.draws, p.q, p.threshold) == (
        f["seed"].default, f["draws"].default, f["q"].default, f["threshold"].default)
    a = inspect.signature(plan_audit).parameters
    pp = audit.PlanParams()
    assert (pp.risk_limits, pp.replicates, pp.seed) == (
        a["risk_limits"].default, a["replicates"].default, a["seed"].default)
    assert pp.policy == Policy() and pp.error_rate is None


@pytest.mark.slow
def test_forensics_cli_and_api_give_the_same_report(client: Any, db: Path, final: str,
                                                    tmp_path: Path) -> None:
    png = tmp_path / "huella.png"
    cli = cli_json(db, "forensics", "--snapshot", final, "--image", str(png))
    api = client.get(f"/api/v1/s/{final}/forensics?limit=100000").json()["result"]
    assert api.pop("first_round_snapshot") is None  # the bundle has no first round per acta
    assert api.pop("fingerprint_png").endswith(f"/{final}/forensics/fingerprint.png")
    assert api == cli  # every figure, text and the provenance
    prov = cli["provenance"]
    assert prov["snapshot_ids"] == [final] and prov["seed"] == 20210606
    assert {t["test"] for t in cli["tests"]} >= {"integer", "last_digit", "fingerprint"}
    # every flagged acta is listed (the API no longer cuts the list at 200 by itself)
    assert len(cli["flagged_actas"]) == cli["n_flagged_actas"] == cli["stakes"]["n_listed"]
    assert cli["n_flagged_actas"] > 200
    few = client.get(f"/api/v1/s/{final}/forensics?limit=3").json()["result"]
    assert few["flagged_actas"] == cli["flagged_actas"][:3] and few["stakes"] == cli["stakes"]
    # the fingerprint the page shows is the PNG `forensics --image` writes
    web = client.get(f"/api/v1/s/{final}/forensics/fingerprint.png")
    assert web.status_code == 200 and web.content == png.read_bytes()


@pytest.mark.slow
def test_audit_plan_cli_and_api_give_the_same_plan(client: Any, db: Path, final: str) -> None:
    cli = cli_json(db, "audit", "plan", "--snapshot", final)
    api = client.get(f"/api/v1/s/{final}/audit").json()["result"]
    source = cli.pop("error_model_source")
    assert api["plan"] == cli
    assert source["en"] and cli["provenance"]["seed"] == 20210606
    assert cli["provenance"]["snapshot_ids"] == [final]
    assert cli["auditable"] and cli["margins"] == [43_957] and cli["n_actas"] == 86_488


@pytest.mark.slow
def test_audit_sample_from_the_cli_is_the_audit_the_api_lists(db: Path, final: str,
                                                              tmp_path: Path) -> None:
    """``audit sample`` creates the audit and draws the plan's 90% size; the API of the
    same store lists that audit (same manifest, seed and limit) beside the same plan."""
    from escrutinio.api.app import create_app

    copy = tmp_path / "audit.duckdb"
    shutil.copyfile(db, copy)
    s = cli_json(copy, "audit", "sample", "-a", "a-2021", "--seed", SEED, "--snapshot", final)
    with TestClient(create_app(copy, projection_sims=TEST_SIMS)) as c:
        doc = c.get(f"/api/v1/s/{final}/audit").json()["result"]
    [listed] = doc["audits"]
    rec = s["audit"]
    for key in ("audit_id", "method", "design", "risk_limit", "seed", "n_actas",
                "manifest_sha256"):
        assert listed[key] == rec[key], key
    assert listed["latest_measurement"] is None  # nothing measured yet
    assert rec["snapshot_id"] == final and rec["n_actas"] == doc["plan"]["n_actas"]
    size90 = next(m["size_90"] for m in doc["plan"]["methods"]
                  if m["method"] == "macro" and m["risk_limit"] == 0.05)
    rnd = s["round"]
    assert rnd["size_rule"] == "plan_90" and len(rnd["draws"]) == size90
    prov = s["provenance"]
    assert prov["snapshot_ids"] == [final] and prov["parameters"]["public_seed"] == SEED
    assert prov["parameters"]["sampler"].startswith("ppeb_sha256")
    assert prov["parameters"]["manifest_sha256"] == rec["manifest_sha256"]


def test_recorded_audits_reads_without_writing(any_store_opener: Any) -> None:
    """What the dashboard lists: nothing from a fresh store (its audit tables come with
    migration 0003), read-only or not, and nothing from a store whose tables hold no audit
    of the snapshot; on PostgreSQL only the store's own schema counts."""
    from escrutinio.service.audit import recorded_audits

    any_store_opener().close()  # a fresh, empty store
    ro = any_store_opener(read_only=True)
    try:
        assert recorded_audits(ro, "0" * 64) == ()
    finally:
        ro.close()
    rw = any_store_opener()
    try:
        assert recorded_audits(rw, "0" * 64) == ()
        # migration 0003 made the tables: they exist, but hold no audit of this snapshot
        assert rw.audits.available() and any(t.startswith("audit_") for t in _tables(rw))
    finally:
        rw.close()


def _tables(store: Any) -> set[str]:
    return {r[0] for r in store.con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema()").fetchall()}
