"""The generic interchange format (docs/formats.md): real data in, identical data out."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from escrutinio import service
from escrutinio.domain import ActaStatus, Contest, SnapshotKind
from escrutinio.errors import IngestError
from escrutinio.sources.chile import CHILE_2021_FIRST_ROUND, convert_chile_2021
from escrutinio.sources.onpe_files import parse_ronderos
from escrutinio.sources.tabular import (
    STATUS_ALIASES,
    parse_tabular,
    parse_tabular_many,
    sidecar_dict,
    sidecar_path_for,
    write_snapshot,
    write_tabular,
)

CHILE = "chile-2021-first-round/chile_election_2021.csv.gz"
RONDEROS = "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz"


@pytest.fixture(scope="module")
def runoff(data_dir: Path):
    return parse_ronderos(data_dir / RONDEROS, as_of="2021-06-17T00:00:00Z")


# --- Chile: a second country through the generic format ------------------------------


def test_chile_2021_through_generic_format_matches_raw_sums(data_dir, tmp_path, tmp_store):
    raw_path = data_dir / CHILE
    data, side = convert_chile_2021(raw_path, tmp_path / "chile.csv.gz",
                                    as_of="2021-11-22T03:00:00Z")
    assert side == sidecar_path_for(data) and side.exists()
    snap = parse_tabular(data)
    outcome = tmp_store.put_snapshot(snap)
    assert outcome.created and outcome.n_rejected == 0 and outcome.n_findings == 0

    raw = pl.read_csv(raw_path)
    stored = tmp_store.load_actas(outcome.snapshot_id)
    assert stored.height == raw.height == 46_606
    for cand in CHILE_2021_FIRST_ROUND.candidates:
        assert stored[cand.column].sum() == raw[cand.authority_code].sum(), cand.code
    assert stored["blank"].sum() == raw["BLANK.VOTES"].sum() == 30_397
    assert stored["null"].sum() == raw["NULL.VOTES"].sum() == 55_285
    # cast = ballots in the box = candidates + blank + null (not the M + F signatures)
    ballots = raw.select(pl.sum_horizontal(["C1", "C2", "C3", "C4", "C5", "C6", "C7",
                                            "BLANK.VOTES", "NULL.VOTES"])).to_series()
    assert stored["cast"].sum() == ballots.sum() == 7_075_532
    # Kast led the first round: 1,953,207 vs Boric 1,795,691 in this file
    assert stored["v_kast"].sum() == 1_953_207 and stored["v_boric"].sum() == 1_795_691
    assert stored["electors"].null_count() == stored.height  # no elector roll in the source
    assert stored["status"].unique().to_list() == [ActaStatus.COUNTED.value]
    assert stored["acta_id"].n_unique() == stored.height
    geo = tmp_store.geography(CHILE_2021_FIRST_ROUND.id)
    assert geo.filter(pl.col("level") == "area1").height == 16
    assert geo.filter(pl.col("level") == "area3").height == 679
    assert geo.filter(pl.col("code") == "13")["name"].item() == "Metropolitana de Santiago"
    meta = tmp_store.snapshot_metadata(CHILE_2021_FIRST_ROUND.id)[outcome.snapshot_id]
    assert json.loads(meta["area_labels"])["area1"] == {"es": "región", "en": "region"}
    # ... and that is what the levels are called wherever they are shown
    names = service.area_labels(tmp_store, CHILE_2021_FIRST_ROUND.id)
    assert names["area1"] == ("región", "region") and names["area2"] == ("comuna", "commune")


def test_level_names_come_from_the_sidecar_then_the_country_then_generic(
        runoff, tmp_path, tmp_store):
    """A generic file's ``area_labels`` name the levels; without them a country escrutinio
    knows keeps its own names, and an unknown one gets "nivel 1 / level 1"."""
    frame = runoff.frame.head(2000)
    other = dataclasses.replace(runoff.contest, id="zz-test", country="ZZ")
    plain, _ = write_tabular(frame, other, tmp_path / "zz.csv", runoff.as_of,
                             geography=runoff.geography)
    tmp_store.put_snapshot(parse_tabular(plain))
    assert service.area_labels(tmp_store, "zz-test") == {
        "area1": ("nivel 1", "level 1"), "area2": ("nivel 2", "level 2"),
        "area3": ("nivel 3", "level 3")}
    # Peru, with no labels in its files, keeps ONPE's names
    tmp_store.put_snapshot(runoff)
    assert service.area_labels(tmp_store, runoff.contest.id)["area1"] == (
        "departamento", "department")
    # a later sidecar naming the levels wins over the country's names
    mx = {"area1": {"es": "entidad", "en": "state"}, "area2": {"es": "distrito federal",
          "en": "federal district"}, "area3": {"es": "sección", "en": "section"}}
    named, _ = write_tabular(frame.head(1999), other, tmp_path / "zz2.csv",
                             "2021-06-18T00:00:00Z",
                             geography=runoff.geography, area_labels=mx)
    tmp_store.put_snapshot(parse_tabular(named))
    assert service.area_labels(tmp_store, "zz-test")["area3"] == ("sección", "section")


# --- round trip: any snapshot can be exported and re-imported ------------------------


@pytest.mark.parametrize("ext", ["csv", "csv.gz", "parquet"])
def test_peru_runoff_round_trip(runoff, tmp_path, tmp_store, ext):
    assert runoff.frame.height == 86_488
    data, _ = write_tabular(runoff.frame, runoff.contest, tmp_path / f"runoff.{ext}",
                            runoff.as_of, geography=runoff.geography)
    back = parse_tabular(data)
    assert back.kind is SnapshotKind.ACTAS
    assert back.contest == runoff.contest
    assert back.as_of == runoff.as_of
    assert back.rejected.height == 0
    assert_frame_equal(back.frame, runoff.frame)
    assert_frame_equal(back.geography.drop("alt_code"),
                       runoff.geography.drop("alt_code").sort("level", "code"))
    # and through the store
    out = tmp_store.put_snapshot(back)
    assert_frame_equal(tmp_store.load_actas(out.snapshot_id),
                       runoff.frame.sort("acta_id"))
    totals = back.frame.select(pl.col("v_castillo").sum(), pl.col("v_fujimori").sum()).row(0)
    assert totals == (8_835_653, 8_791_696)


def test_export_is_reproducible(runoff, tmp_path):
    a = write_snapshot(runoff, tmp_path / "a" / "x.csv.gz")[0]
    b = write_snapshot(runoff, tmp_path / "b" / "x.csv.gz")[0]
    assert a.read_bytes() == b.read_bytes()
    assert parse_tabular(a).snapshot_id == parse_tabular(b).snapshot_id


# --- small hand-written files --------------------------------------------------------

CONTEST = {
    "id": "xx-test-1v", "name": "Test", "kind": "first_round", "country": "XX",
    "date": "2024-01-01", "majority_threshold": 0.5,
    "candidates": [{"code": "ana", "name": "Ana"}, {"code": "beto", "name": "Beto"}],
}


def write(tmp_path: Path, text: str, name: str = "d.csv", **side: object) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    doc = {"contest": CONTEST, "as_of": "2024-01-02T00:00:00Z"} | side
    sidecar_path_for(p).write_text(json.dumps(doc), encoding="utf-8")
    return p


def test_status_labels_are_accepted_in_spanish_and_any_case(tmp_path):
    labels = ["contabilizada", "PENDIENTE", "Anulada", "en el JEE", "jee", "Observada",
              "mesa no instalada", "extraviada", "siniestrada", "counted", "not_installed"]
    rows = [f"{i},{s},01,100,50,1,1,30,18" for i, s in enumerate(labels)]
    text = "acta_id,status,area1_code,electors,cast,blank,null,v_ana,v_beto\n" + "\n".join(rows)
    snap = parse_tabular(write(tmp_path, text + "\n"))
    assert snap.rejected.height == 0
    assert snap.frame["status"].to_list() == [
        "counted", "pending", "annulled", "jee", "jee", "observed", "not_installed", "lost",
        "destroyed", "counted", "not_installed"]
    assert all(STATUS_ALIASES[s.value] == s.value for s in ActaStatus)


def test_optional_columns_default(tmp_path):
    text = ("acta_id,status,area1_code,electors,cast,blank,null,v_ana,v_beto\n"
            "1,counted,01,100,50,1,1,30,18\n")
    snap = parse_tabular(write(tmp_path, text))
    row = snap.frame.row(0, named=True)
    assert row["abroad"] is False and row["resolved"] is False
    assert row["challenged"] is None and row["area3_code"] is None
    assert snap.geography is None  # no names given


def test_booleans_accept_common_spellings(tmp_path):
    text = ("acta_id,status,area1_code,abroad,resolved,electors,cast,blank,null,v_ana,v_beto\n"
            "1,counted,01,sí,0,100,50,1,1,30,18\n2,counted,01,FALSE,yes,100,50,1,1,30,18\n")
    snap = parse_tabular(write(tmp_path, text))
    assert snap.frame["abroad"].to_list() == [True, False]
    assert snap.frame["resolved"].to_list() == [False, True]


def test_bad_boolean_names_line_and_field(tmp_path):
    text = ("acta_id,status,area1_code,abroad,electors,cast,blank,null,v_ana,v_beto\n"
            "1,counted,01,false,100,50,1,1,30,18\n2,counted,01,maybe,100,50,1,1,30,18\n")
    with pytest.raises(IngestError) as ei:
        parse_tabular(write(tmp_path, text))
    assert (ei.value.location.line, ei.value.location.field, ei.value.rule) == (
        3, "abroad", "not_a_boolean")


def test_explicit_contest_file_and_kind(tmp_path):
    text = ("acta_id,status,area1_code,electors,cast,blank,null,v_ana,v_beto\n"
            "1,counted,01,100,50,1,1,30,18\n")
    p = tmp_path / "data.csv"
    p.write_text(text)
    side = tmp_path / "elsewhere.json"
    side.write_text(json.dumps(sidecar_dict(
        Contest.from_dict(CONTEST), "2024-01-02T05:00:00-05:00")))
    snap = parse_tabular(p, side, kind="actas")
    assert snap.as_of.isoformat() == "2024-01-02T10:00:00+00:00"
    with pytest.raises(IngestError) as ei:
        parse_tabular(p, side, kind="units")
    assert ei.value.rule == "missing_columns" and "level" in ei.value.location.field


@pytest.mark.parametrize(("doc", "field", "rule"), [
    ({"as_of": "2024-01-02T00:00:00"}, "as_of", "sidecar_invalid"),  # no time zone
    ({"asof": "2024-01-02T00:00:00Z"}, "asof", "sidecar_invalid"),  # typo
    ({"contest": CONTEST | {"candidates": [{"code": "Ana X", "name": "Ana"}]}},
     "contest.candidates[0].code", "sidecar_invalid"),
    ({"contest": CONTEST | {"kind": "runoff", "candidates": CONTEST["candidates"][:1]}},
     "contest.candidates", "sidecar_invalid"),
    ({"contest": CONTEST | {"country": "Chile"}}, "contest.country", "sidecar_invalid"),
    ({"kind": "units"}, "kind", "kind_mismatch"),
])
def test_sidecar_errors_name_the_field(tmp_path, doc, field, rule):
    text = ("acta_id,status,area1_code,electors,cast,blank,null,v_ana,v_beto\n"
            "1,counted,01,100,50,1,1,30,18\n")
    p = tmp_path / "d.csv"
    p.write_text(text)
    full = {"contest": CONTEST, "as_of": "2024-01-02T00:00:00Z"} | doc
    if "asof" in doc:
        del full["as_of"]
        full = {"asof": doc["asof"], **full}
    sidecar_path_for(p).write_text(json.dumps(full))
    with pytest.raises(IngestError) as ei:
        parse_tabular(p)
    assert ei.value.location.file == str(sidecar_path_for(p))
    assert (ei.value.location.field, ei.value.rule) == (field, rule)


def test_sidecar_missing_and_unreadable(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("acta_id,status,area1_code,electors,cast,blank,null,v_ana,v_beto\n"
                 "1,counted,01,100,50,1,1,30,18\n")
    with pytest.raises(IngestError) as ei:
        parse_tabular(p)
    assert ei.value.rule == "sidecar_missing"
    assert ei.value.location.file == str(tmp_path / "d.csv.contest.json")
    sidecar_path_for(p).write_text('{\n "as_of": "2024-01-02T00:00:00Z",\n "contest": {,}\n}')
    with pytest.raises(IngestError) as ei:
        parse_tabular(p)
    assert (ei.value.rule, ei.value.location.line) == ("sidecar_json", 3)


def test_unknown_format_is_named(tmp_path):
    with pytest.raises(IngestError) as ei:
        parse_tabular(write(tmp_path, "mesa,votos\n1,2\n"))
    assert (ei.value.rule, ei.value.location.line) == ("unknown_format", 1)


# --- per-unit format ------------------------------------------------------------------

UNIT_HEADER = ("level,unit_code,unit_name,parent_code,abroad,actas_total,actas_counted,"
               "actas_processed,electors,cast,blank,null,v_ana,v_beto\n")


def test_units_parse_validate_and_round_trip(tmp_path, tmp_store):
    text = UNIT_HEADER + "\n".join([
        "national,,,,,10,8,9,900,700,10,10,400,250",  # 30 votes of annulled actas: fine
        "area1,01,Norte,,false,6,5,6,500,400,5,5,250,140",
        "area1,02,Sur,,false,4,3,3,400,300,5,5,150,110",
        "area1,03,Este,,false,4,5,,400,300,5,5,150,110",  # counted > total: rejected
        "area1,04,Oeste,,false,4,3,3,400,300,5,5,250,110",  # more votes than cast: flag
        "area2,0101,Norte Alto,01,false,1,0,0,0,0,-1,0,0,0",  # negative: rejected
        "area9,0901,X,,false,1,1,1,1,1,0,0,1,0",  # unknown level: rejected
    ]) + "\n"
    snap = parse_tabular(write(tmp_path, text))
    assert snap.kind is SnapshotKind.UNITS and snap.level == "area1"
    assert snap.frame["unit_code"].to_list() == ["", "01", "02", "04"]
    rej = snap.rejected.select("line", "acta_id", "field", "rule").rows()
    assert rej == [(5, "area1/03", "actas_counted", "counted_exceeds_total"),
                   (7, "area2/0101", "blank", "negative_count"),
                   (8, "area9/0901", "level", "unknown_level")]
    assert snap.findings.select("line", "rule").rows() == [(6, "votes_exceed_cast")]
    assert snap.geography.filter(pl.col("code") == "01")["name"].item() == "Norte"
    out = tmp_store.put_snapshot(snap)
    assert tmp_store.load_row_reports(out.snapshot_id).height == 4

    data, _ = write_tabular(snap.frame, snap.contest, tmp_path / "rt" / "u.parquet",
                            snap.as_of, geography=snap.geography)
    back = parse_tabular(data)
    assert_frame_equal(back.frame, snap.frame)
    assert back.level == "area1"


def test_duplicate_units(tmp_path):
    text = UNIT_HEADER + "\n".join([
        "area1,01,Norte,,false,6,5,6,500,400,5,5,250,140",
        "area1,01,Norte,,false,6,5,6,500,400,5,5,250,140",
        "area1,02,Sur,,false,4,3,3,400,300,5,5,150,110",
        "area1,02,Sur,,false,4,3,3,400,301,5,5,150,110",
    ]) + "\n"
    snap = parse_tabular(write(tmp_path, text))
    assert snap.frame["unit_code"].to_list() == ["01"]
    assert snap.rejected.select("line", "rule").rows() == [
        (3, "duplicate_unit_identical"), (4, "duplicate_unit"), (5, "duplicate_unit")]


def test_parquet_float_counts_must_be_integral(tmp_path):
    df = pl.DataFrame({"acta_id": ["1", "2"], "status": ["counted"] * 2, "area1_code": ["01"] * 2,
                       "electors": [100.0, 100.0], "cast": [50, 50], "blank": [1, 1],
                       "null": [1, 1], "v_ana": [30, 30], "v_beto": [18.0, 18.5]})
    p = tmp_path / "d.parquet"
    df.write_parquet(p)
    sidecar_path_for(p).write_text(json.dumps({"contest": CONTEST,
                                               "as_of": "2024-01-02T00:00:00Z"}))
    with pytest.raises(IngestError) as ei:
        parse_tabular(p)
    assert (ei.value.location.line, ei.value.location.field, ei.value.rule) == (
        2, "v_beto", "not_an_integer")
    assert "fila/row 2" in str(ei.value)
    df.with_columns(pl.lit(18.0).alias("v_beto")).write_parquet(p)
    assert parse_tabular(p).frame["v_beto"].to_list() == [18, 18]


# --- docs/formats.md stays true ---------------------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "formats.md"


def doc_block(marker: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("\n```", text.index(marker)) + 1
    start = text.index("\n", start) + 1
    return text[start:text.index("```", start)]


def test_documented_examples_parse(tmp_path):
    sidecar = json.loads(doc_block("## 6. The sidecar"))
    actas = tmp_path / "actas.csv"
    actas.write_text(doc_block("<!-- example: actas.csv -->"), encoding="utf-8")
    sidecar_path_for(actas).write_text(json.dumps(sidecar), encoding="utf-8")
    snap = parse_tabular(actas)
    assert snap.frame.height == 5 and snap.rejected.height == 0
    assert snap.findings.select("line", "rule").rows() == [(4, "sum_mismatch_uncounted")]
    counted = snap.frame.filter(pl.col("status") == "counted")
    assert (counted["v_ana"].sum(), counted["v_beto"].sum()) == (241, 265)
    assert snap.frame["status"].to_list() == ["counted", "counted", "jee", "pending", "counted"]
    assert snap.label == "corte 3 jun 14:30"

    units = tmp_path / "units.csv"
    units.write_text(doc_block("<!-- example: units.csv -->"), encoding="utf-8")
    sidecar_path_for(units).write_text(json.dumps(sidecar | {"kind": "units"}))
    u = parse_tabular(units)
    assert u.rejected.height == 0 and u.findings.height == 0
    nat = u.frame.filter(pl.col("level") == "national").drop("level", "unit_code", "abroad")
    parts = u.frame.filter(pl.col("level") == "area1").drop("level", "unit_code", "abroad")
    assert nat.row(0) == parts.sum().row(0)  # the national row is the sum of its areas
    # and the per-unit example is the aggregate of the per-acta example
    assert nat["cast"].item() == counted["cast"].sum()


def test_every_rule_is_documented():
    from escrutinio.verify.checks import RULES
    from escrutinio.verify.unit_checks import UNIT_RULES

    text = DOC.read_text(encoding="utf-8")
    for name in [*RULES, *UNIT_RULES, "missing_candidate_column", "unknown_candidate_column",
                 "wrong_field_count", "not_an_integer", "sidecar_invalid", "wrong_type",
                 "json_syntax", "json_shape", "not_a_number", "fraction_out_of_range",
                 "unknown_vote_type", "missing_cut", "bad_cut", "series_file",
                 "no_generic_files", "ingest_warning", "ambiguous_number"]:
        assert f"`{name}`" in text, name


# --- format version 2 (issue #16): a generic format that fits real sources -------------

SCHEMA = (Path(__file__).resolve().parents[1] / "src" / "escrutinio" / "sources" / "schema"
          / "contest-sidecar.v2.json")


def schema_errors(value: object, schema: dict, root: dict, path: str = "") -> list[str]:
    """A small validator for the JSON Schema keywords the sidecar schema uses (the project
    adds no jsonschema dependency): every violation, with its path."""
    import re as _re

    if "$ref" in schema:
        return schema_errors(value, root["$defs"][schema["$ref"].split("/")[-1]], root, path)
    errs: list[str] = []
    kinds = {"object": dict, "array": list, "string": str, "null": type(None)}
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]

        def is_a(t: str) -> bool:
            if t == "integer":
                return isinstance(value, int) and not isinstance(value, bool)
            if t == "number":
                return isinstance(value, (int, float)) and not isinstance(value, bool)
            return isinstance(value, kinds[t])
        if not any(is_a(t) for t in types):
            return [f"{path}: type"]
    if "const" in schema and value != schema["const"]:
        errs.append(f"{path}: const")
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{path}: enum")
    if "oneOf" in schema:
        ok = [s for s in schema["oneOf"] if not schema_errors(value, s, root, path)]
        if len(ok) != 1:
            errs.append(f"{path}: oneOf")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errs.append(f"{path}: minLength")
        if "pattern" in schema and not _re.search(schema["pattern"], value):
            errs.append(f"{path}: pattern")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append(f"{path}: minimum")
        if "maximum" in schema and value > schema["maximum"]:
            errs.append(f"{path}: maximum")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errs.append(f"{path}: exclusiveMinimum")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errs.append(f"{path}: minItems")
        for i, v in enumerate(value):
            errs += schema_errors(v, schema.get("items", {}), root, f"{path}[{i}]")
    if isinstance(value, dict):
        errs += [f"{path}.{k}: required" for k in schema.get("required", []) if k not in value]
        if len(value) < schema.get("minProperties", 0):
            errs.append(f"{path}: minProperties")
        props = schema.get("properties", {})
        for k, v in value.items():
            if "propertyNames" in schema:
                errs += schema_errors(k, schema["propertyNames"], root, f"{path}.{k}(name)")
            if k in props:
                errs += schema_errors(v, props[k], root, f"{path}.{k}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{path}.{k}: additionalProperties")
            elif isinstance(schema.get("additionalProperties"), dict):
                errs += schema_errors(v, schema["additionalProperties"], root, f"{path}.{k}")
    return errs


FULL = {
    "format": "escrutinio-tabular", "format_version": 2, "kind": "actas", "contest": CONTEST,
    "as_of": "2024-01-02T00:00:00", "timezone": "America/Lima", "source_uri": "x",
    "label": "corte 1", "area_labels": {"area1": {"es": "región", "en": "region"}},
    "court_name": {"es": "Tribunal", "en": "Court"}, "vote_types": ["election_day", "mail"],
    "review_outcomes": {"p_annulled": 0.05, "p_corrected": 0.1, "lean_margin_sd": 0.08,
                        "source": {"es": "medido en 2020", "en": "measured in 2020"}},
    "seats": 1, "previous_round": "xx-test-0v", "pct_votes_counted": {"national": 0.9,
                                                                     "01": 0.5},
    "votes_remaining": 12, "notes": [{"es": "nota", "en": "note"}],
    "columns": {"Mesa": "acta_id", "Comentario": None},
}


def test_court_name_with_a_short_and_a_long_form(tmp_path):
    from escrutinio.sources.tabular import read_sidecar

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    court = {"short": "TRICEL", "long": {"es": "Tribunal Calificador de Elecciones",
                                         "en": "Election Qualifying Court"}}
    doc = FULL | {"court_name": court}
    assert schema_errors(doc, schema, schema) == []
    p = tmp_path / "s.contest.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    assert read_sidecar(p).court_name == court


def test_schema_and_code_agree_on_keys_and_versions():
    from escrutinio.domain import ContestKind
    from escrutinio.sources import tabular

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["$schema"].endswith("2020-12/schema")
    assert tuple(schema["properties"]) == tabular.SIDECAR_KEYS
    contest = schema["$defs"]["contest"]
    assert tuple(contest["properties"]) == tabular.CONTEST_KEYS
    assert tuple(contest["properties"]["candidates"]["items"]["properties"]) == \
        tabular.CANDIDATE_KEYS
    assert schema["properties"]["format_version"]["enum"] == list(tabular.SUPPORTED_VERSIONS)
    assert max(tabular.SUPPORTED_VERSIONS) == tabular.FORMAT_VERSION
    assert contest["properties"]["kind"]["enum"] == [k.value for k in ContestKind]
    assert SCHEMA.resolve() == tabular.SIDECAR_SCHEMA


@pytest.mark.parametrize(("change", "field"), [
    ({}, None),
    ({"format_version": 3}, "format_version"),
    ({"seats": 0}, "seats"),
    ({"seats": True}, "seats"),
    ({"pct_votes_counted": 97.5}, "pct_votes_counted"),
    ({"pct_votes_counted": {"01": 1.5}}, "pct_votes_counted.01"),
    ({"votes_remaining": -3}, "votes_remaining"),
    ({"votes_remaining": {"national": 2.5}}, "votes_remaining.national"),
    ({"vote_types": ["Mail"]}, "vote_types"),
    ({"vote_types": {"mail": {"es": "correo", "fr": "poste"}}}, "vote_types.mail"),
    ({"court_name": {"es": ""}}, "court_name"),
    ({"court_name": {"short": "TCE", "long": {"es": "Tribunal"}}}, "court_name"),
    ({"court_name": {"long": "Tribunal Calificador"}}, "court_name"),
    ({"previous_round": "no spaces"}, "previous_round"),
    ({"review_outcomes": {"p_corrected": 0.1}}, "review_outcomes"),
    ({"review_outcomes": {"p_annulled": 1.5}}, "review_outcomes.p_annulled"),
    ({"review_outcomes": {"p_annulled": True}}, "review_outcomes.p_annulled"),
    ({"review_outcomes": {"p_annulled": 0.1, "lean_margin_sd": -0.1}},
     "review_outcomes.lean_margin_sd"),
    ({"review_outcomes": {"p_annulled": 0.1, "rate_prior_n": 0}}, "review_outcomes.rate_prior_n"),
    ({"review_outcomes": {"p_annulled": 0.1, "lean": 0.1}}, "review_outcomes.lean"),
    ({"area_labels": {"area4": {"es": "x"}}}, "area_labels.area4"),
    ({"notes": ["plain text"]}, "notes"),
    ({"columns": {"Mesa": 3}}, "columns"),
    ({"columns": {"Mesa": ""}}, "columns"),
    ({"contest": CONTEST | {"majority_threshold": 0}}, "contest.majority_threshold"),
    ({"contest": {k: v for k, v in CONTEST.items() if k != "date"}}, "contest.date"),
])
def test_code_and_schema_accept_and_refuse_the_same_sidecars(tmp_path, change, field):
    from escrutinio.sources.tabular import read_sidecar

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    doc = FULL | change
    p = tmp_path / "s.contest.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    errs = schema_errors(doc, schema, schema)
    if field is None:
        assert errs == []
        side = read_sidecar(p)
        assert side.pct_votes_counted == 0.9 and side.pct_votes_counted_by_unit == {"01": 0.5}
        assert side.as_of.isoformat() == "2024-01-02T05:00:00+00:00"  # local, Lima
        assert side.vote_types == {"election_day": {"es": "election_day",
                                                    "en": "election_day"},
                                   "mail": {"es": "mail", "en": "mail"}}
        return
    assert errs, f"the schema accepts {change}"
    with pytest.raises(IngestError) as ei:
        read_sidecar(p)
    assert (ei.value.rule, ei.value.location.field) == ("sidecar_invalid", field)


def test_final_results_without_a_status_column(data_dir, tmp_path):
    """Chile's mesas as most authorities publish final results: no status column. Every
    mesa with figures is counted, one whose figures are blank is pending (never a zero),
    and the ingest says what it assumed."""
    data, _ = convert_chile_2021(data_dir / CHILE, tmp_path / "cl.csv",
                                 as_of="2021-11-22T03:00:00Z")
    full = pl.read_csv(data, infer_schema=False)
    assert set(full["status"].unique()) == {"counted"}
    figures = ["cast", "blank", "null", *[c for c in full.columns if c.startswith("v_")]]
    blanked = full.drop("status").with_columns(
        [pl.when(pl.int_range(pl.len()) < 5).then(None).otherwise(pl.col(c)).alias(c)
         for c in figures])
    out = tmp_path / "cl_nostatus.csv"
    blanked.write_csv(out)
    sidecar_path_for(out).write_bytes(sidecar_path_for(data).read_bytes())
    snap = parse_tabular(out)
    counts = snap.frame["status"].value_counts().sort("status")
    assert dict(counts.iter_rows()) == {"counted": full.height - 5, "pending": 5}
    warn = snap.findings.filter(pl.col("rule") == "ingest_warning")
    assert warn["field"].to_list() == ["status"]
    assert "status" in warn["message_en"][0] and "pending" in warn["message_en"][0]
    assert snap.rejected.is_empty()
    # with the column, nothing is assumed and nothing is said
    assert parse_tabular(data).findings.filter(pl.col("field") == "status").is_empty()


def test_unknown_keys_warn_and_typos_fail(tmp_path):
    text = "acta_id,status,area1_code,cast,blank,null,v_ana,v_beto\n1,counted,01,50,1,1,30,18\n"
    p = write(tmp_path, text, comentario="hola", contest=CONTEST | {"observaciones": "x"})
    snap = parse_tabular(p)
    warn = snap.findings.filter(pl.col("rule") == "ingest_warning")
    assert sorted(warn["field"].to_list()) == ["comentario", "contest.observaciones"]
    assert all(m.startswith(str(sidecar_path_for(p))) for m in warn["message_en"])
    assert "comentario" in snap.metadata["warnings"]
    for bad, field in (({"timezon": "UTC"}, "timezon"), ({"Seats": 3}, "Seats"),
                       ({"contest": CONTEST | {"seats": 3}}, "contest.seats")):
        with pytest.raises(IngestError) as ei:
            parse_tabular(write(tmp_path, text, **bad))
        assert ei.value.location.field == field


def test_optional_sidecar_keys_reach_the_snapshot_metadata(tmp_path, tmp_store):
    from escrutinio.sources.base import FRACTION_COUNTED_KEY, SERIES_FRACTION_KEY

    text = ("level,unit_code,cast,v_ana,v_beto,votes_remaining,pct_votes_counted\n"
            "national,,300,150,120,,\n"
            "area1,01,200,100,80,20,\n"
            "area1,02,100,50,40,,0.25\n")
    side = {k: FULL[k] for k in ("timezone", "court_name", "vote_types", "seats",
                                 "previous_round", "notes", "review_outcomes")}
    p = write(tmp_path, text, **side, votes_remaining={"national": 30, "03": 7})
    snap = parse_tabular(p)
    md = snap.metadata
    assert md["timezone"] == "America/Lima" and md["seats"] == "1"
    assert md["previous_round"] == "xx-test-0v"
    assert json.loads(md["court_name"]) == {"es": "Tribunal", "en": "Court"}
    assert list(json.loads(md["vote_types"])) == ["election_day", "mail"]
    assert json.loads(md["notes"]) == [{"es": "nota", "en": "note"}]
    assert json.loads(md["review_outcomes"]) == {
        "p_annulled": 0.05, "p_corrected": 0.1, "lean_margin_sd": 0.08,
        "source": {"es": "medido en 2020", "en": "measured in 2020"}}
    # national: 270 candidate votes counted, 30 to come; unit 01: 180 and 20 (a column);
    # unit 02: the source's own fraction (a column); unit 03: not in the file
    assert float(md[SERIES_FRACTION_KEY]) == pytest.approx(270 / 300)
    assert json.loads(md[FRACTION_COUNTED_KEY]) == {"01": pytest.approx(0.9), "02": 0.25}
    assert json.loads(md["votes_remaining"]) == {"01": 20, "03": 7, "national": 30}
    assert md["figures_absent"] == "electors,blank,null"
    service.ingest(tmp_store, [snap])
    st = service.state(tmp_store)
    assert (st.national.blank, st.national.null, st.national.electors) == (None, None, None)
    assert st.national.cast == 300  # what the source has is kept
    # the declared review rates are the ones the projection uses, and it says so
    jee, why = service.review_outcomes(tmp_store, snap.contest)
    assert why["basis"] == "declared" and why["lean_margin_sd"] == 0.08
    assert (jee.p_annulled, jee.p_corrected, jee.lean_margin_sd) == (0.05, 0.1, 0.08)
    assert jee.source == "medido en 2020 / measured in 2020"


def test_blank_and_null_absent_are_unknown_and_the_identity_an_inequality(tmp_path):
    text = ("acta_id,status,area1_code,cast,v_ana,v_beto\n"
            "1,counted,01,50,30,18\n"      # 2 ballots neither Ana nor Beto: fine, unknown
            "2,counted,01,50,30,21\n"      # 51 votes out of 50 ballots: impossible
            "3,pending,01,,,\n")
    snap = parse_tabular(write(tmp_path, text))
    assert snap.frame["acta_id"].to_list() == ["1", "3"]
    assert snap.frame["blank"].to_list() == [None, None]
    assert snap.rejected.select("line", "rule").rows() == [(3, "sum_mismatch")]
    assert snap.metadata["figures_absent"] == "electors,blank,null"
    # with the columns present, a counted acta still needs them
    text2 = "acta_id,status,area1_code,cast,blank,null,v_ana,v_beto\n1,counted,01,50,,,30,18\n"
    assert "counted_incomplete" in parse_tabular(write(tmp_path, text2)).rejected["rule"]


ACTAS = ("acta_id,status,area1_code,area1_name,electors,cast,blank,null,v_ana,v_beto\n"
         "1,counted,01,Ñuble,100,50,1,1,30,18\n"
         "2,counted,02,\"Los Ríos, Sur\",90,40,0,2,20,18\n")


@pytest.mark.parametrize(("sep", "bom"), [(";", False), ("\t", False), (",", True),
                                          (";", True)])
def test_csv_dialects_read_the_same(tmp_path, sep, bom):
    base = parse_tabular(write(tmp_path, ACTAS, "comma.csv"))
    text = ACTAS.replace(",", sep).replace(f"\"Los Ríos{sep} Sur\"", "\"Los Ríos, Sur\"")
    p = tmp_path / "other.csv"
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    sidecar_path_for(p).write_text(sidecar_path_for(tmp_path / "comma.csv").read_text())
    snap = parse_tabular(p)
    assert_frame_equal(snap.frame, base.frame)
    assert_frame_equal(snap.geography, base.geography)
    assert snap.metadata["csv_separator"] == {",": "comma", ";": "semicolon",
                                              "\t": "tab"}[sep]


def test_semicolon_errors_still_name_line_and_field(tmp_path):
    text = ACTAS.replace(",", ";").replace(";30;18", ";3O;18").replace("Los Ríos; Sur",
                                                                       "Los Ríos, Sur")
    with pytest.raises(IngestError) as ei:
        parse_tabular(write(tmp_path, text))
    assert (ei.value.location.line, ei.value.location.field, ei.value.rule) == (
        2, "v_ana", "not_an_integer")


def test_dotted_thousands_are_refused_where_the_decimal_mark_is_a_comma(tmp_path):
    text = ACTAS.replace(",", ";").replace("Los Ríos; Sur", "Los Ríos, Sur")
    text = text.replace(";90;40;0;2;20;18", ";1.090;40;0;2;20;18")
    with pytest.raises(IngestError) as ei:
        parse_tabular(write(tmp_path, text))
    assert (ei.value.location.line, ei.value.location.field, ei.value.rule) == (
        3, "electors", "ambiguous_number")
    # with commas, R's and pandas' integral decimals are still read
    ok = ACTAS.replace(",90,40,", ",90.0,40,")
    assert parse_tabular(write(tmp_path, ok, "ok.csv")).frame["electors"].to_list() == [100, 90]


def test_json_rows_read_like_csv(tmp_path):
    base = parse_tabular(write(tmp_path, ACTAS, "a.csv"))
    rows = pl.read_csv(tmp_path / "a.csv", infer_schema=False).with_columns(
        pl.col("electors", "cast", "blank", "null", "v_ana", "v_beto").cast(pl.Int64))
    p = tmp_path / "a.json"
    p.write_text(json.dumps(rows.to_dicts(), ensure_ascii=False), encoding="utf-8")
    sidecar_path_for(p).write_text(sidecar_path_for(tmp_path / "a.csv").read_text())
    snap = parse_tabular(p)
    assert_frame_equal(snap.frame, base.frame)
    assert snap.metadata["format"] == "json" and snap.parser == "tabular.json"
    bad = rows.to_dicts()
    bad[1]["v_beto"] = "dieciocho"
    p.write_text(json.dumps({"rows": bad}), encoding="utf-8")
    with pytest.raises(IngestError) as ei:
        parse_tabular(p)
    assert (ei.value.location.line, ei.value.location.field, ei.value.rule) == (
        2, "v_beto", "not_an_integer")
    assert "fila/row 2" in str(ei.value.location)


def test_series_file_is_many_snapshots_in_one_transaction(tmp_path, tmp_store):
    text = ("as_of,level,unit_code,actas_total,actas_counted,cast,blank,null,v_ana,v_beto\n"
            "2024-01-01 20:00,national,,10,2,100,1,1,50,48\n"
            "2024-01-01 20:00,area1,01,6,2,100,1,1,50,48\n"
            "2024-01-01 22:00,national,,10,6,300,3,3,140,154\n"
            "2024-01-01 22:00,area1,01,6,6,300,3,3,140,154\n")
    p = write(tmp_path, text, timezone="America/Lima", as_of=None)
    snaps = service.parse_paths([p])
    assert [s.as_of.isoformat() for s in snaps] == ["2024-01-02T01:00:00+00:00",
                                                    "2024-01-02T03:00:00+00:00"]
    assert [s.frame.height for s in snaps] == [2, 2] and snaps[0].level == "area1"
    assert len({s.snapshot_id for s in snaps}) == 2
    out = service.ingest(tmp_store, snaps)
    assert [o.created for o in out] == [True, True]
    assert [p.leader for p in service.history(tmp_store).points] == ["ana", "beto"]
    # a bad cut names its line, and nothing is stored
    bad = text.replace("2024-01-01 22:00,area1", "ayer,area1")
    with pytest.raises(IngestError) as ei:
        parse_tabular(write(tmp_path, bad, "bad.csv", timezone="America/Lima"))
    assert (ei.value.location.line, ei.value.location.field, ei.value.rule) == (
        5, "as_of", "bad_cut")
    # a local time needs the contest's time zone
    with pytest.raises(IngestError) as ei:
        parse_tabular(write(tmp_path, text, "nozone.csv"))
    assert (ei.value.location.line, ei.value.rule) == (2, "bad_cut")


def test_series_of_actas_with_cut_labels(tmp_path):
    text = ("as_of,cut,acta_id,status,area1_code,cast,blank,null,v_ana,v_beto\n"
            "2024-01-02T01:00:00Z,primer corte,1,counted,01,50,1,1,30,18\n"
            "2024-01-02T01:00:00Z,primer corte,2,pending,01,,,,,\n"
            "2024-01-02T03:00:00Z,segundo corte,1,counted,01,50,1,1,30,18\n"
            "2024-01-02T03:00:00Z,segundo corte,2,counted,01,40,0,0,10,30\n")
    snaps = parse_tabular_many(write(tmp_path, text))
    assert [s.label for s in snaps] == ["primer corte", "segundo corte"]
    assert [s.frame["status"].to_list() for s in snaps] == [["counted", "pending"],
                                                            ["counted", "counted"]]
    with pytest.raises(IngestError) as ei:
        parse_tabular(write(tmp_path, text))
    assert ei.value.rule == "series_file"


def test_vote_type_and_ballots_issued_are_kept(tmp_path):
    text = ("acta_id,status,area1_code,batch,ballots_issued,cast,blank,null,v_ana,v_beto\n"
            "1,counted,01,election_day,52,50,1,1,30,18\n"
            "2,counted,01,Mail,40,40,0,2,20,18\n"
            "3,counted,01,mail,,40,0,2,20,18\n")
    snap = parse_tabular(write(tmp_path, text, vote_types=["election_day", "mail"]))
    assert json.loads(snap.metadata["vote_type_by_acta"]) == {"election_day": ["1"],
                                                              "mail": ["2", "3"]}
    assert json.loads(snap.metadata["ballots_issued_by_acta"]) == {"1": 52, "2": 40}
    with pytest.raises(IngestError) as ei:
        parse_tabular(write(tmp_path, text, vote_types=["election_day", "early"]))
    assert (ei.value.location.line, ei.value.location.field, ei.value.rule) == (
        3, "vote_type", "unknown_vote_type")


def test_folder_of_generic_files(tmp_path, tmp_store):
    d = tmp_path / "folder"
    d.mkdir()
    write(d, ACTAS, "a.csv")
    write(d, ACTAS.replace("1,counted,01", "1,pending,01").replace(",100,50,1,1,30,18",
                                                                  ",100,,,,,"),
          "b.csv", as_of="2024-01-01T00:00:00Z")
    (d / "notes.txt").write_text("not data")
    snaps = service.parse_paths([d])
    assert [s.label for s in snaps] == ["a.csv", "b.csv"]
    service.ingest(tmp_store, snaps)
    assert len(tmp_store.list_snapshots()) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.contest.json").write_text("{}")
    with pytest.raises(IngestError) as ei:
        service.parse_paths([empty])
    assert ei.value.rule == "no_generic_files"


def test_columns_map_a_spreadsheet_as_it_is(tmp_path):
    text = ("Mesa;Estado;Región;Emitidos;Blancos;Nulos;Ana Pérez;Beto Ruiz;Comentario\n"
            "1;contabilizada;01;50;1;1;30;18;ok\n"
            "2;contabilizada;01;40;0;2;2O;18;\n")
    cols = {"Mesa": "acta_id", "Estado": "status", "Región": "area1_code", "Emitidos": "cast",
            "Blancos": "blank", "Nulos": "null", "Ana Pérez": "v_ana", "Beto Ruiz": "v_beto",
            "Comentario": None}
    p = tmp_path / "hoja.csv"
    p.write_bytes(text.encode("latin-1"))
    sidecar_path_for(p).write_text(json.dumps({"contest": CONTEST, "as_of": "2024-01-02T00:00Z",
                                               "columns": cols}))
    with pytest.raises(IngestError) as ei:  # errors name the line and the format's column
        parse_tabular(p)
    assert (ei.value.location.line, ei.value.location.field) == (3, "v_ana")
    p.write_bytes(text.replace("2O", "20").encode("latin-1"))
    snap = parse_tabular(p)
    assert snap.frame["v_ana"].to_list() == [30, 20] and snap.rejected.height == 0
    assert "Latin-1" in snap.metadata["warnings"]
    sidecar_path_for(p).write_text(json.dumps({"contest": CONTEST, "as_of": "2024-01-02T00:00Z",
                                               "columns": cols | {"Comentario": "notas"}}))
    with pytest.raises(IngestError) as ei:
        parse_tabular(p)
    assert (ei.value.location.field, ei.value.rule) == ("notas", "unexpected_columns")


def test_ingest_says_its_warnings_once_per_file(tmp_path):
    from typer.testing import CliRunner

    from escrutinio.cli import app

    text = ("as_of;acta_id;status;area1_code;area1_name;cast;v_ana;v_beto\n"
            "2024-01-02T00:00Z;1;counted;01;Ñuñoa;50;30;18\n"
            "2024-01-02T00:00Z;A 2;counted;01;Ñuñoa;40;20;18\n"
            "2024-01-03T00:00Z;1;counted;01;Ñuñoa;50;30;18\n")
    p = tmp_path / "a.csv"
    p.write_bytes(text.encode("latin-1"))
    sidecar_path_for(p).write_text(json.dumps({"contest": CONTEST, "mi_nota": 1}))
    res = CliRunner().invoke(app, ["--db", str(tmp_path / "w.duckdb"), "ingest", str(p),
                                   "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert len(doc["snapshots"]) == 2  # a series of two cuts
    got = sorted((w["field"], w["en"].split(": ")[0]) for w in doc["warnings"])
    assert got == [("*", str(p)), ("acta_id", str(p)), ("mi_nota", str(sidecar_path_for(p)))]
    res = CliRunner().invoke(app, ["--db", str(tmp_path / "x.duckdb"), "--lang", "en",
                                   "ingest", str(p)])
    assert res.output.count("Warning:") == 3 and "read as Latin-1" in res.output


def test_vote_types_and_ballots_issued_come_back_from_the_store(tmp_path, tmp_store):
    from escrutinio.sources.tabular import ballots_issued, with_vote_types

    text = ("acta_id,status,area1_code,vote_type,ballots_issued,cast,blank,null,v_ana,v_beto\n"
            "1,counted,01,election_day,52,50,1,1,30,18\n"
            "2,counted,01,mail,,40,0,2,20,18\n"
            "3,pending,01,,,,,,,\n")
    snap = parse_tabular(write(tmp_path, text))
    service.ingest(tmp_store, [snap])
    info = tmp_store.list_snapshots()[0]
    md = tmp_store.snapshot_metadata(info.contest_id)[info.snapshot_id]
    frame = tmp_store.load_actas(info.snapshot_id)
    typed = with_vote_types(frame, md)
    assert typed.columns == [*frame.columns, "vote_type"]
    assert typed["vote_type"].to_list() == ["election_day", "mail", None]
    assert ballots_issued(frame, md).to_list() == [52, None, None]
    assert with_vote_types(frame, {}) is frame and ballots_issued(frame, {}) is None


def test_parquet_series_with_datetime_cuts_and_estimates(tmp_path):
    from datetime import datetime as dt

    from escrutinio.sources.base import SERIES_FRACTION_KEY

    df = pl.DataFrame({
        "as_of": [dt(2024, 1, 2, 1, tzinfo=UTC), dt(2024, 1, 2, 3, tzinfo=UTC)],
        "level": ["national", "national"], "unit_code": ["", ""],
        "cast": [100, 300], "v_ana": [50, 140], "v_beto": [48, 154],
        "pct_votes_counted": [0.25, 0.75],
    })
    p = tmp_path / "s.parquet"
    df.write_parquet(p)
    sidecar_path_for(p).write_text(json.dumps({"contest": CONTEST}))
    snaps = parse_tabular_many(p)
    assert [s.as_of.isoformat() for s in snaps] == ["2024-01-02T01:00:00+00:00",
                                                    "2024-01-02T03:00:00+00:00"]
    assert [s.metadata[SERIES_FRACTION_KEY] for s in snaps] == ["0.25", "0.75"]
    df.with_columns(pl.col("pct_votes_counted") * 100).write_parquet(p)
    with pytest.raises(IngestError) as ei:
        parse_tabular_many(p)
    assert (ei.value.location.line, ei.value.location.field, ei.value.rule) == (
        1, "pct_votes_counted", "fraction_out_of_range")
    assert "fila/row 1" in str(ei.value.location)


def test_export_keeps_what_the_metadata_holds(tmp_path, tmp_store):
    from escrutinio.sources.base import FRACTION_COUNTED_KEY, SERIES_FRACTION_KEY

    acta_text = ("acta_id,status,area1_code,vote_type,ballots_issued,cast,v_ana,v_beto\n"
                 "1,counted,01,election_day,52,50,30,18\n"
                 "2,counted,01,mail,,40,20,18\n"
                 "3,pending,01,,,,,\n")
    side = {k: FULL[k] for k in ("timezone", "court_name", "vote_types", "seats",
                                 "previous_round", "notes")}
    unit_text = ("level,unit_code,cast,v_ana,v_beto,votes_remaining,pct_votes_counted\n"
                 "national,,300,150,120,,\n"
                 "area1,01,200,100,80,20,\n"
                 "area1,02,100,50,40,,0.25\n")
    keep = ("timezone", "court_name", "vote_types", "seats", "previous_round", "notes",
            "figures_absent", "vote_type_by_acta", "ballots_issued_by_acta",
            SERIES_FRACTION_KEY, FRACTION_COUNTED_KEY, "votes_remaining")
    for name, text in (("a.csv", acta_text), ("u.csv", unit_text)):
        first = parse_tabular(write(tmp_path, text, name, **side))
        service.ingest(tmp_store, [first])
        stored = service.load(tmp_store, tmp_store.snapshot(first.snapshot_id))
        md = tmp_store.snapshot_metadata(first.contest.id)[first.snapshot_id]
        snap = dataclasses.replace(first, frame=stored.frame, metadata=md)
        data, _ = write_snapshot(snap, tmp_path / "out" / name)
        again = parse_tabular(data)
        key = "acta_id" if "acta_id" in first.frame.columns else ["level", "unit_code"]
        assert_frame_equal(again.frame.sort(key), first.frame.sort(key))
        assert {k: again.metadata.get(k) for k in keep} == {k: md.get(k) for k in keep}
        assert again.rejected.height == 0
