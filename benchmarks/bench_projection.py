"""Speed of the projection (issue 3, point 7). Not a test: run it and record the numbers
in benchmarks/RESULTS-projection.md.

    .venv/bin/python benchmarks/bench_projection.py [--skip-replay] [--repeat 3]

1. **10,000 simulations from a Peru-sized snapshot** (≤ 1 s): a synthetic runoff of 86,488
   actas (benchmarks/synthetic.py) and, when the shared data is there, the real 2021
   per-acta state of 8 June 16:15Z with the first round as baseline; the time of the
   model fit (``prepare_actas``) and of the 10,000 simulations (``simulate``) apart.
2. **Full 2021 replay** (≤ 60 s): validation/replay_2021.py's per-acta replay (loading
   the files, deriving the arrival order, 48 cuts × 10,000 simulations, each cut with
   the earlier ones as history); and one projection of a cut with 24 earlier cuts as
   history, nothing cached (what ``escrutinio project`` pays on a count night).
3. **1,000,000-acta synthetic snapshot** (≤ 15 s): fit + 10,000 simulations (the time to
   generate the synthetic frame is not counted).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))

from synthetic import generate

from escrutinio.projection.engine import simulate
from escrutinio.projection.model import ModelParams, prepare_actas, prepare_baseline


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_snapshot(frame, contest, baseline, repeat: int, label: str) -> dict[str, float]:
    params = ModelParams(n_sims=10_000)
    t_prep, prep = best_of(lambda: prepare_actas(frame, contest, baseline=baseline,
                                                 params=params), repeat)
    t_sim, _ = best_of(lambda: simulate(contest, prep.counted, prep.cells, prep.shocks,
                                        n_sims=10_000, seed=0, basis="actas"), repeat)
    print(f"| {label} | {frame.height:,} | {prep.cells.m.shape[0]} | {t_prep:.3f} | "
          f"{t_sim:.3f} | {t_prep + t_sim:.3f} |")
    return {"prepare": t_prep, "simulate": t_sim}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-replay", action="store_true")
    args = ap.parse_args()
    print(f"Machine: {platform.machine()} {platform.system()} {platform.release()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy "
          f"{np.__version__}\n")
    print("| snapshot | actas | cells | fit (s) | 10,000 simulations (s) | total (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    peru = generate(86_488, seed=2031)
    bench_snapshot(peru.frame, peru.contest, None, args.repeat,
                   "synthetic, Peru-sized, no baseline")
    try:
        import replay_2021 as r21

        d = r21.data_dir()
        from escrutinio.sources import onpe_files

        state = onpe_files.parse_provisional(
            d / "peru-2021-runoff/actas/hist_actas_electorales_20210608T1121_cadd76f.csv.gz")
        first = onpe_files.parse_ronderos(
            d / "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz",
            as_of="2021-05-11T09:15:00Z")
        base = prepare_baseline(first.frame)
        from escrutinio.sources.peru import PERU_2021_RUNOFF

        bench_snapshot(state.frame, PERU_2021_RUNOFF, base, args.repeat,
                       "Peru 2021, 8 Jun 16:15Z, first round as baseline")
    except Exception as exc:  # the shared data may be absent
        print(f"(real 2021 snapshot skipped: {exc})")
    t = time.perf_counter()
    big = generate(1_000_000, seed=7)
    t_gen = time.perf_counter() - t
    bench_snapshot(big.frame, big.contest, None, 1, "synthetic, 1,000,000 actas")
    print(f"\n(generating the 1,000,000-acta frame took {t_gen:.1f} s, not counted)\n")

    if not args.skip_replay:
        import replay_2021 as r21

        t = time.perf_counter()
        from escrutinio.projection.replay import replay_actas
        from escrutinio.sources.peru import PERU_2021_RUNOFF

        data = r21.load(r21.data_dir())
        order = r21.build_order(data, seed=2021)
        res = replay_actas(order, PERU_2021_RUNOFF, baseline=prepare_baseline(
            data["first"].frame), params=ModelParams(n_sims=10_000),
            final=r21.final_votes(data))
        total = time.perf_counter() - t
        print(f"Full 2021 per-acta replay (load files + arrival order + {res.n_cuts} cuts × "
              f"10,000 simulations): {total:.1f} s (projections alone "
              f"{res.elapsed_seconds:.1f} s); wrong calls {len(res.wrong_calls)}")
        # one projection as the CLI makes it on a count night: a cut with its earlier cuts
        # as history, nothing cached (every earlier cut replayed is fitted)
        from escrutinio.projection import model as pm
        from escrutinio.projection.model import project_actas

        i = 24
        hist = [order.snapshot(j).select("acta_id", "status") for j in range(i)]
        now = order.snapshot(i)
        base = prepare_baseline(data["first"].frame)
        times = []
        for _ in range(args.repeat):
            pm._FIT_CACHE.clear()
            t = time.perf_counter()
            p = project_actas(now, PERU_2021_RUNOFF, baseline=base,
                              params=ModelParams(n_sims=10_000), history=hist)
            times.append(time.perf_counter() - t)
        arr = p.diagnostics["arrival"]
        print(f"One per-acta projection with {i} earlier cuts as history "
              f"({arr['n_backtests']} replayed, none cached; cut {i + 1} of {res.n_cuts}, "
              f"{order.cuts[i].label}): best {min(times):.2f} s of {args.repeat}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
