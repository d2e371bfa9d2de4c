"""The DuckDB store: immutable, content-addressed, atomic."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pytest

from escrutinio.errors import NotFoundError
from escrutinio.sources.onpe_files import parse_provisional, parse_ronderos
from escrutinio.store.duckdb_store import DuckDBStore

ACTAS = "peru-2021-runoff/actas"
EARLY = "hist_actas_electorales_20210608T1121_cadd76f.csv.gz"


@pytest.fixture(scope="module")
def final(data_dir: Path):
    return parse_ronderos(data_dir / ACTAS / "actas_electorales_ronderos.pe.csv.gz",
                          as_of="2021-06-17T00:00:00Z")


@pytest.fixture(scope="module")
def early(data_dir: Path):
    return parse_provisional(data_dir / ACTAS / EARLY)


def test_snapshot_id_is_sha256_of_source_bytes(final, data_dir: Path) -> None:
    import hashlib

    raw = (data_dir / ACTAS / "actas_electorales_ronderos.pe.csv.gz").read_bytes()
    assert final.snapshot_id == hashlib.sha256(raw).hexdigest()


def test_roundtrip_and_idempotent_ingest(tmp_store: DuckDBStore, final, early) -> None:
    first = tmp_store.put_snapshots([early, final])
    assert [o.created for o in first] == [True, True]
    again = tmp_store.put_snapshots([final])
    assert again[0].created is False and again[0].n_rows == 86_488
    assert len(tmp_store.list_snapshots()) == 2
    loaded = tmp_store.load_actas(final.snapshot_id)
    assert loaded.equals(final.frame.sort("acta_id"))
    assert tmp_store.load_actas(early.snapshot_id).equals(early.frame.sort("acta_id"))
    reports = tmp_store.load_row_reports(early.snapshot_id)
    assert reports.height == early.findings.height
    assert set(reports["severity"].unique()) == {"flag"}


def test_ingest_is_atomic(tmp_store: DuckDBStore, final, early) -> None:
    tmp_store.put_snapshot(early)
    broken = dataclasses.replace(final, part="broken",
                                 frame=final.frame.with_columns(pl.lit(None, pl.String)
                                                                .alias("status")))
    with pytest.raises(Exception):  # noqa: B017  (NOT NULL violation from the database)
        tmp_store.put_snapshots([final, broken])
    ids = [s.snapshot_id for s in tmp_store.list_snapshots()]
    assert ids == [early.snapshot_id]
    n = tmp_store.con.execute("SELECT count(*) FROM actas").fetchall()[0][0]
    assert n == early.frame.height


def test_snapshot_references(tmp_store: DuckDBStore, final, early) -> None:
    tmp_store.put_snapshots([final, early])
    assert tmp_store.snapshot("latest").snapshot_id == final.snapshot_id
    assert tmp_store.snapshot("first").snapshot_id == early.snapshot_id
    assert tmp_store.snapshot("latest-1").snapshot_id == early.snapshot_id
    assert tmp_store.snapshot(final.snapshot_id[:10]).snapshot_id == final.snapshot_id
    assert tmp_store.snapshot(early.label).snapshot_id == early.snapshot_id
    with pytest.raises(NotFoundError):
        tmp_store.snapshot("nope-not-a-snapshot")


def test_store_reopens_from_file(tmp_path: Path, final) -> None:
    path = tmp_path / "x.duckdb"
    with DuckDBStore(path) as s:
        s.put_snapshot(final)
    with DuckDBStore(path, read_only=True) as s:
        assert s.list_snapshots()[0].n_rows == 86_488
        assert s.contest(final.contest.id) == final.contest
        assert s.geography(final.contest.id).height == final.geography.height
