"""Coverage of the synthetic counts split by the size of their late batch and its lean.

*Cobertura de los conteos sintéticos según el tamaño del lote tardío y su inclinación.*

Reads the per-projection rows that ``validation/projection_counts.py --out X.json`` writes
beside its summary (``X.rows.jsonl``), rebuilds each count's late batch from its seed
(``validation/count_simulator.py``) and prints the coverage of the 50/80/90/95% intervals
by the late batch's share of the valid votes, for counts whose late batch leans to the
election-day trailer (a US-style mail shift), leans either way (the measured spread) or
does not lean (``--late-leans mild``). It separates what the prior on a vote type with
nothing counted does from the rest of the model.

    .venv/bin/python validation/projection_counts.py --n 1000 --granularity units \
        --sims 2000 --out /tmp/u.json
    .venv/bin/python validation/coverage_by_late_batch.py /tmp/u.rows.jsonl [--late-leans mild]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import count_simulator as cs

BINS = ((0.0, 0.02), (0.02, 0.06), (0.06, 0.10), (0.10, 0.20))
LEVELS = ("0.5", "0.8", "0.9", "0.95")


def _kind(r: dict[str, object]) -> str:
    if r.get("mail"):
        return "to the trailer"
    return "either way" if abs(float(r["late_shift"])) > 0 else "none"  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    late_leans = args[args.index("--late-leans") + 1] if "--late-leans" in args else "measured"
    rows = [json.loads(line) for line in Path(args[0]).read_text().splitlines() if line]
    share = {}
    for seed in sorted({r["seed"] for r in rows}):
        sim = cs.simulate(seed, late_leans=late_leans)
        share[seed] = float(sim.votes[sim.late].sum() / max(sim.votes.sum(), 1))
    print("| late batch (share of votes) | its lean | projections | coverage 50/80/90/95 |")
    print("|---|---|---:|---|")
    for lo, hi in BINS:
        for leans in ("none", "either way", "to the trailer"):
            sel = [r for r in rows if lo <= share[r["seed"]] < hi and _kind(r) == leans]
            if not sel:
                continue
            cov = "/".join(
                f"{100 * np.mean([r['lo'][lv] <= r['final'] <= r['hi'][lv] for r in sel]):.1f}"
                for lv in LEVELS)
            print(f"| {100 * lo:.0f}-{100 * hi:.0f}% | {leans} | "
                  f"{len(sel):,} | {cov} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
