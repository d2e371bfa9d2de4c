"""The ``escrutinio`` command line. Every command takes ``--json``.

Presenters only: numbers come from ``escrutinio.service`` and the analyses.

Start-up is kept short (``escrutinio --help`` in well under 0.2 s): this module imports no
analysis, no polars and no numpy; each command imports what it uses when it runs, and the
command modules under ``escrutinio.commands`` are imported only when one of their commands
is called (:class:`EscrutinioGroup`; ``--help`` lists them from :data:`LAZY_COMMANDS`).
Every option value is checked for control characters before any command runs, and no
Python traceback reaches the user (:meth:`App.__call__`).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from escrutinio.commands.common import (
    T,
    choice,
    emit_json,
    err,
    fail,
    input_path,
    kind_option,
    level_option,
    open_store,
    opts,
    out,
)
from escrutinio.errors import BadOptionError, EscrutinioError

if TYPE_CHECKING:
    from escrutinio.count import CountState, HistoryPoint, LeadHistory, UnitState

#: commands defined in ``escrutinio.commands.<module>``: name -> (module, short help).
#: ``--help`` lists them from here without importing the module; tests/test_cli_options.py
#: checks that this table and the modules agree.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "diff": ("diff", "Qué cambió entre dos instantáneas / what changed between two "
                     "snapshots."),
    "project": ("projection", "Proyectar el resultado final / project the final result."),
    "replay": ("projection", "Repetir la noche del conteo / replay the count night."),
    "verify": ("defence", "Verificar actas: aritmética y cambios, por materialidad / verify "
                          "actas: arithmetic and changes, ranked by materiality."),
    "pvt": ("defence", "Tabulación paralela / parallel vote tabulation."),
    "quickcount": ("defence", "Conteo rápido / quick count."),
    "contested": ("defence", "Actas observadas / contested actas."),
    "forensics": ("forensics", "Forense electoral / election forensics."),
    "audit": ("audit", "Auditorías que limitan el riesgo / risk-limiting audits."),
    "watch": ("live", "Seguir el conteo en vivo / follow the live count."),
    "watch-status": ("live", "Estado del seguimiento / state of the watcher."),
    "watch-export": ("live", "Exportar una corrida / export a run."),
    "fake-onpe": ("live", "Servidor ONPE simulado / simulated ONPE server."),
    "verify-log": ("ledger", "Verificar la cadena / verify the log."),
    "prove": ("ledger", "Prueba de inclusión / inclusion proof."),
    "verify-proof": ("ledger", "Verificar una prueba / verify a proof."),
    "log-sync": ("ledger", "Sincronizar la cadena / sync the log."),
    "serve": ("web", "Panel web y API / web dashboard and API."),
    "migrate": ("web", "Migrar el almacén / migrate the store."),
    "export-site": ("web", "Exportar un sitio estático / export a static site."),
    "accounts": ("accounts", "Cuentas de observadores / observer accounts."),
}


class EscrutinioGroup(TyperGroup):
    """The root command group: loads command modules on demand and refuses control
    characters in every argument before anything runs."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        names = list(super().list_commands(ctx))
        return names + [n for n in LAZY_COMMANDS if n not in names]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        lazy = LAZY_COMMANDS.get(cmd_name)
        if lazy is not None and self._listing:  # --help: name and summary, no import
            return TyperCommand(name=cmd_name, help=lazy[1], short_help=lazy[1])
        modules = [lazy[0]] if lazy else list(dict.fromkeys(m for m, _ in
                                                            LAZY_COMMANDS.values()))
        for module in modules:
            self.load(module)
        return super().get_command(ctx, cmd_name)

    def load(self, module: str) -> None:
        """Import ``escrutinio.commands.<module>`` and add its commands."""
        mod = importlib.import_module(f"escrutinio.commands.{module}")
        sub = typer.Typer()
        mod.register(sub)
        group = typer.main.get_group(sub)
        for name, cmd in group.commands.items():
            _guard(cmd)
            self.commands.setdefault(name, cmd)

    def load_all(self) -> None:
        for module in dict.fromkeys(m for m, _ in LAZY_COMMANDS.values()):
            self.load(module)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from escrutinio.sources.sanitize import control_char, describe_char

        for arg in args:
            at = control_char(arg)
            if at is not None:
                ch = describe_char(arg[at])
                exc = BadOptionError(
                    "argumento/argument", arg,
                    f"contiene el carácter de control {ch}: no se admite en ninguna opción",
                    f"it holds the control character {ch}: no option accepts it")
                fail(exc, "--json" in args)
        return super().parse_args(ctx, args)


def _guard(cmd: Any) -> None:
    """Wrap a command's callback so that the checks by parameter name
    (:func:`~escrutinio.commands.common.check_params`) run before it."""
    if hasattr(cmd, "commands"):
        for sub in cmd.commands.values():
            _guard(sub)
        return
    inner = cmd.callback
    if inner is None or getattr(inner, "_guarded", False):
        return
    name = cmd.name or ""

    @functools.wraps(inner)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        from escrutinio.commands.common import check_params

        try:
            check_params(name, kwargs)
        except EscrutinioError as exc:
            fail(exc, bool(kwargs.get("as_json")))
        return inner(*args, **kwargs)

    guarded._guarded = True  # type: ignore[attr-defined]
    cmd.callback = guarded


def _plain_runtime_params() -> None:
    """Coerce plain option types (str, bool, int, float, Path, their ``| None`` and lists,
    with typer's min/max) without pydantic: typer builds a pydantic TypeAdapter for every
    parameter of the command that runs, and importing pydantic alone costs ~0.12 s of CPU
    on every command. Any other annotation keeps typer's own coercion. Private typer API:
    if it moves, this does nothing and typer's coercion applies."""
    import types
    import typing

    try:
        from typer import _coercion
        from typer import core as typer_core
        from typer._click.exceptions import BadParameter
    except ImportError:  # pragma: no cover  (another typer)
        return
    original = getattr(typer_core, "build_runtime_param", None)
    base = getattr(_coercion, "RuntimeParam", None)
    if original is None or base is None or getattr(original, "_plain", False):
        return
    scalars: dict[Any, Any] = {str: str, int: int, float: float, bool: bool, Path: Path}

    def plain_type(annotation: Any) -> tuple[Any, bool] | None:
        """(scalar type, is a list) for a plain annotation, else None."""
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            return plain_type(args[0]) if len(args) == 1 else None
        if origin is list:
            items = typing.get_args(annotation)
            inner = plain_type(items[0]) if len(items) == 1 else None
            return (inner[0], True) if inner is not None and not inner[1] else None
        return (annotation, False) if annotation in scalars else None

    class PlainRuntimeParam(base):  # type: ignore[misc, valid-type]
        def __init__(self, annotation: Any, parameter_info: Any, kind: Any) -> None:
            object.__setattr__(self, "annotation", annotation)
            object.__setattr__(self, "parameter_info", parameter_info)
            object.__setattr__(self, "kind", kind)

        def _one(self, value: Any, param: Any, ctx: Any) -> Any:
            kind = self.kind
            if kind is bool:
                if isinstance(value, bool):
                    return value
                text = str(value).strip().lower()
                if text in ("1", "true", "yes", "y", "on", "t"):
                    return True
                if text in ("0", "false", "no", "n", "off", "f"):
                    return False
                raise BadParameter(f"{value!r} is not a valid boolean.", ctx=ctx, param=param)
            if kind is str:
                return value if isinstance(value, str) else str(value)
            if kind is Path:
                return value if isinstance(value, Path) else Path(value)
            try:
                number = kind(value) if not isinstance(value, kind) else value
            except (TypeError, ValueError):
                word = "an integer" if kind is int else "a number"
                raise BadParameter(f"{value!r} is not {word}.", ctx=ctx, param=param) from None
            if kind is float and number != number:
                raise BadParameter(f"{value!r} is not a number.", ctx=ctx, param=param)
            lo = getattr(self.parameter_info, "min", None)
            hi = getattr(self.parameter_info, "max", None)
            if lo is not None and number < lo:
                raise BadParameter(f"Input should be greater than or equal to {lo}",
                                   ctx=ctx, param=param)
            if hi is not None and number > hi:
                raise BadParameter(f"Input should be less than or equal to {hi}",
                                   ctx=ctx, param=param)
            return number

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, list | tuple):
                return [self._one(v, param, ctx) for v in value]
            return self._one(value, param, ctx)

    def build(descriptor: Any) -> Any:
        info = descriptor.parameter_info
        plain = plain_type(descriptor.annotation)
        simple = (plain is not None and descriptor.file_annotation is None
                  and not getattr(info, "parser", None) and not getattr(info, "click_type", None)
                  and not getattr(info, "clamp", False))
        if not simple:
            return original(descriptor)
        assert plain is not None
        return PlainRuntimeParam(descriptor.annotation, info, plain[0])

    build._plain = True  # type: ignore[attr-defined]
    typer_core.build_runtime_param = build  # type: ignore[attr-defined]


_plain_runtime_params()


class App(typer.Typer):
    """The typer app, with a last line of defence: an unexpected exception is reported
    in one bilingual line (exit 1), never as a Python traceback. ``ESCRUTINIO_DEBUG=1``
    shows the traceback for a developer."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except (SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # the one place that catches everything
            if os.environ.get("ESCRUTINIO_DEBUG"):
                raise
            what = f"{type(exc).__name__}: {exc}"[:300]
            sys.stderr.write(f"Error interno / internal error: {what}\n"
                             "(ESCRUTINIO_DEBUG=1 muestra el detalle / shows the details)\n")
            raise SystemExit(1) from None


app = App(
    cls=EscrutinioGroup, add_completion=False, no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="escrutinio: el conteo, con números reproducibles / the count, with reproducible "
         "numbers.",
)
def _show_version(value: bool) -> None:
    if value:
        from escrutinio import __version__

        out.print(f"escrutinio {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    db: Annotated[str, typer.Option(envvar="ESCRUTINIO_DB",
                                    help="archivo DuckDB o URL postgresql:// / DuckDB file "
                                         "or postgresql:// URL")] = "escrutinio.duckdb",
    lang: Annotated[str, typer.Option(help="es | en")] = "es",
    version: Annotated[bool, typer.Option("--version", help="show the version",
                                          callback=_show_version, is_eager=True)] = False,
) -> None:
    opts.db = db
    if not db.startswith(("postgresql://", "postgres://")) and Path(db).is_dir():
        fail(BadOptionError("--db", db, "es una carpeta: indique un archivo DuckDB o una URL "
                            "postgresql://", "it is a folder: give a DuckDB file or a "
                            "postgresql:// URL"), False)
    low = lang.strip().lower()
    if low[:2] not in ("es", "en") or (len(low) > 2 and low[2] not in "-_" and low not in (
            "español", "espanol", "english")):
        fail(BadOptionError("--lang", lang, "valores válidos: es, en",
                            "valid values: es, en"), False)
    opts.lang = "en" if low.startswith("en") else "es"


# --- ingest ------------------------------------------------------------------------------

@app.command()
def ingest(
    sources: Annotated[list[str], typer.Argument(
        help="archivos, carpetas o un paquete de datos (peru-2021-runoff...) / files, folders "
             "or a named data bundle")],
    as_of: Annotated[str | None, typer.Option(help="ISO time for files without one")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ingerir instantáneas (atómico) / ingest snapshots (all or nothing)."""
    from escrutinio.sources.raw import prefetch

    if sources:  # decompress the first file while polars and DuckDB load (a thread)
        prefetch(sources[0])
    from escrutinio import service
    from escrutinio.commands.common import timestamp
    from escrutinio.sources.bundles import BUNDLES, bundle_paths

    try:
        if as_of is not None:
            timestamp(as_of, "--as-of")
        jobs: list[tuple[str, Any]] = []
        for src in _without_sidecars(sources):
            if src in BUNDLES:
                jobs.extend((str(p), item.parse) for item, p in bundle_paths(src))
            else:
                p = input_path(src, "SOURCES")
                jobs.append((src, service.detect_parser(p, as_of=as_of)))
        parsed = []
        if as_json or not err.is_terminal:  # no progress bar to show (nor to import)
            for name, parse in jobs:
                parsed.extend(parse(Path(name)))
        else:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                          console=err.console, transient=True) as prog:
                task = prog.add_task(T("leyendo", "reading"), total=len(jobs))
                for name, parse in jobs:
                    prog.update(task, description=Path(name).name)
                    parsed.extend(parse(Path(name)))
                    prog.advance(task)
        # the ledger's leaves are hashed (a thread) while the store opens and writes
        with service.LeavesAhead(parsed) as ahead, open_store() as store:
            outcomes = service.ingest(store, parsed, ahead=ahead)
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    warnings = service.ingest_warnings(parsed)
    notes = service.source_notes(parsed)
    if as_json:
        emit_json({"db": opts.db, "snapshots": outcomes, "warnings": warnings,
                   "notes": notes})
        return
    from rich.table import Table

    new = sum(o.created for o in outcomes)
    table = Table(title=T(f"{len(outcomes)} instantáneas ({new} nuevas) en {opts.db}",
                          f"{len(outcomes)} snapshots ({new} new) in {opts.db}"))
    for col in ("id", T("fecha (UTC)", "as of (UTC)"), T("etiqueta", "label"), T("tipo", "kind"),
                T("filas", "rows"), T("rechazadas", "rejected"), T("alertas", "flags"),
                T("nueva", "new")):
        table.add_column(col)
    shown = outcomes if len(outcomes) <= 25 else [*outcomes[:10], None, *outcomes[-10:]]
    for o in shown:
        if o is None:
            table.add_row("…", "", "", "", "", "", "", "")
            continue
        table.add_row(o.snapshot_id[:12], o.as_of.strftime("%Y-%m-%d %H:%M"), o.label[:50],
                      o.kind.value, f"{o.n_rows:,}", f"{o.n_rejected:,}", f"{o.n_findings:,}",
                      T("sí", "yes") if o.created else T("ya estaba", "already stored"))
    out.print(table)
    for w in warnings:  # accepted with a caveat: said, never silent
        out.print(f"[yellow]{T('Atención', 'Warning')}:[/] {T(w['es'], w['en'])}")
    for n in notes:  # what the source says about its own data
        out.print(f"{T('Nota de la fuente', 'Source note')}: {T(n['es'], n['en'])}")


def _without_sidecars(sources: list[str]) -> list[str]:
    """The sources without the sidecars of data files that are also given (``ingest dir/*``
    names both ``x.csv`` and ``x.csv.contest.json``: the sidecar is read with its data). A
    sidecar given alone is a clear error naming its data file."""
    from escrutinio.sources.tabular import SIDECAR_SUFFIX

    given = {str(Path(s).resolve()) for s in sources}
    out = []
    for src in sources:
        if src.endswith(SIDECAR_SUFFIX) and len(src) > len(SIDECAR_SUFFIX):
            data = src[: -len(SIDECAR_SUFFIX)]
            if str(Path(data).resolve()) in given:
                continue
            if Path(data).exists():
                raise BadOptionError("SOURCES", src, f"es la descripción (sidecar) de {data}: "
                                     f"ingiera {data}, que la lee",
                                     f"it is the sidecar of {data}: ingest {data}, which "
                                     "reads it")
        out.append(src)
    return out


# --- snapshots ---------------------------------------------------------------------------

@app.command()
def snapshots(
    contest: Annotated[str | None, typer.Option(help="contest id")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Listar instantáneas / list snapshots."""
    from rich.table import Table

    try:
        with open_store(read_only=True) as store:
            if contest is not None:
                store.contest(contest)  # an unknown contest: exit 2, the known ones listed
            snaps = store.list_snapshots(contest)
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json(snaps)
        return
    table = Table(title=T("Instantáneas", "Snapshots"))
    for col in ("id", T("contienda", "contest"), T("fecha (UTC)", "as of (UTC)"),
                T("tipo", "kind"), T("nivel", "level"), T("etiqueta", "label"), T("filas", "rows"),
                T("rechazadas", "rejected")):
        table.add_column(col)
    for s in snaps:
        table.add_row(s.short_id, s.contest_id, s.as_of.strftime("%Y-%m-%d %H:%M"), s.kind.value,
                      s.level or "", s.label[:48], f"{s.n_rows:,}", f"{s.n_rejected:,}")
    out.print(table)


# --- status ------------------------------------------------------------------------------

def _pct(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}%"


def _hurdle_text(st: CountState) -> str:
    return T(*st.hurdle.sentence({c.code: c.name for c in st.national.candidates}))


def _race_text(st: CountState) -> str | None:
    """First rounds: who holds the second place on the runoff ballot, and the hurdle."""
    r = st.runoff_race
    if r is None:
        return None
    names = {c.code: c.name for c in st.national.candidates}
    es, en = r.sentence(names)
    second, third = names.get(r.leader or "", r.leader), names.get(r.trailer or "", r.trailer)
    return T(f"Segundo lugar (pase a la segunda vuelta): {second} aventaja a {third} por "
             f"{r.margin:,} votos; {es}",
             f"Second place (the runoff ballot): {second} leads {third} by {r.margin:,} votes; "
             f"{en}")


def _unit_row(u: UnitState, shown: list[str], rest: list[str]) -> list[str]:
    from escrutinio.commands.count_view import candidate_cells, short_name

    leader = short_name(u.leader) if u.leader else "—"
    known = u.actas_known
    return [u.code, u.name[:28], f"{u.actas_counted:,}/{u.actas_total:,}" if known else "—",
            _pct(u.pct_counted if known else None, 2),
            _pct(u.pct_processed if known else None, 2),
            f"{u.actas_jee:,}" if known else "—", f"{u.actas_pending:,}" if known else "—",
            _pct(u.turnout, 1),
            *candidate_cells(u, shown, rest), leader, f"{u.margin_votes:,}",
            _pct(u.margin_pct_valid, 2)]


@app.command()
def status(
    snapshot: Annotated[str, typer.Option("--snapshot", "-s",
                                          help="id, prefix, label, latest, first, latest-N")] =
    "latest",
    level: Annotated[str, typer.Option(help="national|department|province|district "
                                       "(area1..3)")] = "department",
    contest: Annotated[str | None, typer.Option(help="contest id")] = None,
    kind: Annotated[str | None, typer.Option(help="actas | units")] = None,
    abroad: Annotated[bool | None, typer.Option("--abroad/--home",
                                                help="only abroad / only at home")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dónde está el conteo / where the count stands."""
    from escrutinio import service
    from escrutinio.commands.count_view import (
        MAX_CANDIDATE_COLUMNS,
        MIN_NAME_WIDTH,
        by_votes,
        candidate_headers,
        fit_widths,
        split_columns,
    )
    from escrutinio.commands.vocab import contest_vocabulary
    from escrutinio.countries import has_runoff
    from escrutinio.domain import level_label
    from escrutinio.provenance import to_jsonable

    try:
        sk = kind_option(kind)
        with open_store(read_only=True) as store:
            lv = level_option(level, names=service.level_names(store, contest))
            st = service.state(store, snapshot, level=lv, contest_id=contest, kind=sk)
            names = service.area_labels(store, st.contest_id)
            voc = contest_vocabulary(store, st.contest_id, st.snapshot.snapshot_id)
            runoff = has_runoff(store.contest(st.contest_id))
            info = store.snapshot(st.snapshot.snapshot_id, contest_id=st.contest_id)
            alt = (service.latest_with_level(store, info, lv)
                   if lv not in service.levels_of(info) else None)
            reports = store.load_row_reports(info.snapshot_id) if info.n_rejected else None
    except (EscrutinioError, ValueError) as exc:
        if not isinstance(exc, EscrutinioError):
            exc = EscrutinioError(str(exc), str(exc))
        fail(exc, as_json)
        return
    units = st.units if abroad is None else tuple(u for u in st.units if u.abroad == abroad)
    if as_json:
        emit_json({**to_jsonable(st), "units": to_jsonable(units),
                   "area_labels": {k: {"es": es, "en": en} for k, (es, en) in names.items()}})
        return
    from rich import box
    from rich.table import Table

    n = st.national
    out.print(f"[bold]{st.contest_id}[/] — {T('instantánea', 'snapshot')} "
              f"{st.snapshot.snapshot_id[:12]} ({st.snapshot.label}), "
              f"{st.snapshot.as_of:%Y-%m-%d %H:%M} UTC")
    if n.name != "Total":
        out.print(f"[yellow]{n.name}[/]")
    # the country's word for what is counted (Chile: mesas), never "actas" for all
    word_es, word_en = (w[:1].upper() + w[1:] for w in voc.actas)
    if not n.actas_known:
        out.print(T(f"[yellow]{word_es}: esta fuente no publica cuántas hay, cuántas se "
                    "contaron ni cuántas faltan[/]",
                    f"[yellow]{word_en}: this source does not publish how many there are, "
                    "how many were counted or how many remain[/]"))
        if st.source_pct_counted is not None:
            out.print(T(f"Votos contados según la fuente: {_pct(st.source_pct_counted, 1)} "
                        "(estimación de la propia fuente, pct_votes_counted: la proyección "
                        "la usa, con su incertidumbre; el umbral, que es exacto, no)",
                        f"Votes counted according to the source: "
                        f"{_pct(st.source_pct_counted, 1)} (the source's own estimate, "
                        "pct_votes_counted: the projection uses it, with its uncertainty; "
                        "the hurdle, which is exact, does not)"))
    else:
        out.print(T(f"{word_es} contabilizadas {n.actas_counted:,} de {n.actas_total:,} "
                    f"({_pct(n.pct_counted)}); procesadas {n.actas_processed:,} "
                    f"({_pct(n.pct_processed)}); {voc.status_label('jee', 'es')} "
                    f"{n.actas_jee:,}; pendientes "
                    f"{n.actas_pending:,}; anuladas {n.actas_annulled:,}; "
                    f"{voc.polling_stations[0]} no instaladas "
                    f"{n.actas_not_installed:,}; rechazadas {n.actas_rejected:,}; faltantes "
                    f"{n.actas_missing:,}",
                    f"{word_en} counted {n.actas_counted:,} of {n.actas_total:,} "
                    f"({_pct(n.pct_counted)}); processed {n.actas_processed:,} "
                    f"({_pct(n.pct_processed)}); {voc.status_label('jee', 'en')} "
                    f"{n.actas_jee:,}; pending "
                    f"{n.actas_pending:,}; annulled {n.actas_annulled:,}; not installed "
                    f"{n.actas_not_installed:,}; rejected {n.actas_rejected:,}; missing "
                    f"{n.actas_missing:,}"))
    for c in by_votes(n.candidates):
        out.print(f"  {c.name:<40} {c.votes:>12,}  {c.pct_valid:7.3f}%")
    out.print(T(f"Margen: {n.margin_votes:,} votos ({n.margin_pct_valid:.3f} puntos de los "
                f"votos válidos); participación {_pct(n.turnout, 2)}",
                f"Margin: {n.margin_votes:,} votes ({n.margin_pct_valid:.3f} points of valid "
                f"votes); turnout {_pct(n.turnout, 2)}"))
    out.print(T("Umbral: ", "Hurdle: ") + _hurdle_text(st))
    race = _race_text(st) if runoff else None
    if race:
        out.print(race)
    if st.n_rejected:
        one = st.n_rejected == 1
        out.print(T(f"[yellow]{st.n_rejected:,} "
                    + ("fila rechazada al ingerir: sus votos no están en estos totales, pero "
                       "su acta sí está" if one else
                       "filas rechazadas al ingerir: sus votos no están en estos totales, "
                       "pero sus actas sí están")
                    + " en el total de actas y en lo que falta ('escrutinio snapshots' para "
                    "verlas)[/]",
                    f"[yellow]{st.n_rejected:,} "
                    + ("row was rejected on ingest: its votes are not in these totals, but "
                       "its acta is" if one else
                       "rows were rejected on ingest: their votes are not in these totals, "
                       "but their actas are")
                    + " in the acta total and in what remains ('escrutinio snapshots' to "
                    "see them)[/]"))
        from escrutinio.sources.base import rejected_by_row

        rows_out = rejected_by_row(reports) if reports is not None else []
        for bad in rows_out[:10]:  # each row once, with every rule it broke
            where = T(f"fila {bad['line']}", f"row {bad['line']}") \
                if bad["line"] is not None else ""
            ident = f" ({bad['acta_id']})" if bad["acta_id"] else ""
            out.print(T(f"  {where}{ident}: {bad['message_es']}",
                        f"  {where}{ident}: {bad['message_en']}"))
        if len(rows_out) > 10:
            out.print(T(f"  … y {len(rows_out) - 10:,} filas más",
                        f"  … and {len(rows_out) - 10:,} more rows"))
        placed = sum(u.actas_total for u in st.units) if st.units else n.actas_total
        if st.units and n.actas_known and placed < n.actas_total:
            k = n.actas_total - placed
            out.print(T(f"[yellow]{k:,} de ellas no dicen dónde están: cuentan en el total "
                        "nacional, en ninguna fila de la tabla[/]",
                        f"[yellow]{k:,} of them do not say where they are: they count in the "
                        "national total, in no row of the table[/]"))
    if lv not in service.levels_of(info):
        lv_es, lv_en = level_label(names, lv, "es"), level_label(names, lv, "en")
        hint = ((f"; la más reciente que sí: {alt.short_id} ({alt.label})",
                 f"; the latest that has: {alt.short_id} ({alt.label})") if alt else ("", ""))
        out.print(T(f"[yellow]Esta instantánea no tiene cifras por {lv_es}{hint[0]} "
                    f"(escrutinio status -s ID --level {lv.value})[/]",
                    f"[yellow]This snapshot has no figures by {lv_en}{hint[1]} "
                    f"(escrutinio status -s ID --level {lv.value})[/]"))
    elif lv.value != "national" and not st.units:  # the level exists, no row names one
        out.print(T(f"[yellow]Ninguna acta de esta instantánea indica su "
                    f"{level_label(names, lv, 'es')}: no hay tabla por "
                    f"{level_label(names, lv, 'es')}[/]",
                    f"[yellow]No acta of this snapshot says its "
                    f"{level_label(names, lv, 'en')}: no table by "
                    f"{level_label(names, lv, 'en')}[/]"))
    if units:
        table = Table(title=T(f"Por {level_label(names, lv, 'es')}",
                              f"By {level_label(names, lv, 'en')}"), box=box.SIMPLE_HEAD,
                      collapse_padding=True, pad_edge=False)
        for k in range(MAX_CANDIDATE_COLUMNS, 2, -1):  # as many candidates as fit
            shown, rest = split_columns(n, k)
            heads = [T("código", "code"), T("nombre", "name"), T("contab.", "counted"),
                     T("% contab.", "% counted"), T("% proces.", "% proc."), T(*voc.court),
                     T("pend.", "pending"), T("particip.", "turnout"),
                     *candidate_headers(shown, rest), T("lidera", "leader"),
                     T("margen", "margin"), T("pts", "pts")]
            rows = [_unit_row(u, shown, rest)
                    for u in [*(x for x in (st.home, st.abroad) if x), *units]]
            widths = fit_widths(heads, rows, out.width)
            if widths[1] >= min(MIN_NAME_WIDTH, max(len(r[1]) for r in rows)):
                break
        for h, w in zip(heads, widths, strict=True):
            # figures never fold mid-number (headers wrap between words); names may
            table.add_column(h, overflow="fold", width=w)
        for r in rows:
            table.add_row(*r)
        out.print(table)
    for gap in st.coverage_warnings:  # units of the national row not listed: never silent
        out.print(f"[bold yellow]{T('Atención', 'Warning')}:[/] {T(gap['es'], gap['en'])}")


# --- history -----------------------------------------------------------------------------

@app.command()
def history(
    contest: Annotated[str | None, typer.Option(help="contest id")] = None,
    kind: Annotated[str | None, typer.Option(help="actas | units")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Historia del margen y cambios de liderazgo / margin history and lead changes."""
    from escrutinio import service

    try:
        sk = kind_option(kind)
        with open_store(read_only=True) as store:
            if contest is not None:
                store.contest(contest)
            h = service.history(store, contest, sk)
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json(h)
        return
    _print_history(h)


def _print_history(h: LeadHistory) -> None:
    from rich.table import Table

    table = Table(title=T(f"Historia del conteo — {h.contest_id}",
                          f"Count history — {h.contest_id}"))
    for col in (T("fecha (UTC)", "as of (UTC)"), T("% contab.", "% counted"),
                T("% proces.", "% processed"), T("lidera", "leader"), T("margen", "margin"),
                T("pts", "pts"), T("fuente", "source")):
        table.add_column(col)
    flips = {c.after.snapshot_id for c in h.lead_changes}
    src_mark = T(" (fuente)", " (source)")
    for p in h.points:
        mark = " ⇄" if p.snapshot_id in flips else ""
        counted = (_pct(p.pct_counted, 2) if p.pct_counted is not None
                   or p.source_pct_counted is None
                   else _pct(p.source_pct_counted, 2) + src_mark)
        table.add_row(f"{p.as_of:%Y-%m-%d %H:%M}", counted,
                      _pct(p.pct_processed, 2), f"{p.leader or '—'}{mark}",
                      f"{p.margin_votes:,}", f"{p.margin_pct_valid:.3f}", p.label[:40])
    out.print(table)
    if any(p.pct_counted is None and p.source_pct_counted is not None for p in h.points):
        out.print(T("(fuente): % de los votos contados según la estimación de la propia fuente "
                    "(pct_votes_counted), no un conteo de actas",
                    "(source): % of the votes counted according to the source's own estimate "
                    "(pct_votes_counted), not a count of actas"))

    def when(a: HistoryPoint, b: HistoryPoint) -> tuple[str, str]:
        span = f"{a.as_of:%d %b %H:%M} → {b.as_of:%d %b %H:%M} UTC"
        if a.pct_counted is None or b.pct_counted is None:
            sa, sb = a.source_pct_counted, b.source_pct_counted
            if a.pct_counted is None and b.pct_counted is None \
                    and sa is not None and sb is not None:
                return (f"{span}, {sa:.2f}% → {sb:.2f}% de los votos según la fuente",
                        f"{span}, {sa:.2f}% → {sb:.2f}% of the votes according to the "
                        "source")
            return span, span
        return (f"{span}, {a.pct_counted:.2f}% → {b.pct_counted:.2f}% contabilizadas",
                f"{span}, {a.pct_counted:.2f}% → {b.pct_counted:.2f}% counted")

    for c in h.lead_changes:
        es, en = when(c.before, c.after)
        out.print(T(f"Cambio de liderazgo: {c.previous_leader} → {c.new_leader} ({es})",
                    f"Lead change: {c.previous_leader} → {c.new_leader} ({en})"))
    for r in h.runoff_changes:
        es, en = when(r.before, r.after)
        out.print(T(f"Cambio en el pase a la segunda vuelta: entra {r.entered}, sale "
                    f"{r.dropped} ({es})",
                    f"Change in who goes to the runoff: {r.entered} in, {r.dropped} out "
                    f"({en})"))
    for cand, margin, _sid in h.max_lead:
        out.print(T(f"Mayor ventaja de {cand}: {margin:,}", f"Largest lead of {cand}: {margin:,}"))
    for w in h.warnings:  # totals that go down, totals of actas that change
        out.print(f"[yellow]{T('Atención', 'Warning')} ({w.label}):[/] {T(w.es, w.en)}")


# --- datasets ----------------------------------------------------------------------------

@app.command()
def datasets(
    verify: Annotated[bool, typer.Option("--verify", help="recompute SHA-256 of local files")] =
    False,
    fetch: Annotated[str | None, typer.Option(help="download a dataset into the cache")] = None,
    mirror: Annotated[str | None, typer.Option(help="base URL of a mirror for --fetch")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Conjuntos de datos: origen, SHA-256, licencia / datasets: upstream, SHA-256, licence."""
    from rich.table import Table

    from escrutinio import datasets as ds

    try:
        from escrutinio.commands.common import url

        if mirror is not None:
            url(mirror, "--mirror")
        if fetch:
            choice(fetch, [r["name"] for r in ds.datasets_table("en")], "--fetch")
            ds.fetch(fetch, base_url=mirror)
        rows = ds.datasets_table(opts.lang, verify=verify)
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json(rows)
        return
    table = Table(title=T("Conjuntos de datos", "Datasets"))
    cols = list(rows[0].keys()) if rows else []
    for c in cols:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*[str(r[c]) for c in cols])
    out.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
