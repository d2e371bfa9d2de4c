"""Shared fixtures. Keep this file small and stable: every test module relies on it.

* ``data_dir`` — the real election data (read-only): ``$ESCRUTINIO_DATA_DIR`` if set,
  else the sibling folder ``<repo>/../shared/data``. A missing folder fails loudly: the
  tests on real data are never skipped silently.
* ``tmp_store`` — a fresh DuckDB store in the test's temporary folder.
* ``any_store`` / ``any_store_opener`` — the same, once per backend (``duckdb``,
  ``postgres``): PostgreSQL from ``$ESCRUTINIO_TEST_PG`` or a throwaway server (see
  tests/pg_support.py); without one the postgres cases fail when ``$CI`` is set and are
  skipped otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from escrutinio.store.base import Store
from escrutinio.store.duckdb_store import DuckDBStore

REPO_ROOT = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("ESCRUTINIO_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = _data_dir()
    if not path.is_dir():
        pytest.fail(
            f"real data folder not found: {path}. Set ESCRUTINIO_DATA_DIR or place the "
            "shared data beside the repository (../shared/data).",
            pytrace=False,
        )
    return path


@pytest.fixture
def tmp_store(tmp_path: Path) -> Iterator[DuckDBStore]:
    store = DuckDBStore(tmp_path / "t.duckdb")
    try:
        yield store
    finally:
        store.close()


# -- both store backends (PostgreSQL plumbing in tests/pg_support.py) -------------------------
@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    from pg_support import PgServer

    server = PgServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["duckdb", "postgres"])
def any_store_opener(request: pytest.FixtureRequest,
                     tmp_path: Path) -> Iterator[Callable[..., Store]]:
    """``opener(read_only=False) -> Store``: opens (and reopens) one fresh store."""
    from escrutinio.store import open_store

    if request.param == "duckdb":
        yield lambda read_only=False: open_store(tmp_path / "t.duckdb", read_only=read_only)
        return
    from pg_support import schema_url

    with schema_url(request.getfixturevalue("pg_server")) as url:
        yield lambda read_only=False: open_store(url, read_only=read_only)


@pytest.fixture
def any_store(any_store_opener: Callable[..., Store]) -> Iterator[Store]:
    store = any_store_opener()
    try:
        yield store
    finally:
        store.close()
