"""Helpers for the live-count tests: configurations pointed at the fake ONPE, the truth
of a synthetic count, and the checks every test repeats (no bad snapshot...)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from escrutinio.domain import SnapshotKind
from escrutinio.live.config import LiveConfig, config_from_dict, example
from escrutinio.live.fake_onpe import FakeOnpe, Synthetic2026
from escrutinio.live.soak import audit_against_truth
from escrutinio.live.soak import clean_national_states as soak_clean_states
from escrutinio.store.duckdb_store import DuckDBStore

UNITS4 = ("010000", "140000", "150000", "920000")
CANDS = ("fujimori", "sanchez")


def config_dict(name: str = "onpe2026-runoff") -> dict[str, Any]:
    return tomllib.loads(example(name).read_text("utf-8"))


def live_config(fake: FakeOnpe, *, name: str = "onpe2026-runoff", area1: Any = UNITS4,
                actas: list[str] | None = None, intervals: dict[str, Any] | None = None,
                transport: dict[str, Any] | None = None,
                validation: dict[str, Any] | None = None, area1_complete: bool | None = None,
                cold: dict[str, Any] | None = None, **top: Any) -> LiveConfig:
    d = config_dict(name)
    d["scopes"]["area1"] = list(area1) if not isinstance(area1, str) else area1
    if area1_complete is not None:
        d["scopes"]["area1_complete"] = area1_complete
    d.setdefault("actas", {})["ids" if name.startswith("onpe2026") else "mesas"] = actas or []
    d["intervals"] = {"hot_s": 45, "warm_s": 300, "cold_s": 900, "stale_after_s": 180,
                      "hard_block_pause_s": 600, "storm_threshold": 3,
                      "storm_backoff_max_s": 600} | (intervals or {})
    d["transport"] = {"timeout_s": 0.3, "rate_per_s": 5.0, "jitter_s": 0.2,
                      "max_attempts": 3, "backoff_base_s": 2.0,
                      "backoff_max_s": 30.0} | (transport or {})
    if validation:
        d["validation"] = d.get("validation", {}) | validation
    if cold is not None:
        d["cold"] = d.get("cold", {}) | cold
    d.update(top)
    base = fake.backend_url if name.startswith("onpe2026") else fake.url
    d["base_url"], d["site_url"] = base, fake.url
    return config_from_dict(d, source=f"test:{name}")


def truth_row(tl: Synthetic2026, k: int, scope: str = "national") -> dict[str, Any]:
    s = tl.truth(k, scope)
    return {"actas_total": s["total"], "actas_counted": s["counted"],
            "actas_processed": s["counted"] + s["jee"], "actas_jee": s["jee"],
            "actas_pending": s["pending"], "cast": s["cast"],
            **{f"v_{c}": v for c, v in zip(CANDS, s["votes"], strict=True)}}


COMPARED = ("actas_total", "actas_counted", "actas_processed", "actas_jee", "actas_pending",
            "cast", *(f"v_{c}" for c in CANDS))


def pick(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in COMPARED}


@dataclass(frozen=True)
class LiveSnap:
    snapshot_id: str
    as_of: datetime
    level: str | None
    kind: SnapshotKind
    frame: pl.DataFrame
    metadata: dict[str, Any]


def live_snapshots(store: DuckDBStore, cfg: LiveConfig) -> list[LiveSnap]:
    out = []
    for info in store.list_snapshots(cfg.contest.id):
        if info.parser != cfg.parser_name:
            continue
        frame = (store.load_units(info.snapshot_id) if info.kind is SnapshotKind.UNITS
                 else store.load_actas(info.snapshot_id))
        meta = json.loads(store.con.execute(
            "SELECT metadata FROM snapshots WHERE snapshot_id = ?",
            [info.snapshot_id]).fetchall()[0][0])
        out.append(LiveSnap(info.snapshot_id, info.as_of, info.level, info.kind, frame, meta))
    return out


def assert_no_bad_snapshots(store: DuckDBStore, cfg: LiveConfig, tl: Synthetic2026
                            ) -> dict[str, int]:
    """Every stored live snapshot equals the truth of the state it claims; national
    ONPE times strictly increase (see escrutinio.live.soak.audit_against_truth)."""
    audit = audit_against_truth(store, cfg, tl)
    assert audit.bad == [], audit.bad[:5]
    return {"national": audit.national, "area1": audit.area1, "actas": audit.actas}


def clean_national_states(fake: FakeOnpe, min_pairs: int = 1) -> set[int]:
    return soak_clean_states(fake, min_pairs)
