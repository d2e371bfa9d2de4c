"""Audit benchmarks: plan for the 2021 runoff (86,488 actas) <= 1 s; for 1,000,000 batches
<= 10 s; plus the public samplers and a measurement.

Run: .venv/bin/python benchmarks/bench_audit.py   (prints Markdown for RESULTS-audit.md)
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from escrutinio.audit.measure import HandCount, measure_risk
from escrutinio.audit.model import build_population, population_from_arrays
from escrutinio.audit.plan import plan_audit
from escrutinio.audit.sampling import consistent_sample, ppeb_draws
from escrutinio.audit.simulate import SIM_CONTEST
from escrutinio.sources.onpe_files import parse_ronderos

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ESCRUTINIO_DATA_DIR", REPO.parent / "shared" / "data"))


def timed(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    snap = parse_ronderos(DATA / "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz",
                          as_of="2021-06-17T00:00:00Z")
    rows = []

    def peru_plan() -> object:
        pop = build_population(snap.frame, snap.contest, snapshot_id=snap.snapshot_id)
        return plan_audit(pop)

    plan_audit(build_population(snap.frame, snap.contest))  # warm-up
    t, _ = timed(peru_plan)
    rows.append(("plan, 2021 runoff (86,488 actas; population + all methods, 5% and 10%, "
                 "200,000 simulated audits per method and limit, as audit sample)", t, 5.0))

    rng = np.random.Generator(np.random.PCG64(1))
    n = 1_000_000
    ballots = rng.integers(100, 301, n)
    valid = (ballots * 0.92).astype(np.int64)
    w = np.round(valid * np.clip(rng.normal(0.505, 0.12, n), 0.02, 0.98)).astype(np.int64)
    votes = np.column_stack([w, valid - w])
    ids = [f"{i:07d}" for i in range(1, n + 1)]

    def big_plan() -> object:
        pop = population_from_arrays(SIM_CONTEST, ids, votes, ballots)
        return plan_audit(pop)

    t, plan = timed(big_plan, repeat=1)
    rows.append((f"plan, 1,000,000 synthetic batches (margin {plan.margins[0]:,} votes, "
                 f"U = {float(plan.total_bound):,.0f})", t, 10.0))

    pop = build_population(snap.frame, snap.contest)
    t, d = timed(lambda: ppeb_draws("20210606153000219843", pop.weights, 1_500))
    rows.append(("PPEB, 1,500 SHA-256 draws over 86,488 actas", t, None))
    id_list = list(pop.ids.astype(str))
    t, _ = timed(lambda: consistent_sample(id_list, "20210606153000219843", take=3_000),
                 repeat=1)
    rows.append(("consistent sampler, tickets for 86,488 actas (first 3,000)", t, None))
    counts = {str(pop.ids[p]): HandCount(str(pop.ids[p]), tuple(int(v) for v in pop.votes[p]),
                                         0, int(pop.cast[p] - pop.votes[p].sum()), 0)
              for p in set(d.positions.tolist())}
    t, _ = timed(lambda: measure_risk(pop, d.positions, counts, risk_limit=0.05))
    rows.append(("measure, 1,500 draws (exact Kaplan-Markov + ALPHA)", t, None))

    print(f"Machine: {platform.platform()}, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, numpy {np.__version__}; date {time.strftime('%Y-%m-%d')}; "
          "command `.venv/bin/python benchmarks/bench_audit.py` (median of 3 runs, 1 for the "
          "million and the ticket run).\n")
    print("| task | seconds | target | met |")
    print("|---|---|---|---|")
    for name, sec, target in rows:
        met = "—" if target is None else ("yes" if sec <= target else "**no**")
        print(f"| {name} | {sec:.3f} | {'—' if target is None else f'<= {target:g} s'} | "
              f"{met} |")


if __name__ == "__main__":
    main()
