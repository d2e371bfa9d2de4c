"""The main CLI commands give the same answers on DuckDB and on PostgreSQL.

One small real input (the 2021 runoff's Amazonas department at two cuts: the provisional
count of 8 June and the final one), ingested once per backend; then every question with
``--json`` on each store — ``status``, ``history``, ``diff``, ``project``, ``verify``,
``contested``, ``quickcount``, ``forensics``, ``pvt`` (one file of generated observers'
copies), ``replay``, ``snapshots``, ``audit plan``, ``audit sample``, ``migrate``,
``audit record / measure / report``, ``export-site`` (the files written, and every JSON
twin and image, compared), then, once a snapshot has been stored outside the log and three
observers' submissions recorded (the same rows on both), ``log-sync``, ``verify-log`` and
``prove`` (an acta, a submission), and last the app ``serve`` builds (live, and
``--replay``; the server itself replaced by a test client) — and the answers compared
figure by figure (only what names the store, the output folder or the clock may differ).
Commands tested on PostgreSQL elsewhere: ``watch``, ``watch-status``, ``watch-export``
(test_live_cli.py), ``accounts`` (test_server_accounts.py), ``serve --workers N``
(test_server_mode.py); ``datasets``, ``fake-onpe`` and ``verify-proof`` use no store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from escrutinio.cli import app
from escrutinio.sources.base import ParsedSnapshot
from escrutinio.sources.onpe_files import parse_provisional, parse_ronderos
from escrutinio.sources.tabular import parse_tabular, write_tabular
from escrutinio.store import open_store
from escrutinio.store.ledger import submission_entry
from escrutinio.store.observers_repo import SUBMISSION_ROW, open_observer_repo

ACTAS = "peru-2021-runoff/actas"
EARLY = "hist_actas_electorales_20210608T1121_cadd76f.csv.gz"
FINAL = "actas_electorales_ronderos.pe.csv.gz"
SEED = "41592653589793238462"
AREA = "010000"  # Amazonas: 1,500-odd actas, the point is the backends, not the volume
#: keys whose values name the store or the output folder, or say when something was
#: stored, logged or computed
VOLATILE = frozenset({"db", "directory", "created_at", "ingested_at", "recorded_at",
                      "elapsed_seconds"})
T0 = datetime(2021, 6, 9, 12, 0, tzinfo=UTC)  # when the observers' copies "arrived"

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


@pytest.fixture(scope="module")
def unlogged(inputs: list[Path]) -> ParsedSnapshot:
    """A third cut (the early one's actas under another part and time) that each test
    stores without going through the log, for ``log-sync`` to append."""
    early = parse_tabular(inputs[0])
    return dataclasses.replace(early, part="unlogged", label="amazonas-unlogged",
                               as_of=early.as_of + timedelta(days=1))


def _outside_the_log(db: str, snap: ParsedSnapshot) -> list[str]:
    """Store ``snap`` without logging it, and record three observers' submissions (fixed
    ids and times: the same rows, so the same chain, on both backends); their ids."""
    with open_store(db) as store:
        store.put_snapshots([snap])
        repo = open_observer_repo(store, pool_size=1)
        try:
            assert repo.insert_account(["acc_00000000000000a1", "ana", "observer", "{}", T0,
                                        None])
            ids = []
            for n, acta in enumerate(snap.frame["acta_id"].head(3).to_list()):
                row: dict[str, Any] = dict.fromkeys(SUBMISSION_ROW)
                payload = json.dumps({"acta": acta, "n": n})
                row.update(submission_id=f"sub_{n:024x}", account_id="acc_00000000000000a1",
                           client_id=f"c-{n}", contest_id=snap.contest.id,
                           acta_id=acta, acta_key=acta, received_at=T0 + timedelta(minutes=n),
                           request_sha256="0" * 64, payload=payload,
                           payload_sha256=hashlib.sha256(payload.encode()).hexdigest(),
                           official_snapshot_id=snap.snapshot_id, category="pending",
                           reconciliation="{}")
                stored, created = repo.record_submission(row, submission_entry)
                assert created and stored["ledger_seq"] > 2  # after the two ingested cuts
                ids.append(row["submission_id"])
        finally:
            repo.close()
    return ids


def _site(folder: Path) -> dict[str, Any]:
    """Every file of an exported site: JSON twins parsed, anything else by its SHA-256."""
    return {str(p.relative_to(folder)): json.loads(p.read_bytes()) if p.suffix == ".json"
            else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}




def _answers(db: str, inputs: list[Path], copies: Path, site: Path,
             unlogged: ParsedSnapshot, final: pl.DataFrame,
             monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    def run(*args: str, ok: int = 0) -> Any:
        res = runner.invoke(app, ["--db", db, *args])
        if res.exception and not isinstance(res.exception, SystemExit):
            raise res.exception
        assert res.exit_code == ok, (args, res.stdout)
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
    counts = copies.parent / "counts.csv"  # hand counts that agree with the actas
    if not counts.exists():  # written once, from the first backend's draws
        final.filter(pl.col("acta_id").is_in(_drawn(out))).select(
            "acta_id", "v_castillo", "v_fujimori", "blank", "null", "challenged"
        ).write_csv(counts)
    out["audit record"] = run("audit", "record", "-a", "m1", str(counts), "--json")
    out["audit measure"] = run("audit", "measure", "-a", "m1", "--json")
    out["audit report"] = run("audit", "report", "-a", "m1", "--json")
    out["migrate"] = run("migrate", "--json")  # the schema's record, listed by the store
    out["export-site"] = run("export-site", str(site), "--snapshots", "latest", "--lang", "en",
                             "--sims", "200", "--json")
    out["site"] = _site(site)
    subs = _outside_the_log(db, unlogged)
    out["verify-log unlogged"] = run("verify-log", "--json", ok=3)
    out["log-sync"] = run("log-sync", "--json")
    out["log-sync again"] = run("log-sync", "--json")  # nothing new: nothing appended
    out["verify-log"] = run("verify-log", "--json")
    acta = unlogged.frame["acta_id"][7]
    out["prove"] = run("prove", acta, "--snapshot", unlogged.snapshot_id[:12], "--json")
    out["prove submission"] = run("prove", "--submission", subs[1], "--json")
    # last: the app that serve hands the server (a DuckDB file is held while it serves)
    out["serve"] = _served(run, monkeypatch, "--sims", "200", "--no-warm")
    out["serve --replay"] = _served(run, monkeypatch, "--replay", "--replay-at", "1",
                                    "--sims", "200", "--no-warm")
    return out


def _drawn(out: dict[str, Any]) -> list[str]:
    """The actas the two audit rounds drew (an acta may be drawn more than once)."""
    return sorted({d["acta_id"] for r in ("audit sample", "audit sample 2")
                   for d in out[r]["round"]["draws"]})


#: what is asked of the app ``serve`` builds
SERVED = ("/api/v1/snapshots", "/api/v1/history", "/api/v1/replay",
          "/api/v1/s/latest/state/area1", "/api/v1/s/latest/projection?seed=3")


def _served(run: Any, monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, Any]:
    """``serve ARGS --json`` with the server replaced by a test client that asks the app
    it was handed for :data:`SERVED`; the answers, and what ``serve`` printed."""
    import os

    import uvicorn
    from fastapi.testclient import TestClient

    answers: dict[str, Any] = {}

    def fake_run(application: Any, **_kw: Any) -> None:
        try:
            with TestClient(application) as client:
                for url in SERVED:
                    r = client.get(url)
                    assert r.status_code == 200, (args, url, r.text[:300])
                    answers[url] = r.json()
        finally:
            application.state.backend.store.close()

    env = {k: v for k, v in os.environ.items() if k.startswith("ESCRUTINIO_")}
    try:
        with monkeypatch.context() as m:
            m.setattr(uvicorn, "run", fake_run)
            answers["printed"] = run("serve", *args, "--json")
    finally:  # serve hands its options to the workers through the environment
        for k in [k for k in os.environ if k.startswith("ESCRUTINIO_") and k not in env]:
            del os.environ[k]
        os.environ.update(env)
    assert set(answers) == {"printed", *SERVED}, args
    return answers


@pytest.fixture(scope="module")
def pg_url(pg_server: object) -> Iterator[str]:
    from pg_support import schema_url

    with schema_url(pg_server) as url:  # type: ignore[arg-type]
        yield url


def test_cli_answers_match_on_duckdb_and_postgresql(tmp_path: Path, inputs: list[Path],
                                                    unlogged: ParsedSnapshot, pg_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    copies = tmp_path / "copies.csv"
    final = parse_tabular(inputs[1]).frame
    duck = _answers(str(tmp_path / "m.duckdb"), inputs, copies, tmp_path / "site-duckdb",
                    unlogged, final, monkeypatch)
    pg = _answers(pg_url, inputs, copies, tmp_path / "site-pg", unlogged, final, monkeypatch)
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
    # the static copy: the pages and their twins of the latest cut, nothing skipped
    site, latest = duck["site"], duck["snapshots"][-1]["snapshot_id"]
    assert duck["export-site"]["skipped"] == [] and duck["export-site"]["n_files"] == len(site)
    assert {f"en/s/{latest}/forensics/index.html", f"api/v1/s/{latest}/projection.json",
            f"api/v1/s/{latest}/forensics/fingerprint.png"} <= set(site)
    assert site[f"api/v1/s/{latest}/state/national.json"]["state"]["national"]["candidates"]
    # the log: the snapshot stored outside it is named, then appended with its root, and a
    # checkpoint covers the three submissions; then the log verifies and proves
    assert [p["kind"] for p in duck["verify-log unlogged"]["problems"]] == ["unlogged_snapshot"]
    sync = duck["log-sync"]
    assert [e["ref"] for e in sync["appended"]] == [unlogged.snapshot_id]
    assert sync["appended"][0]["seq"] == 6 and len(sync["appended"][0]["merkle_root"]) == 64
    assert sync["checkpoint"]["tree_size"] == 3 and sync["checkpoint"]["seq"] == 7
    assert duck["log-sync again"] == {"appended": [], "checkpoint": None}
    assert duck["verify-log"]["ok"] and duck["verify-log"]["n_entries"] == 7
    assert duck["prove"]["merkle_root"] == sync["appended"][0]["merkle_root"]
    assert duck["prove submission"]["merkle_root"] == sync["checkpoint"]["merkle_root"]
    # the audit's hand counts agree with the actas: no discrepancy, a measured risk
    assert duck["audit record"]["recorded"] == len(_drawn(duck)) >= 8
    assert duck["audit measure"]["n_draws"] == 16
    assert duck["audit report"]["replay"]["draws_ok"] and duck["audit report"]["replay"][
        "measures_ok"]
    # serve: the live app follows every stored snapshot; the replay stands at its 2nd step
    live, replay = duck["serve"], duck["serve --replay"]
    assert len(live["/api/v1/snapshots"]["snapshots"]) == 3
    assert live["/api/v1/s/latest/state/area1"]["snapshot"]["snapshot_id"] == latest
    assert replay["/api/v1/replay"]["step"] == 1
    assert replay["/api/v1/s/latest/state/area1"]["snapshot"]["snapshot_id"] == \
        unlogged.snapshot_id
    for key in duck:
        assert _scrub_v(duck[key]) == _scrub_v(pg[key]), key


def _scrub_v(value: Any) -> Any:
    from pg_support import scrub

    return scrub(value, VOLATILE)
