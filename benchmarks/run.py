"""Run every benchmark, print a table and record it in ``benchmarks/RESULTS.md``.

Benchmarks (targets from the performance issue; machine: 2 cores, 24 GB):

* ``ronderos_ingest`` — the real 86,488-acta final file of the 2021 runoff:
  ``parse_ronderos`` then ``DuckDBStore(new file).put_snapshot`` and ``close``; <= 1 s.
* ``ronderos_count`` — count state at the four levels (national, area1, area2, area3),
  from the parsed frame (``count_state_actas``) and from the store
  (``service.state_of`` on a new connection, so the first level reads the snapshot);
  <= 200 ms for the four levels, on each path (both paths are also summed).
* ``synthetic_generate`` — a 1,000,000-acta synthetic election (``benchmarks/synthetic.py``)
  written as Parquet and as gzipped CSV in the generic format (no target).
* ``synthetic_ingest_parquet``, ``synthetic_ingest_csv_gz`` — ``parse_tabular`` (parse and
  validate) then store, as above; <= 15 s and peak memory <= 2 GB.
* ``synthetic_count`` — count state at the four levels on the 1,000,000 actas, from the
  frame and from the store; <= 2 s for each path.

Each repetition of an ingest runs in a fresh Python process (cold: first use of polars
and DuckDB included, imports excluded); the count benchmarks repeat the four levels in one
process after one untimed round (a warm server). Peak memory is the process's peak
resident set (``resource.getrusage``), imports and interpreter included. The machine, the
date, the git commit, the load average and the command are recorded with the figures; a
rerun on the same commit and machine replaces its section of RESULTS.md. A benchmark that
fails — its worker process dies, or the benchmark code raises — is recorded in the table as
failed, with its error under it, and the run goes on with the next one.

    python benchmarks/run.py                  # everything, 1,000,000 synthetic actas
    python benchmarks/run.py --actas 200000 --repeat 2 --no-write   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "RESULTS.md"
AS_OF = "2021-06-17T00:00:00Z"
RONDEROS = "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz"


def data_dir() -> Path:
    env = os.environ.get("ESCRUTINIO_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- workers (each runs in its own process) ---------------------------------------------

def _levels() -> list[Any]:
    from escrutinio.domain import Level

    return list(Level)


def work_ingest(args: dict[str, Any]) -> dict[str, Any]:
    """One ingest: parse (+ validate) and store into a new DuckDB file."""
    t0 = time.perf_counter()
    from escrutinio.store.duckdb_store import DuckDBStore

    if args["kind"] == "ronderos":
        from escrutinio.sources.onpe_files import parse_ronderos

        def parse() -> Any:
            return parse_ronderos(args["path"], as_of=AS_OF)
    else:
        from escrutinio.sources.tabular import parse_tabular

        def parse() -> Any:
            return parse_tabular(args["path"])
    imports = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        snap = parse()
        t2 = time.perf_counter()
        store = DuckDBStore(Path(tmp) / "bench.duckdb")
        store.put_snapshot(snap)
        store.close()
        t3 = time.perf_counter()
        size = (Path(tmp) / "bench.duckdb").stat().st_size
    return {"parse": t2 - t1, "store": t3 - t2, "total": t3 - t1, "imports": imports,
            "rows": snap.frame.height, "rejected": snap.rejected.height,
            "findings": snap.findings.height, "db_bytes": size}


def work_count(args: dict[str, Any]) -> dict[str, Any]:
    """Count state at every level from the frame and through the store, repeated."""
    from escrutinio import service
    from escrutinio.count import SnapshotRef, count_state_actas
    from escrutinio.store.duckdb_store import DuckDBStore

    if args["kind"] == "ronderos":
        from escrutinio.sources.onpe_files import parse_ronderos

        snap = parse_ronderos(args["path"], as_of=AS_OF)
    else:
        from escrutinio.sources.tabular import parse_tabular

        snap = parse_tabular(args["path"])
    names = dict(zip(snap.geography["code"].to_list(), snap.geography["name"].to_list(),
                     strict=True))
    ref = SnapshotRef(snap.snapshot_id, snap.as_of, snap.label)
    levels = _levels()
    frame_times: list[float] = []
    store_times: list[float] = []
    per_level: dict[str, list[float]] = {f"{w}_{lv.value}": [] for w in ("frame", "store")
                                         for lv in levels}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        store = DuckDBStore(db)
        store.put_snapshot(snap)
        info = store.list_snapshots()[0]
        store.close()
        national = None
        for rep in range(args["repeat"] + 1):  # round 0 warms up, untimed
            # a new connection each round (not timed): the first level reads the
            # snapshot from the file, the next ones find it in the store's cache
            store = DuckDBStore(db, read_only=True)
            tf = 0.0
            for lv in levels:
                t = time.perf_counter()
                st = count_state_actas(snap.frame, snap.contest, ref, level=lv, names=names)
                dt = time.perf_counter() - t
                tf += dt
                if rep:
                    per_level[f"frame_{lv.value}"].append(dt)
                national = st.national
            ts = 0.0
            for lv in levels:
                t = time.perf_counter()
                st = service.state_of(store, info, level=lv)
                dt = time.perf_counter() - t
                ts += dt
                if rep:
                    per_level[f"store_{lv.value}"].append(dt)
                if st.national != national:
                    raise AssertionError("frame and store give different national states")
            store.close()
            if rep:
                frame_times.append(tf)
                store_times.append(ts)
    assert national is not None
    return {"frame": frame_times, "store": store_times,
            "both": [a + b for a, b in zip(frame_times, store_times, strict=True)],
            "per_level": {k: statistics.median(v) for k, v in per_level.items()},
            "rows": snap.frame.height, "leader": national.leader,
            "margin": national.margin_votes}


def work_generate(args: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    import synthetic

    t0 = time.perf_counter()
    el = synthetic.generate(args["actas"], args["seed"])
    t1 = time.perf_counter()
    out: dict[str, Any] = {"generate": t1 - t0, "rows": el.frame.height,
                           "areas": el.geography.height}
    for fmt in ("parquet", "csv.gz"):
        t = time.perf_counter()
        data, _ = synthetic.write(el, Path(args["dir"]) / f"synthetic.{fmt}")
        out[f"write_{fmt}"] = time.perf_counter() - t
        out[f"bytes_{fmt}"] = data.stat().st_size
    counts = el.frame["status"].value_counts()
    out["statuses"] = dict(zip(counts["status"].to_list(), counts["count"].to_list(),
                               strict=True))
    return out


WORKERS = {"ingest": work_ingest, "count": work_count, "generate": work_generate}


def worker_main(name: str, payload: str) -> None:
    result = WORKERS[name](json.loads(payload))
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result))


# --- driver ------------------------------------------------------------------------------

class WorkerFailed(RuntimeError):
    def __init__(self, last_line: str, stderr: str) -> None:
        super().__init__(last_line)
        self.stderr = stderr


def attempt(report: Report, name: str, fn: Any, *args: Any) -> bool:
    """Run one benchmark; a failure — its worker died, or the benchmark itself raised —
    is recorded in the results with its error (and printed), not fatal to the run.
    Returns whether it succeeded."""
    try:
        fn(report, name, *args)
        return True
    except WorkerFailed as exc:
        print(exc.stderr, file=sys.stderr)
        report.fail(name, str(exc))
    except Exception as exc:  # a broken benchmark is a result too
        traceback.print_exc()
        report.fail(name, f"{type(exc).__name__}: {exc}")
    return False


def run_worker(name: str, args: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
        raise WorkerFailed(lines[-1] if lines else f"exit status {proc.returncode}",
                           proc.stderr)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise WorkerFailed("the worker printed no RESULT line", proc.stderr)
    return json.loads(line[len("RESULT "):])


@dataclass
class Row:
    benchmark: str
    figure: str
    values: list[float]  # seconds (or MB for memory)
    unit: str = "s"
    target: float | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def met(self) -> str:
        if self.target is None:
            return ""
        return "yes" if self.median <= self.target else "**no**"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (benchmark, error)

    def add(self, *a: Any, **k: Any) -> None:
        self.rows.append(Row(*a, **k))

    def fail(self, name: str, error: str) -> None:
        error = " ".join(error.split())[:500].replace("`", "'")
        self.failed.append((name, error))
        self.details.append(f"`{name}` **failed**: `{error}`")


def fmt(x: float, unit: str) -> str:
    if unit == "s":
        return f"{x * 1000:,.0f} ms" if x < 1 else f"{x:,.2f} s"
    return f"{x:,.0f} MB"


def bench_ingest(report: Report, name: str, kind: str, path: Path, repeat: int,
                 target_s: float, target_mb: float | None) -> None:
    runs = [run_worker("ingest", {"kind": kind, "path": str(path)}) for _ in range(repeat)]
    report.add(name, "parse + validate", [r["parse"] for r in runs])
    report.add(name, "store (DuckDB insert, commit, close)", [r["store"] for r in runs])
    report.add(name, "ingest, end to end", [r["total"] for r in runs], target=target_s)
    report.add(name, "peak memory (process)", [r["peak_rss_mb"] for r in runs], unit="MB",
               target=target_mb)
    r = runs[0]
    report.details.append(
        f"`{name}`: {r['rows']:,} actas stored, {r['rejected']:,} rejected, "
        f"{r['findings']:,} flagged; DuckDB file {r['db_bytes'] / 1e6:,.1f} MB; imports "
        f"{statistics.median(x['imports'] for x in runs) * 1000:,.0f} ms (not timed); "
        f"{repeat} runs, each in a fresh process.")


def bench_count(report: Report, name: str, kind: str, path: Path, repeat: int,
                target_each: float) -> None:
    r = run_worker("count", {"kind": kind, "path": str(path), "repeat": repeat})
    report.add(name, "4 levels from the frame (count_state_actas)", r["frame"],
               target=target_each)
    report.add(name, "4 levels from the store (service.state_of, new connection)",
               r["store"], target=target_each)
    report.add(name, "both paths, 8 calls", r["both"])
    per = ", ".join(f"{k} {v * 1000:,.0f} ms" for k, v in r["per_level"].items())
    report.details.append(
        f"`{name}`: {r['rows']:,} actas, leader {r['leader']} by {r['margin']:,}; median "
        f"per call: {per}; {repeat} rounds after one untimed round, one process; peak "
        f"memory {r['peak_rss_mb']:,.0f} MB.")


def bench_generate(report: Report, name: str, actas: int, seed: int, work: Path) -> None:
    g = run_worker("generate", {"actas": actas, "seed": seed, "dir": str(work)})
    report.add(name, f"generate {g['rows']:,} actas (numpy)", [g["generate"]])
    report.add(name, "write Parquet", [g["write_parquet"]])
    report.add(name, "write CSV.gz", [g["write_csv.gz"]])
    statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(g["statuses"].items()))
    report.details.append(
        f"`{name}`: seed {seed}, {g['rows']:,} actas over {g['areas']:,} areas; statuses: "
        f"{statuses}; Parquet {g['bytes_parquet'] / 1e6:,.1f} MB, CSV.gz "
        f"{g['bytes_csv.gz'] / 1e6:,.1f} MB.")


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        m = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        if m:
            ram = f"{int(m.group(1)) / 1024**2:.1f} GiB"
    except OSError:
        pass
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True,
                           check=False).stdout.strip() or " ".join(platform.uname())
    return {"uname": uname, "cpu": cpu, "cores": str(os.cpu_count()), "ram": ram}


def git_commit() -> str:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], capture_output=True, text=True, cwd=REPO,
                              check=False).stdout.strip()

    sha = git("rev-parse", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return sha + (" (with uncommitted changes)" if dirty else "")


def versions() -> str:
    import duckdb
    import numpy
    import polars
    import pyarrow

    return (f"Python {platform.python_version()}, polars {polars.__version__}, duckdb "
            f"{duckdb.__version__}, numpy {numpy.__version__}, pyarrow {pyarrow.__version__}")


def cpu_busy(seconds: float = 3.0) -> float:
    """Fraction of CPU time spent busy (all cores) over ``seconds``, from /proc/stat."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return 1 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(max_wait: float, threshold: float) -> float:
    """Wait (at most ``max_wait`` s) until other processes use less than ``threshold`` of
    the CPU; return the busy fraction when starting."""
    start = time.monotonic()
    busy = cpu_busy()
    while busy >= threshold and time.monotonic() - start < max_wait:
        busy = cpu_busy(5.0)
    return busy


def render(report: Report, meta: dict[str, str]) -> str:
    head = ("| Benchmark | Figure | Median | Min | Max | Runs | Target | Met |\n"
            "|---|---|---:|---:|---:|---:|---:|:---:|\n")
    lines = []
    for r in report.rows:
        target = "" if r.target is None else f"<= {fmt(r.target, r.unit)}"
        lines.append(f"| `{r.benchmark}` | {r.figure} | {fmt(r.median, r.unit)} | "
                     f"{fmt(min(r.values), r.unit)} | {fmt(max(r.values), r.unit)} | "
                     f"{len(r.values)} | {target} | {r.met} |")
    for name, _ in report.failed:
        lines.append(f"| `{name}` | **failed** (see below) | — | — | — | 0 |  | **no** |")
    details = "\n".join(f"- {d}" for d in report.details)
    return (
        f"<!-- run: {meta['key']} -->\n"
        f"## {meta['date']} · commit `{meta['commit'][:12]}`{meta['dirty']}\n\n"
        f"- Machine: `{meta['uname']}`\n"
        f"- CPU: {meta['cpu']}; {meta['cores']} cores; RAM {meta['ram']}\n"
        f"- Software: {meta['versions']}\n"
        f"- Commit: `{meta['commit']}`\n"
        f"- Command: `{meta['command']}`\n"
        + (f"- Note: {meta['note']}\n" if meta["note"] else "") +
        f"- Load average (1 min) at start: {meta['load']}; at end: {meta['load_end']}; "
        f"benchmark processes ran at niceness {meta['nice']}\n\n"
        + head + "\n".join(lines) + "\n\n" + details + "\n"
        "<!-- end run -->\n"
    )


RESULTS_HEADER = """# Benchmark results

Written by `benchmarks/run.py` (see its docstring for what each benchmark measures). Every
section is one run of the full benchmark with the machine, software, commit and command
it ran on; a rerun on the same commit and machine replaces its section, other runs are
kept. Timings are wall-clock seconds; "peak memory" is the peak resident set of the
process that did the work, interpreter and imports included.

Other benchmarks record their results beside this file: RESULTS-api.md (HTTP API load),
RESULTS-server.md (server mode, load and faults), RESULTS-postgres.md,
RESULTS-projection.md, RESULTS-defence.md, RESULTS-forensics.md, RESULTS-audit.md.
"""


def write_results(path: Path, section: str, key: str) -> None:
    text = path.read_text("utf-8") if path.exists() else RESULTS_HEADER
    pattern = re.compile(rf"<!-- run: {re.escape(key)} -->.*?<!-- end run -->\n", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, "utf-8")


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description="escrutinio benchmarks")
    ap.add_argument("--actas", type=int, default=1_000_000, help="synthetic election size")
    ap.add_argument("--seed", type=int, default=2031)
    ap.add_argument("--repeat", type=int, default=5, help="runs per benchmark")
    ap.add_argument("--repeat-large", type=int, default=3,
                    help="runs per synthetic ingest benchmark")
    ap.add_argument("--only", nargs="*", default=None, choices=["ronderos", "synthetic"],
                    help="run only these groups")
    ap.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                    help="first wait up to this long for the CPU to be quiet")
    ap.add_argument("--quiet-below", type=float, default=0.15, metavar="FRACTION",
                    help="quiet: other processes use less than this share of the CPU")
    ap.add_argument("--results", type=Path, default=RESULTS,
                    help="the Markdown file to record in (default: benchmarks/RESULTS.md)")
    ap.add_argument("--commit", default=None,
                    help="record this commit instead of asking git (a run from an exported "
                         "tree, e.g. a baseline)")
    ap.add_argument("--note", default="", help="a note recorded with the run")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where to write the synthetic files (default: a temporary folder)")
    a = ap.parse_args()
    only = set(a.only) if a.only else {"ronderos", "synthetic"}
    busy = wait_quiet(a.wait_quiet, a.quiet_below) if a.wait_quiet else cpu_busy()
    load = os.getloadavg()[0]
    report = Report()
    if "ronderos" in only:
        path = data_dir() / RONDEROS
        if not path.exists():
            sys.exit(f"real data not found: {path} (set ESCRUTINIO_DATA_DIR)")
        print("ronderos: ingest ...", flush=True)
        attempt(report, "ronderos_ingest", bench_ingest, "ronderos", path, a.repeat, 1.0, None)
        print("ronderos: count ...", flush=True)
        attempt(report, "ronderos_count", bench_count, "ronderos", path, a.repeat, 0.2)
    if "synthetic" in only:
        work = a.workdir or Path(tempfile.mkdtemp(prefix="escrutinio-bench-"))
        work.mkdir(parents=True, exist_ok=True)
        try:
            print(f"synthetic: generating {a.actas:,} actas in {work} ...", flush=True)
            if attempt(report, "synthetic_generate", bench_generate, a.actas, a.seed, work):
                for fmt_name, ext in (("parquet", "parquet"), ("csv_gz", "csv.gz")):
                    print(f"synthetic: ingest {ext} ...", flush=True)
                    attempt(report, f"synthetic_ingest_{fmt_name}", bench_ingest, "tabular",
                            work / f"synthetic.{ext}", a.repeat_large, 15.0, 2048.0)
                print("synthetic: count ...", flush=True)
                attempt(report, "synthetic_count", bench_count, "tabular",
                        work / "synthetic.parquet", a.repeat_large, 2.0)
            else:
                for name in ("synthetic_ingest_parquet", "synthetic_ingest_csv_gz",
                             "synthetic_count"):
                    report.fail(name, "not run: the synthetic election was not generated")
        finally:
            if a.workdir is None:
                shutil.rmtree(work, ignore_errors=True)
    commit = a.commit or git_commit()
    m = machine()
    meta = {**m, "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit, "dirty": " + uncommitted changes" if "uncommitted" in commit
            else "", "versions": versions(),
            "command": shlex.join(["python", "benchmarks/run.py", *sys.argv[1:]]),
            "note": a.note,
            "load": f"{load:.2f} (CPU {busy:.0%} busy before starting)",
            "load_end": f"{os.getloadavg()[0]:.2f}", "nice": str(os.nice(0)),
            "key": f"{commit} {m['cpu']} {m['cores']} {m['ram']} "
                   f"{a.actas} {' '.join(sorted(only))} {a.note}".strip()}
    section = render(report, meta)
    print()
    print(section)
    if not a.no_write:
        write_results(a.results, section, meta["key"])
        print(f"recorded in {a.results}")


if __name__ == "__main__":
    main()
