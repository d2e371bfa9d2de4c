"""Presenter helpers shared by every CLI command: consoles, language, JSON, errors, store."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from escrutinio.errors import EscrutinioError
from escrutinio.provenance import to_jsonable
from escrutinio.store import Store, is_postgres_url
from escrutinio.store import open_store as open_url

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


class Options:
    """Global options set by the main callback (``--db``, ``--lang``)."""

    db: str = "escrutinio.duckdb"
    lang: str = "es"


opts = Options()


def T(es: str, en: str) -> str:  # noqa: N802  (short on purpose: used in every label)
    """Pick the label in the user's language (Spanish first)."""
    return es if opts.lang == "es" else en


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(obj), ensure_ascii=False, indent=2) + "\n")


def fail(exc: EscrutinioError, as_json: bool) -> None:
    """Report a user-facing error (bilingual) and exit with its code."""
    if as_json:
        emit_json(exc.to_dict())
    else:
        msg = exc.message_es if opts.lang == "es" else exc.message_en
        err.print(f"[bold red]Error:[/] {escape(msg)}")
    raise typer.Exit(exc.exit_code)


def open_store(read_only: bool = False) -> Store:
    """The store named by ``--db``: a DuckDB file path or a ``postgresql://`` URL."""
    if is_postgres_url(opts.db):
        return open_url(opts.db, read_only=read_only)
    if read_only and not Path(opts.db).exists():
        raise EscrutinioError(
            f"no existe el almacén {opts.db}; ejecute 'escrutinio ingest' primero",
            f"store {opts.db} does not exist; run 'escrutinio ingest' first")
    return open_url(opts.db, read_only=read_only)
