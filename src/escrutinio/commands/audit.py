"""``escrutinio audit``: plan, sample, record, measure, report (every command takes --json).

Presenters only: each command parses its options, calls one function of
:mod:`escrutinio.service.audit` (the one set of defaults, shared with the web layer) and
formats what it returns; the numbers come from :mod:`escrutinio.audit`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from escrutinio.audit.model import Policy
from escrutinio.commands.common import T, emit_json, err, fail, number, open_store, opts, out
from escrutinio.countries import vocabulary
from escrutinio.errors import BadOptionError, EscrutinioError
from escrutinio.service import audit as svc

if TYPE_CHECKING:
    from escrutinio.audit.measure import Measurement

audit_app = typer.Typer(no_args_is_help=True, help=(
    "Auditorías que limitan el riesgo sobre actas / risk-limiting audits over actas"))

SnapshotOpt = Annotated[str, typer.Option("--snapshot", "-s", help="snapshot ref (latest...)")]
ContestOpt = Annotated[str | None, typer.Option(help="contest id")]
JsonOpt = Annotated[bool, typer.Option("--json")]
AuditOpt = Annotated[str, typer.Option("--audit-id", "-a", help="audit id / id de auditoría")]
Annulled = Annotated[str, typer.Option(help="batch | subtract (actas anuladas)")]
NotInst = Annotated[str, typer.Option(help="batch | subtract (mesas no instaladas)")]
Unresolved = Annotated[str, typer.Option(help="subtract | batch (pendientes, JEE...)")]
BallotBound = Annotated[str, typer.Option(help="cast | electors")]
Rejected = Annotated[str, typer.Option(
    help="subtract | batch (actas rechazadas o faltantes: el peor caso / rejected or missing "
         "actas: the worst case)")]
MissingBound = Annotated[int | None, typer.Option(
    help="boletas de un acta rechazada/faltante sin electores / ballots of a rejected or "
         "missing acta without electors", min=1)]


def _policy(annulled: str, not_installed: str, unresolved: str, ballot_bound: str,
            clip: bool = False, rejected: str = "subtract",
            missing_bound: int | None = None) -> Policy:
    return Policy(annulled=annulled, not_installed=not_installed, unresolved=unresolved,
                  ballot_bound=ballot_bound, clip_understatements=clip, rejected=rejected,
                  missing_bound=missing_bound)


def _as_error(exc: Exception) -> EscrutinioError:
    return exc if isinstance(exc, EscrutinioError) else EscrutinioError(str(exc), str(exc))


def _risk(text: str) -> float:
    """A risk limit written as 0.05 or 1/20 (exit 2 naming --risk-limit otherwise)."""
    from fractions import Fraction

    try:
        return float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise BadOptionError("--risk-limit", text, "un número como 0.05 o 1/20",
                             "a number such as 0.05 or 1/20") from None


def _fmt(x: float | int | None, digits: int = 0) -> str:
    if x is None:
        return "—"
    return f"{x:,.{digits}f}" if isinstance(x, float) else f"{x:,}"


@audit_app.command("plan")
def plan_cmd(
    snapshot: SnapshotOpt = "latest", contest: ContestOpt = None,
    risk_limit: Annotated[list[float] | None, typer.Option(
        "--risk-limit", "-r", help="0.05, 0.10 ... (repeat)", min=0.0001, max=0.5)] = None,
    annulled: Annulled = "batch", not_installed: NotInst = "batch",
    unresolved: Unresolved = "subtract", ballot_bound: BallotBound = "cast",
    rejected: Rejected = "subtract", missing_bound: MissingBound = None,
    error_rate: Annotated[float | None, typer.Option(
        help="share of actas with a discrepancy (default: the rate the country's pack "
             "states, else a generic stated 0.3%)", min=0.0, max=1.0)] = None,
    replicates: Annotated[int, typer.Option(
        help="simulated audits per method and limit (default: as audit sample)",
        min=10, max=1_000_000)] = svc.PLAN_REPLICATES,
    seed: Annotated[int, typer.Option(help="seed of the planning simulation (not the "
                                      "public sample)", min=0)] = svc.PLAN_SEED,
    as_json: JsonOpt = False,
) -> None:
    """Tamaños iniciales por método y límite de riesgo / initial sizes per method and limit."""
    try:
        params = svc.PlanParams(
            risk_limits=tuple(risk_limit or svc.DEFAULT_RISK_LIMITS),
            policy=_policy(annulled, not_installed, unresolved, ballot_bound,
                           rejected=rejected, missing_bound=missing_bound),
            error_rate=error_rate, replicates=replicates, seed=seed)
        with open_store(read_only=True) as store:
            res = svc.plan(store, snapshot, params, contest_id=contest)
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    if as_json:
        emit_json(res.to_jsonable())
        return
    plan, source = res.plan, res.error_model_source
    out.print(f"[bold]{plan.contest_id}[/] — {T('instantánea', 'snapshot')} "
              f"{plan.snapshot_id[:12]}; {plan.n_actas:,} actas, "
              f"{plan.total_ballots:,} {T('boletas', 'ballots')}")
    out.print(T(f"Tasa de discrepancias supuesta: {source[0]}",
                f"Assumed discrepancy rate: {source[1]}"))
    for a, v, s in zip(plan.assertions, plan.margins, plan.subtracted, strict=True):
        out.print(f"  {a['label_es'] if T('es', 'en') == 'es' else a['label_en']}: "
                  f"{T('margen', 'margin')} {v:,}"
                  + (f" ({T('tras restar', 'after subtracting')} {s:,})" if s else ""))
    if plan.ballots is not None:
        out.print(T("Boletas: ", "Ballots: ")
                  + vocabulary(res.contest).localize(T(*plan.ballots.sentence()), opts.lang))
    if not plan.auditable:
        for es, en in zip(plan.reasons_es, plan.reasons_en, strict=True):
            out.print("[bold red]" + T(es, en) + "[/]")
        raise typer.Exit(1)
    out.print(T(f"Cota total de error U = {float(plan.total_bound):,.2f}; margen diluido "
                f"{plan.diluted_margin:.4%}",
                f"Total error bound U = {float(plan.total_bound):,.2f}; diluted margin "
                f"{plan.diluted_margin:.4%}"))
    table = Table(title=T("Plan de auditoría", "Audit plan"))
    for col in (T("método", "method"), T("riesgo", "risk"), T("unidad", "unit"),
                T("sin errores", "no errors"), T("actas esperadas", "expected actas"),
                T("P(1ª ronda)", "P(round 1)"), T("tamaño 90%", "90% size"),
                T("práctico", "practical"), T("nota", "note")):
        table.add_column(col, overflow="fold")
    for m in plan.methods:
        table.add_row(m.method, f"{m.risk_limit:.0%}", m.unit, _fmt(m.zero_error),
                      _fmt(m.expected_actas), "—" if m.p_first_round is None
                      else f"{m.p_first_round:.1%}", _fmt(m.size_90),
                      T("sí", "yes") if m.practical else "no", T(m.note_es, m.note_en))
    out.print(table)
    out.print(T(plan.size_note_es, plan.size_note_en)
              + ("" if error_rate is None else T(
                  f" (con --error-rate {error_rate:g}; 'audit sample' usa la tasa por omisión)",
                  f" (with --error-rate {error_rate:g}; 'audit sample' uses the default "
                  "rate)")))


def _parse_totals(text: str | None) -> dict[str, int] | None:
    if not text:
        return None
    out_: dict[str, int] = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        if not v.strip().replace("_", "").isdigit():
            raise EscrutinioError(f"--totals: totales mal escritos: {part!r} (use codigo=votos)",
                                  f"--totals: malformed totals: {part!r} (use code=votes)")
        out_[k.strip()] = int(v.strip().replace("_", ""))
    return out_


@audit_app.command("sample")
def sample_cmd(
    audit_id: AuditOpt,
    seed: Annotated[str | None, typer.Option(help="semilla tirada con dados / dice seed "
                                             "(new audits)")] = None,
    risk_limit: Annotated[str, typer.Option("--risk-limit", "-r")] = svc.DEFAULT_RISK_LIMIT,
    method: Annotated[str, typer.Option(help="macro | alpha")] = svc.DEFAULT_METHOD,
    design: Annotated[str, typer.Option(help="ppeb | uniform")] = svc.DEFAULT_DESIGN,
    size: Annotated[int | None, typer.Option(help="draws in this round (default: plan / "
                                             "measured risk)", min=1)] = None,
    snapshot: SnapshotOpt = "latest", contest: ContestOpt = None,
    totals: Annotated[str | None, typer.Option(
        help="reported totals to check, e.g. castillo=8836380,fujimori=8792117")] = None,
    manifest: Annotated[Path | None, typer.Option(help="external manifest CSV: acta_id, "
                                                  "ballots")] = None,
    manifest_out: Annotated[Path | None, typer.Option(help="write the public manifest "
                                                      "CSV here")] = None,
    force: Annotated[bool, typer.Option(help="go on although the manifest does not "
                                        "reconcile (conservative bound)")] = False,
    annulled: Annulled = "batch", not_installed: NotInst = "batch",
    unresolved: Unresolved = "subtract", ballot_bound: BallotBound = "cast",
    rejected: Rejected = "subtract", missing_bound: MissingBound = None,
    clip_understatements: Annotated[bool, typer.Option()] = False,
    as_json: JsonOpt = False,
) -> None:
    """Sortear una ronda con la semilla pública / draw a round from the public seed."""
    try:
        number(_risk(risk_limit), "--risk-limit", lo=0.0, hi=0.5, lo_open=True)
        params = svc.SampleParams(
            seed=seed, risk_limit=risk_limit, method=method, design=design, size=size,
            snapshot=snapshot, contest_id=contest, reported_totals=_parse_totals(totals),
            external_manifest=manifest, force=force,
            policy=_policy(annulled, not_installed, unresolved, ballot_bound,
                           clip_understatements, rejected, missing_bound))
        with open_store() as store:
            res = svc.sample(store, audit_id, params)
        if manifest_out:
            res.manifest_frame().write_csv(manifest_out)
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    if as_json:
        emit_json(res.to_jsonable())
        return
    rec, rd, ballots, chk = res.audit, res.round, res.ballots, res.manifest_check
    if chk is not None:
        out.print(T(f"Manifiesto: {rec.n_actas:,} actas (de {chk.n_actas:,} en la "
                    f"instantánea), SHA-256 {rec.manifest_sha256}",
                    f"Manifest: {rec.n_actas:,} actas (of {chk.n_actas:,} in the snapshot), "
                    f"SHA-256 {rec.manifest_sha256}"))
        out.print(T("Boletas: ", "Ballots: ")
                  + vocabulary(res.population.contest).localize(T(*ballots.sentence()),
                                                                opts.lang))
        for pe, pn in zip(chk.problems_es, chk.problems_en, strict=True):
            err.print("[yellow]" + T(pe, pn) + "[/]")
        w = rec.definition.get("seed_warning")
        if w:
            err.print("[yellow]" + T(w[0], w[1]) + "[/]")
    out.print(T(f"Ronda {rd.round}: extracciones {rd.first_draw}..{rd.last_draw} "
                f"({len(rd.draws)}; {rd.new_actas} actas nuevas; regla {rd.size_rule})",
                f"Round {rd.round}: draws {rd.first_draw}..{rd.last_draw} "
                f"({len(rd.draws)}; {rd.new_actas} new actas; rule {rd.size_rule})"))
    table = Table()
    for col in (T("extracción", "draw"), "acta", T("ordinal", "ordinal"),
                T("unidad / boleto", "unit / ticket")):
        table.add_column(col)
    for d in rd.draws[:50]:
        table.add_row(str(d.draw), d.acta_id, str(d.ordinal), d.detail[:24])
    out.print(table)
    if len(rd.draws) > 50:
        out.print(T(f"… y {len(rd.draws) - 50} más (use --json)",
                    f"… and {len(rd.draws) - 50} more (use --json)"))


@audit_app.command("record")
def record_cmd(
    audit_id: AuditOpt,
    counts: Annotated[Path, typer.Argument(help="CSV: acta_id, v_<code>..., blank, null")],
    replace: Annotated[bool, typer.Option(help="replace earlier counts of the same acta")] =
    False,
    as_json: JsonOpt = False,
) -> None:
    """Registrar recuentos manuales / record hand counts."""
    try:
        with open_store() as store:
            outcome = svc.record(store, audit_id, counts, replace=replace)
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    if as_json:
        emit_json(outcome.to_jsonable())
        return
    res = outcome.result
    out.print(T(f"{res.recorded} recuentos registrados ({res.replaced} reemplazados, "
                f"{res.unchanged} iguales); faltan {res.not_yet_counted} actas sorteadas",
                f"{res.recorded} counts recorded ({res.replaced} replaced, {res.unchanged} "
                f"unchanged); {res.not_yet_counted} drawn actas still to count"))


def _print_measure(m: Measurement) -> None:
    status = {"confirmed": T("CONFIRMADO: el riesgo está bajo el límite",
                             "CONFIRMED: the risk is below the limit"),
              "continue": T("seguir: otra ronda", "continue: another round"),
              "incomplete": T("incompleto: faltan recuentos", "incomplete: counts missing"),
              "full_hand_count": T("RECUENTO MANUAL COMPLETO", "FULL HAND COUNT")}[m.status]
    out.print(f"[bold]{status}[/]")
    out.print(T(f"Riesgo medido ({m.method}) {m.risk:.6f} vs límite {m.risk_limit:.2%}; "
                f"{m.n_draws} extracciones, {m.n_distinct} actas distintas, "
                f"{m.n_with_discrepancy} con discrepancias",
                f"Measured risk ({m.method}) {m.risk:.6f} vs limit {m.risk_limit:.2%}; "
                f"{m.n_draws} draws, {m.n_distinct} distinct actas, "
                f"{m.n_with_discrepancy} with discrepancies"))
    for a in m.assertions:
        km = "—" if a.macro_risk is None else f"{a.macro_risk:.6f}"
        out.print(f"  {a.assertion}: MACRO {km}  ALPHA {a.alpha_risk:.6f}")
    if m.status == "continue":
        out.print(T(f"Próxima ronda: {m.next_round_draws} extracciones más",
                    f"Next round: {m.next_round_draws} more draws"))
    for ne, nn in zip(m.notes_es, m.notes_en, strict=True):
        out.print("[yellow]" + T(ne, nn) + "[/]")


@audit_app.command("measure")
def measure_cmd(audit_id: AuditOpt, as_json: JsonOpt = False) -> None:
    """Medir el riesgo y decidir / measure the risk and decide."""
    from escrutinio.audit.measure import measurement_summary

    try:
        with open_store() as store:
            m = svc.measure(store, audit_id)
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    if as_json:
        emit_json(measurement_summary(m))
        return
    _print_measure(m)


@audit_app.command("report")
def report_cmd(
    audit_id: AuditOpt,
    limit: Annotated[int, typer.Option(help="rows shown (0 = all); --json always has all", min=0)] =
    40,
    only_discrepancies: Annotated[bool, typer.Option("--only-discrepancies")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Discrepancias y contaminaciones por acta / per-acta discrepancies and taints."""
    try:
        with open_store(read_only=True) as store:
            rep = svc.report(store, audit_id)
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    if as_json:
        emit_json(rep)
        return
    a = rep.audit
    out.print(f"[bold]{a.audit_id}[/] — {a.contest_id}, {a.method}/{a.design}, "
              f"{T('límite', 'limit')} {a.risk_limit}, {T('semilla', 'seed')} {a.seed}")
    out.print(T(f"Manifiesto SHA-256 {a.manifest_sha256}; reproducción: manifiesto "
                f"{rep.replay.manifest_ok}, sorteo {rep.replay.draws_ok}, medición "
                f"{rep.replay.measures_ok}",
                f"Manifest SHA-256 {a.manifest_sha256}; replay: manifest "
                f"{rep.replay.manifest_ok}, draws {rep.replay.draws_ok}, measure "
                f"{rep.replay.measures_ok}"))
    _print_measure(rep.measurement)
    rows = [d for d in rep.measurement.discrepancies
            if not only_discrepancies or d.taint != 0]
    table = Table(title=T("Actas sorteadas", "Drawn actas"))
    for col in ("acta", T("veces", "times"), T("informado", "reported"),
                T("auditado", "audited"), T("boletas", "ballots"),
                T("sobredeclaración (votos)", "overstatement (votes)"), "u_p", "taint"):
        table.add_column(col, overflow="fold")
    for d in rows[: limit or None]:
        table.add_row(d.acta_id, str(d.times_drawn), "/".join(map(str, d.reported_votes)),
                      "—" if d.audited_votes is None else "/".join(map(str, d.audited_votes)),
                      f"{d.reported_ballots}/{_fmt(d.audited_ballots)}",
                      "—" if d.overstatement_votes is None
                      else ",".join(map(str, d.overstatement_votes)),
                      f"{d.error_bound:.5f}", f"{d.taint:.5f}")
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
