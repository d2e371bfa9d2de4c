"""One projection for every caller (CLI ``project`` and ``replay``, the API and the
dashboard): load what the model needs from the store, then call it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from escrutinio.count import CountState
from escrutinio.domain import VOTE_TYPE, Level, SnapshotKind
from escrutinio.errors import EscrutinioError
from escrutinio.service.baseline import describe_baseline, resolve_baseline, review_outcomes
from escrutinio.service.common import default_contest, stored_frame, warning_record
from escrutinio.service.count import area_parents
from escrutinio.service.history import history_snapshots
from escrutinio.service.units import earlier_unit_cuts, unit_cut, unit_cut_warnings
from escrutinio.store.base import SnapshotInfo, Store

if TYPE_CHECKING:
    from escrutinio.projection.model import ModelParams
    from escrutinio.projection.result import Projection

#: the defaults of every projection (CLI ``project``, the API, the dashboard)
DEFAULT_SIMS = 10_000
DEFAULT_SEED = 0


def _source_remaining(store: Store, info: SnapshotInfo) -> pl.DataFrame | None:
    """The source's own estimate of the fraction counted per unit, when it publishes no
    acta counts (``fraction_counted_by_unit`` in the snapshot's metadata), as the
    ``remaining`` frame of :func:`escrutinio.projection.units.project_units`."""
    import json

    from escrutinio.sources.base import FRACTION_COUNTED_KEY

    raw = store.snapshot_metadata(info.contest_id).get(info.snapshot_id, {}).get(
        FRACTION_COUNTED_KEY)
    if not raw:
        return None
    frac = json.loads(raw)
    return pl.DataFrame({"unit_code": list(frac), "fraction_counted": list(frac.values())},
                        schema={"unit_code": pl.String, "fraction_counted": pl.Float64})


#: national vote vectors of series cuts, by snapshot id (snapshots never change)
_CUT_VOTES: dict[str, tuple[int, ...]] = {}


def _series_history(store: Store, info: SnapshotInfo
                    ) -> tuple[list[tuple[Sequence[float], float]], list[str]] | None:
    """(votes per candidate, fraction of the votes counted) of every national cut up to
    ``info``, when ``info`` is a national cut without acta counts whose source gives the
    fraction counted (metadata ``pct_votes_counted``, a fraction in (0, 1]: the 2026
    series), with the ids of those cuts; None otherwise."""
    from escrutinio.service.units import metadata_fraction

    if info.kind is not SnapshotKind.UNITS or info.level != Level.NATIONAL.value:
        return None
    md = dict(store.snapshot_metadata(info.contest_id))
    # the one reading of the source's figure (status and history show the same)
    if metadata_fraction(store, info, None, md) is None:
        return None
    contest = store.contest(info.contest_id)
    out: list[tuple[Sequence[float], float]] = []
    ids: list[str] = []
    for s in history_snapshots(store, info.contest_id):
        frac = metadata_fraction(store, s, None, md)
        if s.as_of > info.as_of or s.level != Level.NATIONAL.value or frac is None:
            continue
        votes = _CUT_VOTES.get(s.snapshot_id)
        if votes is None:
            row = stored_frame(store, s).row(0, named=True)  # a nation's types added up
            votes = tuple(int(row[c.column] or 0) for c in contest.candidates)
            _CUT_VOTES[s.snapshot_id] = votes
        out.append((votes, float(frac)))
        ids.append(s.snapshot_id)
    return out, ids


def _with_vote_types(store: Store, info: SnapshotInfo, actas: pl.DataFrame) -> pl.DataFrame:
    """The acta frame with its ``vote_type`` column when the source gave one (snapshot
    metadata ``vote_type_by_acta``): the projection treats each type apart."""
    from escrutinio.sources.tabular import with_vote_types

    if "vote_type" in actas.columns:
        return actas
    return with_vote_types(actas, store.snapshot_metadata(info.contest_id).get(
        info.snapshot_id, {}))


def _with_unresolved(store: Store, info: SnapshotInfo, actas: pl.DataFrame
                     ) -> tuple[pl.DataFrame, int]:
    """The acta frame plus the actas behind its rejected and missing rows, as actas still
    to come (their figures are unknown, not zero: the model predicts them from their area
    and electors like any pending acta), and how many there are."""
    from escrutinio.count import unresolved_actas
    from escrutinio.domain import ActaStatus

    try:
        reports = store.load_row_reports(info.snapshot_id)
    except EscrutinioError:
        return actas, 0
    extra = unresolved_actas(reports, actas)
    if extra.is_empty():
        return actas, 0
    extra = extra.with_columns(pl.lit(ActaStatus.PENDING.value).alias("status"))
    return pl.concat([actas, extra.select(actas.columns)], how="vertical_relaxed"), \
        extra.height


def project(store: Store, ref_or_info: str | SnapshotInfo, *, params: ModelParams,
            baseline_contest: str | None = None, baseline_ref: str = "latest",
            blocs: dict[str, list[str]] | None = None, with_national: bool = True,
            use_default_baseline: bool = True, contest_id: str | None = None,
            kind: SnapshotKind | None = None, pairs: tuple[tuple[str, str], ...] = ()
            ) -> Projection:
    """The projection of one stored snapshot, for every caller (CLI ``project`` and
    ``replay``, the API and the dashboard): the same snapshot, parameters and seed give
    the same figures everywhere.

    * per-acta snapshots: :func:`~escrutinio.projection.model.project_actas`;
    * national cuts with the source's fraction counted and no acta counts: the series
      model (:func:`~escrutinio.projection.units.project_series`);
    * unit snapshots: :func:`~escrutinio.projection.units.project_units` on the finest
      units, completed with the national row (:func:`unit_cut`), with the earlier cuts of
      the same level as history.

    Baseline: ``baseline_contest`` (snapshot ``baseline_ref``), else the earlier round of
    the same election (:func:`default_baseline_contest`) unless ``use_default_baseline``
    is False; joined at the finest level both share
    (:mod:`escrutinio.projection.baseline_join`). The result's diagnostics and provenance
    name it, its join level and the share of what remains it covers. Court/review
    outcome rates: :func:`review_outcomes` (unless ``params.jee`` was set by the caller).
    """
    from dataclasses import replace

    from escrutinio.countries import pack_for
    from escrutinio.projection.baseline_join import (
        BaselineJoinError,
        join_for_actas,
        join_for_units,
    )
    from escrutinio.projection.model import JeeOutcomes, project_actas
    from escrutinio.projection.units import project_series, project_units

    if isinstance(ref_or_info, SnapshotInfo):
        info = ref_or_info
    else:
        cid = default_contest(store, contest_id)
        info = store.snapshot(ref_or_info, contest_id=cid, kind=kind)
    contest = store.contest(info.contest_id)
    review: dict[str, Any] | None = None
    if params.jee == JeeOutcomes():
        jee, review = review_outcomes(store, contest)
        params = replace(params, jee=jee)
    base = resolve_baseline(store, info.contest_id, baseline_contest=baseline_contest,
                            baseline_ref=baseline_ref, use_default=use_default_baseline)
    warns: list[dict[str, str]] = []
    described: dict[str, Any] | None = None
    extra_ids: tuple[str, ...] = ()

    def unusable(exc: EscrutinioError) -> None:
        assert base is not None
        if not base.default:
            raise exc
        warns.append(warning_record(
            "baseline_unused",
            f"la vuelta anterior ({base.contest_id}) no se usa como línea de base: "
            f"{exc.message_es}",
            f"the earlier round ({base.contest_id}) is not used as a baseline: "
            f"{exc.message_en}"))

    if info.kind is SnapshotKind.ACTAS:
        actas, n_unresolved = _with_unresolved(
            store, info, _with_vote_types(store, info, stored_frame(store, info)))
        if n_unresolved:
            warns.append(warning_record(
                "unresolved_as_pending",
                f"{n_unresolved:,} actas rechazadas o faltantes se proyectan como pendientes "
                "(sus cifras se desconocen; no cuentan como cero)",
                f"{n_unresolved:,} rejected or missing actas are projected as still to come "
                "(their figures are unknown; they do not count as zero)"))
        frame = None
        if base is not None:
            try:
                join = join_for_actas(actas, base.frame, base_kind=base.info.kind.value)
                frame, described = join.frame, describe_baseline(base, join)
            except BaselineJoinError as exc:
                unusable(exc)
        earlier_a = acta_history(store, info)
        proj = project_actas(actas, contest, baseline=frame,
                             blocs=blocs if frame is not None else None, params=params,
                             snapshot_id=info.snapshot_id, as_of=info.as_of, pairs=pairs,
                             baseline_snapshot_id=base.info.snapshot_id
                             if frame is not None and base is not None else "",
                             history=[stored_frame(store, s).select("acta_id", "status")
                                      for s in earlier_a])
        # reproducible: every earlier cut the arrival shock was learned from
        extra_ids = tuple(s.snapshot_id for s in earlier_a)
    else:
        series = _series_history(store, info)
        if series is not None:  # national totals alone, with the source's fraction counted
            cuts, ids = series
            if base is not None:
                unusable(BaselineJoinError(
                    "una serie nacional no tiene unidades con las que unirse",
                    "a national series has no units to join"))
            proj = project_series(cuts, contest, params=params, snapshot_id=info.snapshot_id,
                                  as_of=info.as_of, pairs=pairs)
            # reproducible: every cut the series model saw, this one first
            proj = replace(proj, provenance=replace(proj.provenance, snapshot_ids=(
                info.snapshot_id, *(i for i in ids if i != info.snapshot_id))))
        else:
            cut = unit_cut(store, info, with_national=with_national)
            earlier = earlier_unit_cuts(store, info, with_national=with_national)
            warns.extend(unit_cut_warnings(cut, earlier))
            ub = None
            if base is not None:
                try:
                    join = join_for_units(cut.units, base.frame,
                                          base_kind=base.info.kind.value,
                                          parents=_all_parents(store, base.contest_id,
                                                               info.contest_id))
                    ub, described = join.frame, describe_baseline(base, join)
                    extra_ids = (base.info.snapshot_id,)
                except BaselineJoinError as exc:
                    unusable(exc)
            proj = project_units(cut.units, contest,
                                 parents=area_parents(store, info.contest_id), baseline=ub,
                                 blocs=blocs if ub is not None else None,
                                 remaining=_source_remaining(store, info), params=params,
                                 snapshot_id=info.snapshot_id, as_of=info.as_of, pairs=pairs,
                                 history=tuple(c.units for c in earlier),
                                 actas_word=pack_for(contest).vocabulary.actas)
            # reproducible: every earlier cut the drift was learned from
            extra_ids = (*extra_ids, *(c.info.snapshot_id for c in earlier))
            diag_units = {"missing_units": list(cut.missing_units),
                          "national_row": ("own" if cut.own_national else
                                           "same_minute_cut" if cut.national is not None
                                           else None),
                          "n_history_cuts": len(earlier)}
            proj = replace(proj, diagnostics={**proj.diagnostics, **diag_units})
            if VOTE_TYPE in cut.units.columns:  # units published per vote type, apart
                types = sorted(cut.units[VOTE_TYPE].drop_nulls().unique().to_list())
                proj = replace(proj, provenance=replace(proj.provenance, parameters={
                    **proj.provenance.parameters, "vote_types": types}))
    proj = _finish(proj, described, warns, review, extra_ids)
    # the labels are written with the analyses' reference words (JEE, actas): in the
    # contest's country's words (identity for Peru)
    from escrutinio.countries import localized
    from escrutinio.service.inputs import contest_words

    return localized(proj, contest_words(store, contest, info.snapshot_id))


def acta_history(store: Store, info: SnapshotInfo) -> list[SnapshotInfo]:
    """The earlier per-acta snapshots of the same contest a per-acta projection of
    ``info`` learns from (oldest first): the ones the model itself would keep
    (:data:`~escrutinio.projection.model.MAX_ACTA_HISTORY`, chosen by
    :func:`~escrutinio.projection.model.spread_indices`), so that only those are read."""
    from escrutinio.projection.model import MAX_ACTA_HISTORY, spread_indices
    from escrutinio.service.inputs import earlier_actas

    earlier = earlier_actas(store, info)
    return [earlier[i] for i in spread_indices(len(earlier), MAX_ACTA_HISTORY)]


def _all_parents(store: Store, *contest_ids: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for cid in reversed(contest_ids):  # the first contest's geography wins
        out.update(area_parents(store, cid))
    return out


def _finish(proj: Projection, described: dict[str, Any] | None,
            warns: list[dict[str, str]], review: dict[str, Any] | None,
            extra_ids: tuple[str, ...]) -> Projection:
    from dataclasses import replace

    diag = dict(proj.diagnostics)
    diag["baseline"] = described
    if review is not None:
        diag["review_outcomes"] = review
    old = diag.get("warnings")
    all_warns = [*(old if isinstance(old, list) else []), *warns]
    diag["warnings"] = all_warns
    cov = next((w for w in warns if w["code"] in ("coverage", "units_missing")), None)
    if cov is not None:
        diag["coverage_warning"] = {"es": cov["es"], "en": cov["en"]}
    params = dict(proj.provenance.parameters)
    params["baseline"] = None if described is None else {
        k: described[k] for k in ("contest_id", "snapshot_id", "join_level",
                                  "coverage_remaining", "default")}
    if review is not None:
        params["review_outcomes"] = review["basis"]
    ids = proj.provenance.snapshot_ids
    ids = (*ids, *(i for i in extra_ids if i not in ids))
    return replace(proj, diagnostics=diag,
                   provenance=replace(proj.provenance, parameters=params, snapshot_ids=ids))


# --- the projection over time (the dashboard's fan chart) ------------------------------

@dataclass(frozen=True, slots=True)
class ProjectionPoint:
    """One point of the projection over time (the fan chart)."""

    snapshot_id: str
    as_of: Any
    label: str
    pct_counted: float | None
    counted: dict[str, int]
    median: float
    intervals: dict[str, tuple[float, float]]
    leader: str
    trailer: str
    p_leader_ahead: float
    call_status: str
    call_winner: str | None
    reconstructed: bool


@dataclass(frozen=True, slots=True)
class ProjectionHistory:
    contest_id: str
    points: tuple[ProjectionPoint, ...]
    pair: tuple[str, str]  # the margin plotted is pair[0] − pair[1]
    n_simulations: int
    seed: int


def projection_history(store: Store, contest_id: str,
                       projections: Sequence[tuple[SnapshotInfo, Projection, bool]], *,
                       sims: int, seed: int,
                       state: Callable[[SnapshotInfo], CountState] | None = None
                       ) -> ProjectionHistory:
    """The projection over time from the projections of a contest's whole-country
    snapshots, oldest first (``(snapshot, projection, reconstructed)``, each made by
    :func:`project` with ``sims`` and ``seed``): the margin of one pair at every snapshot.

    The pair is the projected top two of the latest snapshot, in the contest's order (the
    chart keeps its orientation while a replay advances); in a first round, the race in
    most doubt (Peru 2026: second place, Sánchez v López Aliaga). A snapshot whose
    projection has no race between the pair (a first-round cut before the pair was the
    race) is left out. ``state``: how a caller that caches count states gets the national
    one (default :func:`~escrutinio.service.count.state_of`)."""
    from escrutinio.domain import ContestKind
    from escrutinio.service.count import state_of

    if not projections:
        raise EscrutinioError("no hay proyecciones para esta contienda",
                              "there are no projections for this contest")
    if state is None:
        def state(s: SnapshotInfo) -> CountState:
            return state_of(store, s, level=Level.NATIONAL)
    last = projections[-1][1]
    contest = store.contest(contest_id)
    codes = [c.code for c in contest.candidates]
    race = last.margin
    if contest.kind is ContestKind.FIRST_ROUND:
        race = min((last.margin, *last.races), key=lambda r: abs(r.median))
    a, b = sorted((race.leader, race.trailer), key=codes.index)
    pair = (a, b)
    points = []
    for s, p, reconstructed in projections:
        m = race_between(p, pair)
        if m is None:
            continue
        st = state(s)
        counted = {c.code: c.votes for c in st.national.candidates}
        points.append(ProjectionPoint(
            s.snapshot_id, s.as_of, s.label,
            st.national.pct_counted if st.national.actas_known else None, counted,
            m["median"], m["intervals"], pair[0], pair[1], m["p_ahead"],
            p.call.status.value, p.call.winner, reconstructed))
    return ProjectionHistory(contest_id, tuple(points), pair, sims, seed)


def race_between(p: Projection, pair: tuple[str, str]) -> dict[str, Any] | None:
    """Median, intervals and P(first ahead) of pair[0] − pair[1] from a projection (its
    main race, or a race with the two codes swapped); None if it has no such race."""
    for r in (p.margin, *p.races):
        if (r.leader, r.trailer) == pair:
            return {"median": r.median, "p_ahead": r.p_leader_ahead,
                    "intervals": {f"{iv.level:g}": (iv.lower, iv.upper) for iv in r.intervals}}
        if (r.trailer, r.leader) == pair:
            return {"median": -r.median, "p_ahead": 1.0 - r.p_leader_ahead,
                    "intervals": {f"{iv.level:g}": (-iv.upper, -iv.lower)
                                  for iv in r.intervals}}
    return None
