"""``escrutinio diff``: what changed between two snapshots. Register with
``LAZY_COMMANDS["diff"]`` in :mod:`escrutinio.cli`.

Presenter only: the answer and its one set of defaults (:data:`escrutinio.service.DIFF_LIMIT`
rows listed per category, the API's too) are :func:`escrutinio.service.diff`'s.
"""

from __future__ import annotations

from typing import Annotated

import typer

from escrutinio import service
from escrutinio.commands.common import T, emit_json, fail, open_store, opts, out
from escrutinio.countries import Vocabulary
from escrutinio.diff import SnapshotDiff
from escrutinio.errors import EscrutinioError


def diff(
    older: Annotated[str, typer.Argument(help="older snapshot (id, prefix, label, first...)")],
    newer: Annotated[str, typer.Argument(help="newer snapshot")] = "latest",
    contest: Annotated[str | None, typer.Option(help="contest id")] = None,
    limit: Annotated[int, typer.Option(
        help="filas listadas por categoría (0 = todas) / rows listed per category (0 = all)",
        min=0)] = service.DIFF_LIMIT,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Qué cambió entre dos instantáneas / what changed between two snapshots."""
    from escrutinio.commands.vocab import contest_vocabulary

    try:
        with open_store(read_only=True) as store:
            d = service.diff(store, older, newer, contest_id=contest, limit=limit)
            voc = contest_vocabulary(store, d.contest_id, d.newer.snapshot_id)
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json(d)
        return
    _print_diff(d, voc)


def _more(listed: int, total: int) -> None:
    """Say how many rows a category did not list, and how to list them."""
    if listed < total:
        out.print(T(f"  … y {total - listed:,} más (--limit 0 las lista todas)",
                    f"  … and {total - listed:,} more (--limit 0 lists them all)"))


def _print_diff(d: SnapshotDiff, voc: Vocabulary) -> None:
    from rich.table import Table

    def status_label(status: str, lang: str) -> str:  # as the contest's country says it
        return voc.status_label(status, lang)

    out.print(f"{d.older.label} ({d.older.as_of:%Y-%m-%d %H:%M}) → {d.newer.label} "
              f"({d.newer.as_of:%Y-%m-%d %H:%M})")
    if d.transitions:
        table = Table(title=T("Transiciones de estado", "State transitions"))
        for col in (T("de", "from"), T("a", "to"), "n", T("permitida", "allowed")):
            table.add_column(col)
        for t in d.transitions:
            table.add_row(status_label(t.from_status, opts.lang) if t.from_status else "∅",
                          status_label(t.to_status, opts.lang) if t.to_status else "∅",
                          f"{t.n:,}", "" if t.allowed else T("[red]NO[/]", "[red]NO[/]"))
        out.print(table)
    out.print(T(f"Actas que cambiaron de estado: {d.n_state_changes:,}",
                f"Actas that changed state: {d.n_state_changes:,}"))
    if d.n_irregular:
        out.print(T(f"[red]Transiciones no permitidas: {d.n_irregular:,}[/]",
                    f"[red]Irregular transitions: {d.n_irregular:,}[/]"))
        for r in d.irregular:
            out.print(f"  {r['acta_id']}: {r['from']} → {r['to']}")
        _more(len(d.irregular), d.n_irregular)
    if d.n_counted_changed:
        out.print(T(f"[red]ALERTA: {d.n_counted_changed:,} actas contabilizadas cambiaron de "
                    "cifras[/]", f"[red]ALARM: {d.n_counted_changed:,} counted actas changed "
                    "figures[/]"))
        for r in d.counted_changed:
            deltas = ", ".join(f"{k[2:]} {v:+,}" for k, v in r.items() if k.startswith("d_") and v)
            out.print(f"  {r['acta_id']}: {deltas}")
        _more(len(d.counted_changed), d.n_counted_changed)
    if d.n_went_down:
        out.print(T(f"[red]Conteos que bajaron: {d.n_went_down:,}[/]",
                    f"[red]Counts that went down: {d.n_went_down:,}[/]"))
        for r in d.went_down:
            out.print(f"  {_where(r)} {r['field']}: {r['before']:,} → {r['after']:,} "
                      f"({r['after'] - r['before']:+,})")
        _more(len(d.went_down), d.n_went_down)
    if d.n_unit_changes:
        tone = "red" if d.n_unit_alarms else "yellow"
        out.print(T(f"[{tone}]Unidades que faltan, aparecen o cambian su total de actas: "
                    f"{d.n_unit_changes:,}[/]",
                    f"[{tone}]Units missing, appearing or changing their acta total: "
                    f"{d.n_unit_changes:,}[/]"))
        for r in d.unit_changes:
            out.print(f"  {_where(r)}: " + _unit_change(r))
        _more(len(d.unit_changes), d.n_unit_changes)
    # figures the source does not have (no electors...) are left out: unknown, not +0
    out.print(T("Cambio nacional: ", "National change: ")
              + ", ".join(f"{k} {v:+,}" for k, v in d.national_delta.items()))


def _where(r: dict[str, object]) -> str:
    """A went-down or unit-change row's place: ``national``, or ``<level> <code>``."""
    if r.get("scope") == "national":
        return T("nacional", "national")
    if r.get("level") == "national" or "level" not in r:
        return T("nacional", "national")
    return f"{r['level']} {r['unit_code']}"


def _unit_change(r: dict[str, object]) -> str:
    if r["change"] == "vanished":
        return T("está en la anterior y falta en la posterior",
                 "in the older snapshot, missing from the newer")
    if r["change"] == "appeared":
        return T("falta en la anterior y aparece en la posterior",
                 "missing from the older snapshot, in the newer")
    before, after = int(r["before"]), int(r["after"])  # type: ignore[call-overload]
    return T(f"total de actas {before:,} → {after:,} ({after - before:+,})",
             f"acta total {before:,} → {after:,} ({after - before:+,})")


def register(app: typer.Typer) -> None:
    app.command()(diff)
