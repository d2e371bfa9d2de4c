"""What every question needs from the store: the contest to use, a stored snapshot's
frame (cached: a snapshot never changes once stored), its reference and a warning record."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from escrutinio.count import SnapshotRef
from escrutinio.domain import VOTE_TYPE, SnapshotKind, sum_vote_types
from escrutinio.errors import EscrutinioError
from escrutinio.store.base import SnapshotInfo, Store


def snapshot_ref(info: SnapshotInfo) -> SnapshotRef:
    return SnapshotRef(info.snapshot_id, info.as_of, info.label)


@dataclass(frozen=True, slots=True)
class Loaded:
    info: SnapshotInfo
    frame: pl.DataFrame


def load(store: Store, info: SnapshotInfo) -> Loaded:
    """A stored snapshot's frame; a unit published in one row per vote type comes as one
    row with its types added up (:func:`~escrutinio.domain.sum_vote_types`)."""
    frame = (store.load_actas(info.snapshot_id) if info.kind is SnapshotKind.ACTAS
             else sum_vote_types(store.load_units(info.snapshot_id)))
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


#: small caches of immutable stored frames (snapshots never change once stored)
_FRAMES: OrderedDict[tuple[str, str], pl.DataFrame] = OrderedDict()
#: memory budget of the cached frames, and of the cached unit cuts (least recently used
#: first out): a replay of hundreds of district cuts fits, a server does not grow unbounded
_CACHE_BYTES = 512 * 2**20
_CACHE_LOCK = threading.Lock()


def _trim(cache: OrderedDict[Any, Any], size: Callable[[Any], int]) -> None:
    """Drop the least recently used entries until the cache is within the budget (the
    newest entry always stays)."""
    total = sum(size(v) for v in cache.values())
    while total > _CACHE_BYTES and len(cache) > 1:
        _, old = cache.popitem(last=False)
        total -= size(old)


def stored_frame(store: Store, info: SnapshotInfo, *, typed: bool = False) -> pl.DataFrame:
    """A stored snapshot's frame (cached: snapshots never change once stored). A unit
    published in one row per vote type comes as one row with its types added up
    (:func:`~escrutinio.domain.sum_vote_types`: what every count per area reads), unless
    ``typed`` (the per-unit projection, which treats each type apart)."""
    if info.kind is SnapshotKind.UNITS and not typed:
        key = ("units:summed", info.snapshot_id)
        with _CACHE_LOCK:
            got = _FRAMES.get(key)
            if got is not None:
                _FRAMES.move_to_end(key)
                return got
        rows = stored_frame(store, info, typed=True)
        if VOTE_TYPE not in rows.columns:
            return rows
        frame = sum_vote_types(rows)
        with _CACHE_LOCK:
            _FRAMES[key] = frame
            _trim(_FRAMES, lambda f: int(f.estimated_size()))
        return frame
    key = (info.kind.value, info.snapshot_id)
    with _CACHE_LOCK:
        got = _FRAMES.get(key)
        if got is not None:
            _FRAMES.move_to_end(key)
            return got
    frame = (store.load_actas(info.snapshot_id) if info.kind is SnapshotKind.ACTAS
             else store.load_units(info.snapshot_id))
    with _CACHE_LOCK:
        _FRAMES[key] = frame
        _trim(_FRAMES, lambda f: int(f.estimated_size()))
    return frame


def warning_record(code: str, es: str, en: str) -> dict[str, str]:
    return {"code": code, "es": es, "en": en}
