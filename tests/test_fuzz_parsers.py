"""Every parser, fuzzed (hypothesis): hostile bytes end in a clear refusal or a stored
snapshot, never in a traceback.

The property, for each input: either ingest raises an error with exit code 2 and the
store is exactly as it was, or the snapshots are stored. Any other exception (a
``ValueError``, a polars error, ``RecursionError``, ``OverflowError``...) fails the test.
Seeds are the first rows of the real files in the shared data folder (and the generic
format's own example); mutations replace, insert or delete bytes with payloads that
broke parsers before (NUL, bidi overrides, quotes, huge numbers, bad dates, broken
UTF-8, formulas), duplicate or drop lines, or truncate the file.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escrutinio import service
from escrutinio.errors import EscrutinioError
from escrutinio.store.duckdb_store import DuckDBStore

PAYLOADS = [b"\x00", "\u202e".encode(), "\u2066".encode(), b"\n", b"\r", b'"', b",", b";",
            b"99999999999999999999", b"1000000001", b"-1", b"=1+1", b"@SUM(A1)", b"\xff\xfe",
            b"\xc3", b"NaN", b"inf", b"1e309", b"", b"2021-13-45T99:99:99Z", b"0000-00-00",
            b"[[[[[[[[", b"{", b"\t", "Ñandú".encode()]

MUTATION = st.tuples(
    st.sampled_from(["replace", "insert", "delete", "dup_line", "drop_line", "truncate"]),
    st.floats(0, 1, allow_nan=False),
    st.one_of(st.sampled_from(PAYLOADS), st.binary(max_size=6)),
    st.integers(1, 12),
)

FUZZ = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def mutate(data: bytes, mutations: list[tuple[str, float, bytes, int]]) -> bytes:
    for op, where, payload, width in mutations:
        at = int(where * len(data))
        lines = data.split(b"\n")
        k = min(int(where * len(lines)), len(lines) - 1)
        if op == "replace":
            data = data[:at] + payload + data[at + width:]
        elif op == "insert":
            data = data[:at] + payload + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + width:]
        elif op == "dup_line":
            data = b"\n".join([*lines[:k + 1], lines[k], *lines[k + 1:]])
        elif op == "drop_line":
            data = b"\n".join(lines[:k] + lines[k + 1:])
        else:
            data = data[:at]
    return data


def head_lines(path: Path, n: int) -> bytes:
    raw = path.read_bytes()
    text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    return b"\n".join(text.split(b"\n")[:n]) + b"\n"


def state(store: DuckDBStore) -> tuple[list[str], int]:
    ids = [s.snapshot_id for s in store.list_snapshots()]
    return ids, store.con.execute("SELECT count(*) FROM actas").fetchone()[0]


def check_ingest(store: DuckDBStore, path: Path, as_of: str | None = None,
                 parse: Callable[[Path], Any] | None = None) -> str:
    """Parse and store ``path``; 'refused' (exit 2, store unchanged) or 'stored'."""
    before = state(store)
    try:
        parser = parse or service.detect_parser(path, as_of=as_of)
        parsed = list(parser(path))
        service.ingest(store, parsed)
    except EscrutinioError as exc:
        assert exc.exit_code == 2, f"{type(exc).__name__} exit {exc.exit_code}: {exc}"
        assert exc.message_es and exc.message_en
        assert state(store) == before
        return "refused"
    return "stored"


class Case:
    """A fresh folder and store per test (hypothesis reuses the test's arguments)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="fuzz-"))
        self.store = DuckDBStore(self.dir / "s.duckdb")
        self.n = 0

    def path(self, name: str) -> Path:
        self.n += 1
        folder = self.dir / str(self.n)
        folder.mkdir()
        return folder / name

    def close(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def seeds(data_dir: Path) -> dict[str, bytes]:
    runoff = data_dir / "peru-2021-runoff"
    return {
        "ronderos": head_lines(runoff / "actas/actas_electorales_ronderos.pe.csv.gz", 25),
        "provisional": head_lines(
            runoff / "actas/hist_actas_electorales_20210608T1121_cadd76f.csv.gz", 25),
        "totales": head_lines(runoff / "progress_national/votacion-general-totales.csv", 30),
        "series": head_lines(data_dir / "peru-2026-first-round/"
                             "ikusij_first_round_national_timeseries.csv.gz", 39),
    }


GENERIC = (b"acta_id,status,area1_code,area1_name,area3_code,electors,cast,blank,null,"
           b"challenged,v_ana,v_beto\n"
           b"0001,counted,01,Norte,010101,300,200,5,5,0,120,70\n"
           b"0002,counted,01,Norte,010102,300,210,5,5,0,130,70\n"
           b"0003,pending,02,Sur,020101,250,,,,,,\n")
SIDECAR = json.dumps({"contest": {
    "id": "xx-fuzz", "name": "Fuzz", "kind": "runoff", "country": "XX", "date": "2024-01-01",
    "candidates": [{"code": "ana", "name": "Ana"}, {"code": "beto", "name": "Beto"}]},
    "as_of": "2024-01-02T00:00:00Z"}).encode()


@FUZZ
@given(st.lists(MUTATION, min_size=1, max_size=3), st.booleans())
def test_generic_csv(mutations: list[Any], gz: bool) -> None:
    from escrutinio.sources.tabular import sidecar_path_for

    case = Case()
    try:
        p = case.path("actas.csv.gz" if gz else "actas.csv")
        data = mutate(GENERIC, mutations)
        p.write_bytes(gzip.compress(data) if gz else data)
        sidecar_path_for(p).write_bytes(SIDECAR)
        check_ingest(case.store, p)
    finally:
        case.close()


@FUZZ
@given(st.lists(MUTATION, min_size=1, max_size=3))
def test_generic_sidecar(mutations: list[Any]) -> None:
    from escrutinio.sources.tabular import sidecar_path_for

    case = Case()
    try:
        p = case.path("actas.csv")
        p.write_bytes(GENERIC)
        sidecar_path_for(p).write_bytes(mutate(SIDECAR, mutations))
        check_ingest(case.store, p)
    finally:
        case.close()


@FUZZ
@given(st.lists(MUTATION, min_size=1, max_size=3))
def test_generic_json_rows(mutations: list[Any]) -> None:
    from escrutinio.sources.tabular import sidecar_path_for

    lines = GENERIC.decode().strip().split("\n")
    cols = lines[0].split(",")
    rows = [dict(zip(cols, (v or None for v in line.split(",")), strict=True))
            for line in lines[1:]]
    for r in rows:
        for k in ("electors", "cast", "blank", "null", "challenged", "v_ana", "v_beto"):
            r[k] = None if r[k] is None else int(r[k])
    case = Case()
    try:
        p = case.path("actas.json")
        p.write_bytes(mutate(json.dumps(rows).encode(), mutations))
        sidecar_path_for(p).write_bytes(SIDECAR)
        check_ingest(case.store, p)
    finally:
        case.close()


@pytest.mark.parametrize(("seed", "name", "as_of"), [
    ("ronderos", "actas_electorales_ronderos.pe.csv", "2021-06-15T12:00:00-05:00"),
    ("provisional", "hist_actas_electorales_20210608T1121_x.csv", None),
    ("series", "ikusij_first_round_national_timeseries.csv", None),
])
def test_onpe_files(seeds: dict[str, bytes], seed: str, name: str, as_of: str | None) -> None:
    @FUZZ
    @given(st.lists(MUTATION, min_size=1, max_size=3))
    def run(mutations: list[Any]) -> None:
        case = Case()
        try:
            p = case.path(name)
            p.write_bytes(mutate(seeds[seed], mutations))
            check_ingest(case.store, p, as_of=as_of)
        finally:
            case.close()

    run()
    # the seed itself is stored (the fuzzing starts from input that works; the series
    # keeps its first cut whole: 38 rows, candidates + blank + null)
    case = Case()
    try:
        p = case.path(name)
        p.write_bytes(seeds[seed])
        assert check_ingest(case.store, p, as_of=as_of) == "stored"
    finally:
        case.close()


def test_onpe_progress_tables(seeds: dict[str, bytes], data_dir: Path) -> None:
    src = data_dir / "peru-2021-runoff/progress_national"

    @FUZZ
    @given(st.lists(MUTATION, min_size=1, max_size=3))
    def run(mutations: list[Any]) -> None:
        case = Case()
        try:
            folder = case.path("progress")
            shutil.copytree(src, folder)
            target = folder / "votacion-general-totales.csv"
            target.write_bytes(mutate(target.read_bytes(), mutations))
            check_ingest(case.store, folder)
        finally:
            case.close()

    run()


def test_observer_copies(data_dir: Path) -> None:
    """Observers' copies (pvt): a refusal with exit 2, or parsed copies."""
    from escrutinio.defence.observers import parse_observer_copies
    from escrutinio.sources.tabular import read_sidecar, sidecar_path_for

    case0 = Case()
    seed_path = case0.path("actas.csv")
    seed_path.write_bytes(GENERIC)
    sidecar_path_for(seed_path).write_bytes(SIDECAR)
    contest = read_sidecar(sidecar_path_for(seed_path)).contest
    case0.close()
    copies = (b"acta_id,observer,observed_at,electors,cast,blank,null,challenged,v_ana,v_beto\n"
              b"0001,ana-1,2024-01-02T01:00:00Z,300,200,5,5,0,120,70\n"
              b"0002,ana-2,2024-01-02T01:05:00Z,300,210,5,5,0,130,70\n")

    @FUZZ
    @given(st.lists(MUTATION, min_size=1, max_size=3))
    def run(mutations: list[Any]) -> None:
        case = Case()
        try:
            p = case.path("copies.csv")
            p.write_bytes(mutate(copies, mutations))
            try:
                parse_observer_copies(p, contest)
            except EscrutinioError as exc:
                assert exc.exit_code == 2, f"{type(exc).__name__}: {exc}"
        finally:
            case.close()

    run()
