"""Power of the forensic screen: does it see manipulation injected into real actas?

Run:
    .venv/bin/python validation/forensics_power.py run --replicates 40
    .venv/bin/python validation/forensics_power.py summary      # Markdown for RESULTS

Each replicate takes a clean redraw of the Peru 2021 runoff (and first round), injects one
manipulation into k % of the counted actas, runs every test with analytic nulls and
records every p-value and flag. Manipulations (all in favour of Fujimori, the candidate
who lost; see :mod:`escrutinio.forensics.simulate`):

* ``stuffing`` — ballots for her fill 30-80 % of each chosen acta's non-voters;
* ``extreme`` — Klimek's extreme fraud: 95 % of non-voters filled, 90 % of Castillo's
  votes moved to her;
* ``shift`` — 25 % of Castillo's votes in each chosen acta moved to her;
* ``rounding`` — her share and turnout adjusted to whole percentages (Kobak);
* ``digits`` — final digits of every count invented with a preference for 0 and 5.

Detection = at least one Benjamini-Hochberg flag (q = 0.05) for the test (any scope), and
for the screen as a whole; the national p < 0.05 rate is recorded too. Results are
appended to ``validation/forensics_power.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from escrutinio.forensics import run_forensics
from escrutinio.forensics.simulate import (
    inject_fabricated_digits,
    inject_rounding,
    inject_shift,
    inject_stuffing,
    redraw_clean,
)
from escrutinio.sources.onpe_files import parse_ronderos

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ESCRUTINIO_DATA_DIR", REPO.parent / "shared" / "data"))
OUT = REPO / "validation" / "forensics_power.jsonl"

SCENARIOS: dict[str, tuple[float, ...]] = {
    "stuffing": (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05),
    "extreme": (0.0005, 0.001, 0.0025, 0.005, 0.01),
    "shift": (0.0025, 0.005, 0.01, 0.02, 0.05, 0.10),
    "rounding": (0.005, 0.01, 0.02, 0.05, 0.10),
    "digits": (0.01, 0.02, 0.05, 0.10, 0.20),
}
TARGET, OTHER = "fujimori", "castillo"


def inject(kind: str, frame, contest, k: float, rng: np.random.Generator):
    if kind == "stuffing":
        return inject_stuffing(frame, contest, TARGET, k, rng, fill=(0.3, 0.8))
    if kind == "extreme":
        return inject_stuffing(frame, contest, TARGET, k, rng, fill=0.95, steal=0.9)
    if kind == "shift":
        return inject_shift(frame, contest, TARGET, OTHER, k, rng, moved=0.25)
    if kind == "rounding":
        return inject_rounding(frame, contest, TARGET, k, rng)
    if kind == "digits":
        return inject_fabricated_digits(frame, contest, k, rng)
    raise ValueError(kind)


def run(args: argparse.Namespace) -> None:
    r = parse_ronderos(DATA / "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz",
                       as_of="2021-06-17T00:00:00Z")
    f = parse_ronderos(DATA / "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz",
                       as_of="2021-05-11T09:15:00Z")
    out = Path(args.out)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            d = json.loads(line)
            done.add((d["scenario"], d["k"], d["replicate"]))
    kinds = args.scenarios.split(",") if args.scenarios else list(SCENARIOS)
    with out.open("a") as fh:
        for rep_i in range(args.replicates):
            for kind in kinds:
                for k in SCENARIOS[kind]:
                    if (kind, k, rep_i) in done:
                        continue
                    rng = np.random.Generator(np.random.PCG64(
                        [args.seed, rep_i, list(SCENARIOS).index(kind), int(k * 1e6)]))
                    t0 = time.perf_counter()
                    clean = redraw_clean(r.frame, r.contest, rng)
                    prev = redraw_clean(f.frame, f.contest, rng)
                    frame, mask = inject(kind, clean, r.contest, k, rng)
                    rep = run_forensics(frame, r.contest, previous=prev,
                                        previous_contest=f.contest, max_flagged=None,
                                        seed=args.seed)
                    flagged_ids = {a.acta_id for a in rep.flagged_actas}
                    manip_ids = set(frame.filter(mask)["acta_id"].to_list())
                    tests = {f"{t.test}:{t.quantity}": {
                        "p": t.national.p_value, "flagged": t.n_flagged_scopes}
                        for t in rep.tests}
                    row = {"scenario": kind, "k": k, "replicate": rep_i,
                           "n_manipulated": int(mask.sum()), "n_flags": len(rep.flags),
                           "tests": tests, "n_flagged_actas": rep.n_flagged_actas,
                           "flagged_actas_manipulated": len(flagged_ids & manip_ids),
                           "seconds": round(time.perf_counter() - t0, 2)}
                    fh.write(json.dumps(row) + "\n")
                    fh.flush()
                    print(f"{kind} k={k} rep {rep_i}: {len(rep.flags)} flags, "
                          f"{row['flagged_actas_manipulated']}/{row['n_manipulated']} manipulated "
                          f"actas flagged ({row['seconds']} s)", flush=True)


FAMILIES = ("integer", "last_digit", "second_digit", "fingerprint", "place", "panel")


def summary(args: argparse.Namespace) -> None:
    rows = [json.loads(x) for x in Path(args.out).read_text().splitlines()]
    groups: dict[tuple[str, float], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["scenario"], r["k"])].append(r)
    print(f"Machine: {platform.platform()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; date {time.strftime('%Y-%m-%d')}.\n")
    print("Detection rate = share of replicates with at least one Benjamini-Hochberg flag "
          "(q = 0.05, any scope) in the test family; *screen* = any flag at all; *actas* = "
          "share of the manipulated actas that the screen lists individually.\n")
    print("| manipulation | k | actas | n | " + " | ".join(FAMILIES)
          + " | screen | actas listed |")
    print("|---|---|---|---|" + "---|" * len(FAMILIES) + "---|---|")
    for (kind, k), rs in sorted(groups.items(), key=lambda x: (list(SCENARIOS).index(
            x[0][0]) if x[0][0] in SCENARIOS else 99, x[0][1])):
        cells = []
        for fam in FAMILIES:
            det = [any(v["flagged"] > 0 for key, v in r["tests"].items()
                       if key.startswith(fam + ":")) for r in rs
                   if any(key.startswith(fam + ":") for key in r["tests"])]
            cells.append(f"{np.mean(det):.2f}" if det else "—")
        screen = np.mean([r["n_flags"] > 0 for r in rs])
        listed = np.mean([r["flagged_actas_manipulated"] / max(r["n_manipulated"], 1)
                          for r in rs])
        print(f"| {kind} | {k:.2%} | {np.mean([r['n_manipulated'] for r in rs]):,.0f} | "
              f"{len(rs)} | " + " | ".join(cells) + f" | {screen:.2f} | {listed:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--replicates", type=int, default=40)
    r.add_argument("--scenarios", default="")
    r.add_argument("--seed", type=int, default=11)
    r.add_argument("--out", default=str(OUT))
    r.set_defaults(fn=run)
    s = sub.add_parser("summary")
    s.add_argument("--out", default=str(OUT))
    s.set_defaults(fn=summary)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
