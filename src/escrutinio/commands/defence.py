"""Defence of the vote: ``verify``, ``pvt``, ``quickcount``, ``contested``.

Presenters only: each command parses its options and files, asks the application service
(:mod:`escrutinio.service.verify`, :mod:`~escrutinio.service.pvt`,
:mod:`~escrutinio.service.quickcount`, :mod:`~escrutinio.service.contested`: the same
answers, with the same defaults, as the HTTP API) and formats the result. Every command
takes ``--json`` and ``--csv PATH`` (a UTF-8 CSV with a byte-order mark, so that a
spreadsheet opens accents correctly: one row per acta / copy / stratum, for a
coordinator).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from escrutinio.commands.common import T, check_text, emit_json, err, fail, open_store, opts, out
from escrutinio.commands.vocab import W, contest_vocabulary
from escrutinio.errors import BadOptionError, EscrutinioError

if TYPE_CHECKING:
    import polars as pl

    from escrutinio.defence.observers import ObserverCopies
    from escrutinio.defence.pvt import PvtResult, PvtUnitsResult
    from escrutinio.domain import Contest
    from escrutinio.service.pvt import ParallelTabulation
    from escrutinio.service.quickcount import QuickCountEstimate

CsvOpt = Annotated[str | None, typer.Option("--csv", help="CSV report for a spreadsheet")]
JsonOpt = Annotated[bool, typer.Option("--json")]
SnapOpt = Annotated[str, typer.Option("--snapshot", "-s",
                                      help="id, prefix, label, latest, first, latest-N")]
ContestOpt = Annotated[str | None, typer.Option(help="contest id")]


def write_csv(frame: pl.DataFrame, path: str) -> None:
    """Spreadsheet-friendly CSV: UTF-8 with BOM; nested values flattened to text; no text
    a spreadsheet would run as a formula (api.export.write_spreadsheet_csv)."""
    from escrutinio.api.export import write_spreadsheet_csv

    write_spreadsheet_csv(frame, path)


def _zone(name: str, option: str) -> None:
    """A time zone of the tz database (``America/Lima``, ``UTC``), or exit 2."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(check_text(name, option))
    except (ZoneInfoNotFoundError, ValueError):
        raise BadOptionError(option, name, "una zona horaria, p. ej. America/Lima o UTC",
                             "a time zone, e.g. America/Lima or UTC") from None


def _as_error(exc: Exception) -> EscrutinioError:
    if isinstance(exc, EscrutinioError):
        return exc
    return EscrutinioError(str(exc), str(exc))


def _pair(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(parts):
        raise EscrutinioError("--pair: dos códigos separados por coma, p. ej. castillo,fujimori",
                              "--pair: two codes separated by a comma, e.g. castillo,fujimori")
    return parts[0], parts[1]


def _copies(paths: list[Path], contest: Contest, tz: str = "UTC") -> ObserverCopies:
    """Observers' copy files as one set, with what the reader assumed of each file. One
    file keeps its own SHA-256 (the hash the web layer gives the same bytes uploaded);
    several get the hash of their hashes (:func:`escrutinio.defence.observers.combine`)."""
    from escrutinio.defence import observers

    parts = [observers.parse_observer_copies(p, contest, assume_tz=tz) for p in paths]
    if len(parts) == 1:
        return parts[0]
    return dataclasses.replace(observers.combine(parts),
                               warnings=tuple(w for p in parts for w in p.warnings))


def _sha256(path: Path) -> str:
    """The SHA-256 of a file read (provenance)."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _report(ans: Any, rows: pl.DataFrame, limit: int, as_json: bool, csv: str | None
            ) -> bool:
    """What every defence command does with its answer first: the CSV report of ``rows``,
    then either the JSON (True: nothing more to print) or the snapshot's header line."""
    if csv:
        write_csv(rows, csv)
    if as_json:
        emit_json(ans.to_jsonable(limit or None))
        return True
    info = ans.snapshot
    out.print(f"[bold]{info.contest_id}[/] — {info.label} ({info.as_of:%Y-%m-%d %H:%M} UTC)")
    return False


def _csv_note(csv: str | None) -> None:
    if csv:
        out.print(T(f"Informe CSV: {csv}", f"CSV report: {csv}"))


PairOpt = Annotated[str | None, typer.Option(
    help="two candidate codes 'a,b' (default: the two leaders among counted actas)")]


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
    app.command("pvt")(pvt)
    app.command("quickcount")(quickcount)
    app.command("contested")(contested)


# --- verify -------------------------------------------------------------------------------

def verify(
    snapshot: SnapOpt = "latest",
    against: Annotated[str, typer.Option(
        help="earlier snapshot to check that counted actas did not change ('previous', "
             "'none' or a reference)")] = "previous",
    contest: ContestOpt = None,
    pair: PairOpt = None,
    limit: Annotated[int, typer.Option(help="rows listed (0 = all)", min=0)] = 30,
    as_json: JsonOpt = False,
    csv: CsvOpt = None,
) -> None:
    """Verificar actas: aritmética y cambios, por materialidad / verify actas: arithmetic
    and changes, ranked by materiality."""
    from escrutinio.service import verify as service

    try:
        with open_store(read_only=True) as store:
            ans = service.verify(store, snapshot,
                                 service.VerifyParams(against=against, pair=_pair(pair)),
                                 contest_id=contest)
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    res = ans.result
    if _report(ans, res.items, limit, as_json, csv):
        return
    out.print(T(res.statement_es, res.statement_en))
    if res.rules:
        out.print(", ".join(f"{k}: {v:,}" for k, v in res.rules.items()))
    table = Table(title=T("Actas por materialidad", "Actas by materiality"))
    for col in ("acta", T("tipo", "kind"), T("regla", "rule"), T("campo", "field"),
                T("estado", "status"), "net", T("cambio", "change")):
        table.add_column(col)
    for r in res.items.head(limit or res.items.height).iter_rows(named=True):
        table.add_row(r["acta_id"], r["kind"], r["rule"], r["field"] or "", r["status"] or "",
                      "" if r["net"] is None else f"{r['net']:+,}",
                      "" if r["net_change"] is None else f"{r['net_change']:+,}")
    out.print(table)
    _csv_note(csv)


# --- pvt ----------------------------------------------------------------------------------

def pvt(
    copies: Annotated[list[Path] | None, typer.Argument(
        help="archivos de copias de personeros (CSV/Parquet) / observers' copy files")] = None,
    snapshot: SnapOpt = "latest",
    contest: ContestOpt = None,
    copy_codes: Annotated[Path | None, typer.Option(
        help="official copy codes (CSV with acta_id|mesa and copy_code|v2_CCOPIA_ACTA)")] = None,
    roll: Annotated[Path | None, typer.Option(
        help="list of every acta id that exists (when the snapshot lacks some)")] = None,
    tz: Annotated[str, typer.Option(help="zone for times written without one")] = "UTC",
    pair: PairOpt = None,
    level: Annotated[str | None, typer.Option(
        help="when the snapshot has only unit totals: the published level to compare at "
             "(default: national when published)")] = None,
    generate: Annotated[Path | None, typer.Option(
        help="write synthetic copies of the snapshot here (with known defects) and exit")] =
    None,
    coverage: Annotated[float, typer.Option(help="--generate: share of actas copied",
        min=0.0, max=1.0)] = 0.5,
    seed: Annotated[int, typer.Option(help="--generate: seed", min=0)] = 0,
    limit: Annotated[int, typer.Option(help="rows listed (0 = all)", min=0)] = 30,
    as_json: JsonOpt = False,
    csv: CsvOpt = None,
) -> None:
    """Tabulación paralela: copias de personeros contra actas oficiales / parallel vote
    tabulation: observers' copies against the official actas."""
    from escrutinio.defence import observers
    from escrutinio.service import pvt as service

    try:
        _zone(tz, "--tz")
        if level is not None:
            from escrutinio.commands.common import level_option

            level = level_option(level).value
        with open_store(read_only=True) as store:
            info = service.official_snapshot(store, snapshot, contest)
            if generate is not None:
                real_codes = observers.read_copy_codes(copy_codes) if copy_codes else None
                g = service.rehearsal_copies(store, info, coverage=coverage, seed=seed,
                                             copy_codes=real_codes)
            else:
                if not copies:
                    raise EscrutinioError("indique al menos un archivo de copias",
                                          "give at least one copies file")
                parsed = _copies(copies, store.contest(info.contest_id), tz)
                tab = service.reconcile(
                    store, info, parsed, service.PvtParams(pair=_pair(pair), level=level),
                    copy_codes=observers.read_copy_codes(copy_codes) if copy_codes else None,
                    copy_codes_source=str(copy_codes) if copy_codes else "",
                    copy_codes_sha256=_sha256(copy_codes) if copy_codes else "",
                    roll=observers.read_acta_list(roll) if roll else None)
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    if generate is not None:
        _write_rehearsal(g, generate, seed, coverage, as_json)
        return
    if not _report(tab, tab.result.copies, limit, as_json, csv):
        _print_pvt(tab, limit, csv)


def _write_rehearsal(g: Any, path: Path, seed: int, coverage: float, as_json: bool) -> None:
    """``pvt --generate``: the synthetic copies, their ground truth and copy codes."""
    from escrutinio.defence import observers

    observers.write_observer_copies(g.copies, path)
    truth = path.with_name(path.name.split(".")[0] + ".truth.csv")
    codes = path.with_name(path.name.split(".")[0] + ".copy_codes.csv")
    g.truth.write_csv(truth)
    g.copy_codes.write_csv(codes)
    if as_json:
        emit_json({"copies": str(path), "truth": str(truth), "copy_codes": str(codes),
                   "n_copies": g.copies.height, "seed": seed, "coverage": coverage,
                   "rates": g.rates,
                   "note": "official actas blanked for 'official_missing' are only in "
                           "the truth file; the store is unchanged"})
        return
    out.print(T(f"{g.copies.height:,} copias sintéticas en {path}; verdad en "
                f"{truth}; códigos de copia en {codes}",
                f"{g.copies.height:,} synthetic copies in {path}; truth in "
                f"{truth}; copy codes in {codes}"))


def _print_pvt(tab: ParallelTabulation, limit: int, csv: str | None) -> None:
    """One formatter for both kinds of reconciliation (after the header line): the
    copies read, the tables of the kind (per acta, or per published unit), then the
    statement, its notes and the reader's warnings."""
    from escrutinio.defence.pvt import PvtResult

    res = tab.result
    s = res.summary
    out.print(T(f"{s.n_copies:,} copias de {s.n_actas_with_copies:,} actas "
                f"({tab.n_rejected:,} filas rechazadas al leer)",
                f"{s.n_copies:,} copies of {s.n_actas_with_copies:,} actas "
                f"({tab.n_rejected:,} rows rejected on reading)"))
    if isinstance(res, PvtResult):
        _pvt_acta_tables(res, limit)
    else:
        _pvt_unit_tables(res, tab.level_labels, limit)
    out.print(T(s.statement_es, s.statement_en))
    for n_es, n_en in zip(s.notes_es, s.notes_en, strict=True):
        out.print(T(n_es, n_en))
    for w_es, w_en in tab.warnings:
        err.print(T(f"[yellow]{w_es}[/]", f"[yellow]{w_en}[/]"))
    _csv_note(csv)


def _pvt_acta_tables(res: PvtResult, limit: int) -> None:
    from escrutinio.defence.pvt import category_label

    s = res.summary
    cat = Table(title=T("Clasificación", "Classification"))
    cat.add_column(T("categoría", "category"))
    cat.add_column("n", justify="right")
    for k, v in s.categories.items():
        cat.add_row(category_label(k, opts.lang), f"{v:,}")
    cat.add_row(category_label("conflicting_copies", opts.lang),
                f"{s.n_conflicting_actas:,} actas")
    cat.add_row(category_label("duplicate_copy", opts.lang), f"{s.n_duplicates:,}")
    out.print(cat)
    table = Table(title=T("Alertas por materialidad", "Alarms by materiality"))
    for col in ("#", "acta", T("copia", "copy"), T("observador", "observer"),
                T("categoría", "category"), T("campos", "fields"), T("cambio", "change"),
                T("% margen", "% margin"), T("¿quién yerra?", "likely wrong")):
        table.add_column(col, overflow="fold")
    for r in res.alarms().head(limit or s.n_alarms).iter_rows(named=True):
        pct = "" if r["pct_of_margin"] is None else f"{r['pct_of_margin']:+.3f}"
        table.add_row(str(r["rank"]), r["acta_id"], r["copy_id"], r["observer_id"],
                      category_label(r["category"], opts.lang), r["differing_fields"] or "",
                      f"{r['net_change']:+,}", pct, r["likely_wrong"])
    out.print(table)


def _pvt_unit_tables(res: PvtUnitsResult, labels: dict[str, tuple[str, str]],
                     limit: int) -> None:
    from escrutinio.domain import level_label

    s = res.summary
    lv = level_label(labels, s.level, opts.lang)
    table = Table(title=T(f"Copias contra totales publicados ({lv})",
                          f"Copies against published totals ({lv})"))
    for col in (T("unidad", "unit"), T("contabilizadas", "counted"), T("con copia", "copied"),
                T("cubierta", "covered"), T("exceso", "excess"),
                T("cambio del margen", "margin change")):
        table.add_column(col, justify="right")
    cand = [c.removeprefix("excess_") for c in res.units.columns if c.startswith("excess_")]
    for r in res.units.head(limit or res.units.height).iter_rows(named=True):
        exc_txt = ", ".join(f"{f.removeprefix('v_')} +{r[f'excess_{f}']:,}" for f in cand
                            if r[f"excess_{f}"])
        table.add_row(r["unit_code"] or T("nacional", "national"),
                      "" if r["actas_counted"] is None else f"{r['actas_counted']:,}",
                      f"{r['copies_actas']:,}",
                      T("todas", "all") if r["full_coverage"] else T("parcial", "partial"),
                      exc_txt, "" if r["gap_change"] is None else f"{r['gap_change']:+,}")
    out.print(table)
    top = Table(title=T("Copias por peso en el margen", "Copies by weight in the margin"))
    for col in ("#", "acta", T("copia", "copy"), T("observador", "observer"),
                T("neto de la copia", "copy net"), T("alcance", "scope")):
        top.add_column(col, overflow="fold")
    for r in res.copies.head(limit or res.copies.height).iter_rows(named=True):
        top.add_row(str(r["rank"]), r["acta_id"], r["copy_id"], r["observer_id"],
                    f"{r['copy_net']:+,}", r["scope"])
    out.print(top)


# --- quickcount ---------------------------------------------------------------------------

def quickcount(
    snapshot: SnapOpt = "latest",
    contest: ContestOpt = None,
    seed: Annotated[str | None, typer.Option(
        help="semilla pública (p. ej. dados lanzados en público) / public seed")] = None,
    mesas: Annotated[int | None, typer.Option(help="sample size in mesas", min=1)] = None,
    moe: Annotated[float | None, typer.Option(
        help="target margin of error (fraction, 0.01 = ±1 point) instead of --mesas",
            min=0.0001, max=0.5)] = None,
    deff: Annotated[float | None, typer.Option(
        help="design effect (default: measured on the snapshot's counted actas)",
            min=0.01, max=100.0)] = None,
    reports: Annotated[list[Path] | None, typer.Option(
        "--reports", help="observers' reports of the sampled mesas (copy format)")] = None,
    simulate_reports: Annotated[bool, typer.Option(
        help="take the sampled mesas' figures from the snapshot (a rehearsal)")] = False,
    fuse: Annotated[str | None, typer.Option(
        help="official count the reports are fused with (snapshot reference; default: "
             "the snapshot itself; 'none': no fusion)")] = None,
    urban_file: Annotated[Path | None, typer.Option(
        help="district table for the urban/rural proxy")] = None,
    no_urban: Annotated[bool, typer.Option(help="strata without urban/rural")] = False,
    pair: PairOpt = None,
    boot: Annotated[int, typer.Option(help="bootstrap replicates", min=1, max=1_000_000)] = 2000,
    limit: Annotated[int, typer.Option(help="rows listed (0 = all)", min=0)] = 30,
    as_json: JsonOpt = False,
    csv: CsvOpt = None,
) -> None:
    """Conteo rápido: diseño, muestra pública SHA-256 y estimación / quick count: design,
    public SHA-256 sample and estimate."""
    from escrutinio.service import quickcount as service

    try:
        if seed is None:
            raise EscrutinioError("falta --seed: la semilla pública de la muestra",
                                  "--seed is missing: the public seed of the sample")
        params = service.QuickCountParams(
            n_mesas=mesas, moe=moe, deff=deff, urban=not no_urban,
            urban_table=str(urban_file) if urban_file else None, pair=_pair(pair),
            n_boot=boot)
        with open_store(read_only=True) as store:
            plan = service.plan(store, snapshot, seed, params, contest_id=contest)
            info = plan.snapshot
            voc = contest_vocabulary(store, info.contest_id, info.snapshot_id)
            # the reference is checked even when there is nothing to fuse yet
            partner = service.fuse_partner(
                store, info, service.FuseWith.SNAPSHOT if fuse is None
                else None if fuse == "none" else fuse)
            estimation = None
            if reports or simulate_reports:
                copies = (_copies(reports, store.contest(info.contest_id)) if reports
                          else None)
                estimation = service.estimate(store, plan, copies, fuse=partner)
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    for w_es, w_en in plan.warnings:
        err.print(T(f"[yellow]{w_es}[/]", f"[yellow]{w_en}[/]"))
    sample = plan.sample
    assert sample is not None  # a seed was given
    if csv:
        write_csv(sample if estimation is None else plan.design.table(), csv)
    if as_json:
        payload: dict[str, Any] = {
            **plan.to_jsonable(limit or None),
            "urban_rule": T(plan.urban_rule_es, plan.urban_rule_en),
            "estimate": None,
            "n_reports_outside_sample": 0 if estimation is None else estimation.refused.height}
        if estimation is not None:
            payload.update(estimation.to_jsonable(limit or None))
        emit_json(payload)
        return
    de = plan.design_effect
    out.print(f"[bold]{info.contest_id}[/] — {T('universo', 'universe')}: "
              f"{plan.universe.height:,} {W(voc, 'polling_stations')}, "
              f"{plan.design.n_strata} {T('estratos', 'strata')} "
              f"({T(plan.urban_rule_es, plan.urban_rule_en)})")
    if de is not None and plan.moe is not None:
        out.print(voc.localize(T(
                    f"Efecto de diseño medido: {de.deff_unstratified:.1f} sin estratos, "
                    f"{de.deff_stratified:.1f} con estratos; {de.mean_votes_per_mesa:.0f} votos "
                    "de ambos candidatos por mesa",
                    f"Measured design effect: {de.deff_unstratified:.1f} unstratified, "
                    f"{de.deff_stratified:.1f} stratified; {de.mean_votes_per_mesa:.0f} "
                    "two-candidate votes per mesa"), opts.lang))
        out.print(voc.localize(T(
            f"Muestra: {plan.design.n_mesas:,} mesas → margen de error "
            f"±{100 * plan.moe:.2f} puntos (95%)",
            f"Sample: {plan.design.n_mesas:,} mesas → margin of error "
            f"±{100 * plan.moe:.2f} points (95%)"), opts.lang))
    if estimation is None:
        table = Table(title=T(f"Muestra pública (semilla {seed!r})",
                              f"Public sample (seed {seed!r})"))
        for col in (T("estrato", "stratum"), "#", "acta", "SHA-256"):
            table.add_column(col)
        for r in sample.head(limit or sample.height).iter_rows(named=True):
            table.add_row(r["stratum"], str(r["rank"]), r["acta_id"], r["sha256"][:16] + "…")
        out.print(table)
    else:
        n_out = estimation.refused.height
        if n_out:
            err.print(voc.localize(T(
                f"[yellow]{n_out:,} reportes de mesas fuera de la muestra: "
                "descartados[/]", f"[yellow]{n_out:,} reports of mesas outside "
                "the sample: discarded[/]"), opts.lang))
        for w in estimation.warnings:
            err.print(f"[yellow]{T(w['es'], w['en'])}[/]")
        _print_estimate(estimation.estimate, T("Estimación", "Estimate"), voc)
        if estimation.fusion is not None and estimation.fused_with is not None:
            at = f"{estimation.fused_with.as_of:%Y-%m-%d %H:%M} UTC"
            _print_estimate(estimation.fusion, T(f"Fusión con el conteo oficial de {at}",
                                                 f"Fused with the official count of {at}"),
                            voc)
    _csv_note(csv)


def _print_estimate(e: QuickCountEstimate, title: str, voc: Any) -> None:
    table = Table(title=f"{title} ({e.n_reports:,} {T('reportes', 'reports')})")
    for col in (T("método", "method"), f"% {e.candidate_a}", T("inferior", "lower"),
                T("superior", "upper")):
        table.add_column(col)
    for iv in (e.ratio, e.model, e.combined):
        table.add_row(iv.method, f"{100 * iv.estimate:.2f}", f"{100 * iv.lower:.2f}",
                      f"{100 * iv.upper:.2f}")
    out.print(table)
    out.print(voc.localize(T(e.call_es, e.call_en), opts.lang))


# --- contested ----------------------------------------------------------------------------

def contested(
    snapshot: SnapOpt = "latest",
    contest: ContestOpt = None,
    history: Annotated[bool, typer.Option(
        "--history/--no-history",
        help="learn resolution rates from earlier snapshots")] = True,
    prior: Annotated[str, typer.Option(
        help="country (the country pack's rates; Peru: 2021) | 2021 | historical")] =
    "country",
    strength: Annotated[float, typer.Option(help="prior weight in pseudo-actas", min=0.0)] = 20.0,
    request: Annotated[Path | None, typer.Option(
        help="actas a party asks to annul (CSV with acta_id|mesa, or one id per line)")] =
    None,
    pair: PairOpt = None,
    sims: Annotated[int, typer.Option(help="simulations", min=1, max=10_000_000)] = 20_000,
    seed: Annotated[int, typer.Option(help="seed of the simulations", min=0)] = 0,
    limit: Annotated[int, typer.Option(help="rows listed (0 = all)", min=0)] = 30,
    as_json: JsonOpt = False,
    csv: CsvOpt = None,
) -> None:
    """Actas en disputa: cotas, probabilidad y el menor conjunto que cambiaría el
    resultado / contested actas: bounds, probability and the smallest flipping set."""
    from escrutinio.defence.observers import read_acta_list
    from escrutinio.service import contested as service

    try:
        params = service.ContestedParams(
            history=history, prior=prior, strength=strength,
            requested=tuple(read_acta_list(request)) if request else None, pair=_pair(pair),
            n_sims=sims, seed=seed)
        with open_store(read_only=True) as store:
            ans = service.contested(store, snapshot, params, contest_id=contest)
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    res = ans.result
    if _report(ans, res.actas, limit, as_json, csv):
        return
    out.print(T(res.summary_es, res.summary_en))
    d = res.distribution
    if d is not None:
        table = Table(title=T("Distribución (tasas de resolución)",
                              "Distribution (resolution rates)"))
        for col in ("", "5%", "25%", "50%", "75%", "95%"):
            table.add_column(col, justify="right")
        mq, aq = d.margin_quantiles, d.annulled_quantiles
        table.add_row(T("margen", "margin"),
                      *[f"{mq[k]:,.0f}" for k in ("p05", "p25", "p50", "p75", "p95")])
        table.add_row(T("anuladas", "annulled"),
                      *[f"{aq[k]:,.0f}" for k in ("p05", "p25", "p50", "p75", "p95")])
        out.print(table)
    if res.request is not None:
        req = res.request
        out.print(T(f"Pedido de nulidad: {req.n_requested:,} actas ({req.n_found:,} existen); "
                    f"si se anularan todas, margen {req.margin_if_all_annulled:,}. "
                    + req.flip.explanation_es,
                    f"Nullity request: {req.n_requested:,} actas ({req.n_found:,} exist); if all "
                    f"were annulled, margin {req.margin_if_all_annulled:,}. "
                    + req.flip.explanation_en))
    table = Table(title=T("Actas en disputa", "Contested actas"))
    for col in ("acta", T("tipo", "type"), T(f"prov. {res.leader}", f"prov. {res.leader}"),
                T(f"prov. {res.runner_up}", f"prov. {res.runner_up}"), "net",
                "P(anul.)" if opts.lang == "es" else "P(annul.)", T("en el conjunto", "in set")):
        table.add_column(col)
    for r in res.actas.head(limit or res.actas.height).iter_rows(named=True):
        table.add_row(r["acta_id"], r["observation"] or "",
                      str(r[f"prov_{res.leader}"] if r[f"prov_{res.leader}"] is not None
                          else "—"),
                      str(r[f"prov_{res.runner_up}"] if r[f"prov_{res.runner_up}"] is not None
                          else "—"),
                      "—" if r["net"] is None else f"{r['net']:+,}", f"{r['p_annulled']:.2f}",
                      "✓" if r["in_flip_set"] else "")
    out.print(table)
    _csv_note(csv)
