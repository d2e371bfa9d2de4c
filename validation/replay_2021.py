"""Replay the 2021 Peruvian runoff (Castillo v Fujimori) and score the projection.

Six replays, all against the final per-acta file (Castillo +43,957; the JNE's
proclamation, +44,263, came after a few more appeals):

1. **per acta, 48 national cuts** (the main one, floors of issue 3): an arrival order is
   derived (escrutinio.projection.order) from the 48 national cuts, the department /
   province / district snapshots and the per-acta states of 8 June; at each cut the
   model sees the rebuilt per-acta snapshot and the 2021 first round per mesa (every
   first-round party its own feature; no hand-set blocs);
2. the same with a harsher order (selection on each acta's own outcome, ``tilt_by=
   acta_id``) — a stress test, not the truth;
3. the same without the first round (geography only);
4. **per unit** on the department / province / district snapshots that have a national
   cut at the same minute (abroad = national − Σ units, one extra unit), with the first
   round aggregated to the same units as baseline;
5. **national totals only** (project_series) on the 48 cuts;
6. the two **per-acta states** ONPE published on 8 June (16:15Z and 9 June 01:12Z), as
   they are — the only per-acta replay that needs no reconstruction.

Usage::

    .venv/bin/python validation/replay_2021.py [--sims 10000] [--seed 0] [--out validation]
        [--quick]   # every 6th cut, 2,000 simulations, no variants (what the tests run)

Writes ``<out>/replay_2021_actas.svg`` (and ``_units.svg``, ``_series.svg``) and prints the
tables recorded in validation/RESULTS-projection.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from escrutinio.projection.model import ModelParams, prepare_baseline
from escrutinio.projection.order import (
    ActaState,
    cuts_from_unit_snapshots,
    derive_arrival_order,
    unit_progress_from_frames,
)
from escrutinio.projection.replay import (
    CutMeta,
    ReplayResult,
    replay_actas,
    replay_series,
    replay_snapshots,
    replay_svg,
    replay_units,
)
from escrutinio.projection.units import complete_with_national
from escrutinio.provenance import to_jsonable
from escrutinio.sources import onpe_aggregates, onpe_files
from escrutinio.sources.peru import PERU_2021_RUNOFF

REPO = Path(__file__).resolve().parents[1]
NAMES = {"castillo": "Castillo", "fujimori": "Fujimori"}


def data_dir() -> Path:
    env = os.environ.get("ESCRUTINIO_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load(d: Path) -> dict[str, object]:
    run = d / "peru-2021-runoff"
    final = onpe_files.parse_ronderos(run / "actas/actas_electorales_ronderos.pe.csv.gz",
                                      as_of="2021-06-17T00:00:00Z")
    first = onpe_files.parse_ronderos(
        d / "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz",
        as_of="2021-05-11T09:15:00Z")
    states = [onpe_files.parse_provisional(run / "actas" / f) for f in (
        "hist_actas_electorales_20210608T1121_cadd76f.csv.gz",
        "hist_actas_electorales_20210608T2023_78f03ce.csv.gz")]
    progress = onpe_aggregates.parse_progress_tables(run)
    return {"final": final, "first": first, "states": states, "progress": progress}


def build_order(data: dict[str, object], *, seed: int, tilt_by: str = "area3_code"):
    progress = data["progress"]
    national = [s for s in progress if s.frame["level"][0] == "national"]  # type: ignore[union-attr]
    sub = [s for s in progress if s.frame["level"][0] != "national"]  # type: ignore[union-attr]
    cuts = cuts_from_unit_snapshots([(s.as_of, s.frame, s.label, s.snapshot_id)
                                     for s in national], PERU_2021_RUNOFF)
    units = unit_progress_from_frames([(s.as_of, s.frame, s.label) for s in sub])
    states = [ActaState(s.as_of, s.frame, s.label) for s in data["states"]]  # type: ignore[union-attr]
    return derive_arrival_order(data["final"].frame, PERU_2021_RUNOFF, cuts,  # type: ignore[union-attr]
                                states=states, units=units, seed=seed, tilt_by=tilt_by)


def final_votes(data: dict[str, object]) -> dict[str, int]:
    f = data["final"].frame  # type: ignore[union-attr]
    counted = f.filter(pl.col("status") == "counted")
    return {c.code: int(counted[c.column].sum()) for c in PERU_2021_RUNOFF.candidates}


def unit_snapshots(data: dict[str, object]) -> list[tuple[CutMeta, pl.DataFrame, dict]]:
    progress = data["progress"]
    nat = {s.as_of: s for s in progress if s.frame["level"][0] == "national"}  # type: ignore[union-attr]
    first = data["first"].frame  # type: ignore[union-attr]
    keys = {"area1": "area1_code", "area2": "area2_code", "area3": "area3_code"}
    out = []
    for s in progress:  # type: ignore[union-attr]
        lv = s.frame["level"][0]
        if lv == "national" or s.as_of not in nat:
            continue
        n = nat[s.as_of].frame
        frame = complete_with_national(s.frame, n)
        geo = s.geography
        parents = {c: p for c, p in zip(geo["code"].to_list(), geo["parent"].to_list(),
                                        strict=True) if p}
        key = keys[lv]
        base = first.group_by(key).agg(
            [pl.col(c).sum() for c in first.columns if c.startswith("v_")]
            + [pl.col("electors").sum()]).rename({key: "unit_code"})
        row = n.row(0, named=True)
        meta = CutMeta(s.as_of, f"{lv} {s.as_of:%d %H:%M}", s.snapshot_id,
                       100.0 * row["actas_counted"] / row["actas_total"],
                       {c.code: int(row[c.column]) for c in PERU_2021_RUNOFF.candidates})
        out.append((meta, frame, {"parents": parents,
                                  "baseline": prepare_baseline(base, key="unit_code")}))
    return sorted(out, key=lambda t: (t[0].as_of, t[0].label))


def table(res: ReplayResult, every: int = 1) -> str:
    lines = ["| cut (UTC) | % counted | raw | naive | projected median | 90% interval | "
             "P(Castillo) | call |", "|---|---:|---:|---:|---:|---|---:|---|"]
    for c in res.cuts[::every]:
        lo, hi = c.intervals["0.9"]
        call = ("**" + NAMES.get(c.call_winner or "", c.call_winner or "") + "**"
                if c.call_status == "called" else "too close")
        if c.wrong_call:
            call += " ❌"
        lines.append(f"| {c.as_of:%d %b %H:%M} | {c.pct_counted:.2f} | {c.raw_margin:+,} | "
                     f"{c.naive_margin:+,.0f} | {c.median:+,.0f} | [{lo:+,.0f}, {hi:+,.0f}] | "
                     f"{c.p_a:.3f} | {call} |")
    return "\n".join(lines)


def summary(res: ReplayResult) -> str:
    cov = " · ".join(f"{100 * c.level:.0f}%: {c.covered}/{c.n_cuts}"
                     + (f" ({100 * c.share_from:.0f}% from {res.coverage_from_pct:.0f}%)"
                        if c.share_from is not None else "") for c in res.coverage)
    fs = res.first_stable_call
    fp = res.first_stable_p90
    base = "; ".join(f"{b.name}: mean |error| {b.mean_abs_error:,.0f}, wrong leader at "
                     f"{b.wrong_leader_cuts} cuts" for b in res.baselines)
    return "\n".join([
        f"- cuts: {res.n_cuts}; final margin {res.final_margin:+,} ({res.candidate_a} − "
        f"{res.candidate_b})",
        f"- coverage: {cov}",
        f"- Brier {res.brier:.4f}; log score {res.log_score:.4f}",
        f"- wrong calls: {len(res.wrong_calls)}",
        "- call correct and stable from: " + (f"{fs.as_of:%d %b %H:%M} ({fs.pct_counted:.2f}% "
                                               "counted)" if fs else "never"),
        "- P(winner) ≥ 0.9 and stays from: " + (f"{fp.as_of:%d %b %H:%M} ({fp.pct_counted:.2f}%"
                                                 " counted)" if fp else "never"),
        f"- {base}",
        f"- elapsed: {res.elapsed_seconds:.1f} s",
    ])


def per_level_table(snaps: list[tuple[CutMeta, pl.DataFrame, dict]], final: dict[str, int],
                    params: ModelParams) -> str:
    """4b. Each level on its own (departments, provinces, districts), with the first round
    as baseline and without it; each cut sees the earlier cuts of its level as history.
    The naive extrapolation applies each unit's counted shares to its actas still to
    come (valid votes per counted acta)."""
    lines = ["### 4b. Per level, with and without the first round", "",
             "| level | baseline | cuts | wrong calls | coverage 50/80/90/95 | min P(Castillo) "
             "| mean |error| projection / naive | median 90% half-width |",
             "|---|---|---:|---:|---|---:|---|---:|"]
    for lv, name in (("area1", "department"), ("area2", "province"), ("area3", "district")):
        sub = [s for s in snaps if s[1]["level"][0] == lv]
        for with_base in (True, False):
            items = [(m, f, kw if with_base else {"parents": kw["parents"]})
                     for m, f, kw in sub]
            res = replay_units(items, PERU_2021_RUNOFF, final=final, params=params)
            cov = "/".join(f"{100 * c.covered / max(c.n_cuts, 1):.0f}" for c in res.coverage
                           if c.level in (0.5, 0.8, 0.9, 0.95))
            naive = []
            for _m, f, _kw in sub:
                u = f.filter(pl.col("level") == lv) if "level" in f.columns else f
                u = pl.concat([u, f.filter(pl.col("unit_code") == "__rest__")]) \
                    if "__rest__" not in u["unit_code"].to_list() else u
                va = u["v_castillo"].cast(pl.Float64).fill_null(0).to_numpy()
                vb = u["v_fujimori"].cast(pl.Float64).fill_null(0).to_numpy()
                tot = u["actas_total"].cast(pl.Float64).fill_null(0).to_numpy()
                cnt = u["actas_counted"].cast(pl.Float64).fill_null(0).to_numpy()
                per = np.divide(tot - cnt, cnt, out=np.zeros_like(tot), where=cnt > 0)
                naive.append(float(((va - vb) * (1 + per)).sum()))
            fm = res.final_margin
            mae_naive = float(np.mean([abs(x - fm) for x in naive]))
            hw = np.median([(c.intervals["0.9"][1] - c.intervals["0.9"][0]) / 2
                            for c in res.cuts])
            lines.append(f"| {name} | {'first round' if with_base else 'none'} | "
                         f"{res.n_cuts} | {len(res.wrong_calls)} | {cov} | "
                         f"{min(c.p_a for c in res.cuts):.3f} | {res.mean_abs_error:,.0f} / "
                         f"{mae_naive:,.0f} | {hw:,.0f} |")
    return "\n".join(lines)


def floors(res: ReplayResult) -> dict[str, bool]:
    """The floors of issue 3 on the 2021 runoff replay."""
    fp = res.first_stable_p90
    out = {
        "no_wrong_call": not res.wrong_calls,
        "p90_by_90pct_and_keeps": fp is not None and fp.pct_counted is not None
        and fp.pct_counted <= 90.0 and res.candidate_a == "castillo",
    }
    for c in res.coverage:
        share = c.share_from if c.share_from is not None else c.share
        out[f"coverage_{100 * c.level:.0f}_from_{res.coverage_from_pct:.0f}pct"] = \
            share >= c.level
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--order-seed", type=int, default=2021)
    ap.add_argument("--out", type=Path, default=REPO / "validation")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    d = data_dir()
    t0 = time.perf_counter()
    data = load(d)
    t_load = time.perf_counter() - t0
    params = ModelParams(n_sims=2000 if args.quick else args.sims, seed=args.seed)
    final = final_votes(data)
    base = prepare_baseline(data["first"].frame)  # type: ignore[union-attr]
    print(f"# Replay of the 2021 runoff — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{platform.machine()} {platform.system()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; sims {params.n_sims}, seed {params.seed}, order seed "
          f"{args.order_seed}; data loaded in {t_load:.1f} s\n")
    results: dict[str, ReplayResult] = {}

    t1 = time.perf_counter()
    order = build_order(data, seed=args.order_seed)
    t_order = time.perf_counter() - t1
    if args.quick:
        order = replace(order, cuts=order.cuts[::6])
    res = replay_actas(order, PERU_2021_RUNOFF, baseline=base, params=params, final=final)
    res = replace(res, elapsed_seconds=res.elapsed_seconds + t_order)
    results["actas"] = res
    print(f"## 1. Per acta, {res.n_cuts} national cuts (arrival order γ = {order.gamma:+.2f}, "
          f"tilt by {order.tilt_by}; order built in {t_order:.1f} s)\n")
    print(summary(res) + "\n")
    print(table(res) + "\n")
    fit = order.cut_fit
    print("Reconstruction (published v rebuilt running margin): max |gap| "
          f"{max(abs(f.published_margin - f.rebuilt_margin) for f in fit):,}; mean |gap| "
          f"{sum(abs(f.published_margin - f.rebuilt_margin) for f in fit) / len(fit):,.0f}\n")
    fl = floors(res)
    print("Floors: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in fl.items()) + "\n")
    (args.out / "replay_2021_actas.svg").write_text(replay_svg(
        res, title="Perú 2021, segunda vuelta: proyección por acta / per-acta projection",
        names=NAMES))

    if not args.quick:
        for name, kw, title in (
                ("actas_stress", {"tilt_by": "acta_id"}, "2. Stress test: order selected on "
                 "each acta's own outcome"),):
            o2 = build_order(data, seed=args.order_seed, **kw)
            r2 = replay_actas(o2, PERU_2021_RUNOFF, baseline=base, params=params, final=final)
            results[name] = r2
            print(f"## {title} (γ = {o2.gamma:+.2f})\n\n{summary(r2)}\n")
        r3 = replay_actas(order, PERU_2021_RUNOFF, baseline=None, params=params, final=final)
        results["actas_no_baseline"] = r3
        print(f"## 3. Per acta without the first round (geography only)\n\n{summary(r3)}\n")
        print(table(r3, every=4) + "\n")

        snaps = unit_snapshots(data)
        r4 = replay_units(snaps, PERU_2021_RUNOFF, final=final, params=params)
        results["units"] = r4
        print(f"## 4. Per unit (department / province / district snapshots + abroad as "
              f"national − Σ units), first round per unit as baseline\n\n{summary(r4)}\n")
        lines = ["| snapshot | % counted | raw | projected median | 90% interval | "
                 "P(Castillo) | call |", "|---|---:|---:|---:|---|---:|---|"]
        for c in r4.cuts:
            lo, hi = c.intervals["0.9"]
            lines.append(f"| {c.label} | {c.pct_counted:.2f} | {c.raw_margin:+,} | "
                         f"{c.median:+,.0f} | [{lo:+,.0f}, {hi:+,.0f}] | {c.p_a:.3f} | "
                         f"{c.call_status} |")
        print("\n".join(lines) + "\n")
        (args.out / "replay_2021_units.svg").write_text(replay_svg(
            r4, title="Perú 2021: proyección por unidades / per-unit projection", names=NAMES))
        print(per_level_table(snaps, final, params) + "\n")

        metas = [CutMeta(c.as_of, c.label, c.snapshot_id, 100.0 * c.actas_counted
                         / order.final.height, dict(c.votes)) for c in order.cuts]
        r5 = replay_series(metas, [m.pct_counted / 100.0 for m in metas], PERU_2021_RUNOFF,
                           final=final, params=params)
        results["series"] = r5
        print(f"## 5. National totals only (no geography)\n\n{summary(r5)}\n")
        (args.out / "replay_2021_series.svg").write_text(replay_svg(
            r5, title="Perú 2021: solo totales nacionales / national totals only",
            names=NAMES))

        r6 = replay_snapshots([(CutMeta(st.as_of, st.label, st.snapshot_id, None, {}),
                                st.frame) for st in data["states"]],  # type: ignore[union-attr]
                              PERU_2021_RUNOFF, final=final, baseline=base, params=params)
        results["states"] = r6
        print("## 6. The per-acta states as ONPE published them (no reconstruction)\n\n"
              f"{summary(r6)}\n\n{table(r6)}\n")
    print(f"Total time {time.perf_counter() - t0:.1f} s")
    if args.json:
        args.json.write_text(json.dumps({k: to_jsonable(v) for k, v in results.items()},
                                        ensure_ascii=False, indent=1))
    return 0 if all(fl.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
