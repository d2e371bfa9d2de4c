"""Orchestration shared by the CLI and the HTTP API: pick the parser, load from the store,
call the pure analyses. No numbers are computed here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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

Parser = Callable[[Path], list[ParsedSnapshot]]


def _ref(info: SnapshotInfo) -> SnapshotRef:
    return SnapshotRef(info.snapshot_id, info.as_of, info.label)


def detect_parser(path: Path, *, as_of: str | None = None) -> Parser:
    """Choose a parser from the file's header (not only its name)."""
    from escrutinio.sources import onpe_files
    from escrutinio.sources.base import read_source

    name = path.name
    if path.is_dir():
        from escrutinio.sources import onpe_aggregates

        return lambda p: onpe_aggregates.parse_progress_tables(p)
    if name.endswith(".parquet") or name.endswith((".json", ".json.gz")):
        if "district_bundle" in name:
            from escrutinio.sources import onpe_aggregates

            return lambda p: [onpe_aggregates.parse_2026_district_bundle(p)]
        from escrutinio.sources import tabular

        return lambda p: [tabular.parse_tabular(p)]
    head = read_source(path).text[:4096].split(b"\n", 1)[0].decode("utf-8", "replace")
    if "v2_emitidos" in head or "v1_emitidos" in head:
        return lambda p: [onpe_files.parse_ronderos(p, as_of=as_of)]
    if "num_mesa" in head and "observacion" in head:
        return lambda p: [onpe_files.parse_provisional(p)]
    if "acta_id" in head or "unit_code" in head:
        from escrutinio.sources import tabular

        return lambda p: [tabular.parse_tabular(p)]
    raise IngestError(Location(str(path), 1), "unknown_format",
                      "formato no reconocido; vea docs/formats.md",
                      "unrecognised format; see docs/formats.md")


def parse_paths(paths: Sequence[Path], *, as_of: str | None = None) -> list[ParsedSnapshot]:
    """Parse every path first; nothing is stored unless all of them parse."""
    out: list[ParsedSnapshot] = []
    for p in paths:
        out.extend(detect_parser(p, as_of=as_of)(p))
    return out


def ingest(store: Store, snapshots: list[ParsedSnapshot]) -> list[IngestOutcome]:
    """Store snapshots atomically, then append the new ones to the tamper-evident ledger."""
    from escrutinio.store.ledger import append_new

    outcomes = store.put_snapshots(snapshots)
    append_new(store)
    return outcomes


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
        return count_state_actas(loaded.frame, contest, _ref(info), level=level, names=names,
                                 n_rejected=info.n_rejected)
    parents = {c: p for c, p in zip(geo["code"].to_list(), geo["parent"].to_list(),
                                    strict=True) if p}
    return count_state_units(loaded.frame, contest, _ref(info), level=level, names=names,
                             n_rejected=info.n_rejected, parents=parents)


def history_snapshots(store: Store, contest_id: str) -> list[SnapshotInfo]:
    """Snapshots that cover the whole country: acta snapshots and national unit rows."""
    return [s for s in store.list_snapshots(contest_id)
            if s.kind is SnapshotKind.ACTAS or s.level in (None, "national")]


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
