"""Orchestration shared by the CLI and the HTTP API: pick the parser, load from the store,
call the pure analyses. No numbers are computed here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from escrutinio.count import (
    CountState,
    LeadHistory,
    SnapshotRef,
    count_state_actas,
    count_state_units,
    lead_history,
)
from escrutinio.diff import SnapshotDiff, diff_actas, diff_units
from escrutinio.domain import Level, SnapshotKind
from escrutinio.errors import EscrutinioError, IngestError, Location
from escrutinio.sources.base import ParsedSnapshot
from escrutinio.store.base import IngestOutcome, SnapshotInfo, Store

if TYPE_CHECKING:
    from escrutinio.projection.model import ModelParams
    from escrutinio.projection.result import Projection

Parser = Callable[[Path], list[ParsedSnapshot]]


def _ref(info: SnapshotInfo) -> SnapshotRef:
    return SnapshotRef(info.snapshot_id, info.as_of, info.label)


def detect_parser(path: Path, *, as_of: str | None = None) -> Parser:
    """Choose a parser from the file's header (not only its name)."""
    from escrutinio.sources import onpe_files, tabular
    from escrutinio.sources.base import read_source

    name = path.name
    if path.is_dir():
        from escrutinio.sources import onpe_aggregates
        if tabular.is_generic_folder(path):  # data files with their sidecars
            return tabular.parse_folder

        return lambda p: onpe_aggregates.parse_progress_tables(p)
    if name.endswith(".parquet") or name.endswith((".json", ".json.gz")):
        if "district_bundle" in name:
            from escrutinio.sources import onpe_aggregates

            return lambda p: [onpe_aggregates.parse_2026_district_bundle(p)]
        return tabular.parse_tabular_many
    if tabular.sidecar_path_for(path).is_file():  # the generic format, in any CSV dialect
        return tabular.parse_tabular_many
    head = read_source(path).text[:4096].split(b"\n", 1)[0].decode("utf-8", "replace")
    if "v2_emitidos" in head or "v1_emitidos" in head:
        return lambda p: [onpe_files.parse_ronderos(p, as_of=as_of)]
    if "num_mesa" in head and "observacion" in head:
        return lambda p: [onpe_files.parse_provisional(p)]
    if head.startswith("timestamp,pct_counted,candidate"):
        from escrutinio.sources import onpe_aggregates

        return lambda p: onpe_aggregates.parse_2026_national_timeseries(p)
    if "acta_id" in head or "unit_code" in head:
        return tabular.parse_tabular_many
    raise IngestError(Location(str(path), 1), "unknown_format",
                      "formato no reconocido; vea docs/formats.md",
                      "unrecognised format; see docs/formats.md")


def area_labels(store: Store, contest_id: str) -> dict[str, tuple[str, str]]:
    """What the contest's country calls area1/2/3, ``{"area1": (es, en), ...}``: a stored
    sidecar's ``area_labels`` (newest snapshot first), else the known country's names,
    else "nivel 1 / level 1" (:mod:`escrutinio.sources.labels`)."""
    from escrutinio.sources import labels

    contest = store.contest(contest_id)
    md = store.snapshot_metadata(contest_id)
    return labels.area_labels(contest.country, reversed(list(md.values())))


def parse_paths(paths: Sequence[Path], *, as_of: str | None = None) -> list[ParsedSnapshot]:
    """Parse every path first; nothing is stored unless all of them parse."""
    out: list[ParsedSnapshot] = []
    for p in paths:
        out.extend(detect_parser(p, as_of=as_of)(p))
    return out


def ingest(store: Store, snapshots: list[ParsedSnapshot]) -> list[IngestOutcome]:
    """Store snapshots and append them to the tamper-evident ledger in one transaction:
    a snapshot is never stored without its chain entry (if logging fails, nothing is)."""
    from escrutinio.store.ledger import append_new

    return store.put_snapshots(
        snapshots, before_commit=lambda: append_new(store, in_transaction=True))


@dataclass(frozen=True, slots=True)
class Loaded:
    info: SnapshotInfo
    frame: pl.DataFrame


def load(store: Store, info: SnapshotInfo) -> Loaded:
    frame = (store.load_actas(info.snapshot_id) if info.kind is SnapshotKind.ACTAS
             else store.load_units(info.snapshot_id))
    return Loaded(info, frame)


def default_contest(store: Store, contest_id: str | None) -> str:
    if contest_id:
        return contest_id
    contests = store.contests()
    if not contests:
        raise EscrutinioError("el almacén está vacío; ejecute 'escrutinio ingest'",
                              "the store is empty; run 'escrutinio ingest'")
    # the contest with the most recent snapshot
    snaps = store.list_snapshots()
    return snaps[-1].contest_id if snaps else contests[0].id


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
        return count_state_actas(loaded.frame, contest, _ref(info), level=level, names=names,
                                 n_rejected=info.n_rejected, rejected=rejected)
    parents = {c: p for c, p in zip(geo["code"].to_list(), geo["parent"].to_list(),
                                    strict=True) if p}
    return count_state_units(loaded.frame, contest, _ref(info), level=level, names=names,
                             n_rejected=info.n_rejected, parents=parents)


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


def history_snapshots(store: Store, contest_id: str) -> list[SnapshotInfo]:
    """Snapshots that cover the whole country: acta snapshots and national unit rows (a
    snapshot whose every row was rejected, e.g. a truncated scrape, has nothing to show)."""
    return [s for s in store.list_snapshots(contest_id)
            if (s.kind is SnapshotKind.ACTAS or s.level in (None, "national")) and s.n_rows]


def history(store: Store, contest_id: str | None = None,
            kind: SnapshotKind | None = None) -> LeadHistory:
    cid = default_contest(store, contest_id)
    snaps = [s for s in history_snapshots(store, cid) if kind is None or s.kind is kind]
    states = [state_of(store, s, level=Level.NATIONAL) for s in snaps]
    return lead_history(states)


def diff(store: Store, older: str, newer: str, *, contest_id: str | None = None,
         limit: int | None = 100) -> SnapshotDiff:
    cid = default_contest(store, contest_id)
    a = store.snapshot(older, contest_id=cid)
    b = store.snapshot(newer, contest_id=cid)
    if a.kind is not b.kind:
        raise EscrutinioError(
            "no se pueden comparar una instantánea por acta y una agregada",
            "cannot diff a per-acta snapshot against an aggregate one")
    contest = store.contest(cid)
    la, lb = load(store, a), load(store, b)
    fn = diff_actas if a.kind is SnapshotKind.ACTAS else diff_units
    return fn(la.frame, lb.frame, contest, _ref(a), _ref(b), limit=limit)


# --- projection (orchestration: load what the model needs, then call it) ---------------

_LEVEL_KEYS = {"area1": "area1_code", "area2": "area2_code", "area3": "area3_code"}


def area_parents(store: Store, contest_id: str) -> dict[str, str]:
    geo = store.geography(contest_id)
    return {c: p for c, p in zip(geo["code"].to_list(), geo["parent"].to_list(), strict=True)
            if p}


def national_cut_at(store: Store, info: SnapshotInfo) -> SnapshotInfo | None:
    for s in store.list_snapshots(info.contest_id, SnapshotKind.UNITS):
        if s.level == "national" and s.as_of == info.as_of:
            return s
    return None


def unit_baseline(base_actas: pl.DataFrame, units: pl.DataFrame) -> pl.DataFrame | None:
    """Aggregate a per-acta baseline to the level of the unit snapshot."""
    lv = units["level"].to_list()
    key = _LEVEL_KEYS.get(lv[0]) if lv else None
    if key is None:
        return None
    cols = [c for c in base_actas.columns if c.startswith("v_")]
    return base_actas.group_by(key).agg([pl.col(c).sum() for c in cols]
                                        + [pl.col("electors").sum()]).rename({key: "unit_code"})


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
    from escrutinio.sources.base import SERIES_FRACTION_KEY

    if info.kind is not SnapshotKind.UNITS or info.level != Level.NATIONAL.value:
        return None
    md = store.snapshot_metadata(info.contest_id)
    if not md.get(info.snapshot_id, {}).get(SERIES_FRACTION_KEY):
        return None
    contest = store.contest(info.contest_id)
    out: list[tuple[Sequence[float], float]] = []
    ids: list[str] = []
    for s in history_snapshots(store, info.contest_id):
        frac = md.get(s.snapshot_id, {}).get(SERIES_FRACTION_KEY)
        if s.as_of > info.as_of or s.level != Level.NATIONAL.value or not frac:
            continue
        votes = _CUT_VOTES.get(s.snapshot_id)
        if votes is None:
            row = store.load_units(s.snapshot_id).row(0, named=True)
            votes = tuple(int(row[c.column] or 0) for c in contest.candidates)
            _CUT_VOTES[s.snapshot_id] = votes
        out.append((votes, float(frac)))
        ids.append(s.snapshot_id)
    return out, ids


def project_snapshot(store: Store, info: SnapshotInfo, *, params: ModelParams,
                     baseline: pl.DataFrame | None = None,
                     blocs: dict[str, list[str]] | None = None,
                     with_national: bool = True) -> Projection:
    """Load one snapshot and project it (per acta or per unit)."""
    from escrutinio.projection.model import project_actas
    from escrutinio.projection.units import (
        complete_with_national,
        finest_units,
        project_series,
        project_units,
    )

    contest = store.contest(info.contest_id)
    if info.kind is SnapshotKind.ACTAS:
        return project_actas(store.load_actas(info.snapshot_id), contest, baseline=baseline,
                             blocs=blocs, params=params, snapshot_id=info.snapshot_id,
                             as_of=info.as_of)
    series = _series_history(store, info)
    if series is not None:  # national totals alone, with the source's fraction counted
        from dataclasses import replace

        cuts, ids = series
        proj = project_series(cuts, contest, params=params, snapshot_id=info.snapshot_id,
                              as_of=info.as_of)
        # reproducible: every cut the series model saw, this one first
        return replace(proj, provenance=replace(proj.provenance, snapshot_ids=(
            info.snapshot_id, *(i for i in ids if i != info.snapshot_id))))
    units = finest_units(store.load_units(info.snapshot_id))
    note = None
    if with_national and info.level not in (None, "national"):
        nat = national_cut_at(store, info)
        if nat is not None:
            units = complete_with_national(units, store.load_units(nat.snapshot_id))
        else:
            nats = [s for s in store.list_snapshots(info.contest_id, SnapshotKind.UNITS)
                    if s.level == "national"]
            if nats:
                total = int(store.load_units(nats[-1].snapshot_id)["actas_total"].max() or 0)
                have = int(units["actas_total"].fill_null(0).sum())
                if have < total:
                    note = {"es": f"las unidades cubren {have:,} de {total:,} actas y ningún "
                                  "corte nacional del mismo minuto las completa: se proyecta "
                                  "solo lo que cubren",
                            "en": f"the units cover {have:,} of {total:,} actas and no "
                                  "national cut of the same minute completes them: this "
                                  "projects only what they cover"}
    base = unit_baseline(baseline, units) if baseline is not None else None
    proj = project_units(units, contest, parents=area_parents(store, info.contest_id),
                         baseline=base, blocs=blocs if base is not None else None,
                         remaining=_source_remaining(store, info),
                         params=params, snapshot_id=info.snapshot_id, as_of=info.as_of)
    if note is not None:
        from dataclasses import replace

        proj = replace(proj, diagnostics={**proj.diagnostics, "coverage_warning": note})
    return proj


