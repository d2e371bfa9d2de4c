"""Power of the forensic screen: does it see manipulation injected into real actas?

Run:
    .venv/bin/python validation/forensics_power.py run --replicates 40
    .venv/bin/python validation/forensics_power.py run --dataset chile --replicates 20
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

``--dataset chile`` is a held-out check on another country's structure (Chile 2021 first
round per mesa: no electors, seven candidates, Chilean mesas and locales; the tests were
tuned on Peru): ``shift``, ``rounding`` and ``digits`` in favour of Kast (stuffing needs
electors per mesa, which the Chilean file does not have), no previous round.

Detection = at least one Benjamini-Hochberg flag (q = 0.05) for the test (any scope), and
for the screen as a whole; the national p < 0.05 rate is recorded too. Results are
appended to ``validation/forensics_power.jsonl``.
"""

from __future__ import annotations

import argparse
import gzip
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
from escrutinio.sources.chile import CHILE_2021_FIRST_ROUND, chile_2021_actas
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
#: held-out country: no electors per mesa, so no stuffing scenarios
CHILE_SCENARIOS = ("shift", "rounding", "digits")
CHILE_TARGET, CHILE_OTHER = "kast", "boric"


def inject(kind: str, frame, contest, k: float, rng: np.random.Generator,
           target: str = TARGET, other: str = OTHER):
    if kind == "stuffing":
        return inject_stuffing(frame, contest, target, k, rng, fill=(0.3, 0.8))
    if kind == "extreme":
        return inject_stuffing(frame, contest, target, k, rng, fill=0.95, steal=0.9)
    if kind == "shift":
        return inject_shift(frame, contest, target, other, k, rng, moved=0.25)
    if kind == "rounding":
        return inject_rounding(frame, contest, target, k, rng)
    if kind == "digits":
        return inject_fabricated_digits(frame, contest, k, rng)
    raise ValueError(kind)


def run(args: argparse.Namespace) -> None:
    if args.dataset == "chile":
        base, _ = chile_2021_actas(DATA / "chile-2021-first-round/chile_election_2021.csv.gz")
        contest, prev_base, prev_contest = CHILE_2021_FIRST_ROUND, None, None
        target, other, allowed = CHILE_TARGET, CHILE_OTHER, CHILE_SCENARIOS
    else:
        r = parse_ronderos(
            DATA / "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz",
            as_of="2021-06-17T00:00:00Z")
        f = parse_ronderos(
            DATA / "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz",
            as_of="2021-05-11T09:15:00Z")
        base, contest, prev_base, prev_contest = r.frame, r.contest, f.frame, f.contest
        target, other, allowed = TARGET, OTHER, tuple(SCENARIOS)
    out = Path(args.out)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            d = json.loads(line)
            done.add((d.get("dataset", "peru"), d["scenario"], d["k"], d["replicate"]))
    kinds = args.scenarios.split(",") if args.scenarios else list(allowed)
    bad = [k for k in kinds if k not in allowed]
    if bad:
        raise SystemExit(f"scenarios not available for {args.dataset}: {bad}")
    with out.open("a") as fh:
        for rep_i in range(args.replicates):
            for kind in kinds:
                for k in SCENARIOS[kind]:
                    if (args.dataset, kind, k, rep_i) in done:
                        continue
                    seq = [args.seed, rep_i, list(SCENARIOS).index(kind), int(k * 1e6)]
                    if args.dataset != "peru":
                        seq.append(1)  # a stream of its own per dataset
                    rng = np.random.Generator(np.random.PCG64(seq))
                    t0 = time.perf_counter()
                    clean = redraw_clean(base, contest, rng)
                    prev = (None if prev_base is None
                            else redraw_clean(prev_base, prev_contest, rng))
                    frame, mask = inject(kind, clean, contest, k, rng, target, other)
                    rep = run_forensics(frame, contest, previous=prev,
                                        previous_contest=prev_contest, max_flagged=None,
                                        seed=args.seed)
                    flagged_ids = {a.acta_id for a in rep.flagged_actas}
                    manip_ids = set(frame.filter(mask)["acta_id"].to_list())
                    tests = {f"{t.test}:{t.quantity}": {
                        "p": t.national.p_value, "flagged": t.n_flagged_scopes}
                        for t in rep.tests}
                    row = {"dataset": args.dataset, "scenario": kind, "k": k, "replicate": rep_i,
                           "n_manipulated": int(mask.sum()), "n_flags": len(rep.flags),
                           "tests": tests, "n_flagged_actas": rep.n_flagged_actas,
                           "flagged_actas_manipulated": len(flagged_ids & manip_ids),
                           "seconds": round(time.perf_counter() - t0, 2)}
                    fh.write(json.dumps(row) + "\n")
                    fh.flush()
                    print(f"{args.dataset} {kind} k={k} rep {rep_i}: {len(rep.flags)} flags, "
                          f"{row['flagged_actas_manipulated']}/{row['n_manipulated']} manipulated "
                          f"actas flagged ({row['seconds']} s)", flush=True)


FAMILIES = ("integer", "last_digit", "second_digit", "fingerprint", "place", "panel")


def summary(args: argparse.Namespace) -> None:
    path = Path(args.out)
    if not path.exists() and Path(str(path) + ".gz").exists():
        path = Path(str(path) + ".gz")
    text = (gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz"
            else path.read_text())
    rows = [json.loads(x) for x in text.splitlines()]
    groups: dict[tuple[str, str, float], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r.get("dataset", "peru"), r["scenario"], r["k"])].append(r)
    print(f"Machine: {platform.platform()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; date {time.strftime('%Y-%m-%d')}.\n")
    print("Detection rate = share of replicates with at least one Benjamini-Hochberg flag "
          "(q = 0.05, any scope) in the test family; *screen* = any flag at all; *actas* = "
          "share of the manipulated actas that the screen lists individually.\n")
    print("| data | manipulation | k | actas | n | " + " | ".join(FAMILIES)
          + " | screen | actas listed |")
    print("|---|---|---|---|---|" + "---|" * len(FAMILIES) + "---|---|")
    for (ds, kind, k), rs in sorted(groups.items(), key=lambda x: (
            x[0][0] != "peru", x[0][0], list(SCENARIOS).index(x[0][1])
            if x[0][1] in SCENARIOS else 99, x[0][2])):
        cells = []
        for fam in FAMILIES:
            det = [any(v["flagged"] > 0 for key, v in r["tests"].items()
                       if key.startswith(fam + ":")) for r in rs
                   if any(key.startswith(fam + ":") for key in r["tests"])]
            cells.append(f"{np.mean(det):.2f}" if det else "—")
        screen = np.mean([r["n_flags"] > 0 for r in rs])
        listed = np.mean([r["flagged_actas_manipulated"] / max(r["n_manipulated"], 1)
                          for r in rs])
        print(f"| {ds} | {kind} | {k:.2%} | {np.mean([r['n_manipulated'] for r in rs]):,.0f} | "
              f"{len(rs)} | " + " | ".join(cells) + f" | {screen:.2f} | {listed:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--dataset", choices=["peru", "chile"], default="peru")
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
