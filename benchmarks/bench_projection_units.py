"""Speed of the per-unit and series projections with the drift model (issue 13, point 8).

Targets: one per-unit projection with 10,000 simulations <= 0.5 s in-process; a replay
of 500 per-unit cuts (each projected with every earlier cut as history, 10,000
simulations) <= 60 s on 2 cores.

    .venv/bin/python benchmarks/bench_projection_units.py [--cuts 500] [--sims 10000]

Inputs: a synthetic count (``validation/count_simulator.py``, seed 7: 25 regions + 5
continents, the late batch published apart: 55 unit rows + the national row) cut 500
times between 20% and 99.5% of actas; and, when the shared data are there, the real
2021 district snapshot of 8 June 00:54 UTC (1,874 districts + abroad) with its earlier
district cuts as history.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "validation"))

import count_simulator as cs  # noqa: E402

from escrutinio.projection.model import ModelParams  # noqa: E402
from escrutinio.projection.units import project_series, project_units  # noqa: E402


def best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cuts", type=int, default=500)
    ap.add_argument("--sims", type=int, default=10_000)
    a = ap.parse_args(argv)
    params = ModelParams(n_sims=a.sims, seed=0)
    sim = cs.simulate(7)
    fr = np.linspace(0.2, 0.995, a.cuts)
    frames = cs.unit_frames(sim, cs.cut_sizes(sim, fr), typed=True)
    series = cs.series(sim, cs.cut_sizes(sim, fr))
    rows = []
    i = int(0.8 * a.cuts)
    t1 = best_of(lambda: project_units(frames[i], cs.CONTEST, params=params,
                                       history=frames[:i]))
    rows.append((f"one per-unit projection, 56 rows, {i} earlier cuts, {a.sims:,} sims", t1,
                 0.5))
    t2 = best_of(lambda: project_series(series[: i + 1], cs.CONTEST, params=params))
    rows.append((f"one series projection, {i + 1} cuts, {a.sims:,} sims", t2, 0.5))
    data = Path(os.environ.get("ESCRUTINIO_DATA_DIR", ROOT.parent / "shared" / "data"))
    if (data / "peru-2021-runoff").is_dir():
        sys.path.insert(0, str(ROOT / "validation"))
        import replay_2021 as r21

        snaps = [s for s in r21.unit_snapshots(r21.load(data))
                 if s[1]["level"][0] == "area3"]
        last = snaps[-1]
        hist = tuple(s[1] for s in snaps[:-1])
        t3 = best_of(lambda: project_units(last[1], r21.PERU_2021_RUNOFF, params=params,
                                           parents=last[2]["parents"], history=hist))
        rows.append((f"one per-unit projection, Peru 2021 districts ({last[1].height:,} "
                     f"rows, {len(hist)} earlier cuts), {a.sims:,} sims", t3, 0.5))
    t0 = time.perf_counter()
    for j in range(a.cuts):
        project_units(frames[j], cs.CONTEST, params=params, history=frames[:j])
    t4 = time.perf_counter() - t0
    rows.append((f"replay of {a.cuts} per-unit cuts (each with all earlier cuts), "
                 f"{a.sims:,} sims each", t4, 60.0))
    print(f"# Per-unit / series projection speed — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, numpy {np.__version__}; load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| what | seconds | target |\n|---|---:|---:|")
    for what, t, target in rows:
        print(f"| {what} | {t:.3f} | <= {target:g} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
