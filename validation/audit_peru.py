"""Peru 2021 runoff: audit sizes per method, the realistic error model, a simulated audit.

Run: .venv/bin/python validation/audit_peru.py  (prints Markdown for RESULTS-audit.md)

1. Zero-discrepancy sample sizes at 5% and 10% for every method, on the final per-acta file
   (86,488 actas; margin 43,957).
2. The realistic error model: the same actas' first digitised figures (provisional state of
   8 June 2021 11:21) against the final figures.
3. A simulated audit with those real discrepancies: the reported figures are the final
   ones; the "hand count" of a drawn acta is its first digitised version when that differs
   (235 actas), so errors go both ways as they did. Public SHA-256 PPEB draws from a seed;
   rounds sized by the plan, then by the measured risk, until the risk limit is met.
4. A stress test: ten times as many discrepant actas (synthetic, same size distribution).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from escrutinio.audit import macro
from escrutinio.audit.measure import HandCount, measure_risk
from escrutinio.audit.model import Policy, build_population
from escrutinio.audit.plan import ErrorModel, first_round_size, plan_audit
from escrutinio.audit.sampling import ppeb_draws
from escrutinio.sources.onpe_files import parse_provisional, parse_ronderos

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ESCRUTINIO_DATA_DIR", REPO.parent / "shared" / "data"))
ACTAS = DATA / "peru-2021-runoff" / "actas"
SEED = "20210606153000219843"  # stands for dice rolled in public


def sizes_table(pop) -> str:
    plan = plan_audit(pop)  # the defaults of audit plan / audit sample (200,000 audits)
    lines = ["| method | risk limit | unit | zero-discrepancy size | expected distinct actas "
             "| P(finish round 1 at that size) | 90% first-round size | practical |",
             "|---|---|---|---|---|---|---|---|"]
    for m in plan.methods:
        lines.append(
            f"| {m.method} | {m.risk_limit:.0%} | {m.unit} | "
            f"{'—' if m.zero_error is None else f'{m.zero_error:,}'} | "
            f"{'—' if m.expected_actas is None else f'{m.expected_actas:,.0f}'} | "
            f"{'—' if m.p_first_round is None else f'{m.p_first_round:.1%}'} | "
            f"{'—' if m.size_90 is None else f'{m.size_90:,}'} | "
            f"{'yes' if m.practical else 'no'} |")
    ss = [m for m in plan.methods if m.method == "supersimple"]
    common = "; ".join(f"{m.risk_limit:.0%}: {m.common_tools_size:,}" for m in ss
                       if m.common_tools_size)
    assert plan.ballots is not None
    return "\n".join(lines) + f"\n\nU = {float(plan.total_bound):.4f} " \
        f"(= {plan.total_bound.numerator:,}/{plan.total_bound.denominator:,}); diluted margin " \
        f"{plan.diluted_margin:.5%}; {plan.n_actas:,} actas, {plan.total_ballots:,} ballots " \
        f"({plan.ballots.sentence()[1]}). Margin used: the file's " \
        f"{plan.margins[0]:,} (the JNE proclaimed 44,263; the per-acta figures behind the " \
        "proclamation are not public). " + plan.size_note_en + ". Super-simple " \
        "'90% size' column: Stark's linear rates formula with the error model's one-vote " \
        f"rate; the common tools (Arlo, rlacalc) give {common}."


def error_model(final: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    prov = parse_provisional(ACTAS / "hist_actas_electorales_20210608T1121_cadd76f.csv.gz").frame
    j = prov.join(final, on="acta_id", suffix="_f").filter(
        pl.col("v_castillo").is_not_null() & (pl.col("status_f") == "counted"))
    ch = j.filter((pl.col("v_castillo") != pl.col("v_castillo_f"))
                  | (pl.col("v_fujimori") != pl.col("v_fujimori_f")))
    dm = ((ch["v_castillo"] - ch["v_fujimori"]) - (ch["v_castillo_f"] - ch["v_fujimori_f"]))
    a = dm.abs().to_numpy()
    bins = [(0, 1), (2, 2), (3, 5), (6, 10), (11, 20), (21, 50), (51, 100), (101, 10**6)]
    counts = [int(((a >= lo) & (a <= hi)).sum()) for lo, hi in bins]
    txt = (f"{ch.height} of {j.height:,} actas with figures in both states changed candidate "
           f"figures ({ch.height / j.height:.3%}); |margin change| in votes: median "
           f"{np.median(a):.0f}, 90th percentile {np.percentile(a, 90):.0f}, max {a.max()}; "
           f"{int((dm > 0).sum())} moved the margin towards Fujimori, {int((dm < 0).sum())} "
           "towards Castillo.\n\n| |margin change| | actas |\n|---|---|\n"
           + "\n".join(f"| {lo}–{hi if hi < 10**6 else '…'} | {c} |"
                       for (lo, hi), c in zip(bins, counts, strict=True)))
    return ch, txt


def simulated_audit(pop, truth: dict[str, HandCount], risk_limit: float, label: str,
                    errors: ErrorModel) -> str:
    size = first_round_size(pop, "macro", risk_limit, errors=errors) or \
        macro.zero_discrepancy_draws(pop.U, risk_limit)  # what audit sample draws
    n = 0
    lines = [f"**{label}**, risk limit {risk_limit:.0%}, MACRO (declared), seed `{SEED}`:",
             "", "| round | draws so far | distinct actas | discrepant actas found | "
             "MACRO risk | ALPHA risk | decision |", "|---|---|---|---|---|---|---|"]
    rnd = 0
    while True:
        rnd += 1
        n += size
        d = ppeb_draws(SEED, pop.weights, n)
        ids = pop.ids[d.positions]
        counts = {str(i): truth.get(str(i)) or HandCount(
            str(i), tuple(int(v) for v in pop.votes[pop.position(str(i))]), 0,
            int(pop.cast[pop.position(str(i))]) - int(pop.votes[pop.position(str(i))].sum()), 0)
            for i in set(ids.tolist())}
        m = measure_risk(pop, d.positions, counts, method="macro", risk_limit=risk_limit)
        lines.append(f"| {rnd} | {n:,} | {m.n_distinct:,} | {m.n_with_discrepancy} | "
                     f"{m.macro_risk:.4f} | {m.alpha_risk:.4f} | {m.status} |")
        if m.status != "continue" or rnd >= 8:
            break
        size = m.next_round_draws or 1
    return "\n".join(lines)


def main() -> None:
    t0 = time.time()
    snap = parse_ronderos(ACTAS / "actas_electorales_ronderos.pe.csv.gz",
                          as_of="2021-06-17T00:00:00Z")
    final = snap.frame
    pop = build_population(final, snap.contest, snapshot_id=snap.snapshot_id)
    out = [f"Machine: {platform.platform()}, Python {sys.version.split()[0]}, "
           f"{os.cpu_count()} CPUs; date {time.strftime('%Y-%m-%d')}; "
           "command `.venv/bin/python validation/audit_peru.py`.", "",
           "### Zero-discrepancy sizes (2021 runoff final, default conservative policy)", "",
           sizes_table(pop), ""]
    worst = build_population(final, snap.contest, policy=Policy(annulled="subtract"))
    out += [f"With the 220 annulled actas treated as unknown (`--annulled subtract`), the "
            f"margin left to protect is {worst.margin[0]:,} votes: no audit can confirm the "
            "winner that way; whether those annulments were right is a legal question.", ""]
    ch, txt = error_model(final)
    out += ["### Realistic discrepancies (first digitised vs final figures)", "", txt, ""]
    # the hand count of a drawn acta = its first digitised figures when they differ
    truth: dict[str, HandCount] = {}
    for r in ch.iter_rows(named=True):
        blank, null = r["blank"] or 0, r["null"] or 0
        truth[r["acta_id"]] = HandCount(r["acta_id"], (r["v_castillo"], r["v_fujimori"]),
                                        blank, null, r["challenged"] or 0)
    for a in (0.05, 0.10):
        out += [simulated_audit(pop, truth, a, "Real 2021 discrepancies", ErrorModel()), ""]
    # stress: ten times as many discrepant actas, every one an overstatement of the
    # winner's margin by a real |margin change| (Castillo votes that were really null)
    rng = np.random.Generator(np.random.PCG64(7))
    pool = [abs((v.votes[0] - v.votes[1]) - int(pop.batch_margin[pop.position(k), 0]))
            for k, v in truth.items()]
    pick = rng.choice(pop.size, size=10 * len(truth), replace=False)
    stress: dict[str, HandCount] = {}
    for p in pick.tolist():
        k = max(1, int(pool[int(rng.integers(len(pool)))]))
        v = pop.votes[p]
        c = max(0, int(v[0]) - k)
        other = int(pop.cast[p]) - int(v.sum()) + (int(v[0]) - c)
        stress[str(pop.ids[p])] = HandCount(str(pop.ids[p]), (c, int(v[1])), 0, other, 0)
    out += [simulated_audit(pop, stress, 0.05, "Stress: 10x as many discrepant actas, all "
                            "against the reported winner", ErrorModel(rate=0.03)), ""]
    out.append(f"Total time {time.time() - t0:.1f} s.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
