"""Where does the count stand? Totals at every level, progress, margin and hurdle.

Pure functions: canonical frames in (see ``domain``), frozen results out. Definitions
(docs/methods.md §1, docs/count.md):

* **actas contabilizadas** = counted + annulled + mesa not installed (ONPE's CONTABILIZA);
  **actas procesadas** = contabilizadas + observed/at the JEE/lost/destroyed. The two
  percentages are always reported apart.
* Candidate votes come only from counted actas. An annulled acta's ballots stay in
  ``cast`` and count as null (as in ONPE's final files); no candidate gets them.
* **turnout** = cast / electors over the actas with figures (counted and annulled).
* **margin** = leader − runner-up in valid votes; in points of valid votes:
  100·margin/valid.
* **hurdle**: with margin M ≥ 0 and R two-candidate votes still to come, the trailer needs
  s = 1/2 + M/(2R) of them (exact fraction). s > 1 → cannot catch up. When the source does
  not publish acta counts (``actas_known`` false), R is unknown and so is the hurdle: it is
  never reported as "nothing remains".
* **the race for the runoff** (first rounds with three or more candidates): the same hurdle
  between the second and the third, who are fighting for the second place on the runoff
  ballot (``CountState.runoff_race``; Peru 2026: Sánchez v López Aliaga, ~26,000 votes).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from fractions import Fraction
from typing import cast, overload

import polars as pl

from escrutinio.domain import (
    AT_JEE,
    CONTABILIZADA,
    PROCESADA,
    ActaStatus,
    Contest,
    ContestKind,
    Level,
)
from escrutinio.provenance import Provenance

LEVEL_KEYS: dict[Level, str | None] = {
    Level.NATIONAL: None,
    Level.AREA1: "area1_code",
    Level.AREA2: "area2_code",
    Level.AREA3: "area3_code",
}


@dataclass(frozen=True, slots=True)
class CandidateVotes:
    code: str
    name: str
    votes: int
    pct_valid: float  # 100 * votes / valid (0 when no valid votes yet)


@dataclass(frozen=True, slots=True)
class UnitState:
    """The count in one reporting unit (nation, department, country abroad...)."""

    level: Level
    code: str
    name: str
    abroad: bool | None
    actas_total: int
    actas_counted: int  # contabilizadas
    actas_processed: int  # procesadas
    actas_jee: int
    actas_pending: int
    actas_annulled: int
    actas_not_installed: int
    pct_counted: float
    pct_processed: float
    #: electors of the actas with figures (counted + annulled); None when the source has
    #: no electors at all (unknown, never 0)
    electors: int | None
    electors_total: int | None  # electors of every acta, when known
    cast: int
    valid: int
    blank: int | None  # None: the source has no blank votes (unknown, never 0)
    null: int | None  # None: the source has no null votes
    challenged: int | None  # None: the source has no challenged ballots
    turnout: float | None  # percent
    candidates: tuple[CandidateVotes, ...]
    leader: str | None
    runner_up: str | None
    margin_votes: int
    margin_pct_valid: float
    #: False when the source publishes no acta counts (the acta fields then read 0 and the
    #: percentages 0.0: show them as unknown, never as "0 of 0")
    actas_known: bool = True
    #: rows of the source rejected at ingest (they broke an acta rule) and rows listed with
    #: no data at all (``row_without_data``): their votes are unknown, they are part of
    #: ``actas_total`` (so of every percentage) and of what remains, never of the counted
    actas_rejected: int = 0
    actas_missing: int = 0


class HurdleStatus(StrEnum):
    CAN_CATCH_UP = "can_catch_up"  # s <= 1
    CANNOT_CATCH_UP = "cannot_catch_up"  # s > 1 with the remaining actas
    TIED = "tied"  # M = 0: the trailer needs just over half
    NOTHING_REMAINING = "nothing_remaining"  # R = 0
    UNKNOWN_REMAINING = "unknown_remaining"  # the source does not say how many actas remain


@dataclass(frozen=True, slots=True)
class Hurdle:
    """What the trailer would need from the remaining votes (docs/methods.md §1)."""

    leader: str | None
    trailer: str | None
    margin: int
    remaining_two_candidate: int | None  # R, estimated, never negative; None: unknown
    required_share: Fraction | None  # s = 1/2 + M/(2R), two-candidate base; None if R = 0
    status: HurdleStatus
    basis: str  # how R was obtained
    #: rejected or missing rows (actas or units) whose votes are unknown: R includes an
    #: estimate for the actas among them, and nothing is ever said to "remain" at zero
    unresolved: int = 0
    #: actas not yet contabilizadas (pending, observed, at the JEE, lost, rejected,
    #: missing): while any remains the hurdle is never "nothing remains"
    outstanding: int = 0
    #: corrections of already-counted votes the count has shown (a projection keeps one
    #: more possible): "cannot catch up" is then said with that exception
    corrections: int = 0

    @property
    def required_pct(self) -> float | None:
        return None if self.required_share is None else 100 * float(self.required_share)

    def sentence(self, names: dict[str, str] | None = None) -> tuple[str, str]:
        """The hurdle in one sentence, (Spanish, English); ``names`` maps candidate codes
        to the names to show."""
        if self.leader is None:
            return "sin votos todavía", "no votes yet"
        trailer = (names or {}).get(self.trailer or "", self.trailer or "")
        es, en = self._sentence(trailer)
        if self.corrections and self.status in (HurdleStatus.NOTHING_REMAINING,
                                                HurdleStatus.CANNOT_CATCH_UP):
            n = f"{self.corrections:,}"
            es += (f", salvo por correcciones de lo ya contado como las {n} que este conteo ya "
                   "tuvo")
            en += (f", except through corrections of votes already counted like the {n} "
                   "this count has had")
        if self.unresolved:
            n = f"{self.unresolved:,}"
            es += (f" (incluye {n} filas rechazadas o faltantes cuyos votos se desconocen; "
                   "estimadas como actas por contar)")
            en += (f" (includes {n} rejected or missing rows whose votes are unknown, "
                   "estimated as actas still to come)")
        return es, en

    def _sentence(self, trailer: str) -> tuple[str, str]:
        if self.status is HurdleStatus.UNKNOWN_REMAINING and not self.unresolved \
                and self.outstanding:
            return (f"quedan {self.outstanding:,} actas sin contabilizar cuyo aporte no se "
                    f"puede estimar: no se puede calcular cuánto necesita {trailer}",
                    f"{self.outstanding:,} actas not yet counted remain and what they hold "
                    f"cannot be estimated: what {trailer} needs cannot be computed")
        if self.status is HurdleStatus.UNKNOWN_REMAINING and self.unresolved:
            return (f"quedan {self.unresolved:,} filas rechazadas o faltantes cuyos votos se "
                    f"desconocen: no se puede calcular cuánto necesita {trailer}",
                    f"{self.unresolved:,} rejected or missing rows with unknown votes "
                    f"remain: what {trailer} needs cannot be computed")
        if self.status is HurdleStatus.UNKNOWN_REMAINING and "estimate" in self.basis:
            return (f"la fuente no publica actas, solo su propia estimación de lo contado: "
                    f"no se puede calcular con exactitud cuánto necesita {trailer} (la "
                    "proyección usa esa estimación, con su incertidumbre)",
                    "the source publishes no acta counts, only its own estimate of what was "
                    f"counted: what {trailer} needs cannot be computed exactly (the "
                    "projection uses that estimate, with its uncertainty)")
        if self.status is HurdleStatus.UNKNOWN_REMAINING:
            return (f"la fuente no publica cuánto falta contar: no se puede calcular cuánto "
                    f"necesita {trailer}",
                    f"the source does not publish how much remains to count: what {trailer} "
                    "needs cannot be computed")
        if self.status is HurdleStatus.NOTHING_REMAINING:
            return (f"no quedan votos por contar: {trailer} ya no puede remontar",
                    f"no votes remain to be counted: {trailer} cannot catch up")
        pct, rem = self.required_pct, self.remaining_two_candidate or 0
        if self.status is HurdleStatus.CANNOT_CATCH_UP:
            return (f"{trailer} no puede remontar con lo que falta contar (necesitaría "
                    f"{pct:.2f}% de ~{rem:,} votos)",
                    f"{trailer} cannot catch up with what is left to count (would need "
                    f"{pct:.2f}% of ~{rem:,} votes)")
        return (f"{trailer} necesita {pct:.3f}% de los ~{rem:,} votos de ambos candidatos "
                "que faltan",
                f"{trailer} needs {pct:.3f}% of the ~{rem:,} two-candidate votes still to come")


def hurdle(margin: int, remaining: int, leader: str | None = None,
           trailer: str | None = None, basis: str = "", unresolved: int = 0,
           outstanding: int = 0) -> Hurdle:
    """Exact hurdle. ``margin`` must be >= 0 (leader minus trailer); ``remaining`` is the
    number of two-candidate (leader + trailer) votes still to come; ``unresolved`` the
    rejected or missing rows behind it, ``outstanding`` the actas not yet contabilizadas
    (with any of either, nothing is ever said to remain at 0: unknown instead)."""
    if margin < 0:
        raise ValueError("margin must be >= 0: pass the leader first")
    r = max(0, int(remaining))
    if r == 0 and (unresolved or outstanding):
        return Hurdle(leader, trailer, margin, None, None, HurdleStatus.UNKNOWN_REMAINING,
                      basis, unresolved, max(outstanding, unresolved))
    if r == 0:
        return Hurdle(leader, trailer, margin, 0, None,
                      HurdleStatus.TIED if margin == 0 else HurdleStatus.NOTHING_REMAINING, basis)
    s = Fraction(1, 2) + Fraction(margin, 2 * r)
    if margin == 0:
        status = HurdleStatus.TIED
    elif s > 1:
        status = HurdleStatus.CANNOT_CATCH_UP
    else:
        status = HurdleStatus.CAN_CATCH_UP
    return Hurdle(leader, trailer, margin, r, s, status, basis, unresolved, outstanding)


@dataclass(frozen=True, slots=True)
class SnapshotRef:
    snapshot_id: str
    as_of: datetime
    label: str


@dataclass(frozen=True, slots=True)
class CountState:
    contest_id: str
    snapshot: SnapshotRef
    level: Level
    national: UnitState
    home: UnitState | None
    abroad: UnitState | None
    units: tuple[UnitState, ...]  # at ``level`` (empty for national)
    hurdle: Hurdle
    n_rejected: int
    provenance: Provenance
    #: first rounds with 3+ candidates: the hurdle between the second and the third
    runoff_race: Hurdle | None = None
    #: the source's own estimate of the share of the votes counted, percent (a national
    #: series' ``pct_votes_counted``); None when it gives none. Not an acta count
    source_pct_counted: float | None = None
    #: what a per-unit cut leaves out of its national row (units missing, actas the listed
    #: units do not cover), each ``{"code", "es", "en"}``; set by the service
    #: (``service.coverage_warnings``), empty when nothing is missing
    coverage_warnings: tuple[dict[str, str], ...] = ()


# --- aggregation of acta frames --------------------------------------------------------

#: the finest grouping of acta frames: every coarser level (and the nation) is a roll-up
#: of these groups, so one pass over the actas serves every level
_FINE_KEYS = ["area1_code", "area2_code", "area3_code", "abroad"]
_FIGURES = ["electors", "cast", "blank", "null", "challenged"]

#: pseudo statuses of the rows the source held but ingest did not accept: they are actas
#: whose votes are unknown (never zero), counted in every denominator and in what remains
REJECTED = "rejected"  # the row broke an acta rule (e.g. the turnout identity)
MISSING = "missing"  # the source lists the acta with no data at all (``row_without_data``)
#: rejection rules under which the acta itself is still in the frame (a repeated copy)
_KEPT_RULES = ("duplicate_acta_identical",)


def unresolved_actas(rejected: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """The actas behind a snapshot's rejected rows (``Store.load_row_reports``, severity
    ``reject``), as rows of ``frame``'s schema with status :data:`REJECTED` or
    :data:`MISSING`, their location and electors when the raw row has them, and no
    figures. One row per source line; an acta rejected on several lines (every copy of a
    duplicate) counts once, and an acta still present in ``frame`` not at all."""
    rep = rejected
    if "severity" in rep.columns:
        rep = rep.filter(pl.col("severity") == "reject")
    rep = rep.filter(~pl.col("rule").is_in(_KEPT_RULES))
    if rep.height == 0:
        return frame.clear()
    missing_lines = rep.filter(pl.col("rule") == "row_without_data")["line"]
    # one acta per source line (a row failing several rules has several reports); reports
    # without a line number are each their own row
    rep = pl.concat([rep.filter(pl.col("line").is_not_null())
                     .unique("line", keep="first", maintain_order=True),
                     rep.filter(pl.col("line").is_null())])
    raw = pl.col("raw").fill_null("{}")
    rows = rep.select(
        pl.coalesce(pl.col("acta_id"), raw.str.json_path_match("$.acta_id")).alias("acta_id"),
        *[raw.str.json_path_match(f"$.{c}").alias(c)
          for c in ("area1_code", "area2_code", "area3_code")],
        raw.str.json_path_match("$.abroad").str.to_lowercase().is_in(["true", "1"])
        .alias("abroad"),
        raw.str.json_path_match("$.electors").cast(pl.Float64, strict=False)
        .cast(pl.Int64, strict=False).alias("electors"),
        pl.when(pl.col("line").is_in(missing_lines.implode())).then(pl.lit(MISSING))
        .otherwise(pl.lit(REJECTED)).alias("status"),
    )
    with_id = rows.filter(pl.col("acta_id").is_not_null())
    with_id = with_id.unique("acta_id", keep="first", maintain_order=True).join(
        frame.select("acta_id"), on="acta_id", how="anti")
    rows = pl.concat([with_id, rows.filter(pl.col("acta_id").is_null())])
    rows = rows.with_columns(pl.col("abroad").fill_null(False))
    return pl.concat([frame.clear(), rows], how="diagonal_relaxed").select(frame.columns)


def _acta_groups(df: pl.DataFrame, keys: list[str], columns: list[str]) -> pl.DataFrame:
    """Plain sums of the figures per ``keys`` × status × (electors > 0): every condition
    of the aggregates below is then a condition on a group, and the one pass over the
    actas is the fast path of polars (sums, no expression evaluated per group)."""
    return df.group_by(*keys, "status", (pl.col("electors") > 0).alias("__positive")).agg(
        pl.len().cast(pl.Int64).alias("__len"),
        pl.col("electors").count().cast(pl.Int64).alias("__electors_n"),
        *[pl.col(c).sum() for c in dict.fromkeys([*_FIGURES, *columns])],
    )


def _count(mask: pl.Expr) -> pl.Expr:
    """Number of actas of a group if ``mask`` holds for it, else 0."""
    return pl.when(mask).then(pl.col("__len")).otherwise(0)


def _sum(col: str, mask: pl.Expr) -> pl.Expr:
    """Sum of ``col`` of a group if ``mask`` holds for it, else 0 (null figures count 0)."""
    return pl.when(mask).then(pl.col(col)).otherwise(0).fill_null(0)


def _acta_terms(contest: Contest) -> list[pl.Expr]:
    """Per acta group (:func:`_acta_groups`), its contribution to each canonical unit
    column: unit aggregates are plain sums of these (evaluated once over all groups, not
    per group), and they roll up (``__electors_nulls`` makes ``electors_total`` null at
    the end)."""
    st = pl.col("status")
    counted = st == ActaStatus.COUNTED.value
    annulled = st == ActaStatus.ANNULLED.value
    with_figures = counted | annulled
    return [
        pl.col("__len").alias("actas_total"),
        _count(st.is_in([x.value for x in CONTABILIZADA])).alias("actas_counted"),
        _count(st.is_in([x.value for x in PROCESADA])).alias("actas_processed"),
        _count(st.is_in([x.value for x in AT_JEE])).alias("actas_jee"),
        _count(st == ActaStatus.PENDING.value).alias("actas_pending"),
        _count(annulled).alias("actas_annulled"),
        _count(st == ActaStatus.NOT_INSTALLED.value).alias("actas_not_installed"),
        _count(st == REJECTED).alias("actas_rejected"),
        _count(st == MISSING).alias("actas_missing"),
        _sum("electors", with_figures).alias("electors"),
        pl.col("electors").alias("electors_total"),
        (pl.col("__len") - pl.col("__electors_n")).alias("__electors_nulls"),
        _sum("cast", with_figures).alias("cast"),
        _sum("blank", counted).alias("blank"),
        (_sum("null", counted) + _sum("cast", annulled)).alias("null"),
        _sum("challenged", counted).alias("challenged"),
        *[_sum(c, counted).alias(c) for c in contest.candidate_columns],
    ]


def _rate_terms(columns: list[str]) -> list[pl.Expr]:
    """Terms of the sums behind the two-candidate rates and mean electors of the hurdle
    estimate, per acta group: rated actas are counted ones with electors > 0."""
    rated = (pl.col("status") == ActaStatus.COUNTED.value) & pl.col("__positive")
    return [
        _count(rated).alias("__rated_n"),
        _sum("electors", rated).alias("__rated_electors"),
        *[_sum(c, rated).alias(f"__rated_{c}") for c in columns],
        pl.col("electors").alias("__electors_sum"),
        pl.col("__electors_n"),
    ]


def _fine_aggregates(df: pl.DataFrame, contest: Contest) -> pl.DataFrame:
    """One pass over the actas: unit sums and hurdle sums per finest group."""
    cand = contest.candidate_columns
    return _sum_terms(_acta_groups(df, _FINE_KEYS, cand), _FINE_KEYS,
                      [*_acta_terms(contest), *_rate_terms(cand)])


def _sum_terms(groups: pl.DataFrame, keys: list[str], terms: list[pl.Expr]) -> pl.DataFrame:
    """Evaluate ``terms`` on every group row, then sum them by ``keys`` (plain sums)."""
    t = groups.select(*keys, *terms)
    sums = pl.exclude(keys).sum()
    return t.group_by(keys).agg(sums) if keys else t.select(sums)


def _roll_up(fine: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Sum fine groups by ``keys`` (none: one national row) into canonical unit columns."""
    sums = [pl.col(c).sum() for c in fine.columns
            if c not in _FINE_KEYS and not c.startswith("__rated_")
            and c not in ("__electors_sum", "__electors_n")]
    out = fine.group_by(keys).agg(sums) if keys else fine.select(sums)
    return out.with_columns(
        pl.when(pl.col("__electors_nulls") > 0).then(None)
        .otherwise(pl.col("electors_total")).alias("electors_total")
    ).drop("__electors_nulls")


def _acta_aggregates(df: pl.DataFrame, contest: Contest, keys: list[str]) -> pl.DataFrame:
    """Aggregate a canonical acta frame into the canonical unit columns, by ``keys``."""
    out = _sum_terms(_acta_groups(df, keys, contest.candidate_columns), keys,
                     _acta_terms(contest))
    return out.with_columns(
        pl.when(pl.col("__electors_nulls") > 0).then(None)
        .otherwise(pl.col("electors_total")).alias("electors_total")
    ).drop("__electors_nulls")


def _finish_units(agg: pl.DataFrame, contest: Contest) -> pl.DataFrame:
    """Add valid, percentages, turnout, leader, runner-up and margin to unit aggregates."""
    cand = contest.candidate_columns
    codes = [c.code for c in contest.candidates]
    agg = agg.with_columns(pl.sum_horizontal([pl.col(c).fill_null(0) for c in cand])
                           .alias("valid"))
    if cand:
        # leader: the first candidate (contest order) with the most votes; runner-up: the
        # first of the others with the most (a stable sort by votes, descending), in
        # polars: numpy's import alone would cost a count command ~0.07 s. Each step is
        # its own column, so the expressions stay linear in the number of candidates.
        votes = [pl.col(c).fill_null(0) for c in cand]
        top, first, second = (pl.col(f"__{x}") for x in ("top", "first", "second"))
        agg = agg.with_columns(pl.max_horizontal(votes).alias("__top"))
        agg = agg.with_columns(pl.coalesce(
            [pl.when(v == top).then(pl.lit(i)) for i, v in enumerate(votes)]).alias("__first"))
        rest = [pl.when(first == i).then(None).otherwise(v) for i, v in enumerate(votes)]
        agg = agg.with_columns(pl.max_horizontal(rest).alias("__second"))  # NULL if alone
        has_votes = top > 0
        agg = agg.with_columns(
            pl.when(has_votes).then(pl.coalesce(
                [pl.when(first == i).then(pl.lit(code)) for i, code in enumerate(codes)]))
            .otherwise(None).cast(pl.String).alias("leader"),
            pl.when(has_votes).then(pl.coalesce(
                [pl.when(r == second).then(pl.lit(code)) for r, code in zip(rest, codes,
                                                                            strict=True)]))
            .otherwise(None).cast(pl.String).alias("runner_up"),
            (top - second.fill_null(0)).cast(pl.Int64).alias("margin_votes"),
        ).drop("__top", "__first", "__second")
    else:
        agg = agg.with_columns(pl.lit(None, pl.String).alias("leader"),
                               pl.lit(None, pl.String).alias("runner_up"),
                               pl.lit(0, pl.Int64).alias("margin_votes"))
    tot = pl.col("actas_total")
    return agg.with_columns(
        pl.when(tot > 0).then(100 * pl.col("actas_counted") / tot).otherwise(0.0)
        .alias("pct_counted"),
        pl.when(tot > 0).then(100 * pl.col("actas_processed") / tot).otherwise(0.0)
        .alias("pct_processed"),
        pl.when(pl.col("electors") > 0).then(100 * pl.col("cast") / pl.col("electors"))
        .otherwise(None).alias("turnout"),
        pl.when(pl.col("valid") > 0).then(100 * pl.col("margin_votes") / pl.col("valid"))
        .otherwise(0.0).alias("margin_pct_valid"),
    )


def _to_states(units: pl.DataFrame, contest: Contest, level: Level,
               names: dict[str, str]) -> tuple[UnitState, ...]:
    cand = contest.candidates
    n = units.height
    ints = ["actas_total", "actas_counted", "actas_processed", "actas_jee", "actas_pending",
            "actas_annulled", "actas_not_installed", "electors", "cast", "valid", "blank",
            "null", "challenged", "actas_rejected", "actas_missing", *[c.column for c in cand]]
    units = units.with_columns(pl.lit(0, pl.Int64).alias(c) for c in
                               ("actas_rejected", "actas_missing") if c not in units.columns)
    # whole columns to Python lists at once (no per-row polars call); the shares of
    # valid votes are computed here too (100 * votes / valid, as in Python)
    valid = pl.col("valid").fill_null(0)
    cols = units.select(
        pl.col(ints).fill_null(0),
        *[pl.when(valid > 0).then(100 * pl.col(c.column).fill_null(0) / valid)
          .otherwise(0.0).alias(f"__pct_{c.column}") for c in cand],
        pl.col("electors_total").cast(pl.Int64), pl.col("turnout").cast(pl.Float64),
        pl.col("pct_counted", "pct_processed", "margin_pct_valid").cast(pl.Float64),
        pl.col("margin_votes").cast(pl.Int64), "leader", "runner_up",
        pl.col("actas_total").is_not_null().alias("__known"),
    ).to_dict(as_series=False)
    none = [None] * n
    codes = [c or "" for c in (units["unit_code"].to_list() if "unit_code" in units.columns
                                else none)]
    abroad = units["abroad"].to_list() if "abroad" in units.columns else none
    per_cand = [[CandidateVotes(c.code, c.name, v, pct) for v, pct in
                 zip(cols[c.column], cols[f"__pct_{c.column}"], strict=True)] for c in cand]
    votes = list(zip(*per_cand, strict=True)) if cand else [()] * n
    return tuple(
        UnitState(level, code, names.get(code, code) if code else "Total", ab, total,
                  counted, processed, jee, pending, annulled, not_inst, pct_c, pct_p,
                  electors, electors_total, cast, val, blank, null, challenged, turnout,
                  cv, leader, runner_up, margin, margin_pct, known, rej, miss)
        for (code, ab, total, counted, processed, jee, pending, annulled, not_inst, pct_c,
             pct_p, electors, electors_total, cast, val, blank, null, challenged, turnout,
             cv, leader, runner_up, margin, margin_pct, known, rej, miss) in zip(
            codes, abroad, cols["actas_total"], cols["actas_counted"],
            cols["actas_processed"], cols["actas_jee"], cols["actas_pending"],
            cols["actas_annulled"], cols["actas_not_installed"], cols["pct_counted"],
            cols["pct_processed"], cols["electors"], cols["electors_total"], cols["cast"],
            cols["valid"], cols["blank"], cols["null"], cols["challenged"], cols["turnout"],
            votes, cols["leader"], cols["runner_up"], cols["margin_votes"],
            cols["margin_pct_valid"], cols["__known"], cols["actas_rejected"],
            cols["actas_missing"], strict=True)
    )


# --- remaining votes (for the hurdle) --------------------------------------------------

def remaining_two_candidate_actas(df: pl.DataFrame, leader: str, trailer: str) -> int:
    """Estimate R, the leader+trailer votes still to come, from an acta frame.

    For each acta not yet contabilizada: its provisional figures if it has them (actas
    at the JEE keep their digitised votes); otherwise electors × the two-candidate vote
    rate per elector of counted actas in the same district, else province, else
    department, else nation. Pending actas without electors get the mean electors of
    the actas around them.
    """
    cols = [f"v_{leader}", f"v_{trailer}"]
    fine = _sum_terms(_acta_groups(df, _FINE_KEYS, cols), _FINE_KEYS, _rate_terms(cols))
    return _remaining(df, fine, leader, trailer)


def _remaining(df: pl.DataFrame, fine: pl.DataFrame, leader: str, trailer: str) -> int:
    """:func:`remaining_two_candidate_actas`, with the rates and mean electors taken from
    the fine aggregates of ``df`` (:func:`_rate_terms`): only the actas still to come are
    read again."""
    lc, tc = f"v_{leader}", f"v_{trailer}"
    todo = df.filter(~pl.col("status").is_in([s.value for s in CONTABILIZADA]))
    if todo.height == 0:
        return 0
    fine = fine.select("area1_code", "area2_code", "area3_code",
                       (pl.col(f"__rated_{lc}") + pl.col(f"__rated_{tc}")).alias("__t"),
                       "__rated_electors", "__rated_n", "__electors_sum", "__electors_n")
    nat = fine.select(pl.col("__t").sum(), pl.col("__rated_electors").sum(),
                      pl.col("__rated_n").sum(), pl.col("__electors_sum").sum(),
                      pl.col("__electors_n").sum()).row(0)
    national_rate = (nat[0] / nat[1]) if nat[2] else 0.0
    national_electors = (nat[3] / nat[4]) if nat[4] else 0.0
    todo = todo.with_columns((pl.col(lc).fill_null(0) + pl.col(tc).fill_null(0)).alias("__two"))
    rate_cols = []
    for key in ("area3_code", "area2_code", "area1_code"):
        per = fine.group_by(key).agg(pl.col("__t", "__rated_electors", "__rated_n",
                                            "__electors_sum", "__electors_n").sum())
        per = per.select(
            key,
            pl.when(pl.col("__rated_n") > 0).then(pl.col("__t") / pl.col("__rated_electors"))
            .alias(f"__rate_{key}"),
            pl.when(pl.col("__electors_n") > 0)
            .then(pl.col("__electors_sum") / pl.col("__electors_n")).alias(f"__el_{key}"),
        )
        todo = todo.join(per, on=key, how="left")
        rate_cols.append(pl.col(f"__rate_{key}"))
    rate = pl.coalesce([*rate_cols, pl.lit(national_rate)])
    electors = pl.coalesce([pl.col("electors"), pl.col("__el_area3_code"),
                            pl.col("__el_area2_code"), pl.col("__el_area1_code"),
                            pl.lit(national_electors)])
    has_figures = pl.col(lc).is_not_null() & pl.col(tc).is_not_null() & ~pl.col("status").eq(
        ActaStatus.PENDING.value)
    est = pl.when(has_figures).then(pl.col("__two").cast(pl.Float64)).otherwise(electors * rate)
    total = todo.select(est.sum()).item()
    return max(0, round(total or 0))


def remaining_two_candidate_units(units: pl.DataFrame, leader: str, trailer: str) -> int:
    """Estimate R from unit aggregates: per unit, the two-candidate votes per counted acta
    times the actas still to come (pending + at the JEE); national rate where a unit has
    no counted acta yet."""
    lc, tc = f"v_{leader}", f"v_{trailer}"
    u = units.with_columns(
        (pl.col(lc).fill_null(0) + pl.col(tc).fill_null(0)).alias("__two"),
        (pl.col("actas_counted").fill_null(0) - pl.col("actas_annulled").fill_null(0)
         - pl.col("actas_not_installed").fill_null(0)).alias("__with_votes"),
        (pl.col("actas_total").fill_null(0) - pl.col("actas_counted").fill_null(0))
        .clip(lower_bound=0).alias("__todo"),
    )
    # integer columns: the sums are numbers, never the Decimal Series.sum may type
    tot_with = cast(float, u["__with_votes"].sum())
    nat_rate = (cast(float, u["__two"].sum()) / tot_with) if tot_with else 0.0
    rate = pl.when(pl.col("__with_votes") > 0).then(pl.col("__two") / pl.col("__with_votes")
                                                     ).otherwise(nat_rate)
    return max(0, round(u.select((rate * pl.col("__todo")).sum()).item() or 0))


# --- public entry points ---------------------------------------------------------------

def count_state_actas(
    df: pl.DataFrame, contest: Contest, snapshot: SnapshotRef, *,
    level: Level = Level.AREA1, names: dict[str, str] | None = None, n_rejected: int = 0,
    abroad_only: bool | None = None, rejected: pl.DataFrame | None = None,
) -> CountState:
    """Count state from a canonical acta frame. ``rejected``: the snapshot's rejected row
    reports (``Store.load_row_reports``); the actas behind them (:func:`unresolved_actas`)
    join every denominator and what remains, as ``actas_rejected`` / ``actas_missing``."""
    names = names or {}
    if rejected is not None and rejected.height:
        df = pl.concat([df, unresolved_actas(rejected, df)], how="vertical_relaxed")
    frame = df if abroad_only is None else df.filter(pl.col("abroad") == abroad_only)
    fine_all = _fine_aggregates(df, contest)  # the only pass over every acta
    fine = (fine_all if abroad_only is None
            else fine_all.filter(pl.col("abroad") == abroad_only))
    # the nation (first row) and its home / abroad split, finished together
    split_raw = _roll_up(fine_all, ["abroad"])
    top = _finish_units(pl.concat([_roll_up(fine, []).with_columns(
        pl.lit(None, pl.Boolean).alias("abroad")).select(split_raw.columns), split_raw]),
        contest)
    states = _to_states(top, contest, Level.NATIONAL, names)
    national = states[0]
    home = abroad = None
    for st, flag in zip(states[1:], top["abroad"].to_list()[1:], strict=True):
        st = _rename(st, "En el país / At home" if not flag else "Extranjero / Abroad", flag)
        if flag:
            abroad = st
        else:
            home = st
    units: tuple[UnitState, ...] = ()
    key = LEVEL_KEYS[level]
    if key is not None:
        # rows without a location (missing rows) count in the nation only
        agg = _roll_up(fine.filter(pl.col(key).is_not_null()), [key, "abroad"]
                       ).rename({key: "unit_code"})
        agg = _finish_units(agg, contest).sort("abroad", "unit_code")
        units = _to_states(agg, contest, level, names)
    h = _hurdle_for(national, basis="actas: provisional figures where digitised, else "
                    "electors × two-candidate rate of counted actas nearby")
    unresolved = national.actas_rejected + national.actas_missing
    outstanding = max(0, national.actas_total - national.actas_counted)
    if h.leader and h.trailer:
        r = _remaining(frame, fine, h.leader, h.trailer)
        h = hurdle(national.margin_votes, r, h.leader, h.trailer, h.basis, unresolved,
                   outstanding)
    pair = _race_pair(national, contest)
    race = (hurdle(pair[2], _remaining(frame, fine, pair[0], pair[1]), pair[0], pair[1],
                   h.basis, unresolved, outstanding) if pair else None)
    return _unknown_figures(CountState(
        contest_id=contest.id, snapshot=snapshot, level=level, national=national, home=home,
        abroad=abroad, units=units, hurdle=h, n_rejected=n_rejected, runoff_race=race,
        provenance=Provenance((snapshot.snapshot_id,), "count_state",
                              {"level": level.value, "abroad_only": abroad_only,
                               "basis": "actas"}),
    ), df)


def count_state_units(
    units: pl.DataFrame, contest: Contest, snapshot: SnapshotRef, *,
    level: Level = Level.AREA1, names: dict[str, str] | None = None, n_rejected: int = 0,
    parents: dict[str, str] | None = None, source_fraction: float | None = None,
) -> CountState:
    """Count state from a canonical unit frame (aggregates per reporting unit).

    The national line is the snapshot's national row when present, else the sum of its
    finest level. A coarser level than the snapshot holds is rolled up through
    ``parents`` (child code -> parent code, from the geography). ``source_fraction``: the
    source's own estimate of the fraction of the votes counted (0, 1], shown as such;
    without acta counts the hurdle stays unknown (it is exact or nothing: the projection
    is what uses the estimate, with its uncertainty)."""
    names = names or {}
    levels_present = set(units["level"].unique().to_list())
    finest = max((Level(x) for x in levels_present), key=lambda lv: list(Level).index(lv))
    sum_cols = [c for c in units.columns if c not in ("level", "unit_code", "abroad")]
    sums = _unit_sums(sum_cols)

    def total(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(sums)

    if Level.NATIONAL.value in levels_present:
        nat_raw = units.filter(pl.col("level") == Level.NATIONAL.value).select(sum_cols)
    else:
        nat_raw = total(units.filter(pl.col("level") == finest.value))
    national = _to_states(_finish_units(nat_raw, contest), contest, Level.NATIONAL, names)[0]
    if Level.NATIONAL.value not in levels_present:
        # no national row: say which part of the country the sum covers (ONPE's 2021
        # subnational tables hold Peru only, without the vote abroad)
        flags = set(units.filter(pl.col("level") == finest.value)["abroad"].to_list())
        if flags == {False}:
            national = replace(national, name="Total en el país (sin extranjero) / "
                                              "home only (no abroad)")
        elif flags == {True}:
            national = replace(national, name="Total extranjero / abroad only")

    fine = units.filter(pl.col("level") == finest.value)
    home = abroad = None
    if finest is not Level.NATIONAL and fine["abroad"].is_not_null().all():
        split = _finish_units(fine.group_by("abroad").agg(sums), contest)
        for st, flag in zip(_to_states(split, contest, Level.NATIONAL, names),
                            split["abroad"].to_list(), strict=True):
            st = _rename(st, "En el país / At home" if not flag else "Extranjero / Abroad", flag)
            if flag:
                abroad = st
            else:
                home = st

    unit_states: tuple[UnitState, ...] = ()
    if level is not Level.NATIONAL:
        if level.value in levels_present:
            sel = units.filter(pl.col("level") == level.value)
        elif parents and list(Level).index(level) < list(Level).index(finest):
            sel = fine
            for _ in range(list(Level).index(finest) - list(Level).index(level)):
                sel = sel.with_columns(pl.col("unit_code").replace(parents))
            sel = sel.group_by("unit_code", "abroad").agg(sums)
        else:
            sel = None
        if sel is not None:
            unit_states = _to_states(_finish_units(sel, contest).sort("abroad", "unit_code"),
                                     contest, level, names)
    basis = "units: two-candidate votes per counted acta × actas not yet counted, per unit"
    src = units.filter(pl.col("level") == finest.value)

    def units_hurdle(a: str, b: str, margin: int) -> Hurdle:
        if not national.actas_known:
            # the hurdle is exact or unknown: a source's own estimate of the share counted
            # (which the projection uses, with its uncertainty) bounds nothing
            if source_fraction is not None:
                return Hurdle(a, b, margin, None, None, HurdleStatus.UNKNOWN_REMAINING,
                              "units: the source publishes no acta counts, only its own "
                              "estimate of the share of votes counted (not a bound)",
                              n_rejected)
            return Hurdle(a, b, margin, None, None, HurdleStatus.UNKNOWN_REMAINING,
                          "units: the source publishes no acta counts", n_rejected)
        r = remaining_two_candidate_units(src, a, b)
        if n_rejected and Level.NATIONAL.value not in levels_present:
            # the nation is a sum of units and some unit rows were rejected: how many
            # actas they hold, and so what remains, is unknown
            return Hurdle(a, b, margin, None, None, HurdleStatus.UNKNOWN_REMAINING,
                          basis + f"; {n_rejected} unit rows rejected", n_rejected)
        outstanding = max(0, national.actas_total - national.actas_counted)
        return hurdle(margin, r, a, b, basis, n_rejected, outstanding)

    h = _hurdle_for(national, basis=basis)
    if h.leader and h.trailer:
        h = units_hurdle(h.leader, h.trailer, national.margin_votes)
    pair = _race_pair(national, contest)
    return _unknown_figures(CountState(
        contest_id=contest.id, snapshot=snapshot, level=level, national=national, home=home,
        abroad=abroad, units=unit_states, hurdle=h, n_rejected=n_rejected,
        provenance=Provenance((snapshot.snapshot_id,), "count_state",
                              {"level": level.value, "basis": "units"}),
        runoff_race=units_hurdle(*pair) if pair else None,
        source_pct_counted=None if source_fraction is None else 100.0 * source_fraction,
    ), units)


#: figures a source may not have at all (a country whose actas have no blank or null
#: line, a source without the electoral roll)
_OPTIONAL_FIGURES = ("electors", "blank", "null", "challenged")


def _unknown_figures(state: CountState, frame: pl.DataFrame) -> CountState:
    """Figures that no row of the snapshot carries are unknown: None in every unit, never
    the 0 a sum of nothing gives."""
    from dataclasses import replace

    gone = {c: None for c in _OPTIONAL_FIGURES
            if c in frame.columns and frame[c].null_count() == frame.height}
    if not gone:
        return state

    @overload
    def fix(u: UnitState) -> UnitState: ...
    @overload
    def fix(u: None) -> None: ...
    def fix(u: UnitState | None) -> UnitState | None:
        return None if u is None else replace(u, **gone)  # type: ignore[arg-type]

    return replace(state, national=fix(state.national), home=fix(state.home),
                   abroad=fix(state.abroad), units=tuple(replace(u, **gone)  # type: ignore[arg-type]
                                                         for u in state.units))


def _rename(st: UnitState, name: str, abroad: bool) -> UnitState:
    from dataclasses import replace

    return replace(st, name=name, code="abroad" if abroad else "home", abroad=abroad)


def _unit_sums(cols: Sequence[str]) -> list[pl.Expr]:
    """Sums of unit rows; ``actas_total`` stays null (unknown) if any row lacks it, so a
    source without acta counts never reads as "0 actas, nothing remaining"."""
    return [pl.when(pl.col(c).null_count() > 0).then(None).otherwise(pl.col(c).sum()).alias(c)
            if c == "actas_total" else pl.col(c).sum() for c in cols]


def _race_pair(national: UnitState, contest: Contest) -> tuple[str, str, int] | None:
    """(second, third, their margin) in a first round with 3+ candidates: the race for the
    runoff. Ties keep the contest's order, as the leader and runner-up do. A first round
    without a ``majority_threshold`` is a plurality contest: no runoff, no race."""
    if (contest.kind is not ContestKind.FIRST_ROUND or contest.majority_threshold is None
            or len(national.candidates) < 3):
        return None
    order = sorted(national.candidates, key=lambda c: -c.votes)
    if order[0].votes == 0:
        return None
    return order[1].code, order[2].code, order[1].votes - order[2].votes


def _hurdle_for(national: UnitState, basis: str) -> Hurdle:
    return Hurdle(national.leader, national.runner_up, national.margin_votes, 0, None,
                  HurdleStatus.NOTHING_REMAINING, basis)


# --- lead history ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class HistoryPoint:
    snapshot_id: str
    as_of: datetime
    label: str
    pct_counted: float | None  # None: the source publishes no acta counts
    pct_processed: float | None
    leader: str | None
    runner_up: str | None
    margin_votes: int
    margin_pct_valid: float
    votes: tuple[tuple[str, int], ...]
    third: str | None = None  # first rounds: who trails the runner-up for the runoff
    actas_total: int | None = None  # None: the source publishes no acta counts
    #: "actas" or "units": cuts are compared for falling totals only with the previous cut
    #: of the same kind (a per-acta file and a national table are different sources)
    basis: str = ""
    #: the source's own estimate of the % of votes counted (not an acta count), if any
    source_pct_counted: float | None = None


@dataclass(frozen=True, slots=True)
class LeadChange:
    before: HistoryPoint
    after: HistoryPoint
    previous_leader: str | None
    new_leader: str | None


@dataclass(frozen=True, slots=True)
class RunoffChange:
    """First rounds: the two candidates headed for the runoff changed between two cuts."""

    before: HistoryPoint
    after: HistoryPoint
    dropped: str  # was in the top two, is not any more
    entered: str  # is in the top two now


@dataclass(frozen=True, slots=True)
class HistoryWarning:
    """Something wrong between two successive cuts (``code``: ``totals_down`` — a
    candidate's votes went down, e.g. sheets pulled for review; ``actas_total_changed`` —
    the source's total of actas changed, e.g. broken abroad totals)."""

    code: str
    snapshot_id: str  # the later cut
    label: str
    es: str
    en: str


@dataclass(frozen=True, slots=True)
class LeadHistory:
    contest_id: str
    points: tuple[HistoryPoint, ...]
    lead_changes: tuple[LeadChange, ...]
    max_lead: tuple[tuple[str, int, str], ...]  # candidate, largest margin, snapshot id
    provenance: Provenance
    #: first rounds: every change in who would go to the runoff (2026: López Aliaga → Sánchez)
    runoff_changes: tuple[RunoffChange, ...] = ()
    #: totals that went down and totals of actas that changed between successive cuts
    warnings: tuple[HistoryWarning, ...] = ()


def lead_history(states: Sequence[CountState]) -> LeadHistory:
    """Margin over time, every lead change, each candidate's largest lead and, in first
    rounds, every change in the two candidates headed for the runoff."""
    ordered = sorted(states, key=lambda s: (s.snapshot.as_of, s.snapshot.label))
    points = tuple(
        HistoryPoint(
            s.snapshot.snapshot_id, s.snapshot.as_of, s.snapshot.label,
            s.national.pct_counted if s.national.actas_known else None,
            s.national.pct_processed if s.national.actas_known else None,
            s.national.leader, s.national.runner_up, s.national.margin_votes,
            s.national.margin_pct_valid, tuple((c.code, c.votes) for c in s.national.candidates),
            s.runoff_race.trailer if s.runoff_race is not None else None,
            s.national.actas_total if s.national.actas_known else None,
            str(s.provenance.parameters.get("basis", "")),
            s.source_pct_counted,
        )
        for s in ordered
    )
    changes = tuple(
        LeadChange(a, b, a.leader, b.leader)
        for a, b in itertools.pairwise(points)
        if a.leader != b.leader and a.leader is not None and b.leader is not None
    )
    runoff = []
    for a, b in itertools.pairwise(points):
        if a.third is None or b.third is None or None in (a.runner_up, b.runner_up):
            continue
        was, now = {a.leader, a.runner_up}, {b.leader, b.runner_up}
        if was != now and len(was - now) == 1:
            runoff.append(RunoffChange(a, b, str(next(iter(was - now))),
                                       str(next(iter(now - was)))))
    best: dict[str, tuple[int, str]] = {}
    for p in points:
        if p.leader is not None and p.margin_votes > best.get(p.leader, (-1, ""))[0]:
            best[p.leader] = (p.margin_votes, p.snapshot_id)
    contest_id = ordered[0].contest_id if ordered else ""
    return LeadHistory(
        contest_id, points, changes,
        tuple((k, v[0], v[1]) for k, v in sorted(best.items())),
        Provenance(tuple(p.snapshot_id for p in points), "lead_history"),
        tuple(runoff), history_warnings(points),
    )


def history_warnings(points: Sequence[HistoryPoint]) -> tuple[HistoryWarning, ...]:
    """Totals that go down (a candidate loses votes between two cuts of the same kind —
    per-acta files with per-acta files, tables with tables: sheets pulled for
    review, corrections, a broken scrape) and totals of actas that change."""
    out: list[HistoryWarning] = []
    last: dict[str, HistoryPoint] = {}
    pairs = []
    for p in points:
        if p.basis in last:
            pairs.append((last[p.basis], p))
        last[p.basis] = p
    for a, b in pairs:
        before = dict(a.votes)
        down = [(c, before[c] - v) for c, v in b.votes if c in before and v < before[c]]
        if down:
            es = ", ".join(f"{c} −{d:,}" for c, d in down)
            out.append(HistoryWarning(
                "totals_down", b.snapshot_id, b.label,
                f"los votos bajan respecto del corte anterior ({a.label}): {es} (actas "
                "retiradas para revisión, correcciones o una descarga rota)",
                f"votes go down from the previous cut ({a.label}): {es} (sheets pulled "
                "for review, corrections or a broken scrape)"))
        if a.actas_total is not None and b.actas_total is not None \
                and a.actas_total != b.actas_total:
            out.append(HistoryWarning(
                "actas_total_changed", b.snapshot_id, b.label,
                f"el total de actas cambia de {a.actas_total:,} ({a.label}) a "
                f"{b.actas_total:,}: la fuente no es coherente entre cortes",
                f"the total of actas changes from {a.actas_total:,} ({a.label}) to "
                f"{b.actas_total:,}: the source is not consistent between cuts"))
    return tuple(out)
