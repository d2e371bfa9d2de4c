"""Projection of the final result from a partial count, with calibrated uncertainty,
and the replay harness that proves (or disproves) the calibration on real counts.

Entry points (pure functions: frames in, frozen results out; docs/projection.md):

* :func:`project_actas` — from a per-acta snapshot (optionally with an earlier result of
  the same mesas as baseline, e.g. the first round);
* :func:`project_units` — from aggregates per reporting unit;
* :func:`project_series` — from national totals alone (no geography);
* :func:`derive_arrival_order` — an arrival order of actas rebuilt from published cuts,
  for per-acta replays;
* :func:`replay_actas`, :func:`replay_units`, :func:`replay_series`, :func:`score_replay`
  and :func:`replay_svg` — the harness.
"""

from escrutinio.projection.model import (
    Baseline,
    JeeOutcomes,
    ModelParams,
    prepare_actas,
    prepare_baseline,
    project_actas,
)
from escrutinio.projection.order import (
    ActaState,
    ArrivalOrder,
    NationalCut,
    UnitProgress,
    derive_arrival_order,
)
from escrutinio.projection.replay import (
    CutMeta,
    ReplayResult,
    replay_actas,
    replay_series,
    replay_svg,
    replay_units,
    score_replay,
)
from escrutinio.projection.result import (
    DEFAULT_CALL_RULE,
    CallRule,
    CallStatus,
    Projection,
)
from escrutinio.projection.units import complete_with_national, project_series, project_units

__all__ = [
    "DEFAULT_CALL_RULE",
    "ActaState",
    "ArrivalOrder",
    "Baseline",
    "CallRule",
    "CallStatus",
    "CutMeta",
    "JeeOutcomes",
    "ModelParams",
    "NationalCut",
    "Projection",
    "ReplayResult",
    "UnitProgress",
    "complete_with_national",
    "derive_arrival_order",
    "prepare_actas",
    "prepare_baseline",
    "project_actas",
    "project_series",
    "project_units",
    "replay_actas",
    "replay_series",
    "replay_svg",
    "replay_units",
    "score_replay",
]
