"""The risk-limiting audit, assembled once for the CLI (``escrutinio audit ...``) and the
web layer (``/api/v1/s/{ref}/audit`` and the audit page).

Each step of the workflow is one function with the one set of defaults: :func:`plan`
(initial sizes per method and risk limit), :func:`sample` (create the audit from its
public seed and draw a round), :func:`record` (hand counts), :func:`measure` (risk and
decision), :func:`report` (per-acta discrepancies and the replay check) and
:func:`recorded_audits` (what the dashboard lists). The numbers come from
:mod:`escrutinio.audit`; the audit's tables are read and written by
:mod:`escrutinio.audit.workflow`. Every result is frozen and carries its provenance:
snapshot, risk limit, seed, sampler, manifest SHA-256 and package version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from escrutinio.audit import workflow as wf
from escrutinio.audit.ids import AuditInputError
from escrutinio.audit.model import Policy, build_population
from escrutinio.audit.plan import DEFAULT_RISK_LIMITS, PLAN_REPLICATES, PLAN_SEED
from escrutinio.domain import SnapshotKind
from escrutinio.provenance import Provenance, to_jsonable

if TYPE_CHECKING:
    import polars as pl

    from escrutinio.audit.measure import Measurement
    from escrutinio.audit.model import AuditPopulation, BallotTotals
    from escrutinio.audit.plan import AuditPlan
    from escrutinio.domain import Contest
    from escrutinio.store.base import SnapshotInfo, Store

#: the workflow's defaults, named once (``audit sample`` / ``create_audit``)
DEFAULT_RISK_LIMIT = "0.05"
DEFAULT_METHOD = "macro"
DEFAULT_DESIGN = "ppeb"
#: the public samplers behind each design (:mod:`escrutinio.audit.sampling`)
SAMPLERS = {"ppeb": "ppeb_sha256 (Rivest 2011 counter mode, proportional to error bound)",
            "uniform": "consistent_sampler (Rivest 2018, SHA-256 tickets)"}

__all__ = ["DEFAULT_DESIGN", "DEFAULT_METHOD", "DEFAULT_RISK_LIMIT", "DEFAULT_RISK_LIMITS",
           "PLAN_REPLICATES", "PLAN_SEED", "SAMPLERS", "PlanParams", "PlanResult", "RecordOutcome",
           "SampleParams", "SampleResult", "measure", "plan", "record", "recorded_audits",
           "report", "sample"]


# --- plan ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PlanParams:
    """Everything that changes an audit plan, with its one set of defaults (those of
    ``audit sample``, so the plan shows the size a sample would draw)."""

    risk_limits: tuple[float, ...] = DEFAULT_RISK_LIMITS
    policy: Policy = field(default_factory=Policy)
    #: share of actas with a discrepancy; None: the rate the country's pack states
    error_rate: float | None = None
    replicates: int = PLAN_REPLICATES
    seed: int = PLAN_SEED  # of the planning simulation, not of the public sample


@dataclass(frozen=True, slots=True)
class PlanResult:
    """The plan (its ``provenance`` holds the snapshot, limits, policy, error model,
    replicates, seed and version) and where its discrepancy rate comes from."""

    snapshot: SnapshotInfo
    contest: Contest
    params: PlanParams
    plan: AuditPlan
    error_model_source: tuple[str, str]  # (es, en)

    def to_jsonable(self) -> dict[str, Any]:
        return {**to_jsonable(self.plan),
                "error_model_source": {"es": self.error_model_source[0],
                                       "en": self.error_model_source[1]}}


def _actas_snapshot(store: Store, snapshot: str | SnapshotInfo,
                    contest_id: str | None) -> SnapshotInfo:
    if not isinstance(snapshot, str):
        return snapshot
    return store.snapshot(snapshot, contest_id=contest_id, kind=SnapshotKind.ACTAS)


def plan(store: Store, snapshot: str | SnapshotInfo = "latest",
         params: PlanParams = PlanParams(), *, contest_id: str | None = None) -> PlanResult:
    """Initial sizes per method and risk limit for a per-acta snapshot, over the audit's
    population (rejected and missing actas included, :func:`workflow.audit_frame`)."""
    from dataclasses import replace

    from escrutinio.audit.plan import plan_audit

    info = _actas_snapshot(store, snapshot, contest_id)
    contest = store.contest(info.contest_id)
    pop = build_population(wf.audit_frame(store, info.snapshot_id), contest,
                           snapshot_id=info.snapshot_id, policy=params.policy)
    errors, source = wf.planning_errors(contest)
    if params.error_rate is not None:
        errors = replace(errors, rate=params.error_rate)
        source = (f"indicada con --error-rate: {params.error_rate:.2%}",
                  f"given with --error-rate: {params.error_rate:.2%}")
    result = plan_audit(pop, risk_limits=tuple(params.risk_limits), errors=errors,
                        replicates=params.replicates, seed=params.seed)
    return PlanResult(info, contest, params, result, source)


# --- sample -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SampleParams:
    """A round of ``audit sample``. The audit is created on its first round (``seed``
    required then); later rounds only draw (``seed``, when given, must be the audit's)."""

    seed: str | None = None
    risk_limit: str = DEFAULT_RISK_LIMIT
    method: str = DEFAULT_METHOD
    design: str = DEFAULT_DESIGN
    size: int | None = None  # None: the plan's size, then what the last measure asks
    snapshot: str = "latest"
    contest_id: str | None = None
    reported_totals: Mapping[str, int] | None = None
    external_manifest: Path | None = None  # CSV: acta_id, ballots
    force: bool = False  # go on although the manifest does not reconcile
    policy: Policy = field(default_factory=Policy)


@dataclass(frozen=True, slots=True)
class SampleResult:
    audit: wf.AuditRecord
    manifest_check: wf.ManifestCheck | None  # when this call created the audit
    round: wf.RoundDraws
    ballots: BallotTotals
    population: AuditPopulation
    provenance: Provenance

    def manifest_frame(self) -> pl.DataFrame:
        """The public manifest (acta_id, ordinal, ballots, error bound...)."""
        return wf.manifest_frame(self.population)

    def to_jsonable(self) -> dict[str, Any]:
        return to_jsonable({"audit": self.audit, "manifest_check": self.manifest_check,
                            "round": self.round, "ballots": self.ballots,
                            "provenance": self.provenance})


def sample(store: Store, audit_id: str, params: SampleParams = SampleParams()
           ) -> SampleResult:
    """Create the audit ``audit_id`` when it does not exist (manifest built, checked and
    stored; nothing drawn), then draw its next round from the public seed."""
    from escrutinio.audit.model import ballot_totals
    from escrutinio.audit.sampling import normalise_seed

    created = None
    if not wf.audit_exists(store, audit_id):
        if not params.seed:
            raise AuditInputError("una auditoría nueva necesita --seed",
                                  "a new audit needs --seed")
        external = (wf.read_external_manifest(params.external_manifest)
                    if params.external_manifest else None)
        created = wf.create_audit(
            store, audit_id=audit_id, seed=params.seed, risk_limit=params.risk_limit,
            method=params.method, design=params.design, snapshot_ref=params.snapshot,
            contest_id=params.contest_id, policy=params.policy,
            reported_totals=(None if params.reported_totals is None
                             else dict(params.reported_totals)),
            external_manifest=external, force=params.force)
    else:
        rec = wf.load_audit(store, audit_id)
        if params.seed and normalise_seed(params.seed) != rec.seed:
            raise AuditInputError("la semilla no es la de esta auditoría",
                                  "the seed is not this audit's seed")
    rec = wf.load_audit(store, audit_id)
    pop = wf.population_of(store, rec)
    rd = wf.draw_round(store, audit_id, params.size)
    prov = Provenance(
        snapshot_ids=(rec.snapshot_id,), analysis="audit.sample",
        parameters={"audit_id": rec.audit_id, "risk_limit": rec.risk_limit,
                    "method": rec.method, "design": rec.design,
                    "sampler": SAMPLERS.get(rec.design, rec.design),
                    "public_seed": rec.seed, "manifest_sha256": rec.manifest_sha256,
                    "round": rd.round, "first_draw": rd.first_draw,
                    "last_draw": rd.last_draw, "size_rule": rd.size_rule,
                    "policy": rec.policy, "audit_version": rec.version})
    return SampleResult(rec, None if created is None else created[1], rd,
                        ballot_totals(pop), pop, prov)


# --- record, measure, report ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """Hand counts recorded (how many, replaced, unchanged, still to count; the file's
    SHA-256) and the audit they belong to."""

    result: wf.RecordResult
    provenance: Provenance

    def to_jsonable(self) -> dict[str, Any]:
        return {**to_jsonable(self.result), "provenance": to_jsonable(self.provenance)}


def record(store: Store, audit_id: str, counts: Path, *,
           replace: bool = False) -> RecordOutcome:
    """Record the hand counts of drawn actas (CSV: acta_id, v_<code>..., blank, null);
    ``replace`` replaces earlier counts of the same acta."""
    res = wf.record_counts(store, audit_id, counts, replace=replace)
    rec = wf.load_audit(store, audit_id)
    prov = Provenance(
        snapshot_ids=(rec.snapshot_id,), analysis="audit.record",
        parameters={"audit_id": rec.audit_id, "risk_limit": rec.risk_limit,
                    "method": rec.method, "design": rec.design,
                    "public_seed": rec.seed, "manifest_sha256": rec.manifest_sha256,
                    "counts": res.source, "counts_sha256": res.source_sha256,
                    "replace": replace})
    return RecordOutcome(res, prov)


def measure(store: Store, audit_id: str) -> Measurement:
    """Measure the risk on the counts recorded so far and decide (stored as a measure);
    the result's ``provenance`` names the snapshot, limit, method, design and manifest."""
    return wf.measure_audit(store, audit_id)


def report(store: Store, audit_id: str) -> wf.AuditReport:
    """Per-acta discrepancies and taints, the rounds, and the replay check (manifest,
    draws and measurement rebuilt from the seed)."""
    return wf.audit_report(store, audit_id)


def recorded_audits(store: Store, snapshot_id: str) -> tuple[dict[str, Any], ...]:
    """The audits recorded in the store for a snapshot, each with its latest measurement.
    Read-only: a store without the audit tables has no audits (nothing is created)."""
    if getattr(store, "con", None) is None or not store.audits.available():
        return ()
    return tuple({"audit_id": rec.audit_id, "method": rec.method, "design": rec.design,
                  "risk_limit": rec.risk_limit, "seed": rec.seed,
                  "created_at": rec.created_at, "n_actas": rec.n_actas,
                  "manifest_sha256": rec.manifest_sha256,
                  "latest_measurement": wf.latest_measurement(store, rec.audit_id)}
                 for rec in wf.list_audits(store) if rec.snapshot_id == snapshot_id)
