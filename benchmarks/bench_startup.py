"""Start-up and ingest speed of the command line, whole process (issue #15.6).

Measures, in one run and on the same machine:

* ``python -c pass`` (the floor) and a plain polars read of the 2021 final acta file in
  its own process (the ingest yardstick);
* ``escrutinio --help`` (target <= 0.2 s) and ``escrutinio status --json`` on a store
  holding the 2021 runoff bundle (target <= 0.5 s);
* ``escrutinio ingest`` of the 86,488-acta 2021 final file into a fresh store (target:
  within 2x the polars read).

A timing loop of its own (``hyperfine -N`` gives the same figures where it is installed).
Reports wall time (min and median) and CPU time (user + system of the child process,
which a busy machine inflates far less than wall time), and the load average.

    .venv/bin/python benchmarks/bench_startup.py [--runs 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from escrutinio.datasets import locate  # noqa: E402

PY = sys.executable
CLI = str(Path(PY).with_name("escrutinio"))
#: the children run as an installed package would: bytecode cached (in a folder of its
#: own, so the source tree stays clean), whatever PYTHONDONTWRITEBYTECODE says here
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "escrutinio-bench-pyc")


def _time_once(cmd: list[str], prepare: list[str] | None = None) -> tuple[float, float]:
    """(wall s, cpu s) of one run of ``cmd`` (``prepare`` runs first, untimed)."""
    if prepare:
        subprocess.run(prepare, check=True, capture_output=True, env=ENV)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, check=False, env=ENV)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({res.returncode}): {res.stderr[-500:]!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(name: str, cmd: list[str], runs: int, prepare: list[str] | None = None,
            warmup: int = 1) -> dict[str, object]:
    for _ in range(warmup):
        _time_once(cmd, prepare)
    walls, cpus = [], []
    for _ in range(runs):
        w, c = _time_once(cmd, prepare)
        walls.append(w)
        cpus.append(c)
    return {"name": name, "command": " ".join(cmd), "runs": runs,
            "wall_min_s": round(min(walls), 4), "wall_median_s": round(statistics.median(walls), 4),
            "cpu_min_s": round(min(cpus), 4), "cpu_median_s": round(statistics.median(cpus), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    final = locate("peru-2021-runoff", "actas/actas_electorales.csv.gz")
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        store = tmp / "runoff.duckdb"
        subprocess.run([CLI, "--db", str(store), "ingest", "peru-2021-runoff", "--json"],
                       check=True, capture_output=True, env=ENV)
        fresh = tmp / "fresh.duckdb"
        load0 = os.getloadavg()
        rows = [
            measure("python -c pass", [PY, "-c", "pass"], args.runs),
            measure("escrutinio --help", [CLI, "--help"], args.runs),
            measure("escrutinio status --json (2021 runoff store)",
                    [CLI, "--db", str(store), "status", "--json"], args.runs),
            measure("polars read of the final file (own process)",
                    [PY, "-c", "import sys, polars as pl; "
                     "pl.read_csv(sys.argv[1], infer_schema=False)", str(final)],
                    max(3, args.runs // 2)),
            measure("escrutinio ingest of the final file (fresh store)",
                    [CLI, "--db", str(fresh), "ingest", str(final), "--json"],
                    max(3, args.runs // 2), prepare=["rm", "-f", str(fresh)]),
        ]
        load1 = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
                   f"{platform.release()}, Python {platform.python_version()}",
        "load_average_before_after": [round(load0[0], 2), round(load1[0], 2)],
        "results": rows,
    }
    polars = next(r for r in rows if r["name"].startswith("polars"))
    ingest = next(r for r in rows if r["name"].startswith("escrutinio ingest"))
    report["ingest_over_polars_wall_min"] = round(
        float(ingest["wall_min_s"]) / float(polars["wall_min_s"]), 2)
    report["ingest_over_polars_cpu_min"] = round(
        float(ingest["cpu_min_s"]) / float(polars["cpu_min_s"]), 2)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
