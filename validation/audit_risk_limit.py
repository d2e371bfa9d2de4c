"""The risk limit, checked empirically: >= 10,000 simulated audits of a wrong outcome.

Run: .venv/bin/python validation/audit_risk_limit.py [trials]   (default 20,000)

For each scenario (how a wrong outcome hides in the actas; see escrutinio.audit.simulate)
and risk limit, MACRO, ALPHA with PPEB and ALPHA with uniform sampling without replacement
are run sequentially up to three times the zero-discrepancy size; BRAVO on a tie. The share
of audits that confirmed the wrong outcome must be <= alpha (within 3 standard errors). A
deliberately broken audit (U understated by half) shows the check can fail. Finally the
real SHA-256 PPEB sampler replaces the numpy generator for 10,000 MACRO audits.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time

import numpy as np

from escrutinio.audit import macro
from escrutinio.audit.sampling import ppeb_draws
from escrutinio.audit.simulate import (
    bravo_trials,
    risk_limit_trials,
    synthetic_population,
    wrong_truth,
)


def sha_macro_trials(pop, truth, alpha: float, trials: int) -> tuple[int, int]:
    v = float(pop.margin[0])
    u_p = pop.weights_float() / pop.scale
    taint = np.where(u_p > 0, ((pop.batch_margin[:, 0] - truth) / v) / u_p, 0.0)
    U = float(pop.U)  # noqa: N806
    n_max = 3 * macro.zero_discrepancy_draws(pop.U, alpha)
    hits = 0
    for k in range(trials):
        d = ppeb_draws(f"trial-{k:06d}", pop.weights, n_max)
        t = np.minimum(taint[d.positions], 1.0)
        with np.errstate(divide="ignore"):
            path = -np.cumsum(math.log1p(-1 / U) - np.log1p(-t))
        hits += int(path.max() >= math.log(1 / alpha))
    return hits, n_max


def main() -> None:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    t0 = time.time()
    pop = synthetic_population(2000, 0.02, seed=1)
    print(f"Machine: {platform.platform()}, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; date {time.strftime('%Y-%m-%d')}; command "
          f"`.venv/bin/python validation/audit_risk_limit.py {trials}`; seeds 1 (population), "
          "2 (truth), 3 (draws).\n")
    print(f"Synthetic runoff: {pop.size:,} actas of 100-300 ballots, reported margin "
          f"{pop.margin[0]:,} votes, U = {float(pop.U):.2f}.\n")
    print("| scenario | method | risk limit | audits | max draws | wrongly confirmed | rate "
          "| rate + 3 SE | holds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for scenario in ("concentrated", "mixed", "spread"):
        truth = wrong_truth(pop, scenario, seed=2)
        for a in (0.05, 0.10):
            for c in risk_limit_trials(pop, truth, risk_limit=a, trials=trials, seed=3,
                                       scenario=scenario):
                print(f"| {c.scenario} | {c.method} | {a:.0%} | {c.trials:,} | {c.max_draws} "
                      f"| {c.wrongly_confirmed:,} | {c.rate:.4f} | {c.upper_3se:.4f} | "
                      f"{'yes' if c.ok else '**NO**'} |")
    for a in (0.05, 0.10):
        c = bravo_trials(0.55, 0.40, risk_limit=a, trials=trials, max_ballots=3000)
        print(f"| tie (BRAVO, reported 55/40) | bravo | {a:.0%} | {c.trials:,} | {c.max_draws} "
              f"| {c.wrongly_confirmed:,} | {c.rate:.4f} | {c.upper_3se:.4f} | "
              f"{'yes' if c.ok else '**NO**'} |")
    print("\nBroken audit (U understated by half), same draws — the check must fail:\n")
    print("| scenario | method | risk limit | rate | holds |")
    print("|---|---|---|---|---|")
    for scenario in ("concentrated", "mixed"):
        truth = wrong_truth(pop, scenario, seed=2)
        for c in risk_limit_trials(pop, truth, risk_limit=0.05, trials=min(trials, 10_000),
                                   seed=3, scenario=scenario, bound_factor=0.5):
            print(f"| {scenario} | {c.method} | 5% | {c.rate:.4f} | "
                  f"{'yes' if c.ok else 'no (as it should)'} |")
    truth = wrong_truth(pop, "concentrated", seed=2)
    n_sha = 10_000
    hits, n_max = sha_macro_trials(pop, truth, 0.05, n_sha)
    se = math.sqrt(0.05 * 0.95 / n_sha)
    print(f"\nWith the public SHA-256 PPEB sampler (seeds `trial-000000`...): MACRO, "
          f"concentrated, 5%: {hits:,} of {n_sha:,} wrongly confirmed = {hits / n_sha:.4f} "
          f"(limit + 3 SE = {0.05 + 3 * se:.4f}); max {n_max} draws.")
    print(f"\nTotal time {time.time() - t0:.0f} s.")


if __name__ == "__main__":
    main()
