"""The observer-copy format: round trips and strict errors (file, line, field, rule)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from defence_data import final
from escrutinio.defence import observers
from escrutinio.defence.generator import generate_copies
from escrutinio.errors import IngestError
from escrutinio.sources.peru import PERU_2021_RUNOFF as RUNOFF

HEADER = "acta_id,observer_id,observed_at,cast,blank,null,challenged,v_castillo,v_fujimori"
ROW = "000001,obs-1,2021-06-06T19:40:00-05:00,214,1,14,0,118,81"


def write(tmp_path: Path, *lines: str, name: str = "c.csv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def err(tmp_path: Path, *lines: str) -> IngestError:
    with pytest.raises(IngestError) as ei:
        observers.parse_observer_copies(write(tmp_path, *lines), RUNOFF)
    return ei.value


@pytest.fixture(scope="module")
def generated(data_dir: Path) -> pl.DataFrame:
    sample = final().frame.head(3000)
    return generate_copies(sample, RUNOFF, coverage=0.5, seed=11).copies


@pytest.mark.parametrize("name", ["copies.csv", "copies.csv.gz", "copies.parquet"])
def test_round_trip(tmp_path: Path, generated: pl.DataFrame, name: str) -> None:
    path = observers.write_observer_copies(generated, tmp_path / name)
    back = observers.parse_observer_copies(path, RUNOFF)
    assert back.n_rejected == 0
    assert back.fmt == ("parquet" if name.endswith("parquet") else "csv")
    cols = [c for c in generated.columns if c != "line"]
    assert back.frame.select(cols).equals(generated.select(cols))
    assert len(back.source_sha256) == 64


def test_times_zones_and_defaults(tmp_path: Path) -> None:
    p = write(tmp_path, HEADER, ROW, "2,obs-2,2021-06-06 19:40,10,0,0,,5,5",
              "3,obs-3,2021-06-07T00:40:00Z,10,0,0,0,5,5")
    c = observers.parse_observer_copies(p, RUNOFF, assume_tz="America/Lima")
    times = c.frame["observed_at"].dt.strftime("%Y-%m-%dT%H:%M").to_list()
    assert times == ["2021-06-07T00:40"] * 3  # -05:00, Lima (naive) and Z agree
    assert c.frame["challenged"].to_list() == [0, None, 0]  # empty = not reported
    assert c.frame["copy_id"][0].endswith(":2")  # <file hash>:<line>
    assert c.frame["line"].to_list() == [2, 3, 4]


@pytest.mark.parametrize(("lines", "line", "field", "rule"), [
    ((HEADER.replace(",blank", ""), ROW), 1, "blank", "missing_columns"),
    ((HEADER.replace(",v_fujimori", ""), ROW), 1, "v_fujimori", "missing_candidate_column"),
    ((HEADER + ",v_lopez", ROW + ",3"), 1, "v_lopez", "unknown_candidate_column"),
    ((HEADER + ",colour", ROW + ",red"), 1, "colour", "unexpected_columns"),
    ((HEADER, ROW, ROW.replace(",214,", ",dos14,")), 3, "cast", "not_an_integer"),
    ((HEADER, ROW, ROW.replace("2021-06-06T19:40:00-05:00", "6 de junio")), 3,
     "observed_at", "bad_timestamp"),
    ((HEADER, ROW, ROW + ",9"), 3, None, "wrong_field_count"),
])
def test_file_errors_name_line_field_rule(tmp_path: Path, lines: tuple[str, ...], line: int,
                                          field: str | None, rule: str) -> None:
    e = err(tmp_path, *lines)
    assert (e.location.line, e.rule) == (line, rule)
    if field is not None:
        assert e.location.field == field
    assert e.message_es != e.message_en and "línea/line" in str(e)


def test_duplicate_copy_id_is_a_file_error(tmp_path: Path) -> None:
    h = HEADER + ",copy_id"
    e = err(tmp_path, h, ROW + ",A", ROW + ",B", ROW + ",A")
    assert (e.rule, e.location.line, e.location.field) == ("duplicate_copy_id", 4, "copy_id")


def test_row_problems_are_rejected_and_kept(tmp_path: Path) -> None:
    h = HEADER + ",image_sha256"
    good_hash = "ab" * 32
    p = write(tmp_path, h, ROW + "," + good_hash,
              ",obs-1,2021-06-06T19:40:00Z,1,0,0,0,1,0,",  # no acta id
              "000003,,2021-06-06T19:40:00Z,1,0,0,0,1,0,",  # no observer
              "000004,o,2021-06-06T19:40:00Z,1,0,0,0,-1,2,",  # negative
              "000005,o,2021-06-06T19:40:00Z,,0,0,0,1,0,",  # cast empty
              "000006,o,2021-06-06T19:40:00Z,1,0,0,0,1,0,xyz")  # bad hash
    c = observers.parse_observer_copies(p, RUNOFF)
    assert c.frame["acta_id"].to_list() == ["000001"]
    got = {(r["line"], r["rule"], r["field"]) for r in c.rejected.iter_rows(named=True)}
    assert got == {(3, "missing_acta_id", "acta_id"), (4, "missing_observer", "observer_id"),
                   (5, "negative_count", "v_castillo"), (6, "missing_count", "cast"),
                   (7, "bad_image_hash", "image_sha256")}
    assert all(json.loads(r)["observer_id"] in ("obs-1", None, "o") for r in c.rejected["raw"])


def test_parquet_errors_name_the_row(tmp_path: Path, generated: pl.DataFrame) -> None:
    bad = generated.drop("line").with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(2.5).otherwise(pl.col("cast")
                                                                   .cast(pl.Float64))
        .alias("cast"))
    path = tmp_path / "bad.parquet"
    bad.write_parquet(path)
    with pytest.raises(IngestError) as ei:
        observers.parse_observer_copies(path, RUNOFF)
    assert (ei.value.rule, ei.value.location.line, ei.value.location.field) == (
        "not_an_integer", 5, "cast")
    assert "fila/row 5" in str(ei.value)


def test_json_records_for_an_api() -> None:
    rec = {"acta_id": "1", "observer_id": "o", "observed_at": "2021-06-06T19:40:00Z",
           "cast": 10, "blank": 0, "null": 0, "v_castillo": 6, "v_fujimori": 4}
    c = observers.parse_observer_records([rec, rec | {"acta_id": "2"}], RUNOFF)
    assert c.n_copies == 2 and c.fmt == "json"
    assert c.frame["v_castillo"].to_list() == [6, 6]
    with pytest.raises(IngestError) as ei:
        observers.parse_observer_records([rec, rec | {"cast": True}], RUNOFF)
    assert (ei.value.rule, ei.value.location.line, ei.value.location.field) == (
        "not_an_integer", 2, "cast")
    with pytest.raises(IngestError) as ei:
        observers.parse_observer_records([rec | {"v_otro": 1}], RUNOFF)
    assert ei.value.rule == "unknown_candidate_column"


def test_schema_matches_the_parser() -> None:
    s = observers.schema()
    assert s["$schema"].endswith("2020-12/schema")
    assert s["required"] == [*observers.REQUIRED_TEXT, *observers.REQUIRED_COUNTS]
    props = set(s["properties"])
    assert props == (set(observers.REQUIRED_TEXT) | set(observers.REQUIRED_COUNTS)
                     | set(observers.OPTIONAL_TEXT) | set(observers.OPTIONAL_COUNTS))
    assert list(s["patternProperties"]) == ["^v_[a-z0-9_]+$"]
    assert s["additionalProperties"] is False


def test_companion_lists(tmp_path: Path, data_dir: Path) -> None:
    codes = observers.read_copy_codes(
        data_dir / "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz")
    assert codes.height == 86_488
    assert codes.row(0) == ("000001", "91L")
    p = write(tmp_path, "# pedido de nulidad", "000001", "900123  # abroad", "",
              name="req.txt")
    assert observers.read_acta_list(p) == ["000001", "900123"]
    p2 = write(tmp_path, "mesa,motivo", "000001,firma", "000002,otra", name="req.csv")
    assert observers.read_acta_list(p2) == ["000001", "000002"]
    with pytest.raises(IngestError) as ei:
        observers.read_acta_list(write(tmp_path, "000001", "1 2", name="bad.txt"))
    assert (ei.value.rule, ei.value.location.line) == ("not_an_acta_id", 2)


# --- any dialect, JSON files, optional time (#16.4) --------------------------------------

def test_csv_dialects_and_json_read_the_same(tmp_path: Path, generated: pl.DataFrame) -> None:
    ref_path = observers.write_observer_copies(generated, tmp_path / "ref.csv")
    ref = observers.parse_observer_copies(ref_path, RUNOFF)
    text = ref_path.read_text("utf-8")
    frame = pl.read_csv(ref_path, infer_schema=False)
    semi = tmp_path / "excel.csv"  # Excel in a decimal-comma locale: BOM, ';', CRLF
    semi.write_bytes(b"\xef\xbb\xbf" + frame.write_csv(separator=";").replace("\n", "\r\n")
                     .encode("utf-8"))
    tab = tmp_path / "copies.tsv"
    tab.write_text(frame.write_csv(separator="\t"), encoding="utf-8")
    js = tmp_path / "copies.json"
    js.write_text(json.dumps({"copies": frame.to_dicts()}), encoding="utf-8")
    # default ids hash the bytes; JSON rows are numbered from 1 (a CSV's data from line 2)
    cols = [c for c in ref.frame.columns if c not in ("copy_id", "line")]
    for p in (semi, tab, js):
        got = observers.parse_observer_copies(p, RUNOFF)
        assert got.frame.select(cols).equals(ref.frame.select(cols)), p.name
        shift = 1 if p is js else 0
        assert (got.frame["line"] + shift).equals(ref.frame["line"])
        assert got.n_rejected == ref.n_rejected
    assert observers.parse_observer_copies(js, RUNOFF).fmt == "json"
    assert text.count(",") > 0


def test_observed_at_is_optional(tmp_path: Path) -> None:
    no_col = HEADER.replace(",observed_at", "")
    c = observers.parse_observer_copies(
        write(tmp_path, no_col, "000001,obs-1,214,1,14,0,118,81"), RUNOFF)
    assert c.n_copies == 1 and c.frame["observed_at"].null_count() == 1
    c = observers.parse_observer_copies(
        write(tmp_path, HEADER, "000001,obs-1,,214,1,14,0,118,81", name="e.csv"), RUNOFF)
    assert c.n_copies == 1 and c.frame["observed_at"].null_count() == 1


def test_latin1_is_read_with_a_warning(tmp_path: Path) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes((HEADER + ",organization\n" + ROW + ",Perú Libre\n").encode("cp1252"))
    c = observers.parse_observer_copies(p, RUNOFF)
    assert c.frame["organization"].to_list() == ["Perú Libre"]
    assert c.warnings and "Latin-1" in c.warnings[0][1]


def test_bad_json_file_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text('[\n {"acta_id": "000001",\n  "observer_id": }\n]\n', encoding="utf-8")
    with pytest.raises(IngestError) as ei:
        observers.parse_observer_copies(p, RUNOFF)
    assert ei.value.rule == "json_syntax" and ei.value.location.line == 3
    p.write_text('{"acta_id": "1"}', encoding="utf-8")
    with pytest.raises(IngestError) as ei:
        observers.parse_observer_copies(p, RUNOFF)
    assert ei.value.rule == "json_not_a_list" and ei.value.exit_code == 2
    p.write_text('[{"acta_id": "1", "observer_id": "o", "cast": "x", "blank": 0, '
                 '"null": 0, "v_castillo": 1, "v_fujimori": 2}]', encoding="utf-8")
    with pytest.raises(IngestError) as ei:
        observers.parse_observer_copies(p, RUNOFF)
    assert str(ei.value.location) == f"{p}, fila/row 1, campo/field 'cast'"


def test_semicolon_header_missing_a_column_names_it(tmp_path: Path) -> None:
    p = write(tmp_path, HEADER.replace(",blank", "").replace(",", ";"),
              ROW.replace(",1,14", ",14").replace(",", ";"))
    with pytest.raises(IngestError) as ei:
        observers.parse_observer_copies(p, RUNOFF)
    assert ei.value.rule == "missing_columns" and ei.value.location.field == "blank"
