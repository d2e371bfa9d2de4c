"""Follow the count: poll, classify, parse, validate, and only then accept.

Three paths, each on its own interval (``[intervals]`` of the configuration):

* **hot** — national totals and candidates (every 30–60 s). Each new valid state becomes
  a national unit snapshot (one row, ``level = national``).
* **warm** — home/abroad totals and the first-level areas (every few minutes). After a
  sweep, if any area changed, an ``area1`` unit snapshot is stored: the latest accepted
  national row plus every area's latest accepted row. Home/abroad totals are validated
  and kept in that snapshot's metadata (they are not a unit level).
* **cold** — actas: those named in the configuration (re-polled every ``cold_s`` while
  not final) and the crawl of ``[cold] areas`` (:mod:`~escrutinio.live.crawl`: geography,
  acta lists per district, each acta when its list entry moves; counted ones are cached
  and never requested again), in bounded steps that yield to the hot path; stored as one
  acta snapshot with every acta followed.

Every snapshot is stored as any ingest stores it (``service.ingest``): one transaction,
then appended to the tamper-evident ledger.

The rule everything else serves: **a rejected response never replaces the last good
state**. A response must be classified ``ok`` (:mod:`~escrutinio.live.classify`), parse
without type drift (:mod:`~escrutinio.live.parse`), pass the reading checks and the
progress checks (:mod:`~escrutinio.live.validate`). A decrease is accepted only after it
is seen ``confirm_decreases`` times in a row, and then it is logged as a correction.

The served state (:meth:`Watcher.status`) carries its age — seconds since ONPE last
confirmed it — and a staleness flag (age above ``stale_after_s``). SIGTERM/SIGINT stop the
loop between steps: snapshots are written in one transaction each, the raw log is
flushed in one transaction, so nothing is half-written. A new watcher on the same store
resumes from the last accepted live snapshots.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import signal
import threading
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import polars as pl

from escrutinio.domain import FINAL, SnapshotKind
from escrutinio.live.classify import Classification, Outcome, RawResponse
from escrutinio.live.config import LiveConfig, Scope, Stack, Tier
from escrutinio.live.crawl import Crawler
from escrutinio.live.parse import (
    LIMA,
    ActaReading,
    ListedActa,
    ParseDrift,
    UnitReading,
    election_from_proceso,
    parse_acta_2021,
    parse_acta_2026,
    parse_unit_2021,
    parse_unit_2026,
    ubigeo_2021,
)
from escrutinio.live.rawlog import RawLog
from escrutinio.live.transport import Clock, FetchResult, SystemClock, Transport
from escrutinio.live.validate import (
    Problem,
    aggregate_drift,
    check_acta,
    check_progress,
    check_reading,
    rejects,
)
from escrutinio.sources.base import REJECTED_SCHEMA, ParsedSnapshot, conform
from escrutinio.store.base import IngestOutcome
from escrutinio.store.duckdb_store import DuckDBStore

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger("escrutinio.live")
log.addHandler(logging.NullHandler())

FINAL_STATUSES: Final = frozenset(s.value for s in FINAL)


class HardBlocked(Exception):
    pass


class Storm(Exception):
    pass


@dataclass(slots=True)
class ScopeState:
    accepted: UnitReading | None = None
    accepted_at: datetime | None = None
    confirmed_at: datetime | None = None  # last time ONPE answered with this state
    latest_onpe_time: datetime | None = None
    pending: UnitReading | None = None  # a decrease waiting for confirmation
    pending_seen: int = 0
    findings: list[Problem] = field(default_factory=list)
    last_error: dict[str, Any] | None = None


@dataclass(slots=True)
class Stats:
    outcomes: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)
    corrections: int = 0
    alarms: int = 0
    snapshots_created: int = 0
    cycles: int = 0
    hard_blocks: int = 0
    storms: int = 0


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _newer(a: ActaReading, b: ActaReading) -> bool:
    t0 = datetime.min.replace(tzinfo=UTC)
    return (a.as_of or t0, a.fetched_at or t0) > (b.as_of or t0, b.fetched_at or t0)


def _lima(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(LIMA).isoformat()


class Watcher:
    def __init__(self, cfg: LiveConfig, store: DuckDBStore, *, clock: Clock | None = None,
                 seed: int | None = None, run_id: str | None = None,
                 status_file: str | Path | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.run_id = run_id or uuid.uuid4().hex[:12]
        # the store's LeasedConnection answers execute/sql/register like a DuckDB connection
        self.rawlog = RawLog(cast("duckdb.DuckDBPyConnection", store.con), self.run_id)
        self._stop = threading.Event()
        self.transport = Transport(cfg.transport, site_url=cfg.site_url, stack=cfg.stack,
                                   clock=self.clock, seed=seed, on_response=self._on_response,
                                   on_event=self._transport_event, stop=self._stop)
        self.rng = random.Random(seed)
        self.status_file = Path(status_file) if status_file else None
        self.scopes = cfg.scopes()
        self.state: dict[str, ScopeState] = {s.key: ScopeState() for s in self.scopes
                                             if s.kind in ("national", "ambito", "area1")}
        self.actas: dict[str, ActaReading] = {}
        self.acta_errors: dict[str, dict[str, Any]] = {}
        self.election_id: int | None = (cfg.election_id if cfg.stack is Stack.ONPE2021
                                        or not cfg.discover_election else None)
        self.participants_order = list(cfg.participants)
        #: replays of recorded publications (not polls) set this to 1
        self.confirm_decreases = cfg.validation.confirm_decreases
        self.stats = Stats()
        self.cycle_no = 0
        now = self.clock.now()
        self.started_at = now
        self.next_due: dict[Tier, datetime] = dict.fromkeys(Tier, now)
        self.paused_until: datetime | None = None
        self.storm_level = 0
        self.consecutive_failures = 0
        self.last_success: datetime | None = None
        self.last_error: dict[str, Any] | None = None
        self.served_snapshot: str | None = None
        self.area1_snapshot: str | None = None
        self.actas_snapshot: str | None = None
        self._warm_changed = False
        self._actas_changed = False
        self._acta_dirty: set[str] = set()  # actas changed since the last acta snapshot
        self._acta_pending: dict[str, tuple[str, int]] = {}  # held changes of final actas
        self._last_acta_snapshot_at: datetime | None = None
        self._listed_due = now  # the next pass over the configured ([actas]) actas
        self._listed_todo: list[Scope] = []
        self._cold_req0 = 0
        self._cold_t0 = 0.0
        self._geo_stored = 0  # geography nodes already handed to the store
        self._status_lock = threading.Lock()
        self._status_cache: dict[str, Any] = {}
        self.crawler: Crawler | None = None
        if cfg.cold.crawl or cfg.fetch_geography:
            self.crawler = Crawler(self)
        self.resume()

    # -- logging -----------------------------------------------------------------------
    def _event(self, kind: str, level: str, scope: str | None, es: str, en: str,
               **detail: Any) -> None:
        ts = self.clock.now()
        self.rawlog.event(ts, level, kind, scope, es, en, detail)
        rec = {"ts": _iso(ts), "level": level, "event": kind, "scope": scope,
               "run": self.run_id, "message": en, **detail}
        log.log(getattr(logging, level.upper(), logging.INFO),
                json.dumps(rec, ensure_ascii=False, default=str))

    def _on_response(self, resp: RawResponse, cls: Classification) -> None:
        self.stats.outcomes[cls.outcome.value] += 1
        self.rawlog.record(resp, cls, self.cycle_no)

    def _transport_event(self, kind: str, es: str, en: str, detail: dict[str, Any]) -> None:
        self._event(kind, "warning", None, es, en, **detail)

    # -- restart -----------------------------------------------------------------------
    def _metadata(self, snapshot_id: str) -> dict[str, Any]:
        rows = self.store.con.execute("SELECT metadata FROM snapshots WHERE snapshot_id = ?",
                                      [snapshot_id]).fetchall()
        return json.loads(rows[0][0]) if rows else {}

    def resume(self) -> None:
        """Load the last accepted live states of this contest from the store."""
        snaps = [s for s in self.store.list_snapshots(self.cfg.contest.id)
                 if s.parser == self.cfg.parser_name]
        cands = [c.code for c in self.cfg.contest.candidates]
        units = [s for s in snaps if s.kind is SnapshotKind.UNITS]
        nat = [s for s in units if s.level == "national"]
        area = [s for s in units if s.level == "area1"]
        restored = []
        for info in ([nat[-1]] if nat else []) + ([area[-1]] if area else []):
            meta = self._metadata(info.snapshot_id)
            per_unit = json.loads(meta.get("units", "{}"))
            frame = self.store.load_units(info.snapshot_id)
            for row in frame.iter_rows(named=True):
                key = "national" if row["level"] == "national" else f"area1:{row['unit_code']}"
                if key not in self.state or (info.level == "area1" and key == "national"):
                    continue
                u = per_unit.get(key, {})
                as_of = datetime.fromisoformat(u["as_of"]) if u.get("as_of") else info.as_of
                counts = {k: row[k] for k in row if k not in ("level", "unit_code", "abroad")
                          and not k.startswith("v_")}
                reading = UnitReading(
                    scope=key, level=row["level"], unit_code=row["unit_code"],
                    abroad=row["abroad"], as_of=as_of.astimezone(LIMA), counts=counts,
                    votes={c: row[f"v_{c}"] for c in cands}, valid=u.get("valid"),
                    extra=u.get("extra", {}), percents=u.get("percents", {}),
                    raw_sha256=tuple(u.get("raw", ())))
                st = self.state[key]
                st.accepted, st.accepted_at = reading, info.ingested_at
                restored.append(key)
            if info.level == "national":
                self.served_snapshot = info.snapshot_id
            else:
                self.area1_snapshot = info.snapshot_id
                for key, u in json.loads(meta.get("ambitos", "{}")).items():
                    if key not in self.state:
                        continue
                    row = u["row"]
                    as_of = datetime.fromisoformat(u["as_of"]) if u.get("as_of") else info.as_of
                    st = self.state[key]
                    st.accepted = UnitReading(
                        scope=key, level=None, unit_code="", abroad=row.get("abroad"),
                        as_of=as_of.astimezone(LIMA),
                        counts={k: v for k, v in row.items() if k not in (
                            "level", "unit_code", "abroad") and not k.startswith("v_")},
                        votes={c: row.get(f"v_{c}") for c in cands}, valid=u.get("valid"),
                        extra=u.get("extra", {}), percents=u.get("percents", {}),
                        raw_sha256=tuple(u.get("raw", ())))
                    st.accepted_at = info.ingested_at
                    restored.append(key)
        acta_snaps = [s for s in snaps if s.kind is SnapshotKind.ACTAS]
        crawled = self.crawler.readings() if self.crawler is not None else {}
        crawled_ids = {r.acta_id: k for k, r in crawled.items()}
        stored: dict[str, str] = {}  # acta id -> fingerprint in the last acta snapshot
        if acta_snaps:
            info = acta_snaps[-1]
            self.actas_snapshot = info.snapshot_id
            self._last_acta_snapshot_at = info.ingested_at
            meta = json.loads(self._metadata(info.snapshot_id).get("actas", "{}"))
            for row in self.store.load_actas(info.snapshot_id).iter_rows(named=True):
                m = meta.get(row["acta_id"], {})
                key = m.get("scope") or crawled_ids.get(row["acta_id"]) \
                    or f"crawl:{row['acta_id']}"
                r = ActaReading(
                    scope=key, acta_id=row["acta_id"],
                    status=row["status"], area3_code=row["area3_code"],
                    figures={k: row[k] for k in ("electors", "cast", "blank", "null",
                                                 "challenged")},
                    votes={c: row[f"v_{c}"] for c in cands}, observation=row["observation"],
                    resolved=bool(row["resolved"]), authority_id=m.get("authority_id", ""),
                    raw_sha256=tuple(m.get("raw", ())), polling_place=row["polling_place"])
                stored[r.acta_id] = r.fingerprint()
                if key not in crawled:
                    self.actas[key] = r
        for key, r in crawled.items():  # the frontier holds every accepted acta state
            self.actas[key] = r
            if stored.get(r.acta_id) != r.fingerprint():
                self._acta_dirty.add(key)
                self._actas_changed = True
        if restored or acta_snaps or crawled:
            self._event("resumed", "info", None,
                        f"se reanuda desde el almacén ({len(restored)} ámbitos, "
                        f"{len(self.actas)} actas)",
                        f"resumed from the store ({len(restored)} scopes, "
                        f"{len(self.actas)} actas)", scopes=restored,
                        snapshot=self.served_snapshot)

    # -- URLs --------------------------------------------------------------------------
    def _q(self, **params: Any) -> str:
        return urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})

    def unit_urls(self, scope: Scope) -> dict[str, str | list[str]]:
        base, eid = self.cfg.base_url, self.election_id
        if self.cfg.stack is Stack.ONPE2021:
            return {"results": f"{base}/results/{eid}/{ubigeo_2021(scope, self.cfg)}"
                               "?name=param"}
        if scope.kind == "national":
            q = self._q(idEleccion=eid, tipoFiltro="eleccion")
        elif scope.kind == "ambito":
            q = self._q(idEleccion=eid, tipoFiltro="ambito_geografico",
                        idAmbitoGeografico=scope.code)
        else:
            q = self._q(idEleccion=eid, tipoFiltro="ubigeo_nivel_01",
                        idAmbitoGeografico=2 if scope.abroad else 1,
                        idUbigeoDepartamento=scope.code)
        return {"totales": f"{base}/resumen-general/totales?{q}",
                "participantes": [f"{base}/{p}?{q}" for p in self.participants_order]}

    def acta_url(self, scope: Scope) -> str:
        base = self.cfg.base_url
        if self.cfg.stack is Stack.ONPE2021:
            return f"{base}/mesas/detalle/{scope.code}?name=param"
        if scope.kind == "acta":
            return f"{base}/actas/{scope.code}"
        q = self._q(codigoMesa=scope.code, idEleccion=self.election_id)
        return f"{base}/actas/buscar/mesa?{q}"

    # -- fetching ----------------------------------------------------------------------
    def _get(self, url: str, scope: str, endpoint: str) -> FetchResult:
        res = self.transport.get(url, scope=scope, endpoint=endpoint)
        if res.classification.outcome is Outcome.HARD_BLOCKED:
            raise HardBlocked(f"{res.classification.reason} at {url}")
        return res

    def _discover(self) -> bool:
        """Election id from ``proceso-electoral-activo``; else the configured fallback,
        after a probe shows the backend answers for it."""
        url = f"{self.cfg.base_url}/proceso/proceso-electoral-activo"
        res = self._get(url, "proceso", "proceso")
        eid = (election_from_proceso(res.classification.payload, url=url)
               if res.classification.outcome is Outcome.OK else None)
        if eid is not None:
            if self.cfg.election_id is not None and eid != self.cfg.election_id:
                self._event("election_id_differs", "warning", None,
                            f"el backend anuncia la elección {eid}, la configuración dice "
                            f"{self.cfg.election_id}; se usa {eid}",
                            f"the backend announces election {eid}, the configuration says "
                            f"{self.cfg.election_id}; using {eid}")
            self.election_id = eid
            self._event("election_discovered", "info", None,
                        f"elección {eid} (proceso-electoral-activo)",
                        f"election {eid} (proceso-electoral-activo)", election_id=eid)
            return True
        fb = self.cfg.election_id
        if fb is None:
            self._event("election_unknown", "error", None,
                        "no se pudo descubrir la elección y no hay fallback_id",
                        "the election could not be discovered and there is no fallback_id")
            return False
        q = self._q(idEleccion=fb, tipoFiltro="eleccion")
        probe = self._get(f"{self.cfg.base_url}/resumen-general/totales?{q}", "proceso",
                          "probe")
        if probe.classification.outcome is Outcome.OK:
            self.election_id = fb
            self._event("election_fallback", "warning", None,
                        f"descubrimiento falló ({res.classification.reason}); se usa el id "
                        f"de respaldo {fb}, validado",
                        f"discovery failed ({res.classification.reason}); using the "
                        f"validated fallback id {fb}", election_id=fb)
            return True
        self._event("election_fallback_invalid", "error", None,
                    f"el id de respaldo {fb} no responde ({probe.classification.reason})",
                    f"the fallback id {fb} does not answer ({probe.classification.reason})")
        return False

    def _failure(self, scope: str, res: FetchResult | tuple[RawResponse, Classification]
                 ) -> str:
        resp, cls = ((res.response, res.classification) if isinstance(res, FetchResult)
                     else res)
        outcome = cls.outcome
        if outcome is Outcome.NO_DATA:
            self.stats.results["no_data"] += 1
            return "no_data"
        err = {"at": _iso(self.clock.now()), "scope": scope, "outcome": outcome.value,
               "reason": cls.reason, "url": resp.url, "status": resp.status}
        self.last_error = err
        if scope in self.state:
            self.state[scope].last_error = err
        self.stats.results[outcome.value] += 1
        if outcome in (Outcome.TRANSIENT, Outcome.BLOCKED):
            self.consecutive_failures += 1
        self._event("fetch_failed", "warning", scope,
                    f"{scope}: {outcome.value} ({cls.reason}); se mantiene el último estado "
                    "válido",
                    f"{scope}: {outcome.value} ({cls.reason}); keeping the last good state",
                    outcome=outcome.value, reason=cls.reason, url=resp.url,
                    status=resp.status, sha256=resp.sha256)
        return outcome.value

    def _fetch_participants(self, urls: list[str], scope: str) -> FetchResult:
        res: FetchResult | None = None
        for i, url in enumerate(urls):
            res = self._get(url, scope, "participantes")
            if res.classification.outcome in (Outcome.OK, Outcome.NO_DATA):
                if i > 0:  # remember the variant that answers
                    variant = self.participants_order.pop(i)
                    self.participants_order.insert(0, variant)
                    self._event("participants_variant", "warning", scope,
                                f"se usa la variante {variant}", f"using variant {variant}")
                return res
        assert res is not None
        return res

    def poll_unit(self, scope: Scope) -> str:
        """Fetch one unit scope and run it through ingestion (one torn-read refetch)."""
        result = ""
        for _ in range(2 if self.cfg.validation.refetch_torn else 1):
            urls = self.unit_urls(scope)
            if self.cfg.stack is Stack.ONPE2021:
                r = self._get(str(urls["results"]), scope.key, "results")
                if r.classification.outcome is not Outcome.OK:
                    return self._failure(scope.key, r)
                result = self.ingest_unit(scope, {"results": (r.response, r.classification)})
            else:
                t = self._get(str(urls["totales"]), scope.key, "totales")
                if t.classification.outcome is not Outcome.OK:
                    return self._failure(scope.key, t)
                plist = urls["participantes"]
                assert isinstance(plist, list)
                p = self._fetch_participants(plist, scope.key)
                if p.classification.outcome is not Outcome.OK:
                    return self._failure(scope.key, p)
                result = self.ingest_unit(scope, {
                    "totales": (t.response, t.classification),
                    "participantes": (p.response, p.classification)})
            if result != "torn":
                return result
        return result

    # -- ingestion (shared by the live loop and replay) ---------------------------------
    def _reject(self, scope: str, rules: list[Problem] | str, detail: str,
                responses: list[RawResponse]) -> None:
        names = [rules] if isinstance(rules, str) else [p.rule for p in rules]
        for n in names:
            self.stats.rejections[n] += 1
        msg_es = detail if isinstance(rules, str) else "; ".join(p.message_es for p in rules)
        msg_en = detail if isinstance(rules, str) else "; ".join(p.message_en for p in rules)
        err = {"at": _iso(self.clock.now()), "scope": scope, "outcome": "rejected",
               "reason": ",".join(names), "url": responses[0].url if responses else None}
        self.last_error = err
        if scope in self.state:
            self.state[scope].last_error = err
        self._event("rejected", "warning", scope,
                    f"{scope}: respuesta rechazada ({', '.join(names)}): {msg_es}",
                    f"{scope}: response rejected ({', '.join(names)}): {msg_en}",
                    rules=names, sha256=[r.sha256 for r in responses],
                    urls=[r.url for r in responses])

    def ingest_unit(self, scope: Scope, responses: dict[str, tuple[RawResponse,
                                                                 Classification]]) -> str:
        """Classified responses of one scope -> accepted / duplicate / held / rejected...

        The only way a unit state is accepted, live or replayed."""
        for _endpoint, (resp, cls) in responses.items():
            if cls.outcome is not Outcome.OK:
                return self._failure(scope.key, (resp, cls))
        self.consecutive_failures = 0
        self.storm_level = 0
        raws = [r for r, _ in responses.values()]
        shas = tuple(r.sha256 for r in raws)
        fetched = max(r.fetched_at for r in raws)
        try:
            if self.cfg.stack is Stack.ONPE2021:
                resp, cls = responses["results"]
                reading = parse_unit_2021(cls.payload, scope, self.cfg, url=resp.url,
                                          raw_sha256=shas, fetched_at=fetched)
            else:
                (tr, tc), (pr, pc) = responses["totales"], responses["participantes"]
                reading = parse_unit_2026(tc.payload, pc.payload, scope, self.cfg,
                                          urls=(tr.url, pr.url), raw_sha256=shas,
                                          fetched_at=fetched)
        except ParseDrift as exc:
            self.stats.results["rejected"] += 1
            self._reject(scope.key, "schema_drift", exc.detail_en, raws)
            return "rejected"
        return self.accept_unit(reading, raws)

    def accept_unit(self, reading: UnitReading, raws: list[RawResponse], *,
                    persist: bool = True) -> str:
        """Validate a reading against its scope's accepted state and accept it or not.
        ``persist=False`` (replay of stored snapshots) updates the state only."""
        scope = reading.scope
        problems = check_reading(reading, self.cfg.validation)
        rej = rejects(problems)
        if rej:
            self.stats.results["rejected"] += 1
            self._reject(scope, rej, "", raws)
            torn = {"valid_total_mismatch", "votes_above_valid"}
            return "torn" if any(p.rule in torn for p in rej) else "rejected"
        st = self.state[scope]
        now = self.clock.now()
        prog = check_progress(st.accepted, reading)
        if prog.duplicate:
            st.confirmed_at = now
            st.pending, st.pending_seen = None, 0
            if reading.as_of and (st.latest_onpe_time is None
                                  or reading.as_of > st.latest_onpe_time):
                st.latest_onpe_time = reading.as_of
            self.last_success = now
            self.stats.results["duplicate"] += 1
            return "duplicate"
        if prog.stale:
            self.stats.results["rejected"] += 1
            assert st.accepted is not None
            self._reject(scope, "stale_response",
                         f"ONPE time {_lima(reading.as_of)} older than the accepted "
                         f"{_lima(st.accepted.as_of)}", raws)
            return "stale"
        corrections: list[dict[str, Any]] = []
        if prog.decreases:
            # a decrease must persist: ``confirm_decreases`` readings in a row (not stale,
            # ONPE time not going back) below the accepted state; then the latest is
            # accepted and logged as a correction
            p = st.pending
            if p is not None and (p.as_of is None or reading.as_of is None
                                  or reading.as_of >= p.as_of):
                st.pending_seen += 1
            else:
                st.pending_seen = 1
            st.pending = reading
            need = max(1, self.confirm_decreases)
            dec = [{"field": f, "before": a, "after": b} for f, a, b in prog.decreases]
            if st.pending_seen < need:
                self.stats.results["held"] += 1
                self._event("decrease_unconfirmed", "warning", scope,
                            f"{scope}: conteos que bajan; se espera confirmación "
                            f"({st.pending_seen}/{need})",
                            f"{scope}: counts going down; waiting for confirmation "
                            f"({st.pending_seen}/{need})", decreases=dec)
                return "held"
            corrections = dec
            self.stats.corrections += 1
            self._event("correction", "error", scope,
                        f"{scope}: CORRECCIÓN aceptada tras {need} lecturas seguidas: "
                        + ", ".join(f"{d['field']} {d['before']}→{d['after']}" for d in dec),
                        f"{scope}: CORRECTION accepted after {need} readings in a row: "
                        + ", ".join(f"{d['field']} {d['before']}→{d['after']}" for d in dec),
                        decreases=dec, sha256=list(reading.raw_sha256))
        for a in prog.alarms:
            self.stats.alarms += 1
            self._event("alarm", "warning", scope, f"{scope}: {a.message_es}",
                        f"{scope}: {a.message_en}", rule=a.rule)
        st.accepted, st.accepted_at, st.confirmed_at = reading, now, now
        st.latest_onpe_time = reading.as_of
        st.pending, st.pending_seen = None, 0
        st.findings = [p for p in problems if p.severity != "reject"] + list(prog.alarms)
        if corrections:
            st.findings.append(Problem("correction", "flag", "counts",
                                       "corrección: conteos que bajan",
                                       "correction: counts going down"))
        self.last_success = now
        self.stats.results["accepted"] += 1
        self._event("accepted", "info", scope,
                    f"{scope}: nuevo estado ({reading.counts.get('actas_counted')} actas "
                    "contabilizadas)",
                    f"{scope}: new state ({reading.counts.get('actas_counted')} counted "
                    "actas)", as_of=_lima(reading.as_of), sha256=list(reading.raw_sha256),
                    corrections=corrections or None)
        if not persist:
            return "accepted"
        if scope == "national":
            self._store_units("national", corrections)
        else:
            self._warm_changed = True
        return "accepted"

    def _ok(self) -> None:
        """An answer was usable: the run of failures (storm detection) is over."""
        self.consecutive_failures = 0
        self.storm_level = 0

    def _acta_error(self, key: str, err: dict[str, Any]) -> None:
        self.acta_errors.pop(key, None)
        self.acta_errors[key] = err
        while len(self.acta_errors) > 200:  # a crawl can fail on thousands: keep the last
            self.acta_errors.pop(next(iter(self.acta_errors)))

    def ingest_acta(self, scope: Scope, resp: RawResponse, cls: Classification) -> str:
        """A classified answer for one acta -> accepted / duplicate / held / rejected /
        stale / a failure class. The only way an acta state is accepted, live, crawled
        or replayed.

        Rejected: type drift, an answer for another acta, negative counts, a missing or
        unknown party in its figures, an older state than the accepted one (its
        ``lineaTiempo`` ends earlier: a cache). A counted acta that leaves the counted
        state or changes its figures is held until ``confirm_decreases`` readings in a
        row say the same, then accepted as a logged correction."""
        key = scope.key
        if cls.outcome is not Outcome.OK:
            self._acta_error(key, {"outcome": cls.outcome.value, "reason": cls.reason})
            return self._failure(key, (resp, cls))
        self._ok()
        try:
            if self.cfg.stack is Stack.ONPE2021:
                reading = parse_acta_2021(cls.payload, scope, self.cfg, url=resp.url,
                                          raw_sha256=(resp.sha256,),
                                          fetched_at=resp.fetched_at)
            else:
                reading = parse_acta_2026(cls.payload, scope, self.cfg, url=resp.url,
                                          raw_sha256=(resp.sha256,),
                                          fetched_at=resp.fetched_at)
        except ParseDrift as exc:
            self.stats.results["rejected"] += 1
            self._acta_error(key, {"outcome": "rejected", "reason": "schema_drift"})
            self._reject(key, "schema_drift", exc.detail_en, [resp])
            return "rejected"
        return self.accept_acta(reading, resp)

    def ingest_listed(self, item: ListedActa, resp: RawResponse) -> str:
        """A pending acta as its district's list shows it (state P): a pending acta has
        neither figures nor detail, so the list says all the acta would (mesa, place,
        electors, status) and it is not requested on its own until the list says it
        moved. Accepted through the same checks as a fetched acta."""
        reading = ActaReading(
            scope=item.key, acta_id=item.mesa, status="pending", area3_code=item.district,
            figures={"electors": item.electors, "cast": None, "blank": None, "null": None,
                     "challenged": None},
            votes=dict.fromkeys(c.code for c in self.cfg.contest.candidates),
            raw_sha256=(resp.sha256,), urls=(resp.url,), fetched_at=resp.fetched_at,
            polling_place=item.polling_place)
        return self.accept_acta(reading, resp)

    def accept_acta(self, reading: ActaReading, resp: RawResponse) -> str:
        """Validate one acta reading against the accepted state of that acta."""
        key = reading.scope
        prev = self.actas.get(key)
        problems = check_acta(prev, reading, self.cfg.validation)
        if rejects(problems):
            self.stats.results["rejected"] += 1
            self._acta_error(key, {"outcome": "rejected",
                                   "reason": ",".join(p.rule for p in rejects(problems))})
            self._reject(key, rejects(problems), "", [resp])
            return "rejected"
        if prev is not None and prev.fingerprint() == reading.fingerprint():
            self._acta_pending.pop(key, None)
            self.stats.results["duplicate"] += 1
            return "duplicate"
        if prev is not None and prev.as_of is not None and reading.as_of is not None \
                and reading.as_of < prev.as_of:
            self.stats.results["rejected"] += 1
            self._reject(key, "stale_response",
                         f"acta {reading.acta_id}: state history ends {_lima(reading.as_of)}, "
                         f"before the accepted {_lima(prev.as_of)}", [resp])
            return "stale"
        moved = [p for p in problems if p.rule in ("counted_acta_moved", "counted_acta_changed")]
        corrected = False
        if moved:
            fp = reading.fingerprint()
            held = self._acta_pending.get(key)
            seen = held[1] + 1 if held is not None and held[0] == fp else 1
            need = max(1, self.confirm_decreases)
            if seen < need:
                self._acta_pending[key] = (fp, seen)
                self.stats.results["held"] += 1
                self._event("decrease_unconfirmed", "warning", key,
                            f"acta {reading.acta_id}: {moved[0].message_es}; se espera "
                            f"confirmación ({seen}/{need})",
                            f"acta {reading.acta_id}: {moved[0].message_en}; waiting for "
                            f"confirmation ({seen}/{need})", rule=moved[0].rule,
                            sha256=resp.sha256)
                return "held"
            self._acta_pending.pop(key, None)
            self.stats.corrections += 1
            corrected = True
            assert prev is not None
            self._event("correction", "error", key,
                        f"acta {reading.acta_id}: CORRECCIÓN aceptada tras {need} lecturas: "
                        f"{prev.status} → {reading.status}",
                        f"acta {reading.acta_id}: CORRECTION accepted after {need} readings: "
                        f"{prev.status} → {reading.status}", rule=moved[0].rule,
                        sha256=resp.sha256)
        for p in problems:
            if corrected and p in moved:
                continue
            self.stats.alarms += 1
            self._event("alarm", "warning", key, f"{key}: {p.message_es}",
                        f"{key}: {p.message_en}", rule=p.rule)
        self.actas[key] = reading
        self.acta_errors.pop(key, None)
        self._acta_dirty.add(key)
        self._actas_changed = True
        self.stats.results["accepted"] += 1
        self._event("acta_changed", "info", key,
                    f"acta {reading.acta_id}: {prev.status if prev else '-'} → {reading.status}",
                    f"acta {reading.acta_id}: {prev.status if prev else '-'} → {reading.status}",
                    sha256=resp.sha256)
        return "accepted"

    # -- snapshots ---------------------------------------------------------------------
    def _findings_frame(self, keyed: list[tuple[str, Problem]]) -> pl.DataFrame:
        if not keyed:
            return pl.DataFrame(schema=REJECTED_SCHEMA)
        return pl.DataFrame({
            "line": [None] * len(keyed), "acta_id": [k for k, _ in keyed],
            "field": [p.field for _, p in keyed], "rule": [p.rule for _, p in keyed],
            "message_es": [p.message_es for _, p in keyed],
            "message_en": [p.message_en for _, p in keyed], "raw": [None] * len(keyed),
        }, schema=REJECTED_SCHEMA)

    def _unit_meta(self, r: UnitReading) -> dict[str, Any]:
        return {"as_of": _iso(r.as_of), "valid": r.valid, "extra": dict(r.extra),
                "percents": dict(r.percents), "raw": list(r.raw_sha256),
                "urls": list(r.urls), "fetched_at": _iso(r.fetched_at)}

    def _store_units(self, tier: str, corrections: list[dict[str, Any]] | None = None) -> None:
        nat = self.state.get("national")
        readings: list[UnitReading] = []
        if nat is not None and nat.accepted is not None:
            readings.append(nat.accepted)
        if tier == "area1":
            readings += [st.accepted for k, st in self.state.items()
                         if k.startswith("area1:") and st.accepted is not None]
            if len(readings) <= (1 if nat is not None and nat.accepted else 0):
                return
        if not readings:
            return
        contest = self.cfg.contest
        frame = conform(pl.from_dicts([r.row() for r in readings], infer_schema_length=None),
                        contest, SnapshotKind.UNITS)
        keyed = [(r.scope, p) for r in readings for p in self.state[r.scope].findings]
        main = readings[0] if tier == "national" else max(
            readings, key=lambda r: r.as_of or datetime.min.replace(tzinfo=UTC))
        as_of = (main.as_of or main.fetched_at or self.clock.now()).astimezone(UTC)
        shas = sorted({s for r in readings for s in r.raw_sha256})
        source = hashlib.sha256("\n".join(shas).encode()).hexdigest()
        accepted_at = self.clock.now()
        meta: dict[str, str] = {
            "live_run": self.run_id, "config": self.cfg.source,
            "config_sha256": self.cfg.sha256, "stack": self.cfg.stack.value,
            "election_id": str(self.election_id), "accepted_at": _iso(accepted_at) or "",
            "units": json.dumps({r.scope: self._unit_meta(r) for r in readings}),
        }
        if corrections:
            meta["corrections"] = json.dumps(corrections)
        geography = None
        if tier == "area1":
            amb = {k: self._unit_meta(st.accepted) | {"row": st.accepted.row()}
                   for k, st in self.state.items()
                   if k.startswith("ambito:") and st.accepted is not None}
            meta["ambitos"] = json.dumps(amb, default=str)
            drift = self._drift()
            if drift is not None:
                meta["aggregate_drift"] = json.dumps(drift)
                if drift:
                    keyed.append(("national", Problem(
                        "aggregate_drift", "flag", "national",
                        "nacional ≠ suma de las áreas: " + json.dumps(drift),
                        "national ≠ sum of the areas: " + json.dumps(drift))))
                    self._event("aggregate_drift", "warning", None,
                                "el total nacional difiere de la suma de las áreas "
                                "(misma hora ONPE); se guardan ambos",
                                "the national total differs from the sum of the areas "
                                "(same ONPE time); both are kept", drift=drift)
            codes = [r.unit_code for r in readings if r.level == "area1"]
            geography = self._geography_frame(codes)
        elif self._geo_unsent():
            geography = self._geography_frame([])
        snap = ParsedSnapshot(
            contest=contest, kind=SnapshotKind.UNITS, as_of=as_of,
            source_uri=f"{self.cfg.base_url} [{tier}]", source_sha256=source,
            parser=self.cfg.parser_name, frame=frame, findings=self._findings_frame(keyed),
            part=f"{tier}@{_iso(as_of)}",
            # at equal ONPE times the national+area1 snapshot (a superset) sorts last
            label=(f"ONPE live {_lima(as_of)} "
                   f"{'national' if tier == 'national' else 'national+area1'} "
                   f"(fetched {_iso(accepted_at)})"),
            level=tier, metadata=meta, geography=geography,
        )
        outcome = self._put(snap)
        if tier == "national":
            self.served_snapshot = outcome.snapshot_id
        else:
            self.area1_snapshot = outcome.snapshot_id
        self._event("snapshot", "info", None,
                    f"instantánea {tier} {outcome.snapshot_id[:12]} "
                    f"({'nueva' if outcome.created else 'ya existía'})",
                    f"{tier} snapshot {outcome.snapshot_id[:12]} "
                    f"({'new' if outcome.created else 'already stored'})",
                    snapshot_id=outcome.snapshot_id, created=outcome.created,
                    as_of=_iso(as_of))

    def _drift(self) -> dict[str, int] | None:
        """national − (Σ areas [+ abroad total when every area is at home]) when the
        configuration says the areas are complete and every reading has the national's
        ONPE time; None when the comparison is not possible."""
        nat = self.state.get("national")
        if not self.cfg.area1_complete or nat is None or nat.accepted is None:
            return None
        parts = [self.state[f"area1:{c}"].accepted for c in self.cfg.area1]
        if not any(c.startswith("9") for c in self.cfg.area1):
            abroad = self.state.get("ambito:2")
            parts.append(abroad.accepted if abroad is not None else None)
        if any(p is None for p in parts):
            return None
        ready = [p for p in parts if p is not None]
        if any(p.as_of != nat.accepted.as_of for p in ready):
            return None
        return aggregate_drift(nat.accepted, ready)

    def _store_actas(self) -> None:
        """One acta snapshot with every acta followed (configured and crawled): the
        latest accepted state of each, one row per acta. Its metadata names the raw
        answer of every acta that changed since the previous acta snapshot (and of every
        configured acta): with ``previous`` they chain back to the first."""
        if not self.actas:
            return
        contest = self.cfg.contest
        by_id: dict[str, ActaReading] = {}
        for r in self.actas.values():  # one row per acta, the newest reading
            old = by_id.get(r.acta_id)
            if old is None or _newer(r, old):
                by_id[r.acta_id] = r
        readings = [by_id[k] for k in sorted(by_id)]
        frame = conform(pl.from_dicts([r.row() for r in readings], infer_schema_length=None),
                        contest, SnapshotKind.ACTAS)
        shas = sorted({s for r in readings for s in r.raw_sha256})
        source = hashlib.sha256("\n".join(shas).encode()).hexdigest()
        as_of = max((r.as_of or r.fetched_at or self.clock.now()) for r in readings
                    ).astimezone(UTC)
        configured = {s.key for s in self.scopes if s.tier is Tier.COLD}

        def prov(r: ActaReading) -> dict[str, Any]:
            return {"scope": r.scope, "raw": list(r.raw_sha256),
                    "authority_id": r.authority_id, "urls": list(r.urls)}

        small = len(readings) <= 500
        meta = {"live_run": self.run_id, "config_sha256": self.cfg.sha256,
                "n_actas": str(len(readings)), "previous": self.actas_snapshot or "",
                "actas": json.dumps({r.acta_id: prov(r) for r in readings
                                     if small or r.scope in configured}),
                "changed": json.dumps({r.acta_id: prov(r) for r in readings
                                       if r.scope in self._acta_dirty})}
        geography = self._geography_frame([]) if self._geo_unsent() else None
        snap = ParsedSnapshot(
            contest=contest, kind=SnapshotKind.ACTAS, as_of=as_of,
            source_uri=f"{self.cfg.base_url} [actas]", source_sha256=source,
            parser=self.cfg.parser_name, frame=frame, part=f"actas@{_iso(as_of)}",
            label=f"ONPE live {_lima(as_of)} actas (fetched {_iso(self.clock.now())})",
            metadata=meta, geography=geography)
        outcome = self._put(snap)
        self.actas_snapshot = outcome.snapshot_id
        self._actas_changed = False
        self._acta_dirty.clear()
        self._last_acta_snapshot_at = self.clock.now()
        self._event("snapshot", "info", None,
                    f"instantánea de actas {outcome.snapshot_id[:12]} ({len(readings)} actas)",
                    f"acta snapshot {outcome.snapshot_id[:12]} ({len(readings)} actas)",
                    snapshot_id=outcome.snapshot_id, created=outcome.created,
                    as_of=_iso(as_of), actas=len(readings))

    def _put(self, snap: ParsedSnapshot) -> IngestOutcome:
        """Store one snapshot the way every ingest does (``service.ingest``): one
        transaction, then appended to the tamper-evident ledger. The raw answers it was
        built from are flushed to disk first."""
        return self._put_many([snap])[0]

    def _put_many(self, snaps: list[ParsedSnapshot]) -> list[IngestOutcome]:
        from escrutinio.service import ingest

        self.rawlog.flush()
        outcomes = ingest(self.store, snaps)
        for snap, outcome in zip(snaps, outcomes, strict=True):
            if outcome.created:
                self.stats.snapshots_created += 1
                if snap.geography is not None and self.crawler is not None:
                    self._geo_stored = len(self.crawler.f.geo)
        return outcomes

    # -- geography -----------------------------------------------------------------------
    def _geo_unsent(self) -> bool:
        return self.crawler is not None and len(self.crawler.f.geo) > self._geo_stored

    def _geography_frame(self, area1: list[str]) -> pl.DataFrame:
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
        }, schema={"code": pl.String, "name": pl.String, "level": pl.String,
                   "parent": pl.String, "abroad": pl.Boolean, "alt_code": pl.String})

    # -- the loop ----------------------------------------------------------------------
    def _interval(self, tier: Tier) -> float:
        iv = self.cfg.intervals
        return {Tier.HOT: iv.hot_s, Tier.WARM: iv.warm_s, Tier.COLD: iv.cold_s}[tier]

    def _tier_scopes(self, tier: Tier) -> list[Scope]:
        out = [s for s in self.scopes if s.tier is tier]
        if tier is Tier.COLD:  # counted actas are final: cached, never re-polled
            out = [s for s in out if s.key not in self.actas
                   or self.actas[s.key].status not in FINAL_STATUSES]
        return out

    def _tier_has_work(self, tier: Tier) -> bool:
        if tier is Tier.COLD and self.crawler is not None:
            return True
        return bool(self._tier_scopes(tier))

    # -- the cold path -------------------------------------------------------------------
    def _cold_budget_ok(self) -> bool:
        """Bounded cold work: at most ``max_requests`` requests per cycle — a request
        starts only if even its worst case (every retry, re-priming the cookies before
        each) fits — and ``max_seconds``; and it yields to the hot path as soon as that
        is due. The first request of a step always goes, so the crawl advances."""
        if self._stop.is_set():
            return False
        used = self.transport.requests - self._cold_req0
        worst = 2 * max(1, self.cfg.transport.max_attempts) - 1
        if used > 0 and used + worst > self.cfg.cold.max_requests:
            return False
        limit = self.cfg.cold.max_seconds or 0.8 * self.cfg.intervals.hot_s
        if self.clock.monotonic() - self._cold_t0 >= limit:
            return False
        hot_due = self.next_due[Tier.HOT] <= self.clock.now() and bool(
            self._tier_scopes(Tier.HOT))
        return not (used > 0 and hot_due)

    def _cold_step(self, results: dict[str, str]) -> None:
        """The configured actas (a pass every ``cold_s``, only those not final), then a
        bounded step of the crawl."""
        self._cold_req0 = self.transport.requests
        self._cold_t0 = self.clock.monotonic()
        now = self.clock.now()
        if self._listed_due <= now or self._listed_todo:
            if not self._listed_todo:
                self._listed_todo = self._tier_scopes(Tier.COLD)
            while self._listed_todo and self._cold_budget_ok():
                scope = self._listed_todo[0]
                res = self._get(self.acta_url(scope), scope.key, "acta")  # may stop the cycle
                self._listed_todo.pop(0)
                results[scope.key] = self.ingest_acta(scope, res.response, res.classification)
                self._after_scope()
            if not self._listed_todo:
                jitter = self.rng.uniform(0.9, 1.1)
                self._listed_due = now + timedelta(seconds=self.cfg.intervals.cold_s * jitter)
        if self.crawler is not None and self._cold_budget_ok():
            self.crawler.step(self._cold_budget_ok, results)

    def _cold_next_due(self) -> datetime:
        now = self.clock.now()
        cands = []
        if self._tier_scopes(Tier.COLD):
            cands.append(now if self._listed_todo else self._listed_due)
        if self.crawler is not None:
            cands.append(self.crawler.next_due(now))
        if not cands:
            return now + timedelta(seconds=self.cfg.intervals.cold_s)
        return max(min(cands), now + timedelta(seconds=min(self.cfg.cold.step_s,
                                                            self.cfg.intervals.cold_s)))

    def _after_scope(self) -> None:
        if self.consecutive_failures >= self.cfg.intervals.storm_threshold:
            raise Storm()

    def cycle(self) -> dict[str, Any]:
        """One pass over the tiers that are due. Never raises for backend trouble."""
        now = self.clock.now()
        self.cycle_no += 1
        self.stats.cycles += 1
        report: dict[str, Any] = {"cycle": self.cycle_no, "at": _iso(now), "tiers": [],
                                  "results": {}}
        if self.paused_until is not None:
            if now < self.paused_until:
                report["skipped"] = "paused"
                return report
            self.paused_until = None
            self.transport.primed = False
            self._event("resume_after_block", "warning", None,
                        "fin de la pausa por bloqueo; se vuelve a intentar",
                        "block pause over; trying again")
        due = [t for t in Tier if self.next_due[t] <= now and self._tier_has_work(t)]
        if not due:
            report["skipped"] = "nothing due"
            return report
        tier: Tier | None = None
        try:
            if not self.transport.primed:
                self.transport.prime()
            if self.election_id is None and not self._discover():
                for t in due:
                    self.next_due[t] = now + timedelta(seconds=self.cfg.intervals.hot_s)
                report["skipped"] = "no election id"
                return report
            for tier in due:
                if tier is Tier.COLD:
                    n0 = self.transport.requests
                    self._cold_step(report["results"])
                    report["cold_requests"] = self.transport.requests - n0
                else:
                    for scope in self._tier_scopes(tier):
                        if self._stop.is_set():
                            break
                        report["results"][scope.key] = self.poll_unit(scope)
                        self._after_scope()
                self._finish_tier(tier)
                report["tiers"].append(tier.value)
                if tier is Tier.COLD:
                    self.next_due[tier] = self._cold_next_due()
                else:
                    jitter = self.rng.uniform(0.9, 1.1)
                    self.next_due[tier] = now + timedelta(seconds=self._interval(tier)
                                                          * jitter)
                if self._stop.is_set():
                    break
        except HardBlocked as exc:
            self.stats.hard_blocks += 1
            self.paused_until = now + timedelta(seconds=self.cfg.intervals.hard_block_pause_s)
            self._finish_tier(tier)
            report["hard_blocked"] = str(exc)
            self._event("hard_blocked", "critical", None,
                        f"BLOQUEO (401/403): ciclo detenido; pausa hasta "
                        f"{_iso(self.paused_until)}. Vea docs/live.md",
                        f"BLOCKED (401/403): cycle stopped; paused until "
                        f"{_iso(self.paused_until)}. See docs/live.md", detail=str(exc))
        except Storm:
            self.stats.storms += 1
            self.storm_level += 1
            wait = min(self.cfg.intervals.storm_backoff_max_s,
                       self.cfg.intervals.hot_s * 2 ** (self.storm_level - 1))
            wait *= self.rng.uniform(1.0, 1.25)
            for t in due:
                self.next_due[t] = max(self.next_due[t], now + timedelta(seconds=wait))
            self._finish_tier(tier)
            self.consecutive_failures = 0
            report["storm"] = wait
            self._event("storm", "error", None,
                        f"{self.cfg.intervals.storm_threshold} ámbitos seguidos fallaron: "
                        f"se corta el ciclo y se espera {wait:.0f} s",
                        f"{self.cfg.intervals.storm_threshold} scopes in a row failed: "
                        f"cycle cut, waiting {wait:.0f} s", wait_s=wait)
        finally:
            self.rawlog.maybe_flush()
            self._publish_status()
        return report

    def _finish_tier(self, tier: Tier | None) -> None:
        if tier is Tier.WARM:
            self._finish_tier_units()
        elif tier is Tier.COLD:
            self._finish_tier_actas()

    def _finish_tier_units(self) -> None:
        if self._warm_changed:
            self._warm_changed = False
            self._store_units("area1")

    def _finish_tier_actas(self, *, force: bool = False) -> None:
        """End of a cold step: the frontier is written, and the acta snapshot stored
        when actas changed — when crawling, at most every ``snapshot_s`` (``force``: at
        shutdown, always). A crawl's snapshot holds up to every acta of the country:
        one per cold step would be thousands a night."""
        store = self._actas_changed and (
            force or self.crawler is None or not self.cfg.cold.crawl
            or self._last_acta_snapshot_at is None
            or (self.clock.now() - self._last_acta_snapshot_at).total_seconds()
            >= self.cfg.cold.snapshot_s)
        if self.crawler is not None:  # the frontier is on disk before any acta snapshot
            if store or force:
                self.crawler.flush()
            else:
                self.crawler.maybe_flush()
        if store:
            self._store_actas()

    def seconds_to_next(self) -> float:
        now = self.clock.now()
        if self.paused_until is not None:
            return max(0.0, (self.paused_until - now).total_seconds())
        due = [self.next_due[t] for t in Tier if self._tier_has_work(t)]
        if not due:
            return self.cfg.intervals.hot_s
        return max(0.0, (min(due) - now).total_seconds())

    def request_stop(self, *_: Any) -> None:
        self._stop.set()

    def close(self) -> None:
        """Close the transport's connections (the store belongs to the caller)."""
        self.transport.close()

    def run(self, *, max_cycles: int | None = None, duration_s: float | None = None,
            install_signals: bool = True,
            on_cycle: Callable[[dict[str, Any]], None] | None = None) -> Stats:
        """Poll until stopped (SIGTERM/SIGINT, ``max_cycles`` or ``duration_s``);
        ``on_cycle`` sees each cycle's report."""
        previous: dict[signal.Signals, Any] = {}
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self.request_stop)
        start = self.clock.monotonic()
        self._event("start", "info", None,
                    f"vigilancia iniciada: {self.cfg.name} ({self.cfg.base_url})",
                    f"watch started: {self.cfg.name} ({self.cfg.base_url})",
                    config=self.cfg.source, config_sha256=self.cfg.sha256)
        try:
            while not self._stop.is_set():
                rep = self.cycle()
                if on_cycle is not None:
                    on_cycle(rep)
                if max_cycles is not None and self.cycle_no >= max_cycles:
                    break
                wait = self.seconds_to_next()
                if duration_s is not None:
                    left = duration_s - (self.clock.monotonic() - start)
                    if left <= 0:
                        break
                    wait = min(wait, left)
                if self.clock.wait(self._stop, max(wait, 0.001)):
                    break
        finally:
            try:  # what was accepted is in the store before the process goes
                self._finish_tier_actas(force=True)
            except Exception as exc:  # shutdown must finish
                self._event("shutdown_store_failed", "error", None,
                            f"no se pudo guardar la instantánea de actas: {exc}",
                            f"could not store the acta snapshot: {exc}")
            self._event("shutdown", "info", None, "vigilancia detenida limpiamente",
                        "watch stopped cleanly", cycles=self.cycle_no,
                        snapshots=self.stats.snapshots_created)
            self.rawlog.flush()
            self._publish_status()
            for sig, h in previous.items():
                signal.signal(sig, h)
        return self.stats

    # -- the served state --------------------------------------------------------------
    def served(self, now: datetime | None = None) -> dict[str, Any] | None:
        st = self.state.get("national")
        if st is None or st.accepted is None:
            return None
        now = now or self.clock.now()
        r = st.accepted
        age = None if st.confirmed_at is None else (now - st.confirmed_at).total_seconds()
        stale = age is None or age > self.cfg.intervals.stale_after_s
        counted, total = r.counts.get("actas_counted"), r.counts.get("actas_total")
        return {
            "snapshot_id": self.served_snapshot, "as_of": _lima(r.as_of),
            "latest_onpe_time": _lima(st.latest_onpe_time),
            "accepted_at": _iso(st.accepted_at), "confirmed_at": _iso(st.confirmed_at),
            "age_s": None if age is None else round(age, 3), "stale": stale,
            "stale_after_s": self.cfg.intervals.stale_after_s,
            "actas_counted": counted, "actas_total": total,
            "actas_jee": r.counts.get("actas_jee"), "actas_pending": r.counts.get("actas_pending"),
            "pct_actas_counted": (round(100.0 * counted / total, 3)
                                  if counted is not None and total else None),
            "cast": r.counts.get("cast"), "valid": r.valid, "votes": dict(r.votes),
        }

    def status(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or self.clock.now()
        served = self.served(now)
        if self.paused_until is not None and now < self.paused_until:
            state = "hard_blocked"
        elif served is None:
            state = "starting"
        elif served["stale"]:
            state = "stale"
        else:
            state = "ok"
        return {
            "state": state, "contest_id": self.cfg.contest.id, "config": self.cfg.source,
            "run_id": self.run_id, "pid": os.getpid(), "now": _iso(now),
            "started_at": _iso(self.started_at),
            "election_id": self.election_id, "served": served,
            "last_success": _iso(self.last_success), "last_error": self.last_error,
            "paused_until": _iso(self.paused_until),
            "consecutive_failures": self.consecutive_failures,
            "counts": {o.value: self.stats.outcomes.get(o.value, 0) for o in Outcome},
            "results": dict(self.stats.results), "rejections": dict(self.stats.rejections),
            "corrections": self.stats.corrections, "alarms": self.stats.alarms,
            "hard_blocks": self.stats.hard_blocks, "storms": self.stats.storms,
            "snapshots_created": self.stats.snapshots_created, "cycles": self.stats.cycles,
            "requests": self.transport.requests,
            "scopes": {k: {"as_of": _lima(st.accepted.as_of) if st.accepted else None,
                           "confirmed_at": _iso(st.confirmed_at),
                           "actas_counted": (st.accepted.counts.get("actas_counted")
                                             if st.accepted else None),
                           "last_error": st.last_error}
                       for k, st in self.state.items()},
            "actas": ({r.acta_id: r.status for r in self.actas.values()}
                      if len(self.actas) <= 200 else {}),
            "actas_by_status": dict(Counter(r.status for r in self.actas.values())),
            "acta_errors": dict(list(self.acta_errors.items())[-50:]),
            "crawl": None if self.crawler is None else self.crawler.summary(),
            "snapshots": {"national": self.served_snapshot, "area1": self.area1_snapshot,
                          "actas": self.actas_snapshot},
        }

    def _publish_status(self) -> None:
        st = self.status()
        with self._status_lock:
            self._status_cache = st
        if self.status_file is not None:
            write_status_file(self.status_file, st)

    def cached_status(self) -> dict[str, Any]:
        """The status as of the last step, with age and staleness recomputed now (safe
        to call from another thread, e.g. the health endpoint)."""
        with self._status_lock:
            st = json.loads(json.dumps(self._status_cache, default=str))
        return refresh_age(st, datetime.now(UTC) if isinstance(self.clock, SystemClock)
                           else self.clock.now())


def refresh_age(st: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Recompute ``served.age_s`` / ``stale`` of a saved status at ``now``, and how old
    the status itself is (``status_age_s``: a watcher that stopped writing it is not
    running)."""
    if st.get("now"):
        written = datetime.fromisoformat(str(st["now"]).replace("Z", "+00:00"))
        st["status_age_s"] = round((now - written).total_seconds(), 3)
    served = st.get("served")
    if served and served.get("confirmed_at"):
        conf = datetime.fromisoformat(served["confirmed_at"].replace("Z", "+00:00"))
        age = (now - conf).total_seconds()
        served["age_s"] = round(age, 3)
        served["stale"] = age > float(served.get("stale_after_s", 0))
        if st.get("state") in ("ok", "stale"):
            st["state"] = "stale" if served["stale"] else "ok"
    st["now"] = _iso(now)
    return st


def write_status_file(path: Path, status: dict[str, Any]) -> None:
    """Atomic write (temporary file + rename): a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, ensure_ascii=False, indent=2, default=str),
                   encoding="utf-8")
    os.replace(tmp, path)


def read_status_file(path: Path, now: datetime | None = None) -> dict[str, Any]:
    st = json.loads(path.read_text(encoding="utf-8"))
    return refresh_age(st, now or datetime.now(UTC))


def serve_health(watcher: Watcher, port: int, host: str = "127.0.0.1"
                 ) -> ThreadingHTTPServer:
    """``GET /health`` (or ``/status``): the status JSON; 200 when fresh, 503 when stale,
    blocked or starting."""

    class Health(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            st = watcher.cached_status()
            body = json.dumps(st, ensure_ascii=False, default=str).encode()
            self.send_response(200 if st.get("state") == "ok" else 503)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((host, port), Health)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


__all__ = ["HardBlocked", "Storm", "Watcher", "read_status_file", "serve_health",
           "write_status_file"]
