"""``escrutinio project`` and ``escrutinio replay``: the projection of the final result
and its proof by replay (docs/projection.md).

Presenters: they parse the options, call :func:`escrutinio.service.project` and
:func:`escrutinio.service.replay` (the one set of defaults: ``service.DEFAULT_*``) and
format the results (``--json`` for the machine-readable twin). Register with
``COMMAND_MODULES = (..., "projection")``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from escrutinio import service
from escrutinio.commands.common import T, choice, emit_json, err, fail, open_store, out
from escrutinio.domain import Contest, SnapshotKind, short_name
from escrutinio.errors import EscrutinioError
from escrutinio.projection.model import ModelParams
from escrutinio.projection.result import CallStatus, Component, Projection


def parse_blocs(text: str | None) -> dict[str, list[str]] | None:
    """``"castillo=perulibre+jpp;fujimori=fp+rp"`` -> {"castillo": [...], ...}."""
    if not text:
        return None
    blocs: dict[str, list[str]] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise EscrutinioError(
                f"--blocs: bloque mal escrito {part!r}: use nombre=col1+col2;otro=col3",
                f"--blocs: malformed bloc {part!r}: use name=col1+col2;other=col3")
        name, cols = part.split("=", 1)
        blocs[name.strip()] = [c.strip() for c in cols.split("+") if c.strip()]
    return blocs


def _print_projection(p: Projection, contest: Contest) -> None:
    from escrutinio.countries import has_runoff

    names = {c.code: c.name for c in contest.candidates}
    top_two = p.kind == "first_round" and has_runoff(contest)  # the runoff ballot
    out.print(f"[bold]{contest.name}[/] — {T('proyección', 'projection')} "
              f"({p.basis}, {p.n_simulations:,} {T('simulaciones', 'simulations')}), "
              f"{T('instantánea', 'snapshot')} {p.snapshot_id[:12]}"
              + (f", {p.as_of:%Y-%m-%d %H:%M} UTC" if p.as_of else ""))
    table = Table()
    for col in (T("candidato", "candidate"), T("contados", "counted"),
                T("por venir", "to come"), T("mediana final", "final median"),
                T("intervalo 90%", "90% interval"), T("P(gana)", "P(win)"),
                *([T("P(2 primeros)", "P(top two)")] if top_two else [])):
        table.add_column(col, justify="right" if col != T("candidato", "candidate") else "left")
    for c in sorted(p.candidates, key=lambda c: -c.median):  # every candidate
        iv = next(i for i in c.intervals if abs(i.level - 0.9) < 1e-9)
        table.add_row(c.name[:36], f"{c.counted:,}", f"{c.expected_remaining:,.0f}",
                      f"{c.median:,.0f}", f"[{iv.lower:,.0f}, {iv.upper:,.0f}]",
                      f"{100 * c.p_win:.1f}%",
                      *([f"{100 * (c.p_top_two or 0):.1f}%"] if top_two else []))
    out.print(table)
    for r in p.races:
        a, b = names.get(r.leader, r.leader), names.get(r.trailer, r.trailer)
        ivs = "; ".join(f"{100 * iv.level:.0f}% [{iv.lower:+,.0f}, {iv.upper:+,.0f}]"
                        for iv in r.intervals)
        out.print(T(f"Margen final {a} − {b}: mediana {r.median:+,.0f} (contado "
                    f"{r.counted_margin:+,}); {ivs}; P({a} adelante) "
                    f"{100 * r.p_leader_ahead:.1f}%",
                    f"Final margin {a} − {b}: median {r.median:+,.0f} (counted "
                    f"{r.counted_margin:+,}); {ivs}; P({a} ahead) "
                    f"{100 * r.p_leader_ahead:.1f}%"))
        style = "bold green" if r.call.status is CallStatus.CALLED else "bold yellow"
        out.print(f"  [{style}]{T(r.call.label_es, r.call.label_en)}[/]")
    for comp in p.components:
        out.print(T(f"  {comp.label_es}: {comp.count_text('es')}; cambio esperado del margen "
                    f"{comp.expected_margin_change:+,.0f} ± {comp.sd_margin_change:,.0f}",
                    f"  {comp.label_en}: {comp.count_text('en')}; expected change of the margin "
                    f"{comp.expected_margin_change:+,.0f} ± {comp.sd_margin_change:,.0f}"))
    if p.hurdle.leader:
        es, en = p.hurdle.sentence(names)
        out.print(T(f"Umbral: {es}", f"Hurdle: {en}"))
    if p.p_outright is not None:
        out.print(T(f"P(alguien gana en primera vuelta): {100 * p.p_outright:.2f}%",
                    f"P(someone wins outright): {100 * p.p_outright:.2f}%"))
    out.print(T(f"Regla de proyección: {p.call.rule.description_es}",
                f"Call rule: {p.call.rule.description_en}"))
    base = p.diagnostics.get("baseline")
    if isinstance(base, dict):
        out.print(T(f"Línea de base: {base['es']}", f"Baseline: {base['en']}"))
    else:
        out.print(T("Sin línea de base", "No baseline"))
    arrival = p.diagnostics.get("arrival")
    if isinstance(arrival, dict):
        n_b, n_h = int(arrival.get("n_backtests", 0)), int(arrival.get("n_history", 0))
        if n_b:
            out.print(T(f"Desvío de llegada: aprendido de {n_b} cortes anteriores de este "
                        f"conteo ({n_h} disponibles)",
                        f"Arrival shift: learned from {n_b} earlier cuts of this count "
                        f"({n_h} available)"))
        elif n_h and not arrival.get("n_counted_before", 1):
            out.print(T(f"Desvío de llegada: estimado de esta sola instantánea (ninguna acta "
                        f"de los {n_h} cortes anteriores coincide con las de esta: ¿otros "
                        "identificadores?)",
                        f"Arrival shift: sized from this snapshot alone (no acta of the {n_h} "
                        "earlier cuts matches this one's: different ids?)"))
        elif n_h:
            out.print(T(f"Desvío de llegada: estimado de esta sola instantánea ({n_h} cortes "
                        "anteriores, ninguno con un lote suficiente desde entonces)",
                        f"Arrival shift: sized from this snapshot alone ({n_h} earlier cuts, "
                        "none with a large enough batch since)"))
        else:
            out.print(T("Desvío de llegada: estimado de esta sola instantánea (no hay cortes "
                        "anteriores por acta)",
                        "Arrival shift: sized from this snapshot alone (no earlier per-acta "
                        "cuts)"))
    review = p.diagnostics.get("review_outcomes")
    held = any(c.component is Component.JEE for c in p.components)
    if held and isinstance(review, dict) and review.get("basis") != "peru":
        out.print(T(f"Actas en revisión: {review['es']}", f"Sheets under review: "
                    f"{review['en']}"))
    warns = p.diagnostics.get("warnings")
    if not isinstance(warns, list) or not warns:
        cw = p.diagnostics.get("coverage_warning")
        warns = [cw] if isinstance(cw, dict) else []
    for w in warns:
        out.print(f"[bold yellow]{T('Atención', 'Warning')}:[/] {T(w['es'], w['en'])}")


def _kind(kind: str | None) -> SnapshotKind | None:
    if not kind:
        return None
    try:
        return SnapshotKind(kind)
    except ValueError as exc:
        raise EscrutinioError(f"--kind: use actas o units, no {kind!r}",
                              f"--kind: use actas or units, not {kind!r}") from exc


def register(app: typer.Typer) -> None:
    @app.command()
    def project(
        snapshot: Annotated[str, typer.Option("--snapshot", "-s", help="id, prefix, label, "
                                              "latest, first, latest-N")] = "latest",
        contest: Annotated[str | None, typer.Option(help="contest id")] = None,
        kind: Annotated[str | None, typer.Option(help="actas | units")] = None,
        baseline_contest: Annotated[str | None, typer.Option(
            help="contienda de la línea de base (p. ej. la primera vuelta) / baseline "
                 "contest (e.g. the first round)")] = None,
        baseline: Annotated[str, typer.Option(help="instantánea de la línea de base / "
                                              "baseline snapshot")] = "latest",
        no_baseline: Annotated[bool, typer.Option(
            "--no-baseline", help="sin la vuelta anterior como línea de base por omisión / "
                                  "without the earlier round as the default baseline")] = False,
        blocs: Annotated[str | None, typer.Option(
            help="bloques: nombre=col+col;... / blocs: name=col+col;...")] = None,
        sims: Annotated[int, typer.Option(help="simulaciones / simulations",
            min=1, max=10_000_000)] = service.DEFAULT_SIMS,
        seed: Annotated[int, typer.Option(help="semilla / seed", min=0)] =
        service.DEFAULT_SEED,
        with_national: Annotated[bool, typer.Option(
            help="completar unidades con el total nacional / complete units with the "
                 "national total")] = True,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Proyección del resultado final con incertidumbre / projection of the final
        result with uncertainty."""
        try:
            with open_store(read_only=True) as store:
                cid = service.default_contest(store, contest)
                info = store.snapshot(snapshot, contest_id=cid,
                                      kind=_kind(kind))
                params = ModelParams(n_sims=sims, seed=seed)
                proj = service.project(store, info, params=params,
                                       baseline_contest=baseline_contest,
                                       baseline_ref=baseline, blocs=parse_blocs(blocs),
                                       with_national=with_national,
                                       use_default_baseline=not no_baseline)
                c = store.contest(cid)
        except (EscrutinioError, ValueError) as exc:
            if not isinstance(exc, EscrutinioError):
                exc = EscrutinioError(str(exc), str(exc))
            fail(exc, as_json)
            return
        if as_json:
            emit_json(proj)
            return
        _print_projection(proj, c)

    @app.command()
    def replay(
        contest: Annotated[str | None, typer.Option(help="contest id")] = None,
        mode: Annotated[str, typer.Option(
            help="auto | actas (orden de llegada reconstruido desde cortes nacionales / "
                 "arrival order rebuilt from national cuts) | snapshots (instantáneas por "
                 "acta tal como se publicaron / per-acta snapshots as published) | units | "
                 "series (solo totales nacionales / national totals only)")] = "auto",
        final: Annotated[str | None, typer.Option(
            help="instantánea final (por defecto la última por acta) / final snapshot "
                 "(default: the latest per-acta one)")] = None,
        baseline_contest: Annotated[str | None, typer.Option(
            help="contienda de la línea de base / baseline contest")] = None,
        baseline: Annotated[str, typer.Option(help="baseline snapshot")] = "latest",
        no_baseline: Annotated[bool, typer.Option(
            "--no-baseline", help="sin la vuelta anterior como línea de base por omisión / "
                                  "without the earlier round as the default baseline")] = False,
        blocs: Annotated[str | None, typer.Option(help="name=col+col;...")] = None,
        sims: Annotated[int, typer.Option(help="simulaciones / simulations",
            min=1, max=10_000_000)] = service.DEFAULT_SIMS,
        seed: Annotated[int, typer.Option(help="semilla del modelo / model seed", min=0)] =
        service.DEFAULT_SEED,
        order_seed: Annotated[int, typer.Option(help="semilla del orden / order seed",
            min=0)] = service.DEFAULT_ORDER_SEED,
        tilt_by: Annotated[str, typer.Option(help=" | ".join(service.TILT_BY))] =
        service.DEFAULT_TILT_BY,
        from_pct: Annotated[float, typer.Option(help="cobertura desde % contabilizado / "
                                                "coverage from % counted",
                                                    min=0.0, max=100.0)] =
        service.DEFAULT_FROM_PCT,
        svg: Annotated[Path | None, typer.Option("--svg", help="gráfico SVG / SVG chart")] =
        None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Reproducir un conteo real y calificar la proyección / replay a real count and
        score the projection."""
        def progress(i: int, n: int) -> None:
            if not as_json:
                err.print(f"\r{T('corte', 'cut')} {i}/{n}", end="")

        try:
            choice(mode, service.REPLAY_MODES, "--mode")
            choice(tilt_by, service.TILT_BY, "--tilt-by")
            parse_blocs(blocs)
            with open_store(read_only=True) as store:
                c = store.contest(service.default_contest(store, contest))
                if baseline_contest is not None:  # unknown: exit 2, the known ones listed
                    store.snapshot(baseline, contest_id=store.contest(baseline_contest).id)
                res = service.replay(store, params=ModelParams(n_sims=sims, seed=seed),
                                     contest_id=c.id, mode=mode, final_ref=final,
                                     baseline_contest=baseline_contest, baseline_ref=baseline,
                                     blocs=parse_blocs(blocs), order_seed=order_seed,
                                     tilt_by=tilt_by, from_pct=from_pct,
                                     use_default_baseline=not no_baseline, progress=progress)
            if not as_json:
                err.print("")
        except (EscrutinioError, ValueError) as exc:
            if not isinstance(exc, EscrutinioError):
                exc = EscrutinioError(str(exc), str(exc))
            fail(exc, as_json)
            return
        if svg is not None:
            from escrutinio.projection.replay import replay_svg

            svg.write_text(replay_svg(res, title=c.name,
                                      names={x.code: x.name for x in c.candidates}))
        if as_json:
            emit_json(res)
            return
        _print_replay(res, c)


def _without_time(label: str, as_of: datetime | None) -> str:
    """A snapshot label without the time the table shows beside it."""
    if as_of is None:
        return label
    stamp = as_of.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return label.replace(stamp, "").strip() or label


def _print_replay(res: Any, c: Contest) -> None:
    names = {x.code: x.name for x in c.candidates}
    a, b = names.get(res.candidate_a, res.candidate_a), names.get(res.candidate_b,
                                                                  res.candidate_b)
    out.print(f"[bold]{c.name}[/] — replay ({res.basis}, {res.n_cuts} "
              f"{T('cortes', 'cuts')}); {T('margen final', 'final margin')} {a} − {b}: "
              f"{res.final_margin:+,}")
    fp = res.final_pct_counted
    if fp is not None and fp < 100.0:
        out.print("[yellow]" + T(
            f"Atención: el estado tomado como final tiene {fp:.2f}% de actas contabilizadas: "
            "cada corte se mide contra un conteo que aún no había terminado (dé el final "
            "con --final)",
            f"Warning: the state scored as the final has {fp:.2f}% of actas counted: every "
            "cut is measured against a count that had not ended (give the final with "
            "--final)") + "[/]")
    table = Table()
    # cuts of several snapshots at one time (departments, provinces, districts): say which
    times = [x.as_of for x in res.cuts]
    shared = len(set(times)) < len(times)
    for col in (T("corte (UTC)", "cut (UTC)"), *([T("instantánea", "snapshot")] if shared
                                                  else []),
                T("% contab.", "% counted"),
                T("conteo", "raw"), T("ingenuo", "naive"), T("proyección", "projection"),
                T("intervalo 90%", "90% interval"), f"P({short_name(a)})",
                T("proyección", "call")):
        table.add_column(col)
    for x in res.cuts:
        lo, hi = x.intervals.get("0.9", (float("nan"), float("nan")))
        call = (names.get(x.call_winner, x.call_winner) if x.call_status == "called"
                else T("muy ajustado", "too close"))
        table.add_row(f"{x.as_of:%d %b %H:%M}" if x.as_of else x.label,
                      *([_without_time(x.label, x.as_of)[:40]] if shared else []),
                      f"{x.pct_counted:.2f}" if x.pct_counted is not None else "—",
                      f"{x.raw_margin:+,}",
                      f"{x.naive_margin:+,.0f}" if x.naive_margin is not None else "—",
                      f"{x.median:+,.0f}", f"[{lo:+,.0f}, {hi:+,.0f}]", f"{x.p_a:.3f}",
                      ("[red]" + call + " ✗[/]") if x.wrong_call else call)
    out.print(table)
    cov = Table(title=T("Cobertura", "Coverage"))
    for col in (T("nivel", "level"), T("cortes", "cuts"), T("cubre", "covered"),
                T(f"desde {res.coverage_from_pct:g}%", f"from {res.coverage_from_pct:g}%")):
        cov.add_column(col)
    for cv in res.coverage:
        cov.add_row(f"{100 * cv.level:.0f}%", str(cv.n_cuts), f"{100 * cv.share:.0f}%",
                    f"{100 * cv.share_from:.0f}%" if cv.share_from is not None else "—")
    out.print(cov)
    fs, fp = res.first_stable_call, res.first_stable_p90
    out.print(f"Brier {res.brier:.4f}; log {res.log_score:.4f}; "
              + T(f"proyecciones erradas: {len(res.wrong_calls)}",
                  f"wrong calls: {len(res.wrong_calls)}"))
    out.print(T("Proyección correcta y estable desde: ", "Call correct and stable from: ")
              + (f"{fs.pct_counted:.2f}%" if fs and fs.pct_counted is not None else
                 (fs.label if fs else T("nunca", "never"))))
    out.print(T("P ≥ 0,9 y se mantiene desde: ", "P ≥ 0.9 and stays from: ")
              + (f"{fp.pct_counted:.2f}%" if fp and fp.pct_counted is not None else
                 (fp.label if fp else T("nunca", "never"))))
    for sk in res.skipped:
        out.print(f"[yellow]{T('Corte omitido', 'Skipped cut')} {sk.label}:[/] "
                  f"{T(sk.reason_es, sk.reason_en)}")
    for bs in res.baselines:
        out.print(f"  {bs.name}: {T('error medio', 'mean |error|')} {bs.mean_abs_error:,.0f}; "
                  + T(f"líder equivocado en {bs.wrong_leader_cuts} cortes",
                      f"wrong leader at {bs.wrong_leader_cuts} cuts"))
