"""Read while writing on DuckDB (#15.3): readers wait for a writer's short transactions, a
second writer waits for the first, a busy store is a clear message (exit 2), long-running
processes hold the file only while they use it, and `serve` follows what `watch` writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from escrutinio.store.duckdb_store import DuckDBStore, StoreBusyError

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO / "src"))

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
con.execute("BEGIN TRANSACTION")
con.execute("INSERT INTO held VALUES (1)")
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("COMMIT")
con.close()
"""


def hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the file read-write (inside a transaction) for a while."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def cli(db: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "escrutinio.cli", "--db", str(db), *args],
                          capture_output=True, text=True, timeout=timeout, env=env or ENV)


@pytest.fixture(scope="module")
def national(data_dir: Path) -> Path:
    return data_dir / "peru-2021-runoff" / "progress_national"


@pytest.fixture
def store_file(tmp_path: Path, national: Path) -> Path:
    from escrutinio.sources.onpe_aggregates import parse_progress_tables

    db = tmp_path / "e.duckdb"
    with DuckDBStore(db) as store:
        store.put_snapshots(parse_progress_tables(national, "national")[:3])
    return db


def test_a_reader_waits_for_the_writers_transaction(store_file: Path) -> None:
    proc = hold(store_file, 1.5)
    try:
        t0 = time.monotonic()
        with DuckDBStore(store_file, read_only=True, lock_timeout=30) as store:
            assert len(store.list_snapshots()) == 3
        assert time.monotonic() - t0 > 0.5  # it waited for the writer, then read
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_a_busy_store_is_a_clear_message(store_file: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    from typer.testing import CliRunner

    from escrutinio.cli import app

    proc = hold(store_file, 20)
    try:
        with pytest.raises(StoreBusyError) as ei:
            DuckDBStore(store_file, read_only=True, lock_timeout=0.3)
        e = ei.value
        assert e.exit_code == 2 and str(store_file) in e.message_en
        assert f"process {proc.pid}" in e.message_en and "ESCRUTINIO_LOCK_TIMEOUT" in \
            e.message_es
        monkeypatch.setenv("ESCRUTINIO_LOCK_TIMEOUT", "0.3")
        res = CliRunner().invoke(app, ["--db", str(store_file), "status"])
        assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
        assert "ocupado por otro proceso" in res.output
    finally:
        proc.kill()
        proc.wait()


def test_a_second_writer_waits_its_turn(tmp_path: Path, national: Path) -> None:
    db = tmp_path / "two.duckdb"
    args = [sys.executable, "-m", "escrutinio.cli", "--db", str(db), "ingest", str(national),
            "--json"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=ENV)
    time.sleep(0.3)
    second = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=ENV)
    outs = [p.communicate(timeout=180) for p in (first, second)]
    for p, (_out, err) in zip((first, second), outs, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert "Traceback" not in err
    with DuckDBStore(db, read_only=True) as store:
        assert len(store.list_snapshots()) == 48  # both ran, nothing twice


def test_a_leased_store_lets_others_in_when_idle(store_file: Path, national: Path) -> None:
    from escrutinio.sources.onpe_aggregates import parse_progress_tables

    store = DuckDBStore(store_file, lease=0.1)
    try:
        assert len(store.list_snapshots()) == 3
        time.sleep(0.5)  # idle: the file is released
        res = cli(store_file, "snapshots", "--json")
        assert res.returncode == 0, res.stderr
        assert len(json.loads(res.stdout)) == 3
        out = store.put_snapshots(parse_progress_tables(national, "national")[3:5])
        assert [o.created for o in out] == [True, True]
        assert store.n_opens >= 2 and len(store.list_snapshots()) == 5
        # a transaction is never cut by a release: the idle thread waits for the commit
        store.con.execute("BEGIN TRANSACTION")
        store.con.execute("CREATE TABLE IF NOT EXISTS probe (x INTEGER)")
        time.sleep(0.4)
        store.con.execute("INSERT INTO probe VALUES (1)")
        store.con.execute("COMMIT")
        assert store.con.execute("SELECT count(*) FROM probe").fetchall()[0][0] == 1
    finally:
        store.close()


def _stop(proc: subprocess.Popen[str]) -> str:
    """Stop a server; its stderr (for a failure message)."""
    proc.terminate()
    try:
        return proc.communicate(timeout=30)[1][-3000:]
    except subprocess.TimeoutExpired:
        proc.kill()
        return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=20) as r:
        return r.status, json.loads(r.read())


@pytest.mark.slow
def test_status_and_api_read_while_watch_writes(tmp_path: Path) -> None:
    """`watch` follows a fake ONPE into the store; `status` (another process) and the API
    of `serve` (another process) read the same file every second without one failure,
    and the server follows the new snapshots."""
    from escrutinio.live.fake_onpe import FakeOnpe, Synthetic2026
    from live_support import UNITS4, config_dict

    tl = Synthetic2026(seed=7, n_states=400, step_s=0.5, units=UNITS4, n_actas=6000,
                       n_watch_actas=3)
    db = tmp_path / "live.duckdb"
    with FakeOnpe(tl) as fake:
        d = config_dict()
        d["base_url"], d["site_url"] = fake.backend_url, fake.url
        d["scopes"]["area1"] = list(UNITS4[:2])
        d["actas"] = {"ids": fake.timeline.acta_ids()[:2]}
        d["intervals"] = {"hot_s": 0.3, "warm_s": 0.9, "cold_s": 2.0, "stale_after_s": 30,
                          "hard_block_pause_s": 5}
        d["transport"] = {"timeout_s": 3.0, "rate_per_s": 200.0, "jitter_s": 0.0,
                          "max_attempts": 2, "backoff_base_s": 0.05, "backoff_max_s": 0.2}
        cfg = tmp_path / "fast.json"
        cfg.write_text(json.dumps(d))
        status_file = tmp_path / "status.json"
        watch = subprocess.Popen(
            [sys.executable, "-m", "escrutinio.cli", "--db", str(db), "watch", str(cfg),
             "--duration", "40", "--status-file", str(status_file), "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        server = None
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if status_file.exists():
                    st = json.loads(status_file.read_text() or "{}")
                    if st.get("snapshots_created", 0) >= 1:
                        break
                time.sleep(0.2)
            else:
                pytest.fail("the watcher stored no snapshot")
            port = _free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "escrutinio.cli", "--db", str(db), "serve", "--port",
                 str(port), "--no-warm"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, env=ENV)
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    _get(base + "/api/v1/health")
                    break
                except OSError:
                    time.sleep(0.2)
            from typer.testing import CliRunner

            from escrutinio.cli import app

            runner = CliRunner()  # this test's process: neither the writer nor the server
            failures: list[str] = []
            seen_cli: list[int] = []
            seen_api: list[int] = []
            for _ in range(15):
                t0 = time.monotonic()
                res = runner.invoke(app, ["--db", str(db), "snapshots", "--json"])
                if res.exit_code != 0 or res.exception is not None:
                    failures.append(f"snapshots: {res.exit_code} {res.output[-500:]}")
                else:
                    seen_cli.append(len(json.loads(res.stdout)))
                res = runner.invoke(app, ["--db", str(db), "status", "--json"])
                if res.exit_code != 0 or res.exception is not None:
                    failures.append(f"status: {res.exit_code} {res.output[-500:]}")
                try:
                    code, body = _get(base + "/api/v1/snapshots")
                    seen_api.append(len(body["snapshots"]))  # type: ignore[arg-type]
                    code2, _ = _get(base + "/api/v1/s/latest")
                    if code != 200 or code2 != 200:
                        failures.append(f"api: {code} {code2}")
                except (OSError, ValueError) as exc:
                    failures.append(f"api: {exc!r}")
                time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
            assert failures == []
            assert seen_cli[-1] > seen_cli[0], seen_cli  # the count moved while we read
            # and the server followed it
            assert seen_api[-1] > seen_api[0], (seen_api, seen_cli, _stop(server))
        finally:
            if server is not None and server.poll() is None:
                _stop(server)
            watch.terminate()
            _, err = watch.communicate(timeout=60)
        assert watch.returncode == 0, err[-2000:]


@pytest.mark.slow
def test_serve_watch_follows_and_serves_from_one_process(tmp_path: Path) -> None:
    """`serve --watch CONFIG`: the watcher in a background thread writes the store the
    server reads; other processes read the same file meanwhile."""
    from typer.testing import CliRunner

    from escrutinio.cli import app
    from escrutinio.live.fake_onpe import FakeOnpe, Synthetic2026
    from live_support import UNITS4, config_dict

    tl = Synthetic2026(seed=9, n_states=400, step_s=0.5, units=UNITS4, n_actas=6000,
                       n_watch_actas=3)
    db = tmp_path / "sw.duckdb"
    with FakeOnpe(tl) as fake:
        d = config_dict()
        d["base_url"], d["site_url"] = fake.backend_url, fake.url
        d["scopes"]["area1"] = list(UNITS4[:2])
        d["actas"] = {"ids": []}
        d["intervals"] = {"hot_s": 0.3, "warm_s": 0.9, "cold_s": 2.0, "stale_after_s": 30,
                          "hard_block_pause_s": 5}
        d["transport"] = {"timeout_s": 3.0, "rate_per_s": 200.0, "jitter_s": 0.0,
                          "max_attempts": 2, "backoff_base_s": 0.05, "backoff_max_s": 0.2}
        cfg = tmp_path / "fast.json"
        cfg.write_text(json.dumps(d))
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "escrutinio.cli", "--db", str(db), "serve", "--watch",
             str(cfg), "--port", str(port), "--no-warm"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=ENV)
        base = f"http://127.0.0.1:{port}"
        try:
            counts: list[int] = []
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and (len(counts) < 2 or counts[-1] <= counts[0]
                                                   or counts[0] == 0):
                try:
                    _, body = _get(base + "/api/v1/snapshots")
                    counts.append(len(body["snapshots"]))  # type: ignore[arg-type]
                except OSError:
                    pass
                time.sleep(0.5)
            assert counts and counts[-1] > counts[0] >= 0 and counts[-1] >= 2, counts
            res = CliRunner().invoke(app, ["--db", str(db), "snapshots", "--json"])
            assert res.exit_code == 0 and len(json.loads(res.stdout)) >= counts[-1]
            status, _ = _get(base + "/api/v1/s/latest")
            assert status == 200
        finally:
            server.terminate()
            _, err = server.communicate(timeout=60)
        assert "Traceback" not in err, err[-3000:]
    with DuckDBStore(db, read_only=True) as store:  # the watcher stopped cleanly
        kinds = [k for (k,) in store.con.execute(
            "SELECT kind FROM live_events ORDER BY seq").fetchall()]
        assert kinds[0] == "start" and kinds[-1] == "shutdown"


def test_the_catalogue_epoch_moves_with_every_stored_snapshot(national: Path) -> None:
    from escrutinio.sources.onpe_aggregates import parse_progress_tables
    from escrutinio.store.base import Store

    cuts = parse_progress_tables(national, "national")[:2]
    with DuckDBStore(":memory:") as store:
        before = (store.catalog_epoch(), Store.catalog_epoch(store))  # query, fallback
        store.put_snapshots(cuts[:1])
        middle = (store.catalog_epoch(), Store.catalog_epoch(store))
        store.put_snapshots(cuts[:1])  # a repeated snapshot changes nothing
        assert (store.catalog_epoch(), Store.catalog_epoch(store)) == middle
        store.put_snapshots(cuts[1:])
        after = (store.catalog_epoch(), Store.catalog_epoch(store))
        assert before[0] != middle[0] != after[0] and before[1] != middle[1] != after[1]
        assert store.release() is False  # a store in memory is never released


def test_a_busy_store_is_503_on_the_web() -> None:
    from escrutinio.api.app import status_of

    assert status_of(StoreBusyError("ocupado", "busy")) == 503
