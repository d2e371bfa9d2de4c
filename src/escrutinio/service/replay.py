"""Replay of a stored count: the projection at each cut, scored against the final
result (docs/projection.md §Replay), and the rebuilt per-acta timeline the dashboard's
replay mode projects each national cut on (:class:`RebuiltTimeline`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from escrutinio.domain import Contest, SnapshotKind
from escrutinio.errors import EscrutinioError
from escrutinio.service.baseline import resolve_baseline
from escrutinio.service.common import default_contest, stored_frame
from escrutinio.service.projection import project
from escrutinio.service.units import metadata_fraction, unit_cut
from escrutinio.store.base import SnapshotInfo, Store

if TYPE_CHECKING:
    from escrutinio.projection.model import Baseline, ModelParams
    from escrutinio.projection.replay import ReplayResult
    from escrutinio.projection.result import Projection


# --- replay of a stored count (CLI ``replay``) ------------------------------------------

REPLAY_MODES = ("auto", "actas", "snapshots", "units", "series")
#: the defaults of every replay (CLI ``replay``, the dashboard's replay timeline): the
#: seed of the rebuilt arrival order, what the order tilts by, and the % counted from
#: which the coverage of the intervals is scored
DEFAULT_ORDER_SEED = 2021
TILT_BY = ("area3_code", "polling_place", "acta_id")
DEFAULT_TILT_BY = "area3_code"
DEFAULT_FROM_PCT = 67.0


def _final_votes(store: Store, info: SnapshotInfo, contest: Contest) -> dict[str, int]:
    if info.kind is SnapshotKind.ACTAS:
        counted = stored_frame(store, info).filter(pl.col("status") == "counted")
        return {x.code: int(counted[x.column].fill_null(0).sum()) for x in contest.candidates}
    return unit_cut(store, info).counted(contest)


def _final_pct(store: Store, info: SnapshotInfo) -> float | None:
    """% counted of the state the replay scores as the final: its actas counted (final
    states: counted, annulled, not installed) over all, or a unit cut's own figure."""
    from escrutinio.domain import CONTABILIZADA

    if info.kind is SnapshotKind.ACTAS:
        st = stored_frame(store, info)["status"]
        done = int(st.is_in([x.value for x in CONTABILIZADA]).sum())
        return 100.0 * done / st.len() if st.len() else None
    return unit_cut(store, info).pct_counted


def _series_fraction(store: Store, info: SnapshotInfo,
                     md: dict[str, dict[str, str]] | None = None) -> float | None:
    """Fraction counted of a national cut: its acta counts, else the source's own figure
    (metadata ``pct_votes_counted``)."""
    r0 = stored_frame(store, info).row(0, named=True)
    if r0.get("actas_total") and r0.get("actas_counted") is not None:
        return float(r0["actas_counted"] / r0["actas_total"])
    return metadata_fraction(store, info, None, md)


def replay(store: Store, *, params: ModelParams, contest_id: str | None = None,
           mode: str = "auto", final_ref: str | None = None,
           baseline_contest: str | None = None, baseline_ref: str = "latest",
           blocs: dict[str, list[str]] | None = None,
           order_seed: int = DEFAULT_ORDER_SEED, tilt_by: str = DEFAULT_TILT_BY,
           from_pct: float = DEFAULT_FROM_PCT,
           use_default_baseline: bool = True,
           progress: Callable[[int, int], Any] | None = None) -> ReplayResult:
    """Replay a stored count and score the projection against its final result
    (docs/projection.md §Replay). Modes: ``actas`` (arrival order rebuilt from the national
    cuts), ``snapshots`` (per-acta snapshots as published), ``units`` (every unit snapshot,
    projected by :func:`project` as ``escrutinio project`` would), ``series`` (national
    totals alone); ``auto`` picks the first the store allows. Cuts that cannot be projected
    are skipped with their reason (``ReplayResult.skipped``). The provenance names the mode
    and the baseline (a series never uses one)."""
    from dataclasses import replace

    res = _replay(store, params=params, contest_id=contest_id, mode=mode, final_ref=final_ref,
                  baseline_contest=baseline_contest, baseline_ref=baseline_ref, blocs=blocs,
                  order_seed=order_seed, tilt_by=tilt_by, from_pct=from_pct,
                  use_default_baseline=use_default_baseline, progress=progress)
    base = None
    if res.basis != "series":
        base = resolve_baseline(store, res.contest_id, baseline_contest=baseline_contest,
                                baseline_ref=baseline_ref, use_default=use_default_baseline)
    desc = None if base is None else {"contest_id": base.contest_id,
                                      "snapshot_id": base.info.snapshot_id,
                                      "default": base.default}
    ids = res.provenance.snapshot_ids
    if base is not None and base.info.snapshot_id not in ids:
        ids = (*ids, base.info.snapshot_id)
    parameters = {**res.provenance.parameters, "basis": res.basis, "baseline": desc,
                  "n_sims": params.n_sims}
    fin = _final_info(store, res.contest_id, final_ref)
    return replace(res, provenance=replace(res.provenance, parameters=parameters,
                                           snapshot_ids=ids),
                   final_pct_counted=_final_pct(store, fin))


@dataclass(frozen=True, slots=True)
class _Cuts:
    """A contest's stored cuts with rows, by kind, and the final one the replay scores."""

    contest: Contest
    actas: list[SnapshotInfo]  # per-acta snapshots
    national: list[SnapshotInfo]  # national unit cuts
    sub: list[SnapshotInfo]  # subnational unit cuts
    final: SnapshotInfo
    final_votes: dict[str, int]

    @property
    def race(self) -> tuple[str, str]:
        """The final result's top two: the race every cut is scored on."""
        order = sorted(self.final_votes, key=lambda x: -self.final_votes[x])
        return order[0], order[1]


def _by_kind(store: Store, contest_id: str
             ) -> tuple[list[SnapshotInfo], list[SnapshotInfo], list[SnapshotInfo]]:
    """A contest's snapshots with rows: per acta, national unit cuts, subnational ones."""
    snaps = [s for s in store.list_snapshots(contest_id) if s.n_rows]
    actas = [s for s in snaps if s.kind is SnapshotKind.ACTAS]
    nat = [s for s in snaps if s.kind is SnapshotKind.UNITS and s.level == "national"]
    sub = [s for s in snaps if s.kind is SnapshotKind.UNITS and s.level not in
           (None, "national")]
    return actas, nat, sub


def _final_info(store: Store, contest_id: str, final_ref: str | None) -> SnapshotInfo:
    """The state a replay scores as the final: ``final_ref``, else the latest per-acta
    snapshot, else the latest national cut, else the latest subnational one."""
    if final_ref is not None:
        return store.snapshot(final_ref, contest_id=contest_id)
    actas, nat, sub = _by_kind(store, contest_id)
    if not (actas or nat or sub):
        raise EscrutinioError("no hay instantáneas para reproducir", "no snapshots to replay")
    return (actas or nat or sub)[-1]


def _cuts(store: Store, contest_id: str, final_ref: str | None) -> _Cuts:
    c = store.contest(contest_id)
    actas, nat, sub = _by_kind(store, contest_id)
    fin_info = _final_info(store, contest_id, final_ref)
    return _Cuts(c, actas, nat, sub, fin_info, _final_votes(store, fin_info, c))


def _auto_mode(cuts: _Cuts) -> str:
    """The first mode the store allows: actas, snapshots, units, series."""
    if cuts.final.kind is SnapshotKind.ACTAS and cuts.national:
        return "actas"
    if len(cuts.actas) >= 2:
        return "snapshots"
    if cuts.sub:
        return "units"
    return "series"


def _replay(store: Store, *, params: ModelParams, contest_id: str | None, mode: str,
            final_ref: str | None, baseline_contest: str | None, baseline_ref: str,
            blocs: dict[str, list[str]] | None, order_seed: int, tilt_by: str,
            from_pct: float, use_default_baseline: bool,
            progress: Callable[[int, int], Any] | None) -> ReplayResult:
    if mode not in REPLAY_MODES:
        raise EscrutinioError(f"modo desconocido {mode!r}: use {', '.join(REPLAY_MODES)}",
                              f"unknown mode {mode!r}: use {', '.join(REPLAY_MODES)}")
    if tilt_by not in TILT_BY:
        raise EscrutinioError(f"--tilt-by: use {', '.join(TILT_BY)}, no {tilt_by!r}",
                              f"--tilt-by: use {', '.join(TILT_BY)}, not {tilt_by!r}")
    cid = default_contest(store, contest_id)
    cuts = _cuts(store, cid, final_ref)
    if mode == "auto":
        mode = _auto_mode(cuts)
    if mode in ("actas", "snapshots"):
        return _replay_actas(store, cuts, mode, params=params,
                             baseline_contest=baseline_contest, baseline_ref=baseline_ref,
                             blocs=blocs, order_seed=order_seed, tilt_by=tilt_by,
                             from_pct=from_pct, use_default_baseline=use_default_baseline,
                             progress=progress)
    if mode == "units":
        return _replay_units(store, cuts, params=params, baseline_contest=baseline_contest,
                             baseline_ref=baseline_ref, blocs=blocs, from_pct=from_pct,
                             use_default_baseline=use_default_baseline, progress=progress)
    return _replay_series(store, cuts, params=params, from_pct=from_pct, progress=progress)


def _replay_actas(store: Store, cuts: _Cuts, mode: str, *, params: ModelParams,
                  baseline_contest: str | None, baseline_ref: str,
                  blocs: dict[str, list[str]] | None, order_seed: int, tilt_by: str,
                  from_pct: float, use_default_baseline: bool,
                  progress: Callable[[int, int], Any] | None) -> ReplayResult:
    """``actas``: the arrival order rebuilt from the national cuts, projected at each;
    ``snapshots``: the earlier per-acta snapshots as published."""
    from escrutinio.projection.baseline_join import join_for_actas
    from escrutinio.projection.model import prepare_baseline
    from escrutinio.projection.order import (
        ActaState,
        cuts_from_unit_snapshots,
        derive_arrival_order,
        unit_progress_from_frames,
    )
    from escrutinio.projection.replay import CutMeta, replay_actas, replay_snapshots

    c, fin_info = cuts.contest, cuts.final
    if fin_info.kind is not SnapshotKind.ACTAS:
        raise EscrutinioError(f"el modo {mode!r} necesita una instantánea final por acta",
                              f"mode {mode!r} needs a final per-acta snapshot")
    ff = stored_frame(store, fin_info)
    base = resolve_baseline(store, c.id, baseline_contest=baseline_contest,
                            baseline_ref=baseline_ref, use_default=use_default_baseline)
    base_arg = None
    if base is not None:
        join = join_for_actas(ff, base.frame, base_kind=base.info.kind.value)
        base_arg = prepare_baseline(join.frame, blocs)
    if mode == "actas":
        if not cuts.national:
            raise EscrutinioError("no hay cortes nacionales para reproducir",
                                  "no national cuts to replay")
        national = cuts_from_unit_snapshots(
            [(s.as_of, stored_frame(store, s), s.label, s.snapshot_id)
             for s in cuts.national], c)
        states = [ActaState(s.as_of, stored_frame(store, s), s.label)
                  for s in cuts.actas if s.snapshot_id != fin_info.snapshot_id]
        units = unit_progress_from_frames(
            [(s.as_of, stored_frame(store, s), s.label) for s in cuts.sub])
        order = derive_arrival_order(ff, c, national, states=states, units=units,
                                     seed=order_seed, tilt_by=tilt_by)
        return replay_actas(order, c, baseline=base_arg, params=params,
                            final=cuts.final_votes, from_pct=from_pct, progress=progress)
    items_a = [(CutMeta(s.as_of, s.label, s.snapshot_id, None, {}), stored_frame(store, s))
               for s in cuts.actas if s.snapshot_id != fin_info.snapshot_id
               and s.as_of <= fin_info.as_of]
    if not items_a:
        raise EscrutinioError("no hay instantáneas por acta anteriores a la final",
                              "no per-acta snapshots before the final one")
    return replay_snapshots(items_a, c, final=cuts.final_votes, baseline=base_arg,
                            params=params, from_pct=from_pct, progress=progress)


def _replay_units(store: Store, cuts: _Cuts, *, params: ModelParams,
                  baseline_contest: str | None, baseline_ref: str,
                  blocs: dict[str, list[str]] | None, from_pct: float,
                  use_default_baseline: bool,
                  progress: Callable[[int, int], Any] | None) -> ReplayResult:
    """``units``: every subnational unit snapshot, projected by :func:`project` as
    ``escrutinio project`` would."""
    from escrutinio.projection.replay import CutMeta, run_replay

    c = cuts.contest
    cuts_u = [s for s in cuts.sub if s.as_of <= cuts.final.as_of]
    if not cuts_u:
        raise EscrutinioError("no hay instantáneas por unidad", "no unit snapshots")
    metas = []
    for s in cuts_u:
        cut = unit_cut(store, s)
        metas.append(CutMeta(s.as_of, s.label, s.snapshot_id, cut.pct_counted,
                             cut.counted(c)))
    race = cuts.race

    def one(i: int) -> Projection:
        s = cuts_u[i]
        cut = unit_cut(store, s)
        if cut.national is None and cuts.national:
            # a subnational table without a national row may not cover the whole
            # country (ONPE 2021: no abroad): not projected
            raise EscrutinioError(
                "instantánea por unidad sin fila nacional ni corte nacional del mismo "
                "minuto: puede no cubrir todo el país",
                "unit snapshot without a national row or a national cut of the same "
                "minute: it may not cover the whole country")
        return project(store, s, params=params, baseline_contest=baseline_contest,
                       baseline_ref=baseline_ref, blocs=blocs,
                       use_default_baseline=use_default_baseline, pairs=(race,))

    return run_replay(c.id, "units", metas, one, cuts.final_votes, race=race,
                      from_pct=from_pct, progress=progress, seed=params.seed)


def _replay_series(store: Store, cuts: _Cuts, *, params: ModelParams, from_pct: float,
                   progress: Callable[[int, int], Any] | None) -> ReplayResult:
    """``series``: the national totals alone, with the fraction counted each cut gives
    (its acta counts, else the source's share of the votes); cuts without one are
    skipped with their reason."""
    from escrutinio.projection.replay import CutMeta, SkippedCut, replay_series

    c = cuts.contest
    metas_s: list[CutMeta] = []
    fracs: list[float] = []
    skipped: list[SkippedCut] = []
    md = dict(store.snapshot_metadata(c.id))
    for s in cuts.national:
        if s.as_of > cuts.final.as_of:
            continue
        f = _series_fraction(store, s, md)
        r0 = stored_frame(store, s).row(0, named=True)
        counted = {x.code: int(r0[x.column] or 0) for x in c.candidates}
        if f is None:
            skipped.append(SkippedCut(
                len(metas_s) + len(skipped), s.as_of, s.label, s.snapshot_id, None,
                "el corte no dice qué fracción se contó (ni actas ni porcentaje de votos)",
                "the cut does not say what fraction was counted (no acta counts, no share "
                "of the votes)"))
            continue
        metas_s.append(CutMeta(s.as_of, s.label, s.snapshot_id, 100 * f, counted))
        fracs.append(f)
    if not metas_s:
        raise EscrutinioError(
            "ningún corte nacional dice qué fracción se contó: no hay serie que reproducir",
            "no national cut says what fraction was counted: no series to replay")
    return replay_series(metas_s, fracs, c, final=cuts.final_votes, params=params,
                         race=cuts.race, from_pct=from_pct, progress=progress,
                         skipped=skipped)


# --- the dashboard's replay mode: each national cut on its rebuilt per-acta snapshot -----

@dataclass
class RebuiltTimeline:
    """A past count as the dashboard replays it: the arrival order of the actas rebuilt
    from the final per-acta snapshot, the national cuts, the subnational snapshots and the
    earlier per-acta states (:func:`escrutinio.projection.order.derive_arrival_order`, the
    order ``replay --mode actas`` uses), so each national cut is projected on the per-acta
    snapshot of that moment rather than on its aggregates alone."""

    contest_id: str
    order: Any  # escrutinio.projection.order.ArrivalOrder
    contest: Contest
    baseline: Baseline | None  # the prepared first-round baseline, if any
    cut_of: dict[str, int]  # national-cut snapshot id -> index into order.cuts
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def build(store: Store, contest_id: str, *,
              snapshots: Sequence[SnapshotInfo] | None = None, baseline: str = "auto",
              seed: int = DEFAULT_ORDER_SEED) -> RebuiltTimeline | None:
        """The timeline, or None when the store has no national cuts or no final per-acta
        snapshot to rebuild them from (the projection then uses the aggregates, as
        outside a replay). ``snapshots``: every snapshot to consider (default: all the
        store's; a replaying server passes its whole catalogue, ignoring its clock).
        ``baseline="auto"``: the latest per-acta snapshot of the first round of the same
        country and year, when there is one; anything else: none."""
        from escrutinio.domain import ContestKind, sum_vote_types
        from escrutinio.projection.model import prepare_baseline
        from escrutinio.projection.order import (
            ActaState,
            cuts_from_unit_snapshots,
            derive_arrival_order,
            unit_progress_from_frames,
        )

        every = list(store.list_snapshots() if snapshots is None else snapshots)
        snaps = [s for s in every if s.contest_id == contest_id]
        actas = [s for s in snaps if s.kind is SnapshotKind.ACTAS]
        nat = [s for s in snaps if s.kind is SnapshotKind.UNITS and s.level == "national"]
        sub = [s for s in snaps if s.kind is SnapshotKind.UNITS
               and s.level not in (None, "national")]
        if not actas or not nat:
            return None
        contest = store.contest(contest_id)
        final = actas[-1]
        ff = store.load_actas(final.snapshot_id)
        cuts = cuts_from_unit_snapshots(
            [(s.as_of, sum_vote_types(store.load_units(s.snapshot_id)), s.label,
              s.snapshot_id) for s in nat],
            contest)
        states = [ActaState(s.as_of, store.load_actas(s.snapshot_id), s.label)
                  for s in actas[:-1] if s.as_of < final.as_of]
        units = unit_progress_from_frames(
            [(s.as_of, sum_vote_types(store.load_units(s.snapshot_id)), s.label)
             for s in sub])
        order = derive_arrival_order(ff, contest, cuts, states=states, units=units, seed=seed)
        base = None
        if baseline == "auto":
            for c in store.contests():
                if (c.kind is ContestKind.FIRST_ROUND and c.country == contest.country
                        and c.date[:4] == contest.date[:4]):
                    fr = [s for s in every
                          if s.contest_id == c.id and s.kind is SnapshotKind.ACTAS]
                    if fr:
                        base = prepare_baseline(store.load_actas(fr[-1].snapshot_id))
        cut_of = {c.snapshot_id: i for i, c in enumerate(order.cuts)}
        return RebuiltTimeline(contest_id, order, contest, base, cut_of)

    def has(self, snapshot_id: str) -> bool:
        return snapshot_id in self.cut_of

    def projection(self, snapshot_id: str, sims: int, seed: int) -> Projection:
        """The projection of a national cut on its rebuilt per-acta snapshot."""
        from escrutinio.projection.model import ModelParams, project_actas

        i = self.cut_of[snapshot_id]
        cut = self.order.cuts[i]
        with self._lock:
            frame = self.order.snapshot(i)
        return project_actas(frame, self.contest, baseline=self.baseline,
                             params=ModelParams(n_sims=sims, seed=seed),
                             snapshot_id=cut.snapshot_id, as_of=cut.as_of)
