"""The headline rule (docs/design.md, "Headlines") on 500+ simulated clean elections and on
stuffed ones.

Run (about 5 minutes on one core):
    .venv/bin/python validation/forensics_headlines.py --clean 520 --stuffed 100

Clean elections: :func:`escrutinio.forensics.simulate.small_election` with a new seed and
a new structure each (6 regions × 4 provinces × 4 districts × 3 polling places, 6-14
mesas each: ~2,900 actas), alternating a runoff and a four-candidate first round with a
50 % majority rule. Each runs the whole screen (every test, analytic nulls, Kobak's
combined count with its default Monte-Carlo draws, Klimek's fit with 10 bootstrap
replicates).

For every report, every sentence of the summary, the verdicts, the stakes and the
Klimek fit (Spanish and English) is checked: no claim of an anomaly, of mattering for the
result or of changing the winner unless a flag survived FDR; "matters" exactly when a
deciding line's worst case is reached by actas in flagged scopes; never "nothing
remains"; never p = 0. Under the global null BH at q = 0.05 flags an election with
probability <= 0.05 (the false-flag rate printed below).

Stuffed elections: the same generator (8 regions), 4 % of the actas stuffed for the
second candidate (Klimek's extreme fraud: 95 % of non-voters, 90 % of the others'
votes). Recorded: flagged at all, flagged for the right candidate only, share of the
stuffed actas counted in the stakes, and whether the stakes say they matter.

Prints a Markdown table (for validation/RESULTS-forensics.md) and writes one JSON line
per election to validation/forensics_headlines.jsonl.gz.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from escrutinio import __version__
from escrutinio.forensics import run_forensics
from escrutinio.forensics.simulate import (
    SMALL_FIRST_ROUND,
    SMALL_RUNOFF,
    inject_stuffing,
    small_election,
)
from escrutinio.provenance import to_jsonable

HERE = Path(__file__).resolve().parent
CLAIM_WORDS = re.compile(
    r"anomal|matters? for the result|importan? para el resultado|change the winner|"
    r"cambiar al ganador|reaches the (margin|line)|alcanza (el margen|la línea)",
    re.IGNORECASE)
SHOUTED = re.compile(r"ANOMAL(Y|ÍA)")
NEGATION = re.compile(r"\b(no|not|none|ninguna?|sin|cannot|ni|neither|nor)\b", re.IGNORECASE)
NOTHING_REMAINS = re.compile(
    r"nothing (remains|left)|no votes? remains?|no (queda|quedan) (nada|votos|actas)",
    re.IGNORECASE)
ZERO_P = re.compile(r"\bp = 0(\.0+)?(e\+?0+)?\b(?![.\d])")


def claims(text: str) -> list[str]:
    out = []
    for s in re.split(r"(?<=[.;:!?])\s+|\n+", text):
        if SHOUTED.search(s) or (CLAIM_WORDS.search(s) and not NEGATION.search(s)):
            out.append(s)
    return out


def texts(doc: dict[str, Any]) -> list[str]:
    out = [doc["summary_es"], doc["summary_en"], doc["stakes"]["text_es"],
           doc["stakes"]["text_en"]]
    for t in doc["tests"]:
        out += [t["verdict_es"], t["verdict_en"]]
    out += [k[f] for k in doc["klimek"] for f in ("text_es", "text_en")]
    return out


def violations(doc: dict[str, Any]) -> list[str]:
    """What breaks the headline rule in one report (empty: nothing)."""
    bad: list[str] = []
    said = [c for t in texts(doc) for c in claims(t)]
    if said and not doc["flags"]:
        bad.append(f"claim without a flag: {said[0]}")
    could = any(t["could_change"] for t in doc["stakes"]["thresholds"])
    matters = any(re.search(r"matter|importan", c, re.IGNORECASE) for c in said)
    if matters != could:
        bad.append(f"'matters' said={matters} but worst case reaches a line={could}")
    for t in texts(doc):
        if NOTHING_REMAINS.search(t) or ZERO_P.search(t):
            bad.append(f"forbidden wording: {t[:80]}")
    return bad


def report(frame: pl.DataFrame, contest: Any) -> dict[str, Any]:
    rep = run_forensics(frame, contest, max_flagged=None, klimek_bootstrap=10)
    return json.loads(json.dumps(to_jsonable(rep), allow_nan=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clean", type=int, default=520)
    ap.add_argument("--stuffed", type=int, default=100)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, default=HERE / "forensics_headlines.jsonl.gz")
    args = ap.parse_args()
    t0 = time.time()
    rows: list[dict[str, Any]] = []
    for e in range(args.clean):
        rng = np.random.Generator(np.random.PCG64([args.seed, e]))
        contest = SMALL_RUNOFF if e % 2 == 0 else SMALL_FIRST_ROUND
        doc = report(small_election(rng, contest=contest), contest)
        rows.append({"kind": "clean", "e": e, "contest": contest.kind.value,
                     "n_actas": doc["filters"]["actas_analysed"],
                     "n_hypotheses": doc["n_hypotheses"], "n_flags": len(doc["flags"]),
                     "flags": [[f["scope"], f["test"], f["quantity"]] for f in doc["flags"]],
                     "stakes_actas": doc["stakes"]["n_actas"],
                     "could_change": doc["stakes"]["could_change_result"],
                     "klimek_fe": [k["f_extreme"] for k in doc["klimek"]],
                     "violations": violations(doc)})
        if (e + 1) % 50 == 0:
            print(f"{e + 1} clean elections, {time.time() - t0:.0f} s", file=sys.stderr)
    for e in range(args.stuffed):
        rng = np.random.Generator(np.random.PCG64([args.seed, 10_000 + e]))
        clean = small_election(rng, regions=8)
        stuffed, mask = inject_stuffing(clean, SMALL_RUNOFF, "rojo", 0.04, rng, fill=0.95,
                                        steal=0.9)
        doc = report(stuffed, SMALL_RUNOFF)
        ids = set(stuffed.filter(pl.Series(mask))["acta_id"].to_list())
        counted = {a["acta_id"] for a in doc["flagged_actas"] if a["in_flagged_scope"]}
        quantities = {f["quantity"] for f in doc["flags"]}
        rows.append({"kind": "stuffed", "e": e, "contest": "runoff",
                     "n_actas": doc["filters"]["actas_analysed"], "n_stuffed": len(ids),
                     "n_flags": len(doc["flags"]),
                     "right_direction": bool(quantities) and "azul" not in quantities,
                     "stuffed_counted": len(ids & counted) / max(len(ids), 1),
                     "could_change": doc["stakes"]["could_change_result"],
                     "klimek_fe": [k["f_extreme"] for k in doc["klimek"]],
                     "violations": violations(doc)})
    with gzip.open(args.out, "wt") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    clean = [r for r in rows if r["kind"] == "clean"]
    stuffed = [r for r in rows if r["kind"] == "stuffed"]
    n_viol = sum(bool(r["violations"]) for r in rows)
    flagged = sum(r["n_flags"] > 0 for r in clean)
    print(f"escrutinio {__version__}; Python {platform.python_version()}; "
          f"{time.time() - t0:.0f} s; seed {args.seed}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}\n")
    print("| set | elections | reports breaking the headline rule | any flag after FDR "
          "| flagged for the right candidate only | stuffed actas counted in the stakes "
          "(mean) | stakes say 'matters' | Klimek f_e (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rs in (("clean runoffs", [r for r in clean if r["contest"] == "runoff"]),
                     ("clean first rounds", [r for r in clean
                                             if r["contest"] == "first_round"]),
                     ("stuffed 4 % (extreme)", stuffed)):
        if not rs:
            continue
        fe = np.median([x for r in rs for x in r["klimek_fe"]] or [float("nan")])
        right = (f"{sum(r['right_direction'] for r in rs) / len(rs):.3f}"
                 if "right_direction" in rs[0] else "—")
        counted = (f"{np.mean([r['stuffed_counted'] for r in rs]):.3f}"
                   if "stuffed_counted" in rs[0] else "—")
        print(f"| {name} | {len(rs)} | {sum(bool(r['violations']) for r in rs)} | "
              f"{sum(r['n_flags'] > 0 for r in rs) / len(rs):.3f} | {right} | {counted} | "
              f"{sum(r['could_change'] for r in rs) / len(rs):.3f} | {fe:.4f} |")
    print(f"\nclean elections with any flag: {flagged} of {len(clean)} "
          f"({flagged / max(len(clean), 1):.3f}; BH bound under the global null 0.05); "
          f"reports breaking the rule: {n_viol}")
    for r in rows:
        if r["violations"]:
            print("VIOLATION", r["kind"], r["e"], r["violations"][:2])


if __name__ == "__main__":
    main()
