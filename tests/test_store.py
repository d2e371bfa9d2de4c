"""The stores (DuckDB and PostgreSQL): immutable, content-addressed, atomic.

Every test that takes ``any_store``/``any_store_opener`` runs once per backend.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pytest

from escrutinio.errors import NotFoundError
from escrutinio.sources.onpe_files import parse_provisional, parse_ronderos
from escrutinio.store.base import Store

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


def test_roundtrip_and_idempotent_ingest(any_store: Store, final, early) -> None:
    first = any_store.put_snapshots([early, final])
    assert [o.created for o in first] == [True, True]
    again = any_store.put_snapshots([final])
    assert again[0].created is False and again[0].n_rows == 86_488
    assert len(any_store.list_snapshots()) == 2
    loaded = any_store.load_actas(final.snapshot_id)
    assert loaded.equals(final.frame.sort("acta_id"))
    assert any_store.load_actas(early.snapshot_id).equals(early.frame.sort("acta_id"))
    reports = any_store.load_row_reports(early.snapshot_id)
    assert reports.height == early.findings.height
    assert set(reports["severity"].unique()) == {"flag"}
    md = any_store.snapshot_metadata(final.contest.id)
    assert list(md) == [early.snapshot_id, final.snapshot_id]  # as_of order
    assert md[final.snapshot_id] == dict(final.metadata)
    assert any_store.snapshot_metadata("no-such-contest") == {}


def test_ingest_is_atomic(any_store: Store, final, early) -> None:
    any_store.put_snapshot(early)
    broken = dataclasses.replace(final, part="broken",
                                 frame=final.frame.with_columns(pl.lit(None, pl.String)
                                                                .alias("status")))
    with pytest.raises(Exception):  # noqa: B017  (NOT NULL violation from the database)
        any_store.put_snapshots([final, broken])
    ids = [s.snapshot_id for s in any_store.list_snapshots()]
    assert ids == [early.snapshot_id]
    n = any_store.con.execute("SELECT count(*) FROM actas").fetchall()[0][0]
    assert n == early.frame.height


def test_snapshot_references(any_store: Store, final, early) -> None:
    any_store.put_snapshots([final, early])
    assert any_store.snapshot("latest").snapshot_id == final.snapshot_id
    assert any_store.snapshot("first").snapshot_id == early.snapshot_id
    assert any_store.snapshot("latest-1").snapshot_id == early.snapshot_id
    assert any_store.snapshot(final.snapshot_id[:10]).snapshot_id == final.snapshot_id
    assert any_store.snapshot(early.label).snapshot_id == early.snapshot_id
    with pytest.raises(NotFoundError):
        any_store.snapshot("nope-not-a-snapshot")


def test_store_reopens(any_store_opener, final) -> None:
    with any_store_opener() as s:
        s.put_snapshot(final)
    with any_store_opener(read_only=True) as s:
        assert s.list_snapshots()[0].n_rows == 86_488
        assert s.contest(final.contest.id) == final.contest
        assert s.geography(final.contest.id).height == final.geography.height


# -- parity details that a CSV/COPY path or a locale could get wrong ----------------------
def _tricky(final) -> tuple:
    """A small acta snapshot with awkward strings and NULLs, and a unit snapshot."""
    from escrutinio.domain import SnapshotKind
    from escrutinio.sources.base import REJECTED_SCHEMA, conform

    contest = final.contest
    cands = contest.candidate_columns
    actas = conform(pl.DataFrame({
        "acta_id": ["b", "B", "a", "é", "a0", "_"],   # bytewise order: B _ a a0 b é
        "area1_code": ["", None, "x,y", 'say "hi"', "back\\slash", "\\N"],
        "polling_place": ["NULL", "", None, "ñandú; ,", "tab\\t", "{1,2}"],
        # free text (not an id or a name): line breaks and tabs are allowed and must survive
        "observation": ["line\nbreak", "\t", None, "a\r\nb", "", "x"],
        "status": ["counted"] * 6,
        "abroad": [True, False, None, True, False, None],
        "electors": [300, None, 0, 1, 2, 3],
        cands[0]: [1, None, 3, 4, 5, 6],
        cands[1]: [None, 2, 0, 999_999_999, -1, 7],  # the largest count allowed (10^9)
    }), contest, SnapshotKind.ACTAS)
    units = conform(pl.DataFrame({
        "level": ["national", "area1", "area1"], "unit_code": ["", "15", "01"],
        "abroad": [None, False, False], "actas_total": [10, 4, 6],
        cands[0]: [5, None, 2], cands[1]: [7, 3, 4],
    }), contest, SnapshotKind.UNITS)
    rejected = pl.DataFrame({"line": [3, None, 3], "acta_id": ["z", None, ""],
                             "field": ["f", None, "g"], "rule": ["r1", "r2", "r3"],
                             "message_es": ["m, \"es\"", "x", "y"], "message_en": ["m", "x", "y"],
                             "raw": ["a;b\nc", None, ""]}, schema=REJECTED_SCHEMA)
    a = dataclasses.replace(final, part="tricky-actas", label="tricky", frame=actas,
                            rejected=rejected, findings=rejected.head(0), geography=None)
    u = dataclasses.replace(final, part="tricky-units", label="tricky-u", kind=SnapshotKind.UNITS,
                            level="area1", frame=units, rejected=rejected.head(0),
                            findings=rejected.head(0), geography=None)
    return a, u


def test_awkward_values_roundtrip_identically(any_store: Store, final) -> None:
    a, u = _tricky(final)
    any_store.put_snapshots([a, u])
    got = any_store.load_actas(a.snapshot_id)
    assert got["acta_id"].to_list() == ["B", "_", "a", "a0", "b", "é"]
    assert got.equals(a.frame.sort("acta_id"))
    assert got.schema == a.frame.schema
    assert any_store.load_units(u.snapshot_id).equals(u.frame.sort("level", "unit_code"))
    reports = any_store.load_row_reports(a.snapshot_id)
    assert reports["line"].to_list() == [3, 3, None]       # by line, NULL last, stable
    assert reports["rule"].to_list() == ["r1", "r3", "r2"]
    assert reports["raw"].to_list() == ["a;b\nc", "", None]
    assert reports["acta_id"].to_list() == ["z", "", None]
    info = any_store.snapshot("tricky-u")
    assert (info.kind.value, info.level, info.n_rows) == ("units", "area1", 3)
    assert info.as_of == a.as_of and info.as_of.tzinfo is not None


def test_contest_conflict_and_geography_once(any_store: Store, final, early) -> None:
    from escrutinio.domain import Contest

    any_store.put_snapshots([final, early])
    geo = any_store.geography(final.contest.id)
    assert geo.height == final.geography.height  # the second snapshot adds no duplicates
    assert geo.equals(final.geography.select(geo.columns).sort("level", "code"))
    d = final.contest.to_dict()
    d["candidates"] = list(reversed(d["candidates"]))  # type: ignore[call-overload]
    swapped = dataclasses.replace(final, contest=Contest.from_dict(d), part="swapped",
                                  frame=final.frame.select(
                                      *final.frame.columns[:-2],
                                      *reversed(final.frame.columns[-2:])))
    with pytest.raises(ValueError, match="different definition"):
        any_store.put_snapshots([swapped])
    assert len(any_store.list_snapshots()) == 2
    assert any_store.contests() == [final.contest]
    with pytest.raises(NotFoundError):
        any_store.load_actas("f" * 64)


def test_open_store_dispatch(tmp_path: Path) -> None:
    from escrutinio.store import is_postgres_url, open_store

    assert is_postgres_url("postgresql://u@h/db") and is_postgres_url("postgres://h/db")
    assert not is_postgres_url(str(tmp_path / "postgresql.duckdb"))
    with open_store(tmp_path / "a.duckdb") as s:
        assert type(s).__name__ == "DuckDBStore"


@pytest.mark.parametrize("any_store_opener", ["postgres"], indirect=True)
def test_postgres_migrations_are_recorded_and_idempotent(any_store_opener) -> None:
    from escrutinio.store import postgres_store as pgs

    with any_store_opener() as s:
        assert s.schema_versions() == [m.version for m in pgs.migrations()]
        assert pgs.migrate(s.con) == []  # nothing left to apply
    with any_store_opener() as s:  # reopening applies nothing twice
        n = s.con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
        assert n == len(pgs.migrations())
        s.con.execute("UPDATE schema_migrations SET sha256 = 'edited' WHERE version = 1")
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        any_store_opener()
