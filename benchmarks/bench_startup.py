"""Start-up and ingest speed of the command line, whole process (issue #15.6).

Measures, in one run and on the same machine:

* ``python -c pass`` (the floor) and a plain polars read of the 2021 final acta file in
  its own process (the ingest yardstick);
* ``escrutinio --help`` (target <= 0.2 s) and ``escrutinio status --json`` on a store
  holding the 2021 runoff bundle (target <= 0.5 s);
* ``escrutinio ingest`` of the 86,488-acta 2021 final file into a fresh store (target:
  within 2x the polars read).

A timing loop of its own, like ``hyperfine -N`` (no shell; one untimed warm-up run of each
command), but **interleaved**: every round runs each command once, so that the load of a
shared machine, which drifts over minutes, weighs on all of them alike, and the ingest is
compared with the polars read **of the same round** (the median of those paired ratios is
the figure to quote). Reports wall time (min, median) and CPU time (user + system of the
child, which a busy machine inflates far less than wall time), and the 1-minute load
average before, during (each round) and after.

``--baseline SRC`` also runs every ``escrutinio`` command (and the phases) with another
tree's ``src`` (e.g. a worktree of the commit before a change) in the same rounds, so
that before and after are compared under the same load.

``--phases N`` adds an in-process breakdown of the ingest (CPU and wall per phase, median
of N fresh processes): imports, format detection, parsing, opening the store, writing
the rows, the ledger, the commit.

    .venv/bin/python benchmarks/bench_startup.py [--runs 10] [--phases 5]
        [--baseline ../before/src] [--json out.json]
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
#: and measure this tree's code, whatever the virtualenv's editable install points at
ENV["PYTHONPATH"] = str(ROOT / "src")


def env_for(src: Path) -> dict[str, str]:
    return {**ENV, "PYTHONPATH": str(src)}


#: the ingest broken into phases, in one fresh interpreter (prints one JSON line)
PHASES = r"""
import json, sys, time
marks = [("start", time.perf_counter(), time.process_time())]
def mark(name):
    marks.append((name, time.perf_counter(), time.process_time()))
import duckdb, polars
mark("native imports (polars, duckdb)")
from escrutinio import service
from escrutinio.store import ledger, open_store
mark("escrutinio imports")
from pathlib import Path
src = Path(sys.argv[1])
parse = service.detect_parser(src)
mark("format detection (reads the file)")
parsed = parse(src)
mark("parse + validate")
# as the CLI does: from 2026-12-06 (LeavesAhead) the leaves are hashed from here on
ahead = service.LeavesAhead(parsed) if hasattr(service, "LeavesAhead") else None
store = open_store(sys.argv[2])
mark("open the store (fresh file, schema)")
append_new = ledger.append_new
def timed(*args, **kwargs):
    mark("write the rows (INSERT; from 2026-12-06 the leaves are hashed meanwhile)")
    out = append_new(*args, **kwargs)
    mark("ledger (leaves or the wait for them, Merkle root, entry)")
    return out
ledger.append_new = timed
if ahead is None:
    service.ingest(store, parsed)
else:
    with ahead:
        service.ingest(store, parsed, ahead=ahead)
mark("commit")
store.close()
mark("close")
print(json.dumps([(b[0], b[1] - a[1], b[2] - a[2]) for a, b in zip(marks, marks[1:])]))
"""


Command = tuple[str, list[str], "list[str] | None", dict[str, str]]


def _time_once(cmd: list[str], prepare: list[str] | None = None,
               env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall s, cpu s) of one run of ``cmd`` (``prepare`` runs first, untimed)."""
    if prepare:
        subprocess.run(prepare, check=True, capture_output=True, env=ENV)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, check=False, env=env or ENV)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({res.returncode}): {res.stderr[-500:]!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _summary(name: str, cmd: list[str], walls: list[float], cpus: list[float]
             ) -> dict[str, object]:
    return {"name": name, "command": " ".join(cmd), "runs": len(walls),
            "wall_min_s": round(min(walls), 4), "wall_median_s": round(statistics.median(walls), 4),
            "cpu_min_s": round(min(cpus), 4), "cpu_median_s": round(statistics.median(cpus), 4)}


def measure(commands: list[Command], runs: int
            ) -> tuple[list[dict[str, object]], dict[str, list[float]], list[float]]:
    """Interleaved rounds; returns the summaries, the raw samples and the load samples."""
    for _name, cmd, prepare, env in commands:  # warm-up: caches, bytecode
        _time_once(cmd, prepare, env)
    samples: dict[str, list[float]] = {}
    loads = []
    for _ in range(runs):
        loads.append(os.getloadavg()[0])
        for name, cmd, prepare, env in commands:
            w, c = _time_once(cmd, prepare, env)
            samples.setdefault(f"{name}/wall", []).append(w)
            samples.setdefault(f"{name}/cpu", []).append(c)
    rows = [_summary(name, cmd, samples[f"{name}/wall"], samples[f"{name}/cpu"])
            for name, cmd, _p, _e in commands]
    return rows, samples, loads


def phases(final: Path, tmp: Path, n: int, srcs: dict[str, Path]
           ) -> dict[str, list[dict[str, object]]]:
    """Median CPU and wall of each ingest phase, per tree (interleaved like the rounds)."""
    got: dict[str, list[list[tuple[str, float, float]]]] = {tree: [] for tree in srcs}
    for i in range(n):
        for tree, src in srcs.items():
            out = subprocess.run([PY, "-c", PHASES, str(final),
                                  str(tmp / f"phases-{tree}{i}.duckdb")],
                                 capture_output=True, text=True, check=True, env=env_for(src))
            got[tree].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {tree: _phase_medians(runs) for tree, runs in got.items()}


def _phase_medians(runs: list[list[tuple[str, float, float]]]) -> list[dict[str, object]]:
    names = [r[0] for r in runs[0]]
    return [{"phase": name,
             "cpu_median_s": round(statistics.median(r[i][2] for r in runs), 4),
             "wall_median_s": round(statistics.median(r[i][1] for r in runs), 4)}
            for i, name in enumerate(names)] + [
        {"phase": "total", "cpu_median_s": round(statistics.median(
            sum(p[2] for p in r) for r in runs), 4),
         "wall_median_s": round(statistics.median(sum(p[1] for p in r) for r in runs), 4)}]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="interleaved rounds")
    ap.add_argument("--phases", type=int, default=0,
                    help="also break the ingest into phases (median of N processes)")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="the src folder of another tree, measured in the same rounds")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    srcs = {"this tree": ROOT / "src"}
    if args.baseline:
        srcs["baseline"] = args.baseline.resolve()
    final = locate("peru-2021-runoff", "actas/actas_electorales.csv.gz")
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        store = tmp / "runoff.duckdb"
        subprocess.run([CLI, "--db", str(store), "ingest", "peru-2021-runoff", "--json"],
                       check=True, capture_output=True, env=ENV)
        n_snapshots = len(json.loads(subprocess.run(
            [CLI, "--db", str(store), "snapshots", "--json"], check=True,
            capture_output=True, env=ENV).stdout))
        fresh = tmp / "fresh.duckdb"
        commands: list[Command] = [
            ("python -c pass", [PY, "-c", "pass"], None, ENV),
            ("polars read of the final file (own process)",
             [PY, "-c", "import sys, polars as pl; "
              "pl.read_csv(sys.argv[1], infer_schema=False)", str(final)], None, ENV),
        ]
        ingest_names: dict[str, str] = {}
        for tree, src in srcs.items():
            tag = "" if tree == "this tree" else f" [{tree}]"
            ingest_names[tree] = f"escrutinio ingest of the final file (fresh store){tag}"
            commands += [
                (f"escrutinio --help{tag}", [CLI, "--help"], None, env_for(src)),
                (f"escrutinio status --json (2021 runoff store, {n_snapshots} snapshots)"
                 f"{tag}", [CLI, "--db", str(store), "status", "--json"], None, env_for(src)),
                (ingest_names[tree], [CLI, "--db", str(fresh), "ingest", str(final), "--json"],
                 ["rm", "-f", str(fresh), f"{fresh}.wal"], env_for(src)),
            ]
        load0 = os.getloadavg()
        rows, samples, loads = measure(commands, args.runs)
        load1 = os.getloadavg()
        broken = phases(final, tmp, args.phases, srcs) if args.phases else {}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    polars_name = commands[1][0]

    def paired(name: str, kind: str) -> float:
        """Median over the rounds of (this command / the polars read of the same round)."""
        return round(statistics.median(
            a / b for a, b in zip(samples[f"{name}/{kind}"], samples[f"{polars_name}/{kind}"],
                                  strict=True)), 2)

    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
                   f"{platform.release()}, Python {platform.python_version()}",
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "load_average_1min": {"before": round(load0[0], 2), "after": round(load1[0], 2),
                              "median_of_rounds": round(statistics.median(loads), 2)},
        "results": rows,
        # the median, over the rounds, of (ingest / polars read) in the same round
        "ingest_over_polars_paired_median": {
            tree: {kind: paired(name, kind) for kind in ("wall", "cpu")}
            for tree, name in ingest_names.items()},
        "ingest_phases": broken,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
