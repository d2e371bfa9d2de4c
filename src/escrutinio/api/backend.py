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
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from escrutinio import service
from escrutinio.api.catalog import CatalogStore, ReplayClock
from escrutinio.api.uploads import UPLOAD_LIMIT, Upload, parse_copies
from escrutinio.count import CountState, LeadHistory
from escrutinio.diff import SnapshotDiff
from escrutinio.domain import Level, SnapshotKind
from escrutinio.errors import EscrutinioError, NotFoundError
from escrutinio.errors import NeedsActas as NeedsActas  # the web layer's 422s
from escrutinio.errors import Unavailable as Unavailable
from escrutinio.service import contested as contested_service
from escrutinio.service import pvt as pvt_service
from escrutinio.service import quickcount as quickcount_service
from escrutinio.service import verify as verify_service
from escrutinio.service.inputs import require_actas
from escrutinio.service.projection import ProjectionHistory
from escrutinio.store.base import SnapshotInfo, Store

if TYPE_CHECKING:
    # the forensics page and its JSON twin show escrutinio.service.forensics.forensics
    from escrutinio.service.forensics import ForensicsResult as ForensicsView

#: default parameters (the CLI's); the projection's are the service's, and so are the
#: defence questions' (escrutinio.service.verify, .contested, .quickcount, .pvt)
PROJECTION_SIMS = service.DEFAULT_SIMS
PROJECTION_SEED = service.DEFAULT_SEED


@dataclass(frozen=True, slots=True)
class ProjectionView:
    snapshot: SnapshotInfo
    projection: Any  # escrutinio.projection.result.Projection
    reconstructed: bool  # replay: projected on the rebuilt per-acta snapshot of this cut


#: the defence answers are the service's results (the pages and their JSON twins read them)
VerifyView = verify_service.Verification
ContestedView = contested_service.ContestedActas
QuickCountView = quickcount_service.QuickCountPlan
QuickCountEstimateView = quickcount_service.QuickCountEstimation


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
        """:class:`NeedsActas` unless ``info`` is per acta (before the cache is asked)."""
        require_actas(info, what_es, what_en)

    def verify(self, info: SnapshotInfo) -> VerifyView:
        """:func:`escrutinio.service.verify.verify` against the previous per-acta snapshot
        (the CLI's default), cached per (snapshot, previous)."""
        self._needs_actas(info, "la verificación", "verification")
        prev = verify_service.previous_snapshot(self.store, info)
        return self.cached(("verify", info.snapshot_id, prev and prev.snapshot_id),
                           lambda: verify_service.verify(self.store, info))

    def contested(self, info: SnapshotInfo) -> ContestedView:
        """:func:`escrutinio.service.contested.contested` with the CLI's defaults, cached
        per (snapshot, earlier snapshots the rates are learned from)."""
        self._needs_actas(info, "el análisis de actas en disputa", "the contested-actas analysis")
        earlier = contested_service.history_snapshots(self.store, info)
        return self.cached(("contested", info.snapshot_id,
                            tuple(s.snapshot_id for s in earlier)),
                           lambda: contested_service.contested(self.store, info))

    def quickcount(self, info: SnapshotInfo, seed: str | None) -> QuickCountView:
        """:func:`escrutinio.service.quickcount.plan` with the CLI's defaults: the design
        and, with a ``seed``, the public sample; cached per (snapshot, seed)."""
        self._needs_actas(info, "el conteo rápido", "the quick count")
        return self.cached(("quickcount", info.snapshot_id, seed),
                           lambda: quickcount_service.plan(self.store, info, seed))

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
        not cached: the copies are the request's own data) with
        :func:`escrutinio.service.pvt.reconcile`: per acta, or against the published
        totals of a unit snapshot."""
        contest = self.store.contest(info.contest_id)
        copies = parse_copies(upload, contest, limit=self.upload_limit)
        return pvt_service.reconcile(self.store, info, copies).result

    def quickcount_estimate(self, info: SnapshotInfo, seed: str, upload: Upload,
                            fuse: SnapshotInfo | None) -> QuickCountEstimateView:
        """The quick-count estimate from the reports of the sampled mesas of ``seed`` and,
        when ``fuse`` is given and has counted actas, the same reports fused with its
        official count (:func:`escrutinio.service.quickcount.estimate`; not cached: the
        reports are the request's own data). Reports of mesas outside the sample are
        refused (listed, not used); rows the parser rejects are listed too."""
        self._needs_actas(info, "el conteo rápido", "the quick count")
        if fuse is not None:
            self._needs_actas(fuse, "la fusión con el conteo oficial",
                              "the fusion with the official count")
        plan = self.quickcount(info, seed)
        copies = parse_copies(upload, self.store.contest(info.contest_id),
                              limit=self.upload_limit)
        return quickcount_service.estimate(self.store, plan, copies, fuse=fuse)


#: every this many new results, the frozen objects are handed back to the collector once
#: (cyclic garbage among evicted results is reclaimed then; acyclic results are freed by
#: reference counting as soon as they are evicted, frozen or not)
FULL_SETTLE_EVERY = 32
_settles = itertools.count(1)


def _settle_garbage() -> None:
    """Move what the caches hold out of the garbage collector's sight.

    Cached results are many small immutable objects (a district count state alone holds
    thousands); left in the collected generations, every full collection would scan them
    all and stall the event loop for hundreds of milliseconds under load. After each new
    result: collect what is not frozen yet (the new result's garbage: cheap), then freeze
    the survivors (``gc.freeze``). Unfreezing every time made each new result cost a scan
    of everything cached (about 80% of computing a count state in the API tests); it is
    done once every :data:`FULL_SETTLE_EVERY` results."""
    if next(_settles) % FULL_SETTLE_EVERY == 0:
        gc.unfreeze()
    gc.collect()
    gc.freeze()

