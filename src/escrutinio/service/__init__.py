"""The application service: every question the CLI and the web layer ask of a store,
answered in one place, with one set of defaults. Each function takes a store and
parameters, loads what the analysis needs and returns its frozen result with provenance;
presenters only parse, call and format.

One module per question:

* :mod:`~escrutinio.service.ingest`: parser detection, parsing, ingest;
* :mod:`~escrutinio.service.count`: the count state by level, levels and their names;
* :mod:`~escrutinio.service.history`: the whole-country snapshots and the lead history;
* :mod:`~escrutinio.service.diff`: what changed between two snapshots;
* :mod:`~escrutinio.service.projection`: one projection for every caller, and the
  projection over time; its inputs in :mod:`~escrutinio.service.baseline` (baseline,
  review outcome rates) and :mod:`~escrutinio.service.units` (unit cuts);
* :mod:`~escrutinio.service.replay`: the replay of a stored count, scored against its
  final result, and the rebuilt per-acta timeline of the dashboard's replay mode.

The names below are re-exported so ``from escrutinio import service;
service.project(...)`` and ``from escrutinio.service import X`` keep working. They are
loaded on first use (PEP 562): ``escrutinio ingest`` needs only
:mod:`~escrutinio.service.ingest`, and importing every module here (the projection's
baseline, numpy...) cost a fifth of its run.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from escrutinio.service.baseline import (
        JEE_DEFAULT_COUNTRIES,
        KNOWN_PREVIOUS_ROUND,
        PREVIOUS_ROUND_KEY,
        REVIEW_OUTCOMES_KEY,
        ResolvedBaseline,
        default_baseline_contest,
        describe_baseline,
        first_round_actas,
        resolve_baseline,
        review_outcomes,
        unknown_review,
    )
    from escrutinio.service.common import (
        Loaded,
        default_contest,
        load,
        snapshot_ref,
        stored_frame,
        warning_record,
    )
    from escrutinio.service.count import (
        area_labels,
        area_parents,
        latest_with_level,
        level_names,
        levels_of,
        source_share_counted,
        state,
        state_of,
    )
    from escrutinio.service.diff import DIFF_LIMIT, diff
    from escrutinio.service.history import history, history_snapshots
    from escrutinio.service.ingest import (
        LeavesAhead,
        Parser,
        detect_parser,
        ingest,
        ingest_warnings,
        parse_paths,
        source_notes,
    )
    from escrutinio.service.projection import (
        DEFAULT_SEED,
        DEFAULT_SIMS,
        ProjectionHistory,
        ProjectionPoint,
        project,
        projection_history,
        race_between,
    )
    from escrutinio.service.replay import (
        DEFAULT_FROM_PCT,
        DEFAULT_ORDER_SEED,
        DEFAULT_TILT_BY,
        REPLAY_MODES,
        TILT_BY,
        RebuiltTimeline,
        replay,
    )
    from escrutinio.service.units import (
        UnitCut,
        coverage_warnings,
        earlier_unit_cuts,
        metadata_fraction,
        national_cut_at,
        unit_cut,
        unit_cut_warnings,
    )

#: re-exported name -> the module of this package that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["JEE_DEFAULT_COUNTRIES", "KNOWN_PREVIOUS_ROUND", "PREVIOUS_ROUND_KEY",
                     "REVIEW_OUTCOMES_KEY", "ResolvedBaseline", "default_baseline_contest",
                     "describe_baseline", "first_round_actas", "resolve_baseline",
                     "review_outcomes", "unknown_review"], "baseline"),
    **dict.fromkeys(["Loaded", "default_contest", "load", "snapshot_ref", "stored_frame",
                     "warning_record"], "common"),
    **dict.fromkeys(["area_labels", "area_parents", "latest_with_level", "level_names",
                     "levels_of", "source_share_counted", "state", "state_of"], "count"),
    "diff": "diff",
    "DIFF_LIMIT": "diff",
    **dict.fromkeys(["history", "history_snapshots"], "history"),
    **dict.fromkeys(["LeavesAhead", "Parser", "detect_parser", "ingest", "ingest_warnings",
                     "parse_paths", "source_notes"], "ingest"),
    **dict.fromkeys(["DEFAULT_SEED", "DEFAULT_SIMS", "ProjectionHistory", "ProjectionPoint",
                     "project", "projection_history", "race_between"], "projection"),
    **dict.fromkeys(["DEFAULT_FROM_PCT", "DEFAULT_ORDER_SEED", "DEFAULT_TILT_BY",
                     "REPLAY_MODES", "TILT_BY", "RebuiltTimeline", "replay"], "replay"),
    **dict.fromkeys(["UnitCut", "coverage_warnings", "earlier_unit_cuts", "metadata_fraction",
                     "national_cut_at", "unit_cut", "unit_cut_warnings"], "units"),
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(ModuleType):
    """Keeps a re-exported function from being replaced by its namesake module: importing
    ``escrutinio.service.diff`` sets the package's ``diff`` attribute to the module, and
    ``service.diff(...)`` must stay the function, as when everything was imported here."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and _EXPORTS.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "DEFAULT_FROM_PCT", "DEFAULT_ORDER_SEED", "DEFAULT_SEED", "DEFAULT_SIMS",
    "DEFAULT_TILT_BY", "DIFF_LIMIT", "JEE_DEFAULT_COUNTRIES", "KNOWN_PREVIOUS_ROUND",
    "PREVIOUS_ROUND_KEY",
    "REPLAY_MODES", "REVIEW_OUTCOMES_KEY", "TILT_BY", "LeavesAhead", "Loaded", "Parser",
    "ProjectionHistory",
    "ProjectionPoint", "RebuiltTimeline", "ResolvedBaseline", "UnitCut", "area_labels",
    "area_parents", "coverage_warnings", "default_baseline_contest", "default_contest",
    "describe_baseline",
    "detect_parser", "diff", "earlier_unit_cuts", "first_round_actas", "history",
    "history_snapshots", "ingest", "ingest_warnings", "latest_with_level", "level_names",
    "levels_of", "load", "metadata_fraction", "national_cut_at", "parse_paths", "project",
    "projection_history", "race_between", "replay", "resolve_baseline", "review_outcomes",
    "snapshot_ref", "source_notes", "source_share_counted", "state", "state_of",
    "stored_frame", "unit_cut",
    "unit_cut_warnings", "unknown_review", "warning_record",
]
