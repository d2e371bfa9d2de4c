"""One service, two presenters: every question asked through the CLI (``--json``) and
through the matching ``/api/v1`` endpoint, with the same parameters, gives the same
figures (#15). Both call :mod:`escrutinio.service`; this test keeps them from drifting
apart again (the 8 June bug: ``escrutinio project`` and the dashboard's projection
differed for the same snapshot, seed and simulations).

Real data, shared stores: the ``peru-2021-runoff`` bundle of ``tests/api_support.py``
(ingested once per session and served by the session's app: 48 national cuts, the
department/province/district cuts, three per-acta states and the final per-acta file)
for ``status``, ``history``, ``diff`` and ``project`` on a per-acta snapshot and on a
department cut; the 2026 national series (a cut without acta counts, projected from the
source's fraction counted) in a small store of its own.

Not covered: ``replay``, because the API has no replay endpoint (``/api/v1/replay`` is
the dashboard clock's state, not a scored replay).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api_support import live_app, runoff_db

pytestmark = pytest.mark.slow  # end-to-end through the CLI and the API on real stores

RUNOFF = "pe-2021-presidencial-2v"
P2026 = "pe-2026-presidencial-1v"
SIMS, SEED = 300, 7  # few simulations: parity, not precision
runner = CliRunner()


def _strict(text: str) -> Any:
    def bad(name: str) -> Any:
        raise AssertionError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=bad)


def _cli(db: Path, *args: str) -> Any:
    from escrutinio.cli import app

    res = runner.invoke(app, ["--db", str(db), *args, "--json"])
    assert res.exit_code == 0, (args, res.stdout, res.exception)
    return _strict(res.stdout)


def _api(client: TestClient, url: str) -> Any:
    r = client.get(url)
    assert r.status_code == 200, (url, r.text[:500])
    return _strict(r.text)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return runoff_db(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, db: Path) -> Any:
    with TestClient(live_app(tmp_path_factory.getbasetemp())) as c:
        yield c


@pytest.fixture(scope="module")
def ids(client: TestClient) -> dict[str, str]:
    snaps = _api(client, f"/api/v1/snapshots?contest={RUNOFF}")["snapshots"]
    actas = [s for s in snaps if s["kind"] == "actas"]
    nat = [s for s in snaps if s["kind"] == "units" and s["level"] == "national"]
    dept = [s for s in snaps if s["level"] == "area1"]
    return {"final": actas[-1]["snapshot_id"], "jun8": actas[0]["snapshot_id"],
            "jun9": actas[1]["snapshot_id"], "nat_first": nat[0]["snapshot_id"],
            "nat_mid": nat[len(nat) // 2]["snapshot_id"], "dept": dept[1]["snapshot_id"]}


def _same(cli: Any, api: Any, where: str) -> None:
    """Equal JSON, and where it differs, the first path that does (not a 10-kB dump)."""
    if isinstance(cli, dict) and isinstance(api, dict):
        assert sorted(cli) == sorted(api), (where, set(cli) ^ set(api))
        for k in cli:
            _same(cli[k], api[k], f"{where}.{k}")
    elif isinstance(cli, list) and isinstance(api, list):
        assert len(cli) == len(api), (where, len(cli), len(api))
        for i, (a, b) in enumerate(zip(cli, api, strict=True)):
            _same(a, b, f"{where}[{i}]")
    else:
        assert cli == api, (where, cli, api)


@pytest.mark.parametrize(("snap", "level", "cli_level"), [
    ("final", "national", "national"), ("final", "area1", "department"),
    ("jun8", "area3", "district"), ("dept", "area1", "department")])
def test_status_is_the_state_endpoint(db: Path, client: TestClient, ids: dict[str, str],
                                      snap: str, level: str, cli_level: str) -> None:
    """``status --json`` and ``/api/v1/s/{id}/state/{level}``: the same count state (every
    unit, every candidate, the hurdle and the rejected rows), per acta and per unit."""
    cli = _cli(db, "status", "--contest", RUNOFF, "-s", ids[snap], "--level", cli_level)
    api = _api(client, f"/api/v1/s/{ids[snap]}/state/{level}?contest={RUNOFF}")["state"]
    assert cli.pop("area_labels")["area1"]["en"]  # the CLI's own extra: the level names
    _same(cli, api, f"status[{snap},{level}]")
    assert cli["snapshot"]["snapshot_id"] == ids[snap]
    assert cli["units"] or level == "national"


def test_history_is_the_history_endpoint(db: Path, client: TestClient) -> None:
    """``history --json`` and ``/api/v1/history``: the same points, lead changes and
    warnings; the permalink of the latest snapshot gives the same history."""
    cli = _cli(db, "history", "--contest", RUNOFF)
    body = _api(client, f"/api/v1/history?contest={RUNOFF}")
    _same(cli, body["history"], "history")
    assert cli["lead_changes"] and len(cli["points"]) == len(body["snapshots"])
    last = body["snapshots"][-1]["snapshot_id"]
    _same(cli, _api(client, f"/api/v1/s/{last}/history")["history"], "history@last")


@pytest.mark.parametrize(("older", "newer", "limit"), [
    ("jun8", "final", None), ("jun8", "final", 0), ("jun9", "final", 5000),
    ("nat_first", "nat_mid", None)])
def test_diff_is_the_diff_endpoint(db: Path, client: TestClient, ids: dict[str, str],
                                   older: str, newer: str, limit: int | None) -> None:
    """``diff A B --json`` and ``/api/v1/diff/A/B``: the same transitions, changed
    figures and totals, per acta and per unit, with the same ``limit``, with ``limit=0``
    (every row) and with none given: one default (``service.DIFF_LIMIT``) for both, which
    a pair with more state changes than it shows (the rows listed and the provenance's
    ``limit`` would differ)."""
    from escrutinio.service import DIFF_LIMIT

    a, b = ids[older], ids[newer]
    given = () if limit is None else ("--limit", str(limit))
    cli = _cli(db, "diff", a, b, "--contest", RUNOFF, *given)
    asked = "" if limit is None else f"limit={limit}&"
    api = _api(client, f"/api/v1/diff/{a}/{b}?{asked}contest={RUNOFF}")
    _same(cli, api["diff"], f"diff[{older},{newer},{limit}]")
    assert cli["older"]["snapshot_id"] == a and cli["newer"]["snapshot_id"] == b
    rows, n = ("state_changes", "n_state_changes") if cli["kind"] == "actas" else (
        "went_down", "n_went_down")
    if limit is None:  # the default: listed up to DIFF_LIMIT, the count complete
        assert cli["provenance"]["parameters"]["limit"] == DIFF_LIMIT
        assert len(cli[rows]) == min(DIFF_LIMIT, cli[n])
        assert "limit=" not in api["links"]["self"]
    elif limit == 0:  # every row, said as "no limit"
        assert cli["provenance"]["parameters"]["limit"] is None
        assert len(cli[rows]) == cli[n] > DIFF_LIMIT and "limit=0" in api["links"]["self"]


@pytest.mark.parametrize(("snap", "basis"), [("jun8", "actas"), ("dept", "units")])
def test_project_is_the_projection_endpoint(db: Path, client: TestClient,
                                            ids: dict[str, str], snap: str,
                                            basis: str) -> None:
    """``project --json`` and ``/api/v1/s/{id}/projection`` with the same simulations and
    seed: the same projection to the last figure, diagnostics and provenance included."""
    cli = _cli(db, "project", "--contest", RUNOFF, "-s", ids[snap], "--sims", str(SIMS),
               "--seed", str(SEED))
    api = _api(client, f"/api/v1/s/{ids[snap]}/projection?sims={SIMS}&seed={SEED}"
                       f"&contest={RUNOFF}")["projection"]
    _same(cli, api, f"project[{snap}]")
    assert cli["basis"] == basis and cli["n_simulations"] == SIMS
    assert cli["provenance"]["snapshot_ids"][0] == ids[snap]


def test_project_a_national_series_cut(tmp_path_factory: pytest.TempPathFactory,
                                       data_dir: Path) -> None:
    """A cut of the 2026 national series (no acta counts: the source's fraction counted),
    projected by the series model in both; and its count state."""
    from escrutinio import service
    from escrutinio.api.app import create_app
    from escrutinio.sources.bundles import BUNDLES
    from escrutinio.store.duckdb_store import DuckDBStore

    item = next(i for i in BUNDLES["peru-2026-first-round"]
                if i.relpath.endswith("national_timeseries.csv.gz"))
    path = tmp_path_factory.mktemp("parity") / "series.duckdb"
    with DuckDBStore(path) as store:
        service.ingest(store, item.parse(data_dir / item.dataset / item.relpath))
        cuts = [s for s in store.list_snapshots(P2026) if s.n_rows]
    sid = cuts[len(cuts) // 3].snapshot_id
    cli = _cli(path, "project", "-s", sid, "--sims", str(SIMS), "--seed", str(SEED))
    cli_state = _cli(path, "status", "-s", sid, "--level", "national")
    cli_state.pop("area_labels")
    with TestClient(create_app(str(path), projection_sims=SIMS, warm=False)) as c:
        api = _api(c, f"/api/v1/s/{sid}/projection?sims={SIMS}&seed={SEED}")["projection"]
        api_state = _api(c, f"/api/v1/s/{sid}/state/national")["state"]
    _same(cli, api, "project[series]")
    _same(cli_state, api_state, "status[series]")
    assert cli["basis"] == "series"
    # every earlier cut the series model saw is named, this one first
    assert cli["provenance"]["snapshot_ids"][0] == sid
    assert len(cli["provenance"]["snapshot_ids"]) == len(cuts) // 3 + 1
