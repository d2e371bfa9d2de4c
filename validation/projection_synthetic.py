"""Calibration of the per-acta projection on synthetic counts with a known truth.

Many independent synthetic runoffs (8 regions × 5 provinces × 6 districts, a first-round
baseline, swings at every level, acta noise), each counted in a **non-random order**:
actas of "urban" places first, where "rurality" also drives the outcome. For each, the
projection at 65% counted is scored against the truth. Coverage should be close to the
nominal level (one real night cannot show this: its cuts share one error).

    .venv/bin/python validation/projection_synthetic.py [--n 200] [--actas 2500] [--sims 2000]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import polars as pl
from numpy.random import PCG64, Generator

from escrutinio.domain import ActaStatus, Candidate, Contest, ContestKind
from escrutinio.projection.model import ModelParams, project_actas

RUNOFF = Contest("zz-2v", "Sintética", ContestKind.RUNOFF, "ZZ", "2031-06-01",
                 (Candidate("azul", "Azul"), Candidate("rojo", "Rojo")))


def synthetic(n: int = 6000, seed: int = 1, swing_sd: float = 0.3, lean: float = 0.0
              ) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    """A runoff per acta with a first-round baseline: (final acta frame, baseline frame,
    a latent 'rurality' used to order arrivals)."""
    rng = Generator(PCG64(seed))
    n1, n2, n3 = 8, 5, 6
    a1 = rng.integers(0, n1, n)
    a2 = a1 * n2 + rng.integers(0, n2, n)
    a3 = a2 * n3 + rng.integers(0, n3, n)
    rural = rng.normal(size=n) + 0.8 * (a1 % 3)
    base_logit = 0.9 * rural + rng.normal(0, 0.4, n)  # first-round lean of the place
    e1 = rng.normal(0, swing_sd, n1)[a1]
    e2 = rng.normal(0, swing_sd / 2, n1 * n2)[a2]
    e3 = rng.normal(0, swing_sd / 2, n1 * n2 * n3)[a3]
    run_logit = lean + 0.1 + 0.9 * base_logit + e1 + e2 + e3 + rng.normal(0, 0.2, n)
    electors = rng.integers(180, 300, n)
    turnout = 1 / (1 + np.exp(-(1.0 - 0.2 * rural + rng.normal(0, 0.2, n))))
    valid = rng.binomial(electors, turnout * 0.95)
    azul = rng.binomial(valid, 1 / (1 + np.exp(-run_logit)))
    cast = valid + rng.integers(0, 8, n)
    abroad = a1 == n1 - 1
    codes = [f"{x:06d}" for x in range(n)]
    frame = pl.DataFrame({
        "acta_id": codes, "area1_code": [f"A{x}" for x in a1],
        "area2_code": [f"P{x}" for x in a2], "area3_code": [f"D{x}" for x in a3],
        "abroad": abroad, "polling_place": None, "status": ActaStatus.COUNTED.value,
        "observation": None, "resolved": False, "electors": electors, "cast": cast,
        "blank": cast - valid, "null": 0, "challenged": 0,
        "v_azul": azul, "v_rojo": valid - azul,
    }, schema_overrides={"polling_place": pl.String, "observation": pl.String})
    bvalid = rng.binomial(electors, turnout * 0.97)
    bp = 1 / (1 + np.exp(-base_logit))
    b_az = rng.binomial(bvalid, bp * 0.6)
    b_ro = rng.binomial(bvalid - b_az, (1 - bp) * 0.6 / (1 - bp * 0.6))
    baseline = pl.DataFrame({"acta_id": codes, "electors": electors, "v_x": b_az, "v_y": b_ro,
                             "v_z": bvalid - b_az - b_ro})
    return frame, baseline, rural


def partial(final: pl.DataFrame, counted_mask: np.ndarray, jee_mask: np.ndarray | None = None
            ) -> pl.DataFrame:
    """Hide the figures of the actas not yet counted."""
    jee_mask = np.zeros(final.height, bool) if jee_mask is None else jee_mask
    pending = ~counted_mask & ~jee_mask
    st = np.where(pending, ActaStatus.PENDING.value,
                  np.where(jee_mask, ActaStatus.JEE.value, ActaStatus.COUNTED.value))
    hide = pl.Series(pending)
    return final.with_columns(
        pl.Series("status", st),
        *[pl.when(hide).then(None).otherwise(pl.col(c)).alias(c)
          for c in ("cast", "blank", "null", "challenged", "v_azul", "v_rojo")])


def truth(final: pl.DataFrame) -> int:
    return int(final["v_azul"].sum() - final["v_rojo"].sum())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--actas", type=int, default=2500)
    ap.add_argument("--sims", type=int, default=2000)
    ap.add_argument("--counted", type=float, default=0.65)
    args = ap.parse_args(argv)
    levels = (0.5, 0.8, 0.9, 0.95, 0.99)
    hits = dict.fromkeys(levels, 0)
    zs, wrong, called = [], 0, 0
    t0 = time.perf_counter()
    for seed in range(args.n):
        final, base, rural = synthetic(args.actas, seed=100 + seed,
                                       lean=0.05 * (seed % 5 - 2))
        snap = partial(final, rural < np.quantile(rural, args.counted))
        p = project_actas(snap, RUNOFF, baseline=base,
                          params=ModelParams(n_sims=args.sims, seed=seed))
        m = truth(final)
        lead = 1 if p.margin.leader == "azul" else -1
        for lv in levels:
            iv = p.margin.interval(lv)
            lo, hi = sorted((lead * iv.lower, lead * iv.upper))
            hits[lv] += lo <= m <= hi
        iv = p.margin.interval(0.8)
        zs.append((m - lead * p.margin.median) / ((iv.upper - iv.lower) / 2.563))
        if p.call.status.value == "called":
            called += 1
            wrong += (p.call.winner == "azul") != (m > 0)
    print(f"{args.n} synthetic counts, {args.actas} actas, {100 * args.counted:.0f}% counted "
          f"in a non-random order, {args.sims} simulations each "
          f"({time.perf_counter() - t0:.1f} s)\n")
    print("| level | coverage |\n|---|---:|")
    for lv in levels:
        print(f"| {100 * lv:.0f}% | {100 * hits[lv] / args.n:.1f}% |")
    print(f"\nstandardised error (truth − median)/SD: mean {np.mean(zs):+.2f}, "
          f"SD {np.std(zs):.2f}; calls {called}, wrong calls {wrong}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
