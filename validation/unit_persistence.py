"""How much of a unit's batch deviation carries over to its next batch? (real counts)

*¿Cuánto de lo que se aparta un lote de una unidad se repite en su lote siguiente?*

The per-unit drift model (``projection/drift.py``) learns how each batch of newly counted
votes in a unit differed from what that unit had counted before (its out-of-sample
residuals). A remainder of k batches deviates by A·(ρ + (1 − ρ)/k) of the one-batch term,
where ρ, the **persistence**, is the lag-1 correlation of each unit's standardised
residuals, pooled over units. Until a count shows pairs of successive batches, ρ is the
declared prior ``PRIOR_PERSISTENCE`` (weight ``PRIOR_WEIGHT`` pairs).

This script measures ρ with the model's own estimator on every real per-unit count in
``../shared/data`` that has at least three cuts — the fit at the last cut, with every
earlier cut as history (the unshrunk ``unit_persistence_measured`` and the number of
pairs behind it); nothing is fitted here and nothing in the model reads it:

* Peru 2021 runoff: ONPE's department, province and district tables (abroad = national −
  Σ units), first round per district as baseline (as in ``replay_2021.py``);
* Peru 2021 first round: the 1,097 districts of every scraped cut (``replay_first_rounds``);
* Peru 2026 first round: every district of the last three cuts (idem).

Usage::

    .venv/bin/python validation/unit_persistence.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import replay_2021 as r21
import replay_first_rounds as fr

from escrutinio.domain import Contest
from escrutinio.projection.drift import PRIOR_PERSISTENCE
from escrutinio.projection.model import ModelParams
from escrutinio.projection.replay import CutMeta, earlier_frames
from escrutinio.projection.units import prepare_units
from escrutinio.sources.peru import (
    PERU_2021_FIRST_ROUND,
    PERU_2021_RUNOFF,
    PERU_2026_FIRST_ROUND,
)


def _last_fit(items: list[tuple[CutMeta, Any, dict[str, Any]]], contest: Contest
              ) -> dict[str, Any]:
    meta, frame, kw = items[-1]
    prep = prepare_units(frame, contest, history=earlier_frames(items, len(items) - 1),
                         params=ModelParams(), **kw)
    d = prep.diagnostics["drift"]
    assert isinstance(d, dict)
    return {"cuts": len(items), "rho": d["unit_persistence_measured"],
            "pairs": int(d["unit_persistence_pairs"]),
            "rho_used": float(d["unit_persistence"]), "last_cut": meta.label}


def _items(cuts: list[fr.Cut]) -> list[tuple[CutMeta, Any, dict[str, Any]]]:
    parents = fr.parents_of(cuts[0].frame["unit_code"].to_list())
    out = []
    for c in cuts:
        kw: dict[str, Any] = {"parents": parents}
        if c.fraction is not None:
            kw["remaining"] = c.fraction
        out.append((CutMeta(c.as_of, c.label, c.label, 0.0, {}), c.frame, kw))
    return out


def measure() -> dict[str, Any]:
    res: dict[str, Any] = {}
    data = r21.load(r21.data_dir())
    snaps = r21.unit_snapshots(data)
    for lv, name in (("area1", "departments"), ("area2", "provinces"),
                     ("area3", "districts")):
        sub = [s for s in snaps if s[1]["level"][0] == lv]
        res[f"peru_2021_runoff_{name}"] = _last_fit(sub, PERU_2021_RUNOFF)
    cuts = fr.load_2021()[:-1]  # the last cut is the final (100%)
    early = cuts[0].frame["unit_code"].to_list()
    res["peru_2021_first_round_districts"] = _last_fit(
        _items(fr.restrict(cuts, early)), PERU_2021_FIRST_ROUND)
    c26, _ = fr.fractions_2026(fr.load_2026())
    part = c26[1:]
    codes = sorted(set.intersection(*[set(c.frame["unit_code"].to_list()) for c in part]))
    res["peru_2026_first_round_districts"] = _last_fit(_items(fr.restrict(part, codes)),
                                                       PERU_2026_FIRST_ROUND)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    res = measure()
    print("| count | cuts | pairs of batches | ρ measured |\n|---|---:|---:|---:|")
    for k, v in res.items():
        rho = "—" if v["rho"] is None else f"{v['rho']:.2f}"
        print(f"| {k} | {v['cuts']} | {v['pairs']} | {rho} |")
    print(f"\nDeclared prior PRIOR_PERSISTENCE = {PRIOR_PERSISTENCE}")
    if args.json:
        args.json.write_text(json.dumps({"counts": res, "prior": PRIOR_PERSISTENCE,
                                         "command": "validation/unit_persistence.py --json "
                                                    + str(args.json)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
