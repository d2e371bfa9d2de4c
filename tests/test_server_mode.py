"""Server mode on PostgreSQL (docs/deploy.md): stateless workers, the database going away and
coming back, the health check, and a reduced load-and-fault run of benchmarks/bench_server.py
(kill -9 of an API worker and of PostgreSQL under load, then the exactly-once checks).

The in-process tests use the session's PostgreSQL (tests/pg_support.py), one fresh schema
each. The fault run starts its own throwaway PostgreSQL: it kills that one, never the shared
server.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from escrutinio import service
from escrutinio.sources.onpe_aggregates import parse_progress_tables
from escrutinio.store import open_store
from escrutinio.store.ledger import entries

with warnings.catch_warnings():  # starlette's note about httpx vs httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def pg_url(pg_server: Any) -> Iterator[str]:
    from pg_support import schema_url

    with schema_url(pg_server) as url:
        yield url


@pytest.fixture(scope="module")
def national(data_dir: Path) -> list[Any]:
    """The 48 national snapshots of the 2021 runoff count (real ONPE tables)."""
    return parse_progress_tables(data_dir / "peru-2021-runoff" / "progress_national")


def ingest(url: str, snaps: list[Any]) -> None:
    with open_store(url) as store:
        service.ingest(store, snaps)


def client_for(url: str) -> TestClient:
    from escrutinio.api.app import create_app

    return TestClient(create_app(url, projection_sims=200), raise_server_exceptions=False)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once the socket is closed
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


# -- stateless workers --------------------------------------------------------------------------
def test_health_reports_schema_ledger_and_catalogue(pg_url: str, national: list[Any]) -> None:
    ingest(pg_url, national[:3])
    with client_for(pg_url) as c:
        r = c.get("/api/v1/health")
    assert r.status_code == 200, r.text
    body = r.json()
    with open_store(pg_url, read_only=True) as store:
        head = entries(store)[-1]
        version = max(store.schema_versions())  # type: ignore[attr-defined]
    assert body["status"] == "ok"
    assert body["database"]["reachable"] is True
    assert body["database"]["schema_version"] == version
    assert body["database"]["ledger"] == {"n_entries": head.seq, "head_hash": head.entry_hash}
    assert body["database"]["catalogue"]["n_snapshots"] == 3
    assert r.headers["cache-control"] == "no-store"


def test_health_on_duckdb(tmp_path: Path, national: list[Any]) -> None:
    """The health check also answers for a DuckDB-backed server (no schema versions)."""
    db = tmp_path / "h.duckdb"
    ingest(str(db), national[:2])
    with client_for(str(db)) as c:
        body = c.get("/api/v1/health").json()
        # the health query must not leave a half-read result on the shared connection
        assert c.get("/api/v1/snapshots").status_code == 200
        assert c.get("/").status_code == 200
    with open_store(db, read_only=True) as store:
        head = entries(store)[-1]
    assert body["status"] == "ok" and body["database"]["backend"] == "duckdb"
    assert body["database"]["ledger"]["head_hash"] == head.entry_hash
    assert body["database"]["catalogue"]["n_snapshots"] == 2


def test_duckdb_observer_api_only_when_writable(tmp_path: Path, national: list[Any]) -> None:
    """``serve --observers`` on a DuckDB file opens it read-write (one process) and the
    observer API asks for a token; read-only it says the API is off; with several workers
    the command refuses."""
    from typer.testing import CliRunner

    from escrutinio.api.app import create_app
    from escrutinio.cli import app as cli

    db = tmp_path / "o.duckdb"
    ingest(str(db), national[:1])
    for writable, status in ((False, 503), (True, 401)):
        app = create_app(str(db), projection_sims=200, writable=writable)
        with TestClient(app, raise_server_exceptions=False) as c:
            r = c.get("/api/v1/observer/submissions")
        app.state.backend.store.close()
        assert r.status_code == status, r.text
    res = CliRunner().invoke(cli, ["--db", str(db), "serve", "--observers", "--workers", "2",
                                   "--json"])
    assert res.exit_code != 0 and "one process" in res.output


def test_public_only_node_on_postgresql(pg_url: str, national: list[Any],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve --no-observers`` on PostgreSQL: the public site works, the observer and admin
    API answer 503 ``observer_api_disabled`` (a node that cannot take submissions)."""
    ingest(pg_url, national[:1])
    for flag, status in (("0", 503), ("1", 401)):
        monkeypatch.setenv("ESCRUTINIO_OBSERVERS", flag)
        with client_for(pg_url) as c:
            r = c.get("/api/v1/observer/submissions")
            assert r.status_code == status, r.text
            assert c.get("/api/v1/snapshots").status_code == 200
        if flag == "0":
            assert r.json()["reason"] == "observer_api_disabled"
            assert "--no-observers" in r.json()["message_en"]


def test_two_workers_follow_the_catalogue_at_once(pg_url: str, national: list[Any]) -> None:
    """Two apps over one database (two workers, or two nodes): a snapshot ingested by
    another process is seen by both on the very next request, even on URLs that were
    answered from the in-memory caches just before."""
    ingest(pg_url, national[:3])
    with client_for(pg_url) as a, client_for(pg_url) as b:
        for c in (a, b):
            for _ in range(2):  # the second answer comes from the hot cache
                r = c.get("/api/v1/s/latest")
                assert r.status_code == 200
                assert r.json()["snapshot"]["snapshot_id"] == national[2].snapshot_id
                assert len(c.get("/api/v1/snapshots").json()["snapshots"]) == 3
            assert c.get("/").status_code == 200
        ingest(pg_url, national[3:5])
        for c in (a, b):
            r = c.get("/api/v1/s/latest")
            assert r.json()["snapshot"]["snapshot_id"] == national[4].snapshot_id
            assert len(c.get("/api/v1/snapshots").json()["snapshots"]) == 5
            hist = c.get("/api/v1/history").json()
            assert len(hist["snapshots"]) == 5
            assert national[4].snapshot_id in c.get("/snapshots/").text
            # a permalink of an old snapshot is still the same bytes
            old = c.get(f"/api/v1/s/{national[0].snapshot_id}")
            assert old.status_code == 200
            assert old.headers["cache-control"] == "public, max-age=86400"


def test_dead_connections_are_reopened(pg_url: str, national: list[Any]) -> None:
    """The server's connections are killed (as by a PostgreSQL restart): the worker opens
    new ones by itself and the next requests succeed — no 503, no restart."""
    ingest(pg_url, national[:2])
    with client_for(pg_url) as c:
        assert c.get("/api/v1/s/latest/state/national").status_code == 200
        app = c.app
        cat = app.state.backend.store  # type: ignore[attr-defined]
        pids = [cat.inner.con.info.backend_pid, app.state.probe._con.info.backend_pid]  # type: ignore[attr-defined]
        with psycopg.connect(pg_url, autocommit=True) as admin:
            for pid in pids:
                assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        ingest(pg_url, national[2:3])  # forces a catalogue reload on the data connection
        for path in ("/api/v1/s/latest/state/national", "/api/v1/snapshots", "/",
                     f"/api/v1/s/{national[1].snapshot_id}/state/national", "/api/v1/health"):
            r = c.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
        assert c.get("/api/v1/s/latest").json()["snapshot"]["snapshot_id"] == \
            national[2].snapshot_id
        new = [cat.inner.con.info.backend_pid, app.state.probe._con.info.backend_pid]  # type: ignore[attr-defined]
        assert not set(new) & set(pids)


# -- the database down ----------------------------------------------------------------------------
@pytest.mark.parametrize("method,path,html", [
    ("GET", "/api/v1/health", False),
    ("GET", "/api/v1/snapshots", False),
    ("GET", "/api/v1/s/latest/state/national", False),
    ("GET", "/api/v1/s/latest/projection.json", False),
    ("POST", "/api/v1/s/latest/pvt", False),
    ("POST", "/api/v1/observer/submissions", False),
    ("GET", "/", True),
    ("GET", "/en/history/", True),
    ("GET", "/no/such/page/", True),
])
def test_database_down_is_503_with_retry_after(method: str, path: str, html: bool) -> None:
    """A server whose database cannot be reached starts anyway (a worker replaced during an
    outage must come up) and answers every endpoint 503 + Retry-After, bilingual."""
    with client_for(closed_port_url()) as c:
        r = c.request(method, path, json=[] if method == "POST" else None)
        assert r.status_code == 503, (path, r.status_code, r.text[:300])
        assert int(r.headers["retry-after"]) > 0
        assert r.headers["cache-control"] == "no-store"
        if html:
            assert r.headers["content-type"].startswith("text/html")
            words = "database" if path.startswith("/en/") else "base de datos"
            assert "503" in r.text and words in r.text
        else:
            body = r.json()
            assert body.get("error") == "DatabaseUnavailable" or body.get("status") == \
                "unavailable"
            assert "base de datos" in body["message_es"] and "database" in body["message_en"]
        assert c.get("/static/style.css").status_code == 200  # no database needed


def test_export_site_from_postgresql(pg_url: str, national: list[Any], tmp_path: Path) -> None:
    """``export-site`` works over a PostgreSQL URL (one consistent read of the catalogue)."""
    from typer.testing import CliRunner

    from escrutinio.cli import app as cli

    ingest(pg_url, national[-2:])
    r = CliRunner().invoke(cli, ["--db", pg_url, "export-site", str(tmp_path / "site"),
                                 "--snapshots", "latest", "--lang", "es", "--sims", "200",
                                 "--json"])
    assert r.exit_code == 0, r.output
    home = (tmp_path / "site" / "index.html").read_text("utf-8")
    assert national[-1].snapshot_id[:12] in home
    assert (tmp_path / "site" / "api" / "v1" / "snapshots.json").exists()


# -- load and faults (the reduced benchmark) -------------------------------------------------------
def _bench() -> Any:
    name = "escrutinio_benchmarks_bench_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "bench_server.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_load_with_worker_kill_and_postgres_restart(tmp_path: Path, data_dir: Path) -> None:
    """60 observers submitting at once to ``serve --workers 2``; mid-load one worker is
    killed with SIGKILL, later PostgreSQL itself; afterwards every acknowledged submission
    is stored exactly once with its ledger entry, verify-log passes, no answer was a 500,
    and the outage was answered 503 + Retry-After."""
    bench = _bench()
    if bench._pg_support().find_pg_bin() is None:
        pytest.fail("this test starts its own PostgreSQL: initdb/pg_ctl are needed",
                    pytrace=False)
    os.environ.setdefault("ESCRUTINIO_DATA_DIR", str(data_dir))
    pg = bench.Postgres()
    dsn = pg.start()
    server = None
    try:
        official = bench.setup_store(dsn, data_dir)
        admin = bench.admin_token(dsn, via_cli=False)
        server = bench.Server(dsn, 2, log=tmp_path / "serve.log")
        server.start()
        copies = bench.make_copies(official, 60, 3)
        import asyncio

        observers = asyncio.run(bench.create_observers(server.base, admin, copies))
        both = _both_faults(bench, server, pg)
        # each observer's last copy waits for both faults: the outage always meets the load
        res = asyncio.run(bench.run_load(server.base, observers, copies, fault=both,
                                         deadline_s=120, hold_for=2))
        attempted = {c.client_id for mine in copies for c in mine}
        accounts = {o["account_id"] for o in observers}
        chk = bench.check(dsn, res, attempted, accounts)
        http = bench.http_summary(res)
        vlog = bench.verify_log(dsn)
        kinds = {f["fault"]: f for f in res.faults}
        log = (tmp_path / "serve.log").read_text("utf-8", "replace")[-3000:]
        assert set(kinds) == {"worker", "postgres"}, (res.faults, log)
        assert kinds["worker"].get("replacement_pid"), ("worker not replaced", kinds, log)
        assert bench.problems(chk, http, vlog, res) == [], (chk, http, vlog, log)
        assert len(res.acks) == 180 and chk["rows"] == 180
        pgf = kinds["postgres"]
        assert kinds["worker"]["during_load"] and pgf["during_load"], kinds
        outage = bench.http_summary(res, (pgf["t_kill"], pgf["t_up"]))
        assert outage["n_503"] > 0, (outage, http)  # the outage was seen, answered 503
        assert server.healthy()

        # the same checks see a lost or half-written submission (they can fail)
        with psycopg.connect(dsn) as con:
            victim = next(iter(res.acks.values()))
            con.execute("DELETE FROM submissions WHERE submission_id = %s",
                        [victim.submission_id])
            bad = bench.check(dsn, res, attempted, accounts, con=con)
            con.rollback()
        assert bad["missing_acked"] == [victim.client_id]
        assert len(bad["ledger_without_row"]) == 1

        # a worker that dies while the database is down is replaced all the same (uvicorn
        # stops the whole server when a new worker fails to start: ours start without it)
        pg.kill9()
        before = _wait_workers(server, 2, lambda pids: True)[-1][1]
        os.kill(before[0], signal.SIGKILL)
        seen = _wait_workers(server, 2, lambda pids: before[0] not in pids)
        log = (tmp_path / "serve.log").read_text("utf-8", "replace")[-2000:]
        assert server.proc.poll() is None, (seen, log)
        assert len(seen[-1][1]) == 2 and before[0] not in seen[-1][1], (before, seen, log)
        r = httpx.get(server.base + "/api/v1/health", timeout=10)
        assert r.status_code == 503 and r.headers["retry-after"]
        pg.restart()
        assert httpx.get(server.base + "/api/v1/health", timeout=10).status_code == 200
    finally:
        if server is not None:
            server.stop()
        pg.stop()


def _wait_workers(server: Any, n: int, ok: Callable[[list[int]], bool],
                  timeout: float = 90.0) -> list[tuple[float, list[int]]]:
    """Poll the server's workers until there are ``n`` and ``ok(pids)``; returns every
    change seen, (seconds, pids), for the failure message."""
    t0 = time.monotonic()
    seen: list[tuple[float, list[int]]] = []
    while True:
        pids = server.worker_pids()
        if not seen or seen[-1][1] != pids:
            seen.append((round(time.monotonic() - t0, 2), pids))
        if (len(pids) == n and ok(pids)) or time.monotonic() - t0 > timeout \
                or server.proc.poll() is not None:
            return seen
        time.sleep(0.1)


def _both_faults(bench: Any, server: Any, pg: Any) -> Callable[..., Any]:
    worker = bench.worker_fault(server, at=0.2)
    postgres = bench.postgres_fault(pg, down_seconds=2.0, at=0.5)

    async def both(res: Any, total: int) -> None:
        await worker(res, total)
        await postgres(res, total)

    return both
