"""What changed between two snapshots of the same contest.

A diff never hides a correction: actas whose state changed, counted actas whose figures
changed (an alarm: a counted acta should never change), transitions the lifecycle does not
allow (a counted acta back to pending...), actas that appeared or vanished, and every count
that went down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from escrutinio.count import SnapshotRef
from escrutinio.domain import ALLOWED_TRANSITIONS, Contest, SnapshotKind
from escrutinio.provenance import Provenance

FIGURES = ("electors", "cast", "blank", "null", "challenged")
UNIT_COUNTS = ("actas_counted", "actas_processed", "cast", "electors")


@dataclass(frozen=True, slots=True)
class Transition:
    from_status: str | None  # None: the acta was not in the older snapshot
    to_status: str | None  # None: the acta vanished
    n: int
    allowed: bool


@dataclass(frozen=True, slots=True)
class SnapshotDiff:
    contest_id: str
    kind: SnapshotKind
    older: SnapshotRef
    newer: SnapshotRef
    transitions: tuple[Transition, ...]
    n_state_changes: int
    state_changes: tuple[dict[str, Any], ...]  # acta_id, from, to (up to ``limit``)
    n_irregular: int
    irregular: tuple[dict[str, Any], ...]  # disallowed transitions
    n_counted_changed: int
    counted_changed: tuple[dict[str, Any], ...]  # ALARM: counted actas with new figures
    n_went_down: int
    went_down: tuple[dict[str, Any], ...]  # counts that decreased (units or nation)
    national_delta: dict[str, int] = field(default_factory=dict)
    provenance: Provenance | None = None
    #: per-unit snapshots: units that vanished or appeared between the two cuts, and units
    #: whose acta total changed (level, unit_code, change, before, after); all but the
    #: appeared ones (a unit's first report) are alarms
    n_unit_changes: int = 0
    unit_changes: tuple[dict[str, Any], ...] = ()
    n_unit_alarms: int = 0

    @property
    def alarms(self) -> int:
        return self.n_counted_changed + self.n_irregular + self.n_went_down + self.n_unit_alarms


def _rows(df: pl.DataFrame, limit: int | None) -> tuple[dict[str, Any], ...]:
    return tuple((df if limit is None else df.head(limit)).to_dicts())


def diff_actas(old: pl.DataFrame, new: pl.DataFrame, contest: Contest, older: SnapshotRef,
               newer: SnapshotRef, *, limit: int | None = 100) -> SnapshotDiff:
    cand = contest.candidate_columns
    figs = [*FIGURES, *cand]
    j = old.select("acta_id", "status", *figs).join(
        new.select("acta_id", "status", *figs), on="acta_id", how="full", suffix="_new",
        coalesce=True,
    )
    allowed_pairs = pl.DataFrame(
        [(a.value, b.value) for a, bs in ALLOWED_TRANSITIONS.items() for b in bs],
        schema={"status": pl.String, "status_new": pl.String}, orient="row",
    ).with_columns(pl.lit(True).alias("allowed"))
    j = j.join(allowed_pairs, on=["status", "status_new"], how="left").with_columns(
        pl.col("allowed").fill_null(False)
        | pl.col("status").is_null()  # appeared: any first state is fine
    )
    trans = (j.group_by("status", "status_new", "allowed").len()
             .sort("status", "status_new", nulls_last=True))
    transitions = tuple(Transition(r["status"], r["status_new"], int(r["len"]),
                                   bool(r["allowed"])) for r in trans.iter_rows(named=True))
    changed = j.filter(pl.col("status").ne_missing(pl.col("status_new")))
    state_changes = changed.select("acta_id", pl.col("status").alias("from"),
                                   pl.col("status_new").alias("to")).sort("acta_id")
    irregular = changed.filter(~pl.col("allowed")).select(
        "acta_id", pl.col("status").alias("from"), pl.col("status_new").alias("to")
    ).sort("acta_id")
    both_counted = (pl.col("status") == "counted") & (pl.col("status_new") == "counted")
    fig_changed = pl.any_horizontal([pl.col(f).ne_missing(pl.col(f"{f}_new")) for f in figs])
    cc = j.filter(both_counted & fig_changed)
    counted_changed = cc.select(
        "acta_id",
        *[(pl.col(f"{f}_new").fill_null(0) - pl.col(f).fill_null(0)).alias(f"d_{f}")
          for f in figs],
    ).sort("acta_id")

    def tot(df: pl.DataFrame) -> dict[str, int]:
        counted = df.filter(pl.col("status") == "counted")
        return {"actas_counted": int(counted.height),
                **{c: int(counted[c].fill_null(0).sum()) for c in ("cast", *cand)}}

    t_old, t_new = tot(old), tot(new)
    delta = {k: t_new[k] - t_old[k] for k in t_old}
    went_down = [{"scope": "national", "field": k, "before": t_old[k], "after": t_new[k]}
                 for k in t_old if t_new[k] < t_old[k]]
    return SnapshotDiff(
        contest.id, SnapshotKind.ACTAS, older, newer, transitions,
        state_changes.height, _rows(state_changes, limit),
        irregular.height, _rows(irregular, limit),
        counted_changed.height, _rows(counted_changed, limit),
        len(went_down), tuple(went_down), delta,
        Provenance((older.snapshot_id, newer.snapshot_id), "diff", {"limit": limit}),
    )


def diff_units(old: pl.DataFrame, new: pl.DataFrame, contest: Contest, older: SnapshotRef,
               newer: SnapshotRef, *, limit: int | None = 100) -> SnapshotDiff:
    cols = [*UNIT_COUNTS, *contest.candidate_columns]
    key = ["level", "unit_code"]
    keep = [*key, *cols, *(["actas_total"] if "actas_total" in old.columns
                           and "actas_total" in new.columns else [])]
    full = old.select(keep).with_columns(pl.lit(True).alias("__old")).join(
        new.select(keep).with_columns(pl.lit(True).alias("__new")), on=key, how="full",
        suffix="_new", coalesce=True,
    )
    j = full.filter(pl.col("__old") & pl.col("__new"))
    long = pl.concat([
        j.filter(pl.col(f"{c}_new") < pl.col(c)).select(
            "level", "unit_code", pl.lit(c).alias("field"), pl.col(c).alias("before"),
            pl.col(f"{c}_new").alias("after"))
        for c in cols
    ]).sort("level", "unit_code", "field")
    # a unit that vanished or appeared, or whose acta total changed: the source is not
    # the same between the two cuts (docs/formats.md §3; history warns of the total too)
    vanished = full.filter(pl.col("__new").is_null()).select(
        *key, pl.lit("vanished").alias("change"))
    appeared = full.filter(pl.col("__old").is_null()).select(
        *key, pl.lit("appeared").alias("change"))
    parts = [vanished.with_columns(pl.lit(None, pl.Int64).alias("before"),
                                   pl.lit(None, pl.Int64).alias("after")),
             appeared.with_columns(pl.lit(None, pl.Int64).alias("before"),
                                   pl.lit(None, pl.Int64).alias("after"))]
    if "actas_total" in keep:
        parts.append(j.filter(pl.col("actas_total").is_not_null()
                              & pl.col("actas_total_new").is_not_null()
                              & (pl.col("actas_total") != pl.col("actas_total_new"))).select(
            *key, pl.lit("actas_total").alias("change"),
            pl.col("actas_total").cast(pl.Int64).alias("before"),
            pl.col("actas_total_new").cast(pl.Int64).alias("after")))
    changes = pl.concat(parts).sort("level", "unit_code", "change")

    def nat(df: pl.DataFrame) -> dict[str, int | None]:
        levels = df["level"].unique().to_list()
        lv = "national" if "national" in levels else sorted(levels)[-1]
        sub = df.filter(pl.col("level") == lv)
        # a figure no row carries is unknown, never a change of 0 (e.g. no electors)
        return {c: None if sub[c].null_count() == sub.height else int(sub[c].fill_null(0).sum())
                for c in cols}

    n_old, n_new = nat(old), nat(new)
    delta = {k: (n_new[k] or 0) - (n_old[k] or 0) for k in n_old
             if n_old[k] is not None or n_new[k] is not None}
    return SnapshotDiff(
        contest.id, SnapshotKind.UNITS, older, newer, (), 0, (), 0, (), 0, (),
        long.height, _rows(long, limit), delta,
        Provenance((older.snapshot_id, newer.snapshot_id), "diff", {"limit": limit}),
        changes.height, _rows(changes, limit),
        changes.filter(pl.col("change") != "appeared").height,
    )
