"""Calibration of the forensic screen: does it cry wolf on clean elections?

Run:
    .venv/bin/python validation/forensics_calibration.py run --dataset peru --elections 500
    .venv/bin/python validation/forensics_calibration.py run --dataset chile --elections 500
    .venv/bin/python validation/forensics_calibration.py run --dataset synthetic --elections 200
    .venv/bin/python validation/forensics_calibration.py run --dataset peru --elections 100 \
        --draws 200 --tag mc
    .venv/bin/python validation/forensics_calibration.py summary   # Markdown for RESULTS

Clean elections:
* ``peru`` — the real 2021 runoff actas (86,488) and first-round actas, every counted acta
  redrawn binomially at its own rates (:func:`escrutinio.forensics.simulate.redraw_clean`);
  both rounds are redrawn, so the panel test sees fresh noise in both.
* ``chile`` — the real Chile 2021 first round per mesa (46,606), redrawn the same way
  (no electors: ballots fixed per mesa, their split redrawn; turnout tests do not apply).
* ``synthetic`` — elections from ``benchmarks/synthetic.py`` with a new seed each time
  (86,488 actas; a different, not real, structure), with a clean redraw as "first round".

Each election runs every applicable test with analytic nulls (``--draws 0``) or with
Monte-Carlo nulls (``--draws B``), and records every p-value (national and per scope).
Results are appended to ``validation/forensics_calibration.jsonl`` (one line per election).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from escrutinio.forensics import run_forensics
from escrutinio.forensics.simulate import redraw_clean
from escrutinio.sources.chile import CHILE_2021_FIRST_ROUND, chile_2021_actas
from escrutinio.sources.onpe_files import parse_ronderos

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ESCRUTINIO_DATA_DIR", REPO.parent / "shared" / "data"))
OUT = REPO / "validation" / "forensics_calibration.jsonl"
ALPHAS = (0.01, 0.05, 0.10)


def load(dataset: str):
    if dataset == "peru":
        r = parse_ronderos(DATA / "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz",
                           as_of="2021-06-17T00:00:00Z")
        f = parse_ronderos(DATA / "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz",
                           as_of="2021-05-11T09:15:00Z")
        return r.frame, r.contest, f.frame, f.contest
    if dataset == "chile":
        frame, _ = chile_2021_actas(DATA / "chile-2021-first-round/chile_election_2021.csv.gz")
        return frame, CHILE_2021_FIRST_ROUND, None, None
    raise ValueError(dataset)


def synthetic(seed: int):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from synthetic import generate  # type: ignore[import-not-found]

    el = generate(86_488, seed=seed)
    prev = redraw_clean(el.frame, el.contest, np.random.Generator(np.random.PCG64(seed + 1)))
    return el.frame, el.contest, prev, el.contest


def _p(x: float | None) -> float | None:
    """Per-region p-values are kept to 4 significant digits (ample for rates at
    a >= 0.01); national ones in full, since exact discrete p-values can sit at a level."""
    return None if x is None else float(f"{x:.4g}")


def record(rep, dataset: str, election: int, draws: int, tag: str, seconds: float) -> dict:
    tests = {}
    for t in rep.tests:
        tests[f"{t.test}:{t.quantity}"] = {
            "p": t.national.p_value,
            "method": t.national.p_method,
            "scopes": [_p(r.p_value) for r in t.scopes[1:] if r.n_units > 0],
            "flagged": t.n_flagged_scopes,
        }
    return {"dataset": dataset, "election": election, "draws": draws, "tag": tag,
            "seconds": round(seconds, 2), "n_flags": len(rep.flags),
            "n_hypotheses": rep.n_hypotheses, "tests": tests}


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    base = None if args.dataset == "synthetic" else load(args.dataset)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            d = json.loads(line)
            if d["dataset"] == args.dataset and d["tag"] == args.tag:
                done.add(d["election"])
    with out.open("a") as fh:
        for e in range(args.start, args.start + args.elections):
            if e in done:
                continue
            rng = np.random.Generator(np.random.PCG64([args.seed, e]))
            t0 = time.perf_counter()
            if base is None:
                frame, contest, prev, prev_contest = synthetic(10_000 + e)
                frame = redraw_clean(frame, contest, rng)
            else:
                frame0, contest, prev0, prev_contest = base
                frame = redraw_clean(frame0, contest, rng)
                prev = None if prev0 is None else redraw_clean(prev0, prev_contest, rng)
            rep = run_forensics(frame, contest, previous=prev, previous_contest=prev_contest,
                                draws=args.draws, seed=args.seed * 100_000 + e,
                                max_flagged=0)
            fh.write(json.dumps(record(rep, args.dataset, e, args.draws, args.tag,
                                       time.perf_counter() - t0)) + "\n")
            fh.flush()
            print(f"{args.dataset} {args.tag} election {e}: {len(rep.flags)} flags "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)


def _se(a: float, n: int) -> float:
    return math.sqrt(a * (1 - a) / max(n, 1))


def summary(args: argparse.Namespace) -> None:
    path = Path(args.out)
    if not path.exists() and Path(str(path) + ".gz").exists():
        path = Path(str(path) + ".gz")
    text = (gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz"
            else path.read_text())
    rows = [json.loads(x) for x in text.splitlines()]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["dataset"], r["tag"])].append(r)
    print(f"Machine: {platform.platform()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; date {time.strftime('%Y-%m-%d')}.\n")
    for (dataset, tag), rs in sorted(groups.items()):
        n = len(rs)
        draws = rs[0]["draws"]
        secs = np.median([r["seconds"] for r in rs])
        print(f"### {dataset} — {n} clean elections, "
              f"{'analytic nulls' if draws == 0 else f'{draws} Monte-Carlo draws'}"
              f" (tag {tag}; median {secs:.1f} s per election)\n")
        print("False-alarm rate of the **national** p-value at level a (MC error: "
              "2·SE = 2·sqrt(a(1−a)/n)); *scopes* = share of the per-region p-values "
              "below a.\n")
        print("| test | quantity | p method | n | a=0.01 | a=0.05 | a=0.10 | scopes a=0.05 | "
              "<= a + 2 SE |")
        print("|---|---|---|---|---|---|---|---|---|")
        keys = sorted({k for r in rs for k in r["tests"]})
        for k in keys:
            ps = np.array([r["tests"][k]["p"] for r in rs if k in r["tests"]])
            sc = np.concatenate([np.asarray(r["tests"][k]["scopes"], dtype=float)
                                 for r in rs if k in r["tests"]] or [np.zeros(0)])
            method = next(r["tests"][k]["method"] for r in rs if k in r["tests"])
            rates = [float(np.mean(ps < a)) for a in ALPHAS]
            ok = all(rt <= a + 2 * _se(a, len(ps)) for rt, a in zip(rates, ALPHAS,
                                                                   strict=True))
            t, q = k.split(":")
            sc_rate = float(np.mean(sc < 0.05)) if len(sc) else float("nan")
            print(f"| {t} | {q} | {method} | {len(ps)} | {rates[0]:.3f} | {rates[1]:.3f} | "
                  f"{rates[2]:.3f} | {sc_rate:.3f} | {'yes' if ok else '**no**'} |")
        anyflag = np.mean([r["n_flags"] > 0 for r in rs])
        m = np.median([r["n_hypotheses"] for r in rs])
        print(f"\nBenjamini-Hochberg at q = 0.05 over all scopes × tests × quantities "
              f"(median {m:.0f} hypotheses): elections with at least one flag "
              f"{anyflag:.3f} (under the global null this is the FDR, ≤ 0.05); mean flags "
              f"per election {np.mean([r['n_flags'] for r in rs]):.3f}.\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--dataset", choices=["peru", "chile", "synthetic"], required=True)
    r.add_argument("--elections", type=int, default=500)
    r.add_argument("--start", type=int, default=0)
    r.add_argument("--draws", type=int, default=0)
    r.add_argument("--seed", type=int, default=7)
    r.add_argument("--tag", default="analytic")
    r.add_argument("--out", default=str(OUT))
    r.set_defaults(fn=run)
    s = sub.add_parser("summary")
    s.add_argument("--out", default=str(OUT))
    s.set_defaults(fn=summary)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
