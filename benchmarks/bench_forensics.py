"""Forensic screen benchmarks (targets from issue 5):

* every test on the 86,488 actas of the 2021 runoff (with its first round for the panel
  test), exact/analytic nulls only: <= 5 s;
* the same with 1,000 Monte-Carlo draws (integer-percentage and last-digit nulls): <= 60 s;
* linear scaling to 1,000,000 stations (synthetic elections from ``synthetic.py``, with a
  clean redraw of themselves as "first round").

Run: .venv/bin/python benchmarks/bench_forensics.py [--max-actas 1000000] [--repeat 3]
(prints Markdown for RESULTS-forensics.md). Times are wall-clock medians of ``--repeat``
runs of :func:`escrutinio.forensics.run_forensics` on frames already in memory (parsing
excluded); peak memory is the process's peak resident set so far.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from escrutinio.forensics import run_forensics
from escrutinio.forensics.simulate import redraw_clean
from escrutinio.sources.onpe_files import parse_ronderos

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = Path(os.environ.get("ESCRUTINIO_DATA_DIR", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(HERE))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-actas", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--draws", type=int, default=1000)
    args = ap.parse_args()
    from synthetic import generate  # type: ignore[import-not-found]

    r = parse_ronderos(DATA / "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz",
                       as_of="2021-06-17T00:00:00Z")
    f = parse_ronderos(DATA / "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz",
                       as_of="2021-05-11T09:15:00Z")
    load0 = os.getloadavg()
    rows: list[tuple[str, float, str, str]] = []
    run_forensics(r.frame, r.contest, tests=["integer"])  # warm imports and caches
    t, _ = timed(lambda: run_forensics(r.frame, r.contest, previous=f.frame,
                                       previous_contest=f.contest), args.repeat)
    rows.append(("all six tests, Peru 2021 runoff (86,488 actas) + first round, exact nulls",
                 t, "<= 5 s", "yes" if t <= 5 else "no"))
    t, _ = timed(lambda: run_forensics(r.frame, r.contest, previous=f.frame,
                                       previous_contest=f.contest, draws=args.draws,
                                       seed=1), 1)
    rows.append((f"the same with {args.draws:,} Monte-Carlo draws", t, "<= 60 s",
                 "yes" if t <= 60 else "no"))
    scale: list[tuple[int, float, float]] = []
    for n in (86_488, 250_000, 500_000, 1_000_000):
        if n > args.max_actas:
            break
        el = generate(n, seed=7)
        prev = redraw_clean(el.frame, el.contest, np.random.Generator(np.random.PCG64(8)))
        rep_n = 1 if n >= 500_000 else args.repeat
        t, rep = timed(lambda el=el, prev=prev: run_forensics(
            el.frame, el.contest, previous=prev, previous_contest=el.contest), rep_n)
        analysed = rep.filters["actas_analysed"]  # type: ignore[attr-defined]
        scale.append((n, t, t / analysed * 1e6))
    load1 = os.getloadavg()
    print("# Forensics benchmarks\n")
    print(f"Machine: {platform.platform()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, numpy {np.__version__}; date {time.strftime('%Y-%m-%d')}; "
          f"command `.venv/bin/python benchmarks/bench_forensics.py "
          f"{' '.join(sys.argv[1:])}`; load average {load0[0]:.1f} → {load1[0]:.1f}; "
          f"peak memory {peak_mb():,.0f} MB.\n")
    print("| task | seconds | target | met |\n|---|---|---|---|")
    for name, t, target, met in rows:
        print(f"| {name} | {t:.2f} | {target} | {met} |")
    print("\nScaling (synthetic elections, all six tests, exact nulls; µs per analysed "
          "acta should stay flat for linear cost):\n")
    print("| actas | seconds | µs per analysed acta |\n|---|---|---|")
    for n, t, per in scale:
        print(f"| {n:,} | {t:.2f} | {per:.1f} |")


if __name__ == "__main__":
    main()
