"""Shared fixtures. Keep this file small and stable: every test module relies on it.

* ``data_dir`` — the real election data (read-only): ``$ESCRUTINIO_DATA_DIR`` if set,
  else the sibling folder ``<repo>/../shared/data``. A missing folder fails loudly: the
  tests on real data are never skipped silently.
* ``tmp_store`` — a fresh DuckDB store in the test's temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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
