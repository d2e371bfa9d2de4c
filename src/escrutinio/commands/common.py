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
from escrutinio.store.duckdb_store import DuckDBStore

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


def open_store(read_only: bool = False) -> DuckDBStore:
    if read_only and not Path(opts.db).exists():
        raise EscrutinioError(
            f"no existe el almacén {opts.db}; ejecute 'escrutinio ingest' primero",
            f"store {opts.db} does not exist; run 'escrutinio ingest' first")
    return DuckDBStore(opts.db, read_only=read_only)
