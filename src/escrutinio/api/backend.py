"""What the web server shows, fetched through ``escrutinio.service`` and the analyses.

Every method returns a frozen analysis result (or a small record of them); the HTML page
and its JSON twin are both made from that one object. Nothing here computes a number:
results come from :mod:`escrutinio.service`, :mod:`escrutinio.projection`,
:mod:`escrutinio.defence`, :mod:`escrutinio.forensics` and :mod:`escrutinio.audit`, with
the same parameters as the CLI's defaults.

Results are cached per (analysis, snapshot ids, parameters): a snapshot never changes, so
neither does anything computed from it. A cache miss is computed once even when many
requests ask at the same time (the second waits for the first under the store lock).
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from escrutinio import service
from escrutinio.api.catalog import CatalogStore, ReplayClock
from escrutinio.api.uploads import UPLOAD_LIMIT, Upload, parse_copies
from escrutinio.count import CountState, LeadHistory
from escrutinio.diff import SnapshotDiff
from escrutinio.domain import Level, SnapshotKind
from escrutinio.errors import EscrutinioError, NotFoundError
from escrutinio.service.projection import ProjectionHistory
from escrutinio.store.base import SnapshotInfo, Store

if TYPE_CHECKING:
    # the forensics page and its JSON twin show escrutinio.service.forensics.forensics
    from escrutinio.service.forensics import ForensicsResult as ForensicsView

#: default parameters (the CLI's; the projection's are the service's)
PROJECTION_SIMS = service.DEFAULT_SIMS
PROJECTION_SEED = service.DEFAULT_SEED
CONTESTED_SIMS = 20_000
QUICKCOUNT_MESAS = 1500
QUICKCOUNT_BOOT = 2000  # bootstrap replicates of the estimate (the CLI's --boot)
QUICKCOUNT_ESTIMATE_SEED = 0


class NeedsActas(EscrutinioError):
    """The analysis needs a per-acta snapshot and was given an aggregate one."""


class Unavailable(EscrutinioError):
    """The analysis cannot run on this data (explained in the message)."""


@dataclass(frozen=True, slots=True)
class ProjectionView:
    snapshot: SnapshotInfo
    projection: Any  # escrutinio.projection.result.Projection
    reconstructed: bool  # replay: projected on the rebuilt per-acta snapshot of this cut


@dataclass(frozen=True, slots=True)
class VerifyView:
    snapshot: SnapshotInfo
    previous: SnapshotInfo | None
    result: Any  # escrutinio.defence.verify.ActaVerification


@dataclass(frozen=True, slots=True)
class ContestedView:
    snapshot: SnapshotInfo
    earlier: tuple[SnapshotInfo, ...]
    result: Any  # escrutinio.defence.contested.ContestedAnalysis


@dataclass(frozen=True, slots=True)
class QuickCountView:
    snapshot: SnapshotInfo
    design: Any  # QuickCountDesign
    design_effect: Any  # DesignEffect | None
    moe: float | None
    urban_rule_es: str
    urban_rule_en: str
    seed: str | None
    sample: pl.DataFrame | None
    n_sample: int
    universe: pl.DataFrame  # acta_id, stratum, electors... (defence.strata.assign_strata)
    pair: tuple[str, str]  # the two candidates of the estimate (leader, runner-up)


@dataclass(frozen=True, slots=True)
class QuickCountEstimateView:
    """A quick-count estimate from reports sent in a request (not cached: the reports
    are the request's own data)."""

    snapshot: SnapshotInfo
    seed: str
    estimate: Any  # defence.quickcount.QuickCountEstimate, the sample alone
    fusion: Any | None  # the same reports fused with the official count of ``fused_with``
    fused_with: SnapshotInfo | None
    n_sample: int  # mesas in the public sample of ``seed``
    n_reports: int  # copies read (after rejected rows)
    n_reported: int  # distinct sampled mesas reported
    strata: pl.DataFrame  # stratum, sample, reported
    refused: pl.DataFrame  # reports of mesas outside the sample (REJECTED_SCHEMA)
    rejected: pl.DataFrame  # rows the parser rejected (REJECTED_SCHEMA)
    n_duplicates: int  # further reports of an already reported mesa (the earliest counts)
    reports_source: str
    reports_sha256: str
    design_n_mesas: int

    @property
    def coverage(self) -> float:
        return self.n_reported / self.n_sample if self.n_sample else 0.0

    @property
    def warnings(self) -> list[dict[str, str]]:
        out = []
        if self.refused.height > self.n_reports - self.refused.height:
            out.append({
                "es": f"{self.refused.height:,} de {self.n_reports:,} reportes no son de mesas "
                      f"de la muestra de la semilla «{self.seed}»: ¿es la semilla correcta?",
                "en": f"{self.refused.height:,} of {self.n_reports:,} reports are not of mesas "
                      f"in the sample of seed “{self.seed}”: is the seed right?"})
        if self.coverage < 0.5:
            out.append({
                "es": f"solo reportó el {100 * self.coverage:.1f}% de la muestra: si las mesas "
                      "que faltan no son al azar (p. ej. las rurales llegan tarde), la "
                      "estimación está sesgada",
                "en": f"only {100 * self.coverage:.1f}% of the sample reported: if the "
                      "missing mesas are not missing at random (e.g. rural ones arrive "
                      "late), the estimate is biased"})
        return out

    def provenance(self) -> dict[str, Any]:
        from escrutinio import __version__

        return {"snapshot_id": self.snapshot.snapshot_id,
                "snapshot_source_sha256": self.snapshot.source_sha256,
                "seed": self.seed, "reports": self.reports_source,
                "reports_sha256": self.reports_sha256,
                "fused_with": self.fused_with.snapshot_id if self.fused_with else None,
                "n_mesas_design": self.design_n_mesas,
                "estimator": {"n_boot": QUICKCOUNT_BOOT, "seed": QUICKCOUNT_ESTIMATE_SEED},
                "escrutinio_version": __version__}

    def to_jsonable(self, limit: int | None = None) -> dict[str, Any]:
        from escrutinio.provenance import to_jsonable

        def rows(df: pl.DataFrame) -> list[dict[str, Any]]:
            return (df if limit is None else df.head(limit)).to_dicts()

        return {"seed": self.seed, "estimate": to_jsonable(self.estimate),
                "fusion": to_jsonable(self.fusion),
                "fused_with": to_jsonable(self.fused_with),
                "coverage": {"n_sample": self.n_sample, "n_reported": self.n_reported,
                             "share": self.coverage, "n_reports": self.n_reports,
                             "n_duplicates": self.n_duplicates,
                             "strata": self.strata.to_dicts()},
                "warnings": self.warnings,
                "n_refused": self.refused.height, "refused": rows(self.refused),
                "n_rejected": self.rejected.height, "rejected": rows(self.rejected),
                "provenance": self.provenance()}


@dataclass(frozen=True, slots=True)
class AuditView:
    snapshot: SnapshotInfo
    plan: Any  # AuditPlan, of :func:`escrutinio.service.audit.plan` with its defaults
    audits: tuple[dict[str, Any], ...]


@dataclass
class _Cache:
    size: int = 512
    data: OrderedDict[Hashable, Any] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Hashable) -> Any | None:
        with self.lock:
            v = self.data.get(key)
            if v is not None:
                self.data.move_to_end(key)
            return v

    def put(self, key: Hashable, value: Any) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


class Backend:
    """The server's data access: a :class:`CatalogStore`, caches and the analyses."""

    def __init__(self, store: Store, *, clock: ReplayClock | None = None,
                 replay_contest: str | None = None, baseline: str = "auto",
                 projection_sims: int = PROJECTION_SIMS) -> None:
        self.store = store if isinstance(store, CatalogStore) else CatalogStore(store, clock)
        self.clock = self.store.clock
        self.results = _Cache(512)  # analysis results
        self.bodies = _Cache(2048)  # rendered bodies (JSON, HTML), see app.py
        self.compute_lock = threading.RLock()
        self.baseline = baseline
        self.projection_sims = projection_sims
        self.replay_contest = replay_contest
        #: largest request body accepted by the uploads (observers' copies, reports)
        self.upload_limit = UPLOAD_LIMIT
        self._timeline: Any = None
        self._timeline_lock = threading.Lock()
        #: chain entries of logged snapshots (an entry never changes once written)
        self._logged: dict[str, Any] = {}

    # -- the tamper-evident log ------------------------------------------------------------
    def ledger_entry(self, info: SnapshotInfo) -> Any:
        """The chain entry of a snapshot (its Merkle root, seq, entry hash), or None when
        it is not logged (yet)."""
        sid = info.snapshot_id
        if sid not in self._logged:
            self._logged.update(self.store.logged_snapshots())
        return self._logged.get(sid)

    def ledger_summary(self, info: SnapshotInfo) -> dict[str, Any] | None:
        """What the API and the pages publish about a snapshot's place in the log."""
        e = self.ledger_entry(info)
        if e is None:
            return None
        return {"seq": e.seq, "entry_hash": e.entry_hash,
                "merkle_root": e.entry.get("merkle_root"),
                "tree_size": e.entry.get("tree_size"),
                "recorded_at": e.recorded_at,
                "proof": f"/api/v1/s/{info.snapshot_id}/proof/{{key}}"}

    # -- generic cached computation ------------------------------------------------------
    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        hit = self.results.get(key)
        if hit is not None:
            return hit
        with self.compute_lock:
            hit = self.results.get(key)
            if hit is not None:
                return hit
            value = compute()
            self.results.put(key, value)
            _settle_garbage()
            return value

    def warm(self) -> None:
        """Compute, oldest first, the national state and the projection of every
        whole-country snapshot of the current contest, ignoring the replay clock (so a
        replay finds them ready). Errors are left for the pages to report."""
        try:
            cid = self.contest_id()
        except EscrutinioError:
            return
        for s in self.store.all_snapshots():
            if s.contest_id != cid or not (s.kind is SnapshotKind.ACTAS
                                           or s.level in (None, "national")):
                continue
            try:
                self.state(s, Level.NATIONAL)
                self.projection(s)
            except (EscrutinioError, ValueError):
                continue

    # -- snapshots -------------------------------------------------------------------------
    def contest_id(self, contest: str | None = None) -> str:
        if contest is None and self.replay_contest is not None:
            return self.replay_contest
        cid = service.default_contest(self.store, contest)
        self.store.contest(cid)  # unknown contest -> NotFoundError
        return cid

    def resolve(self, ref: str, *, contest: str | None = None,
                kind: SnapshotKind | None = None) -> SnapshotInfo:
        """A snapshot reference as the CLI reads it (id, prefix, label, latest...).

        A full id is looked up across contests; the relative references (latest,
        first, latest-N, labels) within ``contest`` (default: the current one)."""
        info = self.store.info(ref)
        if info is not None and self.store.visible(info):
            if kind is not None and info.kind is not kind:
                raise NotFoundError(f"la instantánea {ref[:12]} no es del tipo {kind.value}",
                                    f"snapshot {ref[:12]} is not of kind {kind.value}")
            return info
        if not self.store.all_snapshots():
            raise NotFoundError("no hay instantáneas en el almacén; ejecute 'escrutinio ingest'",
                                "there are no snapshots in the store; run 'escrutinio ingest'")
        cid = self.contest_id(contest)
        if info is not None:  # exists, but later than the replay clock
            raise NotFoundError(f"la instantánea {ref[:12]} aún no se ha publicado en esta "
                                "repetición", f"snapshot {ref[:12]} is not published yet in "
                                "this replay")
        return self.store.snapshot(ref, contest_id=cid, kind=kind)

    def overview_snapshot(self, contest: str | None = None) -> SnapshotInfo:
        """The latest snapshot that covers the whole country (what the home page shows)."""
        cid = self.contest_id(contest)
        snaps = service.history_snapshots(self.store, cid)
        if not snaps:
            snaps = self.store.list_snapshots(cid)
        if not snaps:
            raise NotFoundError("todavía no hay instantáneas de esta contienda",
                                "there are no snapshots of this contest yet")
        return snaps[-1]

    def snapshots(self, contest: str | None = None) -> list[SnapshotInfo]:
        return self.store.list_snapshots(contest)

    def levels_of(self, info: SnapshotInfo) -> tuple[Level, ...]:
        """Levels with units in a snapshot (``service.levels_of``)."""
        return service.levels_of(info)

    def map_snapshot(self, info: SnapshotInfo, level: Level) -> SnapshotInfo | None:
        """``info`` if it has units at ``level``, else the latest earlier snapshot of the
        same contest that has (``service.latest_with_level``)."""
        return service.latest_with_level(self.store, info, level)

    def area_labels(self, contest_id: str) -> dict[str, tuple[str, str]]:
        """What the contest's country calls area1/2/3 (``service.area_labels``)."""
        visible = tuple(s.snapshot_id for s in self.store.list_snapshots(contest_id))
        return self.cached(("area_labels", contest_id, visible[-1:] if visible else ()),
                           lambda: service.area_labels(self.store, contest_id))

    # -- count state, history, diff --------------------------------------------------------
    def state(self, info: SnapshotInfo, level: Level) -> CountState:
        return self.cached(("state", info.snapshot_id, level.value),
                           lambda: service.state_of(self.store, info, level=level))

    def history_snapshots(self, contest_id: str,
                          until: SnapshotInfo | None = None) -> list[SnapshotInfo]:
        """The whole-country snapshots of the history, up to ``until`` (its permalink:
        the history as it stood at that snapshot) or all so far
        (``service.history_snapshots``)."""
        return service.history_snapshots(self.store, contest_id, until=until)

    def history(self, contest: str | None = None,
                until: SnapshotInfo | None = None) -> LeadHistory:
        cid = until.contest_id if until is not None else self.contest_id(contest)
        snaps = self.history_snapshots(cid, until)
        if not snaps:
            raise NotFoundError("todavía no hay instantáneas de esta contienda",
                                "there are no snapshots of this contest yet")

        def compute() -> LeadHistory:
            return service.history(self.store, cid, until=until,
                                   state=lambda s: self.state(s, Level.NATIONAL))

        return self.cached(("history", cid, tuple(s.snapshot_id for s in snaps)), compute)

    def diff(self, older: SnapshotInfo, newer: SnapshotInfo, limit: int) -> SnapshotDiff:
        if older.contest_id != newer.contest_id:  # refused before anything is cached
            raise EscrutinioError("las dos instantáneas son de contiendas distintas",
                                  "the two snapshots belong to different contests")
        return self.cached(
            ("diff", older.snapshot_id, newer.snapshot_id, limit),
            lambda: service.diff(self.store, older, newer, contest_id=older.contest_id,
                                 limit=limit))

    # -- projection ------------------------------------------------------------------------
    def projection(self, info: SnapshotInfo, sims: int | None = None,
                   seed: int = PROJECTION_SEED,
                   baseline_contest: str | None = None) -> ProjectionView:
        """The projection of ``info`` (:func:`escrutinio.service.project`, as the CLI's).
        ``baseline_contest``: a baseline contest id, ``"none"`` for none, or None for the
        server's default (``--baseline auto``: the earlier round of the same election)."""
        sims = sims or self.projection_sims
        tl = self.timeline()
        if baseline_contest is None and tl is not None and tl.has(info.snapshot_id):
            return self.cached(("projection-replay", info.snapshot_id, sims, seed),
                               lambda: ProjectionView(info, tl.projection(info.snapshot_id,
                                                                          sims, seed), True))

        def compute() -> ProjectionView:
            from escrutinio.projection.model import ModelParams

            params = ModelParams(n_sims=sims, seed=seed)
            try:
                # the one projection of the CLI too: baseline by default the earlier round
                # of the same election (said in the result), unless the server runs with
                # --baseline none
                proj = service.project(
                    self.store, info, params=params,
                    baseline_contest=None if baseline_contest in (None, "none")
                    else baseline_contest,
                    use_default_baseline=self.baseline == "auto" and baseline_contest is None)
            except NotFoundError:
                raise
            except EscrutinioError as exc:  # the data cannot be projected (UnknownRemaining…)
                raise Unavailable(exc.message_es, exc.message_en) from exc
            except ValueError as exc:
                raise Unavailable(f"no se puede proyectar esta instantánea: {exc}",
                                  f"this snapshot cannot be projected: {exc}") from exc
            return ProjectionView(info, proj, False)

        return self.cached(("projection", info.snapshot_id, sims, seed, self.baseline,
                            baseline_contest), compute)

    def projection_history(self, contest: str | None = None, sims: int | None = None,
                           seed: int = PROJECTION_SEED,
                           until: SnapshotInfo | None = None) -> ProjectionHistory:
        """The projection at every whole-country snapshot so far, or up to ``until``
        (the fan chart)."""
        sims = sims or self.projection_sims
        cid = until.contest_id if until is not None else self.contest_id(contest)
        snaps = self.history_snapshots(cid, until)

        def compute() -> ProjectionHistory:
            views = []
            for s in snaps:  # each point is the (cached) projection page of its snapshot
                try:
                    v = self.projection(s, sims, seed)
                except Unavailable:
                    continue
                views.append((s, v.projection, v.reconstructed))
            if not views:
                raise Unavailable("no hay proyecciones para esta contienda",
                                  "there are no projections for this contest")
            return service.projection_history(
                self.store, cid, views, sims=sims, seed=seed,
                state=lambda s: self.state(s, Level.NATIONAL))

        return self.cached(("projection-history", cid, tuple(s.snapshot_id for s in snaps),
                            sims, seed, self.baseline), compute)

    def timeline(self) -> service.RebuiltTimeline | None:
        """Replay mode: the arrival order rebuilt from the final per-acta snapshot and the
        national cuts (:mod:`escrutinio.projection.order`), built once."""
        if self.clock is None:
            return None
        with self._timeline_lock:
            if self._timeline is None:
                cid = self.replay_contest or service.default_contest(self.store.inner, None)
                # the whole catalogue, ignoring the replay clock: the final snapshot is
                # what the past cuts are rebuilt from
                self._timeline = service.RebuiltTimeline.build(
                    self.store, cid, snapshots=self.store.all_snapshots(),
                    baseline=self.baseline) or False
            return self._timeline if self._timeline is not False else None

    # -- per-acta analyses -------------------------------------------------------------------
    @staticmethod
    def _needs_actas(info: SnapshotInfo, what_es: str, what_en: str) -> None:
        if info.kind is not SnapshotKind.ACTAS:
            raise NeedsActas(
                f"{what_es} necesita una instantánea por acta; {info.snapshot_id[:12]} es "
                "agregada (por unidad)",
                f"{what_en} needs a per-acta snapshot; {info.snapshot_id[:12]} is an aggregate "
                "(per-unit) one")

    def earlier_actas(self, info: SnapshotInfo) -> list[SnapshotInfo]:
        return [s for s in self.store.list_snapshots(info.contest_id, SnapshotKind.ACTAS)
                if s.as_of < info.as_of]

    def verify(self, info: SnapshotInfo) -> VerifyView:
        self._needs_actas(info, "la verificación", "verification")
        earlier = self.earlier_actas(info)
        prev = earlier[-1] if earlier else None

        def compute() -> VerifyView:
            from escrutinio.defence.verify import verify_actas

            contest = self.store.contest(info.contest_id)
            res = verify_actas(
                self.store.load_actas(info.snapshot_id), contest,
                self.store.load_row_reports(info.snapshot_id),
                previous=None if prev is None else self.store.load_actas(prev.snapshot_id),
                snapshot_ids=[info.snapshot_id] + ([prev.snapshot_id] if prev else []))
            return VerifyView(info, prev, res)

        return self.cached(("verify", info.snapshot_id, prev and prev.snapshot_id), compute)

    def contested(self, info: SnapshotInfo) -> ContestedView:
        self._needs_actas(info, "el análisis de actas en disputa", "the contested-actas analysis")
        earlier = tuple(self.earlier_actas(info))

        def compute() -> ContestedView:
            from escrutinio.defence import contested as ct

            contest = self.store.contest(info.contest_id)
            res = ct.analyse_contested(
                self.store.load_actas(info.snapshot_id), contest,
                earlier=[self.store.load_actas(s.snapshot_id) for s in earlier],
                prior=ct.resolution_prior(contest), n_sims=CONTESTED_SIMS, seed=0,
                snapshot_ids=[info.snapshot_id, *[s.snapshot_id for s in earlier]])
            from escrutinio.countries import localized, vocabulary

            return ContestedView(info, earlier, localized(res, vocabulary(contest)))

        return self.cached(("contested", info.snapshot_id,
                            tuple(s.snapshot_id for s in earlier)), compute)

    def quickcount(self, info: SnapshotInfo, seed: str | None) -> QuickCountView:
        self._needs_actas(info, "el conteo rápido", "the quick count")

        def compute() -> QuickCountView:
            from escrutinio.defence import quickcount as qc
            from escrutinio.defence.pvt import pick_pair
            from escrutinio.defence.strata import assign_strata, peru_urban_districts

            contest = self.store.contest(info.contest_id)
            frame = self.store.load_actas(info.snapshot_id)
            urban = None
            rule = ("sin división urbano/rural", "no urban/rural split")
            if contest.country == "PE":
                from escrutinio import datasets

                try:
                    path = datasets.locate("peru-geography", "ubigeo_distrito.csv")
                    urban = peru_urban_districts(path)
                    rule = (f"urbano/rural: densidad ≥ 100 hab/km² ({path.name})",
                            f"urban/rural: density ≥ 100 inhabitants/km² ({path.name})")
                except EscrutinioError:
                    pass
            universe = assign_strata(frame, urban)
            a, b, _ = pick_pair(frame, contest)
            counted = frame.filter(pl.col("status") == "counted").join(
                universe.select("acta_id", "stratum"), on="acta_id")
            de = None
            if counted.height > 100:
                de = qc.design_effect(counted[f"v_{a}"].fill_null(0).to_numpy(),
                                      counted[f"v_{b}"].fill_null(0).to_numpy(),
                                      counted["stratum"].to_numpy())
            plan = qc.design(universe, n_mesas=QUICKCOUNT_MESAS,
                             deff=de.deff_stratified if de else None,
                             mean_votes_per_mesa=de.mean_votes_per_mesa if de else None,
                             snapshot_ids=[info.snapshot_id])
            moe = (qc.margin_of_error(plan.n_mesas, mean_votes_per_mesa=de.mean_votes_per_mesa,
                                      deff=de.deff_stratified) if de else None)
            sample = qc.draw_sample(universe, plan, seed) if seed else None
            return QuickCountView(info, plan, de, moe, rule[0], rule[1], seed, sample,
                                  0 if sample is None else sample.height, universe, (a, b))

        return self.cached(("quickcount", info.snapshot_id, seed), compute)

    def forensics(self, info: SnapshotInfo) -> ForensicsView:
        """The forensic screen of ``info`` with the CLI's defaults
        (:func:`escrutinio.service.forensics.forensics`); the first round the panel test
        uses is resolved first, so a replay that publishes it later gets a new result."""
        from escrutinio.service import forensics as svc

        self._needs_actas(info, "el cribado forense", "the forensic screen")
        first = svc.first_round_snapshot(self.store, info.contest_id)

        def compute() -> ForensicsView:
            try:
                return svc.forensics(self.store, info)
            except svc.ScreenUnavailable as exc:
                raise Unavailable(exc.message_es, exc.message_en) from exc

        return self.cached(("forensics", info.snapshot_id,
                            first and first.snapshot_id), compute)

    def fingerprint_png(self, info: SnapshotInfo) -> bytes:
        from escrutinio.service import forensics as svc

        view = self.forensics(info)

        def compute() -> bytes:
            try:
                return svc.fingerprint_png(view.report)
            except svc.ScreenUnavailable as exc:
                raise Unavailable(exc.message_es, exc.message_en) from exc

        return self.cached(("fingerprint", info.snapshot_id,
                            view.first_round and view.first_round.snapshot_id), compute)

    def audit(self, info: SnapshotInfo) -> AuditView:
        """The audit plan of ``info`` with the CLI's defaults
        (:func:`escrutinio.service.audit.plan`) and the audits recorded for it."""
        self._needs_actas(info, "la auditoría", "the audit")

        def compute() -> AuditView:
            from escrutinio.service import audit as svc

            return AuditView(info, svc.plan(self.store, info).plan, self._audits(info))

        return self.cached(("audit", info.snapshot_id), compute)

    def _audits(self, info: SnapshotInfo) -> tuple[dict[str, Any], ...]:
        """Audits recorded in the store for this snapshot, with their latest measurement
        (:func:`escrutinio.service.audit.recorded_audits`: read-only)."""
        from escrutinio.service import audit as svc

        with self.store.lock:
            return svc.recorded_audits(self.store.inner, info.snapshot_id)

    def pvt(self, info: SnapshotInfo, upload: Upload) -> Any:
        """Reconcile observers' copies sent in a request (JSON records, CSV or a file;
        not cached: the copies are the request's own data)."""
        from escrutinio.defence.pvt import reconcile, reconcile_units

        contest = self.store.contest(info.contest_id)
        copies = parse_copies(upload, contest, limit=self.upload_limit)
        if info.kind is SnapshotKind.UNITS:
            # only published totals: the copies are aggregated to their level (the areas
            # of each acta from the latest per-acta snapshot, when there is one)
            actas = self.store.list_snapshots(info.contest_id, SnapshotKind.ACTAS)
            with self.compute_lock:
                units = self.store.load_units(info.snapshot_id)
                areas = (self.store.load_actas(actas[-1].snapshot_id).select(
                    "acta_id", "area1_code", "area2_code", "area3_code") if actas else None)
            return reconcile_units(copies.frame, units, contest, acta_areas=areas,
                                   snapshot_ids=[info.snapshot_id],
                                   copies_sha256=copies.source_sha256,
                                   rejected=copies.rejected,
                                   level_labels=self.area_labels(info.contest_id))
        self._needs_actas(info, "la tabulación paralela", "the parallel tabulation")
        from escrutinio.defence.observers import source_copy_codes

        with self.compute_lock:
            official = self.store.load_actas(info.snapshot_id)
        # copy codes on the copies are checked against the snapshot's own source file
        # when it has them (as the CLI does)
        codes = (source_copy_codes(info.source_uri, info.source_sha256)
                 if copies.frame["copy_code"].is_not_null().any() else None)
        return reconcile(copies.frame, official, contest, snapshot_ids=[info.snapshot_id],
                         copies_sha256=copies.source_sha256, rejected=copies.rejected,
                         copy_codes=codes, copy_codes_source=(
                             "snapshot source file" if codes is not None else ""))

    def quickcount_estimate(self, info: SnapshotInfo, seed: str, upload: Upload,
                            fuse: SnapshotInfo | None) -> QuickCountEstimateView:
        """The quick-count estimate from the reports of the sampled mesas of ``seed``
        (:func:`escrutinio.defence.quickcount.estimate`) and, when ``fuse`` is given and
        has counted actas, the same reports fused with its official count
        (:func:`~escrutinio.defence.quickcount.fuse`). Reports of mesas outside the
        sample are refused (listed, not used); rows the parser rejects are listed too."""
        self._needs_actas(info, "el conteo rápido", "the quick count")
        if fuse is not None:
            self._needs_actas(fuse, "la fusión con el conteo oficial",
                              "the fusion with the official count")
            if fuse.contest_id != info.contest_id:
                raise EscrutinioError(
                    "la instantánea a fusionar es de otra contienda",
                    "the snapshot to fuse with belongs to another contest")
        from escrutinio.defence import quickcount as qc
        from escrutinio.defence.pvt import normalise_ids
        from escrutinio.sources.base import REJECTED_SCHEMA

        view = self.quickcount(info, seed)
        assert view.sample is not None
        contest = self.store.contest(info.contest_id)
        copies = parse_copies(upload, contest, limit=self.upload_limit)
        rep = copies.frame.with_columns(
            normalise_ids(copies.frame["acta_id"], view.universe["acta_id"]))
        in_sample = rep["acta_id"].is_in(view.sample["acta_id"].implode())
        out = rep.filter(~in_sample)
        refused = out.select(
            pl.col("line"), pl.col("acta_id"), pl.lit("acta_id").alias("field"),
            pl.lit("not_in_sample").alias("rule"),
            pl.format("la mesa {} no está en la muestra pública de la semilla «{}»: "
                      "reporte rechazado", pl.col("acta_id"), pl.lit(seed)).alias("message_es"),
            pl.format("mesa {} is not in the public sample of seed “{}”: report refused",
                      pl.col("acta_id"), pl.lit(seed)).alias("message_en"),
            pl.lit("").alias("raw")).cast(REJECTED_SCHEMA)  # type: ignore[arg-type]
        rep = rep.filter(in_sample)
        n_reported = rep["acta_id"].n_unique()
        if n_reported < 2:
            raise Unavailable(
                f"de {copies.n_copies:,} reportes, {n_reported} son de mesas de la muestra de "
                f"la semilla «{seed}» ({view.n_sample:,} mesas): hacen falta al menos dos; "
                "¿es la semilla correcta?",
                f"of {copies.n_copies:,} reports, {n_reported} are of mesas in the sample of "
                f"seed “{seed}” ({view.n_sample:,} mesas): at least two are needed; is the "
                "seed right?")
        sids = [info.snapshot_id]
        est = qc.estimate(view.universe, rep, view.pair, n_boot=QUICKCOUNT_BOOT,
                          seed=QUICKCOUNT_ESTIMATE_SEED, n_sampled=view.n_sample,
                          snapshot_ids=sids)
        fusion = None
        if fuse is not None:
            with self.compute_lock:
                official = self.store.load_actas(fuse.snapshot_id)
            if official.filter(pl.col("status") == "counted").height:
                fusion = qc.fuse(view.universe, official, rep, view.pair,
                                 n_boot=QUICKCOUNT_BOOT, seed=QUICKCOUNT_ESTIMATE_SEED,
                                 snapshot_ids=list(dict.fromkeys([*sids, fuse.snapshot_id])))
            else:
                fuse = None
        reported = rep.select("acta_id").unique().join(
            view.sample.select("acta_id", "stratum"), on="acta_id")
        strata = (view.sample.group_by("stratum").len("sample")
                  .join(reported.group_by("stratum").len("reported"), on="stratum",
                        how="left")
                  .with_columns(pl.col("reported").fill_null(0).cast(pl.Int64),
                                pl.col("sample").cast(pl.Int64))
                  .sort("stratum"))
        return QuickCountEstimateView(
            info, seed, est, fusion, fuse, view.n_sample, copies.n_copies, n_reported,
            strata, refused, copies.rejected, rep.height - n_reported, copies.source_uri,
            copies.source_sha256, view.design.n_mesas)


def _settle_garbage() -> None:
    """Move what the caches hold out of the garbage collector's sight.

    Cached results are many small immutable objects (a district count state alone holds
    thousands); left in the collected generations, every full collection would scan them
    all and stall the event loop for hundreds of milliseconds under load. After each new
    result: collect once, then freeze the survivors (``gc.freeze``); results evicted
    later are released by the next unfreeze + collect."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()

