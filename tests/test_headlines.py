"""The headline rule (docs/design.md, "Headlines"), enforced on forensics.

No sentence may claim that anything "matters for the result", "could change the winner"
or is an "anomaly" unless a test survives the false-discovery control at the declared
level; no sentence may say "nothing remains" while any acta is pending, rejected,
missing or unknown. Checked on the CLI (JSON and text, Spanish and English) over real
clean controls — Chile 2021, the 2021 runoff final, the 2021 first round — and on
simulated clean elections (60 here; 500+ in validation/forensics_headlines.py); and the
other way round: a stuffed election *is* flagged, for the right candidate, with its votes
at stake. The phrase patterns are this file's own, not the implementation's.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from escrutinio.commands import forensics as forensics_cmd
from escrutinio.commands.common import opts
from escrutinio.forensics import run_forensics
from escrutinio.forensics.simulate import (
    SMALL_FIRST_ROUND,
    SMALL_RUNOFF,
    inject_stuffing,
    small_election,
)
from escrutinio.provenance import to_jsonable
from escrutinio.sources.chile import convert_chile_2021
from escrutinio.sources.onpe_files import parse_ronderos
from escrutinio.sources.tabular import parse_tabular
from escrutinio.store.duckdb_store import DuckDBStore

RUNOFF = "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz"
FIRST = "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz"
CHILE = "chile-2021-first-round/chile_election_2021.csv.gz"
runner = CliRunner()

#: words that, in a sentence without a negation, claim something
CLAIM_WORDS = re.compile(
    r"anomal|matters? for the result|importan? para el resultado|change the winner|"
    r"cambiar al ganador|reaches the (margin|line)|alcanza (el margen|la línea)",
    re.IGNORECASE)
#: the verdict's capitals are a claim even next to "(not proof)"
SHOUTED = re.compile(r"ANOMAL(Y|ÍA)")
NEGATION = re.compile(r"\b(no|not|none|ninguna?|sin|cannot|ni|neither|nor)\b", re.IGNORECASE)
NOTHING_REMAINS = re.compile(
    r"nothing (remains|left)|no votes? remains?|no (queda|quedan) (nada|votos|actas)|"
    r"nada por (contar|escrutar)|all (votes|actas) (are )?counted|"
    r"todas las actas (están )?contabilizadas", re.IGNORECASE)
ZERO_P = re.compile(r"\bp = 0(\.0+)?(e\+?0+)?\b(?![.\d])|\bp = 0\.0e\+00")


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.;:!?])\s+|\n+", text) if s.strip()]


def claims(text: str) -> list[str]:
    """Sentences that claim an anomaly or that something matters for the result."""
    return [s for s in sentences(text)
            if SHOUTED.search(s) or (CLAIM_WORDS.search(s) and not NEGATION.search(s))]


def report_texts(doc: dict[str, Any]) -> list[str]:
    """Every sentence-bearing field of a forensics JSON document, both languages."""
    out = [doc["summary_es"], doc["summary_en"], doc["stakes"]["text_es"],
           doc["stakes"]["text_en"]]
    out += [t[f] for t in doc["stakes"]["thresholds"] for f in ("text_es", "text_en")]
    for t in doc["tests"]:
        out += [t[f] for f in ("verdict_es", "verdict_en", "verdict_national_es",
                               "verdict_national_en", "verdict_scopes_es",
                               "verdict_scopes_en")]
    for k in doc.get("klimek", []) or []:
        out += [k["text_es"], k["text_en"]]
    return out


def check_rule(doc: dict[str, Any], texts: list[str]) -> None:
    """The headline rule on one report: claims only with a flag after FDR; 'matters'
    only where a flagged acta's worst case reaches a deciding line; never 'nothing
    remains' (forensics never counts what remains; a snapshot with excluded actas least
    of all); never p = 0."""
    flagged = bool(doc["flags"])
    said = [c for t in texts for c in claims(t)]
    if not flagged:
        assert said == [], said[:3]
        assert all(not t["n_flagged_scopes"] for t in doc["tests"])
    could = any(t["could_change"] for t in doc["stakes"]["thresholds"])
    matters = [c for c in said if re.search(r"matter|importan", c, re.IGNORECASE)]
    assert bool(matters) == could, matters
    if could:
        assert doc["stakes"]["n_actas"] > 0 and flagged
    for t in texts:
        assert not NOTHING_REMAINS.search(t), t
        assert not ZERO_P.search(t), t
    for t in doc["tests"]:
        for r in t["scopes"]:
            assert r["p_text"] and not re.fullmatch(r"0(\.0*)?(e\+?0+)?", r["p_text"])


def strict_json(text: str) -> dict[str, Any]:
    def refuse(name: str) -> None:
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


# -- the CLI on real clean controls ---------------------------------------------------------
def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main(db: Annotated[str, typer.Option()] = "e.duckdb",
             lang: Annotated[str, typer.Option()] = "es") -> None:
        opts.db = db
        opts.lang = "en" if lang.startswith("en") else "es"

    forensics_cmd.register(app)
    return app


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The full 2021 runoff final and first round, and Chile 2021 per mesa."""
    tmp = tmp_path_factory.mktemp("headlines")
    path = tmp / "e.duckdb"
    snaps = [parse_ronderos(data_dir / RUNOFF, as_of="2021-06-17T00:00:00Z"),
             parse_ronderos(data_dir / FIRST, as_of="2021-05-11T09:15:00Z")]
    data, _ = convert_chile_2021(data_dir / CHILE, tmp / "chile.csv.gz",
                                 as_of="2021-11-22T03:00:00Z")
    snaps.append(parse_tabular(data))
    with DuckDBStore(path) as store:
        store.put_snapshots(snaps)
    return path


@pytest.mark.parametrize(("contest", "langs"), [
    ("pe-2021-presidencial-2v", ("es", "en")), ("pe-2021-presidencial-1v", ("es",)),
    ("cl-2021-presidencial-1v", ("en",))])
def test_cli_headlines_on_clean_controls(db: Path, contest: str,
                                         langs: tuple[str, ...]) -> None:
    """JSON (both languages in every text field) and the terminal text (each language on
    at least one dataset: the text prints the same fields)."""
    app = _app()
    res = runner.invoke(app, ["--db", str(db), "forensics", "--contest", contest, "--json"])
    assert res.exit_code == 0, res.stdout
    doc = strict_json(res.stdout)
    check_rule(doc, report_texts(doc))
    for lang in langs:
        res = runner.invoke(app, ["--db", str(db), "--lang", lang, "forensics", "--contest",
                                  contest, "--limit", "5"], terminal_width=400)
        assert res.exit_code == 0, res.stdout
        check_rule(doc, [res.stdout])
    if contest == "pe-2021-presidencial-2v":
        # the case of issue 14: 0 of 452 tests flagged, 552 actas listed individually
        assert doc["flags"] == [] and doc["n_hypotheses"] > 400
        st = doc["stakes"]
        assert st["n_listed"] > 400 and st["n_actas"] == 0 and st["valid_votes"] == 0
        assert "no flagged vote can change" in st["text_en"]
        assert "nothing about them" in doc["summary_en"]  # 235 actas not analysed
    if contest == "pe-2021-presidencial-1v":
        kinds = [t["kind"] for t in doc["stakes"]["thresholds"]]
        assert kinds == ["majority", "runoff"]  # 50 % and the race for second place


# -- simulated clean elections, and a stuffed one --------------------------------------------
def _doc(frame: pl.DataFrame, contest: Any, **kw: Any) -> dict[str, Any]:
    rep = run_forensics(frame, contest, max_flagged=None, **kw)
    return strict_json(json.dumps(to_jsonable(rep), allow_nan=False))


def test_simulated_clean_elections_do_not_make_headlines() -> None:
    """60 clean elections, new structure each (runoffs and 4-candidate first rounds).
    Under the global null BH at q = 0.05 flags an election with probability <= 0.05:
    9 or more of 60 happen by chance with probability ~0.001."""
    rng = np.random.Generator(np.random.PCG64(14))
    flagged = 0
    for e in range(60):
        contest = SMALL_RUNOFF if e % 2 == 0 else SMALL_FIRST_ROUND
        doc = _doc(small_election(rng, contest=contest), contest, klimek_bootstrap=10)
        check_rule(doc, report_texts(doc))
        flagged += bool(doc["flags"])
    assert flagged <= 8


def test_a_stuffed_election_is_flagged_with_its_votes_at_stake() -> None:
    rng = np.random.Generator(np.random.PCG64(7))
    clean = small_election(rng, regions=8)
    stuffed, mask = inject_stuffing(clean, SMALL_RUNOFF, "rojo", 0.04, rng, fill=0.95,
                                    steal=0.9)
    doc = _doc(stuffed, SMALL_RUNOFF)
    check_rule(doc, report_texts(doc))
    flagged = {(f["test"], f["quantity"]) for f in doc["flags"]}
    assert ("fingerprint", "rojo") in flagged and ("place", "rojo") in flagged
    assert not any(q == "azul" for _, q in flagged)  # the right direction
    assert any(SHOUTED.search(t["verdict_en"]) for t in doc["tests"]
               if t["test"] == "place" and t["quantity"] == "rojo")
    ids = set(stuffed.filter(pl.Series(mask))["acta_id"].to_list())
    counted = [a for a in doc["flagged_actas"] if a["in_flagged_scope"]]
    assert len({a["acta_id"] for a in counted} & ids) >= 0.9 * len(ids)
    st = doc["stakes"]
    assert st["n_actas"] == len(counted)
    (line,) = st["thresholds"]
    a, b = line["ahead"], line["behind"]
    assert line["reach"] == sum(2 * x["votes"][a] for x in counted)  # swaps count twice
    assert line["annul_move"] == sum(x["votes"][a] - x["votes"][b] for x in counted)
    assert line["could_change"] == (line["reach"] >= line["margin"])
    injected = int(stuffed.filter(pl.Series(mask))["v_rojo"].sum()
                   - clean.filter(pl.Series(mask))["v_rojo"].sum())
    assert st["valid_votes"] >= 0.9 * injected


def test_p_values_never_print_zero() -> None:
    """A p-value below the method's resolution prints as '< resolution' (JSON keeps the
    number and adds the string), never as 0."""
    rng = np.random.Generator(np.random.PCG64(3))
    clean = small_election(rng, regions=8)
    stuffed, _ = inject_stuffing(clean, SMALL_RUNOFF, "rojo", 0.10, rng, fill=0.95,
                                 steal=0.9)
    doc = _doc(stuffed, SMALL_RUNOFF, draws=99, seed=1)
    rows = [r for t in doc["tests"] for r in t["scopes"]]
    tiny = [r for r in rows if r["p_value"] <= r["p_resolution"]]
    assert tiny, "the stuffing should push some p-value below its resolution"
    for r in tiny:
        assert r["p_text"].startswith("< ")
        bound = float(r["p_text"][2:])
        assert math.isclose(bound, r["p_resolution"], rel_tol=0.05)
    mc = [r for r in rows if r["p_method"] == "monte_carlo"]
    assert mc and all(r["p_resolution"] == pytest.approx(1 / 100) for r in mc)
