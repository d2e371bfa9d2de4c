"""Restart: the last accepted live states of a contest, read back from the store.

A new watcher on the same store resumes from the latest national and area1 unit
snapshots of its parser (the home/abroad totals from the area1 snapshot's metadata),
the latest acta snapshot, and the crawl's frontier, which holds every accepted acta
state (an acta whose state differs from the last acta snapshot is marked changed, so
the next acta snapshot includes it).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from escrutinio.domain import SnapshotKind
from escrutinio.live.config import LiveConfig
from escrutinio.live.parse import LIMA, ActaReading, UnitReading
from escrutinio.live.state import EventLog, LiveState
from escrutinio.store.base import SnapshotInfo, Store

if TYPE_CHECKING:
    from escrutinio.live.crawl import Crawler

_NOT_COUNTS = ("level", "unit_code", "abroad")


def _unit_reading(key: str, row: dict[str, Any], u: dict[str, Any], as_of: datetime,
                  cands: list[str], *, level: str | None, unit_code: str) -> UnitReading:
    return UnitReading(
        scope=key, level=level, unit_code=unit_code, abroad=row.get("abroad"),
        as_of=as_of.astimezone(LIMA),
        counts={k: v for k, v in row.items()
                if k not in _NOT_COUNTS and not k.startswith("v_")},
        votes={c: row.get(f"v_{c}") for c in cands}, valid=u.get("valid"),
        extra=u.get("extra", {}), percents=u.get("percents", {}),
        raw_sha256=tuple(u.get("raw", ())))


def _as_of(u: dict[str, Any], info: SnapshotInfo) -> datetime:
    return datetime.fromisoformat(u["as_of"]) if u.get("as_of") else info.as_of


class Resumer:
    def __init__(self, cfg: LiveConfig, store: Store, live: LiveState,
                 crawler: Crawler | None, emit: EventLog) -> None:
        self.cfg = cfg
        self.store = store
        self.live = live
        self.crawler = crawler
        self.emit = emit
        self.cands = [c.code for c in cfg.contest.candidates]

    def resume(self) -> None:
        """Load the last accepted live states of this contest from the store."""
        contest_id = self.cfg.contest.id
        snaps = [s for s in self.store.list_snapshots(contest_id)
                 if s.parser == self.cfg.parser_name]
        metadata = self.store.snapshot_metadata(contest_id) if snaps else {}
        units = [s for s in snaps if s.kind is SnapshotKind.UNITS]
        nat = [s for s in units if s.level == "national"]
        area = [s for s in units if s.level == "area1"]
        restored: list[str] = []
        for info in ([nat[-1]] if nat else []) + ([area[-1]] if area else []):
            meta = metadata.get(info.snapshot_id, {})
            restored += self._units(info, meta)
            if info.level == "national":
                self.live.served_snapshot = info.snapshot_id
            else:
                self.live.area1_snapshot = info.snapshot_id
                restored += self._ambitos(info, meta)
        acta_snaps = [s for s in snaps if s.kind is SnapshotKind.ACTAS]
        crawled = self._actas(acta_snaps[-1] if acta_snaps else None, metadata)
        if restored or acta_snaps or crawled:
            n = len(self.live.actas)
            self.emit("resumed", "info", None,
                      f"se reanuda desde el almacén ({len(restored)} ámbitos, {n} actas)",
                      f"resumed from the store ({len(restored)} scopes, {n} actas)",
                      scopes=restored, snapshot=self.live.served_snapshot)

    def _units(self, info: SnapshotInfo, meta: dict[str, str]) -> list[str]:
        per_unit = json.loads(meta.get("units", "{}"))
        restored = []
        for row in self.store.load_units(info.snapshot_id).iter_rows(named=True):
            key = "national" if row["level"] == "national" else f"area1:{row['unit_code']}"
            if key not in self.live.scopes or (info.level == "area1" and key == "national"):
                continue
            u = per_unit.get(key, {})
            st = self.live.scopes[key]
            st.accepted = _unit_reading(key, row, u, _as_of(u, info), self.cands,
                                        level=row["level"], unit_code=row["unit_code"])
            st.accepted_at = info.ingested_at
            restored.append(key)
        return restored

    def _ambitos(self, info: SnapshotInfo, meta: dict[str, str]) -> list[str]:
        restored = []
        for key, u in json.loads(meta.get("ambitos", "{}")).items():
            if key not in self.live.scopes:
                continue
            st = self.live.scopes[key]
            st.accepted = _unit_reading(key, u["row"], u, _as_of(u, info), self.cands,
                                        level=None, unit_code="")
            st.accepted_at = info.ingested_at
            restored.append(key)
        return restored

    def _actas(self, info: SnapshotInfo | None, metadata: dict[str, dict[str, str]]
               ) -> dict[str, ActaReading]:
        """The actas of the last acta snapshot, then the frontier's (which wins)."""
        live = self.live
        crawled = self.crawler.readings() if self.crawler is not None else {}
        crawled_ids = {r.acta_id: k for k, r in crawled.items()}
        stored: dict[str, str] = {}  # acta id -> fingerprint in the last acta snapshot
        if info is not None:
            live.actas_snapshot = info.snapshot_id
            live.last_acta_snapshot_at = info.ingested_at
            meta = json.loads(metadata.get(info.snapshot_id, {}).get("actas", "{}"))
            for row in self.store.load_actas(info.snapshot_id).iter_rows(named=True):
                m = meta.get(row["acta_id"], {})
                key = m.get("scope") or crawled_ids.get(row["acta_id"]) \
                    or f"crawl:{row['acta_id']}"
                r = self._acta_reading(key, row, m)
                stored[r.acta_id] = r.fingerprint()
                if key not in crawled:
                    live.actas[key] = r
        for key, r in crawled.items():  # the frontier holds every accepted acta state
            live.actas[key] = r
            if stored.get(r.acta_id) != r.fingerprint():
                live.acta_dirty.add(key)
                live.actas_changed = True
        return crawled

    def _acta_reading(self, key: str, row: dict[str, Any], m: dict[str, Any]) -> ActaReading:
        return ActaReading(
            scope=key, acta_id=row["acta_id"], status=row["status"],
            area3_code=row["area3_code"],
            figures={k: row[k] for k in ("electors", "cast", "blank", "null", "challenged")},
            votes={c: row[f"v_{c}"] for c in self.cands}, observation=row["observation"],
            resolved=bool(row["resolved"]), authority_id=m.get("authority_id", ""),
            raw_sha256=tuple(m.get("raw", ())), polling_place=row["polling_place"])


__all__ = ["Resumer"]
