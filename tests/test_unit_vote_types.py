"""The per-unit format with a vote-type (batch) column: one row per unit **and** type
(docs/formats.md §3, "vote_type"), through the parser, the store (migration 0006, both
backends), the counts that add a unit's types up and the projection that keeps them apart.

The input is real: the US 2020 count progressions (docs/examples/us_2020_progress.py, the
states series file, its first cuts), published per state. The feed has no vote types, so
the typed copy splits every state's figures into two types deterministically — "day" gets
⌊2x/3⌋ of each count, "mail" the rest — which keeps every sum: the typed file must give
exactly the untyped file's counts wherever a unit's types are added up.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from escrutinio.cli import app
from escrutinio.domain import VOTE_TYPE, sum_vote_types
from escrutinio.sources.base import FRACTION_COUNTED_KEY
from escrutinio.sources.tabular import parse_tabular_many, write_snapshot

runner = CliRunner()
N_CUTS = 3
COUNTS = ("cast", "v_biden", "v_trump", "v_other", "votes_remaining")
TYPES = {"day": {"es": "día de la elección", "en": "election day"},
         "mail": {"es": "voto por correo", "en": "mail ballots"}}
#: keys whose values name the snapshot or the contest (they differ between the two files)
VOLATILE = frozenset({"snapshot_id", "snapshot_ids", "source_sha256", "contest_id", "db",
                      "created_at", "ingested_at", "elapsed_seconds", "id", "sidecar",
                      "sidecar_sha256", "label", "source_uri"})


def _us_converter() -> Any:
    path = Path(__file__).resolve().parents[1] / "docs/examples/us_2020_progress.py"
    spec = importlib.util.spec_from_file_location("us_2020_progress_vt", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def split_types(frame: pl.DataFrame) -> pl.DataFrame:
    """Every row twice: "day" with ⌊2x/3⌋ of each count, "mail" with the rest (both are
    monotone, so no rule a row kept can break in a part; ``cast`` is split so that it is
    still the sum of the candidates of each part, as in the source)."""
    cand = [c for c in COUNTS if c.startswith("v_")]
    x = frame.with_columns(pl.col(list(COUNTS)).cast(pl.Int64))

    def part(name: str, first: bool) -> pl.DataFrame:
        def share(c: pl.Expr) -> pl.Expr:
            return c * 2 // 3 if first else c - c * 2 // 3
        rest = pl.col("cast") - pl.sum_horizontal(cand)
        return x.with_columns(
            *[share(pl.col(c)).alias(c) for c in cand if c != "cast"],
            share(pl.col("votes_remaining")).alias("votes_remaining"),
            (share(rest) + pl.sum_horizontal([share(pl.col(c)) for c in cand])).alias("cast"),
            pl.lit(name).alias(VOTE_TYPE))

    return pl.concat([part("day", True), part("mail", False)]).sort(
        "as_of", "unit_code", VOTE_TYPE, maintain_order=True)


@pytest.fixture(scope="module")
def files(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The untyped states file (first cuts) and its typed copy, each with its sidecar
    (distinct contest ids, so that both fit in one store)."""
    us = _us_converter()
    out = tmp_path_factory.mktemp("us")
    states = next(p for p in us.convert(data_dir, out / "conv", freq="1d")
                  if p.name.endswith("-states.csv"))
    side = json.loads(Path(f"{states}.contest.json").read_text(encoding="utf-8"))
    df = pl.read_csv(states, infer_schema=False)
    cuts = df["as_of"].unique(maintain_order=True).to_list()[:N_CUTS]
    df = df.filter(pl.col("as_of").is_in(cuts))
    paths: dict[str, Path] = {}
    for name, frame, extra in (("plain", df, {}),
                               ("typed", split_types(df), {"vote_types": TYPES})):
        p = out / f"{name}.csv"
        frame.write_csv(p)
        doc = {**side, **extra, "contest": {**side["contest"], "id": f"us-{name}"}}
        Path(f"{p}.contest.json").write_text(json.dumps(doc, ensure_ascii=False),
                                             encoding="utf-8")
        paths[name] = p
    return paths




# -- the parser ------------------------------------------------------------------------------
def test_typed_file_parses_to_the_untyped_counts(files: dict[str, Path], tmp_path: Path) -> None:
    plain = parse_tabular_many(files["plain"])
    typed = parse_tabular_many(files["typed"])
    assert len(plain) == len(typed) == N_CUTS
    for p, t in zip(plain, typed, strict=True):
        assert t.rejected.is_empty() and t.findings.height == p.findings.height
        assert t.frame.columns[-1] == VOTE_TYPE and VOTE_TYPE not in p.frame.columns
        assert t.frame.height == 2 * p.frame.height > 40
        assert sorted(t.frame[VOTE_TYPE].unique().to_list()) == ["day", "mail"]
        assert_frame_equal(sum_vote_types(t.frame).sort("unit_code"),
                           p.frame.sort("unit_code"))
        # the source's estimate of what remains, per unit and type (the projection's key)
        frac = json.loads(t.metadata[FRACTION_COUNTED_KEY])
        units = p.frame["unit_code"].to_list()
        assert set(frac) == {f"{u}|{v}" for u in units for v in TYPES}
        plain_frac = json.loads(p.metadata[FRACTION_COUNTED_KEY])
        ak = [frac["AK|day"], frac["AK|mail"], plain_frac["AK"]]
        assert max(ak) - min(ak) < 1e-3  # the same state split in proportion
    # exported and read back: the same rows, types included
    data, _ = write_snapshot(typed[-1], tmp_path / "back.csv")
    assert "vote_type" in data.read_text().splitlines()[0].split(",")[:4]
    back = parse_tabular_many(data)
    assert_frame_equal(back[0].frame, typed[-1].frame)


def _edit(src: Path, dst: Path, edit: Any, *, header: str | None = None) -> Path:
    lines = src.read_text(encoding="utf-8").splitlines()
    if header is not None:
        lines[0] = header
    lines = edit(lines)
    dst.write_text("\n".join(lines) + "\n", encoding="utf-8")
    Path(f"{dst}.contest.json").write_text(Path(f"{src}.contest.json").read_text())
    return dst


def test_duplicates_are_unit_and_type_pairs(files: dict[str, Path], tmp_path: Path) -> None:
    src = files["typed"]
    lines = src.read_text(encoding="utf-8").splitlines()
    day, mail = lines[1], lines[2]  # the first unit of the first cut, both types
    assert day.endswith(",day") and mail.endswith(",mail") and \
        day.split(",")[2] == mail.split(",")[2]
    first = parse_tabular_many(src)[0]
    # the same unit and type twice, identical: the second copy is rejected
    snap = parse_tabular_many(_edit(src, tmp_path / "dup.csv",
                                    lambda ls: [*ls[:3], day, *ls[3:]]))[0]
    assert snap.rejected.select("line", "acta_id", "rule").rows() == [
        (4, f"area1/{day.split(',')[2]}|day", "duplicate_unit_identical")]
    assert_frame_equal(snap.frame, first.frame)
    # a unit given with and without a type: every row of that unit is rejected
    untyped = day.rsplit(",", 1)[0] + ","
    snap = parse_tabular_many(_edit(src, tmp_path / "mixed.csv",
                                    lambda ls: [*ls[:3], untyped, *ls[3:]]))[0]
    assert snap.rejected.select("line", "rule").rows() == [
        (2, "vote_type_mixed"), (3, "vote_type_mixed"), (4, "vote_type_mixed")]
    assert snap.frame.height == first.frame.height - 2
    # 'batch' is the same column; blank types mean none given (the untyped frame)
    header = lines[0].replace("vote_type", "batch")
    snap = parse_tabular_many(_edit(src, tmp_path / "batch.csv", lambda ls: ls,
                                    header=header))[0]
    assert_frame_equal(snap.frame, first.frame)
    blank = parse_tabular_many(_edit(files["plain"], tmp_path / "blank.csv",
                                     lambda ls: [ls[0] + ",vote_type",
                                                 *(x + ", " for x in ls[1:])]))[0]
    assert VOTE_TYPE not in blank.frame.columns
    assert blank.frame.height == parse_tabular_many(files["plain"])[0].frame.height


# -- the store: migration 0006 on a store that predates it -----------------------------------
def test_old_store_is_upgraded_in_place(any_store_opener: Any, files: dict[str, Path]) -> None:
    plain = parse_tabular_many(files["plain"])[0]
    typed = parse_tabular_many(files["typed"])[0]
    with any_store_opener() as s:
        s.put_snapshot(plain)
        # what a store migrated before 0006 holds: no column, no record
        s.con.execute("ALTER TABLE units DROP COLUMN vote_type")
        s.con.execute("DELETE FROM schema_migrations WHERE version = 6")
    with any_store_opener(read_only=True) as s:  # a reader migrates nothing, still reads
        assert 6 not in s.schema_versions()
        assert_frame_equal(s.load_units(plain.snapshot_id), plain.frame.sort("unit_code"))
    with any_store_opener() as s:
        assert 6 in s.schema_versions()
        assert_frame_equal(s.load_units(plain.snapshot_id), plain.frame.sort("unit_code"))
        s.put_snapshot(typed)
        got = s.load_units(typed.snapshot_id)
        assert_frame_equal(got, typed.frame.sort("unit_code", VOTE_TYPE))
        from escrutinio.store.ledger import append_new, prove, verify_log, verify_proof

        append_new(s)
        assert verify_log(s).ok
        proof = prove(s, typed.snapshot_id, f"area1:{got['unit_code'][0]}|mail")
        assert verify_proof(proof) and proof.values[-1] == "mail"


# -- through the CLI, on both backends -------------------------------------------------------
@pytest.fixture(params=["duckdb", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "duckdb":
        yield str(tmp_path / "vt.duckdb")
        return
    from pg_support import schema_url

    with schema_url(request.getfixturevalue("pg_server")) as url:
        yield url


def _run(db: str, *args: str, code: int = 0) -> Any:
    res = runner.invoke(app, ["--db", db, *args])
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == code, (args, res.stdout)
    return json.loads(res.stdout) if "--json" in args and code == 0 else res


def test_typed_units_through_the_cli(db: str, files: dict[str, Path], tmp_path: Path) -> None:
    for name in ("plain", "typed"):
        _run(db, "ingest", str(files[name]), "--json")
    answers: dict[str, dict[str, Any]] = {}
    for name in ("plain", "typed"):
        c = ["--contest", f"us-{name}"]
        answers[name] = {
            "status": _run(db, "status", *c, "--json"),
            "status first": _run(db, "status", *c, "--snapshot", "first", "--json"),
            "history": _run(db, "history", *c, "--json"),
            "diff": _run(db, "diff", "first", "latest", *c, "--limit", "0", "--json"),
            "project": _run(db, "project", *c, "--sims", "400", "--json"),
        }
    plain, typed = answers["plain"], answers["typed"]
    # a unit's types add up: every count is the untyped file's, unit by unit
    nat = typed["status"]["national"]
    assert nat["cast"] > 100_000_000 and len(typed["status"]["units"]) == 44
    for key in ("status", "status first", "history", "diff"):
        assert _scrub_v(typed[key]) == _scrub_v(plain[key]), key
    # the projection treats each type apart, and says so
    pt, pp = typed["project"], plain["project"]
    types = pt["diagnostics"]["vote_types"]
    assert set(types) == set(TYPES) and pp["diagnostics"]["vote_types"] == {}
    assert types["day"]["rows"] == types["mail"]["rows"] == 44
    assert types["day"]["counted_valid"] > types["mail"]["counted_valid"] > 0
    assert pt["provenance"]["parameters"]["vote_types"] == ["day", "mail"]
    assert "vote_types" not in pp["provenance"]["parameters"]
    assert pt["diagnostics"]["n_units"] == 2 * pp["diagnostics"]["n_units"] == 88
    assert pt["diagnostics"]["n_history_cuts"] == N_CUTS - 1
    # what is still to come is the source's estimate, split by type: the same total
    rest = pt["diagnostics"]["external_remaining_votes"]
    assert rest > 1_000_000
    assert rest == pytest.approx(pp["diagnostics"]["external_remaining_votes"], rel=1e-4)
    assert rest == pytest.approx(sum(t["expected_to_come"] for t in types.values()))
    # exactly what the model gives in-process on the parsed typed cuts
    from escrutinio.projection.units import prepare_units

    cuts = parse_tabular_many(files["typed"])
    last = cuts[-1]
    frac = json.loads(last.metadata[FRACTION_COUNTED_KEY])
    remaining = pl.DataFrame({"unit_code": list(frac), "fraction_counted": list(frac.values())})
    prep = prepare_units(last.frame, last.contest, remaining=remaining,
                         history=[c.frame for c in cuts[:-1]])
    in_process = prep.diagnostics["vote_types"]
    assert set(in_process) == set(types)
    for t in types:
        assert in_process[t] == pytest.approx(types[t])
    assert prep.diagnostics["expected_votes_point"] == pytest.approx(
        pt["diagnostics"]["expected_votes_point"])

    # an undeclared type: refused naming file, line and field; nothing stored
    lines = files["typed"].read_text(encoding="utf-8").splitlines()
    lines[6] = lines[6].rsplit(",", 1)[0] + ",early"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    Path(f"{bad}.contest.json").write_text(
        Path(f"{files['typed']}.contest.json").read_text().replace('"us-typed"', '"us-bad"'))
    before = _run(db, "snapshots", "--json")
    res = _run(db, "ingest", str(bad), code=2)
    out = " ".join(res.output.split())
    assert "bad.csv" in out and "line 7" in out and "'vote_type'" in out
    assert "unknown_vote_type" in out and "early" in out
    assert _run(db, "snapshots", "--json") == before


def test_documented_example(tmp_path: Path) -> None:
    """docs/formats.md §3, "Vote types": the example and every figure said about it."""
    from escrutinio.errors import IngestError
    from escrutinio.projection.units import prepare_units
    from escrutinio.sources.tabular import parse_tabular, sidecar_path_for
    from test_tabular import doc_block

    sidecar = json.loads(doc_block("## 6. The sidecar")) | {
        "kind": "units", "vote_types": {"day": TYPES["day"], "mail": {"es": "voto por correo",
                                                                      "en": "mail"}}}
    text = doc_block("<!-- example: counties.csv -->")

    def read(body: str, name: str) -> Any:
        p = tmp_path / name
        p.write_text(body, encoding="utf-8")
        sidecar_path_for(p).write_text(json.dumps(sidecar), encoding="utf-8")
        return parse_tabular(p)

    snap = read(text, "counties.csv")
    assert snap.rejected.is_empty() and snap.frame.height == 4
    summed = sum_vote_types(snap.frame)
    assert summed.select("unit_code", "cast", "v_ana", "v_beto").rows() == [
        ("001", 7000, 3700, 3300), ("003", 11700, 5600, 6100)]
    frac = json.loads(snap.metadata[FRACTION_COUNTED_KEY])
    assert frac["001|mail"] == pytest.approx(1800 / 4300) and frac["001|day"] == 1.0
    remaining = pl.DataFrame({"unit_code": list(frac), "fraction_counted": list(frac.values())})
    prep = prepare_units(snap.frame, snap.contest, remaining=remaining)
    types = prep.diagnostics["vote_types"]
    assert prep.diagnostics["n_units"] == 4
    assert types["mail"]["expected_to_come"] == pytest.approx(6500)
    assert types["day"]["expected_to_come"] == 0
    with pytest.raises(IngestError) as err:
        read(text + "area2,003,Baker,01,early,100,50,50,0\n", "early.csv")
    assert (err.value.rule, err.value.location.line, err.value.location.field) == \
        ("unknown_vote_type", 6, "vote_type")
    mixed = read(text + "area2,003,Baker,01,,100,50,50,0\n", "mixed.csv")
    assert mixed.rejected["rule"].to_list() == ["vote_type_mixed"] * 3
    assert mixed.frame["unit_code"].to_list() == ["001", "001"]


def _scrub_v(value: Any) -> Any:
    from pg_support import scrub

    return scrub(value, VOLATILE)
