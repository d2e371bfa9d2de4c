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


def test_duckdb_file_is_written_in_row_groups_of_the_stores_size(tmp_path: Path,
                                                                  final) -> None:
    """The DuckDB file is attached with ROW_GROUP_SIZE (the 86,488 actas fill one group
    while the INSERT runs instead of waiting for the COMMIT): the rows read back are the
    ones written, a plain ``duckdb.connect`` reads the file, and every cursor of the store
    (its threads', ``con.cursor()``) works on the file, not on an empty database."""
    import threading

    import duckdb

    from escrutinio.store.duckdb_store import CATALOG, ROW_GROUP_SIZE, DuckDBStore

    path = tmp_path / "rg.duckdb"
    with DuckDBStore(path) as s:
        s.put_snapshot(final)
        assert s.con.cursor().execute("SELECT count(*) FROM actas").fetchone() == (86_488,)
        seen: list[object] = []
        worker = threading.Thread(target=lambda: seen.append(
            s.con.execute("SELECT count(*) FROM snapshots").fetchone()))
        worker.start()
        worker.join()
        assert seen == [(1,)]
        assert s.con.execute("SELECT current_database()").fetchone() == (CATALOG,)
        loaded = s.load_actas(s.list_snapshots()[0].snapshot_id)
    assert loaded.equals(final.frame.sort("acta_id"))
    con = duckdb.connect(str(path), read_only=True)
    try:
        groups = con.execute("SELECT row_group_id, max(count) FROM pragma_storage_info("
                             "'actas') WHERE column_name = 'acta_id' AND segment_type = "
                             "'VARCHAR' GROUP BY ALL ORDER BY 1").fetchall()
        assert con.execute("SELECT count(*) FROM actas").fetchone() == (86_488,)
    finally:
        con.close()
    assert groups[0][1] == ROW_GROUP_SIZE < 86_488
    assert sum(n for _g, n in groups) == 86_488
    with DuckDBStore(path, read_only=True) as s:  # read-only: attached the same way
        assert s.list_snapshots()[0].n_rows == 86_488


def test_duckdb_row_groups_leave_no_free_blocks(tmp_path: Path, final, early) -> None:
    """Several large snapshots in one transaction (a bundle): the row groups the INSERTs
    write while they run are the ones kept, no block of the file is left free (a row group
    size of 61,440 left some: a larger file for the same rows)."""
    import duckdb

    from escrutinio.store.duckdb_store import DuckDBStore

    path = tmp_path / "two.duckdb"
    with DuckDBStore(path) as s:
        s.put_snapshots([early, final])
    con = duckdb.connect(str(path), read_only=True)
    try:
        size = con.execute("PRAGMA database_size").fetchone()
        n = con.execute("SELECT count(*) FROM actas").fetchone()
    finally:
        con.close()
    assert size is not None and n == (early.frame.height + final.frame.height,)
    assert size[5] == 0, size  # free_blocks


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


# -- one versioned set of migrations for both databases (store/migration_repo.py) -----------
def test_migrations_are_recorded_and_idempotent(any_store_opener) -> None:
    from escrutinio.store import migration_repo as mr

    with any_store_opener() as s:
        backend = s.migrations.backend
        shipped = mr.migrations(backend)
        # one sequence for both: same versions and names, a variant only where they differ
        assert [(m.version, m.name) for m in shipped] == \
            [(m.version, m.name) for m in mr.migrations("duckdb" if backend == "postgres"
                                                         else "postgres")]
        assert [m.file for m in shipped][:3] == [f"0001_init.{backend}.sql",
                                                 "0002_observers.sql", "0003_audit.sql"]
        applied = s.migrations.applied()
        assert [(a.version, a.name, a.sha256) for a in applied] == \
            [(m.version, m.name, m.sha256) for m in shipped]
        assert s.schema_versions() == [m.version for m in shipped]
        assert s.migrations.migrate() == []  # nothing left to apply
        assert s.audits.available() and not s.audits.exists("a1")
    with any_store_opener() as s:  # reopening applies nothing twice
        n = s.con.execute("SELECT count(*) FROM schema_migrations").fetchall()[0][0]
        assert n == len(shipped)
        s.con.execute("UPDATE schema_migrations SET sha256 = 'edited' WHERE version = 1")
    with pytest.raises(mr.MigrationError, match="changed after it was applied"):
        any_store_opener()


def test_a_later_migration_file_is_applied_on_both(any_store_opener, monkeypatch,
                                                   tmp_path: Path) -> None:
    """How the live watcher's and the observer server's tables fold in: a numbered file
    beside the others, applied in order on a store migrated before it existed."""
    import shutil

    from escrutinio.store import migration_repo as mr

    with any_store_opener() as s:
        before = s.schema_versions()
    folder = tmp_path / "migrations"
    shutil.copytree(Path(str(mr.migrations_folder())), folder)
    n = len(before) + 1
    (folder / f"{n:04d}_crawl_frontier.sql").write_text(
        # the common subset the live tables need: BYTEA, DOUBLE PRECISION, TIMESTAMPTZ
        "CREATE TABLE IF NOT EXISTS t_frontier (url TEXT PRIMARY KEY, body BYTEA, "
        "elapsed_ms DOUBLE PRECISION, seen_at TIMESTAMPTZ);\n"
        "CREATE INDEX IF NOT EXISTS t_frontier_seen ON t_frontier (seen_at);\n")
    monkeypatch.setattr(mr, "migrations_folder", lambda: folder)
    with any_store_opener() as s:
        assert s.schema_versions() == [*before, n]
        assert s.migrations.applied()[-1].name == "crawl_frontier"
        s.con.execute("INSERT INTO t_frontier VALUES ('u', NULL, 1.5, NULL)")
    # two files with one number (two branches merged), a variant for one backend only, or
    # a gap: refused before anything runs
    (folder / f"{n:04d}_raw_log.sql").write_text("SELECT 1;\n")
    with pytest.raises(mr.MigrationError, match="same number"):
        mr.migrations("duckdb")
    (folder / f"{n:04d}_raw_log.sql").unlink()
    (folder / f"{n + 1:04d}_half.duckdb.sql").write_text("SELECT 1;\n")
    with pytest.raises(mr.MigrationError, match="one variant per backend"):
        mr.migrations("postgres")
    (folder / f"{n + 1:04d}_half.duckdb.sql").rename(folder / f"{n + 2:04d}_gap.sql")
    with pytest.raises(mr.MigrationError, match="without gaps"):
        mr.migrations("duckdb")


def test_store_from_before_migrations_is_baselined(tmp_path: Path, final, early) -> None:
    """A DuckDB file made by the code before versioned migrations (store/schema.sql: its
    tables, a ``schema_version`` row, no ``schema_migrations``; audit and ledger tables
    only once used) opens, is baselined, keeps its snapshots and takes new ones."""
    import duckdb

    from escrutinio.store.duckdb_store import DuckDBStore

    # small cuts of the real snapshots: the point is the schema, not the volume
    final = dataclasses.replace(final, frame=final.frame.head(400))
    early = dataclasses.replace(early, frame=early.frame.head(300))
    path = tmp_path / "old.duckdb"
    with DuckDBStore(path) as s:
        s.put_snapshot(final)
    con = duckdb.connect(str(path))  # turn it into what the old code left behind
    for table in ("schema_migrations", "live_crawl", "live_events", "live_responses",
                  "live_bodies", "submissions", "photos", "sessions", "tokens",
                  "accounts", "ledger_entries", "ledger_leaves", "audit_external_manifest",
                  "audit_measures", "audit_counts", "audit_draws", "audit_rounds",
                  "audit_manifest"):
        con.execute(f"DROP TABLE {table}")
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (1, now())")
    con.close()
    with DuckDBStore(path, read_only=True) as s:  # a reader migrates nothing
        assert not s.baselined and s.schema_versions() == []
        assert not s.audits.available() and s.audits.audit_ids() == []
        assert s.list_snapshots()[0].n_rows == 400
    with DuckDBStore(path) as s:
        assert s.baselined
        from escrutinio.store import migration_repo as mr

        shipped = [m.version for m in mr.migrations("duckdb")]
        assert s.schema_versions() == shipped
        assert s.audits.available()
        assert s.load_actas(final.snapshot_id).equals(final.frame.sort("acta_id"))
        s.put_snapshot(early)
        assert [i.snapshot_id for i in s.list_snapshots()] == [early.snapshot_id,
                                                              final.snapshot_id]
    with DuckDBStore(path) as s:
        assert not s.baselined and s.schema_versions() == shipped


# -- the audit repository (store/audit_repo.py) --------------------------------------------
def test_audit_repository_roundtrip(any_store: Store, final) -> None:
    from datetime import UTC, datetime

    from escrutinio.store.audit_repo import DRAW_SCHEMA, StoredAudit, StoredCount

    repo = any_store.audits
    head = final.frame.head(5)
    manifest = pl.DataFrame({"ordinal": list(range(1, 6)), "acta_id": head["acta_id"],
                             "category": ["counted"] * 5, "ballots": head["cast"],
                             "weight": ["12345678901234567890123"] * 5})  # exact, > 2^64
    created = datetime(2021, 6, 20, 12, 30, 1, 250000, tzinfo=UTC)
    rec = StoredAudit("a1", final.contest.id, final.snapshot_id, created, "macro", "ppeb",
                      "1/20", "41592653589793238462", "{}", "{}", "ab" * 32, 5, "17", "1",
                      '{"winners": ["castillo"], "nota": "ñ"}', "9.9")
    ext = pl.DataFrame({"acta_id": ["x2", "x1"], "ballots": [3, 4]})
    repo.create(rec, manifest, ext)
    assert repo.exists("a1") and repo.get("a1") == rec and repo.get("nope") is None
    assert repo.audit_ids() == ["a1"]
    assert repo.external_manifest("a1").rows() == [("x1", 4), ("x2", 3)]
    assert repo.last_round("a1") == (0, 0) and repo.draws("a1").height == 0
    draws = pl.DataFrame({"round": [1, 1, 1], "draw": [1, 2, 3],
                          "acta_id": head["acta_id"][:3], "ordinal": [1, 2, 3],
                          "detail": ["u1", "u2", "u3"]}, schema=DRAW_SCHEMA)
    repo.add_round("a1", round=1, size_rule="explicit", draws=draws, created_at=created)
    assert repo.draws("a1").equals(draws)
    assert repo.last_round("a1") == (1, 3)
    assert [(r.round, r.first_draw, r.last_draw, r.size_rule) for r in repo.rounds("a1")] \
        == [(1, 1, 3, "explicit")]
    a, b = head["acta_id"][0], head["acta_id"][1]
    repo.add_counts("a1", [(StoredCount(a, (1, 2), 3, 4, 0), 2), (StoredCount(b, (5, 6), 0, 0, 1),
                                                                   3)],
                    source="c.csv", source_sha256="cd" * 32, recorded_at=created)
    repo.add_counts("a1", [(StoredCount(a, (2, 1), 3, 4, 0), None)], source="c2.csv",
                    source_sha256="ef" * 32, recorded_at=created)  # a replaced count
    assert repo.latest_counts("a1") == sorted(
        [StoredCount(a, (2, 1), 3, 4, 0), StoredCount(b, (5, 6), 0, 0, 1)],
        key=lambda c: c.acta_id)
    assert repo.latest_summary("a1") is None and repo.n_measures("a1") == 0
    for risk, summary in ((0.5, '{"k": 1}'), (0.01, '{"k": 2}')):
        repo.add_measure("a1", round=1, measured_at=created, n_draws=3, status="continue",
                         risk=risk, summary=summary)
    assert repo.latest_summary("a1") == '{"k": 2}' and repo.n_measures("a1") == 2
    # one transaction per step: a failing step leaves nothing behind
    with pytest.raises(Exception):  # noqa: B017 - the backend's own duplicate-key error
        repo.create(rec, manifest, None)
    assert repo.audit_ids() == ["a1"]
    n = any_store.con.execute("SELECT count(*) FROM audit_manifest").fetchall()[0][0]
    assert n == 5
