"""Defence of the vote: ``verify``, ``pvt``, ``quickcount``, ``contested``.

Presenters only: numbers come from :mod:`escrutinio.defence`. Every command takes
``--json`` and ``--csv PATH`` (a UTF-8 CSV with a byte-order mark, so that a spreadsheet
opens accents correctly: one row per acta / copy / stratum, for a coordinator).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.table import Table

from escrutinio.commands.common import T, check_text, emit_json, err, fail, open_store, opts, out
from escrutinio.commands.vocab import W, contest_vocabulary, localized
from escrutinio.domain import Contest, SnapshotKind
from escrutinio.errors import BadOptionError, EscrutinioError
from escrutinio.provenance import to_jsonable
from escrutinio.store.base import SnapshotInfo, Store

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


def _acta_snapshot(store: Store, ref: str, contest_id: str | None) -> tuple[SnapshotInfo,
                                                                            Contest]:
    from escrutinio.service import default_contest

    cid = default_contest(store, contest_id)
    info = store.snapshot(ref, contest_id=cid, kind=SnapshotKind.ACTAS)
    return info, store.contest(cid)


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
    from escrutinio.defence.verify import verify_actas

    try:
        with open_store(read_only=True) as store:
            info, c = _acta_snapshot(store, snapshot, contest)
            frame = store.load_actas(info.snapshot_id)
            reports = store.load_row_reports(info.snapshot_id)
            prev = None
            ids = [info.snapshot_id]
            if against != "none":
                snaps = store.list_snapshots(c.id, SnapshotKind.ACTAS)
                if against == "previous":
                    before = [s for s in snaps if s.as_of < info.as_of]
                    pinfo = before[-1] if before else None
                else:
                    pinfo = store.snapshot(against, contest_id=c.id, kind=SnapshotKind.ACTAS)
                if pinfo is not None and pinfo.snapshot_id != info.snapshot_id:
                    prev = store.load_actas(pinfo.snapshot_id)
                    ids.append(pinfo.snapshot_id)
            res = verify_actas(frame, c, reports, previous=prev, pair=_pair(pair),
                               snapshot_ids=ids)
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    if csv:
        write_csv(res.items, csv)
    if as_json:
        emit_json(res.to_jsonable(limit or None))
        return
    out.print(f"[bold]{c.id}[/] — {info.label} ({info.as_of:%Y-%m-%d %H:%M} UTC)")
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
    if csv:
        out.print(T(f"Informe CSV: {csv}", f"CSV report: {csv}"))


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
    from escrutinio.defence.pvt import category_label, reconcile

    try:
        _zone(tz, "--tz")
        if level is not None:
            from escrutinio.commands.common import level_option

            level = level_option(level).value
        with open_store(read_only=True) as store:
            info, c, official, areas = _pvt_official(store, snapshot, contest)
        if info.kind is SnapshotKind.UNITS:
            if generate is not None:
                raise EscrutinioError(
                    "--generate necesita una instantánea por acta",
                    "--generate needs a per-acta snapshot")
            _pvt_units(copies, info, c, official, areas, tz, pair, level, limit, as_json,
                       csv)
            return
        if generate is not None:
            from escrutinio.defence.generator import generate_copies

            real_codes = observers.read_copy_codes(copy_codes) if copy_codes else None
            g = generate_copies(official, c, coverage=coverage, seed=seed,
                                copy_codes=real_codes)
            observers.write_observer_copies(g.copies, generate)
            truth = generate.with_name(generate.name.split(".")[0] + ".truth.csv")
            codes = generate.with_name(generate.name.split(".")[0] + ".copy_codes.csv")
            g.truth.write_csv(truth)
            g.copy_codes.write_csv(codes)
            payload = {"copies": str(generate), "truth": str(truth), "copy_codes": str(codes),
                       "n_copies": g.copies.height, "seed": seed, "coverage": coverage,
                       "rates": g.rates,
                       "note": "official actas blanked for 'official_missing' are only in "
                               "the truth file; the store is unchanged"}
            if as_json:
                emit_json(payload)
            else:
                out.print(T(f"{g.copies.height:,} copias sintéticas en {generate}; verdad en "
                            f"{truth}; códigos de copia en {codes}",
                            f"{g.copies.height:,} synthetic copies in {generate}; truth in "
                            f"{truth}; copy codes in {codes}"))
            return
        if not copies:
            raise EscrutinioError("indique al menos un archivo de copias",
                                  "give at least one copies file")
        parts = [observers.parse_observer_copies(p, c, assume_tz=tz) for p in copies]
        parsed = observers.combine(parts)
        # official copy codes: --copy-codes, else the snapshot's own source file when it
        # has them (ONPE's v2_CCOPIA_ACTA), so codes on the copies are never ignored
        codes_df = (observers.read_copy_codes(copy_codes) if copy_codes else
                    observers.source_copy_codes(info.source_uri, info.source_sha256)
                    if parsed.frame["copy_code"].is_not_null().any() else None)
        codes_from = (str(copy_codes) if copy_codes else
                      f"snapshot source {info.source_uri}" if codes_df is not None else "")
        roll_s = (pl.Series("acta_id", observers.read_acta_list(roll)) if roll else None)
        res = reconcile(parsed.frame, official, c, copy_codes=codes_df, pair=_pair(pair),
                        snapshot_ids=[info.snapshot_id], copies_sha256=parsed.source_sha256,
                        rejected=parsed.rejected, roll=roll_s, copy_codes_source=codes_from)
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    if csv:
        write_csv(res.copies, csv)
    if as_json:
        emit_json(res.to_jsonable(limit or None))
        return
    s = res.summary
    out.print(f"[bold]{c.id}[/] — {info.label}")
    out.print(T(f"{s.n_copies:,} copias de {s.n_actas_with_copies:,} actas "
                f"({parsed.n_rejected:,} filas rechazadas al leer)",
                f"{s.n_copies:,} copies of {s.n_actas_with_copies:,} actas "
                f"({parsed.n_rejected:,} rows rejected on reading)"))
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
    out.print(T(s.statement_es, s.statement_en))
    for n_es, n_en in zip(s.notes_es, s.notes_en, strict=True):
        out.print(T(n_es, n_en))
    for w_es, w_en in parsed.warnings:
        err.print(T(f"[yellow]{w_es}[/]", f"[yellow]{w_en}[/]"))
    if csv:
        out.print(T(f"Informe CSV: {csv}", f"CSV report: {csv}"))


def _pvt_official(store: Store, ref: str, contest_id: str | None
                  ) -> tuple[SnapshotInfo, Contest, pl.DataFrame, Any]:
    """The official side of a parallel tabulation: a per-acta snapshot when ``ref`` names
    one (or, for 'latest', when any exists); otherwise the unit snapshot ``ref`` names,
    with the areas of every acta from the latest per-acta snapshot of the contest (to
    aggregate copies to the published level), or ``None``."""
    from escrutinio.errors import NotFoundError
    from escrutinio.service import default_contest

    cid = default_contest(store, contest_id)
    try:
        info = store.snapshot(ref, contest_id=cid, kind=SnapshotKind.ACTAS)
    except NotFoundError:
        info = store.snapshot(ref, contest_id=cid)
    c = store.contest(cid)
    if info.kind is SnapshotKind.ACTAS:
        return info, c, store.load_actas(info.snapshot_id), None
    from escrutinio.service import area_labels

    actas = store.list_snapshots(cid, SnapshotKind.ACTAS)
    areas = None
    if actas:
        areas = store.load_actas(actas[-1].snapshot_id).select(
            "acta_id", "area1_code", "area2_code", "area3_code")
    return info, c, store.load_units(info.snapshot_id), (areas, area_labels(store, cid))


def _pvt_units(copies: list[Path] | None, info: SnapshotInfo, c: Contest,
               units: pl.DataFrame, where: Any, tz: str, pair: str | None,
               level: str | None, limit: int, as_json: bool, csv: str | None) -> None:
    """``pvt`` against a snapshot of published totals (no per-acta figures); ``where``:
    (areas of every acta or None, the country's level names)."""
    areas, labels = where
    from escrutinio.defence import observers
    from escrutinio.defence.pvt import reconcile_units

    try:
        if not copies:
            raise EscrutinioError("indique al menos un archivo de copias",
                                  "give at least one copies file")
        parsed = observers.combine([observers.parse_observer_copies(p, c, assume_tz=tz)
                                    for p in copies])
        res = reconcile_units(parsed.frame, units, c, level=level, acta_areas=areas,
                              pair=_pair(pair), snapshot_ids=[info.snapshot_id],
                              copies_sha256=parsed.source_sha256, rejected=parsed.rejected,
                              level_labels=labels)
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    if csv:
        write_csv(res.copies, csv)
    if as_json:
        emit_json(res.to_jsonable(limit or None))
        return
    s = res.summary
    out.print(f"[bold]{c.id}[/] — {info.label} ({info.as_of:%Y-%m-%d %H:%M} UTC)")
    out.print(T(f"{s.n_copies:,} copias de {s.n_actas_with_copies:,} actas "
                f"({parsed.n_rejected:,} filas rechazadas al leer)",
                f"{s.n_copies:,} copies of {s.n_actas_with_copies:,} actas "
                f"({parsed.n_rejected:,} rows rejected on reading)"))
    from escrutinio.domain import level_label

    lv = level_label(labels, s.level, opts.lang)
    table = Table(title=T(f"Copias contra totales publicados ({lv})",
                          f"Copies against published totals ({lv})"))
    for col in (T("unidad", "unit"), T("contabilizadas", "counted"), T("con copia", "copied"),
                T("cubierta", "covered"), T("exceso", "excess"),
                T("cambio del margen", "margin change")):
        table.add_column(col, justify="right")
    cand = ["cast", "blank", "null", *c.candidate_columns]
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
    out.print(T(s.statement_es, s.statement_en))
    for n_es, n_en in zip(s.notes_es, s.notes_en, strict=True):
        out.print(T(n_es, n_en))
    if csv:
        out.print(T(f"Informe CSV: {csv}", f"CSV report: {csv}"))


# --- quickcount ---------------------------------------------------------------------------

def _universe(store: Store, info: SnapshotInfo, c: Contest, urban_file: Path | None,
              no_urban: bool) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    from escrutinio.defence.strata import assign_strata, peru_urban_districts

    frame = store.load_actas(info.snapshot_id)
    urban = None
    note = T("sin división urbano/rural", "no urban/rural split")
    if not no_urban:
        path = urban_file
        if path is None and c.country == "PE":
            from escrutinio import datasets

            try:
                path = datasets.locate("peru-geography", "ubigeo_distrito.csv")
            except EscrutinioError as exc:
                err.print(T(f"[yellow]sin tabla de distritos: {exc.message_es}[/]",
                            f"[yellow]no district table: {exc.message_en}[/]"))
        if path is not None:
            urban = peru_urban_districts(path)
            note = T(f"urbano/rural: densidad ≥ 100 hab/km² ({path.name})",
                     f"urban/rural: density ≥ 100 inhabitants/km² ({path.name})")
    return frame, assign_strata(frame, urban), note


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
        help="official partial count to fuse with (snapshot reference)")] = None,
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
    from escrutinio.defence import quickcount as qc
    from escrutinio.defence.observers import combine, parse_observer_copies
    from escrutinio.defence.pvt import pick_pair

    try:
        if seed is None:
            raise EscrutinioError("falta --seed: la semilla pública de la muestra",
                                  "--seed is missing: the public seed of the sample")
        with open_store(read_only=True) as store:
            info, c = _acta_snapshot(store, snapshot, contest)
            voc = contest_vocabulary(store, c.id, info.snapshot_id)
            frame, universe, note = _universe(store, info, c, urban_file, no_urban)
            partial = None
            if fuse:
                pinfo = store.snapshot(fuse, contest_id=c.id, kind=SnapshotKind.ACTAS)
                partial = store.load_actas(pinfo.snapshot_id)
        a, b, _ = pick_pair(frame, c, _pair(pair))
        counted = frame.filter(pl.col("status") == "counted").join(
            universe.select("acta_id", "stratum"), on="acta_id")
        de = None
        if counted.height > 100:
            de = qc.design_effect(counted[f"v_{a}"].fill_null(0).to_numpy(),
                                  counted[f"v_{b}"].fill_null(0).to_numpy(),
                                  counted["stratum"].to_numpy())
        if mesas is None and moe is None:
            mesas = 1500
        use_deff = deff if deff is not None else (de.deff_stratified if de else None)
        plan = qc.design(universe, n_mesas=mesas, moe=moe, deff=use_deff,
                         mean_votes_per_mesa=de.mean_votes_per_mesa if de else None,
                         snapshot_ids=[info.snapshot_id])
        sample = qc.draw_sample(universe, plan, seed)
        estimate = None
        n_outside = 0
        if reports or simulate_reports:
            if reports:
                rep = combine([parse_observer_copies(p, c) for p in reports]).frame
                in_s = rep["acta_id"].is_in(sample["acta_id"].implode())
                n_outside = int((~in_s).sum())
                rep = rep.filter(in_s)
            else:
                rep = frame.join(sample.select("acta_id"), on="acta_id")
            if partial is not None:
                estimate = qc.fuse(universe, partial, rep, (a, b), n_boot=boot, seed=0,
                                   snapshot_ids=[info.snapshot_id])
            else:
                estimate = qc.estimate(universe, rep, (a, b), n_boot=boot, seed=0,
                                       n_sampled=plan.n_mesas, snapshot_ids=[info.snapshot_id])
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    strata = plan.table()
    if csv:
        write_csv(sample if estimate is None else strata, csv)
    if as_json:
        payload: dict[str, Any] = {
            "design": to_jsonable(plan), "design_effect": to_jsonable(de),
            "urban_rule": note, "seed": seed,
            "sample": sample.head(limit).to_dicts() if limit else sample.to_dicts(),
            "n_sample": sample.height,
            "estimate": to_jsonable(estimate) if estimate is not None else None,
            "n_reports_outside_sample": n_outside,
        }
        emit_json(payload)
        return
    out.print(f"[bold]{c.id}[/] — {T('universo', 'universe')}: {universe.height:,} "
              f"{W(voc, 'polling_stations')}, "
              f"{plan.n_strata} {T('estratos', 'strata')} ({note})")
    if de is not None:
        out.print(voc.localize(T(
                    f"Efecto de diseño medido: {de.deff_unstratified:.1f} sin estratos, "
                    f"{de.deff_stratified:.1f} con estratos; {de.mean_votes_per_mesa:.0f} votos "
                    "de ambos candidatos por mesa",
                    f"Measured design effect: {de.deff_unstratified:.1f} unstratified, "
                    f"{de.deff_stratified:.1f} stratified; {de.mean_votes_per_mesa:.0f} "
                    "two-candidate votes per mesa"), opts.lang))
        moe_now = qc.margin_of_error(plan.n_mesas, mean_votes_per_mesa=de.mean_votes_per_mesa,
                                     deff=use_deff or de.deff_stratified)
        out.print(voc.localize(T(
            f"Muestra: {plan.n_mesas:,} mesas → margen de error ±{100 * moe_now:.2f} "
            "puntos (95%)", f"Sample: {plan.n_mesas:,} mesas → margin of error "
            f"±{100 * moe_now:.2f} points (95%)"), opts.lang))
    if estimate is None:
        table = Table(title=T(f"Muestra pública (semilla {seed!r})",
                              f"Public sample (seed {seed!r})"))
        for col in (T("estrato", "stratum"), "#", "acta", "SHA-256"):
            table.add_column(col)
        for r in sample.head(limit or sample.height).iter_rows(named=True):
            table.add_row(r["stratum"], str(r["rank"]), r["acta_id"], r["sha256"][:16] + "…")
        out.print(table)
    else:
        e = estimate
        if n_outside:
            err.print(voc.localize(T(
                f"[yellow]{n_outside:,} reportes de mesas fuera de la muestra: "
                "descartados[/]", f"[yellow]{n_outside:,} reports of mesas outside "
                "the sample: discarded[/]"), opts.lang))
        table = Table(title=T(f"Estimación ({e.n_reports:,} reportes)",
                              f"Estimate ({e.n_reports:,} reports)"))
        for col in (T("método", "method"), f"% {a}", T("inferior", "lower"),
                    T("superior", "upper")):
            table.add_column(col)
        for iv in (e.ratio, e.model, e.combined):
            table.add_row(iv.method, f"{100 * iv.estimate:.2f}", f"{100 * iv.lower:.2f}",
                          f"{100 * iv.upper:.2f}")
        out.print(table)
        out.print(voc.localize(T(e.call_es, e.call_en), opts.lang))
    if csv:
        out.print(T(f"Informe CSV: {csv}", f"CSV report: {csv}"))


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
    from escrutinio.defence import contested as ct
    from escrutinio.defence.observers import read_acta_list

    try:
        if prior not in ("country", "2021", "historical"):
            raise EscrutinioError("--prior: country, 2021 o historical",
                                  "--prior: country, 2021 or historical")
        with open_store(read_only=True) as store:
            info, c = _acta_snapshot(store, snapshot, contest)
            voc = contest_vocabulary(store, c.id, info.snapshot_id)
            current = store.load_actas(info.snapshot_id)
            earlier_infos = [s for s in store.list_snapshots(c.id, SnapshotKind.ACTAS)
                             if s.as_of < info.as_of] if history else []
            earlier = [store.load_actas(s.snapshot_id) for s in earlier_infos]
        requested = read_acta_list(request) if request else None
        res = ct.analyse_contested(
            current, c, earlier=earlier,
            prior={"country": ct.resolution_prior(c), "2021": ct.RATES_2021}.get(prior)
            or ct.historical_prior(),
            strength=strength, requested=requested, pair=_pair(pair), n_sims=sims, seed=seed,
            snapshot_ids=[info.snapshot_id, *[s.snapshot_id for s in earlier_infos]])
    except (EscrutinioError, ValueError) as exc:
        fail(_as_error(exc), as_json)
        return
    if csv:
        write_csv(res.actas, csv)
    if as_json:
        emit_json(localized(res.to_jsonable(limit or None), voc))
        return
    res = localized(res, voc)
    out.print(f"[bold]{c.id}[/] — {info.label} ({info.as_of:%Y-%m-%d %H:%M} UTC)")
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
    if csv:
        out.print(T(f"Informe CSV: {csv}", f"CSV report: {csv}"))
