"""One test per bad-input rule of the generic format (docs/formats.md, "Validation").

File-level rules raise IngestError naming file, line (Parquet: data row), field and rule,
and leave a store that already holds a good snapshot exactly as it was. Row-level rules
reject the row (kept in ``ParsedSnapshot.rejected`` with its rule and line) and keep the
good rows.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from escrutinio.errors import IngestError
from escrutinio.sources.tabular import parse_tabular, sidecar_path_for

CONTEST = {
    "id": "xx-bad-1v", "name": "Bad input", "kind": "first_round", "country": "XX",
    "date": "2024-01-01", "majority_threshold": 0.5,
    "candidates": [{"code": "ana", "name": "Ana"}, {"code": "beto", "name": "Beto"},
                   {"code": "caro", "name": "Caro"}],
}
HEADER = ("acta_id,status,area1_code,area1_name,area3_code,electors,cast,blank,null,"
          "challenged,v_ana,v_beto,v_caro")
# line 2..5 of the file; every row adds up: ana + beto + caro + blank + null + challenged = cast
GOOD = [
    "0001,counted,01,Norte,010101,300,200,5,5,0,100,60,30",
    "0002,counted,01,Norte,010102,300,210,5,5,0,100,70,30",
    "0003,pending,02,Sur,020101,250,,,,,,,",
    "0004,counted,02,Sur,020102,250,190,5,5,0,90,60,30",
]


def csv_text(rows: list[str], header: str = HEADER) -> str:
    return header + "\n" + "\n".join(rows) + "\n"


def put_file(folder: Path, data: bytes | str, name: str = "actas.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    sidecar_path_for(p).write_text(json.dumps({"contest": CONTEST,
                                               "as_of": "2024-01-02T00:00:00Z"}))
    return p


@pytest.fixture
def store(tmp_store, tmp_path):
    """A store that already holds one good snapshot."""
    good = put_file(tmp_path / "good", csv_text(GOOD))
    tmp_store.put_snapshot(parse_tabular(good))
    return tmp_store


def state(store) -> tuple[list[str], list[int], int, int]:
    snaps = store.list_snapshots()
    rows = store.con.execute("SELECT count(*) FROM actas").fetchone()[0]
    reports = store.con.execute("SELECT count(*) FROM row_reports").fetchone()[0]
    return [s.snapshot_id for s in snaps], [s.n_rows for s in snaps], rows, reports


def ingest(store, *paths: Path) -> None:
    """Parse every file first, then store all of them at once (the CLI's contract)."""
    store.put_snapshots([parse_tabular(p) for p in paths])


def assert_rejected_file(store, tmp_path: Path, path: Path, line: int | None,
                         field: str | None, rule: str) -> IngestError:
    before = state(store)
    assert before[2] == 4
    # a second good file in the same command must not be stored either
    other = put_file(tmp_path / "other", csv_text(GOOD[:2]))
    with pytest.raises(IngestError) as ei:
        ingest(store, other, path)
    err = ei.value
    assert err.location.file == str(path)
    assert (err.location.line, err.location.field, err.rule) == (line, field, rule)
    assert err.message_es and err.message_en and err.message_es != err.message_en
    assert state(store) == before
    return err


# --- file-level rules: IngestError, store unchanged -------------------------------------


def test_missing_column(store, tmp_path):
    text = csv_text([r.replace(",200,", ",") for r in GOOD[:1]],
                    HEADER.replace(",cast", ""))
    p = put_file(tmp_path / "bad", text)
    assert_rejected_file(store, tmp_path, p, 1, "cast", "missing_columns")


def test_extra_column(store, tmp_path):
    text = csv_text([r + ",x" for r in GOOD], HEADER + ",comentario")
    p = put_file(tmp_path / "bad", text)
    assert_rejected_file(store, tmp_path, p, 1, "comentario", "unexpected_columns")


def test_extra_candidate_column(store, tmp_path):
    text = csv_text([r + ",3" for r in GOOD], HEADER + ",v_dario")
    p = put_file(tmp_path / "bad", text)
    err = assert_rejected_file(store, tmp_path, p, 1, "v_dario", "unknown_candidate_column")
    assert "v_dario" in err.message_en


def test_missing_candidate_column(store, tmp_path):
    rows = [",".join(r.split(",")[:-1]) for r in GOOD]
    p = put_file(tmp_path / "bad", csv_text(rows, HEADER.replace(",v_caro", "")))
    assert_rejected_file(store, tmp_path, p, 1, "v_caro", "missing_candidate_column")


def test_latin1_is_read_with_a_warning(store, tmp_path):
    # Excel's CSV export in many locales is Latin-1: read, never silently (issue #16)
    rows = [*GOOD[:2], GOOD[2].replace("Sur", "Ñuñoa")]
    data = csv_text(rows).encode("latin-1")
    p = put_file(tmp_path / "bad", data)
    snap = parse_tabular(p)
    assert snap.geography.filter(pl.col("code") == "02")["name"].to_list() == ["Ñuñoa"]
    warn = snap.findings.filter(pl.col("rule") == "ingest_warning")
    assert warn.height == 1 and "Latin-1" in warn["message_en"][0]
    assert "line 4" in warn["message_en"][0] and "Latin-1" in snap.metadata["warnings"]


def test_truncated_gzip(store, tmp_path):
    data = gzip.compress(csv_text(GOOD * 50).encode())
    p = put_file(tmp_path / "bad", data[: len(data) // 2], "actas.csv.gz")
    assert_rejected_file(store, tmp_path, p, None, None, "gzip_corrupt")


def test_text_in_number_field(store, tmp_path):
    rows = [GOOD[0], GOOD[1].replace(",70,", ",7O,"), GOOD[2]]
    p = put_file(tmp_path / "bad", csv_text(rows))
    err = assert_rejected_file(store, tmp_path, p, 3, "v_beto", "not_an_integer")
    assert "7O" in err.message_en


def test_empty_file(store, tmp_path):
    p = put_file(tmp_path / "bad", b"")
    assert_rejected_file(store, tmp_path, p, None, None, "empty_file")


def test_header_only_file(store, tmp_path):
    p = put_file(tmp_path / "bad", HEADER + "\n")
    assert_rejected_file(store, tmp_path, p, 2, None, "no_rows")


def test_ragged_line_too_many_fields(store, tmp_path):
    rows = [GOOD[0], GOOD[1], GOOD[2] + ",9", GOOD[3]]
    p = put_file(tmp_path / "bad", csv_text(rows))
    assert_rejected_file(store, tmp_path, p, 4, None, "wrong_field_count")


def test_ragged_line_too_few_fields(store, tmp_path):
    # polars pads a short line with nulls; the reader must still refuse it
    rows = [GOOD[0], GOOD[1], GOOD[2], GOOD[3].rsplit(",", 1)[0]]
    p = put_file(tmp_path / "bad", csv_text(rows))
    assert_rejected_file(store, tmp_path, p, 5, None, "wrong_field_count")


def test_line_numbers_survive_quoted_newlines(tmp_path):
    """A quoted field spanning two lines must not shift the line of later errors."""
    rows = [GOOD[0].replace("Norte", '"Norte\ny más"'), GOOD[1], GOOD[3].replace(",60,", ",6x,")]
    p = put_file(tmp_path / "q", csv_text(rows))
    with pytest.raises(IngestError) as ei:
        parse_tabular(p)
    assert (ei.value.location.line, ei.value.location.field) == (5, "v_beto")


def test_classic_mac_line_endings_are_read_with_their_line_numbers(tmp_path):
    """CR-only line endings (Excel's "CSV (Macintosh)") are read, not a crash, and a bad
    figure is still named by its line."""
    rows = [GOOD[0], GOOD[1], GOOD[3].replace(",60,", ",6x,")]
    p = put_file(tmp_path / "cr", csv_text(rows).replace("\n", "\r"))
    with pytest.raises(IngestError) as ei:
        parse_tabular(p)
    assert (ei.value.location.line, ei.value.location.field) == (4, "v_beto")
    ok = put_file(tmp_path / "cr_ok", csv_text(GOOD).replace("\n", "\r"))
    assert parse_tabular(ok).frame.height == 4


def test_parquet_string_in_count_column(store, tmp_path):
    df = pl.DataFrame({
        "acta_id": ["0001", "0002", "0003"], "status": ["counted"] * 3,
        "area1_code": ["01", "01", "02"], "electors": [300, 300, 250],
        "cast": ["200", "veinte", "190"], "blank": [5, 5, 5], "null": [5, 5, 5],
        "v_ana": [100, 100, 90], "v_beto": [60, 70, 60], "v_caro": [30, 30, 30],
    })
    (tmp_path / "bad").mkdir()
    p = tmp_path / "bad" / "actas.parquet"
    df.write_parquet(p)
    sidecar_path_for(p).write_text(json.dumps({"contest": CONTEST,
                                               "as_of": "2024-01-02T00:00:00Z"}))
    err = assert_rejected_file(store, tmp_path, p, 2, "cast", "not_an_integer")
    assert "fila/row 2" in str(err) and "línea" not in str(err)
    assert "veinte" in err.message_en


def test_parquet_codes_must_be_text(store, tmp_path):
    df = pl.DataFrame({
        "acta_id": ["0001"], "status": ["counted"], "area1_code": [1], "electors": [300],
        "cast": [200], "blank": [5], "null": [5], "v_ana": [100], "v_beto": [60],
        "v_caro": [30],
    })
    (tmp_path / "bad").mkdir()
    p = tmp_path / "bad" / "actas.parquet"
    df.write_parquet(p)
    sidecar_path_for(p).write_text(json.dumps({"contest": CONTEST,
                                               "as_of": "2024-01-02T00:00:00Z"}))
    assert_rejected_file(store, tmp_path, p, 1, "area1_code", "wrong_type")


def test_truncated_parquet(store, tmp_path):
    (tmp_path / "bad").mkdir()
    p = tmp_path / "bad" / "actas.parquet"
    pl.DataFrame({"acta_id": ["1"] * 100}).write_parquet(p)
    p.write_bytes(p.read_bytes()[:40])
    sidecar_path_for(p).write_text(json.dumps({"contest": CONTEST,
                                               "as_of": "2024-01-02T00:00:00Z"}))
    assert_rejected_file(store, tmp_path, p, None, None, "parquet_corrupt")


# --- row-level rules: the row is rejected and kept, the good rows stay -------------------


def rejected_rows(tmp_path: Path, rows: list[str], tmp_store) -> tuple[pl.DataFrame, list[str]]:
    snap = parse_tabular(put_file(tmp_path / "rows", csv_text(rows)))
    out = tmp_store.put_snapshot(snap)
    reports = tmp_store.load_row_reports(out.snapshot_id)
    assert reports.filter(pl.col("severity") == "reject").height == snap.rejected.height
    return snap.rejected, snap.frame["acta_id"].to_list()


def assert_rule(rejected: pl.DataFrame, line: int, rule: str, field: str | None = None) -> None:
    hit = rejected.filter((pl.col("line") == line) & (pl.col("rule") == rule))
    assert hit.height >= 1, rejected.select("line", "field", "rule").rows()
    if field is not None:
        assert field in hit["field"].to_list()


def test_unknown_status(tmp_path, tmp_store):
    rows = [*GOOD[:2], GOOD[2].replace("pending", "en revisión"), GOOD[3]]
    rej, kept = rejected_rows(tmp_path, rows, tmp_store)
    assert rej.select("line", "acta_id", "field", "rule").rows() == [
        (4, "0003", "status", "unknown_status")]
    assert "en revisión" in rej["raw"][0]
    assert kept == ["0001", "0002", "0004"]


def test_negative_count(tmp_path, tmp_store):
    # the figures still add up (100 + 70 - 30 + 5 + 5 + 0 = 150): only the sign is bad
    rows = [GOOD[0], "0002,counted,01,Norte,010102,300,150,5,5,0,100,70,-30", *GOOD[2:]]
    rej, kept = rejected_rows(tmp_path, rows, tmp_store)
    assert_rule(rej, 3, "negative_count", "v_caro")
    assert rej["line"].unique().to_list() == [3]
    assert kept == ["0001", "0003", "0004"]


def test_sum_mismatch_on_counted_acta(tmp_path, tmp_store):
    rows = [GOOD[0], GOOD[1].replace(",100,70,", ",100,71,"), *GOOD[2:]]
    rej, kept = rejected_rows(tmp_path, rows, tmp_store)
    assert rej.select("line", "field", "rule").rows() == [(3, "cast", "sum_mismatch")]
    assert kept == ["0001", "0003", "0004"]


def test_sum_mismatch_on_uncounted_acta_only_flags(tmp_path):
    rows = [GOOD[0], GOOD[1].replace("counted", "jee").replace(",100,70,", ",100,71,")]
    snap = parse_tabular(put_file(tmp_path / "rows", csv_text(rows)))
    assert snap.rejected.height == 0
    assert snap.findings.select("line", "rule").rows() == [(3, "sum_mismatch_uncounted")]


def test_cast_exceeds_electors(tmp_path, tmp_store):
    rows = [*GOOD[:3], GOOD[3].replace(",250,190,", ",180,190,")]
    rej, kept = rejected_rows(tmp_path, rows, tmp_store)
    assert rej.select("line", "field", "rule").rows() == [(5, "cast", "cast_exceeds_electors")]
    assert kept == ["0001", "0002", "0003"]


def test_duplicate_acta_with_conflicting_figures(tmp_path, tmp_store):
    rows = [*GOOD, GOOD[0].replace(",100,60,", ",101,59,")]
    rej, kept = rejected_rows(tmp_path, rows, tmp_store)
    assert rej.select("line", "acta_id", "rule").rows() == [
        (2, "0001", "duplicate_acta"), (6, "0001", "duplicate_acta")]
    assert kept == ["0002", "0003", "0004"]


def test_duplicate_identical_acta(tmp_path, tmp_store):
    rows = [*GOOD, GOOD[1]]
    rej, kept = rejected_rows(tmp_path, rows, tmp_store)
    assert rej.select("line", "acta_id", "rule").rows() == [
        (6, "0002", "duplicate_acta_identical")]
    assert kept == ["0001", "0002", "0003", "0004"]


def test_counted_acta_with_empty_field(tmp_path, tmp_store):
    rows = [*GOOD[:3], GOOD[3].replace(",60,", ",,")]
    rej, kept = rejected_rows(tmp_path, rows, tmp_store)
    assert_rule(rej, 5, "counted_incomplete")
    assert rej["line"].unique().to_list() == [5]
    assert kept == ["0001", "0002", "0003"]


def test_missing_acta_id(tmp_path, tmp_store):
    rows = [*GOOD[:3], "," + GOOD[3].split(",", 1)[1]]
    rej, kept = rejected_rows(tmp_path, rows, tmp_store)
    assert_rule(rej, 5, "missing_acta_id")
    assert kept == ["0001", "0002", "0003"]
