"""``escrutinio forensics``: calibrated anomaly screening (anomaly, not proof).

Presenter only: it parses the options, calls :func:`escrutinio.service.forensics.forensics`
(the one set of defaults, shared with the web layer) and formats the report; the numbers
come from :mod:`escrutinio.forensics`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from escrutinio.commands.common import (
    T,
    choice,
    choices,
    emit_json,
    err,
    fail,
    open_store,
    opts,
    out,
)
from escrutinio.countries import Vocabulary
from escrutinio.domain import ContestKind
from escrutinio.errors import EscrutinioError
from escrutinio.service import forensics as svc

if TYPE_CHECKING:
    from escrutinio.forensics.report import ForensicsReport


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:,.3g}"


def register(app: typer.Typer) -> None:
    @app.command()
    def forensics(
        snapshot: Annotated[str, typer.Option("--snapshot", "-s",
                                              help="id, prefix, label, latest, first")] =
        "latest",
        contest: Annotated[str | None, typer.Option(help="contest id")] = None,
        first_round: Annotated[str, typer.Option(
            "--first-round", help="auto | none | CONTEST_ID[:REF] (panel test)")] =
        svc.DEFAULT_FIRST_ROUND,
        tests: Annotated[str | None, typer.Option(
            help="comma-separated: integer,last_digit,second_digit,fingerprint,place,panel")]
        = None,
        seed: Annotated[int, typer.Option(help="seed of the Monte-Carlo nulls", min=0)] =
        svc.DEFAULT_SEED,
        draws: Annotated[int, typer.Option(
            help="Monte-Carlo draws (0 = exact/analytic nulls only)", min=0, max=10_000_000)] =
        svc.DEFAULT_DRAWS,
        q: Annotated[float, typer.Option("--q", help="false discovery rate (BH)",
            min=0.000001, max=1.0)] = svc.DEFAULT_Q,
        threshold: Annotated[float, typer.Option(
            help="outlier threshold in robust SD (place, panel)", min=0.0)] =
        svc.DEFAULT_THRESHOLD,
        benford: Annotated[bool, typer.Option(
            "--benford", help="ask for first-digit Benford (explains why it is refused)")]
        = False,
        image: Annotated[Path | None, typer.Option(
            help="write the turnout × share fingerprint as PNG")] = None,
        candidate: Annotated[str | None, typer.Option(
            help="candidate code for --image (default: the leader)")] = None,
        limit: Annotated[int, typer.Option(help="flagged actas listed (JSON: all)", min=0)] = 15,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Cribado forense calibrado: anomalía, no prueba / calibrated forensic screening:
        anomaly, not proof."""
        from escrutinio.forensics import TESTS, BenfordRefused
        from escrutinio.forensics.benford import BENFORD_ALIASES

        try:
            if benford:
                raise BenfordRefused()
            # --tests benford is explained (exit 2), not just refused as an unknown value
            if tests is not None and any(t.strip().lower() in BENFORD_ALIASES
                                         for t in tests.split(",")):
                raise BenfordRefused()
            wanted = None if tests is None else tuple(choices(tests, TESTS, "--tests"))
            params = svc.ForensicsParams(tests=wanted, seed=seed, draws=draws, q=q,
                                         threshold=threshold, first_round=first_round)
            with open_store(read_only=True) as store:
                res = svc.forensics(store, snapshot, params, contest_id=contest)
            if candidate is not None:
                choice(candidate, [c.code for c in res.contest.candidates], "--candidate")
            if image is not None:
                image.write_bytes(svc.fingerprint_png(res.report, candidate))
        except BenfordRefused as exc:
            if as_json:
                emit_json(exc.to_dict())
            else:
                out.print(T("[bold]Benford del primer dígito: no.[/]",
                            "[bold]First-digit Benford: no.[/]"))
                out.print(exc.message_es if opts.lang == "es" else exc.message_en)
            raise typer.Exit(exc.exit_code) from None
        except (EscrutinioError, ValueError) as exc:
            if not isinstance(exc, EscrutinioError):
                exc = EscrutinioError(str(exc), str(exc))
            fail(exc, as_json)
            return
        if as_json:
            emit_json(res.report)
            return
        # the panel test compares a runoff with its first round: nothing to say otherwise
        _print(res.report, res.first_round is not None
               or res.contest.kind is not ContestKind.RUNOFF, limit, image, res.vocabulary)


def _print(report: ForensicsReport, has_prev: bool, limit: int, image: Path | None,
           voc: Vocabulary) -> None:
    es = opts.lang == "es"
    out.print(f"[bold]{report.contest_name}[/] — "
              + T("cribado forense (anomalía, no prueba)", "forensic screen (anomaly, not proof)"))
    table = Table(title=T("Pruebas", "Tests"))
    for col in (T("prueba", "test"), T("cantidad", "quantity"), T("estadístico", "statistic"),
                T("esperado", "expected"), T("efecto", "effect"), "p", "q",
                T("ámbitos señalados", "flagged scopes"), T("actas señaladas", "flagged actas")):
        table.add_column(col, overflow="fold")
    for t in report.tests:
        n = t.national
        table.add_row(t.title_es if es else t.title_en, t.quantity, _num(n.statistic),
                      _num(n.expected), _num(n.effect), n.p_text, n.q_text,
                      f"{t.n_flagged_scopes}", f"{t.n_flagged_actas:,}")
    out.print(table)
    for t in report.tests:
        out.print(f"• [bold]{t.title_es if es else t.title_en} — {t.quantity}[/]: "
                  f"{t.verdict_national_es if es else t.verdict_national_en}")
        if t.verdict_scopes_es:
            out.print(f"  {t.verdict_scopes_es if es else t.verdict_scopes_en}")
        if t.n_flagged_scopes:
            out.print(T(f"  Falsas alarmas esperadas entre sus señales: "
                        f"~{t.expected_false_flags:.2f}. Explicaciones benignas: ",
                        f"  Expected false flags among its flags: "
                        f"~{t.expected_false_flags:.2f}. Benign explanations: ")
                      + (t.benign_es if es else t.benign_en))
    for fit in report.klimek:
        out.print(f"• {fit.text_es if es else fit.text_en}")
    for s in report.skipped:
        out.print(T(f"[yellow]Omitida {s.test}: {s.reason_es}[/]",
                    f"[yellow]Skipped {s.test}: {s.reason_en}[/]"))
    if report.flags:
        ft = Table(title=T(f"Señales tras FDR (q = {report.q_level})",
                           f"Flags after FDR (q = {report.q_level})"))
        for col in (T("ámbito", "scope"), T("prueba", "test"), T("cantidad", "quantity"), "p",
                    "q"):
            ft.add_column(col)
        for f in report.flags:
            ft.add_row(f.scope_name, f.test, f.quantity, f.p_text, f.q_text)
        out.print(ft)
    out.print(T(f"Hipótesis: {report.n_hypotheses}; falsas alarmas esperadas entre las "
                f"señales: ~{report.expected_false_flags:.1f}",
                f"Hypotheses: {report.n_hypotheses}; expected false flags among the flags: "
                f"~{report.expected_false_flags:.1f}"))
    if report.flagged_actas and limit > 0:
        k = report.stakes.n_actas
        at = Table(title=T(f"Actas que destacan individualmente ({report.n_flagged_actas:,}; "
                           f"{k:,} en ámbitos señalados; primeras {limit})",
                           f"Actas that stand out individually ({report.n_flagged_actas:,}; "
                           f"{k:,} in flagged scopes; first {limit})"))
        codes = list(report.flagged_actas[0].votes)
        # a terminal fits the tested candidates; the others are summed (JSON: all of them)
        shown = [c for c in dict.fromkeys(t.quantity for t in report.tests) if c in codes]
        shown = shown or codes[:3]
        rest = [c for c in codes if c not in shown]
        extra = [T("otros", "others")] if rest else []
        for col in ("acta", T("área", "area"), T("local", "place"), T("electores", "electors"),
                    T("emitidos", "cast"), *shown, *extra, T(*voc.court),
                    T("motivos", "reasons"), "z",
                    T("ámbito señalado", "flagged scope")):
            at.add_column(col, overflow="fold")
        for a in report.flagged_actas[:limit]:
            others = [f"{sum(a.votes[c] for c in rest):,}"] if rest else []
            at.add_row(a.acta_id, a.area3, a.polling_place[:24],
                       "—" if a.electors is None else f"{a.electors}", f"{a.cast}",
                       *[f"{a.votes[c]:,}" for c in shown], *others,
                       T("sí", "yes") if a.resolved else "",
                       ", ".join(a.reasons), f"{a.max_abs_z:.1f}",
                       T("sí", "yes") if a.in_flagged_scope else T("no", "no"))
        out.print(at)
    out.print(report.stakes.text_es if es else report.stakes.text_en)
    out.print(f"[bold]{report.summary_es if es else report.summary_en}[/]")
    if image is not None:
        err.print(T(f"Huella escrita en {image}", f"Fingerprint written to {image}"))
    out.print(f"[dim]{report.footer_es if es else report.footer_en}[/]")
    if not has_prev:
        out.print(T("[dim]Sin primera vuelta: la prueba panel no se ejecutó "
                    "(--first-round).[/]",
                    "[dim]No first round: the panel test did not run (--first-round).[/]"))
