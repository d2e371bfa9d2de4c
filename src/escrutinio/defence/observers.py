"""Observers' copies of actas (*copias de personeros*): the documented format and its parser.

One row per copy of an acta that an observer (a party's *personero*, an NGO volunteer)
photographed or transcribed at the mesa. The same format serves the quick count: an
observer at a sampled mesa reports its acta in exactly these columns.

Columns (CSV with a header — comma, semicolon or tab separated, UTF-8 with or without a
byte order mark, as Excel exports it; Latin-1 is read with a warning —, gzipped CSV,
Parquet, or a JSON file holding a list of records or ``{"copies": [...]}``; JSON records
for an API, see ``observer_copy.schema.json`` next to this module and docs/defence.md):

=================  ========  ==============================================================
column             required  meaning
=================  ========  ==============================================================
``acta_id``        yes       the acta / mesa number, as the authority writes it (Peru: the
                             6-digit mesa; ``1`` and ``000001`` match the same acta)
``observer_id``    yes       who sent the copy (any stable pseudonymous id)
``observed_at``    no        when the copy was taken, ISO 8601 (``2021-06-06T19:40:00-05:00``;
                             without a zone the parser's ``assume_tz`` applies, UTC by
                             default); empty = unknown
``cast``           yes       votos emitidos
``blank``          yes       votos en blanco
``null``           yes       votos nulos
``v_<code>``       yes       one column per candidate of the contest (``v_castillo``...)
``challenged``     no        votos impugnados (empty = not reported, not compared)
``electors``       no        electores hábiles printed on the acta
``copy_code``      no        the acta's copy code (Peru: *código de copia*, e.g. ``91L``);
                             when given it must match the official one
``copy_id``        no        unique id of this submission (default: ``<file hash>:<line>``)
``organization``   no        party or NGO
``image_sha256``   no        SHA-256 (64 hex digits) of the photo of the acta
``notes``          no        free text
=================  ========  ==============================================================

Strict conventions (as :mod:`escrutinio.sources.base`): a problem with the file — a
missing or unknown column, text in a number field, an unreadable time, a repeated
``copy_id`` — raises :class:`~escrutinio.errors.IngestError` naming file, line (Parquet and
JSON: the data row / record number), field and rule, and nothing is read. A problem with
one row — no ``acta_id``, no observer, an empty required count, a negative count, a
malformed image hash — rejects that row, which is kept with its line and rule in
:attr:`ObserverCopies.rejected` and reported, never dropped in silence.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final, cast
from zoneinfo import ZoneInfo

import polars as pl

from escrutinio.domain import Contest
from escrutinio.errors import IngestError, Location
from escrutinio.sources.base import (
    REJECTED_SCHEMA,
    SourceBytes,
    cast_ints,
    header_fields,
    read_csv_strict,
    read_source,
    sha256_bytes,
)

FORMAT: Final = "escrutinio-observer-copies"
FORMAT_VERSION: Final = 1
SCHEMA_FILE: Final = "observer_copy.schema.json"

REQUIRED_TEXT: Final = ("acta_id", "observer_id")
REQUIRED_COUNTS: Final = ("cast", "blank", "null")
OPTIONAL_TEXT: Final = ("observed_at", "copy_id", "copy_code", "organization", "image_sha256",
                        "notes")
#: separators a copies CSV may use (Excel in decimal-comma locales writes semicolons)
SEPARATORS: Final = (",", ";", "\t")
OPTIONAL_COUNTS: Final = ("electors", "challenged")
TEXT_COLUMNS: Final = frozenset({*REQUIRED_TEXT, *OPTIONAL_TEXT})
#: counts in the order every canonical copy frame carries them (candidates follow)
COUNT_COLUMNS: Final = ("electors", "cast", "blank", "null", "challenged")


def copy_columns(contest: Contest) -> dict[str, pl.DataType]:
    """Columns and dtypes of a canonical copy frame for ``contest``."""
    return {
        "copy_id": pl.String(), "acta_id": pl.String(), "copy_code": pl.String(),
        "observer_id": pl.String(), "organization": pl.String(),
        "observed_at": pl.Datetime("us", "UTC"), "image_sha256": pl.String(),
        "notes": pl.String(), "line": pl.Int64(),
        **{c: pl.Int64() for c in COUNT_COLUMNS},
        **{c: pl.Int64() for c in contest.candidate_columns},
    }


@dataclass(frozen=True, slots=True)
class RowRule:
    name: str
    field: str
    message_es: str
    message_en: str


ROW_RULES: Final = {
    r.name: r for r in [
        RowRule("missing_acta_id", "acta_id", "copia sin número de acta / mesa",
                "copy without an acta / mesa number"),
        RowRule("missing_observer", "observer_id", "copia sin identificador del observador",
                "copy without an observer id"),
        RowRule("missing_count", "*", "falta una cifra obligatoria de la copia",
                "a required figure of the copy is empty"),
        RowRule("negative_count", "*", "cifra negativa en la copia", "negative figure in the copy"),
        RowRule("bad_image_hash", "image_sha256",
                "image_sha256 debe tener 64 dígitos hexadecimales",
                "image_sha256 must be 64 hexadecimal digits"),
    ]
}


@dataclass(frozen=True, slots=True)
class ObserverCopies:
    """Parsed copies: the canonical frame, the rejected rows and where they came from."""

    contest: Contest
    frame: pl.DataFrame  # copy_columns(contest)
    rejected: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECTED_SCHEMA))
    source_uri: str = ""
    source_sha256: str = ""  # SHA-256 of the bytes read (provenance)
    fmt: str = "csv"  # csv | parquet | json
    #: what the reader had to assume (e.g. a Latin-1 file), in Spanish and English
    warnings: tuple[tuple[str, str], ...] = ()

    @property
    def n_copies(self) -> int:
        return self.frame.height

    @property
    def n_rejected(self) -> int:
        return self.rejected.height


class RecordLocation(Location):
    """A place in a Parquet file or a list of JSON records: ``line`` is the 1-based row."""

    __slots__ = ()

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(f"fila/row {self.line}")
        if self.field is not None:
            parts.append(f"campo/field '{self.field}'")
        return ", ".join(parts)


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one observer copy, for an HTTP API."""
    text = resources.files("escrutinio.defence").joinpath(SCHEMA_FILE).read_text("utf-8")
    out: dict[str, Any] = json.loads(text)
    return out


# --- header and typing -------------------------------------------------------------------

def _check_header(columns: Sequence[str], contest: Contest, loc: Location) -> None:
    required = [*REQUIRED_TEXT, *REQUIRED_COUNTS, *contest.candidate_columns]
    missing = [c for c in required if c not in columns]
    if missing:
        cands = [c for c in missing if c.startswith("v_")]
        rule = "missing_candidate_column" if cands and len(cands) == len(missing) else \
            "missing_columns"
        raise IngestError(
            Location(loc.file, loc.line, ", ".join(missing)), rule,
            f"faltan columnas obligatorias: {', '.join(missing)}",
            f"required columns are missing: {', '.join(missing)}",
        )
    dupes = sorted({c for c in columns if list(columns).count(c) > 1})
    if dupes:
        raise IngestError(Location(loc.file, loc.line, ", ".join(dupes)), "duplicate_columns",
                          f"columnas repetidas: {', '.join(dupes)}",
                          f"duplicated columns: {', '.join(dupes)}")
    known = set(required) | set(OPTIONAL_TEXT) | set(OPTIONAL_COUNTS)
    for c in columns:
        if c in known or c == "__line":
            continue
        if c.startswith("v_"):
            raise IngestError(
                Location(loc.file, loc.line, c), "unknown_candidate_column",
                f"la columna {c!r} no corresponde a ningún candidato de {contest.id}",
                f"column {c!r} matches no candidate of {contest.id}",
            )
        raise IngestError(Location(loc.file, loc.line, c), "unexpected_columns",
                          f"columna no reconocida: {c}", f"unrecognised column: {c}")


def _parse_times(df: pl.DataFrame, file: str, loc_type: type[Location],
                 assume_tz: str) -> pl.DataFrame:
    """ISO 8601 text -> UTC datetimes. Each distinct text is parsed once (there are far
    fewer distinct times than rows); an unreadable one names its line."""
    text = df["observed_at"].cast(pl.String).str.strip_chars()
    uniq = text.drop_nulls().unique().to_list()
    zone = ZoneInfo(assume_tz)
    parsed: dict[str, datetime | None] = {}
    for v in uniq:
        try:
            dt = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            parsed[v] = None
            continue
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=zone)
        parsed[v] = dt.astimezone(UTC)
    bad = [v for v, dt in parsed.items() if dt is None]
    if bad:
        mask = text.is_in(bad)
        first = df.filter(mask)
        raise IngestError(
            loc_type(file, int(first["__line"][0]), "observed_at"), "bad_timestamp",
            f"hora ilegible {first['observed_at'][0]!r}: use ISO 8601, p. ej. "
            f"2021-06-06T19:40:00-05:00 ({first.height} filas con este problema)",
            f"unreadable time {first['observed_at'][0]!r}: use ISO 8601, e.g. "
            f"2021-06-06T19:40:00-05:00 ({first.height} rows with this problem)",
        )
    keys = list(parsed)
    values = pl.Series([parsed[k] for k in keys], dtype=pl.Datetime("us", "UTC"))
    mapped = text.replace_strict(pl.Series(keys, dtype=pl.String), values, default=None,
                                 return_dtype=pl.Datetime("us", "UTC"))
    return df.with_columns(mapped.alias("observed_at"))


def _ints_typed(df: pl.DataFrame, cols: Iterable[str], file: str,
                loc_type: type[Location]) -> pl.DataFrame:
    """Integer columns from typed sources (Parquet/JSON): ints pass, integral floats pass,
    strings go through cast_ints; anything else names its row."""
    for c in cols:
        if c not in df.columns:
            continue
        dt = df.schema[c]
        if dt == pl.Null or dt.is_integer():
            df = df.with_columns(pl.col(c).cast(pl.Int64))
        elif dt.is_float():
            x = pl.col(c)
            bad = df.filter(x.is_not_null() & (~x.is_finite() | (x != x.round(0))))
            if bad.height:
                raise IngestError(
                    loc_type(file, int(bad["__line"][0]), c), "not_an_integer",
                    f"se esperaba un número entero y se encontró {bad[c][0]!r} "
                    f"({bad.height} filas con este problema)",
                    f"expected an integer, found {bad[c][0]!r} ({bad.height} rows with this "
                    "problem)")
            df = df.with_columns(x.cast(pl.Int64))
        else:
            try:
                df = cast_ints(df.with_columns(pl.col(c).cast(pl.String)), [c], file)
            except IngestError as exc:
                raise IngestError(loc_type(file, exc.location.line, c), exc.rule,
                                  exc.detail_es, exc.detail_en) from None
    return df


# --- row rules ---------------------------------------------------------------------------

def _reject_rows(df: pl.DataFrame, contest: Contest) -> tuple[pl.DataFrame, pl.DataFrame]:
    counts_required = [*REQUIRED_COUNTS, *contest.candidate_columns]
    counts_all = [*COUNT_COLUMNS, *contest.candidate_columns]
    checks: list[tuple[pl.Expr, str, str | None]] = [
        (pl.col("acta_id").is_null() | (pl.col("acta_id") == ""), "missing_acta_id", None),
        (pl.col("observer_id").is_null() | (pl.col("observer_id") == ""), "missing_observer",
         None),
    ]
    checks += [(pl.col(c).is_null(), "missing_count", c) for c in counts_required]
    checks += [(pl.col(c).is_not_null() & (pl.col(c) < 0), "negative_count", c)
               for c in counts_all]
    checks.append((pl.col("image_sha256").is_not_null()
                   & ~pl.col("image_sha256").str.contains(r"^[0-9a-f]{64}$"),
                   "bad_image_hash", None))
    raw_cols = [c for c in df.columns if not c.startswith("__")]
    reports = []
    for mask, rule_name, fld in checks:
        hit = df.filter(mask)
        if hit.height == 0:
            continue
        rule = ROW_RULES[rule_name]
        reports.append(hit.select(
            pl.col("__line").cast(pl.Int64).alias("line"),
            pl.col("acta_id"),
            pl.lit(fld or rule.field).alias("field"),
            pl.lit(rule.name).alias("rule"),
            pl.lit(rule.message_es).alias("message_es"),
            pl.lit(rule.message_en).alias("message_en"),
            pl.struct(raw_cols).struct.json_encode().alias("raw"),
        ))
    if not reports:
        return df, pl.DataFrame(schema=REJECTED_SCHEMA)
    rejected = pl.concat(reports).sort("line", "rule")
    bad_lines = rejected["line"].unique().implode()
    return df.filter(~pl.col("__line").is_in(bad_lines)), rejected


def _finish(df: pl.DataFrame, contest: Contest, file: str, sha: str, fmt: str,
            loc_type: type[Location], assume_tz: str) -> ObserverCopies:
    for c in TEXT_COLUMNS:
        if c in df.columns:
            df = df.with_columns(pl.col(c).cast(pl.String).str.strip_chars())
        else:
            df = df.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    df = df.with_columns(
        pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c)
        for c in ("observed_at", "copy_id", "copy_code", "organization", "image_sha256",
                  "notes")
    ).with_columns(pl.col("image_sha256").str.to_lowercase())
    # copy ids must be unique: they are how a coordinator refers back to a submission
    given = df.filter(pl.col("copy_id").is_not_null())
    dup = given.filter(pl.col("copy_id").is_duplicated())
    if dup.height:
        raise IngestError(
            loc_type(file, int(cast(int, dup["__line"].max())), "copy_id"), "duplicate_copy_id",
            f"copy_id repetido {dup['copy_id'][0]!r} ({dup.height} filas)",
            f"repeated copy_id {dup['copy_id'][0]!r} ({dup.height} rows)")
    df = df.with_columns(pl.coalesce(
        pl.col("copy_id"), pl.lit(f"{sha[:8]}:") + pl.col("__line").cast(pl.String)
    ).alias("copy_id"))
    df = _parse_times(df, file, loc_type, assume_tz)
    for c in [*COUNT_COLUMNS, *contest.candidate_columns]:
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.Int64).alias(c))
    df, rejected = _reject_rows(df, contest)
    cols = copy_columns(contest)
    frame = df.with_columns(pl.col("__line").alias("line")).select(
        [pl.col(c).cast(t) for c, t in cols.items()])
    return ObserverCopies(contest=contest, frame=frame, rejected=rejected, source_uri=file,
                          source_sha256=sha, fmt=fmt)


# --- entry points ------------------------------------------------------------------------

def parse_observer_copies(path: str | Path, contest: Contest, *,
                          assume_tz: str = "UTC") -> ObserverCopies:
    """Read observers' copies from CSV (any of :data:`SEPARATORS`, optionally gzipped),
    Parquet or a JSON file (a list of records, or an object with a ``copies`` list)."""
    p = Path(path)
    name = str(path)
    try:
        head = p.read_bytes()[:4]
    except FileNotFoundError:
        raise IngestError(Location(name), "file_not_found", "el archivo no existe",
                          "the file does not exist") from None
    except IsADirectoryError:
        raise IngestError(Location(name), "not_a_file", "es una carpeta, no un archivo",
                          "it is a folder, not a file") from None
    if head == b"PAR1":
        return _parse_parquet(p, contest, assume_tz)
    warnings: tuple[tuple[str, str], ...] = ()
    try:
        src = read_source(p)
    except IngestError as exc:
        if exc.rule != "encoding":
            raise
        src = read_source(p, encoding="cp1252")
        warnings = (("el archivo no es UTF-8: se leyó como Latin-1 (Windows-1252); "
                     "revise los acentos", "the file is not UTF-8: read as Latin-1 "
                     "(Windows-1252); check the accents"),)
    if src.text.lstrip()[:1] in (b"[", b"{"):
        return _parse_json_file(src, contest, assume_tz)
    out = _parse_csv(src, contest, assume_tz)
    return out if not warnings else ObserverCopies(
        out.contest, out.frame, out.rejected, out.source_uri, out.source_sha256, out.fmt,
        warnings)


def sniff_separator(header_line: str, contest: Contest, file: str) -> str:
    """The separator of a copies CSV, from its header: the one of :data:`SEPARATORS` that
    splits it into the most required columns (ties: comma, semicolon, tab)."""
    required = {*REQUIRED_TEXT, *REQUIRED_COUNTS, *contest.candidate_columns}
    best, best_hits = ",", -1
    for sep in SEPARATORS:
        try:
            cols = next(csv.reader([header_line], delimiter=sep), [])
        except csv.Error:  # a stray carriage return: header_fields below names it
            continue
        hits = len(required & {c.strip() for c in cols})
        if hits > best_hits:
            best, best_hits = sep, hits
    return best


def _parse_csv(src: SourceBytes, contest: Contest, assume_tz: str) -> ObserverCopies:
    header_line = src.text.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
    sep = sniff_separator(header_line, contest, src.path)
    header = header_fields(header_line, src.path, sep)
    _check_header(header, contest, Location(src.path, 1))
    df = read_csv_strict(src, required=[*REQUIRED_TEXT, *REQUIRED_COUNTS,
                                        *contest.candidate_columns],
                         optional=[*OPTIONAL_TEXT, *OPTIONAL_COUNTS], separator=sep)
    df = cast_ints(df, [*COUNT_COLUMNS, *contest.candidate_columns], src.path)
    return _finish(df, contest, src.path, src.sha256, "csv", Location, assume_tz)


def _parse_json_file(src: SourceBytes, contest: Contest, assume_tz: str) -> ObserverCopies:
    try:
        data = json.loads(src.text.decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise IngestError(Location(src.path, exc.lineno), "json_syntax",
                          f"JSON ilegible: {exc.msg} (columna {exc.colno})",
                          f"unreadable JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise IngestError(Location(src.path), "json_too_deep",
                          "JSON anidado en exceso", "JSON nested too deeply") from None
    if isinstance(data, dict) and isinstance(data.get("copies"), list):
        data = data["copies"]
    if not isinstance(data, list):
        raise IngestError(Location(src.path, 1), "json_not_a_list",
                          "se esperaba una lista de copias (o un objeto con «copies»)",
                          "expected a list of copies (or an object with 'copies')")
    out = parse_observer_records(data, contest, source=src.path, assume_tz=assume_tz)
    return ObserverCopies(out.contest, out.frame, out.rejected, out.source_uri, src.sha256,
                          "json")


def _parse_parquet(path: Path, contest: Contest, assume_tz: str) -> ObserverCopies:
    name = str(path)
    raw = path.read_bytes()
    try:
        df = pl.read_parquet(io.BytesIO(raw))
    except Exception as exc:  # polars raises several types for a damaged file
        raise IngestError(Location(name), "parquet_unreadable",
                          f"Parquet ilegible: {exc}", f"unreadable Parquet: {exc}") from None
    if df.height == 0:
        raise IngestError(Location(name), "no_rows", "el archivo no tiene filas de datos",
                          "the file has no data rows")
    _check_header(df.columns, contest, RecordLocation(name, None))
    df = df.with_row_index("__line", offset=1).with_columns(pl.col("__line").cast(pl.Int64))
    df = _typed_to_canonical(df, contest, name, RecordLocation)
    return _finish(df, contest, name, sha256_bytes(raw), "parquet", RecordLocation, assume_tz)


def _typed_to_canonical(df: pl.DataFrame, contest: Contest, name: str,
                        loc_type: type[Location]) -> pl.DataFrame:
    df = _ints_typed(df, [*COUNT_COLUMNS, *contest.candidate_columns], name, loc_type)
    if "observed_at" in df.columns:
        dt = df.schema["observed_at"]
        if isinstance(dt, pl.Datetime):
            col = pl.col("observed_at")
            if dt.time_zone is None:
                col = col.dt.replace_time_zone("UTC")
            df = df.with_columns(col.dt.convert_time_zone("UTC")
                                 .dt.strftime("%Y-%m-%dT%H:%M:%S%.f+00:00").alias("observed_at"))
    for c in TEXT_COLUMNS:
        if c in df.columns and c != "observed_at":
            dt = df.schema[c]
            if not (dt in (pl.String, pl.Null, pl.Categorical) or dt.is_integer()):
                bad = df.filter(pl.col(c).is_not_null())
                raise IngestError(loc_type(name, int(bad["__line"][0]), c), "wrong_type",
                                  f"se esperaba texto y la columna es {dt}",
                                  f"expected text but the column is {dt}")
            df = df.with_columns(pl.col(c).cast(pl.String))
    return df


def parse_observer_records(records: Sequence[Mapping[str, Any]], contest: Contest, *,
                           source: str = "api", assume_tz: str = "UTC") -> ObserverCopies:
    """Validate JSON records (an API request body: a list of objects as in the schema)."""
    if not records:
        raise IngestError(Location(source), "no_rows", "no hay copias", "there are no copies")
    columns: list[str] = []
    for i, rec in enumerate(records, start=1):
        if not isinstance(rec, Mapping):
            raise IngestError(RecordLocation(source, i), "not_an_object",
                              "cada copia debe ser un objeto JSON",
                              "each copy must be a JSON object")
        for k in rec:
            if k not in columns:
                columns.append(k)
    _check_header(columns, contest, RecordLocation(source, None))
    # every value as text, then the same typing rules as a CSV (JSON true/1.5 -> errors)
    data = {c: pl.Series(c, [None if r.get(c) is None else str(r.get(c)) for r in records],
                         dtype=pl.String) for c in columns}
    frame = pl.DataFrame(data)
    frame = frame.with_row_index("__line", offset=1).with_columns(pl.col("__line").cast(pl.Int64))
    frame = _typed_to_canonical(frame, contest, source, RecordLocation)
    sha = sha256_bytes(json.dumps(list(records), sort_keys=True, default=str).encode())
    return _finish(frame, contest, source, sha, "json", RecordLocation, assume_tz)


def combine(parts: Sequence[ObserverCopies]) -> ObserverCopies:
    """Several files of copies as one set (copy ids must stay unique across files)."""
    if not parts:
        raise ValueError("no copies to combine")
    frame = pl.concat([p.frame for p in parts])
    dup = frame.filter(pl.col("copy_id").is_duplicated())
    if dup.height:
        raise IngestError(Location(", ".join(p.source_uri for p in parts), None, "copy_id"),
                          "duplicate_copy_id",
                          f"copy_id repetido entre archivos: {dup['copy_id'][0]!r}",
                          f"copy_id repeated across files: {dup['copy_id'][0]!r}")
    rejected = pl.concat([p.rejected for p in parts])
    sha = sha256_bytes("".join(p.source_sha256 for p in parts).encode())
    return ObserverCopies(parts[0].contest, frame, rejected,
                          ";".join(p.source_uri for p in parts), sha, parts[0].fmt)


def write_observer_copies(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write a canonical copy frame as CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``)
    in the documented format; it reads back identically with :func:`parse_observer_copies`."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    out = frame.drop("line", strict=False).with_columns(
        pl.col("observed_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ"))
    if p.name.endswith(".parquet"):
        out.write_parquet(p)
    elif p.name.endswith(".gz"):
        import gzip

        p.write_bytes(gzip.compress(out.write_csv().encode("utf-8"), mtime=0))
    else:
        out.write_csv(p)
    return p


# --- companion inputs: official copy codes, lists of actas -------------------------------

_ID_COLUMNS: Final = ("acta_id", "mesa", "num_mesa")
_CODE_COLUMNS: Final = ("copy_code", "v2_CCOPIA_ACTA", "v1_CCOPIA_ACTA", "CCOPIA_ACTA")


def _pick(header: Sequence[str], options: Sequence[str], file: str, what_es: str,
          what_en: str) -> str:
    for c in options:
        if c in header:
            return c
    raise IngestError(Location(file, 1, options[0]), "missing_columns",
                      f"falta la columna de {what_es} (una de: {', '.join(options)})",
                      f"the {what_en} column is missing (one of: {', '.join(options)})")


def read_copy_codes(path: str | Path) -> pl.DataFrame:
    """Official copy codes, ``acta_id, copy_code``, from any CSV (gzipped or not) with an
    id column (``acta_id``, ``mesa``, ``num_mesa``) and a code column (``copy_code`` or
    ONPE's ``v2_CCOPIA_ACTA``/``CCOPIA_ACTA``, as in the ronderos.pe per-acta export)."""
    src = read_source(path)
    header = header_fields(src.text.split(b"\n", 1)[0].decode("utf-8").rstrip("\r"), src.path)
    id_col = _pick(header, _ID_COLUMNS, src.path, "número de acta", "acta id")
    code_col = _pick(header, _CODE_COLUMNS, src.path, "código de copia", "copy code")
    df = read_csv_strict(src, required=[id_col, code_col], allow_extra=True)
    return df.select(pl.col(id_col).str.strip_chars().alias("acta_id"),
                     pl.col(code_col).str.strip_chars().alias("copy_code")
                     ).filter(pl.col("acta_id").is_not_null())


def source_copy_codes(source_uri: str, source_sha256: str) -> pl.DataFrame | None:
    """The official copy codes of a stored per-acta snapshot, read from its own source
    file when that file is still where it was ingested from, is byte-identical (its
    SHA-256 is the snapshot's ``source_sha256``) and has a copy-code column (ONPE's
    ``v2_CCOPIA_ACTA`` / ``CCOPIA_ACTA``, or ``copy_code``); otherwise ``None``."""
    p = Path(source_uri)
    if not source_uri or not p.is_file():
        return None
    try:
        raw = p.read_bytes()
    except OSError:
        return None
    if sha256_bytes(raw) != source_sha256:
        return None
    try:
        return read_copy_codes(p)
    except IngestError:  # no copy-code column (or no id column): nothing to check against
        return None


def read_acta_list(path: str | Path) -> list[str]:
    """A list of actas (e.g. a party's nullity requests): a CSV with an ``acta_id`` or
    ``mesa`` column, or plain text with one id per line (``#`` starts a comment)."""
    src = read_source(path)
    first = src.text.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
    header = header_fields(first, src.path) if first else []
    if any(c in header for c in _ID_COLUMNS):
        id_col = _pick(header, _ID_COLUMNS, src.path, "número de acta", "acta id")
        df = read_csv_strict(src, required=[id_col], allow_extra=True)
        return [str(x).strip() for x in df[id_col].drop_nulls().to_list() if str(x).strip()]
    out: list[str] = []
    for i, line in enumerate(src.text.decode("utf-8").splitlines(), start=1):
        v = line.split("#", 1)[0].strip()
        if not v:
            continue
        if "," in v or " " in v:
            raise IngestError(Location(src.path, i), "not_an_acta_id",
                              f"se esperaba un número de acta por línea, no {v!r}",
                              f"expected one acta id per line, not {v!r}")
        out.append(v)
    if not out:
        raise IngestError(Location(src.path), "no_rows", "la lista está vacía",
                          "the list is empty")
    return out
