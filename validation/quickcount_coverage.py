"""Quick count validation by repeated sampling on the 2021 runoff final (issue 4).

* >= 1,000 simulated quick counts of 1,500 mesas (stratified department × urban/rural ×
  abroad, proportional to electors): coverage of the 95% intervals of the ratio
  estimator (Rao-Wu bootstrap), the Bayesian ratio model and their union, against the
  true share in the file (Castillo 8,835,653 / 17,627,349 = 50.1247%);
* margin of error at 1,000 / 1,500 / 3,000 mesas beside Ipsos 2021 (Castillo 50.2% ± 1
  on 1,675 mesas; JNE final 50.126%);
* the public SHA-256 sampler: 200 public seeds, same coverage as the PCG64 simulation;
* fusion with the official partial count at the three per-acta provisional states.

Run:  .venv/bin/python validation/quickcount_coverage.py [--sims 1000] [--seed 2021]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from escrutinio.defence import quickcount as qc
from escrutinio.defence.strata import assign_strata, peru_urban_districts
from escrutinio.sources.onpe_files import parse_provisional, parse_ronderos

PAIR = ("castillo", "fujimori")
IPSOS = {"share": 0.502, "moe": 0.01, "mesas": 1675, "final_jne": 0.50126}


def data_dir() -> Path:
    env = os.environ.get("ESCRUTINIO_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument("--boot", type=int, default=400)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--sha-seeds", type=int, default=200)
    ap.add_argument("--fusion-sims", type=int, default=300)
    args = ap.parse_args()
    d = data_dir()
    actas = d / "peru-2021-runoff/actas"
    final = parse_ronderos(actas / "actas_electorales_ronderos.pe.csv.gz",
                           as_of="2021-06-17T00:00:00Z").frame
    universe = assign_strata(final, peru_urban_districts(d / "peru-geography/ubigeo_distrito.csv"))
    counted = final.filter(pl.col("status") == "counted").join(universe, on="acta_id")
    de = qc.design_effect(counted["v_castillo"].to_numpy(), counted["v_fujimori"].to_numpy(),
                          counted["stratum"].to_numpy())
    print(f"# Quick count validation — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"command: validation/quickcount_coverage.py --sims {args.sims} --seed {args.seed} "
          f"--boot {args.boot} --draws {args.draws}")
    print(f"universe {universe.height:,} mesas, {universe['stratum'].n_unique()} strata; "
          f"true share {de.share:.6f}")
    print(f"design effect: unstratified {de.deff_unstratified:.2f}, stratified "
          f"{de.deff_stratified:.2f}; mean two-candidate votes per mesa "
          f"{de.mean_votes_per_mesa:.1f}")
    n_voters = int(counted["v_castillo"].sum() + counted["v_fujimori"].sum())
    for moe in (0.01, 0.005):
        s = qc.sample_size(moe, population_voters=n_voters,
                           mean_votes_per_mesa=de.mean_votes_per_mesa, deff=de.deff_stratified)
        s2 = qc.sample_size(moe, population_voters=n_voters,
                            mean_votes_per_mesa=de.mean_votes_per_mesa,
                            deff=de.deff_unstratified)
        print(f"sample size for ±{100 * moe:.1f} pt: {s.voters_srs:,.0f} voters (SRS) -> "
              f"{s.mesas:,} mesas stratified, {s2.mesas:,} unstratified")

    print("\n## Repeated sampling (PCG64 stratified draws)")
    print("| mesas | sims | coverage ratio | coverage model | coverage union | "
          "± ratio (pt) | ± model (pt) | ± union (pt) | sd of estimate (pt) | bias (pt) | "
          "formula ± strat / unstrat (pt) | technical tie | wrong call | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    results = {}
    for n in (1000, 1500, 3000):
        t0 = time.perf_counter()
        r = qc.simulate(universe, final, PAIR, n_mesas=n, n_sims=args.sims, seed=args.seed + n,
                        n_boot=args.boot, n_draws=args.draws)
        dt = time.perf_counter() - t0
        results[n] = r
        f_s = qc.margin_of_error(n, mean_votes_per_mesa=de.mean_votes_per_mesa,
                                 deff=de.deff_stratified, population_voters=n_voters)
        f_u = qc.margin_of_error(n, mean_votes_per_mesa=de.mean_votes_per_mesa,
                                 deff=de.deff_unstratified, population_voters=n_voters)
        print(f"| {n:,} | {r.n_sims} | {r.coverage_ratio:.3f} | {r.coverage_model:.3f} | "
              f"{r.coverage_combined:.3f} | {100 * r.mean_half_width_ratio:.3f} | "
              f"{100 * r.mean_half_width_model:.3f} | {100 * r.mean_half_width_combined:.3f} | "
              f"{100 * r.sd_estimate:.3f} | {100 * r.mean_error:+.3f} | "
              f"{100 * f_s:.2f} / {100 * f_u:.2f} | {r.technical_tie_rate:.3f} | "
              f"{r.wrong_call_rate:.3f} | {dt:.1f} |")
    ip = qc.margin_of_error(IPSOS["mesas"], mean_votes_per_mesa=de.mean_votes_per_mesa,
                            deff=de.deff_stratified, population_voters=n_voters)
    ip_u = qc.margin_of_error(IPSOS["mesas"], mean_votes_per_mesa=de.mean_votes_per_mesa,
                              deff=de.deff_unstratified, population_voters=n_voters)
    print(f"\nIpsos 2021: Castillo {100 * IPSOS['share']:.1f}% ± {100 * IPSOS['moe']:.0f} on "
          f"{IPSOS['mesas']:,} mesas (JNE final {100 * IPSOS['final_jne']:.3f}%, this file "
          f"{100 * de.share:.4f}%). At {IPSOS['mesas']:,} mesas this design's formula gives "
          f"± {100 * ip:.2f} (stratified deff) / ± {100 * ip_u:.2f} (unstratified deff).")

    print(f"\n## Public SHA-256 sampler: {args.sha_seeds} seeds, 1,500 mesas")
    plan = qc.design(universe, n_mesas=1500)
    t0 = time.perf_counter()
    cover = np.zeros(args.sha_seeds, dtype=bool)
    width = np.zeros(args.sha_seeds)
    ties = 0
    for i in range(args.sha_seeds):
        sample = qc.draw_sample(universe, plan, f"validation-{i}")
        rep = final.join(sample.select("acta_id"), on="acta_id")
        e = qc.estimate(universe, rep, PAIR, n_boot=args.boot, n_draws=args.draws, seed=i)
        cover[i] = e.combined.lower <= de.share <= e.combined.upper
        width[i] = e.combined.half_width
        ties += e.call == "technical_tie"
    print(f"coverage (union) {cover.mean():.3f}, mean ± {100 * width.mean():.3f} pt, technical "
          f"tie {ties}/{args.sha_seeds}, {time.perf_counter() - t0:.1f} s")

    print(f"\n## Fusion with the official partial count ({args.fusion_sims} samples of 1,500 "
          "per state)")
    print("| state | counted electors | share among counted | coverage | mean ± (pt) | "
          "mean estimate | calls castillo / tie / fujimori |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(args.seed)
    for name in ("hist_actas_electorales_20210608T1121_cadd76f.csv.gz",
                 "hist_actas_electorales_20210608T2023_78f03ce.csv.gz",
                 "actas_electorales.csv.gz"):
        snap = parse_provisional(actas / name)
        cov, wid, est, calls = [], [], [], {"a": 0, "technical_tie": 0, "b": 0}
        known = frac = None
        for _ in range(args.fusion_sims):
            seed = f"fusion-{int(rng.integers(0, 2**62))}"
            sample = qc.draw_sample(universe, plan, seed)
            rep = final.join(sample.select("acta_id"), on="acta_id")
            f = qc.fuse(universe, snap.frame, rep, PAIR, n_boot=300, n_draws=600)
            cov.append(f.combined.lower <= de.share <= f.combined.upper)
            wid.append(f.combined.half_width)
            est.append(f.combined.estimate)
            calls[f.call] += 1
            known, frac = f.known_share, f.known_fraction_electors
        print(f"| {snap.as_of:%d %b %H:%M} UTC | {100 * (frac or 0):.2f}% | "
              f"{100 * (known or 0):.3f}% | {np.mean(cov):.3f} | {100 * np.mean(wid):.3f} | "
              f"{100 * np.mean(est):.3f}% | {calls['a']} / {calls['technical_tie']} / "
              f"{calls['b']} |")


if __name__ == "__main__":
    main()
