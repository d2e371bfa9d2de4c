"""How far does each unit's remainder lean from what that unit had counted? (real counts)

*¿Cuánto se aparta lo que falta contar en cada unidad de lo que esa unidad ya contó?*

Before a per-unit count has shown any history, the drift model's error terms are its
declared priors (``projection/drift.py``): the votes still to come in each unit may differ
from the unit's counted votes by ``PRIOR_UNIT_MARGIN_SD`` (20 points of the margin's share,
each unit on its own) on top of a shift shared by all units, ``PRIOR_COMMON_MARGIN_SD``
(5 points). This script measures those two quantities at the first cut of the real
per-unit counts in ``../shared/data``; nothing here is fitted, and nothing in the model
reads it (the figures are recorded in validation/RESULTS-projection.md):

* **Peru 2021 runoff**: the first department, province and district snapshots (ONPE's
  tables from 93.4% counted; abroad = national − Σ units, one more unit) against the final
  per-acta file aggregated to the same units;
* **US 2020**: the 44 states of the NYT progression as units, each at its first recorded
  state (4 Nov 2020, after election night) against its last.

For each unit whose remainder holds at least ``MIN_REMAINDER`` two-candidate votes, the
lean is (margin share of its remainder) − (margin share of its counted votes); the common
part is the remainder-weighted mean over units, the unit part what is left. Reported: the
common part, the RMS of the unit parts (each unit one observation) and their median.

Usage::

    .venv/bin/python validation/unit_remainder_lean.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

import replay_2021 as r21
import replay_us2020 as us

from escrutinio.projection.drift import PRIOR_COMMON_MARGIN_SD, PRIOR_UNIT_MARGIN_SD
from escrutinio.projection.units import REST_CODE

#: remainders smaller than this (two-candidate votes) are left out: a few mesas' lean is
#: their sampling noise, which the model sizes apart once a count has any history
MIN_REMAINDER = 1_000.0


def _summary(counted: np.ndarray, remainder: np.ndarray) -> dict[str, float | int]:
    """``counted``, ``remainder``: (U, 2) votes of the two candidates per unit."""
    rt = remainder.sum(axis=1)
    ct = counted.sum(axis=1)
    keep = (rt >= MIN_REMAINDER) & (ct > 0)
    r, c, w = remainder[keep], counted[keep], rt[keep]
    lean = (r[:, 0] - r[:, 1]) / w - (c[:, 0] - c[:, 1]) / c.sum(axis=1)
    common = float((lean * w).sum() / w.sum()) if w.size else float("nan")
    own = lean - common
    return {"units": int(keep.sum()), "units_left_out": int((~keep).sum()),
            "common": common, "unit_rms": float(np.sqrt((own ** 2).mean())) if own.size
            else float("nan"),
            "unit_median_abs": float(np.median(np.abs(own))) if own.size else float("nan")}


def peru_2021() -> dict[str, dict[str, object]]:
    data = r21.load(r21.data_dir())
    final = data["final"].frame  # type: ignore[attr-defined]
    final = final.filter(pl.col("status") == "counted")
    out: dict[str, dict[str, object]] = {}
    firsts: dict[str, tuple[r21.CutMeta, pl.DataFrame]] = {}
    for meta, frame, _kw in r21.unit_snapshots(data):
        lv = frame["level"].drop_nulls()[-1]
        if lv not in firsts:
            firsts[str(lv)] = (meta, frame)
    keys = {"area1": "area1_code", "area2": "area2_code", "area3": "area3_code"}
    for lv, (meta, frame) in sorted(firsts.items()):
        key = keys[lv]
        fin = final.filter(~pl.col("abroad")).group_by(key).agg(
            pl.col("v_castillo").sum(), pl.col("v_fujimori").sum()).rename({key: "unit_code"})
        fin_ab = final.filter(pl.col("abroad")).select(
            pl.col("v_castillo").sum(), pl.col("v_fujimori").sum())
        fin = pl.concat([fin, fin_ab.with_columns(pl.lit(REST_CODE).alias("unit_code"))
                         .select(fin.columns)])
        units = frame.filter(pl.col("unit_code").is_not_null()
                             & (pl.col("level") != "national")).select(
            "unit_code", pl.col("v_castillo").cast(pl.Float64).fill_null(0),
            pl.col("v_fujimori").cast(pl.Float64).fill_null(0))
        j = units.join(fin, on="unit_code", suffix="_final")
        counted = j.select("v_castillo", "v_fujimori").to_numpy()
        remainder = j.select("v_castillo_final", "v_fujimori_final").to_numpy() - counted
        res: dict[str, object] = {**_summary(counted, np.maximum(remainder, 0.0)),
                                  "cut": meta.label,
                                  "units_not_joined": units.height - j.height}
        out[lv] = res
    return out


def us_2020() -> dict[str, float | int]:
    states = us.load(us.data_file())
    counted, final = [], []
    for g in states.values():
        b = g["biden"].to_numpy().astype(float)
        t = g["trump"].to_numpy().astype(float)
        counted.append((b[0], t[0]))
        final.append((b[-1], t[-1]))
    c, f = np.array(counted), np.array(final)
    return _summary(c, np.maximum(f - c, 0.0))


def measure() -> dict[str, object]:
    return {"peru_2021_runoff_first_snapshot": peru_2021(), "us_2020_first_record": us_2020(),
            "min_remainder_votes": MIN_REMAINDER,
            "priors": {"unit_margin_sd": PRIOR_UNIT_MARGIN_SD,
                       "common_margin_sd": PRIOR_COMMON_MARGIN_SD}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    res = measure()
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
