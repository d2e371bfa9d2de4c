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


# -- the fast run (`make test-fast`): analyses, sources and the store on DuckDB -------------
#: modules that need a browser, a server, PostgreSQL, the live follower or long end-to-end
#: runs: marked ``slow`` (still part of `make test`)
SLOW_MODULES = frozenset({
    "test_browser", "test_api", "test_api_schema", "test_api_uploads", "test_byoc",
    "test_server_accounts", "test_server_mode", "test_server_security",
    "test_server_submissions", "test_live_soak", "test_live_cold", "test_live_fake",
    "test_live_cli", "test_read_while_writing", "test_headlines", "test_countries",
    "test_projection_replay", "test_examples", "test_defence_cli", "test_forensics_cli",
    # end-to-end through the CLI and the API on the real stores
    "test_cli", "test_projection_cli", "test_projection_service", "test_audit_workflow",
    "test_audit_honest",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        callspec = getattr(item, "callspec", None)
        on_pg = "pg_server" in getattr(item, "fixturenames", ()) or (
            callspec is not None and "postgres" in callspec.params.values())
        if module in SLOW_MODULES or on_pg:
            item.add_marker(pytest.mark.slow)
