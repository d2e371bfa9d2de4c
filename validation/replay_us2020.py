"""Replay the US 2020 presidential count progressions (late mail-ballot shifts) through the
national-series projection, one state at a time.

*Repetición de los conteos de EE. UU. 2020 (voto por correo tardío), estado por estado.*

Data: ``us-2020-president-progress`` (the NYT "votes remaining" feed, 44 states + DC, from
4 Nov 2020 13:28 UTC; the swing states PA, GA, AZ, WI, MI, NV, NC are not in it). Each
state is a series of cuts: Biden, Trump and other votes, and the share counted
``total / (total + votes_remaining)`` (the feed's own estimate, clipped at 0). Each cut is
projected with :func:`escrutinio.projection.units.project_series` seeing only that cut and
the earlier ones — the same model and defaults as for any national series — and scored
against the state's last row (the feed's final state; where its last row still expected
votes, the score is against what was counted then: said in the output).

Scores: wrong calls (a called winner who is not the last row's leader), the smallest
P(eventual leader) at any cut, coverage of the 50/80/90/95% intervals of the Biden − Trump
margin, mean absolute error of the projection and of the naive extrapolation (counted
margin / share counted), per state and overall.

    .venv/bin/python validation/replay_us2020.py [--sims 4000] [--state "New York"]...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from escrutinio.domain import Candidate, Contest, ContestKind
from escrutinio.projection.model import ModelParams
from escrutinio.projection.result import CallStatus
from escrutinio.projection.units import project_series

REPO = Path(__file__).resolve().parents[1]
CONTEST = Contest("us-2020-president-state", "US 2020 president (one state)",
                  ContestKind.FIRST_ROUND, "US", "2020-11-03",
                  (Candidate("biden", "Biden", "v_biden"), Candidate("trump", "Trump", "v_trump"),
                   Candidate("other", "Others", "v_other")))
LEVELS = (0.5, 0.8, 0.9, 0.95)


def data_file() -> Path:
    env = os.environ.get("ESCRUTINIO_DATA_DIR")
    base = Path(env) if env else REPO.parent / "shared" / "data"
    return base / "us-2020-president-progress" / "state-changes-excerpt.csv.gz"


def load(path: Path) -> dict[str, pl.DataFrame]:
    df = pl.read_csv(path, infer_schema_length=10_000)
    lead_b = pl.col("leading_candidate_name") == "Biden"
    df = df.with_columns(
        pl.when(lead_b).then(pl.col("leading_candidate_votes"))
        .otherwise(pl.col("trailing_candidate_votes")).alias("biden"),
        pl.when(lead_b).then(pl.col("trailing_candidate_votes"))
        .otherwise(pl.col("leading_candidate_votes")).alias("trump"),
        pl.col("state").str.replace(r" \(EV: \d+\)$", "").alias("name"),
    ).with_columns((pl.col("total_votes_count") - pl.col("biden") - pl.col("trump"))
                   .clip(lower_bound=0).alias("other"))
    out = {}
    for name, g in df.group_by("name"):
        g = g.sort("timestamp").unique(["biden", "trump", "other"], keep="first",
                                       maintain_order=True)
        out[str(name[0])] = g
    return dict(sorted(out.items()))


def replay_state(g: pl.DataFrame, sims: int, seed: int) -> dict[str, object]:
    votes = g.select("biden", "trump", "other").to_numpy().astype(float)
    rem = g["votes_remaining"].to_numpy().astype(float).clip(0, None)
    tot = votes.sum(axis=1)
    frac = tot / np.maximum(tot + rem, 1.0)
    final = votes[-1]
    fm = float(final[0] - final[1])
    winner = "biden" if fm > 0 else "trump"
    rows = []
    hist = [(votes[i].tolist(), float(min(frac[i], 1.0))) for i in range(len(votes))]
    for i in range(len(votes) - 1):  # the last row is the reference
        p = project_series(hist[: i + 1], CONTEST, params=ModelParams(n_sims=sims, seed=seed),
                           pairs=(("biden", "trump"),))
        race = next(r for r in p.races if {r.leader, r.trailer} == {"biden", "trump"})
        sign = 1.0 if race.leader == "biden" else -1.0
        ivs = {iv.level: sorted((sign * iv.lower, sign * iv.upper)) for iv in race.intervals}
        p_w = next(c for c in p.candidates if c.code == winner).p_win
        called = race.call.winner if race.call.status is CallStatus.CALLED else None
        rows.append({
            "pct": 100 * float(frac[i]), "median": sign * race.median, "p_winner": p_w,
            "called": called, "naive": float((votes[i, 0] - votes[i, 1]) / max(frac[i], 1e-9)),
            "cover": {str(lv): bool(ivs[lv][0] <= fm <= ivs[lv][1]) for lv in LEVELS},
            "half_width_90": (ivs[0.9][1] - ivs[0.9][0]) / 2,
        })
    wrong = [r for r in rows if r["called"] is not None and r["called"] != winner]
    return {
        "cuts": len(rows), "final_margin_biden": fm, "final_pct_counted": 100 * float(frac[-1]),
        "biden_share_first": float(votes[0, 0] / votes[0, :2].sum()),
        "biden_share_last": float(final[0] / final[:2].sum()),
        "wrong_calls": len(wrong), "min_p_winner": min((r["p_winner"] for r in rows),
                                                       default=None),
        "coverage": {str(lv): float(np.mean([r["cover"][str(lv)] for r in rows]))
                     for lv in LEVELS} if rows else None,
        "mae": float(np.mean([abs(r["median"] - fm) for r in rows])) if rows else None,
        "mae_naive": float(np.mean([abs(r["naive"] - fm) for r in rows])) if rows else None,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--state", action="append", default=None)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    t0 = time.time()
    states = load(data_file())
    res = {}
    for name, g in states.items():
        if a.state and name not in a.state:
            continue
        res[name] = replay_state(g, a.sims, a.seed)
    rows = [r for s in res.values() for r in s["rows"]]  # type: ignore[attr-defined]
    summary = {
        "states": len(res), "cuts": len(rows),
        "wrong_calls": int(sum(s["wrong_calls"] for s in res.values())),  # type: ignore[misc]
        "states_with_a_wrong_call": [n for n, s in res.items() if s["wrong_calls"]],
        "min_p_eventual_leader": min(r["p_winner"] for r in rows) if rows else None,
        "coverage": {str(lv): float(np.mean([r["cover"][str(lv)] for r in rows]))
                     for lv in LEVELS} if rows else None,
        "mae": float(np.mean([abs(r["median"] - s["final_margin_biden"])
                              for s in res.values() for r in s["rows"]])),  # type: ignore[attr-defined]
        "mae_naive": float(np.mean([abs(r["naive"] - s["final_margin_biden"])
                                    for s in res.values() for r in s["rows"]])),  # type: ignore[attr-defined]
        "command": "validation/replay_us2020.py " + " ".join(argv or sys.argv[1:]),
        "seconds": round(time.time() - t0, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    table = ["| state | cuts | Biden share first → last | wrong calls | min P(leader) | "
             "cov 50/80/90/95 | MAE proj / naive |", "|---|---:|---|---:|---:|---|---|"]
    for n, s in res.items():
        if not s["cuts"]:
            continue
        cov = s["coverage"]
        table.append(
            f"| {n} | {s['cuts']} | {100 * s['biden_share_first']:.2f}% → "  # type: ignore[operator]
            f"{100 * s['biden_share_last']:.2f}% | {s['wrong_calls']} | "  # type: ignore[operator]
            f"{s['min_p_winner']:.3f} | "
            + "/".join(f"{100 * v:.0f}" for v in cov.values())  # type: ignore[union-attr]
            + f" | {s['mae']:,.0f} / {s['mae_naive']:,.0f} |")
    print("\n".join(table))
    print(json.dumps(summary, indent=1))
    if a.out:
        a.out.write_text(json.dumps({"summary": summary, "states": res}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
