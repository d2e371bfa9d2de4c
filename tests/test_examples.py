"""The documented converters of docs/examples/ (issue #16.5), run on the real development
data and ingested through the generic format; every figure checked against sums computed
here from the raw source files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

from escrutinio import service
from escrutinio.domain import Level
from escrutinio.sources.base import FRACTION_COUNTED_KEY, SERIES_FRACTION_KEY

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def us() -> ModuleType:
    return load_example("us_2020_progress")


@pytest.fixture(scope="module")
def ar() -> ModuleType:
    return load_example("argentina_2015_runoff")


def us_raw(data_dir: Path) -> pl.DataFrame:
    raw = pl.read_csv(data_dir / "us-2020-president-progress/state-changes-excerpt.csv.gz",
                      infer_schema_length=0)
    return raw.with_columns(
        pl.col("state").str.replace(r" \(EV: \d+\)$", "").alias("name"),
        pl.col("timestamp").str.to_datetime(time_zone="UTC").alias("ts"),
        *[pl.col(c).cast(pl.Int64) for c in ("leading_candidate_votes",
                                             "trailing_candidate_votes", "votes_remaining",
                                             "total_votes_count")])


def votes_of(df: pl.DataFrame, who: str) -> pl.Expr:
    return (pl.when(pl.col("leading_candidate_name") == who)
            .then(pl.col("leading_candidate_votes"))
            .otherwise(pl.col("trailing_candidate_votes")))


# --- US 2020: a long series file ------------------------------------------------------


def test_us_series_ingests_as_many_snapshots_with_hand_sums(us, data_dir, tmp_path, tmp_store):
    paths = us.convert(data_dir, tmp_path / "us", freq="1d")
    assert [p.name for p in paths] == ["us-2020-president-progress-national.csv",
                                       "us-2020-president-progress-states.csv"]
    snaps = service.parse_paths([tmp_path / "us"])  # folder ingest of generic files
    nat = [s for s in snaps if s.level == "national"]
    states = [s for s in snaps if s.level == "area1"]
    assert len(nat) == len(states) > 30 and len(snaps) == 2 * len(nat)
    assert all(s.rejected.height == 0 for s in snaps)
    outcomes = service.ingest(tmp_store, snaps)  # one transaction
    assert len({o.snapshot_id for o in outcomes}) == len(snaps)

    raw = us_raw(data_dir)
    last = raw.sort("ts").group_by("name").last()  # each state's final row
    want = {"biden": int(last.select(votes_of(last, "Biden")).sum().item()),
            "trump": int(last.select(votes_of(last, "Trump")).sum().item())}
    st = service.state(tmp_store, states[-1].snapshot_id, level=Level.AREA1)
    got = {c.code: c.votes for c in st.national.candidates}
    assert got["biden"] == want["biden"] == 65_854_887
    assert got["trump"] == want["trump"]
    assert got["other"] == int(last["total_votes_count"].sum()) - want["biden"] - want["trump"]
    ny = next(u for u in st.units if u.code == "NY")
    row = last.filter(pl.col("name") == "New York").row(0, named=True)
    assert {c.code: c.votes for c in ny.candidates}["biden"] == row["leading_candidate_votes"]

    # the source's estimate of what remains reaches the projection's metadata keys
    md = tmp_store.snapshot_metadata(st.contest_id)
    first_nat = md[nat[0].snapshot_id]
    rem0 = raw.filter(pl.col("ts") == pl.col("ts").min())
    counted0 = int(rem0["total_votes_count"].sum())
    left0 = int(rem0["votes_remaining"].clip(lower_bound=0).sum())
    assert float(first_nat[SERIES_FRACTION_KEY]) == pytest.approx(
        counted0 / (counted0 + left0), rel=1e-12)
    by_unit = json.loads(md[states[0].snapshot_id][FRACTION_COUNTED_KEY])
    assert set(by_unit) == set(us.USPS[n] for n in raw["name"].unique())
    assert all(0 <= f <= 1 for f in by_unit.values())
    # negative estimates are clipped, and the sidecar says how many
    n_neg = int((raw["votes_remaining"] < 0).sum())
    assert n_neg > 0 and f"{n_neg} rows with a negative estimate" in first_nat["notes"]
    assert first_nat["figures_absent"] == "electors,blank,null"
    # the feed has no blank, null, challenged or electors: unknown, never 0
    for u in (st.national, ny):
        assert (u.blank, u.null, u.challenged, u.electors, u.turnout) == (None,) * 5

    hist = service.history(tmp_store)
    assert len(hist.points) == len(nat)


def test_us_by_state_series_shows_the_late_mail_shift(us, data_dir, tmp_path, tmp_store):
    # data README: Biden's two-candidate share in New York went from 58.97% on 4 Nov to
    # 61.74% at the last row (late mail ballots); California from 66.47% to 64.91%
    paths = us.convert(data_dir, tmp_path / "bs", by_state=True,
                       states=["New York", "California"])
    snaps = service.parse_paths(paths)
    service.ingest(tmp_store, snaps)
    for cid, first, final in (("us-2020-president-ny", 58.97, 61.74),
                              ("us-2020-president-ca", 66.47, 64.91)):
        cuts = sorted((s for s in snaps if s.contest.id == cid), key=lambda s: s.as_of)
        shares = []
        for s in (cuts[0], cuts[-1]):
            b, t = (int(s.frame[c][0]) for c in ("v_biden", "v_trump"))
            shares.append(round(100 * b / (b + t), 2))
        assert shares == [first, final]
        assert all(s.level == "national" and SERIES_FRACTION_KEY in s.metadata for s in cuts)


def test_us_negative_remaining_in_a_file_is_refused(us, data_dir, tmp_path):
    from escrutinio.errors import IngestError
    from escrutinio.sources.tabular import parse_tabular_many

    (p,) = us.convert(data_dir, tmp_path / "neg", by_state=True, states=["Hawaii"])
    text = p.read_text().splitlines()
    head = text[0].split(",")
    cells = text[2].split(",")
    cells[head.index("votes_remaining")] = "-5"
    text[2] = ",".join(cells)
    p.write_text("\n".join(text) + "\n")
    with pytest.raises(IngestError) as ei:
        parse_tabular_many(p)
    assert (ei.value.location.line, ei.value.location.field, ei.value.rule) == (
        3, "votes_remaining", "negative_count")


# --- Argentina 2015: the inconsistent source ------------------------------------------


def test_argentina_rejects_the_inconsistent_schools_and_keeps_them_counted(
        ar, data_dir, tmp_path, tmp_store):
    (path,) = ar.convert(data_dir, tmp_path / "ar")
    (snap,) = service.parse_paths([path])
    service.ingest(tmp_store, [snap])

    d = data_dir / "argentina-2015-runoff"
    est = pl.read_csv(d / "arg_ballo_establecimientos.csv.gz", infer_schema_length=0)
    votes = pl.read_csv(d / "arg_ballo_est_diff_votos.csv.gz", infer_schema_length=0)
    wide = votes.pivot(on="id_partido", index="id_establecimiento", values="votos")
    j = est.join(wide, on="id_establecimiento", how="left").with_columns(
        pl.col("electores", "votantes", "blancos", "nulos", "0131", "0135").cast(pl.Int64))
    ok = j.filter((pl.col("0131") + pl.col("0135") + pl.col("blancos") + pl.col("nulos")
                   == pl.col("votantes")) & (pl.col("votantes") <= pl.col("electores")))
    assert snap.frame.height == ok.height
    assert set(snap.frame["acta_id"]) == set(ok["id_establecimiento"])
    bad = set(snap.rejected.filter(pl.col("rule") == "sum_mismatch")["acta_id"])
    assert len(bad) == 13_706 - 3_788  # data README: only ~3,800 satisfy the identity
    no_votes = snap.rejected.filter(pl.col("rule") == "counted_incomplete")["acta_id"]
    assert no_votes.to_list() == ["10523"]  # the one school without party votes

    st = service.state(tmp_store, "latest", level=Level.NATIONAL)
    got = {c.code: c.votes for c in st.national.candidates}
    assert got == {"scioli": int(ok["0131"].sum()), "macri": int(ok["0135"].sum())}
    # every school stays in the denominator: counted + rejected = all 13,706 schools
    assert st.national.actas_total == est.height == 13_706
    assert st.national.actas_counted == ok.height
    assert "the source is inconsistent" in snap.metadata["notes"]


def test_level_accepts_the_countrys_own_names(ar, us, data_dir, tmp_path):
    from typer.testing import CliRunner

    from escrutinio.cli import app

    runner = CliRunner()

    def run(db: Path, *args: str) -> tuple[int, str]:
        res = runner.invoke(app, ["--db", str(db), *args])
        return res.exit_code, res.stdout

    (path,) = ar.convert(data_dir, tmp_path / "ar")
    db = tmp_path / "ar.duckdb"
    code, out = run(db, "ingest", str(path), "--json")
    assert code == 0
    # the source's own caveats are said at ingest, in both languages
    notes = json.loads(out)["notes"]
    assert any("9,918 of 13,706 schools" in n["en"] and "9,918 de 13,706 escuelas" in n["es"]
               for n in notes)
    for word, level, n in (("distrito", "area1", 24), ("District", "area1", 24),
                           ("sección", "area2", 527), ("seccion", "area2", 527),
                           ("circuit", "area3", 5548), ("area1", "area1", 24)):
        code, out = run(db, "status", "--level", word, "--json")
        assert code == 0, (word, out)
        doc = json.loads(out)
        assert (doc["level"], len(doc["units"])) == (level, n), word
    res = runner.invoke(app, ["--db", str(db), "status", "--level", "comarca"])
    assert res.exit_code == 2 and "distrito" in res.output and "circuito" in res.output

    paths = us.convert(data_dir, tmp_path / "us", freq="1d", states=["Alaska", "Ohio"])
    db = tmp_path / "us.duckdb"
    assert run(db, "ingest", str(paths[1]), "--json")[0] == 0  # the state cuts only
    code, out = run(db, "--lang", "en", "status", "--level", "estado", "--json")
    assert code == 0 and [u["code"] for u in json.loads(out)["units"]] == ["AK", "OH"]
