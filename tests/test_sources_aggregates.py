"""ONPE aggregate tables -> unit snapshots (2021 runoff progress tables, 2026 ikusij files).

Real data from the shared data folder; malformed inputs are written to tmp_path.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from escrutinio.domain import UNIT_COLUMNS, SnapshotKind
from escrutinio.errors import IngestError
from escrutinio.sources.onpe_aggregates import (
    parse_2026_district_bundle,
    parse_2026_national_timeseries,
    parse_progress_tables,
    read_2026_bundle_remaining,
)
from escrutinio.sources.peru import CONTESTS, PERU_2021_RUNOFF, PERU_2026_FIRST_ROUND


@dataclass(frozen=True)
class Paths:
    runoff: Path
    national: Path
    subnational: Path
    bundle: Path
    series: Path


@pytest.fixture(scope="module")
def paths(data_dir: Path) -> Paths:
    runoff = data_dir / "peru-2021-runoff"
    fr = data_dir / "peru-2026-first-round"
    return Paths(runoff=runoff, national=runoff / "progress_national",
                 subnational=runoff / "progress_subnational",
                 bundle=fr / "ikusij_first_round_district_bundle_20260504.json.gz",
                 series=fr / "ikusij_first_round_national_timeseries.csv.gz")


STATE_COLS = ["actas_total", "actas_counted", "actas_processed", "actas_jee", "actas_pending",
              "actas_annulled", "actas_not_installed", "electors", "cast", "blank", "null",
              "v_castillo", "v_fujimori"]


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


@pytest.fixture(scope="module")
def national(paths):
    return parse_progress_tables(paths.national, "national")


@pytest.fixture(scope="module")
def subnational(paths):
    return parse_progress_tables(paths.subnational)


@pytest.fixture(scope="module")
def bundle(paths):
    return parse_2026_district_bundle(paths.bundle)


@pytest.fixture(scope="module")
def series(paths):
    return parse_2026_national_timeseries(paths.series)


def by_time(snaps):
    return {s.as_of: s.frame.row(0, named=True) for s in snaps}


# --- 2021 national ------------------------------------------------------------------


def test_national_48_cuts(national):
    assert len(national) == 48
    times = [s.as_of for s in national]
    assert times == sorted(times) and len(set(times)) == 48
    assert times[0] == utc("2021-06-07T05:48:00Z")
    assert times[-1] == utc("2021-06-08T23:19:00Z")
    for s in national:
        assert s.kind is SnapshotKind.UNITS and s.level == "national"
        assert s.frame.columns == [*UNIT_COLUMNS, "v_castillo", "v_fujimori"]
        assert s.frame.height == 1
        row = s.frame.row(0, named=True)
        assert row["level"] == "national" and row["unit_code"] == "" and row["abroad"] is None
        assert s.part == f"national@{s.as_of.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        assert s.findings.height == 0, s.findings
    assert national[0].part == "national@2021-06-07T05:48:00Z"
    # content-addressed: one source hash for the 4 files, distinct ids per cut
    assert len({s.source_sha256 for s in national}) == 1
    assert len({s.snapshot_id for s in national}) == 48


def test_national_first_cut_values(national):
    row = national[0].frame.row(0, named=True)
    assert row["actas_total"] == 86488
    assert row["actas_counted"] == 58137
    assert row["actas_processed"] == 58964
    assert row["actas_jee"] == 827
    assert row["actas_pending"] == 27524
    assert row["electors"] == 17096826
    assert row["cast"] == 13308277
    assert (row["blank"], row["null"]) == (77098, 758358)
    assert (row["v_castillo"], row["v_fujimori"]) == (5927689, 6545132)
    assert row["challenged"] is None and row["electors_total"] is None


def test_national_identities(national):
    df = pl.concat([s.frame for s in national])
    assert (df["actas_processed"] == df["actas_counted"] + df["actas_jee"]).all()
    assert (df["actas_pending"] == df["actas_total"] - df["actas_processed"]).all()
    assert (df["cast"] == df["v_castillo"] + df["v_fujimori"] + df["blank"] + df["null"]).all()
    # the count only grows except for ONPE's corrections (one acta at 05:19 on 8 June)
    assert (df["actas_counted"].diff().drop_nulls() >= -1).all()


def test_lead_flip(national):
    rows = by_time(national)
    before, after = rows[utc("2021-06-07T15:48:00Z")], rows[utc("2021-06-07T16:19:00Z")]
    assert before["v_fujimori"] > before["v_castillo"]
    assert after["v_castillo"] > after["v_fujimori"]
    # the lead changes hands exactly once, between those two cuts
    lead = [r["v_castillo"] > r["v_fujimori"] for r in rows.values()]
    flips = [i for i in range(1, len(lead)) if lead[i] != lead[i - 1]]
    assert len(flips) == 1
    assert national[flips[0]].as_of == utc("2021-06-07T16:19:00Z")
    # ... at 92.6% contabilizadas = 94.06% procesadas (keep the two apart)
    assert after["actas_counted"] / after["actas_total"] == pytest.approx(0.9262, abs=5e-5)
    assert after["actas_processed"] / after["actas_total"] == pytest.approx(0.9406, abs=5e-5)


def test_pct_procesadas_vs_contabilizadas(paths, national):
    par = pl.read_csv(paths.national / "votacion-general-participacion.csv")
    onpe = {utc(u): (c, p) for u, c, p in par.select(
        "updated", "POR_ACTAS_CONTABILIZADAS", "POR_ACTAS_PROCESADAS").iter_rows()}
    assert len(onpe) == 48
    gaps = []
    for s in national:
        r = s.frame.row(0, named=True)
        c, p = onpe[s.as_of]
        derived_c = 100 * r["actas_counted"] / r["actas_total"]
        derived_p = 100 * r["actas_processed"] / r["actas_total"]
        assert abs(derived_c - c) < 0.01 and abs(derived_p - p) < 0.01
        assert float(s.metadata["onpe_por_actas_contabilizadas"]) == pytest.approx(c)
        gaps.append(p - c)
    # procesadas exceed contabilizadas by the JEE queue at every cut
    assert min(gaps) > 0.9


# --- 2021 subnational ---------------------------------------------------------------


def test_subnational_levels_and_times(subnational):
    got: dict[str, list[str]] = {}
    for s in subnational:
        got.setdefault(s.level or "", []).append(s.as_of.strftime("%d %H:%M"))
    assert got["area1"] == ["07 18:40", "07 20:21", "07 23:18", "08 00:54", "08 01:18",
                            "08 12:52", "08 13:48"]
    assert got["area2"] == ["07 20:21", "07 23:18", "08 00:54", "08 01:18", "08 12:52",
                            "08 13:48"]
    assert got["area3"] == ["07 20:21", "07 23:18", "08 00:54", "08 13:48"]
    sizes = {"area1": 25, "area2": 196, "area3": 1874}
    width = {"area1": 2, "area2": 4, "area3": 6}
    for s in subnational:
        f = s.frame
        assert f.height == sizes[s.level or ""]
        assert f["unit_code"].n_unique() == f.height
        assert (f["level"] == s.level).all()
        assert f["unit_code"].str.contains(r"^\d{6}$").all()
        assert (f["unit_code"].str.slice(width[s.level or ""]).str.replace_all("0", "")
                == "").all()
        # these tables cover Peru only: no continent / country / city abroad
        assert not f["abroad"].any()
        assert s.findings.height == 0
        assert f.select(pl.all().is_null().sum()).select(STATE_COLS).sum_horizontal().item() == 0
        assert s.part == f"{s.level}@{s.as_of.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    assert len({s.snapshot_id for s in subnational}) == len(subnational)


def test_subnational_geography(subnational):
    s = next(s for s in subnational if s.level == "area3")
    geo = s.geography
    assert geo is not None
    assert geo.group_by("level").len().sort("level")["len"].to_list() == [25, 196, 1874]
    names = dict(zip(geo["code"], geo["name"], strict=True))
    # RENIEC ubigeos, not INEI: Lima is 14, Loreto 15 (INEI has them the other way round)
    assert names["140000"] == "LIMA" and names["140100"] == "LIMA"
    assert names["150000"] == "LORETO"
    assert names["010101"] == "CHACHAPOYAS"
    parents = dict(zip(geo["code"], geo["parent"], strict=True))
    assert parents["010101"] == "010100" and parents["010100"] == "010000"


def test_subnational_levels_sum_to_each_other(subnational):
    """Districts, provinces and departments of the same cut add up exactly."""
    sums: dict[tuple[datetime, str], dict[str, int]] = {}
    for s in subnational:
        sums[(s.as_of, s.level or "")] = s.frame.select(STATE_COLS).sum().row(0, named=True)
    checked = 0
    for (t, lvl), tot in sums.items():
        if lvl != "area1":
            assert tot == sums[(t, "area1")], (t, lvl)
            checked += 1
    assert checked == 10


def test_subnational_vs_national_is_abroad(paths, national, subnational):
    """National − Σ(units) = the abroad part, which these subnational tables leave out.

    The residual has exactly the 3,440 abroad mesas of the final per-acta file, its
    electors never exceed the 997,033 abroad electors, and nothing is negative.
    """
    acta = pl.read_csv(paths.runoff / "actas" / "actas_electorales_ronderos.pe.csv.gz",
                       columns=["v2_CCODI_UBIGEO", "v2_NNUME_HABILM"],
                       schema_overrides={"v2_CCODI_UBIGEO": pl.String})
    abroad = acta.filter(pl.col("v2_CCODI_UBIGEO").str.starts_with("9"))
    abroad_mesas, abroad_electors = abroad.height, int(abroad["v2_NNUME_HABILM"].sum())
    assert (abroad_mesas, abroad_electors) == (3440, 997033)

    nat = {s.as_of: s.frame.select(STATE_COLS).row(0, named=True) for s in national}
    coincide: dict[str, list[str]] = {}
    for s in subnational:
        if s.as_of not in nat:
            continue
        coincide.setdefault(s.level or "", []).append(s.as_of.strftime("%d %H:%M"))
        home = s.frame.select(STATE_COLS).sum().row(0, named=True)
        rest = {c: nat[s.as_of][c] - home[c] for c in STATE_COLS}
        assert rest["actas_total"] == abroad_mesas
        assert all(v >= 0 for v in rest.values()), rest
        assert rest["electors"] <= abroad_electors
        assert rest["actas_processed"] == rest["actas_counted"] + rest["actas_jee"]
        # abroad is small next to home: < 4% of each vote count
        for c in ("cast", "v_castillo", "v_fujimori"):
            assert rest[c] < 0.04 * nat[s.as_of][c]
    # 01:18 and 13:48 on 8 June have no national cut
    assert coincide == {
        "area1": ["07 18:40", "07 20:21", "07 23:18", "08 00:54", "08 12:52"],
        "area2": ["07 20:21", "07 23:18", "08 00:54", "08 12:52"],
        "area3": ["07 20:21", "07 23:18", "08 00:54"],
    }


def test_level_filter_and_file_list(paths):
    files = sorted((paths.subnational / "departamentos").glob("*20210607T202100Z.csv"))
    snaps = parse_progress_tables(files)
    assert [(s.level, s.as_of) for s in snaps] == [("area1", utc("2021-06-07T20:21:00Z"))]
    assert parse_progress_tables(paths.subnational, "area3")[0].level == "area3"
    with pytest.raises(IngestError) as exc:
        parse_progress_tables(paths.national, "area2")
    assert exc.value.rule == "no_files"


# --- 2021 malformed files -----------------------------------------------------------


def _copy_national(paths: Paths, tmp_path: Path) -> Path:
    for f in paths.national.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def _copy_departments(paths: Paths, tmp_path: Path, stamp: str = "20210607T202100Z") -> Path:
    for f in (paths.subnational / "departamentos").glob(f"*{stamp}.csv"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def test_progress_missing_column(paths, tmp_path):
    d = _copy_national(paths, tmp_path)
    _edit(d / "votacion-general-resumen.csv", "TOTAL_JEE", "TOTAL_JE")
    with pytest.raises(IngestError) as exc:
        parse_progress_tables(d)
    e = exc.value
    assert e.rule == "missing_columns"
    assert e.location.file.endswith("votacion-general-resumen.csv")
    assert e.location.line == 1 and e.location.field == "TOTAL_JEE"
    assert "TOTAL_JEE" in e.message_es and "missing" in e.message_en


def test_progress_missing_table(paths, tmp_path):
    d = _copy_national(paths, tmp_path)
    (d / "votacion-general-totales.csv").unlink()
    with pytest.raises(IngestError) as exc:
        parse_progress_tables(d)
    assert exc.value.rule == "missing_table"
    assert exc.value.location.file.endswith("votacion-general-totales.csv")


def test_progress_text_in_number(paths, tmp_path):
    d = _copy_national(paths, tmp_path)
    _edit(d / "votacion-general-resumen.csv", "000000,66169,", "000000,66l69,")
    with pytest.raises(IngestError) as exc:
        parse_progress_tables(d)
    e = exc.value
    assert (e.rule, e.location.line, e.location.field) == ("not_an_integer", 3, "CONTABILIZA")


def test_progress_unknown_candidate(paths, tmp_path):
    d = _copy_national(paths, tmp_path)
    _edit(d / "votacion-general-resultados.csv", "00000007,", "00000099,")
    with pytest.raises(IngestError) as exc:
        parse_progress_tables(d)
    e = exc.value
    assert (e.rule, e.location.line, e.location.field) == (
        "unknown_candidate", 3, "C_CODI_AGRUPOL")


def test_progress_bad_timestamp(paths, tmp_path):
    d = _copy_national(paths, tmp_path)
    _edit(d / "votacion-general-totales.csv", "2021-06-07T06:48:00Z", "7 jun 06:48")
    with pytest.raises(IngestError) as exc:
        parse_progress_tables(d)
    assert (exc.value.rule, exc.value.location.line) == ("bad_timestamp", 6)


def test_progress_cut_missing_from_a_table(paths, tmp_path):
    d = _copy_national(paths, tmp_path)
    p = d / "votacion-general-participacion.csv"
    lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
    p.write_text("".join(lines[:5] + lines[6:]), encoding="utf-8")
    with pytest.raises(IngestError) as exc:
        parse_progress_tables(d)
    assert exc.value.rule == "missing_unit"
    assert "2021-06-07T09:48:00Z" in exc.value.message_en


def test_progress_unit_unknown_to_resumen(paths, tmp_path):
    d = _copy_departments(paths, tmp_path)
    _edit(d / "votacion-departamento-totales.20210607T202100Z.csv", "AMAZONAS,", "AMAZONIA,")
    with pytest.raises(IngestError) as exc:
        parse_progress_tables(d)
    e = exc.value
    assert e.rule == "unknown_unit" and e.location.line == 2
    assert "AMAZONIA" in e.message_es


def test_progress_timestamp_differs_from_file_name(paths, tmp_path):
    d = _copy_departments(paths, tmp_path)
    _edit(d / "votacion-departamento-resumen.20210607T202100Z.csv",
          "2021-06-07T20:21:00Z", "2021-06-07T20:22:00Z")
    with pytest.raises(IngestError) as exc:
        parse_progress_tables(d)
    assert (exc.value.rule, exc.value.location.line) == ("timestamp_mismatch", 2)


def test_progress_broken_identity_is_flagged_not_rejected(paths, tmp_path):
    d = _copy_departments(paths, tmp_path)
    # AMAZONAS: CONTABILIZA 995 -> 996 breaks CONTABILIZA = CONT_NORMAL + ... and
    # ACTAS_PROCESADAS = CONTABILIZA + TOTAL_JEE
    _edit(d / "votacion-departamento-resumen.20210607T202100Z.csv",
          "AMAZONAS,010000,995,", "AMAZONAS,010000,996,")
    [snap] = parse_progress_tables(d)
    assert snap.frame.height == 25
    rules = sorted(snap.findings["rule"].to_list())
    assert rules == ["counted_identity", "pct_disagrees", "processed_identity",
                     "tables_disagree"]
    assert set(snap.findings["acta_id"]) == {"010000"}
    assert set(snap.findings["line"]) == {2}


# --- 2026 first round ----------------------------------------------------------------


def test_2026_contest_registered():
    c = CONTESTS["pe-2026-presidencial-1v"]
    assert c is PERU_2026_FIRST_ROUND
    assert len(c.candidates) == 36 and c.majority_threshold == 0.5
    assert all(ch.isascii() and (ch.islower() or ch == "_") for x in c.candidates
               for ch in x.code)
    assert PERU_2021_RUNOFF.candidate("castillo").authority_code == "00000014"


def test_2026_bundle_sums(bundle):
    f = bundle.frame
    assert bundle.kind is SnapshotKind.UNITS and bundle.level == "area3"
    assert f.columns == [*UNIT_COLUMNS, *PERU_2026_FIRST_ROUND.candidate_columns]
    assert f.height == 2102 and f["unit_code"].n_unique() == 2102
    assert int(f["abroad"].sum()) == 210
    assert (f.filter(pl.col("abroad"))["unit_code"].str.starts_with("9")).all()
    tot = f.select(pl.exclude("level", "unit_code", "abroad")).sum().row(0, named=True)
    assert tot["v_sanchez"] == 1_976_734
    assert tot["v_lopez_aliaga"] == 1_950_243
    assert tot["v_sanchez"] - tot["v_lopez_aliaga"] == 26_491
    assert tot["v_fujimori"] == 2_811_747
    assert tot["cast"] == 19_734_970
    cands = sum(tot[c] for c in PERU_2026_FIRST_ROUND.candidate_columns)
    assert cands + tot["blank"] + tot["null"] == tot["cast"]
    ranked = sorted(PERU_2026_FIRST_ROUND.candidate_columns, key=lambda c: -tot[c])
    assert ranked[:3] == ["v_fujimori", "v_sanchez", "v_lopez_aliaga"]
    # unknown is null, not zero
    for c in ("actas_total", "actas_counted", "electors", "challenged"):
        assert f[c].null_count() == 2102
    assert (f["actas_pending"] == 0).all()
    assert bundle.as_of == utc("2026-05-04T00:00:00Z")
    assert bundle.metadata["as_of_precision"] == "day"
    assert bundle.metadata["votos_restantes_total"] == "424726"
    assert bundle.findings.height == 0


def test_2026_bundle_geography(bundle):
    geo = bundle.geography
    assert geo is not None
    counts = dict(geo.group_by("level").len().iter_rows())
    assert counts == {"area1": 30, "area2": 273, "area3": 2102}
    names = dict(zip(geo["code"], geo["name"], strict=True))
    assert names["910000"] == "ÁFRICA" and names["950102"] == "BRISBANE"
    assert geo.filter(pl.col("code") == "950102")["parent"].item() == "950100"


def test_2026_bundle_remaining_votes(paths):
    rem = read_2026_bundle_remaining(paths.bundle)
    assert rem.height == 2102 and int(rem["votos_restantes"].sum()) == 424_726
    pct = rem["pct_actas_counted_implied"].drop_nulls()
    assert pct.min() > 40 and pct.max() == pytest.approx(100)


def test_2026_timeseries(series, bundle):
    assert len(series) == 230
    times = [s.as_of for s in series]
    assert times == sorted(times) and len(set(times)) == 230
    # scraper clock read as Peru time (UTC−5)
    assert times[0] == utc("2026-04-14T19:23:00Z")
    assert times[-1] == utc("2026-05-04T12:30:00Z")
    assert float(series[0].metadata["pct_votes_counted"]) == pytest.approx(0.782942)
    assert float(series[-1].metadata["pct_votes_counted"]) == pytest.approx(0.978932)
    for s in series:
        assert s.level == "national"
        # one row per cut, or none: the truncated scrape of 23 April 11:38 is rejected
        assert s.frame.height + s.rejected.height == 1
        assert s.frame.height == 0 or s.frame["actas_total"].item() is None
    assert sum(s.frame.height == 0 for s in series) == 1
    # the last cut is the sum of the 4 May district bundle, column by column
    cols = [*PERU_2026_FIRST_ROUND.candidate_columns, "blank", "null", "cast"]
    last = series[-1].frame.select(cols).row(0, named=True)
    assert last == bundle.frame.select(cols).sum().row(0, named=True)
    first = series[0].frame.row(0, named=True)
    assert first["v_fujimori"] == 2_278_434 and first["v_lopez_aliaga"] == 1_712_322
    assert len({s.snapshot_id for s in series}) == 230


def test_2026_timeseries_other_offset(paths):
    snaps = parse_2026_national_timeseries(paths.series, utc_offset_hours=0)
    assert snaps[0].as_of == utc("2026-04-14T14:23:00Z")


# --- 2026 malformed files ------------------------------------------------------------


def _bundle_data(paths: Paths) -> dict:
    with gzip.open(paths.bundle, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def _write_bundle(tmp_path: Path, data: object, name: str = "bundle_20260504.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return p


def test_bundle_missing_field(paths, tmp_path):
    data = _bundle_data(paths)
    del data["010101"]["votosEmitidos"]
    with pytest.raises(IngestError) as exc:
        parse_2026_district_bundle(_write_bundle(tmp_path, data))
    assert (exc.value.rule, exc.value.location.field) == (
        "missing_field", "010101.votosEmitidos")


def test_bundle_text_in_number_and_unknown_candidate(paths, tmp_path):
    data = _bundle_data(paths)
    data["010101"]["candidatos"]["KEIKO SOFIA FUJIMORI HIGUCHI"] = "12"
    with pytest.raises(IngestError) as exc:
        parse_2026_district_bundle(_write_bundle(tmp_path, data))
    assert exc.value.rule == "not_an_integer"
    assert exc.value.location.field == "010101.candidatos.KEIKO SOFIA FUJIMORI HIGUCHI"

    data = _bundle_data(paths)
    data["010101"]["candidatos"]["FULANO DE TAL"] = 3
    with pytest.raises(IngestError) as exc:
        parse_2026_district_bundle(_write_bundle(tmp_path, data))
    assert exc.value.rule == "unknown_candidate"


def test_bundle_syntax_and_no_date(paths, tmp_path):
    p = tmp_path / "bundle_20260504.json"
    p.write_text('{"010101": {"ubigeo_distrito": "010101",\n "votosEmitidos": }', "utf-8")
    with pytest.raises(IngestError) as exc:
        parse_2026_district_bundle(p)
    assert (exc.value.rule, exc.value.location.line) == ("json_syntax", 2)

    small = {k: v for k, v in list(_bundle_data(paths).items())[:3]}
    with pytest.raises(IngestError) as exc:
        parse_2026_district_bundle(_write_bundle(tmp_path, small, "bundle.json"))
    assert exc.value.rule == "as_of_required"
    snap = parse_2026_district_bundle(_write_bundle(tmp_path, small, "bundle.json"),
                                      as_of="2026-05-04T12:30:00Z")
    assert snap.frame.height == 3 and snap.geography is None
    assert snap.as_of == utc("2026-05-04T12:30:00Z")


def test_bundle_residual_broken_is_flagged(paths, tmp_path):
    data = _bundle_data(paths)
    data["010101"]["votosEmitidos"] += 5
    snap = parse_2026_district_bundle(_write_bundle(tmp_path, data))
    assert snap.findings["rule"].to_list() == ["sum_mismatch"]
    assert snap.findings["acta_id"].to_list() == ["010101"]


def _series_lines(paths: Paths) -> list[str]:
    with gzip.open(paths.series, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines(keepends=True)


def test_timeseries_missing_column(paths, tmp_path):
    lines = _series_lines(paths)
    p = tmp_path / "ts.csv"
    p.write_text(lines[0].replace("votes_counted", "votes") + "".join(lines[1:39]), "utf-8")
    with pytest.raises(IngestError) as exc:
        parse_2026_national_timeseries(p)
    assert (exc.value.rule, exc.value.location.field) == ("missing_columns", "votes_counted")


def test_timeseries_unknown_and_missing_candidate(paths, tmp_path):
    lines = _series_lines(paths)
    p = tmp_path / "ts.csv"
    bad = lines[4].replace("RAFAEL BERNARDO", "RAFAEL BERNARDINO")
    assert bad != lines[4]
    p.write_text("".join([lines[0], *lines[1:4], bad, *lines[5:39]]), "utf-8")
    with pytest.raises(IngestError) as exc:
        parse_2026_national_timeseries(p)
    assert (exc.value.rule, exc.value.location.line) == ("unknown_candidate", 5)

    p.write_text("".join([lines[0], *lines[1:38]]), "utf-8")  # 37 of 38 rows
    with pytest.raises(IngestError) as exc:
        parse_2026_national_timeseries(p)
    assert exc.value.rule == "missing_candidate"
