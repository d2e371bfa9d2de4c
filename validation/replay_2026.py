"""Replay the 2026 Peruvian first round: who finishes second (Sánchez v López Aliaga).

Data: the 230 national cuts republished by ikusij/ONPE-Monte-Carlo (14 Apr 78.3% → 4 May
97.9% of votes counted by the scraper's measure) and the district bundle of 4 May (2,102
districts and cities abroad). There is **no final 100% result in the shared data**: the
"final" scored against is the last cut (4 May, 97.9%: Sánchez 1,976,734, López Aliaga
1,950,243, +26,491). Scores therefore measure agreement with the 97.9% state, and the last
cuts score themselves almost trivially; say so when quoting them.

1. **National totals only** (project_series): the 230 cuts carry no geography, so the
   model can only use the batches that arrived between cuts. One cut (23 Apr 16:38, valid
   votes 256,791 instead of ~15.9 million) is a broken scrape: it is listed and left out
   of the scores.
2. **District bundle** (project_units, one snapshot at 97.9%): the per-unit projection
   from the districts, with the unit's share of votes counted recovered from the
   scraper's ``votosRestantes`` (read_2026_bundle_remaining).

Usage::

    .venv/bin/python validation/replay_2026.py [--sims 10000] [--seed 0] [--out validation]
        [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from escrutinio.projection.model import ModelParams
from escrutinio.projection.replay import CutMeta, replay_series, replay_svg
from escrutinio.projection.units import project_units
from escrutinio.sources import onpe_aggregates
from escrutinio.sources.peru import PERU_2026_FIRST_ROUND as CONTEST

REPO = Path(__file__).resolve().parents[1]
RACE = ("sanchez", "lopez_aliaga")
NAMES = {"sanchez": "Sánchez", "lopez_aliaga": "López Aliaga"}
BUNDLE = "ikusij_first_round_district_bundle_20260504.json.gz"
SERIES = "ikusij_first_round_national_timeseries.csv.gz"


def data_dir() -> Path:
    env = os.environ.get("ESCRUTINIO_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load_series(d: Path) -> tuple[list[CutMeta], list[float], list[CutMeta]]:
    """Cuts (metas and the scraper's fraction of votes counted); broken cuts apart."""
    snaps = onpe_aggregates.parse_2026_national_timeseries(d / "peru-2026-first-round" / SERIES)
    metas, fracs, broken = [], [], []
    best = 0
    for s in snaps:
        frac = float(s.metadata["pct_votes_counted"])
        if s.frame.height == 0:  # rejected at ingest (series_cut_truncated)
            broken.append(CutMeta(s.as_of, s.label, s.snapshot_id, 100.0 * frac, {}))
            continue
        row = s.frame.row(0, named=True)
        votes = {c.code: int(row[c.column] or 0) for c in CONTEST.candidates}
        meta = CutMeta(s.as_of, s.label, s.snapshot_id, 100.0 * frac, votes)
        total = sum(votes.values())
        if total < 0.99 * best:
            broken.append(meta)
            continue
        best = max(best, total)
        metas.append(meta)
        fracs.append(frac)
    return metas, fracs, broken


def bundle_projection(d: Path, params: ModelParams):
    path = d / "peru-2026-first-round" / BUNDLE
    b = onpe_aggregates.parse_2026_district_bundle(path)
    rem = onpe_aggregates.read_2026_bundle_remaining(path).select(
        "unit_code", (pl.col("pct_actas_counted_implied") / 100).alias("fraction_counted"))
    geo = b.geography
    parents = {c: p for c, p in zip(geo["code"].to_list(), geo["parent"].to_list(),
                                    strict=True) if p}
    return project_units(b.frame, CONTEST, parents=parents, remaining=rem, params=params,
                         snapshot_id=b.snapshot_id, as_of=b.as_of, pairs=(RACE,))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "validation")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    d = data_dir()
    params = ModelParams(n_sims=2000 if args.quick else args.sims, seed=args.seed)
    t0 = time.perf_counter()
    metas, fracs, broken = load_series(d)
    if args.quick:
        keep = sorted({*range(0, len(metas), 10), len(metas) - 1})
        metas = [metas[i] for i in keep]
        fracs = [fracs[i] for i in keep]
    final = metas[-1].counted
    print(f"# Replay of the 2026 first round (race for second place) — "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()} {platform.system()}, "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs; sims {params.n_sims}, "
          f"seed {params.seed}\n")
    print(f"Scored against the last cut ({metas[-1].as_of:%d %b %H:%M}, "
          f"{metas[-1].pct_counted:.1f}% of votes): Sánchez {final['sanchez']:,}, López Aliaga "
          f"{final['lopez_aliaga']:,} (+{final['sanchez'] - final['lopez_aliaga']:,}). "
          f"Broken cuts left out: " + ", ".join(
              f"{m.as_of:%d %b %H:%M} ({sum(m.counted.values()):,} votes)" for m in broken)
          + "\n")
    res = replay_series(metas, fracs, CONTEST, final=final, params=params, race=RACE,
                        from_pct=90.0)
    cov = " · ".join(f"{100 * c.level:.0f}%: {c.covered}/{c.n_cuts}" for c in res.coverage)
    fs, fp = res.first_stable_call, res.first_stable_p90
    print(f"## 1. National totals only, {res.n_cuts} cuts\n")
    print(f"- coverage: {cov}\n- Brier {res.brier:.4f}; log score {res.log_score:.4f}\n"
          f"- wrong calls: {len(res.wrong_calls)}\n"
          "- call correct and stable from: "
          + (f"{fs.as_of:%d %b %H:%M} ({fs.pct_counted:.2f}%)" if fs else "never")
          + "\n- P(Sánchez ahead) ≥ 0.9 and stays from: "
          + (f"{fp.as_of:%d %b %H:%M} ({fp.pct_counted:.2f}%)" if fp else "never") + "\n- "
          + "; ".join(f"{b.name}: mean |error| {b.mean_abs_error:,.0f}, wrong leader at "
                      f"{b.wrong_leader_cuts} cuts" for b in res.baselines)
          + f"\n- elapsed {res.elapsed_seconds:.1f} s\n")
    lines = ["| cut (UTC−0) | % votes | raw S − LA | naive | projected median | 90% interval | "
             "P(S ahead) | call |", "|---|---:|---:|---:|---:|---|---:|---|"]
    step = max(1, len(res.cuts) // 23)
    for c in [*res.cuts[::step], res.cuts[-1]]:
        lo, hi = c.intervals["0.9"]
        lines.append(f"| {c.as_of:%d %b %H:%M} | {c.pct_counted:.2f} | {c.raw_margin:+,} | "
                     f"{c.naive_margin:+,.0f} | {c.median:+,.0f} | [{lo:+,.0f}, {hi:+,.0f}] | "
                     f"{c.p_a:.3f} | {c.call_status} |")
    print("\n".join(lines) + "\n")
    (args.out / "replay_2026_series.svg").write_text(replay_svg(
        res, title="Perú 2026, primera vuelta: Sánchez − López Aliaga (solo totales nacionales)",
        names=NAMES))

    t1 = time.perf_counter()
    pj = bundle_projection(d, params)
    race = next(r for r in pj.races if {r.leader, r.trailer} == set(RACE))
    sign = 1 if race.leader == "sanchez" else -1
    print(f"## 2. District bundle (4 May, per unit, {time.perf_counter() - t1:.1f} s)\n")
    print("| candidate | counted | projected median | 90% interval | P(top two) |")
    print("|---|---:|---:|---|---:|")
    for c in sorted(pj.candidates, key=lambda c: -c.median)[:5]:
        iv = next(i for i in c.intervals if abs(i.level - 0.9) < 1e-9)
        print(f"| {c.name} | {c.counted:,} | {c.median:,.0f} | [{iv.lower:,.0f}, "
              f"{iv.upper:,.0f}] | {c.p_top_two:.4f} |")
    iv = race.interval(0.9)
    lo, hi = sorted((sign * iv.lower, sign * iv.upper))
    print(f"\nSánchez − López Aliaga: counted {sign * race.counted_margin:+,}, projected median "
          f"{sign * race.median:+,.0f}, 90% [{lo:+,.0f}, {hi:+,.0f}], P(Sánchez second) "
          f"{pj.candidate('sanchez').p_top_two:.4f}, call: {race.call.status.value} "
          f"({race.call.label_en}); P(outright winner) {pj.p_outright:.4f}\n")
    print("Components (expected change of the main margin): " + "; ".join(
        f"{c.label_en}: {c.expected_margin_change:+,.0f} ± {c.sd_margin_change:,.0f}"
        for c in pj.components) + "\n")
    print(f"Total time {time.perf_counter() - t0:.1f} s")
    return 0 if not res.wrong_calls else 1


if __name__ == "__main__":
    sys.exit(main())
