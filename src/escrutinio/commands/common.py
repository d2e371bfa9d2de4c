"""Presenter helpers shared by every CLI command: consoles, language, JSON, errors, store,
and the validation of option values (every bad value: exit 2 and the valid ones listed).

Imports stay light (no polars, numpy or analyses): ``escrutinio --help`` loads this module.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from escrutinio.errors import BadOptionError, EscrutinioError

if TYPE_CHECKING:
    from rich.console import Console

    from escrutinio.store import Store


class LazyConsole:
    """A rich ``Console`` made (and rich imported, ~17 ms) on first use, so that a command
    that prints only JSON (``ingest --json``, ``status --json``) never loads rich. Every
    attribute is the console's; :attr:`console` is the console itself (for rich APIs that
    take one). Made as before: ``out`` 160 columns wide unless stdout is a terminal
    (decided at first use, no longer at import), ``err`` on stderr."""

    __slots__ = ("_console", "_stderr")

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = (Console(stderr=True) if self._stderr else
                             Console(width=None if sys.stdout.isatty() else 160))
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


out = LazyConsole()
err = LazyConsole(stderr=True)

V = TypeVar("V")


class Options:
    """Global options set by the main callback (``--db``, ``--lang``)."""

    db: str = "escrutinio.duckdb"
    lang: str = "es"


opts = Options()


def T(es: str, en: str) -> str:  # noqa: N802  (short on purpose: used in every label)
    """Pick the label in the user's language (Spanish first)."""
    return es if opts.lang == "es" else en


def emit_json(obj: Any) -> None:
    """Strict JSON on stdout (NaN and infinities become null)."""
    from escrutinio.provenance import to_jsonable

    sys.stdout.write(json.dumps(_strict(to_jsonable(obj)), ensure_ascii=False, indent=2,
                                allow_nan=False) + "\n")


def _strict(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_strict(v) for v in obj]
    return obj


def fail(exc: EscrutinioError, as_json: bool) -> NoReturn:
    """Report a user-facing error (bilingual) and exit with its code.

    An error about an option's value (its message starts with the option, as in
    ``"--pair: two codes..."``) is bad input: exit 2, like :class:`BadOptionError`.
    """
    if type(exc).exit_code == 1 and exc.message_en.startswith("--"):
        exc.exit_code = 2
    if as_json:
        emit_json(exc.to_dict())
    else:
        msg = exc.message_es if opts.lang == "es" else exc.message_en
        from rich.markup import escape

        err.print(f"[bold red]Error:[/] {escape(msg)}")
    raise typer.Exit(exc.exit_code)


def open_store(read_only: bool = False) -> Store:
    """The store named by ``--db``: a DuckDB file path or a ``postgresql://`` URL."""
    from escrutinio.store import is_postgres_url
    from escrutinio.store import open_store as open_url

    if is_postgres_url(opts.db):
        return open_url(opts.db, read_only=read_only)
    if read_only and not Path(opts.db).exists():
        raise EscrutinioError(
            f"no existe el almacén {opts.db}; ejecute 'escrutinio ingest' primero",
            f"store {opts.db} does not exist; run 'escrutinio ingest' first")
    return open_url(opts.db, read_only=read_only)


# --- option values --------------------------------------------------------------------------

def _listing(valid: Iterable[str], limit: int = 40) -> str:
    items = list(dict.fromkeys(valid))
    shown = ", ".join(items[:limit])
    return shown + (f", … (+{len(items) - limit})" if len(items) > limit else "")


def choice(value: str, valid: Iterable[str] | Mapping[str, V], option: str) -> Any:
    """``value`` if it is one of ``valid`` (case-insensitive), else a :class:`BadOptionError`
    (exit 2) that lists the valid values. With a mapping (aliases), the mapped value."""
    check_text(value, option)
    table: dict[str, Any] = (
        {str(k).lower(): v for k, v in valid.items()} if isinstance(valid, Mapping)
        else {str(k).lower(): k for k in valid})
    key = value.strip().lower()
    if key in table:
        return table[key]
    listing = _listing(str(k) for k in (valid.keys() if isinstance(valid, Mapping) else valid))
    raise BadOptionError(option, value, f"valores válidos: {listing}",
                         f"valid values: {listing}")


#: --level values: the generic names and their Spanish and English aliases (the option
#: parsers are here, not in cli.py, so the command modules never import cli.py)
LEVEL_ALIASES: dict[str, str] = {
    "national": "national", "nacional": "national",
    "area1": "area1", "department": "area1", "departamento": "area1",
    "area2": "area2", "province": "area2", "provincia": "area2",
    "area3": "area3", "district": "area3", "distrito": "area3",
}
KIND_VALUES = ("actas", "units")


def level_option(value: str, option: str = "--level",
                 names: dict[str, str] | None = None) -> Any:
    """A ``--level`` value as a :class:`~escrutinio.domain.Level` (exit 2 if unknown);
    ``names``: the country's own level names (:func:`escrutinio.service.level_names`)."""
    from escrutinio.domain import Level

    # the country's own names win over the generic aliases (Argentina's "distrito" is
    # its area1, not Peru's area3)
    return Level(choice(value, {**LEVEL_ALIASES, **(names or {})}, option))


def kind_option(value: str | None, option: str = "--kind") -> Any:
    """A ``--kind`` value as a :class:`~escrutinio.domain.SnapshotKind`, or None."""
    from escrutinio.domain import SnapshotKind

    return None if value is None else SnapshotKind(choice(value, KIND_VALUES, option))


def choices(value: str, valid: Iterable[str], option: str) -> list[str]:
    """A comma-separated list in which every item is one of ``valid``."""
    check_text(value, option)
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        listing = _listing(valid)
        raise BadOptionError(option, value, f"indique uno o más de: {listing}",
                             f"give one or more of: {listing}")
    valid_l = list(valid)
    return [choice(v, valid_l, option) for v in items]


def pair(value: str | None, codes: Sequence[str], option: str = "--pair") -> \
        tuple[str, str] | None:
    """Two distinct candidate codes ``a,b`` of the contest (``codes``), or None."""
    if value is None:
        return None
    check_text(value, option)
    listing = _listing(codes)
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(parts) or parts[0].lower() == parts[1].lower():
        raise BadOptionError(
            option, value,
            f"dos códigos distintos separados por coma, de: {listing}",
            f"two distinct codes separated by a comma, from: {listing}")
    a, b = (choice(p, list(codes), option) for p in parts)
    return a, b


def number(value: float, option: str, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False) -> float:
    """``value`` if it lies in the range, else exit 2 naming the range."""
    ok = (value == value
          and (lo is None or (value > lo if lo_open else value >= lo))
          and (hi is None or (value < hi if hi_open else value <= hi)))
    if ok:
        return value
    left = "-∞" if lo is None else f"{lo:g}"
    right = "∞" if hi is None else f"{hi:g}"
    opening = "(" if lo_open or lo is None else "["
    closing = ")" if hi_open or hi is None else "]"
    rng = f"{opening}{left}, {right}{closing}"
    raise BadOptionError(option, value, f"debe estar en {rng}", f"must lie in {rng}")


def check_text(value: str, option: str) -> str:
    """Refuse control characters (NUL, newlines, bidi overrides...) in an option value."""
    from escrutinio.sources.sanitize import control_char, describe_char

    at = control_char(value)
    if at is not None:
        ch = describe_char(value[at])
        raise BadOptionError(option, value,
                             f"contiene el carácter de control {ch} en la posición {at + 1}",
                             f"it holds the control character {ch} at position {at + 1}")
    return value


def timestamp(value: str, option: str) -> Any:
    """An ISO 8601 time (``2021-06-07T12:00:00-05:00``; without a zone: UTC) as an aware
    datetime, or exit 2 showing the expected form."""
    from escrutinio.sources.base import timestamp_or_none

    check_text(value, option)
    dt = timestamp_or_none(value)
    if dt is None:
        raise BadOptionError(option, value,
                             "se espera una fecha ISO 8601, p. ej. 2021-06-07T12:00:00-05:00",
                             "expected an ISO 8601 time, e.g. 2021-06-07T12:00:00-05:00")
    return dt


def input_path(value: str | Path, option: str) -> Path:
    """An existing file or folder given as input."""
    check_text(str(value), option)
    p = Path(value)
    if not p.exists():
        raise BadOptionError(option, str(value), "el archivo o la carpeta no existe",
                             "the file or folder does not exist")
    return p


def output_path(value: str | Path, option: str) -> Path:
    """A file the command will write: its folder must exist (or be creatable) and it must
    not be a folder."""
    check_text(str(value), option)
    p = Path(value)
    if p.is_dir():
        raise BadOptionError(option, str(value), "es una carpeta; indique un archivo",
                             "it is a folder; give a file name")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise BadOptionError(option, str(value),
                             f"no se puede crear: {parent} no es una carpeta",
                             f"it cannot be created: {parent} is not a folder")
    return p


def as_error(exc: BaseException) -> EscrutinioError:
    """An exception as a user-facing error (analyses raise ValueError on bad parameters:
    those are bad option values, exit 2)."""
    if isinstance(exc, EscrutinioError):
        return exc
    msg = str(exc) or type(exc).__name__
    error = EscrutinioError(msg, msg)
    error.exit_code = 2
    return error


#: parameters (python names) that name a file or folder the command reads
INPUT_PARAMS: frozenset[str] = frozenset({
    "copies", "copy_codes", "roll", "request", "urban_file", "manifest", "scope_file",
    "proof_file", "counts", "reports", "config", "data_dir", "replay"})
#: parameters that name a file or folder the command writes
OUTPUT_PARAMS: frozenset[str] = frozenset({
    "svg", "csv", "image", "generate", "manifest_out", "directory", "log_file", "folder"})
#: parameters that are URLs
URL_PARAMS: frozenset[str] = frozenset({"base_url", "site_url", "url", "mirror"})


def check_params(command: str, params: Mapping[str, Any]) -> None:
    """Checks every command gets before it runs, by parameter name: files it reads exist,
    files it writes can be created, URLs are http(s) URLs (exit 2 naming the option)."""
    for name, value in params.items():
        if value is None or isinstance(value, bool) or value == "":
            continue
        option = "--" + name.replace("_", "-")
        values = value if isinstance(value, list | tuple) else [value]
        reads = name in INPUT_PARAMS or (name == "status_file" and command == "watch-status")
        writes = name in OUTPUT_PARAMS or (name == "status_file" and command == "watch")
        for v in values:
            if not isinstance(v, str | Path):
                continue
            if reads:
                input_path(v, option)
            elif writes:
                output_path(v, option)
            elif name in URL_PARAMS:
                url(str(v), option)


def url(value: str, option: str) -> str:
    """An ``http://`` or ``https://`` URL with a host."""
    from urllib.parse import urlsplit

    check_text(value, option)
    try:
        parts = urlsplit(value.strip())
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in value
    except ValueError:
        ok = False
    if not ok:
        raise BadOptionError(option, value, "se espera una URL http:// o https://",
                             "expected an http:// or https:// URL")
    return value
