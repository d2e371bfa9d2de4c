"""How far the actas held at Peru's electoral courts (JEE) lean from their unit's other actas.

*Cuánto se apartan las actas observadas (en el JEE) de las demás actas de su unidad.*

The per-unit projection treats the part of a unit held for review as sheets scattered over
the unit, not as a place arriving late; how far such sheets may lean from the unit's
counted ones is a country's measured figure (``CourtOutcomes.lean_margin_sd``, Peru's pack).
This script measures it on the 2021 runoff: the actas at the JEE in ONPE's per-acta state of
8 June 20:23 (Lima) that were counted in the final file, against the other counted actas of
their department, province and district — the vote-weighted RMS of the margin's share
(2 × share difference) over units. It includes sampling noise; the largest level is kept.

    .venv/bin/python validation/review_lean_peru.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl

from escrutinio.domain import AT_JEE
from escrutinio.sources import onpe_files

REPO = Path(__file__).resolve().parents[1]


def measure(data: Path) -> dict[str, dict[str, float]]:
    d = data / "peru-2021-runoff" / "actas"
    state = onpe_files.parse_provisional(
        d / "hist_actas_electorales_20210608T2023_78f03ce.csv.gz").frame
    final = onpe_files.parse_ronderos(d / "actas_electorales_ronderos.pe.csv.gz",
                                      as_of="2021-06-17T00:00:00Z").frame
    jee = [s.value for s in AT_JEE]
    j = (state.select("acta_id", pl.col("status").is_in(jee).alias("held"))
         .join(final.filter(pl.col("status") == "counted"), on="acta_id", how="inner"))
    out: dict[str, dict[str, float]] = {}
    for key in ("area1_code", "area2_code", "area3_code"):
        g = j.group_by(key, "held").agg(pl.col("v_castillo").sum().alias("a"),
                                        pl.col("v_fujimori").sum().alias("b"))
        w = g.filter(pl.col("held")).join(g.filter(~pl.col("held")), on=key, suffix="_o")
        a, b, ao, bo = (w[c].to_numpy().astype(float) for c in ("a", "b", "a_o", "b_o"))
        n, no = a + b, ao + bo
        ok = (n > 0) & (no > 0)
        gap = 2.0 * (a[ok] / n[ok] - ao[ok] / no[ok])
        out[key] = {"units": int(ok.sum()), "held_actas_counted": int(j["held"].sum()),
                    "rms_margin_share": float(np.sqrt((n[ok] * gap ** 2).sum() / n[ok].sum())),
                    "mean_margin_share": float((n[ok] * gap).sum() / n[ok].sum())}
    return out


def main() -> None:
    env = os.environ.get("ESCRUTINIO_DATA_DIR")
    data = Path(env) if env else REPO.parent / "shared" / "data"
    for key, row in measure(data).items():
        print(f"{key}: {row['units']} units; {row['held_actas_counted']} actas held on 8 Jun "
              f"20:23 and counted in the end; RMS {row['rms_margin_share']:.3f}, "
              f"mean {row['mean_margin_share']:+.3f} of the margin's share")


if __name__ == "__main__":
    main()
