"""Ingest: choose a parser from a file's header, parse every path first, then store the
snapshots and log them in the tamper-evident ledger in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from escrutinio.domain import SnapshotKind
from escrutinio.errors import IngestError, Location
from escrutinio.sources.base import ParsedSnapshot
from escrutinio.store.base import IngestOutcome, Store

if TYPE_CHECKING:
    from concurrent.futures import Future

    from escrutinio.store.ledger import SnapshotRows

Parser = Callable[[Path], list[ParsedSnapshot]]


def detect_parser(path: Path, *, as_of: str | None = None) -> Parser:
    """Choose a parser from the file's header (not only its name)."""
    from escrutinio.sources import onpe_files, tabular
    from escrutinio.sources.base import read_source

    name = path.name
    if path.is_dir():
        if tabular.is_generic_folder(path):  # data files with their sidecars
            return tabular.parse_folder
        from escrutinio.sources import onpe_aggregates

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


def ingest_warnings(snapshots: Sequence[ParsedSnapshot]) -> list[dict[str, str]]:
    """What ingest accepted with a caveat (a Latin-1 file, an unknown sidecar key, acta IDs
    the audit will refuse...), once each although a series repeats them in every cut:
    ``[{"field": ..., "es": ..., "en": ...}]``."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for snap in snapshots:
        f = snap.findings
        if f.height == 0 or "rule" not in f.columns:
            continue
        for row in f.filter(pl.col("rule") == "ingest_warning").iter_rows(named=True):
            key = (row["message_es"], row["message_en"])
            seen.setdefault(key, {"field": row["field"] or "", "es": row["message_es"],
                                  "en": row["message_en"]})
    return list(seen.values())


def source_notes(snapshots: Sequence[ParsedSnapshot]) -> list[dict[str, str]]:
    """What the sources say about their own data (a generic sidecar's ``notes``: an
    inconsistent column kept as published, an estimate clipped...), once each."""
    import json

    seen: dict[tuple[str, str], dict[str, str]] = {}
    for snap in snapshots:
        for note in json.loads(snap.metadata.get("notes") or "[]"):
            seen.setdefault((note["es"], note["en"]), {"es": note["es"], "en": note["en"]})
    return list(seen.values())


def parse_paths(paths: Sequence[Path], *, as_of: str | None = None) -> list[ParsedSnapshot]:
    """Parse every path first; nothing is stored unless all of them parse."""
    out: list[ParsedSnapshot] = []
    for p in paths:
        out.extend(detect_parser(p, as_of=as_of)(p))
    return out


class LeavesAhead:
    """The ledger rows (:func:`escrutinio.store.ledger.parsed_rows`: leaves, Merkle root,
    keys) of every per-acta snapshot, hashed in a thread from the moment the snapshots are
    parsed, so that the hashing also overlaps the opening of the store (``escrutinio
    ingest``: ``with LeavesAhead(parsed) as ahead, open_store() as store: ingest(store,
    parsed, ahead=ahead)``). Snapshots the store already holds are not needed: leaving the
    block cancels what has not started."""

    def __init__(self, snapshots: Sequence[ParsedSnapshot]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from escrutinio.store.ledger import parsed_rows

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ledger-leaves")
        self.futures: dict[str, Future[SnapshotRows | None]] = {}
        for snap in snapshots:
            if snap.kind is SnapshotKind.ACTAS and snap.snapshot_id not in self.futures:
                self.futures[snap.snapshot_id] = self._pool.submit(parsed_rows, snap)

    def __enter__(self) -> LeavesAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Cancel what is not needed any more (a running hash finishes in its thread)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def ingest(store: Store, snapshots: list[ParsedSnapshot], *,
           ahead: LeavesAhead | None = None) -> list[IngestOutcome]:
    """Store snapshots and append them to the tamper-evident ledger in one transaction:
    a snapshot is never stored without its chain entry (if logging fails, nothing is).

    The ledger's leaves of each new per-acta snapshot are hashed in a thread while the
    store writes the rows (DuckDB and PostgreSQL release the GIL while they work), from
    the parsed frame (:func:`escrutinio.store.ledger.parsed_rows`: the same rows the
    ledger would read back, so the same leaves, root and entry); ``ahead``: that thread
    already started (:class:`LeavesAhead`, before the store opened)."""
    from escrutinio.store.ledger import append_new

    stored = {info.snapshot_id for info in store.list_snapshots()}
    new = [s for s in snapshots
           if s.kind is SnapshotKind.ACTAS and s.snapshot_id not in stored]
    if not new:
        return store.put_snapshots(
            snapshots, before_commit=lambda: append_new(store, in_transaction=True))
    with ahead if ahead is not None else LeavesAhead(new) as hashing:
        futures = hashing.futures
        return store.put_snapshots(snapshots, before_commit=lambda: append_new(
            store, in_transaction=True,
            rows={s.snapshot_id: futures[s.snapshot_id].result for s in new}))
