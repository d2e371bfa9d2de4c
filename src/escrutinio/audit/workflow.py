"""The audit as a replayable sequence of recorded steps, kept in the store.

Steps: ``create`` (manifest built from a snapshot, checked against reported totals before
anything is drawn, stored with its SHA-256) -> ``draw_round`` (seed -> draws; escalation
extends the same sequence) -> ``record_counts`` (hand counts from CSV) -> ``measure`` (risk
per assertion; stop, next round, or full hand count) -> ``report``. Each step stores its
inputs, so :func:`replay` can rebuild the manifest, redraw every round from the seed and
re-measure, and say whether everything matches what was stored.

The record lives in the store (``store.audits``, store/audit_repo.py: tables ``audit_*``
from migration 0003, on DuckDB and PostgreSQL alike); this module holds the logic only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import polars as pl

from escrutinio import __version__
from escrutinio.audit import alpha as alpha_mod
from escrutinio.audit import macro
from escrutinio.audit.ids import AuditInputError, canonical_ids
from escrutinio.audit.measure import HandCount, Measurement, measure_risk, measurement_summary
from escrutinio.audit.model import AuditPopulation, Policy, build_population
from escrutinio.audit.plan import ErrorModel, first_round_size
from escrutinio.audit.sampling import consistent_sample, normalise_seed, ppeb_draws, seed_warning
from escrutinio.domain import Contest, SnapshotKind
from escrutinio.errors import IngestError, Location, UnknownReferenceError
from escrutinio.provenance import Provenance
from escrutinio.sources.base import cast_ints, read_csv_strict, read_source
from escrutinio.store.audit_repo import DRAW_SCHEMA, StoredAudit, StoredCount
from escrutinio.store.base import Store

METHODS = ("macro", "alpha")
DESIGNS = ("ppeb", "uniform")

def audit_exists(store: Store, audit_id: str) -> bool:
    return store.audits.exists(audit_id)


# --- manifest ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ManifestCheck:
    ok: bool
    n_actas: int
    total_ballots: int
    candidate_totals: dict[str, int]
    arithmetic_mismatches: int  # actas whose cast != valid + blank + null + challenged
    arithmetic_examples: tuple[str, ...]
    totals_differences: dict[str, dict[str, int]]  # code -> manifest, reported, difference
    external: dict[str, Any] | None
    problems_es: tuple[str, ...] = field(default_factory=tuple)
    problems_en: tuple[str, ...] = field(default_factory=tuple)


def check_manifest(frame: pl.DataFrame, contest: Contest,
                   reported_totals: dict[str, int] | None = None,
                   external: pl.DataFrame | None = None) -> ManifestCheck:
    """Check the manifest (per-acta figures) against reported totals, before any draw."""
    cand = contest.candidate_columns
    parts = pl.sum_horizontal([pl.col(c).fill_null(0) for c in
                               [*cand, "blank", "null", "challenged"] if c in frame.columns])
    with_figs = frame.filter(pl.col("status").is_in(["counted", "annulled"]))
    bad = with_figs.filter(pl.col("cast").fill_null(0) != parts)
    totals = {c.code: int(frame.filter(pl.col("status").is_in(["counted", "annulled"]))
                          [c.column].fill_null(0).sum()) for c in contest.candidates}
    pes: list[str] = []
    pen: list[str] = []
    if bad.height:
        pes.append(f"{bad.height} actas con emitidos distintos de la suma de sus votos "
                   "(se usa el mayor de los dos como cota)")
        pen.append(f"{bad.height} actas whose cast differs from the sum of their votes "
                   "(the larger of the two is used as the bound)")
    diffs: dict[str, dict[str, int]] = {}
    ok = True
    if reported_totals:
        unknown = [k for k in reported_totals if k not in totals]
        if unknown:
            raise AuditInputError(f"candidatos desconocidos en los totales: {unknown}",
                                  f"unknown candidates in the totals: {unknown}")
        for k, v in reported_totals.items():
            if totals[k] != int(v):
                diffs[k] = {"manifest": totals[k], "reported": int(v),
                            "difference": totals[k] - int(v)}
        if diffs:
            ok = False
            pes.append("los totales de las actas no coinciden con los totales informados: "
                       + ", ".join(f"{k} {d['difference']:+,}" for k, d in diffs.items()))
            pen.append("the acta totals do not match the reported totals: "
                       + ", ".join(f"{k} {d['difference']:+,}" for k, d in diffs.items()))
    ext: dict[str, Any] | None = None
    if external is not None:
        mine = frame.select("acta_id", "cast", "status")
        j = external.join(mine, on="acta_id", how="full", coalesce=True)
        only_ext = j.filter(pl.col("status").is_null())
        only_res = j.filter(pl.col("ballots").is_null())
        both = j.filter(pl.col("status").is_not_null() & pl.col("ballots").is_not_null())
        differ = both.filter(pl.col("status").is_in(["counted", "annulled"])
                             & (pl.col("ballots") != pl.col("cast")))
        ext = {"actas": external.height, "ballots": int(external["ballots"].sum()),
               "only_in_manifest": only_ext["acta_id"].head(20).to_list(),
               "n_only_in_manifest": only_ext.height,
               "only_in_results": only_res["acta_id"].head(20).to_list(),
               "n_only_in_results": only_res.height,
               "n_ballot_differences": differ.height,
               "ballot_differences": differ.select("acta_id", "ballots", "cast").head(20)
               .to_dicts()}
        if only_ext.height or only_res.height or differ.height:
            ok = False
            pes.append(f"manifiesto externo: {only_ext.height} actas solo en el manifiesto, "
                       f"{only_res.height} solo en los resultados, {differ.height} con otro "
                       "número de boletas")
            pen.append(f"external manifest: {only_ext.height} actas only in the manifest, "
                       f"{only_res.height} only in the results, {differ.height} with another "
                       "number of ballots")
    return ManifestCheck(ok=ok, n_actas=frame.height,
                         total_ballots=int(frame["cast"].fill_null(0).sum()),
                         candidate_totals=totals, arithmetic_mismatches=bad.height,
                         arithmetic_examples=tuple(bad["acta_id"].head(10).to_list()),
                         totals_differences=diffs, external=ext, problems_es=tuple(pes),
                         problems_en=tuple(pen))


def apply_external_manifest(frame: pl.DataFrame, external: pl.DataFrame) -> pl.DataFrame:
    """Conservative merge: ballots = max(manifest, reported); manifest-only actas are
    added as unresolved (their ballots bound what they could hold)."""
    j = frame.join(external.rename({"ballots": "__mb"}), on="acta_id", how="left")
    j = j.with_columns(pl.max_horizontal(pl.col("cast").fill_null(0),
                                         pl.col("__mb").fill_null(0)).alias("cast")).drop("__mb")
    extra = external.join(frame.select("acta_id"), on="acta_id", how="anti")
    if extra.height:
        add = extra.select(pl.col("acta_id"), pl.lit("pending").alias("status"),
                           pl.col("ballots").alias("electors"))
        j = pl.concat([j, add], how="diagonal_relaxed")
    return j


def read_external_manifest(path: str | Path) -> pl.DataFrame:
    src = read_source(path)
    df = read_csv_strict(src, required=["acta_id", "ballots"], allow_extra=True)
    df = cast_ints(df, ["ballots"], src.path)
    if df["ballots"].null_count():
        line = int(df.filter(pl.col("ballots").is_null())["__line"][0])
        raise IngestError(Location(src.path, line, "ballots"), "missing_value",
                          "falta el número de boletas", "the number of ballots is missing")
    return df.select(canonical_ids(df["acta_id"]), "ballots")


def manifest_frame(pop: AuditPopulation) -> pl.DataFrame:
    """The public manifest: ordinal, canonical ID, category, ballot bound, weight."""
    return pl.DataFrame({
        "ordinal": np.arange(1, pop.size + 1, dtype=np.int64),
        "acta_id": pop.ids.astype(str),
        "category": pop.category.astype(str),
        "ballots": pop.ballots.astype(np.int64),
        "weight": [str(int(w)) for w in pop.weights.tolist()],
    })


def manifest_sha256(pop: AuditPopulation) -> str:
    """SHA-256 of the manifest as CSV text (header + one line per acta, LF)."""
    mf = manifest_frame(pop)
    text = mf.write_csv(line_terminator="\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- audit record ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditRecord:
    audit_id: str
    contest_id: str
    snapshot_id: str
    created_at: datetime
    method: str
    design: str
    risk_limit: str
    seed: str
    policy: dict[str, Any]
    alpha_params: dict[str, Any]
    manifest_sha256: str
    n_actas: int
    total_weight: str
    scale: str
    definition: dict[str, Any]  # assertions, margins, winners, manifest check, left out
    version: str


def audit_frame(store: Store, snapshot_id: str) -> pl.DataFrame:
    """The snapshot's actas plus the actas behind its rejected rows (status ``rejected`` or
    ``missing``, no figures, their electors when known): an audit covers every acta the
    source listed, never only the rows that survived ingest (``count.unresolved_actas``;
    a row without an acta ID gets ``rejected_row_<k>`` in line order)."""
    from escrutinio.count import unresolved_actas

    frame = store.load_actas(snapshot_id)
    info = next((i for i in store.list_snapshots() if i.snapshot_id == snapshot_id), None)
    if info is None or not info.n_rejected:
        return frame
    extra = unresolved_actas(store.load_row_reports(snapshot_id), frame)
    if extra.height == 0:
        return frame
    k = pl.int_range(1, pl.len() + 1).cast(pl.String)
    extra = extra.with_columns(pl.coalesce(
        pl.col("acta_id"), pl.lit("rejected_row_") + k.str.zfill(6)).alias("acta_id"))
    return pl.concat([frame, extra], how="vertical_relaxed")


def _load_frame(store: Store, snapshot_ref: str,
                contest_id: str | None) -> tuple[str, Contest, pl.DataFrame]:
    info = store.snapshot(snapshot_ref, contest_id=contest_id, kind=SnapshotKind.ACTAS)
    return (info.snapshot_id, store.contest(info.contest_id),
            audit_frame(store, info.snapshot_id))


def planning_errors(contest: Contest) -> tuple[ErrorModel, tuple[str, str]]:
    """The error model every first-round size is planned with (``audit plan`` without
    ``--error-rate``, and ``audit sample``): the default shape with the discrepancy rate
    the contest's country pack states, and where that rate comes from (es, en)."""
    from dataclasses import replace

    from escrutinio.countries import pack_for

    stated = pack_for(contest).audit_error_rate
    return replace(ErrorModel(), rate=stated.value), stated.source


def population_for(store: Store, snapshot_ref: str = "latest", *,
                   contest_id: str | None = None, policy: Policy | None = None
                   ) -> tuple[AuditPopulation, pl.DataFrame]:
    sid, contest, frame = _load_frame(store, snapshot_ref, contest_id)
    return build_population(frame, contest, snapshot_id=sid, policy=policy), frame


def create_audit(store: Store, *, audit_id: str, seed: str, risk_limit: str = "0.05",
                 method: str = "macro", design: str = "ppeb", snapshot_ref: str = "latest",
                 contest_id: str | None = None, policy: Policy | None = None,
                 params: alpha_mod.AlphaParams | None = None,
                 reported_totals: dict[str, int] | None = None,
                 external_manifest: pl.DataFrame | None = None,
                 force: bool = False) -> tuple[AuditRecord, ManifestCheck]:
    """Build and check the manifest, then store the audit. Nothing is drawn here."""
    if method not in METHODS or design not in DESIGNS:
        raise AuditInputError(f"método/diseño desconocido: {method}/{design}",
                              f"unknown method/design: {method}/{design}")
    if method == "macro" and design != "ppeb":
        raise AuditInputError("MACRO exige el diseño PPEB", "MACRO requires the PPEB design")
    if store.audits.exists(audit_id):
        raise AuditInputError(f"ya existe la auditoría {audit_id}",
                              f"audit {audit_id} already exists")
    seed = normalise_seed(seed)
    alpha = macro.as_fraction(risk_limit)
    policy = policy or Policy()
    params = params or alpha_mod.AlphaParams()
    sid, contest, frame = _load_frame(store, snapshot_ref, contest_id)
    check = check_manifest(frame, contest, reported_totals, external_manifest)
    if not check.ok and not force:
        raise AuditInputError(
            "el manifiesto no cuadra; no se sorteó nada: " + "; ".join(check.problems_es)
            + " (use --force para seguir con la cota conservadora)",
            "the manifest does not reconcile; nothing was drawn: "
            + "; ".join(check.problems_en) + " (use --force to go on with the conservative "
            "bound)")
    if external_manifest is not None:
        frame = apply_external_manifest(frame, external_manifest)
    pop = build_population(frame, contest, snapshot_id=sid, policy=policy)
    if not pop.auditable:
        raise AuditInputError(
            f"no hay margen que auditar (márgenes tras el tratamiento conservador: "
            f"{list(pop.margin)})",
            f"there is no margin to audit (margins after the conservative treatment: "
            f"{list(pop.margin)})")
    from escrutinio.provenance import to_jsonable

    definition = {"assertions": [a.to_dict() for a in pop.assertions],
                  "winners": list(pop.winners), "reported_margins": list(pop.reported_margin),
                  "subtracted": list(pop.subtracted), "margins": list(pop.margin),
                  "left_out": pop.left_out, "manifest_check": to_jsonable(check),
                  "external_manifest": external_manifest is not None,
                  "seed_warning": seed_warning(seed)}
    rec = AuditRecord(audit_id, contest.id, sid, datetime.now(UTC), method, design,
                      f"{alpha.numerator}/{alpha.denominator}", seed, policy.to_dict(),
                      params.to_dict(), manifest_sha256(pop), pop.size,
                      str(pop.total_weight), str(pop.scale), definition, __version__)
    store.audits.create(
        StoredAudit(rec.audit_id, rec.contest_id, rec.snapshot_id, rec.created_at,
                    rec.method, rec.design, rec.risk_limit, rec.seed, json.dumps(rec.policy),
                    json.dumps(rec.alpha_params), rec.manifest_sha256, rec.n_actas,
                    rec.total_weight, rec.scale, json.dumps(definition, ensure_ascii=False),
                    rec.version),
        manifest_frame(pop),
        None if external_manifest is None else external_manifest.select("acta_id", "ballots"))
    return rec, check


def load_audit(store: Store, audit_id: str) -> AuditRecord:
    r = store.audits.get(audit_id)
    if r is None:
        known = ", ".join(store.audits.audit_ids(order_by="audit_id")) or "—"
        raise UnknownReferenceError(f"auditoría desconocida: {audit_id!r}; las del almacén: "
                                    f"{known}",
                                    f"unknown audit: {audit_id!r}; the store holds: {known}")
    return AuditRecord(r.audit_id, r.contest_id, r.snapshot_id, r.created_at, r.method,
                       r.design, r.risk_limit, r.seed, json.loads(r.policy),
                       json.loads(r.alpha_params), r.manifest_sha256, r.n_actas,
                       r.total_weight, r.scale, json.loads(r.definition),
                       r.escrutinio_version)


def list_audits(store: Store) -> list[AuditRecord]:
    return [load_audit(store, i) for i in store.audits.audit_ids()]


def population_of(store: Store, rec: AuditRecord) -> AuditPopulation:
    """Rebuild the audit's population and check it is byte-for-byte the stored manifest."""
    frame = audit_frame(store, rec.snapshot_id)
    contest = store.contest(rec.contest_id)
    if rec.definition.get("external_manifest"):
        frame = apply_external_manifest(frame, store.audits.external_manifest(rec.audit_id))
    pop = build_population(frame, contest, snapshot_id=rec.snapshot_id,
                           policy=Policy.from_dict(rec.policy))
    if manifest_sha256(pop) != rec.manifest_sha256:
        raise AuditInputError(
            "el manifiesto reconstruido no coincide con el guardado (¿otra versión?)",
            "the rebuilt manifest does not match the stored one (another version?)")
    return pop


# --- rounds -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Draw:
    draw: int  # counter i (PPEB) or position in ticket order (uniform)
    acta_id: str
    ordinal: int
    detail: str  # PPEB: the error-bound unit drawn; uniform: the ticket number


@dataclass(frozen=True)
class RoundDraws:
    audit_id: str
    round: int
    first_draw: int
    last_draw: int
    size_rule: str
    draws: tuple[Draw, ...]
    new_actas: int  # distinct actas not drawn in earlier rounds
    seed: str
    manifest_sha256: str


def _draw_rows(store: Store, audit_id: str) -> pl.DataFrame:
    return store.audits.draws(audit_id)


def generate_draws(pop: AuditPopulation, rec: AuditRecord, first: int, n: int) -> list[Draw]:
    """Draws ``first .. first + n - 1`` from the seed (pure; used to draw and to replay)."""
    if rec.design == "ppeb":
        d = ppeb_draws(rec.seed, pop.weights, n, start=first)
        return [Draw(int(c), str(pop.ids[p]), int(p) + 1, str(u))
                for c, u, p in zip(d.counters.tolist(), d.units, d.positions.tolist(),
                                   strict=True)]
    n = min(n, pop.size - (first - 1))
    tickets = consistent_sample([str(i) for i in pop.ids], rec.seed, drop=first - 1, take=n)
    return [Draw(first + i, t.acta_id, pop.position(t.acta_id) + 1, t.number)
            for i, t in enumerate(tickets)]


def draw_round(store: Store, audit_id: str, size: int | None = None) -> RoundDraws:
    """Draw the next round. ``size`` None: the plan's first-round size (90% chance to
    finish under the default error model), then the size the last measurement asked for."""
    rec = load_audit(store, audit_id)
    pop = population_of(store, rec)
    prev_round, last = store.audits.last_round(audit_id)
    rnd = prev_round + 1
    rule = "explicit"
    if size is None:
        if rnd == 1:
            # the plan's own computation (same simulation, replicates and seed), so the
            # round is the size `audit plan` showed for this method and risk limit
            a = float(macro.as_fraction(rec.risk_limit))
            params = alpha_mod.AlphaParams(**rec.alpha_params)
            name = rec.method if rec.design == "ppeb" else "alpha_uniform"
            size = first_round_size(pop, name, a, errors=planning_errors(pop.contest)[0],
                                    params=params)
            rule = "plan_90"
            if not size:
                size = (macro.zero_discrepancy_draws(pop.U, a) if name == "macro" else
                        alpha_mod.zero_discrepancy_draws(
                            float(pop.U) if name == "alpha" else
                            pop.size * float(pop.weights.max()) / pop.scale, a, params,
                            n_pop=None if name == "alpha" else pop.size))
                rule = "plan_zero_error"
        else:
            m = latest_measurement(store, audit_id)
            if m is None:
                raise AuditInputError("mida el riesgo (audit measure) antes de otra ronda",
                                      "measure the risk (audit measure) before another round")
            if m["status"] == "confirmed":
                raise AuditInputError("la auditoría ya confirmó el resultado",
                                      "the audit already confirmed the outcome")
            if m["next_round_draws"] is None or m["status"] == "full_hand_count":
                raise AuditInputError("se recomienda el recuento manual completo",
                                      "a full hand count is recommended")
            size = int(m["next_round_draws"])
            rule = "measured_risk"
    if not size or size <= 0:
        raise AuditInputError("tamaño de ronda no válido", "invalid round size")
    if rec.design == "uniform" and last >= pop.size:
        raise AuditInputError("ya se sortearon todas las actas", "every acta was drawn already")
    draws = generate_draws(pop, rec, last + 1, int(size))
    seen = set(_draw_rows(store, audit_id)["acta_id"].to_list())
    new = len({d.acta_id for d in draws} - seen)
    df = pl.DataFrame({"round": [rnd] * len(draws), "draw": [d.draw for d in draws],
                       "acta_id": [d.acta_id for d in draws],
                       "ordinal": [d.ordinal for d in draws],
                       "detail": [d.detail for d in draws]}, schema=DRAW_SCHEMA)
    store.audits.add_round(audit_id, round=rnd, size_rule=rule, draws=df,
                           created_at=datetime.now(UTC))
    return RoundDraws(audit_id, rnd, draws[0].draw, draws[-1].draw, rule, tuple(draws), new,
                      rec.seed, rec.manifest_sha256)


# --- hand counts ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordResult:
    audit_id: str
    source: str
    source_sha256: str
    recorded: int
    replaced: int
    unchanged: int
    not_yet_counted: int  # drawn actas still without a hand count


def read_hand_counts(path: str | Path, contest: Contest) -> tuple[list[tuple[HandCount, int]],
                                                                   str, str]:
    """Hand counts CSV: ``acta_id``, one ``v_<code>`` per candidate, ``blank``, ``null``,
    optional ``challenged``. Errors name the file, line and field."""
    src = read_source(path)
    cand = contest.candidate_columns
    df = read_csv_strict(src, required=["acta_id", *cand, "blank", "null"],
                         optional=["challenged", "notes"])
    nums = [*cand, "blank", "null", *(["challenged"] if "challenged" in df.columns else [])]
    df = cast_ints(df, nums, src.path)
    for c in nums:
        bad = df.filter(pl.col(c).is_null() | (pl.col(c) < 0))
        if bad.height:
            raise IngestError(Location(src.path, int(bad["__line"][0]), c), "bad_count",
                              "falta el número o es negativo", "missing or negative number")
    ids = df["acta_id"].cast(pl.String).str.strip_chars()
    bad_id = df.filter(~ids.str.contains(r"^[0-9A-Za-z][0-9A-Za-z._/:\-]*$") | ids.is_null())
    if bad_id.height:
        raise IngestError(Location(src.path, int(bad_id["__line"][0]), "acta_id"), "bad_id",
                          "ID de acta no canónico", "non-canonical acta ID")
    df = df.with_columns(ids.alias("acta_id"))
    dup = df.filter(pl.col("acta_id").is_duplicated())
    if dup.height:
        raise IngestError(Location(src.path, int(dup["__line"][1]), "acta_id"), "duplicate",
                          f"acta repetida en el archivo: {dup['acta_id'][0]}",
                          f"acta repeated in the file: {dup['acta_id'][0]}")
    out = []
    for r in df.iter_rows(named=True):  # one row per hand-counted acta: a handful
        out.append((HandCount(r["acta_id"], tuple(int(r[c]) for c in cand), int(r["blank"]),
                              int(r["null"]), int(r.get("challenged") or 0)), int(r["__line"])))
    return out, src.path, src.sha256


def _latest_counts(store: Store, audit_id: str) -> dict[str, HandCount]:
    return {c.acta_id: HandCount(c.acta_id, c.votes, c.blank, c.null, c.challenged)
            for c in store.audits.latest_counts(audit_id)}


def record_counts(store: Store, audit_id: str, path: str | Path, *,
                  replace: bool = False) -> RecordResult:
    rec = load_audit(store, audit_id)
    contest = store.contest(rec.contest_id)
    counts, name, sha = read_hand_counts(path, contest)
    drawn = set(_draw_rows(store, audit_id)["acta_id"].to_list())
    have = _latest_counts(store, audit_id)
    stranger = [hc.acta_id for hc, _ in counts if hc.acta_id not in drawn]
    if stranger:
        line = next(ln for hc, ln in counts if hc.acta_id == stranger[0])
        raise IngestError(Location(name, line, "acta_id"), "not_drawn",
                          f"el acta {stranger[0]} no fue sorteada en esta auditoría",
                          f"acta {stranger[0]} was not drawn in this audit")
    new_rows = []
    replaced = unchanged = 0
    for hc, line in counts:
        old = have.get(hc.acta_id)
        if old is not None and old == hc:
            unchanged += 1
            continue
        if old is not None and not replace:
            raise IngestError(Location(name, line, "acta_id"), "already_recorded",
                              f"el acta {hc.acta_id} ya tiene otro recuento (use --replace)",
                              f"acta {hc.acta_id} already has another count (use --replace)")
        replaced += old is not None
        new_rows.append((hc, line))
    store.audits.add_counts(
        audit_id, [(StoredCount(hc.acta_id, tuple(hc.votes), hc.blank, hc.null,
                                hc.challenged), line) for hc, line in new_rows],
        source=name, source_sha256=sha, recorded_at=datetime.now(UTC))
    have = _latest_counts(store, audit_id)
    return RecordResult(audit_id, name, sha, len(new_rows), replaced, unchanged,
                        len(drawn - set(have)))


# --- measuring and reporting -----------------------------------------------------------------

def _measure(store: Store, rec: AuditRecord, pop: AuditPopulation) -> Measurement:
    draws = _draw_rows(store, rec.audit_id)
    if draws.height == 0:
        raise AuditInputError("todavía no hay actas sorteadas (audit sample)",
                              "no actas drawn yet (audit sample)")
    positions = draws["ordinal"].to_numpy().astype(np.int64) - 1
    prov = Provenance(snapshot_ids=(rec.snapshot_id,), analysis="audit.measure",
                      parameters={"audit_id": rec.audit_id, "method": rec.method,
                                  "design": rec.design, "risk_limit": rec.risk_limit,
                                  "manifest_sha256": rec.manifest_sha256,
                                  "policy": rec.policy, "alpha": rec.alpha_params},
                      seed=None)
    return measure_risk(pop, positions, _latest_counts(store, rec.audit_id),
                        method=rec.method, design=rec.design,
                        # measure_risk runs it through as_fraction, which takes a Fraction;
                        # its ``float`` annotation (audit/measure.py) is narrower than that
                        risk_limit=cast(float, macro.as_fraction(rec.risk_limit)),
                        params=alpha_mod.AlphaParams(**rec.alpha_params), provenance=prov)


def measure_audit(store: Store, audit_id: str) -> Measurement:
    rec = load_audit(store, audit_id)
    pop = population_of(store, rec)
    m = _measure(store, rec, pop)
    summary = measurement_summary(m)
    store.audits.add_measure(audit_id, round=store.audits.last_round(audit_id)[0],
                             measured_at=datetime.now(UTC), n_draws=m.n_draws,
                             status=m.status, risk=m.risk,
                             summary=json.dumps(summary, ensure_ascii=False))
    return m


def latest_measurement(store: Store, audit_id: str) -> dict[str, Any] | None:
    summary = store.audits.latest_summary(audit_id)
    return json.loads(summary) if summary is not None else None


@dataclass(frozen=True)
class Replay:
    manifest_ok: bool
    draws_ok: bool
    measures_ok: bool
    n_rounds: int
    n_measures: int


def replay(store: Store, audit_id: str) -> Replay:
    """Rebuild the manifest, redraw each round from the seed, re-measure the last step."""
    rec = load_audit(store, audit_id)
    try:
        pop = population_of(store, rec)
        manifest_ok = True
    except AuditInputError:
        return Replay(False, False, False, 0, 0)
    stored = _draw_rows(store, audit_id)
    rounds = store.audits.rounds(audit_id)
    again: list[Draw] = []
    for r in rounds:
        again.extend(generate_draws(pop, rec, r.first_draw, r.last_draw - r.first_draw + 1))
    draws_ok = ([d.acta_id for d in again] == stored["acta_id"].to_list()
                and [d.detail for d in again] == stored["detail"].to_list())
    last_m = latest_measurement(store, audit_id)
    n_meas = store.audits.n_measures(audit_id)
    measures_ok = True
    if last_m is not None and stored.height:
        m = measurement_summary(_measure(store, rec, pop))
        if last_m["n_draws"] == m["n_draws"]:
            keys = ("risk", "macro_risk", "alpha_risk", "status", "next_round_draws")
            measures_ok = all(last_m.get(k) == m.get(k) for k in keys)
    return Replay(manifest_ok, draws_ok, measures_ok, len(rounds), n_meas)


@dataclass(frozen=True)
class AuditReport:
    audit: AuditRecord
    rounds: tuple[dict[str, Any], ...]
    measurement: Measurement
    replay: Replay


def audit_report(store: Store, audit_id: str) -> AuditReport:
    rec = load_audit(store, audit_id)
    pop = population_of(store, rec)
    m = _measure(store, rec, pop)
    rounds = tuple({"round": r.round, "first_draw": r.first_draw, "last_draw": r.last_draw,
                    "size_rule": r.size_rule} for r in store.audits.rounds(audit_id))
    return AuditReport(rec, rounds, m, replay(store, audit_id))
