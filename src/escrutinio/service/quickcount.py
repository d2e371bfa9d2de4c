"""Quick count: the design, the public SHA-256 sample of a seed, and the estimate from the
reports of the sampled mesas, alone and fused with an official partial count
(:mod:`escrutinio.defence.quickcount`, strata from :mod:`escrutinio.defence.strata`).

The one answer of ``escrutinio quickcount`` and ``/api/v1/s/{id}/quickcount`` (design and
sample) and of ``quickcount --reports`` and ``POST /api/v1/s/{id}/quickcount/estimate``
(estimate): the same universe and strata (department × urban/rural in Peru), the same
sample size, design effect, bootstrap replicates and estimator seed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from escrutinio.errors import EscrutinioError, Unavailable
from escrutinio.provenance import to_jsonable
from escrutinio.service import inputs
from escrutinio.store.base import SnapshotInfo, Store

if TYPE_CHECKING:
    from escrutinio.defence.observers import ObserverCopies
    from escrutinio.defence.quickcount import DesignEffect, QuickCountDesign, QuickCountEstimate
    from escrutinio.domain import Contest

#: sample size in mesas when neither a size nor a target margin of error is given
QUICKCOUNT_MESAS = 1500
#: bootstrap replicates of the estimate
QUICKCOUNT_BOOT = 2000
#: seed of the estimator's bootstrap and posterior draws (the sample's seed is public text)
QUICKCOUNT_ESTIMATE_SEED = 0
#: the design effect is measured on the snapshot's counted actas when there are more
DEFF_MIN_COUNTED = 100
#: the district table of Peru's urban/rural proxy (a dataset of the registry)
PERU_DISTRICTS = ("peru-geography", "ubigeo_distrito.csv")


class FuseWith(Enum):
    """Which official count the reports are fused with by default: the snapshot whose
    sample they report."""

    SNAPSHOT = "snapshot"


@dataclass(frozen=True, slots=True)
class QuickCountParams:
    """``n_mesas`` (default :data:`QUICKCOUNT_MESAS`) or ``moe``, a target margin of error
    (fraction); ``deff``: the design effect (default: measured on the snapshot's counted
    actas); ``urban``: strata split urban/rural, from ``urban_table`` (default: Peru's
    district table); ``pair``: the two candidates of the estimate (default: the two leaders
    among counted actas); ``n_boot`` and ``estimate_seed``: the estimator's."""

    n_mesas: int | None = None
    moe: float | None = None
    deff: float | None = None
    urban: bool = True
    urban_table: str | None = None
    pair: tuple[str, str] | None = None
    n_boot: int = QUICKCOUNT_BOOT
    estimate_seed: int = QUICKCOUNT_ESTIMATE_SEED

    @property
    def sample_mesas(self) -> int | None:
        """The sample size asked for (None: from the target margin of error)."""
        if self.n_mesas is None and self.moe is None:
            return QUICKCOUNT_MESAS
        return self.n_mesas


DEFAULTS = QuickCountParams()


@dataclass(frozen=True, slots=True)
class QuickCountPlan:
    """The design of a quick count on ``snapshot`` and, with a ``seed``, its public
    sample. ``moe``: the margin of error (95%) of the sample size with the design effect
    used; ``universe``: one row per mesa with its stratum; ``warnings``: what the plan had
    to do without (es, en)."""

    snapshot: SnapshotInfo
    design: QuickCountDesign
    design_effect: DesignEffect | None
    moe: float | None
    urban_rule_es: str
    urban_rule_en: str
    seed: str | None
    sample: pl.DataFrame | None
    n_sample: int
    universe: pl.DataFrame
    pair: tuple[str, str]
    params: QuickCountParams = DEFAULTS
    deff_used: float | None = None
    warnings: tuple[tuple[str, str], ...] = ()

    def to_jsonable(self, limit: int | None = 200) -> dict[str, Any]:
        """What the CLI's ``--json`` and the API's ``result`` hold."""
        sample = ([] if self.sample is None else
                  (self.sample if limit is None else self.sample.head(limit)).to_dicts())
        return {"design": to_jsonable(self.design), "strata": self.design.table().to_dicts(),
                "design_effect": to_jsonable(self.design_effect),
                "margin_of_error": self.moe, "urban_rule_es": self.urban_rule_es,
                "urban_rule_en": self.urban_rule_en, "seed": self.seed,
                "n_sample": self.n_sample, "sample": sample}


def _urban(contest: Contest, params: QuickCountParams
           ) -> tuple[pl.DataFrame | None, tuple[str, str], list[dict[str, Any]],
                      list[tuple[str, str]]]:
    """The urban flag per district, the rule in words, the table as an input, and a
    warning when the default table is missing."""
    from escrutinio.defence.strata import peru_urban_districts

    none = ("sin división urbano/rural", "no urban/rural split")
    if not params.urban:
        return None, none, [], []
    path = Path(params.urban_table) if params.urban_table else None
    if path is None and contest.country == "PE":
        from escrutinio import datasets

        try:
            path = datasets.locate(*PERU_DISTRICTS)
        except EscrutinioError as exc:
            return None, none, [], [(f"sin tabla de distritos: {exc.message_es}",
                                     f"no district table: {exc.message_en}")]
    if path is None:
        return None, none, [], []
    urban = peru_urban_districts(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return (urban, (f"urbano/rural: densidad ≥ 100 hab/km² ({path.name})",
                    f"urban/rural: density ≥ 100 inhabitants/km² ({path.name})"),
            [inputs.upload_input("urban_table", path.name, digest)], [])


def plan(store: Store, snapshot: inputs.SnapshotArg = "latest", seed: str | None = None,
         params: QuickCountParams = DEFAULTS, *, contest_id: str | None = None
         ) -> QuickCountPlan:
    """The quick-count design on the per-acta ``snapshot`` (its mesas are the universe)
    and, with a public ``seed``, its sample."""
    from escrutinio.defence import quickcount as qc
    from escrutinio.defence.pvt import pick_pair
    from escrutinio.defence.strata import assign_strata

    info = inputs.resolve(store, snapshot, contest_id)
    inputs.require_actas(info, "el conteo rápido", "the quick count")
    contest = store.contest(info.contest_id)
    frame = store.load_actas(info.snapshot_id)
    urban, rule, table_input, warnings = _urban(contest, params)
    universe = assign_strata(frame, urban)
    a, b, _ = pick_pair(frame, contest, params.pair)
    counted = frame.filter(pl.col("status") == "counted").join(
        universe.select("acta_id", "stratum"), on="acta_id")
    de = None
    if counted.height > DEFF_MIN_COUNTED:
        de = qc.design_effect(counted[f"v_{a}"].fill_null(0).to_numpy(),
                              counted[f"v_{b}"].fill_null(0).to_numpy(),
                              counted["stratum"].to_numpy())
    deff = params.deff if params.deff is not None else (de.deff_stratified if de else None)
    design = qc.design(universe, n_mesas=params.sample_mesas, moe=params.moe, deff=deff,
                       mean_votes_per_mesa=de.mean_votes_per_mesa if de else None,
                       snapshot_ids=[info.snapshot_id])
    moe = (qc.margin_of_error(design.n_mesas, mean_votes_per_mesa=de.mean_votes_per_mesa,
                              deff=deff or de.deff_stratified) if de else None)
    sample = qc.draw_sample(universe, design, seed) if seed else None
    design = inputs.with_inputs(design, "quickcount.plan",
                                {**to_jsonable(params), "seed": seed},
                                [inputs.snapshot_input("snapshot", info), *table_input])
    return QuickCountPlan(info, design, de, moe, rule[0], rule[1], seed, sample,
                          0 if sample is None else sample.height, universe, (a, b), params,
                          deff, tuple(warnings))


@dataclass(frozen=True, slots=True)
class QuickCountEstimation:
    """A quick-count estimate from the reports of the sampled mesas of ``seed``: the
    sample alone (``estimate``) and fused with the official count of ``fused_with``
    (``fusion``, None without one or when it has no counted acta). Reports of mesas
    outside the sample are ``refused`` (listed, not used); rows the parser could not read
    are ``rejected``."""

    snapshot: SnapshotInfo
    seed: str
    estimate: QuickCountEstimate
    fusion: QuickCountEstimate | None
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
    params: QuickCountParams = DEFAULTS

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
                "estimator": {"n_boot": self.params.n_boot, "seed": self.params.estimate_seed},
                "escrutinio_version": __version__}

    def to_jsonable(self, limit: int | None = None) -> dict[str, Any]:
        """What the CLI's ``--json`` (beside the plan) and the API's ``result`` hold."""
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


def fuse_partner(store: Store, info: SnapshotInfo,
                 fuse: inputs.SnapshotArg | FuseWith | None) -> SnapshotInfo | None:
    """The per-acta snapshot of ``info``'s contest whose official count reports are fused
    with: ``info`` itself for :data:`FuseWith.SNAPSHOT`, None for none."""
    if fuse is None:
        return None
    if fuse is FuseWith.SNAPSHOT:
        return info
    partner = inputs.resolve(store, fuse, info.contest_id)
    inputs.require_actas(partner, "la fusión con el conteo oficial",
                  "the fusion with the official count")
    if partner.contest_id != info.contest_id:
        raise EscrutinioError("la instantánea a fusionar es de otra contienda",
                              "the snapshot to fuse with belongs to another contest")
    return partner


def estimate(store: Store, plan: QuickCountPlan, reports: ObserverCopies | None, *,
             fuse: inputs.SnapshotArg | FuseWith | None = FuseWith.SNAPSHOT
             ) -> QuickCountEstimation:
    """The estimate from ``reports`` of the mesas in ``plan``'s sample (None: a rehearsal,
    their figures taken from the snapshot itself) and, with ``fuse``, the same reports
    fused with that snapshot's official count (:data:`FuseWith.SNAPSHOT`, the default:
    the plan's own snapshot; None: no fusion)."""
    from escrutinio.defence import quickcount as qc
    from escrutinio.defence.pvt import normalise_ids
    from escrutinio.sources.base import REJECTED_SCHEMA

    info, seed, sample, params = plan.snapshot, plan.seed, plan.sample, plan.params
    if seed is None or sample is None:
        raise EscrutinioError("falta la semilla pública de la muestra",
                              "the public seed of the sample is missing")
    partner = fuse_partner(store, info, fuse)
    if reports is None:  # a rehearsal: the sampled mesas' own figures
        rep = store.load_actas(info.snapshot_id).join(sample.select("acta_id"), on="acta_id")
        rejected = pl.DataFrame(schema=REJECTED_SCHEMA)
        source, sha = f"snapshot {info.snapshot_id}", info.source_sha256
    else:
        rep = reports.frame.with_columns(
            normalise_ids(reports.frame["acta_id"], plan.universe["acta_id"]))
        rejected, source, sha = reports.rejected, reports.source_uri, reports.source_sha256
    if "line" not in rep.columns:
        rep = rep.with_columns(pl.lit(None, dtype=pl.Int64).alias("line"))
    n_copies = rep.height
    in_sample = rep["acta_id"].is_in(sample["acta_id"].implode())
    refused = rep.filter(~in_sample).select(
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
            f"de {n_copies:,} reportes, {n_reported} son de mesas de la muestra de "
            f"la semilla «{seed}» ({plan.n_sample:,} mesas): hacen falta al menos dos; "
            "¿es la semilla correcta?",
            f"of {n_copies:,} reports, {n_reported} are of mesas in the sample of "
            f"seed “{seed}” ({plan.n_sample:,} mesas): at least two are needed; is the "
            "seed right?")
    sids = [info.snapshot_id]
    used = [inputs.snapshot_input("snapshot", info),
            inputs.upload_input("reports", source, sha)]
    described = {**to_jsonable(params), "seed": seed}
    est = qc.estimate(plan.universe, rep, plan.pair, n_boot=params.n_boot,
                      seed=params.estimate_seed, n_sampled=plan.n_sample, snapshot_ids=sids)
    fusion = None
    if partner is not None:
        official = store.load_actas(partner.snapshot_id)
        if official.filter(pl.col("status") == "counted").height:
            fusion = qc.fuse(plan.universe, official, rep, plan.pair, n_boot=params.n_boot,
                             seed=params.estimate_seed,
                             snapshot_ids=list(dict.fromkeys([*sids, partner.snapshot_id])))
            fusion = inputs.with_inputs(fusion, "quickcount.estimate", described,
                                        [*used, inputs.snapshot_input("fused_with", partner)])
        else:
            partner = None
    est = inputs.with_inputs(est, "quickcount.estimate", described, used)
    reported = rep.select("acta_id").unique().join(
        sample.select("acta_id", "stratum"), on="acta_id")
    strata = (sample.group_by("stratum").len("sample")
              .join(reported.group_by("stratum").len("reported"), on="stratum", how="left")
              .with_columns(pl.col("reported").fill_null(0).cast(pl.Int64),
                            pl.col("sample").cast(pl.Int64))
              .sort("stratum"))
    return QuickCountEstimation(
        info, seed, est, fusion, partner, plan.n_sample, n_copies, n_reported, strata,
        refused, rejected, rep.height - n_reported, source, sha, plan.design.n_mesas, params)

