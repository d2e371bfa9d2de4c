"""How far do late blocks of votes lean from what was counted before them? (real counts)

*¿Cuánto se inclinan los bloques tardíos respecto de lo ya contado? (conteos reales)*

The projection gives a vote type with nothing counted yet (mail ballots, abroad, observed
sheets published as their own rows) a declared prior on how far it may lean from the rest:
``PRIOR_TYPE_SD`` on the log-odds (``projection/model.py``, used per acta and per unit).
This script measures that quantity on the real counts of ``../shared/data``; nothing
here is synthetic and nothing is fitted to the synthetic counts:

* **US 2020** (44 states' count progressions, late mail ballots): per state, the log-odds
  of Biden's two-candidate share among the votes counted after the count held a share *f*
  of its final votes, minus the same among the votes counted before (f = 0.70, 0.85,
  0.95; states whose recorded progression starts after f are left out).
* **Peru 2021 runoff** (final per-acta file): abroad against home, Castillo v Fujimori.
* **Peru 2021 first round** (final per-acta file): abroad against home, for every pair of
  the top four candidates (one comparison: the RMS over its pairs is its size).

Pooled: the RMS over the comparisons (24 states, the runoff, the first round), each one
observation — the pairs of one abroad-v-home comparison share one electorate. Counting
every pair as its own observation is also reported (``pooled_rms_every_pair``).

Usage::

    .venv/bin/python validation/late_lean.py [--json validation/results/late_lean.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

import replay_2021 as r21
import replay_us2020 as us

from escrutinio.sources import onpe_files

FRACTIONS = (0.70, 0.85, 0.95)


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def us_leans() -> dict[str, list[float]]:
    """Per f: one lean per state (log-odds, Biden v Trump, late part minus early part)."""
    states = us.load(us.data_file())
    out: dict[str, list[float]] = {f"{f:.2f}": [] for f in FRACTIONS}
    for g in states.values():
        b = g["biden"].to_numpy().astype(float)
        t = g["trump"].to_numpy().astype(float)
        tot = b + t
        if tot.size < 2 or tot[-1] <= 0:
            continue
        for f in FRACTIONS:
            i = int(np.searchsorted(tot, f * tot[-1]))
            if i <= 0 or i >= tot.size:
                continue  # the recorded progression starts after f, or never reaches it
            eb, et = b[i - 1], t[i - 1]
            lb, lt = b[-1] - eb, t[-1] - et
            if lb + lt < 1000 or lb <= 0 or lt <= 0 or eb <= 0 or et <= 0:
                continue
            out[f"{f:.2f}"].append(_logit(lb / (lb + lt)) - _logit(eb / (eb + et)))
    return out


def abroad_leans(frame: pl.DataFrame, columns: list[str]) -> dict[str, float]:
    """Abroad minus home, log-odds of each pair of ``columns`` (counted actas)."""
    f = frame.filter(pl.col("status") == "counted")
    home = f.filter(~pl.col("abroad")).select(columns).sum().row(0)
    away = f.filter(pl.col("abroad")).select(columns).sum().row(0)
    out = {}
    for (i, a), (j, b) in itertools.combinations(enumerate(columns), 2):
        out[f"{a}-{b}"] = (float(np.log(away[i] / away[j]))
                           - float(np.log(home[i] / home[j])))
    return out


def _rms(v: list[float]) -> float:
    return float(np.sqrt(np.mean(np.square(v)))) if v else float("nan")


def measure() -> dict[str, object]:
    data = r21.data_dir()
    res: dict[str, object] = {}
    leans = us_leans()
    res["us_2020_late_part"] = {
        f: {"states": len(v), "rms": _rms(v), "median_abs": float(np.median(np.abs(v))),
            "q90_abs": float(np.quantile(np.abs(v), 0.9))} for f, v in leans.items() if v}
    runoff = onpe_files.parse_ronderos(
        data / "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz",
        as_of="2021-06-17T00:00:00Z").frame
    res["peru_2021_runoff_abroad"] = abroad_leans(runoff, ["v_castillo", "v_fujimori"])
    first = onpe_files.parse_ronderos(
        data / "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz",
        as_of="2021-05-11T09:15:00Z").frame
    vcols = [c for c in first.columns if c.startswith("v_")]
    top = first.filter(pl.col("status") == "counted").select(vcols).sum().row(0)
    top4 = [c for _, c in sorted(zip(top, vcols, strict=True), reverse=True)[:4]]
    fr = abroad_leans(first, top4)
    res["peru_2021_first_round_abroad"] = {"pairs": fr, "rms": _rms(list(fr.values()))}
    # one observation per comparison of a late block with what was counted before it (a
    # state's last 5%; an election's abroad against home, whose candidate pairs share one
    # electorate and are not independent: their RMS is that comparison's size)
    runoff_lean = list(res["peru_2021_runoff_abroad"].values())  # type: ignore[union-attr]
    pooled = leans.get("0.95", []) + runoff_lean + [_rms(list(fr.values()))]
    res["pooled_rms"] = _rms(pooled)
    res["pooled_n"] = len(pooled)
    # for the record: every candidate pair counted as its own observation
    every_pair = leans.get("0.95", []) + runoff_lean + list(fr.values())
    res["pooled_rms_every_pair"] = _rms(every_pair)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    res = measure()
    print(json.dumps(res, indent=1))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
