"""Join an earlier result (the *baseline*: a first round, an earlier election) to a count
at the finest level the two share (docs/projection.md §Baseline).

Pure functions, frames in and frames out:

* a per-acta baseline of a per-acta count joins on ``acta_id``;
* a per-unit baseline of a per-acta count joins each acta to its baseline unit through the
  acta's area code (every acta of a district gets its district's earlier shares);
* a per-acta baseline of a per-unit count is summed to the count's level;
* a per-unit baseline finer than the count (districts for a count by department) is summed
  up through the geography's parents to the count's level; a coarser one cannot join
  (:class:`BaselineJoinError`, naming both levels).

The result says the join level and the share of what remains (actas still to count) that
the baseline covers: a baseline of a different candidate set is fine (every baseline
candidate or bloc is a feature), a baseline that joins nothing is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from escrutinio.domain import ActaStatus, Level
from escrutinio.errors import EscrutinioError

#: levels from coarsest to finest; "acta" is finer than every unit level
ORDER: tuple[str, ...] = (Level.NATIONAL.value, Level.AREA1.value, Level.AREA2.value,
                          Level.AREA3.value, "acta")
_ACTA_KEYS = {Level.AREA1.value: "area1_code", Level.AREA2.value: "area2_code",
              Level.AREA3.value: "area3_code"}

LEVEL_NAMES: dict[str, tuple[str, str]] = {
    "national": ("nacional", "national"), "area1": ("area1 (nivel 1)", "area1 (level 1)"),
    "area2": ("area2 (nivel 2)", "area2 (level 2)"), "area3": ("area3 (nivel 3)",
                                                                "area3 (level 3)"),
    "acta": ("acta", "acta"),
}


class BaselineJoinError(EscrutinioError):
    """The baseline cannot be joined to the count (coarser level, or nothing in common):
    a bad option value, exit code 2."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class BaselineJoin:
    """A baseline ready for the model: ``frame`` has the count's key column (``acta_id``
    or ``unit_code``), the baseline's ``v_*`` columns and ``electors``."""

    frame: pl.DataFrame
    key: str
    baseline_level: str  # "acta" or the baseline snapshot's finest unit level
    count_level: str  # "acta" or the count's finest unit level
    join_level: str  # the level at which the two meet
    n_joined: int  # rows of the count (actas or units) with a baseline
    n_rows: int  # rows of the count
    #: share of the actas still to come (or, when acta counts are unknown, of the units
    #: with something to come) that the baseline covers; None when nothing remains
    coverage_remaining: float | None


def _name(level: str) -> tuple[str, str]:
    return LEVEL_NAMES.get(level, (level, level))


def _coarser_error(base_level: str, count_level: str) -> BaselineJoinError:
    be, bn = _name(base_level)
    ce, cn = _name(count_level)
    return BaselineJoinError(
        f"la línea de base está a nivel {be} y el conteo a nivel {ce}: una línea de base "
        "más gruesa que el conteo no se puede unir (use una por acta o por unidades igual "
        "o más finas)",
        f"the baseline is at level {bn} and the count at level {cn}: a baseline coarser "
        "than the count cannot be joined (use one per acta or per units as fine or finer)")


def _nothing_error(base_level: str, count_level: str, join_level: str) -> BaselineJoinError:
    be, bn = _name(base_level)
    ce, cn = _name(count_level)
    je, jn = _name(join_level)
    return BaselineJoinError(
        f"la línea de base (nivel {be}) no comparte ningún código con el conteo (nivel {ce}) "
        f"al unirlas a nivel {je}: no hay línea de base que usar",
        f"the baseline (level {bn}) shares no code with the count (level {cn}) when joined "
        f"at level {jn}: there is no baseline to use")


def _vote_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("v_")]


def _sums(frame: pl.DataFrame) -> list[pl.Expr]:
    cols = _vote_columns(frame)
    out = [pl.col(c).fill_null(0).sum() for c in cols]
    if "electors" in frame.columns:
        # electors unknown anywhere in a group: unknown for the group (never a partial sum)
        out.append(pl.when(pl.col("electors").null_count() > 0).then(None)
                   .otherwise(pl.col("electors").sum()).alias("electors"))
    else:
        out.append(pl.lit(None, pl.Int64).alias("electors"))
    return out


def finest_level(units: pl.DataFrame) -> str:
    levels = set(units["level"].to_list())
    return max(levels, key=lambda lv: ORDER.index(lv) if lv in ORDER else -1)


def roll_up(units: pl.DataFrame, to_level: str, parents: Mapping[str, str]) -> pl.DataFrame:
    """Sum the finest rows of a unit frame up to ``to_level`` through ``parents``
    (child code -> parent code). Rows whose chain of parents is unknown are dropped."""
    level = finest_level(units)
    fine = units.filter(pl.col("level") == level)
    steps = ORDER.index(level) - ORDER.index(to_level)
    if steps < 0:
        raise _coarser_error(level, to_level)
    codes = fine["unit_code"]
    for _ in range(steps):
        codes = codes.replace_strict(dict(parents), default=None, return_dtype=pl.String)
    return (fine.with_columns(codes.alias("unit_code")).filter(pl.col("unit_code").is_not_null())
            .group_by("unit_code").agg(_sums(fine)))


def _coverage(remaining: pl.Series, joined: pl.Series) -> float | None:
    """Share of ``remaining`` (per row) on the rows with a baseline."""
    rem = remaining.cast(pl.Float64).fill_null(0.0).clip(lower_bound=0.0)
    total = float(rem.sum())
    if total <= 0:
        return None
    return float(rem.filter(joined).sum()) / total


def join_for_actas(count: pl.DataFrame, base: pl.DataFrame, *,
                   base_kind: str) -> BaselineJoin:
    """A baseline (``base_kind`` "actas" or "units") for a per-acta count."""
    pending = count["status"] != ActaStatus.COUNTED.value
    if base_kind == "actas":
        cols = _vote_columns(base) + (["electors"] if "electors" in base.columns else [])
        frame = base.select("acta_id", *cols).unique("acta_id", keep="first")
        joined = count["acta_id"].is_in(frame["acta_id"].implode())
        n = int(joined.sum())
        if n == 0:
            raise _nothing_error("acta", "acta", "acta")
        return BaselineJoin(frame, "acta_id", "acta", "acta", "acta", n, count.height,
                            _coverage(pending.cast(pl.Float64), joined))
    level = finest_level(base)
    if level not in _ACTA_KEYS:
        raise _coarser_error(level, "acta")
    key = _ACTA_KEYS[level]
    agg = base.filter(pl.col("level") == level).group_by("unit_code").agg(_sums(base))
    frame = (count.select("acta_id", pl.col(key).alias("unit_code"))
             .join(agg, on="unit_code", how="inner").drop("unit_code"))
    joined = count["acta_id"].is_in(frame["acta_id"].implode())
    n = int(joined.sum())
    if n == 0:
        raise _nothing_error(level, "acta", level)
    return BaselineJoin(frame, "acta_id", level, "acta", level, n, count.height,
                        _coverage(pending.cast(pl.Float64), joined))


def join_for_units(units: pl.DataFrame, base: pl.DataFrame, *, base_kind: str,
                   parents: Mapping[str, str]) -> BaselineJoin:
    """A baseline for a per-unit count (``units``: its finest rows, possibly completed
    with a national remainder unit), summed to the count's level."""
    count_level = finest_level(units)
    fine = units.filter(pl.col("level") == count_level)
    if count_level == Level.NATIONAL.value:
        raise BaselineJoinError(
            "el conteo es solo nacional: una línea de base no tiene unidades con las que "
            "unirse", "the count is national only: a baseline has no units to join")
    if base_kind == "actas":
        key = _ACTA_KEYS[count_level]
        agg = base.group_by(key).agg(_sums(base)).rename({key: "unit_code"})
        base_level = "acta"
    else:
        base_level = finest_level(base)
        if ORDER.index(base_level) < ORDER.index(count_level):
            raise _coarser_error(base_level, count_level)
        agg = roll_up(base, count_level, parents)
    agg = agg.filter(pl.col("unit_code").is_not_null())
    frame = fine.select("unit_code").join(agg, on="unit_code", how="inner")
    joined = fine["unit_code"].is_in(frame["unit_code"].implode())
    n = int(joined.sum())
    if n == 0:
        raise _nothing_error(base_level, count_level, count_level)
    if {"actas_total", "actas_counted"} <= set(fine.columns) and \
            fine["actas_total"].null_count() == 0 and fine["actas_counted"].null_count() == 0:
        remaining = fine["actas_total"] - fine["actas_counted"]
    else:
        remaining = pl.Series([1.0] * fine.height)
    return BaselineJoin(frame, "unit_code", base_level, count_level, count_level, n,
                        fine.height, _coverage(remaining, joined))
