"""Speed of the defence-of-the-vote analyses on the real 2021 runoff (issue 4).

Targets: reconciling 86,488 observer copies <= 2 s; 1,000 simulated quick counts <= 30 s.
Also timed: reading the copies file, drawing the public SHA-256 sample, one quick-count
estimate, and the contested-actas analysis (20,000 simulations).

Run:  .venv/bin/python benchmarks/bench_defence.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from escrutinio.defence import contested as ct
from escrutinio.defence import quickcount as qc
from escrutinio.defence.generator import generate_copies
from escrutinio.defence.observers import parse_observer_copies, write_observer_copies
from escrutinio.defence.pvt import reconcile
from escrutinio.defence.strata import assign_strata, peru_urban_districts
from escrutinio.sources.onpe_files import parse_provisional, parse_ronderos
from escrutinio.sources.peru import PERU_2021_RUNOFF

N_COPIES = 86_488


def data_dir() -> Path:
    env = os.environ.get("ESCRUTINIO_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    d = data_dir()
    actas = d / "peru-2021-runoff/actas"
    final = parse_ronderos(actas / "actas_electorales_ronderos.pe.csv.gz",
                           as_of="2021-06-17T00:00:00Z").frame
    g = generate_copies(final, PERU_2021_RUNOFF, coverage=1.0, seed=1)
    copies = g.copies.head(N_COPIES)
    assert copies.height == N_COPIES
    print(f"# Defence benchmarks — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"polars {pl.__version__}")
    print(f"command: benchmarks/bench_defence.py --repeat {args.repeat}\n")
    print("| task | best s | median s | target |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        path = write_observer_copies(copies, Path(tmp) / "copies.csv")
        b, m, parsed = timed(lambda: parse_observer_copies(path, PERU_2021_RUNOFF), args.repeat)
        print(f"| read {N_COPIES:,} copies (CSV, strict) | {b:.2f} | {m:.2f} | |")
    b, m, res = timed(lambda: reconcile(parsed.frame, g.official, PERU_2021_RUNOFF,
                                        copy_codes=g.copy_codes), args.repeat)
    ok = "yes" if b <= 2 else "NO"
    print(f"| reconcile {N_COPIES:,} copies ({res.summary.n_alarms:,} alarms) | {b:.2f} | "
          f"{m:.2f} | <= 2 s: {ok} |")
    universe = assign_strata(final, peru_urban_districts(d / "peru-geography/ubigeo_distrito.csv"))
    plan = qc.design(universe, n_mesas=1500)
    b, m, sample = timed(lambda: qc.draw_sample(universe, plan, "8 1 6 3 5"), args.repeat)
    print(f"| public SHA-256 sample of 1,500 among 86,488 mesas | {b:.2f} | {m:.2f} | |")
    reports = final.join(sample.select("acta_id"), on="acta_id")
    b, m, _ = timed(lambda: qc.estimate(universe, reports, ("castillo", "fujimori")),
                    args.repeat)
    print(f"| one quick-count estimate (2,000 bootstrap, 4,000 posterior draws) | {b:.2f} | "
          f"{m:.2f} | |")
    b, m, sim = timed(lambda: qc.simulate(universe, final, ("castillo", "fujimori"),
                                          n_mesas=1500, n_sims=1000, seed=1),
                      max(1, args.repeat - 1))
    ok = "yes" if b <= 30 else "NO"
    print(f"| 1,000 simulated quick counts of 1,500 mesas (400 bootstrap + 1,000 posterior "
          f"draws each; coverage {sim.coverage_combined:.3f}) | {b:.2f} | {m:.2f} | "
          f"<= 30 s: {ok} |")
    j8 = parse_provisional(actas / "hist_actas_electorales_20210608T1121_cadd76f.csv.gz").frame
    j15 = parse_provisional(actas / "actas_electorales.csv.gz").frame
    b, m, _ = timed(lambda: ct.analyse_contested(j15, PERU_2021_RUNOFF, earlier=[j8],
                                                 n_sims=20_000), args.repeat)
    print(f"| contested actas, 15 June (1,354 actas, 20,000 simulations) | {b:.2f} | {m:.2f} "
          "| |")


if __name__ == "__main__":
    main()
