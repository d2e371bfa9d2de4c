"""The live commands as a user runs them (real time, real HTTP on 127.0.0.1): watch,
watch-status, watch-export, replay, fake-onpe, the health endpoint, and a clean
shutdown on SIGTERM of a separate process that resumes afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from escrutinio.commands.common import opts
from escrutinio.commands.live import register
from escrutinio.live.config import load_config
from escrutinio.live.fake_onpe import FakeOnpe, Synthetic2026
from escrutinio.live.soak import audit_against_truth
from escrutinio.live.watcher import Watcher, serve_health
from escrutinio.store.duckdb_store import DuckDBStore
from live_support import UNITS4, config_dict

REPO = Path(__file__).resolve().parents[1]


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main(db: str = "escrutinio.duckdb", lang: str = "es") -> None:
        opts.db = db
        opts.lang = "en" if lang.startswith("en") else "es"

    register(app)
    return app


APP = make_app()
runner = CliRunner()


def run(db: Path | str, *args: str) -> tuple[int, str]:
    res = runner.invoke(APP, ["--db", str(db), *args])
    return res.exit_code, res.stdout


@pytest.fixture(scope="module")
def fake():
    tl = Synthetic2026(seed=5, n_states=400, step_s=0.4, units=UNITS4, n_actas=6000,
                       n_watch_actas=3)
    f = FakeOnpe(tl).start()  # real clock: a state every 0.4 s
    yield f
    f.stop()


def fast_config(tmp_path: Path, fake: FakeOnpe, name: str = "fast.json") -> Path:
    d = config_dict()
    d["base_url"], d["site_url"] = fake.backend_url, fake.url
    d["scopes"]["area1"] = list(UNITS4[:2])
    d["actas"] = {"ids": fake.timeline.acta_ids()[:2]}  # type: ignore[attr-defined]
    d["intervals"] = {"hot_s": 0.3, "warm_s": 0.9, "cold_s": 2.0, "stale_after_s": 30,
                      "hard_block_pause_s": 5}
    d["transport"] = {"timeout_s": 3.0, "rate_per_s": 200.0, "jitter_s": 0.0,
                      "max_attempts": 2, "backoff_base_s": 0.05, "backoff_max_s": 0.2}
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return p


def test_watch_status_export_and_replay(tmp_path: Path, fake: FakeOnpe):
    cfg = fast_config(tmp_path, fake)
    db = tmp_path / "w.duckdb"
    code, out = run(db, "watch", str(cfg), "--cycles", "4", "--json", "--seed", "1")
    assert code == 0, out
    st = json.loads(out)
    assert st["state"] == "ok" and st["served"]["stale"] is False
    assert st["counts"]["ok"] > 0 and st["snapshots_created"] >= 2
    code, out = run(db, "watch-status", "--json")
    assert code == 0 and json.loads(out)["served"]["snapshot_id"] == st["served"]["snapshot_id"]
    code, out = run(db, "--lang", "en", "watch-status")
    assert code == 0 and "State: ok" in out and "Counted actas" in out
    code, out = run(db, "watch-status")
    assert "Estado: ok" in out
    code, out = run(db, "watch-export", str(tmp_path / "exp"), "--json")
    assert code == 0 and json.loads(out)["responses"] == st["requests"]
    db2 = tmp_path / "r.duckdb"
    code, out = run(db2, "watch", str(cfg), "--replay", str(tmp_path / "exp"), "--json")
    assert code == 0, out
    rp = json.loads(out)
    assert rp["state"] == "replayed" and rp["replay"]["kind"] == "export"
    assert rp["served"]["snapshot_id"] == st["served"]["snapshot_id"]


def test_replay_recorded_2021_answers(tmp_path: Path, data_dir: Path):
    folder = data_dir / "onpe-api-fixtures" / "2021" / "results-ubigeo"
    code, out = run(tmp_path / "f.duckdb", "watch", "onpe2021-first-round", "--replay",
                    str(folder), "--json")
    assert code == 0, out
    st = json.loads(out)
    assert st["served"]["as_of"] == "2021-04-12T08:46:00-05:00"
    assert st["served"]["actas_counted"] == 51_107
    assert st["served"]["votes"]["perulibre"] == 1_543_237
    # 3 national, 3 abroad, 3 Lima, 1 Amazonas (Lima province 140100 is not followed)
    assert st["replay"]["results"] == {"accepted": 10}
    code, out = run(tmp_path / "g.duckdb", "watch", "onpe2021-runoff", "--replay",
                    str(data_dir / "peru-2021-runoff" / "progress_national"), "--json")
    assert code == 0, out
    st = json.loads(out)
    assert st["served"]["votes"] == {"castillo": 8_670_028, "fujimori": 8_567_920}
    assert st["replay"]["kind"] == "snapshots" and st["snapshots_created"] == 44


def test_errors_are_bilingual(tmp_path: Path):
    code, out = run(tmp_path / "e.duckdb", "watch", str(tmp_path / "nope.toml"), "--json")
    assert code == 2
    e = json.loads(out)
    assert e["message_es"] and e["message_en"] and e["rule"] == "file_not_found"
    code, out = run(tmp_path / "e.duckdb", "watch-status", "--json")
    assert code == 1 and "watch" in json.loads(out)["message_en"]
    code, out = run(tmp_path / "e.duckdb", "watch-status", "--url", "http://example.org/h",
                    "--json")
    assert code == 1 and "local" in json.loads(out)["message_en"]


def test_fake_onpe_command(tmp_path: Path):
    code, out = run(tmp_path / "x.duckdb", "fake-onpe", "--port", "0", "--duration", "0.2",
                    "--states", "5", "--json")
    assert code == 0, out
    info = json.loads(out)
    assert info["url"].startswith("http://127.0.0.1:") and info["states"] == 5
    assert "escrutinio watch onpe2026-runoff --base-url" in info["watch"]


def test_health_endpoint(tmp_path: Path, fake: FakeOnpe):
    cfg = load_config(fast_config(tmp_path, fake))
    store = DuckDBStore(":memory:")
    w = Watcher(cfg, store, seed=2)
    server = serve_health(w, 0)
    try:
        w.run(max_cycles=2, install_signals=False)
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        with urllib.request.urlopen(url, timeout=5) as r:
            st = json.loads(r.read())
        assert r.status == 200 and st["state"] == "ok"
        code, out = run(tmp_path / "h.duckdb", "watch-status", "--url", url, "--json")
        assert code == 0 and json.loads(out)["run_id"] == w.run_id
        w.state["national"].confirmed_at = w.clock.now().replace(year=2000)  # long ago
        w._publish_status()
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(url, timeout=5)
        assert exc.value.code == 503
        assert json.loads(exc.value.read())["served"]["stale"] is True
    finally:
        server.shutdown()
        w.transport.close()
        store.close()


RUNNER = """
import sys
import typer
sys.path.insert(0, {tests!r})
from test_live_cli import make_app
make_app()()
"""


def test_sigterm_stops_cleanly_and_restart_resumes(tmp_path: Path, fake: FakeOnpe):
    cfg = fast_config(tmp_path, fake)
    db = tmp_path / "s.duckdb"
    status = tmp_path / "status.json"
    script = tmp_path / "runner.py"
    script.write_text(RUNNER.format(tests=str(REPO / "tests")))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen(
        [sys.executable, str(script), "--db", str(db), "watch", str(cfg), "--status-file",
         str(status), "--log-file", str(tmp_path / "log.jsonl")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if status.exists():
                st = json.loads(status.read_text())
                if st.get("served") and st["snapshots_created"] >= 6:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the watcher never served a state")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    logs = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert logs[0]["event"] == "start" and logs[-1]["event"] == "shutdown"
    store = DuckDBStore(db)  # opens cleanly: nothing half-written
    try:
        c = load_config(cfg)
        audit = audit_against_truth(store, c, fake.timeline)  # type: ignore[arg-type]
        assert audit.bad == [] and audit.national >= 2
        kinds = [k for (k,) in store.con.execute(
            "SELECT kind FROM live_events ORDER BY seq").fetchall()]
        assert kinds[-1] == "shutdown"
        n = store.con.execute("SELECT count(*) FROM live_responses").fetchall()[0][0]
        assert n > 0
    finally:
        store.close()
    code, out = run(db, "watch", str(cfg), "--once", "--json")
    assert code == 0, out
    store = DuckDBStore(db)
    try:
        kinds = [k for (k,) in store.con.execute(
            "SELECT kind FROM live_events ORDER BY seq").fetchall()]
        assert "resumed" in kinds
        runs = store.con.execute("SELECT count(DISTINCT run_id) FROM live_events").fetchall()[0]
        assert runs[0] == 2
    finally:
        store.close()


def test_fake_onpe_actas_scenario_and_watch_crawl(tmp_path: Path, data_dir: Path):
    """`fake-onpe --scenario actas-2021` serves real 2021 actas as a 2026 count;
    `watch --crawl` follows them on the cold path; `watch-status` reports the crawl."""
    code, out = run(tmp_path / "x.duckdb", "fake-onpe", "--scenario", "actas-2021",
                    "--region", "160300", "--region", "950000", "--port", "0",
                    "--duration", "0.1", "--data-dir", str(data_dir), "--json")
    assert code == 0, out
    info = json.loads(out)
    assert (info["actas"], info["districts"]) == (28 + 24, 3 + 7)
    assert info["watch_crawl"].endswith("--crawl 160300 --crawl 950000")
    from escrutinio.live.fake_onpe import ActaUniverse

    u = ActaUniverse.from_2021(data_dir / "peru-2021-runoff", ("160300",))
    tl = Synthetic2026(seed=2, n_states=300, step_s=0.4, universe=u, n_watch_actas=1)
    with FakeOnpe(tl) as fake:
        cfg = fast_config(tmp_path, fake)
        d = json.loads(cfg.read_text())
        d["scopes"]["area1"] = ["160000"]
        cfg.write_text(json.dumps(d))
        db = tmp_path / "c.duckdb"
        code, out = run(db, "watch", str(cfg), "--crawl", "160300", "--cycles", "4",
                        "--json")
        assert code == 0, out
        crawl = json.loads(out)["crawl"]
        assert crawl["areas"] == ["160300"] and crawl["actas"] == 28
        assert crawl["districts_listed"] == 3 and crawl["geography"]["method"] == "flat"
        code, out = run(db, "--lang", "en", "watch-status")
        assert code == 0 and "Crawl 160300: 3/3 districts listed" in out
        code, out = run(db, "watch", str(cfg), "--crawl", "lima", "--json")
        assert code == 2 and "not a ubigeo" in json.loads(out)["message_en"]


def test_watch_on_postgresql(tmp_path: Path, fake: FakeOnpe, pg_server: object,
                             monkeypatch: pytest.MonkeyPatch):
    """`watch` against fake-onpe with `--db postgresql://...`: snapshots, raw log and
    status as on DuckDB; `watch-status` finds the status file by default (named after a
    hash of the URL, never the URL); `watch-export` reads the raw log back; a second run
    resumes from the PostgreSQL store."""
    from escrutinio.live.rawlog import RawLog
    from escrutinio.store import open_store
    from pg_support import schema_url

    monkeypatch.chdir(tmp_path)
    cfg = fast_config(tmp_path, fake)
    with schema_url(pg_server) as url:  # type: ignore[arg-type]
        code, out = run(url, "watch", str(cfg), "--cycles", "4", "--json", "--seed", "1")
        assert code == 0, out
        st = json.loads(out)
        assert st["state"] == "ok" and st["snapshots_created"] >= 2
        status_files = list(tmp_path.glob("escrutinio-*.live-status.json"))
        assert len(status_files) == 1 and "postgresql" not in status_files[0].name
        code, out = run(url, "watch-status", "--json")
        assert code == 0, out
        assert json.loads(out)["served"]["snapshot_id"] == st["served"]["snapshot_id"]
        code, out = run(url, "watch-export", str(tmp_path / "exp"), "--json")
        assert code == 0 and json.loads(out)["responses"] == st["requests"]
        code, out = run(url, "watch", str(cfg), "--once", "--json")
        assert code == 0, out
        with open_store(url, read_only=True) as store:
            c = load_config(cfg)
            audit = audit_against_truth(store, c, fake.timeline)  # type: ignore[arg-type]
            assert audit.bad == [] and audit.national >= 2
            log = RawLog(store.live_rawlog, read_only=True)
            kinds = [e["kind"] for e in log.events()]
            assert kinds.count("start") == 2 and kinds[-1] == "shutdown"
            assert "resumed" in kinds and len(log.run_ids()) == 2
            assert sum(log.outcome_counts().values()) == len(log.responses())
