"""Snapshot building: accepted states -> snapshots in the store.

* **national** — each new national state becomes a unit snapshot (one row,
  ``level = national``).
* **area1** — after a warm sweep in which an area changed: the latest accepted national
  row plus every area's latest accepted row; home/abroad totals, validated, in its
  metadata (they are not a unit level), with the national − Σ areas drift when the areas
  are complete.
* **actas** — one acta snapshot with every acta followed (configured and crawled).

Every snapshot is stored as any ingest stores it (``service.ingest``): one transaction,
then appended to the tamper-evident ledger; the raw answers it was built from are flushed
to the raw log first.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from escrutinio.domain import SnapshotKind
from escrutinio.live.config import LiveConfig, Tier
from escrutinio.live.parse import ActaReading, UnitReading
from escrutinio.live.state import EventLog, LiveState, iso, lima
from escrutinio.live.transport import Clock
from escrutinio.live.validate import Problem, aggregate_drift
from escrutinio.sources.base import REJECTED_SCHEMA, ParsedSnapshot, conform
from escrutinio.store.base import IngestOutcome, Store

if TYPE_CHECKING:
    from escrutinio.live.crawl import Crawler
    from escrutinio.live.rawlog import RawLog

_GEO_SCHEMA = {"code": pl.String, "name": pl.String, "level": pl.String, "parent": pl.String,
               "abroad": pl.Boolean, "alt_code": pl.String}


def newer(a: ActaReading, b: ActaReading) -> bool:
    t0 = datetime.min.replace(tzinfo=UTC)
    return (a.as_of or t0, a.fetched_at or t0) > (b.as_of or t0, b.fetched_at or t0)


def findings_frame(keyed: list[tuple[str, Problem]]) -> pl.DataFrame:
    if not keyed:
        return pl.DataFrame(schema=REJECTED_SCHEMA)
    return pl.DataFrame({
        "line": [None] * len(keyed), "acta_id": [k for k, _ in keyed],
        "field": [p.field for _, p in keyed], "rule": [p.rule for _, p in keyed],
        "message_es": [p.message_es for _, p in keyed],
        "message_en": [p.message_en for _, p in keyed], "raw": [None] * len(keyed),
    }, schema=REJECTED_SCHEMA)


def unit_meta(r: UnitReading) -> dict[str, Any]:
    return {"as_of": iso(r.as_of), "valid": r.valid, "extra": dict(r.extra),
            "percents": dict(r.percents), "raw": list(r.raw_sha256),
            "urls": list(r.urls), "fetched_at": iso(r.fetched_at)}


def _source_sha256(shas: set[str]) -> str:
    """A live snapshot's source hash: the SHA-256 of the sorted hashes of its answers."""
    return hashlib.sha256("\n".join(sorted(shas)).encode()).hexdigest()


class SnapshotBuilder:
    def __init__(self, cfg: LiveConfig, clock: Clock, store: Store, live: LiveState,
                 emit: EventLog, rawlog: RawLog, run_id: str) -> None:
        self.cfg = cfg
        self.clock = clock
        self.store = store
        self.live = live
        self.emit = emit
        self.rawlog = rawlog
        self.run_id = run_id
        self.crawler: Crawler | None = None
        self.cold_keys = {s.key for s in cfg.scopes() if s.tier is Tier.COLD}

    # -- unit snapshots --------------------------------------------------------------------
    def _unit_readings(self, tier: str) -> list[UnitReading]:
        """The national reading (if any), plus every area's for ``area1``; empty when
        there is nothing to store."""
        nat = self.live.scopes.get("national")
        readings: list[UnitReading] = []
        if nat is not None and nat.accepted is not None:
            readings.append(nat.accepted)
        if tier == "area1":
            n_nat = len(readings)
            readings += [st.accepted for k, st in self.live.scopes.items()
                         if k.startswith("area1:") and st.accepted is not None]
            if len(readings) <= n_nat:
                return []
        return readings

    def store_units(self, tier: str, corrections: list[dict[str, Any]] | None = None) -> None:
        readings = self._unit_readings(tier)
        if not readings:
            return
        frame = conform(pl.from_dicts([r.row() for r in readings], infer_schema_length=None),
                        self.cfg.contest, SnapshotKind.UNITS)
        keyed = [(r.scope, p) for r in readings for p in self.live.scopes[r.scope].findings]
        main = readings[0] if tier == "national" else max(
            readings, key=lambda r: r.as_of or datetime.min.replace(tzinfo=UTC))
        as_of = (main.as_of or main.fetched_at or self.clock.now()).astimezone(UTC)
        accepted_at = self.clock.now()
        meta: dict[str, str] = {
            "live_run": self.run_id, "config": self.cfg.source,
            "config_sha256": self.cfg.sha256, "stack": self.cfg.stack.value,
            "election_id": str(self.live.election_id), "accepted_at": iso(accepted_at) or "",
            "units": json.dumps({r.scope: unit_meta(r) for r in readings}),
        }
        if corrections:
            meta["corrections"] = json.dumps(corrections)
        geography = None
        if tier == "area1":
            self._area1_meta(meta, keyed)
            geography = self.geography_frame([r.unit_code for r in readings
                                              if r.level == "area1"])
        elif self.geo_unsent():
            geography = self.geography_frame([])
        snap = ParsedSnapshot(
            contest=self.cfg.contest, kind=SnapshotKind.UNITS, as_of=as_of,
            source_uri=f"{self.cfg.base_url} [{tier}]",
            source_sha256=_source_sha256({s for r in readings for s in r.raw_sha256}),
            parser=self.cfg.parser_name, frame=frame, findings=findings_frame(keyed),
            part=f"{tier}@{iso(as_of)}",
            # at equal ONPE times the national+area1 snapshot (a superset) sorts last
            label=(f"ONPE live {lima(as_of)} "
                   f"{'national' if tier == 'national' else 'national+area1'} "
                   f"(fetched {iso(accepted_at)})"),
            level=tier, metadata=meta, geography=geography,
        )
        outcome = self.put(snap)
        if tier == "national":
            self.live.served_snapshot = outcome.snapshot_id
        else:
            self.live.area1_snapshot = outcome.snapshot_id
        self.emit("snapshot", "info", None,
                  f"instantánea {tier} {outcome.snapshot_id[:12]} "
                  f"({'nueva' if outcome.created else 'ya existía'})",
                  f"{tier} snapshot {outcome.snapshot_id[:12]} "
                  f"({'new' if outcome.created else 'already stored'})",
                  snapshot_id=outcome.snapshot_id, created=outcome.created, as_of=iso(as_of))

    def _area1_meta(self, meta: dict[str, str], keyed: list[tuple[str, Problem]]) -> None:
        """An area1 snapshot's extras: the home/abroad totals and the aggregate drift."""
        amb = {k: unit_meta(st.accepted) | {"row": st.accepted.row()}
               for k, st in self.live.scopes.items()
               if k.startswith("ambito:") and st.accepted is not None}
        meta["ambitos"] = json.dumps(amb, default=str)
        drift = self.drift()
        if drift is None:
            return
        meta["aggregate_drift"] = json.dumps(drift)
        if not drift:
            return
        keyed.append(("national", Problem(
            "aggregate_drift", "flag", "national",
            "nacional ≠ suma de las áreas: " + json.dumps(drift),
            "national ≠ sum of the areas: " + json.dumps(drift))))
        self.emit("aggregate_drift", "warning", None,
                  "el total nacional difiere de la suma de las áreas (misma hora ONPE); se "
                  "guardan ambos",
                  "the national total differs from the sum of the areas (same ONPE time); "
                  "both are kept", drift=drift)

    def drift(self) -> dict[str, int] | None:
        """national − (Σ areas [+ abroad total when every area is at home]) when the
        configuration says the areas are complete and every reading has the national's
        ONPE time; None when the comparison is not possible."""
        scopes = self.live.scopes
        nat = scopes.get("national")
        if not self.cfg.area1_complete or nat is None or nat.accepted is None:
            return None
        parts = [scopes[f"area1:{c}"].accepted for c in self.cfg.area1]
        if not any(c.startswith("9") for c in self.cfg.area1):
            abroad = scopes.get("ambito:2")
            parts.append(abroad.accepted if abroad is not None else None)
        if any(p is None for p in parts):
            return None
        ready = [p for p in parts if p is not None]
        if any(p.as_of != nat.accepted.as_of for p in ready):
            return None
        return aggregate_drift(nat.accepted, ready)

    # -- the acta snapshot -----------------------------------------------------------------
    def store_actas(self) -> None:
        """One acta snapshot with every acta followed (configured and crawled): the
        latest accepted state of each, one row per acta. Its metadata names the raw
        answer of every acta that changed since the previous acta snapshot (and of every
        configured acta): with ``previous`` they chain back to the first."""
        live = self.live
        if not live.actas:
            return
        by_id: dict[str, ActaReading] = {}
        for r in live.actas.values():  # one row per acta, the newest reading
            old = by_id.get(r.acta_id)
            if old is None or newer(r, old):
                by_id[r.acta_id] = r
        readings = [by_id[k] for k in sorted(by_id)]
        frame = conform(pl.from_dicts([r.row() for r in readings], infer_schema_length=None),
                        self.cfg.contest, SnapshotKind.ACTAS)
        as_of = max((r.as_of or r.fetched_at or self.clock.now()) for r in readings
                    ).astimezone(UTC)
        geography = self.geography_frame([]) if self.geo_unsent() else None
        snap = ParsedSnapshot(
            contest=self.cfg.contest, kind=SnapshotKind.ACTAS, as_of=as_of,
            source_uri=f"{self.cfg.base_url} [actas]",
            source_sha256=_source_sha256({s for r in readings for s in r.raw_sha256}),
            parser=self.cfg.parser_name, frame=frame, part=f"actas@{iso(as_of)}",
            label=f"ONPE live {lima(as_of)} actas (fetched {iso(self.clock.now())})",
            metadata=self._acta_meta(readings), geography=geography)
        outcome = self.put(snap)
        live.actas_snapshot = outcome.snapshot_id
        live.actas_changed = False
        live.acta_dirty.clear()
        live.last_acta_snapshot_at = self.clock.now()
        self.emit("snapshot", "info", None,
                  f"instantánea de actas {outcome.snapshot_id[:12]} ({len(readings)} actas)",
                  f"acta snapshot {outcome.snapshot_id[:12]} ({len(readings)} actas)",
                  snapshot_id=outcome.snapshot_id, created=outcome.created,
                  as_of=iso(as_of), actas=len(readings))

    def _acta_meta(self, readings: list[ActaReading]) -> dict[str, str]:
        def prov(r: ActaReading) -> dict[str, Any]:
            return {"scope": r.scope, "raw": list(r.raw_sha256),
                    "authority_id": r.authority_id, "urls": list(r.urls)}

        small = len(readings) <= 500
        return {"live_run": self.run_id, "config_sha256": self.cfg.sha256,
                "n_actas": str(len(readings)), "previous": self.live.actas_snapshot or "",
                "actas": json.dumps({r.acta_id: prov(r) for r in readings
                                     if small or r.scope in self.cold_keys}),
                "changed": json.dumps({r.acta_id: prov(r) for r in readings
                                       if r.scope in self.live.acta_dirty})}

    # -- storing ---------------------------------------------------------------------------
    def put(self, snap: ParsedSnapshot) -> IngestOutcome:
        """Store one snapshot the way every ingest does (``service.ingest``): one
        transaction, then appended to the tamper-evident ledger. The raw answers it was
        built from are flushed to disk first."""
        return self.put_many([snap])[0]

    def put_many(self, snaps: list[ParsedSnapshot]) -> list[IngestOutcome]:
        from escrutinio.service import ingest

        self.rawlog.flush()
        outcomes = ingest(self.store, snaps)
        for snap, outcome in zip(snaps, outcomes, strict=True):
            if outcome.created:
                self.live.stats.snapshots_created += 1
                if snap.geography is not None and self.crawler is not None:
                    self.live.geo_stored = len(self.crawler.f.geo)
        return outcomes

    # -- geography -------------------------------------------------------------------------
    def geo_unsent(self) -> bool:
        return self.crawler is not None and len(self.crawler.f.geo) > self.live.geo_stored

    def geography_frame(self, area1: list[str]) -> pl.DataFrame:
        """The areas known: every node from ONPE's ubigeo endpoints (or, in 2021, from the
        actas), plus the configured first-level areas with their configured names."""
        nodes: dict[tuple[str, str], tuple[str, str, str, str | None]] = {}
        for c in area1:
            nodes[("area1", c)] = (c, self.cfg.area1_names.get(c, c), "area1", None)
        if self.crawler is not None:
            for g in self.crawler.geography_rows():
                nodes[(g.level, g.code)] = (g.code, g.name, g.level, g.parent)
        rows = sorted(nodes.values(), key=lambda x: (x[2], x[0]))
        return pl.DataFrame({
            "code": [r[0] for r in rows], "name": [r[1] for r in rows],
            "level": [r[2] for r in rows], "parent": [r[3] for r in rows],
            "abroad": [r[0].startswith("9") for r in rows], "alt_code": [None] * len(rows),
        }, schema=_GEO_SCHEMA)


__all__ = ["SnapshotBuilder", "findings_frame", "newer", "unit_meta"]
