"""Stores of immutable, content-addressed snapshots.

``open_store(url_or_path)`` picks the backend: a ``postgresql://`` (or ``postgres://``)
URL opens a :class:`~escrutinio.store.postgres_store.PostgresStore`, anything else is the
path of a DuckDB file (:class:`~escrutinio.store.duckdb_store.DuckDBStore`).
"""

from __future__ import annotations

from pathlib import Path

from escrutinio.store.base import Store


def is_postgres_url(url_or_path: str | Path) -> bool:
    return isinstance(url_or_path, str) and url_or_path.startswith(
        ("postgresql://", "postgres://"))


def open_store(url_or_path: str | Path, *, read_only: bool = False) -> Store:
    """Open the store at ``url_or_path`` (PostgreSQL URL or DuckDB file path)."""
    if is_postgres_url(url_or_path):
        # imported here: psycopg is only needed by those who use PostgreSQL
        from escrutinio.store.postgres_store import PostgresStore

        return PostgresStore(str(url_or_path), read_only=read_only)
    from escrutinio.store.duckdb_store import DuckDBStore

    return DuckDBStore(url_or_path, read_only=read_only)


__all__ = ["Store", "is_postgres_url", "open_store"]
