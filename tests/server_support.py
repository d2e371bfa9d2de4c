"""Shared plumbing of the observer-server tests (tests/test_server_*.py).

``server_env(kind, ...)`` builds, on DuckDB or PostgreSQL, a store holding 1,001 real actas
of the 2021 runoff (the final per-acta file, one in 29), the app over it, and four accounts
with their tokens: ``root`` (admin), ``coord`` (coordinator of the department code prefix
``01``), ``ana`` (observer of the same area) and ``ben`` (observer of one acta outside it).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from escrutinio import service
from escrutinio.server.auth import Scope
from escrutinio.server.repo import Repo
from escrutinio.sources.base import ParsedSnapshot
from escrutinio.store import open_store
from escrutinio.store.base import Store

with warnings.catch_warnings():  # starlette's note about httpx vs httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

FINAL = "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz"
_SNAP: dict[str, ParsedSnapshot] = {}


def small_snapshot(data_dir: Path) -> ParsedSnapshot:
    """1,001 real actas (every 29th of the final file) as their own snapshot."""
    if "small" not in _SNAP:
        from escrutinio.sources.onpe_files import parse_ronderos

        final = parse_ronderos(data_dir / FINAL, as_of="2021-06-17T00:00:00Z")
        frame = final.frame.sort("acta_id").gather_every(29).head(1001)
        _SNAP["small"] = dataclasses.replace(
            final, part="server-test", label="server-test", frame=frame,
            rejected=final.rejected.head(0), findings=final.findings.head(0))
    return _SNAP["small"]


@contextmanager
def store_url(kind: str, tmp: Path, pg_server: Any) -> Iterator[str]:
    """A fresh store: a DuckDB path, or a PostgreSQL URL on a schema of its own."""
    if kind == "duckdb":
        yield str(tmp / "server.duckdb")
        return
    from pg_support import schema_url

    with schema_url(pg_server) as url:
        yield url


@dataclass
class Env:
    kind: str
    url: str
    store: Store
    app: Any
    client: TestClient
    repo: Repo
    snapshot: ParsedSnapshot
    tokens: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, Any] = field(default_factory=dict)

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    @property
    def frame(self) -> pl.DataFrame:
        return self.snapshot.frame

    def acta(self, *, inside: bool = True, i: int = 0) -> dict[str, Any]:
        """The i-th official acta inside (area code prefix 01) or outside the test scope."""
        f = self.frame.filter(pl.col("area1_code").str.starts_with("01") == inside)
        return f.row(i % f.height, named=True)


def copy_of(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """An observer's copy equal to an official acta, with ``changes``."""
    rec = {"acta_id": row["acta_id"], "observed_at": "2021-06-06T19:40:00-05:00",
           "cast": row["cast"], "blank": row["blank"], "null": row["null"],
           "v_castillo": row["v_castillo"], "v_fujimori": row["v_fujimori"]}
    rec.update(changes)
    return {k: v for k, v in rec.items() if v is not None or k in changes}


@contextmanager
def server_env(kind: str, tmp: Path, pg_server: Any, data_dir: Path, *,
               ingest: bool = True) -> Iterator[Env]:
    from escrutinio.api.app import create_app

    snap = small_snapshot(data_dir)
    with store_url(kind, tmp, pg_server) as url:
        store = open_store(url)
        try:
            if ingest:
                service.ingest(store, [snap])
            app = create_app(store=store, warm=False)
            repo: Repo = app.state.observers.repo
            assert repo is not None, app.state.observers.disabled
            env = Env(kind, url, store, app, TestClient(app), repo, snap)
            outside = snap.frame.filter(~pl.col("area1_code").str.starts_with("01"))
            for name, role, scope in (
                    ("root", "admin", Scope()),
                    ("coord", "coordinator", Scope(areas=("01",))),
                    ("ana", "observer", Scope(areas=("01",))),
                    ("ben", "observer", Scope(actas=(outside["acta_id"][0],)))):
                acc = repo.create_account(name, role, scope)
                env.accounts[name] = acc
                env.tokens[name], _ = repo.issue_token(acc.account_id)
            with env.client:
                yield env
        finally:
            repo_obj = getattr(getattr(locals().get("app"), "state", None), "observers", None)
            if repo_obj is not None and repo_obj.repo is not None:
                repo_obj.repo.close()
            store.close()
