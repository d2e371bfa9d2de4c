"""Where the count stands: the state of a snapshot by level, the levels a snapshot has,
and what the contest's country calls its levels."""

from __future__ import annotations

from collections.abc import Sequence

from escrutinio.count import (
    CandidateVotes,
    CountState,
    UnitState,
    count_state_actas,
    count_state_units,
)
from escrutinio.domain import Level, SnapshotKind
from escrutinio.service.common import default_contest, load, snapshot_ref
from escrutinio.store.base import SnapshotInfo, Store


def area_labels(store: Store, contest_id: str) -> dict[str, tuple[str, str]]:
    """What the contest's country calls area1/2/3, ``{"area1": (es, en), ...}``: a stored
    sidecar's ``area_labels`` (newest snapshot first), else the known country's names,
    else "nivel 1 / level 1" (:mod:`escrutinio.sources.labels`)."""
    from escrutinio.sources import labels

    contest = store.contest(contest_id)
    md = store.snapshot_metadata(contest_id)
    return labels.area_labels(contest.country, reversed(list(md.values())))


def level_names(store: Store, contest_id: str | None = None) -> dict[str, str]:
    """``--level`` words of the contest's country, both languages, with and without
    accents (``región``, ``region``, ``state``, ``estado``...) -> generic level value."""
    import unicodedata

    def plain(x: str) -> str:
        return "".join(ch for ch in unicodedata.normalize("NFKD", x)
                       if not unicodedata.combining(ch)).lower().strip()

    if not store.contests():
        return {}
    out: dict[str, str] = {}
    for level, pair in area_labels(store, default_contest(store, contest_id)).items():
        for word in pair:
            out[word.lower().strip()] = level
            out.setdefault(plain(word), level)
    return out


def state(store: Store, ref: str = "latest", *, level: Level = Level.AREA1,
          contest_id: str | None = None, kind: SnapshotKind | None = None) -> CountState:
    cid = default_contest(store, contest_id)
    info = store.snapshot(ref, contest_id=cid, kind=kind)
    return state_of(store, info, level=level)


def state_of(store: Store, info: SnapshotInfo, *, level: Level = Level.AREA1) -> CountState:
    contest = store.contest(info.contest_id)
    geo = store.geography(info.contest_id)
    names = dict(zip(geo["code"].to_list(), geo["name"].to_list(), strict=True))
    loaded = load(store, info)
    if info.kind is SnapshotKind.ACTAS:
        rejected = store.load_row_reports(info.snapshot_id) if info.n_rejected else None
        return count_state_actas(loaded.frame, contest, snapshot_ref(info), level=level,
                                 names=names, n_rejected=info.n_rejected, rejected=rejected)
    parents = {c: p for c, p in zip(geo["code"].to_list(), geo["parent"].to_list(),
                                    strict=True) if p}
    from dataclasses import replace

    from escrutinio.service.units import coverage_warnings

    st = count_state_units(loaded.frame, contest, snapshot_ref(info), level=level, names=names,
                           n_rejected=info.n_rejected, parents=parents,
                           source_fraction=source_share_counted(store, info))
    gaps = coverage_warnings(store, info)
    return replace(st, coverage_warnings=tuple(gaps)) if gaps else st


def source_share_counted(store: Store, info: SnapshotInfo) -> float | None:
    """The source's own estimate of the fraction of the votes counted at a unit cut
    (metadata ``pct_votes_counted`` of the cut or of the national cut of the same
    minute), the figure every caller uses: ``status``, ``history`` and the projection
    (:func:`~escrutinio.service.units.metadata_fraction`). None for acta snapshots and
    sources that give none."""
    from escrutinio.service.units import metadata_fraction, national_cut_at

    if info.kind is not SnapshotKind.UNITS:
        return None
    nat = national_cut_at(store, info) if info.level not in (None, Level.NATIONAL.value) \
        else None
    return metadata_fraction(store, info, nat)


def levels_of(info: SnapshotInfo) -> tuple[Level, ...]:
    """Levels with units in a snapshot (an acta snapshot has them all)."""
    if info.kind is SnapshotKind.ACTAS:
        return (Level.NATIONAL, Level.AREA1, Level.AREA2, Level.AREA3)
    finest = Level(info.level or "national")
    order = list(Level)
    return tuple(order[: order.index(finest) + 1])


def latest_with_level(store: Store, info: SnapshotInfo, level: Level) -> SnapshotInfo | None:
    """``info`` if it has units at ``level``, else the latest earlier snapshot of the same
    contest that has (a national-only cut shows its areas from the latest cut with them)."""
    if level in levels_of(info):
        return info
    for s in reversed(store.list_snapshots(info.contest_id)):
        if s.as_of <= info.as_of and s.n_rows and level in levels_of(s):
            return s
    return None


def area_parents(store: Store, contest_id: str) -> dict[str, str]:
    geo = store.geography(contest_id)
    return {c: p for c, p in zip(geo["code"].to_list(), geo["parent"].to_list(), strict=True)
            if p}


def by_votes(candidates: Sequence[CandidateVotes]) -> list[CandidateVotes]:
    """Candidates by votes, most first; ties keep the ballot order."""
    return sorted(candidates, key=lambda c: -c.votes)


def split_candidates(national: UnitState, keep: int) -> tuple[list[str], list[str]]:
    """(codes shown one by one, codes summed as "others"): the national leaders first,
    at least three kept (the runner-up and, in a first round, the third place that races
    it for the runoff are never summed), and never a lone candidate summed (it takes the
    place of the sum)."""
    order = [c.code for c in by_votes(national.candidates)]
    keep = max(3, keep)
    if len(order) <= keep + 1:
        return order, []
    return order[:keep], order[keep:]


def votes_of(unit: UnitState, codes: Sequence[str]) -> dict[str, int]:
    """A unit's votes of each of ``codes`` (0 for a candidate it does not list)."""
    votes = {c.code: c.votes for c in unit.candidates}
    return {c: votes.get(c, 0) for c in codes}


def others_votes(unit: UnitState, rest: Sequence[str]) -> int:
    """A unit's votes summed over the candidates ``rest`` (the "others" column)."""
    return sum(votes_of(unit, rest).values())
