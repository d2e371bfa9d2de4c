"""Contested actas against reality: the 2021 runoff's JEE-bound actas (issue 4).

For each provisional per-acta state (8 June 16:15, 9 June 01:12, 15 June 13:33 UTC), the
actas then at the JEE are analysed with the rates known at that moment (a prior plus the
outcomes of actas resolved between earlier states and this one), and the prediction is
compared with the final file (~17 June): how many were annulled and how much the
contested actas moved the margin (Castillo − Fujimori).

Priors: ``2021`` (the 15 June → final outcomes themselves: in-sample, shown for the
mechanism) and ``historical`` (2011 + 2016 annulment shares only: no 2021 hindsight).

Run:  .venv/bin/python validation/contested_2021.py [--sims 20000] [--seed 2021]
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from escrutinio.defence import contested as ct
from escrutinio.sources.onpe_files import parse_provisional, parse_ronderos
from escrutinio.sources.peru import PERU_2021_RUNOFF

STATES = ("hist_actas_electorales_20210608T1121_cadd76f.csv.gz",
          "hist_actas_electorales_20210608T2023_78f03ce.csv.gz", "actas_electorales.csv.gz")


def data_dir() -> Path:
    env = os.environ.get("ESCRUTINIO_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=2021)
    args = ap.parse_args()
    d = data_dir() / "peru-2021-runoff/actas"
    final = parse_ronderos(d / "actas_electorales_ronderos.pe.csv.gz",
                           as_of="2021-06-17T00:00:00Z").frame
    snaps = [parse_provisional(d / s) for s in STATES]
    print(f"# Contested actas vs reality — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{platform.machine()}, {os.cpu_count()} cores")
    print(f"command: validation/contested_2021.py --sims {args.sims} --seed {args.seed}\n")
    print("| state | prior | JEE actas | resolved before (learned) | annulled: actual / "
          "predicted median [90%] | margin change: actual / predicted median [90%] | "
          "bounds (all counted … all annulled) | in 90%? | flip possible? |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, snap in enumerate(snaps):
        cur = snap.frame
        jee = cur.filter(pl.col("status") == "jee").select("acta_id")
        fin = final.join(jee, on="acta_id")
        actual_ann = int((fin["status"] == "annulled").sum())
        actual_change = int((fin["v_castillo"] - fin["v_fujimori"]).sum())
        for pname, prior in (("2021 (in-sample)", ct.RATES_2021),
                             ("historical 2011+2016", ct.historical_prior())):
            r = ct.analyse_contested(cur, PERU_2021_RUNOFF,
                                     earlier=[s.frame for s in snaps[:i]], prior=prior,
                                     n_sims=args.sims, seed=args.seed)
            q = r.distribution
            assert q is not None
            aq, cq = q.annulled_quantiles, q.change_quantiles
            ok_a = aq["p05"] <= actual_ann <= aq["p95"]
            ok_c = cq["p05"] <= actual_change <= cq["p95"]
            print(f"| {snap.as_of:%d %b %H:%M} | {pname} | {r.n_contested:,} | "
                  f"{r.n_resolved_since} | {actual_ann} / {aq['p50']:.0f} "
                  f"[{aq['p05']:.0f}, {aq['p95']:.0f}] | {actual_change:+,} / "
                  f"{cq['p50']:+,.0f} [{cq['p05']:+,.0f}, {cq['p95']:+,.0f}] | "
                  f"{r.contested_net:+,} … 0 | {'yes' if ok_a else 'NO'} / "
                  f"{'yes' if ok_c else 'NO'} | {'yes' if r.flip.possible else 'no'} |")
        print(f"|  | | | | | counted margin {r.counted_margin:+,}; final margin of these "
              f"actas' states {r.counted_margin + actual_change:+,}; "
              f"{r.flip.explanation_en} | | | |")


if __name__ == "__main__":
    main()
