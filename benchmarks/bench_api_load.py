"""Load test of the HTTP API on loopback: 200 concurrent clients against the count-state and
projection endpoints, p50 / p99 latency and throughput (a benchmark, not a test; results in
benchmarks/RESULTS-api.md).

It runs ``escrutinio serve`` as a separate process over a DuckDB store (ingesting the
``peru-2021-runoff`` bundle first if the store is missing), asks each endpoint once so the
analysis is computed and cached (what a server warmed before the night has), then drives it
with Debian's ``wrk`` (``apt-get install wrk``): 200 open connections, 2 threads, for
``--duration`` seconds per scenario. wrk is closed-loop (each connection sends its next
request when the previous answer arrives), which is harsher than real visitors: the
latency it reports includes the queueing of 200 clients on a 2-core machine.

Scenarios: count state by department of a permalink (full snapshot id), count state of
``latest`` (resolved per request), the projection of a permalink, and a revalidation of
the count state with ``If-None-Match`` (answered 304). Only loopback addresses are used,
every run is bounded in time, and the server is stopped at the end.

Usage::

    .venv/bin/python benchmarks/bench_api_load.py [--db out/escrutinio.duckdb]
        [--duration 15] [--connections 200] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the CLI, with the web commands registered even before "web" is in COMMAND_MODULES
ESCRUTINIO = [sys.executable, "-c",
              "from escrutinio.cli import app\n"
              "from escrutinio.commands import COMMAND_MODULES, web\n"
              "if 'web' not in COMMAND_MODULES: web.register(app)\n"
              "app(prog_name='escrutinio')"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_db(db: Path) -> None:
    if db.exists():
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*ESCRUTINIO, "--db", str(db), "ingest", "peru-2021-runoff", "--json"],
                   check=True, stdout=subprocess.DEVNULL)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def start_server(db: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    cmd = [*ESCRUTINIO, "--db", str(db), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--no-warm"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if get(f"http://127.0.0.1:{port}/api/v1/replay")[0] == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start: " + (proc.stderr.read() or b"").decode()[-2000:])


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, float | int]:
    res: dict[str, float | int] = {}
    for q in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{q}(?:\.000)?%\s+(\S+)", out, re.M)
        if m:
            res[f"p{q}_ms"] = _ms(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if m:
        res["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non_2xx_3xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if m:
        res["mean_ms"], res["max_ms"] = _ms(m.group(1)), _ms(m.group(3))
    return res


def run_wrk(url: str, *, connections: int, duration: int, threads: int = 2,
            headers: dict[str, str] | None = None) -> dict[str, float | int]:
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
           "--timeout", "10s", "--latency"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True,
                         timeout=duration + 60).stdout
    return parse_wrk(out)


def loadavg() -> float:
    """1-minute load average before a scenario: other work on the machine shows here."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=str(REPO / "out" / "escrutinio.duckdb"))
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    db = Path(args.db)
    ensure_db(db)
    results = []
    for workers in args.workers:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(db, port, workers)
        try:
            snaps = json.loads(get(f"{base}/api/v1/snapshots")[2])["snapshots"]
            final = [s for s in snaps if s["kind"] == "actas"][-1]["snapshot_id"]
            scenarios = {
                "count state, department, permalink": f"/api/v1/s/{final}/state/area1",
                "count state, national, latest": "/api/v1/s/latest/state/national",
                "projection, permalink": f"/api/v1/s/{final}/projection",
            }
            # warm every worker: the analysis is computed once per process, then cached;
            # a short unrecorded wrk run reaches every worker
            cold = {}
            for name, path in scenarios.items():
                t0 = time.perf_counter()
                status, headers, body = get(base + path)
                cold[name] = 1000 * (time.perf_counter() - t0)  # first answer: computed
                assert status == 200, (path, status, body[:200])
                run_wrk(base + path, connections=20, duration=3)
            status, headers, body = get(base + f"/api/v1/s/{final}/state/area1")
            etag = headers["etag"]
            sizes = {name: len(get(base + p)[2]) for name, p in scenarios.items()}
            for name, path in scenarios.items():
                load = loadavg()
                r = run_wrk(base + path, connections=args.connections, duration=args.duration)
                results.append({"workers": workers, "scenario": name, "path": path,
                                "bytes": sizes[name], "loadavg_before": load,
                                "first_answer_ms": cold[name], **r})
            load = loadavg()
            r = run_wrk(base + f"/api/v1/s/{final}/state/area1",
                        connections=args.connections, duration=args.duration,
                        headers={"If-None-Match": etag})
            results.append({"workers": workers, "scenario": "count state, revalidation (304)",
                            "path": f"/api/v1/s/{final}/state/area1", "bytes": 0,
                            "loadavg_before": load, "first_answer_ms": float("nan"), **r})
        finally:
            stop_server(proc)
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(), "connections": args.connections,
            "duration_s": args.duration}
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
        return
    print(f"{meta['date']} · {meta['machine']} · Python {meta['python']} · "
          f"{args.connections} connections, {args.duration} s per scenario, wrk -t2")
    print("| workers | scenario | body bytes | first answer ms | req/s | p50 ms | p90 ms | "
          "p99 ms | max ms | non-2xx/3xx | socket errors | load avg before |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['workers']} | {r['scenario']} | {r['bytes']:,} | "
              f"{r['first_answer_ms']:,.0f} | {r.get('rps', 0):,.0f} | "
              f"{r.get('p50_ms', float('nan')):.1f} | {r.get('p90_ms', float('nan')):.1f} | "
              f"{r.get('p99_ms', float('nan')):.1f} | {r.get('max_ms', float('nan')):.0f} | "
              f"{r['non_2xx_3xx']} | {r['socket_errors']} | {r['loadavg_before']:.1f} |")


if __name__ == "__main__":
    main()
