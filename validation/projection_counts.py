"""Score the projection on many synthetic counts with a non-random arrival order.

*Calibración de la proyección sobre muchos conteos sintéticos.*

Each count (``validation/count_simulator.py``) is fed cut by cut, as a count night would
feed it, at one granularity — per unit (regions + continents + national row), national
series (totals with the share of votes counted), or per acta — and projected at the
scored cuts with everything before them as history. The model and its defaults are the
same as for real counts (nothing here is tuned per count or per granularity).

Scores, over all counts: coverage of the 50/80/90/95% intervals of the final margin;
counts with a wrong call (a called winner who loses) at any scored cut; mean absolute
error of the projected margin against the naive extrapolation (each unit's counted shares
applied to what it has still to count; for a series, the national counted shares); and the
median half-width of the 90% interval against the median absolute error near the end.

Usage::

    .venv/bin/python validation/projection_counts.py --n 1000 --granularity units
    .venv/bin/python validation/projection_counts.py --n 1000 --granularity series
    .venv/bin/python validation/projection_counts.py --n 200 --granularity actas
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import count_simulator as cs

from escrutinio.projection.model import ModelParams, project_actas
from escrutinio.projection.result import CallStatus, Projection
from escrutinio.projection.units import project_series, project_units

#: the cuts fed to the model (share of actas counted) and the ones scored
CUTS = np.round(np.concatenate([np.arange(0.30, 0.90, 0.025), np.arange(0.90, 0.996, 0.005)]),
                4)
SCORED = (0.50, 0.65, 0.80, 0.90, 0.95, 0.98)
LEVELS = (0.5, 0.8, 0.9, 0.95)


@dataclass
class Row:
    seed: int
    granularity: str
    frac: float
    final: float
    median: float
    naive: float
    lo: dict[str, float]
    hi: dict[str, float]
    p_a: float
    called: str | None
    late_shift: float
    mail: bool = False  # the count's late batch leans to the election-day trailer


def _race(p: Projection) -> tuple[float, dict[str, float], dict[str, float]]:
    race = next(r for r in p.races if {r.leader, r.trailer} == {"a", "b"})
    sign = 1.0 if race.leader == "a" else -1.0
    lo, hi = {}, {}
    for iv in race.intervals:
        a, b = sorted((sign * iv.lower, sign * iv.upper))
        lo[str(iv.level)], hi[str(iv.level)] = a, b
    return sign * race.median, lo, hi


def run_count(seed: int, granularity: str, sims: int,
              late_leans: str = "measured", *, history_from: float = 0.0,
              scored_at: tuple[float, ...] = SCORED, acta_history: bool = True) -> list[Row]:
    """Project one count at the ``scored_at`` cuts; ``history_from``: the cuts before it
    are not published (a source, or a level of tables, that starts late in the count:
    Peru 2021's department tables began at 93.4%)."""
    sim = cs.simulate(seed, late_leans=late_leans)
    final = sim.final
    fm = float(final["a"] - final["b"])
    sizes = cs.cut_sizes(sim, CUTS)
    params = ModelParams(n_sims=sims, seed=seed, jee=cs.REVIEW)  # the count's own review rates
    rows = []
    scored = [int(np.argmin(np.abs(CUTS - f))) for f in scored_at]
    j0 = int(np.searchsorted(CUTS, history_from - 1e-9))
    if granularity == "units":
        frames = cs.unit_frames(sim, sizes)
    elif granularity == "series":
        hist = cs.series(sim, sizes)
    for i in scored:
        if granularity == "units":
            fr = frames[i]
            p = project_units(fr, cs.CONTEST, params=params, history=frames[j0:i],
                              pairs=(("a", "b"),))
            u = fr.filter(fr["level"] == "area1")  # naive: each row's own counted shares
            rem = (u["actas_total"] - u["actas_counted"]).to_numpy().astype(float)
            wv = (u["actas_counted"] - u["actas_annulled"]).to_numpy().astype(float)
            va, vb = u["v_a"].to_numpy().astype(float), u["v_b"].to_numpy().astype(float)
            per = np.divide(rem, wv, out=np.zeros_like(rem), where=wv > 0)
            naive = float((va - vb).sum() + ((va - vb) * per).sum())
        elif granularity == "series":
            p = project_series(hist[j0:i + 1], cs.CONTEST, params=params, pairs=(("a", "b"),))
            v, f = hist[i]
            naive = (v[0] - v[1]) / f
        else:
            fr = cs.acta_frame(sim, int(sizes[i]))
            earlier = [cs.acta_states(sim, int(c)) for c in sizes[j0:i]] if acta_history else []
            p = project_actas(fr, cs.CONTEST, params=params, history=earlier)
            m = sim.order < sizes[i]
            cm = float((sim.votes[m, 0] - sim.votes[m, 1]).sum())
            naive = cm / max(m.mean(), 1e-9)
        med, lo, hi = _race(p)
        pa = next(c for c in p.candidates if c.code == "a").p_win
        called = p.call.winner if p.call.status is CallStatus.CALLED else None
        rows.append(Row(seed, granularity, float(CUTS[i]), fm, med, naive, lo, hi, pa, called,
                        sim.late_shift, sim.mail_scenario))
    return rows


def summarise(rows: list[Row]) -> dict[str, object]:
    fm = np.array([r.final for r in rows])
    med = np.array([r.median for r in rows])
    naive = np.array([r.naive for r in rows])
    frac = np.array([r.frac for r in rows])
    cov = {}
    for lv in LEVELS:
        lo = np.array([r.lo[str(lv)] for r in rows])
        hi = np.array([r.hi[str(lv)] for r in rows])
        cov[f"{int(lv * 100)}%"] = float(((lo <= fm) & (fm <= hi)).mean())
    by_cut = {}
    for f in sorted(set(frac.tolist())):
        s = frac == f
        lo = np.array([r.lo["0.9"] for r, k in zip(rows, s, strict=True) if k])
        hi = np.array([r.hi["0.9"] for r, k in zip(rows, s, strict=True) if k])
        lo50 = np.array([r.lo["0.5"] for r, k in zip(rows, s, strict=True) if k])
        hi50 = np.array([r.hi["0.5"] for r, k in zip(rows, s, strict=True) if k])
        by_cut[f"{f:.3f}"] = {
            "coverage_50": float(((lo50 <= fm[s]) & (fm[s] <= hi50)).mean()),
            "coverage_90": float(((lo <= fm[s]) & (fm[s] <= hi)).mean()),
            "mae": float(np.abs(med[s] - fm[s]).mean()),
            "mae_naive": float(np.abs(naive[s] - fm[s]).mean()),
            "median_half_width_90": float(np.median((hi - lo) / 2)),
        }
    wrong: dict[int, bool] = {}
    for r in rows:
        if r.called is not None:
            winner = "a" if r.final > 0 else "b"
            wrong.setdefault(r.seed, False)
            if r.called != winner:
                wrong[r.seed] = True
    seeds = sorted({r.seed for r in rows})
    late = np.array([r.mail for r in rows])
    end = frac >= 0.95
    hw = np.array([(r.hi["0.9"] - r.lo["0.9"]) / 2 for r in rows])
    brier = float(np.mean([(r.p_a - (1.0 if r.final > 0 else 0.0)) ** 2 for r in rows]))
    return {
        "counts": len(seeds), "projections": len(rows),
        "coverage": cov,
        # the counts whose late batch leans to the election-day trailer (a mail shift)
        "coverage_late_shift_counts": {
            f"{int(lv * 100)}%": float(np.mean([r.lo[str(lv)] <= r.final <= r.hi[str(lv)]
                                               for r, k in zip(rows, late, strict=True) if k]))
            for lv in LEVELS} if late.any() else None,
        "counts_with_a_wrong_call": int(sum(wrong.values())),
        "share_counts_with_a_wrong_call": float(sum(wrong.values()) / len(seeds)),
        "projections_called": int(sum(r.called is not None for r in rows)),
        "mae": float(np.abs(med - fm).mean()), "mae_naive": float(np.abs(naive - fm).mean()),
        "brier_p_a": brier,
        "end_median_half_width_90": float(np.median(hw[end])),
        "end_median_abs_error": float(np.median(np.abs(med - fm)[end])),
        "end_mean_abs_error": float(np.abs(med - fm)[end].mean()),
        # what any interval of one width for all counts would need: to cover 90% of the
        # projections it must reach the 90th percentile of their errors, so its
        # half-width / median error is at least this (a floor below it can only be met by
        # widths that know in advance which counts will shift)
        "end_error_q90_over_median": float(np.quantile(np.abs(med - fm)[end], 0.9)
                                           / max(np.median(np.abs(med - fm)[end]), 1e-9)),
        "by_cut": by_cut,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--granularity", choices=("units", "series", "actas"), default="units")
    ap.add_argument("--sims", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=None, help="write the summary JSON here")
    ap.add_argument("--history-from", type=float, default=0.0,
                    help="publish no cut before this share counted (a source that starts "
                         "late: 1-5 cuts of history)")
    ap.add_argument("--scored", type=str, default=None,
                    help="comma-separated shares counted to score at (default: "
                         + ",".join(f"{x:g}" for x in SCORED) + ")")
    ap.add_argument("--late-leans", choices=("measured", "mild"), default="measured",
                    help="the late batch outside the mail scenario: leans as measured on "
                         "real counts (default), or not at all (the earlier simulator)")
    ap.add_argument("--no-acta-history", action="store_true",
                    help="per acta: give each cut no earlier cuts (the single-snapshot "
                         "rule sizes the arrival shock, as before the tenth session)")
    a = ap.parse_args(argv)
    t0 = time.time()
    scored = SCORED if a.scored is None else tuple(float(x) for x in a.scored.split(","))
    rows: list[Row] = []
    for s in range(a.first_seed, a.first_seed + a.n):
        rows += run_count(s, a.granularity, a.sims, a.late_leans, history_from=a.history_from,
                          scored_at=scored, acta_history=not a.no_acta_history)
    summ = summarise(rows)
    summ["granularity"] = a.granularity
    summ["late_leans"] = a.late_leans
    summ["command"] = "validation/projection_counts.py " + " ".join(argv or sys.argv[1:])
    summ["seconds"] = round(time.time() - t0, 1)
    summ["machine"] = f"{platform.machine()}, {platform.python_version()}"
    summ["date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    text = json.dumps(summ, indent=1)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
        (a.out.with_suffix(".rows.jsonl")).write_text(
            "\n".join(json.dumps(asdict(r)) for r in rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
