"""Country packs (issue #16.1) and every candidate visible (#16.3).

Chile 2021 (its own pack), Argentina 2015 (no pack: the generic default) and Chile's ballots
recast as a single-round plurality contest of an unknown country are ingested through the
generic format; every command that applies runs in Spanish and English, as text and JSON,
and its output is searched for Peru's words. Peru's 2021 first round (18 parties) and
Chile's (runner-up in ballot position 2, third in position 7) check that status shows every
candidate, by votes.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from escrutinio.cli import app
from escrutinio.countries import GENERIC, PACKS, has_runoff, pack_for, vocabulary
from escrutinio.domain import ActaStatus, Candidate, Contest, ContestKind

CHILE = "chile-2021-first-round/chile_election_2021.csv.gz"
EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
runner = CliRunner()

#: never in a non-Peru contest's output, whatever it is
PERU_ONLY = re.compile(r"\bJEE\b|\bONPE\b|\bJNE\b|\bubigeo|\bRENIEC\b|\bPer[uú]\b|[Pp]eruvian"
                       r"|\bperuan[oa]s?\b", re.IGNORECASE)
#: only where the contest has a runoff (a runoff, or a first round with a threshold)
RUNOFF_WORDS = re.compile(r"segunda vuelta|\brunoff\b|second round|pase a la|balotaje",
                          re.IGNORECASE)
#: "mesa" is Peru's (and Chile's Spanish "mesa receptora"); elsewhere a polling station
MESA_EN = re.compile(r"\b[Mm]esas?\b")
MESA_ES_GENERIC = re.compile(r"\b[Mm]esas?\b(?! de votación)")
MESA_ES_CHILE = re.compile(r"\b[Mm]esas?\b(?! receptoras?)")


def run(db: Path, *args: str) -> tuple[int, str]:
    res = runner.invoke(app, ["--db", str(db), *args])
    return res.exit_code, res.stdout


def _strings(obj: object, key: str = "") -> Iterator[tuple[str, str]]:
    """(key, text) of every string value of a JSON document (keys are field names, not
    user-facing text: ``actas_jee`` stays the API's name)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(v, str(k))
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v, key)
    elif isinstance(obj, str):
        yield key, obj


def _leaks(text: str, lang: str, *, runoff: bool, mesa_es: re.Pattern[str]) -> list[str]:
    found = [m.group(0) for m in PERU_ONLY.finditer(text)]
    if not runoff:
        found += [m.group(0) for m in RUNOFF_WORDS.finditer(text)]
    found += [m.group(0) for m in (MESA_EN if lang == "en" else mesa_es).finditer(text)]
    return found


def _check(db: Path, args: list[str], *, runoff: bool, mesa_es: re.Pattern[str],
           ok_codes: tuple[int, ...] = (0,), json_too: bool = True) -> dict[str, object]:
    """Run one command as text in both languages and as JSON (its bilingual texts carry
    both: ``*_es``, ``*_en``); fail on any Peru word. Returns the JSON document."""
    doc: dict[str, object] = {}
    for lang in ("es", "en"):
        code, out = run(db, "--lang", lang, *args)
        assert code in ok_codes, (args, lang, out[-2000:])
        # the terminal wraps lines: "mesa" / "receptora" split by a line break is one term
        leaks = _leaks(" ".join(out.split()), lang, runoff=runoff, mesa_es=mesa_es)
        assert not leaks, (args, lang, leaks, out[-3000:])
        if not json_too or lang == "es":
            continue
        code, out = run(db, "--lang", lang, *args, "--json")
        assert code in ok_codes, (args, lang, out[-2000:])
        parsed = json.loads(out)
        for key, text in _strings(parsed):
            # a bilingual pair says which language it is in; other texts are checked in both
            langs = ["es"] if key.endswith("_es") else ["en"] if key.endswith("_en") else \
                ["es", "en"]
            for lg in langs:
                leaks = _leaks(text, lg, runoff=runoff, mesa_es=mesa_es)
                assert not leaks, (args, lang, key, leaks, text)
        doc = parsed if isinstance(parsed, dict) else {"items": parsed}
    return doc


def _commands(db: Path, *, runoff: bool, mesa_es: re.Pattern[str],
              only: tuple[str, ...] | None = None) -> dict[str, object]:
    """Every command that applies to a single per-acta snapshot (or those in ``only``)."""
    docs: dict[str, object] = {}
    kw = {"runoff": runoff, "mesa_es": mesa_es}
    commands: dict[str, tuple[list[str], tuple[int, ...]]] = {
        "snapshots": (["snapshots"], (0,)),
        "status national": (["status", "--level", "national"], (0,)),
        "status area1": (["status", "--level", "area1"], (0,)),
        "status area2": (["status", "--level", "area2"], (0,)),
        "history": (["history"], (0,)),
        "diff": (["diff", "first", "latest"], (0,)),
        "verify": (["verify", "--limit", "5"], (0,)),
        # a final count has nothing left to project: a plain refusal, in the country's words
        "project": (["project", "--sims", "200"], (0, 1, 2)),
        "contested": (["contested", "--sims", "200", "--limit", "5"], (0,)),
        "forensics": (["forensics", "--tests", "integer,place", "--limit", "5"], (0,)),
        "quickcount": (["quickcount", "--seed", "dados-1234", "--mesas", "300",
                        "--simulate-reports", "--boot", "50", "--limit", "5"], (0,)),
        # exit 1 when the margin is too thin to audit: still said in the country's words
        "audit plan": (["audit", "plan", "--replicates", "20"], (0, 1)),
    }
    for name, (args, codes) in commands.items():
        if only is None or name in only:
            docs[name] = _check(db, args, ok_codes=codes, **kw)
    return docs


def _table(out: str, title: str) -> tuple[list[str], list[list[str]]]:
    """The column headers (each folded back on one line) and the first line of every row
    of the table titled ``title`` (a ``box.SIMPLE_HEAD`` table: columns are found from the
    first data row, whose cells are never empty)."""
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip() == title)
    rule = next(i for i in range(start, len(lines)) if lines[i].strip().startswith("─"))
    first = lines[rule + 1]
    starts = [m.start() for m in re.finditer(r"(?:(?<=^ )|(?<=  ))\S", first)]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))

    def cells(line: str) -> list[str]:
        return [line[a:b].strip() for a, b in bounds]

    heads = [cells(ln) for ln in lines[start + 1:rule]]
    headers = [" ".join(h[j] for h in heads if h[j]) for j in range(len(bounds))]
    rows = [cells(ln) for ln in lines[rule + 1:] if ln[:starts[1]].strip()]
    return headers, rows


# --- the packs ----------------------------------------------------------------------------

def test_pack_for_by_country_and_generic_default() -> None:
    from escrutinio.sources.chile import CHILE_2021_FIRST_ROUND
    from escrutinio.sources.peru import PERU_2021_RUNOFF

    assert pack_for(PERU_2021_RUNOFF) is PACKS["PE"]
    assert pack_for(CHILE_2021_FIRST_ROUND) is PACKS["CL"]
    assert pack_for("ar") is GENERIC and pack_for(None) is GENERIC
    pe, cl, gen = PACKS["PE"], PACKS["CL"], GENERIC
    assert (pe.vocabulary.court, cl.vocabulary.court) == (("JEE", "JEE"), ("TRICEL", "TRICEL"))
    assert gen.vocabulary.court == ("tribunal electoral", "electoral court")
    assert cl.vocabulary.polling_station == ("mesa receptora", "polling station")
    assert (pe.timezone, cl.timezone, gen.timezone) == ("America/Lima", "America/Santiago",
                                                        "UTC")
    assert pe.area_labels["area1"]["es"] == "departamento"
    assert cl.area_labels["area1"]["en"] == "region"
    # the state "at the court" follows the country; the generic one names no country
    assert pe.vocabulary.status_label(ActaStatus.JEE, "en") == "at the JEE"
    assert cl.vocabulary.status_label(ActaStatus.JEE, "es") == "en el TRICEL"
    assert gen.vocabulary.status_label("jee", "en") == "at the electoral court"
    # Peru's measured rates are Peru's; elsewhere the stated generic assumption
    assert "Peru 2021" in pe.audit_error_rate.source[1]
    assert "generic" in gen.audit_error_rate.source[1] and not PERU_ONLY.search(
        " ".join(gen.audit_error_rate.source + gen.court_outcomes.source))
    # the datasets each pack names are in the registry
    from escrutinio.datasets import datasets_table
    names = {r["name"] for r in datasets_table("en")}
    assert set(pe.datasets) <= names and set(cl.datasets) <= names


def test_projection_court_defaults_are_perus_pack() -> None:
    from escrutinio.projection.model import JeeOutcomes

    o, d = PACKS["PE"].court_outcomes, JeeOutcomes()
    assert (d.p_annulled, d.p_corrected, d.correction_sd, d.rate_prior_n) == (
        o.p_annulled, o.p_corrected, o.correction_sd, o.rate_prior_n)


def test_sidecar_court_name_and_localized_prose() -> None:
    chile = Contest("x", "x", ContestKind.FIRST_ROUND, "CL", "2021-11-21",
                    (Candidate("a", "A"), Candidate("b", "B"), Candidate("c", "C")), 0.5)
    v = vocabulary(chile, {"court_name": json.dumps({"es": "Tribunal Electoral Regional",
                                                     "en": "Regional Electoral Court"})})
    assert v.court == ("Tribunal Electoral Regional", "Regional Electoral Court")
    assert v.status_label("jee", "en") == "at the Regional Electoral Court"
    assert vocabulary("UY", {"court_name": "Corte Electoral"}).court == ("Corte Electoral",) * 2
    text_es = "Mesas pequeñas; actas corregidas por el JEE; ONPE publica"
    assert PACKS["PE"].vocabulary.localize(text_es, "es") == text_es
    assert GENERIC.vocabulary.localize(text_es, "es") == (
        "Mesas de votación pequeñas; actas corregidas por el tribunal electoral; la autoridad "
        "electoral publica")
    assert PACKS["CL"].vocabulary.localize("each mesa's size; at the JEE", "en") == (
        "each polling station's size; at the TRICEL")
    # runoff wording: a first round leads to a runoff only when it has a threshold
    assert has_runoff(chile)
    assert not has_runoff(Contest("y", "y", ContestKind.FIRST_ROUND, "ZZ", "2021-11-21",
                                  chile.candidates, None))


# --- no Peru words outside Peru ------------------------------------------------------------

@pytest.fixture(scope="module")
def chile_files(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    from escrutinio.sources.chile import convert_chile_2021

    out = tmp_path_factory.mktemp("cl")
    data, _ = convert_chile_2021(data_dir / CHILE, out / "cl2021.csv.gz",
                                 as_of="2021-11-22T03:00:00Z")
    return data


def test_chile_by_its_dataset_name_is_the_converted_file(tmp_path: Path,
                                                         chile_files: Path) -> None:
    """A newcomer's first command, ``escrutinio ingest chile-2021-first-round``, goes
    through the same converter and reader as the documented by-hand path: the same
    contest, mesas and figures."""
    by_name, by_hand = tmp_path / "name.duckdb", tmp_path / "hand.duckdb"
    code, out = run(by_name, "ingest", "chile-2021-first-round", "--json")
    assert code == 0, out
    assert run(by_hand, "ingest", str(chile_files), "--json")[0] == 0
    a = json.loads(run(by_name, "status", "--json")[1])
    b = json.loads(run(by_hand, "status", "--json")[1])
    assert a["contest_id"] == b["contest_id"] == "cl-2021-presidencial-1v"
    assert a["national"] == b["national"] and a["units"] == b["units"]
    assert a["national"]["actas_total"] > 46_000 and a["n_rejected"] == b["n_rejected"] == 0
    assert a["snapshot"]["label"].startswith("SERVEL")


def test_chile_every_command_in_chiles_words(tmp_path: Path, chile_files: Path) -> None:
    db = tmp_path / "cl.duckdb"
    assert run(db, "ingest", str(chile_files), "--json")[0] == 0
    docs = _commands(db, runoff=True, mesa_es=MESA_ES_CHILE)
    # a risk-limiting audit from its public seed to its measured risk (rounds of 5 actas)
    kw = {"runoff": True, "mesa_es": MESA_ES_CHILE}
    _check(db, ["audit", "sample", "-a", "cl", "--seed", "31415926535897932384",
                "--size", "5"], **kw)
    _check(db, ["audit", "report", "-a", "cl"], **kw)
    _check(db, ["audit", "measure", "-a", "cl"], **kw)
    code, out = run(db, "status", "--level", "area1")
    out = " ".join(out.split())  # the terminal wraps lines
    assert code == 0 and "TRICEL" in out and "mesas receptoras no instaladas" in out
    code, out = run(db, "--lang", "en", "forensics", "--tests", "integer", "--limit", "3")
    assert "polling station" in out
    plan = docs["audit plan"]
    assert isinstance(plan, dict) and "generic assumption" in plan["error_model_source"]["en"]
    # Chile's snapshot gives no electors per mesa: the quick count is a ratio to mesas (it
    # was 0/0 = NaN, printed as "technical tie between nan% and nan%"), and it covers the
    # official two-candidate share
    qc = docs["quickcount"]["estimate"]
    assert isinstance(qc, dict) and qc["size_basis"] == "stations"
    comb = qc["combined"]
    official = docs["quickcount"]["fusion"]["combined"]["estimate"]
    assert 0.4 < comb["lower"] <= official <= comb["upper"] < 0.6, (comb, official)
    # a first round with a runoff: the race for the second place is said
    code, out = run(db, "--lang", "en", "status", "--level", "national")
    assert "Second place (the runoff ballot)" in " ".join(out.split())


@pytest.fixture(scope="module")
def argentina(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> list[Path]:
    spec = importlib.util.spec_from_file_location("example_ar_countries",
                                                  EXAMPLES / "argentina_2015_runoff.py")
    assert spec and spec.loader
    mod: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return list(mod.convert(data_dir, tmp_path_factory.mktemp("ar")))


def test_generic_country_every_command_in_generic_words(tmp_path: Path,
                                                        argentina: list[Path]) -> None:
    """Argentina has no pack: the generic polling station, the court and the level names
    its sidecar declares, nothing of Peru."""
    db = tmp_path / "ar.duckdb"
    folder = sorted(p for p in argentina[0].parent.iterdir())  # data files and sidecars
    sidecars = [p for p in folder if p.name.endswith(".contest.json")]
    assert sidecars and len(sidecars) < len(folder)
    # a sidecar alone: a clear error naming its data file, nothing stored
    code, out = run(db, "ingest", str(sidecars[0]), "--json")
    assert code == 2 and "sidecar" in out and sidecars[0].name[:-len(".contest.json")] in out
    assert not db.exists()
    # every file of the folder, as a shell's `ingest dir/*` gives them: the sidecars are
    # read with their data files
    code, out = run(db, "ingest", *map(str, folder), "--json")
    assert code == 0, out
    assert len(json.loads(out)["snapshots"]) == len(folder) - len(sidecars)
    # Chile's file went through every command: here those whose words depend on the pack
    _commands(db, runoff=True, mesa_es=MESA_ES_GENERIC, only=(
        "status national", "status area1", "history", "verify", "project", "contested",
        "forensics", "quickcount", "audit plan"))
    code, out = run(db, "--lang", "en", "status", "--level", "area1")
    flat = " ".join(out.split())
    assert code == 0 and "at the National Electoral Justice 0" in flat and "By district" in flat
    code, out = run(db, "status", "--level", "area1")
    flat = " ".join(out.split())
    assert "en Justicia Nacional Electoral 0" in flat
    assert "mesas de votación no instaladas" in flat


def test_plurality_contest_has_no_runoff_words_nor_majority(tmp_path: Path,
                                                            chile_files: Path) -> None:
    """Chile's ballots recast as a single-round plurality contest (no majority_threshold)
    of a country without a pack (ZZ, ISO's user-assigned code): no second-place race, no
    runoff wording, no "> 1/2 of valid votes" audit assertion."""
    side = json.loads(Path(f"{chile_files}.contest.json").read_text(encoding="utf-8"))
    side["contest"] |= {"id": "zz-plurality", "name": "Plurality contest (Chile's ballots)",
                        "country": "ZZ", "majority_threshold": None}
    side.pop("area_labels", None)
    data = tmp_path / "zz.csv.gz"
    data.write_bytes(chile_files.read_bytes())
    Path(f"{data}.contest.json").write_text(json.dumps(side), encoding="utf-8")
    db = tmp_path / "zz.duckdb"
    code, out = run(db, "ingest", str(data), "--json")
    assert code == 0, out
    # Chile's file went through every command above: here those that speak of rounds
    docs = _commands(db, runoff=False, mesa_es=MESA_ES_GENERIC, only=(
        "status national", "status area1", "history", "contested", "forensics",
        "audit plan"))
    st = docs["status national"]
    assert isinstance(st, dict) and st["runoff_race"] is None
    plan = docs["audit plan"]
    assert isinstance(plan, dict)
    kinds = {a["kind"] for a in plan["assertions"]}  # type: ignore[union-attr]
    assert kinds == {"pairwise"}, kinds
    assert not any("1/2" in a["label_en"] for a in plan["assertions"])  # type: ignore
    code, out = run(db, "--lang", "en", "status", "--level", "area1")
    assert "By level 1" in out and "Second place" not in out


# --- every candidate visible -----------------------------------------------------------------

def _national_lines(out: str, names: list[str]) -> list[str]:
    """The candidate names in the order status prints them."""
    pos = {n: out.find(f"  {n}") for n in names}
    assert all(p >= 0 for p in pos.values()), [n for n, p in pos.items() if p < 0]
    return sorted(names, key=lambda n: pos[n])


def test_status_shows_every_chile_candidate_by_votes(tmp_path: Path, chile_files: Path) -> None:
    db = tmp_path / "cl.duckdb"
    assert run(db, "ingest", str(chile_files), "--json")[0] == 0
    code, out = run(db, "status", "--level", "national", "--json")
    st = json.loads(out)
    cands = st["national"]["candidates"]
    assert len(cands) == 7  # JSON: every candidate
    by_votes = [c["name"] for c in sorted(cands, key=lambda c: -c["votes"])]
    code, out = run(db, "--lang", "en", "status", "--level", "area1")
    assert code == 0
    assert _national_lines(out, by_votes) == by_votes
    # Kast first, Boric second (ballot position 1!), Parisi third (ballot position 7)
    assert by_votes[:3] == ["José Antonio Kast Rist", "Gabriel Boric Font",
                            "Franco Parisi Fernández"]
    headers, rows = _table(out, "By region")
    codes = [c["code"] for c in sorted(cands, key=lambda c: -c["votes"])]
    k = headers.index(next(h for h in headers if h.startswith("others"))) - 8
    # as many as fit 160 columns (not a terminal), at least three, by votes; the rest summed
    assert headers[5] == "TRICEL" and 3 <= k < 7
    assert headers[8:8 + k + 1] == [*codes[:k], f"others ({7 - k})"], headers
    # every region, and the tail candidates summed into "others", never dropped
    units = json.loads(run(db, "status", "--level", "area1", "--json")[1])["units"]
    assert len(rows) == 1 + len(units) == 1 + 16  # the home row (no mesa abroad), 16 regions
    votes = {u["code"]: {c["code"]: c["votes"] for c in u["candidates"]} for u in units}
    for row in rows[1:]:
        v = votes[row[0]]
        assert row[8:8 + k + 1] == [*(f"{v[c]:,}" for c in codes[:k]),
                                    f"{sum(v[c] for c in codes[k:]):,}"]


def test_status_shows_every_peru_2021_first_round_party(tmp_path: Path,
                                                        data_dir: Path) -> None:
    from escrutinio.sources.peru import PERU_2021_FIRST_ROUND

    db = tmp_path / "pe1.duckdb"
    src = data_dir / "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz"
    code, out = run(db, "ingest", str(src), "--as-of", "2021-05-11T00:00:00Z", "--json")
    assert code == 0, out[-2000:]
    code, out = run(db, "status", "--level", "national", "--json")
    cands = json.loads(out)["national"]["candidates"]
    assert len(cands) == 18 == len(PERU_2021_FIRST_ROUND.candidates)
    by_votes = [c["name"] for c in sorted(cands, key=lambda c: -c["votes"])]
    assert by_votes[:2] == ["José Pedro Castillo Terrones", "Keiko Sofía Fujimori Higuchi"]
    code, out = run(db, "status", "--level", "area1")
    assert code == 0
    assert _national_lines(out, by_votes) == by_votes  # all 18, by votes
    headers, rows = _table(out, "Por departamento")
    codes = [c["code"] for c in sorted(cands, key=lambda c: -c["votes"])]
    k = headers.index(next(h for h in headers if h.startswith("otros"))) - 8
    # third place is de Soto (avpais), 541 votes ahead of López Aliaga: always shown
    assert headers[5] == "JEE" and k >= 3 and codes[:3] == ["perulibre", "fp", "avpais"]
    assert headers[8:8 + k + 1] == [*codes[:k], f"otros ({18 - k})"], headers
    units = json.loads(run(db, "status", "--level", "area1", "--json")[1])["units"]
    # home, abroad, then the 25 departments and the 5 continents abroad
    assert len(rows) == 2 + len(units) == 2 + 25 + 5
    assert rows[0][:2] == ["home", "En el país / At home"]
    # Peru keeps its own words
    assert "en el JEE" in out and "Por departamento" in out


def test_chile_dashboard_pages_in_chiles_words(tmp_path: Path, chile_files: Path) -> None:
    """The dashboard's pages of a Chilean contest (every text goes through the page's
    ``T``, in the contest's words): the TRICEL, polling stations, nothing of Peru."""
    from fastapi.testclient import TestClient

    from escrutinio.api.app import create_app

    db = tmp_path / "cl.duckdb"
    assert run(db, "ingest", str(chile_files), "--json")[0] == 0
    client = TestClient(create_app(str(db), projection_sims=200, warm=False))
    sid = json.loads(run(db, "snapshots", "--json")[1])[0]["snapshot_id"]
    for prefix, lang in (("", "es"), ("/en", "en")):
        for path in ("/", f"/s/{sid}/contested/", f"/s/{sid}/forensics/",
                     f"/s/{sid}/quickcount/", f"/s/{sid}/verify/", "/mesa/"):
            res = client.get(prefix + path)
            assert res.status_code == 200, (path, res.text[-500:])
            text = re.sub(r"<[^>]+>", " ", res.text)
            leaks = _leaks(text, lang, runoff=True, mesa_es=MESA_ES_CHILE)
            assert not leaks, (prefix + path, leaks)
        home = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", client.get(prefix + "/").text))
        assert ("en el TRICEL 0" if lang == "es" else "at the TRICEL 0") in home
        assert ("Buscar mesa receptora" if lang == "es" else "Find a polling station") in home
