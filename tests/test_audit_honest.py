"""Issue #14 (audit): rejected and missing actas in the audit, one first-round size for plan
and sample, every ballot total explained, the super-simple formulas named against the
common tools, exact Minerva sizes. Real data; exact figures where the method is exact."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from escrutinio.audit import bravo, supersimple
from escrutinio.audit.model import build_population
from escrutinio.audit.plan import first_round_size
from escrutinio.cli import main as cli_main
from escrutinio.commands import audit as audit_cmd
from escrutinio.sources.base import ParsedSnapshot
from escrutinio.sources.onpe_files import parse_ronderos

RUNOFF = "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz"
FIRST_2021 = "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz"
SEED = "41592653589793238462"
runner = CliRunner()


def make_app() -> typer.Typer:
    from escrutinio import cli

    app = typer.Typer()
    app.callback()(cli_main)
    app.command()(cli.ingest)
    audit_cmd.register(app)
    return app


def cli(db: Path) -> Callable[..., tuple[int, str]]:
    app = make_app()

    def run(*args: str) -> tuple[int, str]:
        res = runner.invoke(app, ["--db", str(db), *args])
        if res.exception and not isinstance(res.exception, SystemExit):
            raise res.exception
        return res.exit_code, res.stdout

    return run


@pytest.fixture(scope="module")
def runoff(data_dir: Path) -> ParsedSnapshot:
    return parse_ronderos(data_dir / RUNOFF, as_of="2021-06-17T00:00:00Z")


# --- one first-round size ------------------------------------------------------------------
def test_plan_and_sample_draw_the_same_first_round_and_explain_the_ballots(
        tmp_path: Path, data_dir: Path) -> None:
    """`audit plan` said 1,870 draws (600 simulations) and `audit sample` drew 1,716 (2,000):
    now both use first_passages with 200,000 simulated audits and the same seed."""
    run = cli(tmp_path / "a.duckdb")
    assert run("ingest", str(data_dir / RUNOFF), "--as-of", "2021-06-17T00:00:00Z")[0] == 0
    code, out = run("audit", "plan", "-r", "0.05", "--json")
    assert code == 0, out
    plan = json.loads(out)
    macro5 = next(m for m in plan["methods"] if m["method"] == "macro")
    assert 1_700 < macro5["size_90"] < 1_800
    by = {m["method"]: m for m in plan["methods"]}
    # exact methods, exact figures (docs/audit.md §6, the file's margin 43,957)
    assert by["minerva"]["size_90"] == 1_425_948  # exact binomial tails
    assert (by["supersimple"]["zero_error"], by["supersimple"]["common_tools_size"]) == (
        2_671, 6_404)
    # the ballot totals of the plan reconcile: emitidos + the 731 electors of the 6 mesas
    # not installed (phantom batches) = the plan's total
    b = plan["ballots"]
    assert (b["reported_cast"], b["phantom"]["not_installed"], b["bound"]) == (
        18_856_636, [6, 731], 18_857_367) == (18_856_636, [6, 731], plan["total_ballots"])
    code, out = run("audit", "sample", "-a", "s1", "--seed", SEED, "--json")
    assert code == 0, out
    rnd = json.loads(out)["round"]
    assert len(rnd["draws"]) == macro5["size_90"] and rnd["size_rule"] == "plan_90"
    # both screens print the same reconciled sentence
    code, text = run("--lang", "en", "audit", "sample", "-a", "s2", "--seed", SEED,
                     "--size", "5")
    assert code == 0
    flat = " ".join(text.split())
    assert "18,856,636 ballots cast" in flat and "731 possible in 6 mesas not installed" \
        in flat and "= 18,857,367 in the audit's error bound" in flat
    code, text = run("--lang", "en", "audit", "plan", "-r", "0.05", "--replicates", "1000")
    flat = " ".join(text.split())
    assert code == 0 and "= 18,857,367 in the audit's error bound" in flat
    assert "the same computation 'audit sample' uses" in flat


def test_first_round_size_is_stable_between_seeds(runoff: ParsedSnapshot) -> None:
    """The 90% size moves by less than +/-1% between seeds (the plan says so)."""
    pop = build_population(runoff.frame, runoff.contest, snapshot_id=runoff.snapshot_id)
    sizes = [first_round_size(pop, "macro", 0.05, seed=s) for s in (1, 2, 3)]
    assert all(s is not None for s in sizes)
    mid = (max(sizes) + min(sizes)) / 2
    assert max(sizes) <= mid * 1.01 and min(sizes) >= mid * 0.99, sizes


# --- rejected and missing actas --------------------------------------------------------------
def test_rejected_schools_count_as_the_worst_case(tmp_path: Path, data_dir: Path) -> None:
    """Argentina 2015: 9,923 schools rejected at ingest (their figures break the turnout
    identity) are not left out of the audit: as the worst case their electors' ballots all
    go to the loser, which erases the margin, and the plan says how many and why."""
    from test_count import argentina_generic

    run = cli(tmp_path / "ar.duckdb")
    path = argentina_generic(data_dir, tmp_path)
    assert run("ingest", str(path))[0] == 0
    code, out = run("audit", "plan", "--json")
    plan = json.loads(out)
    assert not plan["auditable"] and plan["methods"] == []
    n_rej = 13_706 - plan["n_actas"]
    assert plan["left_out"]["rejected"]["actas"] == n_rej > 9_900
    assert plan["left_out"]["rejected"]["ballots"] > 20_000_000  # their electors
    assert plan["margins"][0] < 0
    assert f"{n_rej:,} actas rejected at ingest" in plan["reasons_en"][1]
    code, text = run("audit", "plan")
    assert code == 1 and f"{n_rej:,} actas rechazadas" in " ".join(text.split())
    # as phantom batches (the worst case if drawn) they stay in the population
    code, out = run("audit", "plan", "--rejected", "batch", "--replicates", "100", "--json")
    plan = json.loads(out)
    assert plan["n_actas"] == 13_706 and plan["ballots"]["phantom"]["rejected"][0] == n_rej
    # and a sample refuses rather than drawing over the survivors only
    code, out = run("audit", "sample", "-a", "x", "--seed", SEED, "--json")
    assert code != 0 and "no margin" in json.loads(out)["message_en"]


def test_missing_mesas_without_electors_refuse_the_audit(tmp_path: Path,
                                                          data_dir: Path) -> None:
    """2021 first round: 9,335 mesas listed with no data. Nothing bounds them, so the plan
    refuses and says how many and why; with --missing-bound they count as the worst case."""
    run = cli(tmp_path / "fr.duckdb")
    assert run("ingest", str(data_dir / FIRST_2021), "--as-of", "2021-05-11T00:00:00Z")[0] == 0
    code, out = run("audit", "plan", "--json")
    err = json.loads(out)
    assert code == 2 and "9,335 missing actas" in err["message_en"]
    assert "9,335 actas faltantes" in err["message_es"]
    code, out = run("audit", "plan", "--missing-bound", "300", "--replicates", "100",
                    "--json")
    plan = json.loads(out)
    assert plan["left_out"]["missing"] == {"actas": 9_335, "ballots": 2_800_500}
    assert plan["n_actas"] == 77_153


# --- super-simple: the formula named, the common tools' figure beside it ---------------------
def test_supersimple_matches_rlacalc_and_arlo() -> None:
    """rlacalc's documented examples (nmin, KM_Expected_sample_size_rounded) and the
    one-pass rounding Arlo uses, gamma = 1.03905."""
    nh = (354040 - 337589) / (354040 + 337589 + 33234)  # New Hampshire 2016
    assert supersimple.sample_size(0.2, 0.1) == 24
    assert supersimple.sample_size(0.002, 0.1) == 2393
    assert supersimple.sample_size(0.05, 0.1, o1=1) == 123
    assert supersimple.sample_size(0.005, 0.1, o1=1, u1=1) == 1067
    common = supersimple.sample_size_common
    assert common(0.05, 0.05, r1=0.001, r2=0, s1=0.001, s2=0, converge=True) == 136
    assert common(nh, 0.05, r1=0.001, r2=0, s1=0, s2=0, converge=True) == 335
    assert common(0.03, 0.05, converge=True) == 226  # rlacalc -m 3 -r 5 (README)
    assert common(0.03, 0.05) == 226  # Arlo: one rounding pass, same here
    assert common(0.05, 0.05, r1=0.05, r2=0, s1=0, s2=0) is None  # no drift: every ballot
    # the linear rates formula the plan uses is a different (smaller) figure, named
    assert supersimple.sample_size_rates(0.03, 0.05, r1=0.001) < common(0.03, 0.05)


# --- Minerva: exact sizes --------------------------------------------------------------------
def _minerva_p_fraction(n: int, s: Fraction, alpha: Fraction) -> Fraction:
    """Exact rational oracle: P(stop) after n ballots."""
    pmf_s = [math.comb(n, j) * s**j * (1 - s) ** (n - j) for j in range(n + 1)]
    pmf_0 = [Fraction(math.comb(n, j), 2**n) for j in range(n + 1)]
    tail_s, tail_0 = Fraction(0), Fraction(0)
    best = Fraction(0)
    for j in range(n, -1, -1):
        tail_s += pmf_s[j]
        tail_0 += pmf_0[j]
        if tail_s * alpha >= tail_0:
            best = tail_s  # the smallest qualifying k gives the largest tail
    return best


def _minerva_p_float(n: int, s: float, alpha: float) -> float:
    tail_s = tail_0 = best = 0.0
    for j in range(n, -1, -1):
        tail_s += math.comb(n, j) * s**j * (1 - s) ** (n - j)
        tail_0 += math.comb(n, j) / 2**n
        if tail_s * alpha >= tail_0 * (1 - 1e-12):
            best = tail_s
    return best


def test_minerva_first_round_sizes_are_exact_for_small_contests() -> None:
    n, how = bravo.minerva_size(0.6, 0.1)
    assert (n, how) == (173, "exact")
    s, a = Fraction(3, 5), Fraction(1, 10)
    assert _minerva_p_fraction(173, s, a) >= Fraction(9, 10)
    assert _minerva_p_fraction(172, s, a) < Fraction(9, 10)
    assert all(_minerva_p_float(m, 0.6, 0.1) < 0.9 for m in range(1, 173))
    for m in (60, 120, 173):
        assert bravo.minerva_first_round_probability_exact(m, 0.6, 0.1) == pytest.approx(
            _minerva_p_float(m, 0.6, 0.1), rel=1e-9)
    # the normal approximation it replaces was too small for small contests
    approx = bravo.first_round_size(
        lambda m: bravo.minerva_first_round_probability(m, 0.7, 0.05), 0.9)
    assert bravo.minerva_size(0.7, 0.05) == (56, "exact") and approx == 52
    # large contests: exact tails with bisection (the normal figure was within 0.1%)
    big, how = bravo.minerva_size(0.5011, 0.05)
    assert how == "exact_bisection"
    assert bravo.minerva_first_round_probability_exact(big, 0.5011, 0.05) >= 0.9
    assert bravo.minerva_first_round_probability_exact(big - 1, 0.5011, 0.05) < 0.9


# --- the audit workflow on PostgreSQL ---------------------------------------------------------
def test_audit_workflow_on_postgresql(tmp_path: Path, runoff: ParsedSnapshot,
                                      pg_server: object) -> None:
    """`--db postgresql://... audit sample` crashed with `type "double" does not exist`:
    the audit's SQL is portable now (placeholders, no QUALIFY, no scans by name). One
    department of the real 2021 runoff, plan -> sample -> record -> measure -> report."""
    import polars as pl

    from escrutinio.sources.tabular import write_tabular
    from pg_support import schema_url

    part = runoff.frame.filter(pl.col("area1_code") == "010000")  # Amazonas
    data, _ = write_tabular(part, runoff.contest, tmp_path / "amazonas.csv", runoff.as_of)
    with schema_url(pg_server) as url:  # type: ignore[arg-type]
        app = make_app()

        def run(*args: str) -> tuple[int, str]:
            res = runner.invoke(app, ["--db", url, *args])
            if res.exception and not isinstance(res.exception, SystemExit):
                raise res.exception
            return res.exit_code, res.stdout

        assert run("ingest", str(data))[0] == 0
        code, out = run("audit", "plan", "--replicates", "100", "--json")
        assert code == 0 and json.loads(out)["n_actas"] == part.height, out
        code, out = run("audit", "sample", "-a", "pg1", "--seed", SEED, "--size", "8",
                        "--json")
        assert code == 0, out
        draws = json.loads(out)["round"]["draws"]
        ids = sorted({d["acta_id"] for d in draws})
        counts = part.filter(pl.col("acta_id").is_in(ids)).select(
            "acta_id", "v_castillo", "v_fujimori", "blank", "null", "challenged")
        counts.write_csv(tmp_path / "c.csv")
        code, out = run("audit", "record", "-a", "pg1", str(tmp_path / "c.csv"), "--json")
        assert code == 0 and json.loads(out)["recorded"] == len(ids), out
        code, out = run("audit", "measure", "-a", "pg1", "--json")
        assert code == 0 and json.loads(out)["n_draws"] == 8, out
        code, out = run("audit", "report", "-a", "pg1", "--json")
        rep = json.loads(out)
        assert rep["replay"] == {"manifest_ok": True, "draws_ok": True, "measures_ok": True,
                                 "n_rounds": 1, "n_measures": 1}
        # a second round continues the same sequence
        code, out = run("audit", "sample", "-a", "pg1", "--size", "3", "--json")
        assert code == 0 and json.loads(out)["round"]["first_draw"] == 9, out
