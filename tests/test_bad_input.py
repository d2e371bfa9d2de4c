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
    # free text (an observation) may span lines; ids and names may not (see "Limits")
    rows = [GOOD[0] + ',"ilegible\ny más"', GOOD[1] + ",", GOOD[3].replace(",60,", ",6x,") + ","]
    p = put_file(tmp_path / "q", csv_text(rows, HEADER + ",observation"))
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


# --- limits (docs/formats.md, "Limits"): hostile input refused, store unchanged -----------


def test_count_beyond_the_declared_maximum(store, tmp_path):
    # 10^9 + 1 votes for one candidate in one acta: refused, not summed into an overflow
    # (a row that adds up: electors, cast and the votes all agree)
    rows = [GOOD[0], "0002,counted,01,Norte,010102,1000000300,1000000111,5,5,0,1000000001,70,30"]
    p = put_file(tmp_path / "bad", csv_text(rows))
    with pytest.raises(IngestError) as ei:
        ingest(store, p)
    err = ei.value
    assert err.rule == "count_too_large" and "1,000,000,000" in err.message_en
    assert err.location.field in ("electors", "cast", "v_ana")


def test_count_beyond_64_bits(store, tmp_path):
    rows = [GOOD[0], GOOD[1].replace(",100,70,30", ",99999999999999999999,70,30")]
    p = put_file(tmp_path / "bad", csv_text(rows))
    with pytest.raises(IngestError) as ei:
        ingest(store, p)
    assert ei.value.rule in ("count_too_large", "not_an_integer")
    assert (ei.value.location.line, ei.value.location.field) == (3, "v_ana")


@pytest.mark.parametrize(("bad", "field"), [
    ("00\x0002", "acta_id"),  # NUL
    ("0002\u202e", "acta_id"),  # right-to-left override
    ("Norte\u2066", "area1_name"),  # bidi isolate in a name
])
def test_control_characters_in_ids_and_names(store, tmp_path, bad, field):
    row = GOOD[1].replace("0002", bad) if field == "acta_id" else GOOD[1].replace("Norte", bad)
    p = put_file(tmp_path / "bad", csv_text([GOOD[0], row]))
    err = assert_rejected_file(store, tmp_path, p, 3, field, "control_character")
    assert "U+" in err.message_en


def test_newline_in_a_quoted_name(store, tmp_path):
    row = GOOD[1].replace("Norte", '"Nor\nte"')
    p = put_file(tmp_path / "bad", csv_text([GOOD[0], row]))
    err = assert_rejected_file(store, tmp_path, p, 3, "area1_name", "control_character")
    assert "U+000A" in err.message_en


@pytest.mark.parametrize("formula", ['"=HYPERLINK(""http://x"",""y"")"', "+1", "-2+3", "@SUM(1)"])
def test_formula_as_acta_id(store, tmp_path, formula):
    p = put_file(tmp_path / "bad", csv_text([GOOD[0], GOOD[1].replace("0002", formula, 1)]))
    err = assert_rejected_file(store, tmp_path, p, 3, "acta_id", "formula_id")
    assert "formula" in err.message_en


def test_candidate_name_with_bidi_override(store, tmp_path):
    p = put_file(tmp_path / "bad", csv_text(GOOD))
    side = json.loads(sidecar_path_for(p).read_text())
    side["contest"]["candidates"][0]["name"] = "Ana \u202eanA"
    sidecar_path_for(p).write_text(json.dumps(side))
    with pytest.raises(IngestError) as ei:
        ingest(store, p)
    assert ei.value.rule == "control_character" and "U+202E" in ei.value.message_en


def test_deeply_nested_sidecar(store, tmp_path):
    # the standard parser recurses: 100,000 levels would be a RecursionError
    p = put_file(tmp_path / "bad", csv_text(GOOD))
    sidecar_path_for(p).write_text('{"contest": ' + "[" * 100_000 + "]" * 100_000 + "}")
    before = state(store)
    with pytest.raises(IngestError) as ei:
        ingest(store, p)
    assert ei.value.rule == "json_too_deep" and ei.value.location.file.endswith(".json")
    assert state(store) == before


def test_contest_id_reused_with_another_definition(store, tmp_path):
    rows = [",".join(r.split(",")[:-1]) for r in GOOD]
    p = put_file(tmp_path / "bad", csv_text(rows, HEADER.replace(",v_caro", "")))
    side = json.loads(sidecar_path_for(p).read_text())
    side["contest"]["candidates"] = side["contest"]["candidates"][:2]
    sidecar_path_for(p).write_text(json.dumps(side))
    before = state(store)
    with pytest.raises(IngestError) as ei:
        ingest(store, p)
    assert ei.value.rule == "contest_conflict" and ei.value.exit_code == 2
    assert "candidates" in ei.value.message_en and state(store) == before


def _gzip_bomb(path: Path, gib: int = 2) -> None:
    """``gib`` GiB of zeros in about 2 MB: 16 MiB members compressed once, repeated."""
    member = gzip.compress(b"acta_id,status\n" + b"0" * ((1 << 24) - 15), compresslevel=9)
    with path.open("wb") as fh:
        for _ in range(gib * 64):
            fh.write(member)


def test_gzip_bomb_refused_with_bounded_memory(tmp_path):
    import subprocess
    import sys

    bomb = tmp_path / "bomb.csv.gz"
    _gzip_bomb(bomb)
    assert bomb.stat().st_size < 3_000_000
    db = tmp_path / "s.duckdb"
    # a child that runs the CLI and reports the peak RSS of its own children only
    probe = ("import resource, subprocess, sys\n"
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
             "print(r.returncode, peak)\nprint(r.stdout)\nprint(r.stderr, file=sys.stderr)\n")
    res = subprocess.run([sys.executable, "-c", probe, sys.executable, "-c",
                          "from escrutinio.cli import app; app()", "--db", str(db), "ingest",
                          str(bomb), "--json"], capture_output=True, text=True, timeout=300,
                         check=False)
    code, peak_kb = (int(x) for x in res.stdout.split("\n", 1)[0].split())
    body = json.loads(res.stdout.split("\n", 1)[1])
    assert code == 2 and body["rule"] == "decompressed_too_large", res.stdout
    assert peak_kb < 500 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"
    assert not db.exists() or "Traceback" not in res.stderr


def test_bad_timestamp_in_an_onpe_file(data_dir, tmp_path, tmp_store):
    from escrutinio.sources.onpe_files import parse_provisional

    src = data_dir / "peru-2021-runoff/actas/hist_actas_electorales_20210608T1121_cadd76f.csv.gz"
    lines = gzip.decompress(src.read_bytes()).decode("utf-8").split("\n")
    lines[1234] = lines[1234].rsplit(",", 1)[0] + ",2021-06-08T25:99:00Z"
    bad = tmp_path / "hist_actas_electorales_20210608T1121_x.csv.gz"
    bad.write_bytes(gzip.compress("\n".join(lines).encode("utf-8")))
    with pytest.raises(IngestError) as ei:
        parse_provisional(bad)
    err = ei.value
    assert (err.location.line, err.location.field, err.rule) == (1235, "descargado",
                                                                 "bad_timestamp")
    assert "2021-06-08T25:99:00Z" in err.message_en


def test_as_of_option_validated(tmp_path):
    from typer.testing import CliRunner

    from escrutinio.cli import app

    p = put_file(tmp_path / "ok", csv_text(GOOD))
    res = CliRunner().invoke(app, ["--db", str(tmp_path / "s.duckdb"), "ingest", str(p),
                                   "--as-of", "not-a-date", "--json"])
    assert res.exit_code == 2 and "--as-of" in json.loads(res.stdout)["message_en"]
    assert not (tmp_path / "s.duckdb").exists()


def test_csv_export_escapes_formulas(tmp_path):
    import csv as csv_mod

    from escrutinio.api.export import write_spreadsheet_csv

    frame = pl.DataFrame({"acta_id": ["000001", "000002"],
                          "note": ["=cmd|' /C calc'!A0", "@SUM(A1)"],
                          "name": ["+51 999", "Ana"], "net": [-12, 3]})
    out = tmp_path / "report.csv"
    write_spreadsheet_csv(frame, out)
    rows = list(csv_mod.DictReader(out.read_text("utf-8-sig").splitlines()))
    assert [r["note"] for r in rows] == ["'=cmd|' /C calc'!A0", "'@SUM(A1)"]
    assert [r["name"] for r in rows] == ["'+51 999", "Ana"]
    assert [r["net"] for r in rows] == ["-12", "3"]  # numbers stay numbers


# --- the server: hostile requests ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_observer_filtering_by_another_account_sees_nothing(kind, tmp_path, pg_server,
                                                            data_dir):
    from server_support import copy_of, server_env

    with server_env(kind, tmp_path, pg_server, data_dir) as e:
        r = e.client.post("/api/v1/observer/submissions", headers=e.h("ana"),
                          json={"client_id": "hostile-0001", "copy": copy_of(e.acta())})
        assert r.status_code in (200, 201), r.text
        other = e.accounts["ben"].account_id
        r = e.client.get(f"/api/v1/observer/submissions?account={other}",
                         headers=e.h("ana"))
        assert r.status_code in (200, 403), r.text
        body = r.json()
        if r.status_code == 200:
            assert body["submissions"] == [] and body["total"] == 0
        assert "PostgreSQL" not in r.text and "NUL" not in r.text
        # a NUL byte in a filter: refused without the database's words
        r = e.client.get("/api/v1/observer/submissions?acta=00%0001", headers=e.h("ana"))
        assert r.status_code in (400, 422) and "PostgreSQL" not in r.text


def test_client_disconnect_is_not_a_server_error(tmp_path, data_dir, caplog):
    """A client that goes away while its body is read: logged as a disconnect, no 500 and
    no traceback."""
    import asyncio
    import logging

    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from escrutinio.api.app import create_app

    p = put_file(tmp_path / "ok", csv_text(GOOD))
    db = tmp_path / "s.duckdb"
    from escrutinio.store.duckdb_store import DuckDBStore

    with DuckDBStore(db) as s:
        s.put_snapshot(parse_tabular(p))
    app = create_app(str(db), warm=False)

    async def echo(request: Request) -> JSONResponse:  # reads the body the client drops
        return JSONResponse({"n": len(await request.body())})

    app.router.add_route("/__test/echo", echo, methods=["POST"])

    sent: list[dict[str, object]] = []
    chunks = [{"type": "http.request", "body": b"x" * 10, "more_body": True},
              {"type": "http.disconnect"}]

    async def receive() -> dict[str, object]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/__test/echo", "raw_path":
             b"/__test/echo", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"test"), (b"content-length", b"100"),
                         (b"content-type", b"application/json")],
             "client": ("127.0.0.1", 1), "server": ("test", 80)}
    with caplog.at_level(logging.INFO):
        asyncio.run(app(scope, receive, send))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert starts and starts[0]["status"] == 499
    assert "client disconnected" in caplog.text
    assert "Traceback" not in caplog.text


def test_deeply_nested_json_bundle(tmp_path, tmp_store):
    """The 2026 district bundle reader: deep nesting refused (was a RecursionError)."""
    from escrutinio import service

    p = tmp_path / "x_district_bundle_20260504.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(IngestError) as ei:
        service.ingest(tmp_store, list(service.detect_parser(p)(p)))
    assert ei.value.rule == "json_too_deep" and ei.value.exit_code == 2
    assert tmp_store.list_snapshots() == []
