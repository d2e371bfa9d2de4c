"""Shared by tests/test_api*.py and tests/test_browser*.py: one real store and one app
per test session (the analyses are cached inside the app, so every test file reuses
what another already computed).

The store is the ``peru-2021-runoff`` bundle (48 national ONPE cuts, the department /
province / district cuts, three provisional per-acta states and the final per-acta file),
ingested once through the service layer, exactly as ``escrutinio ingest`` does.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
#: the projection is the CLI's model with fewer simulations, to keep the tests fast
TEST_SIMS = 2000
FINAL_CASTILLO, FINAL_FUJIMORI = 8_835_653, 8_791_696

_state: dict[str, Any] = {}
_lock = threading.Lock()


def data_dir() -> Path:
    env = os.environ.get("ESCRUTINIO_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def runoff_db(tmp_root: Path) -> Path:
    """The ingested bundle (once per session)."""
    with _lock:
        if "db" not in _state:
            from escrutinio import service
            from escrutinio.sources.bundles import bundle_paths
            from escrutinio.store.duckdb_store import DuckDBStore

            if not data_dir().is_dir():
                pytest.fail(f"real data folder not found: {data_dir()}", pytrace=False)
            db = tmp_root / "runoff-2021.duckdb"
            parsed = [s for item, p in bundle_paths("peru-2021-runoff") for s in item.parse(p)]
            with DuckDBStore(db) as store:
                service.ingest(store, parsed)
            _state["db"] = db
        return _state["db"]


def live_app(tmp_root: Path) -> Any:
    """The dashboard over the bundle (normal mode), shared by the whole session."""
    db = runoff_db(tmp_root)
    with _lock:
        if "app" not in _state:
            from escrutinio.api.app import create_app

            _state["app"] = create_app(db, projection_sims=TEST_SIMS)
        return _state["app"]


def replay_app(tmp_root: Path) -> Any:
    """The dashboard in replay mode, pinned at a step the test moves by hand."""
    db = runoff_db(tmp_root)
    with _lock:
        if "replay" not in _state:
            from escrutinio.api.app import create_app

            _state["replay"] = create_app(db, replay=True, replay_at=0,
                                          projection_sims=TEST_SIMS)
        return _state["replay"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread; yield its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


#: Chromium flags for running as root in a container, with no network beyond loopback
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CHROMIUM = os.environ.get("ESCRUTINIO_CHROMIUM", "/usr/bin/chromium")
