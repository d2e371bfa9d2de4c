"""Shared machinery of every source: read bytes safely, parse CSV strictly, and the
:class:`ParsedSnapshot` container that sources hand to the store.

Fast path: polars reads the whole file at once. Only when something is wrong does a slow
path walk the file line by line, to name the exact line and field in the error.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from escrutinio.domain import ACTA_COLUMNS, UNIT_COLUMNS, Contest, SnapshotKind
from escrutinio.errors import IngestError, Location

NULL_TOKENS = ["", "NA", "N/A", "null", "NULL"]

REJECTED_SCHEMA = {
    "line": pl.Int64(),
    "acta_id": pl.String(),
    "field": pl.String(),
    "rule": pl.String(),
    "message_es": pl.String(),
    "message_en": pl.String(),
    "raw": pl.String(),
}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class SourceBytes:
    """The raw bytes of a source file, its SHA-256 and the decoded text."""

    path: str
    raw: bytes
    sha256: str
    text: bytes  # decompressed, validated UTF-8 bytes


def read_source(path: str | Path, *, encoding: str = "utf-8") -> SourceBytes:
    """Read a (possibly gzipped) text file and check it decodes; name the line if not."""
    p = Path(path)
    name = str(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise IngestError(Location(name), "file_not_found", "el archivo no existe",
                          "the file does not exist") from None
    if not raw:
        raise IngestError(Location(name), "empty_file", "el archivo está vacío",
                          "the file is empty")
    data = raw
    if raw[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(raw)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise IngestError(
                Location(name), "gzip_corrupt",
                f"el archivo gzip está truncado o dañado ({exc})",
                f"the gzip file is truncated or corrupt ({exc})",
            ) from None
        if not data:
            raise IngestError(Location(name), "empty_file",
                              "el archivo está vacío (gzip sin contenido)",
                              "the file is empty (gzip with no content)")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if encoding.lower().replace("-", "") == "utf8":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise IngestError(
                Location(name, line), "encoding",
                f"el texto no es UTF-8 válido (byte {exc.start}); ¿se guardó como Latin-1?",
                f"the text is not valid UTF-8 (byte {exc.start}); was it saved as Latin-1?",
            ) from None
    else:
        data = data.decode(encoding).encode("utf-8")
    if not data.strip():
        raise IngestError(Location(name), "empty_file", "el archivo está vacío",
                          "the file is empty")
    return SourceBytes(path=name, raw=raw, sha256=sha256_bytes(raw), text=data)


def _first_ragged_line(src: SourceBytes, n_header: int,
                       separator: str = ",") -> tuple[int, int] | None:
    reader = csv.reader(io.StringIO(src.text.decode("utf-8")), delimiter=separator)
    for i, row in enumerate(reader, start=1):
        if i == 1:
            continue
        if row and len(row) != n_header:
            return reader.line_num, len(row)
    return None


def _record_lines(src: SourceBytes, n_header: int, separator: str) -> list[int] | None:
    """Check the field count of every record; return the line where each data record
    starts when that differs from "one record per physical line", else None.

    Fast path: count separators per physical line (vectorised). Only a file where some
    line has the wrong count (a ragged line, or a quoted separator or newline) is walked
    with the csv module, which raises ``wrong_field_count`` or finds each record's line.
    polars pads a short line with nulls without complaint, so this check is needed.
    """
    lines = pl.Series(src.text.split(b"\n")).cast(pl.Binary)
    text = lines.cast(pl.String)
    n_sep = text.str.count_matches(separator, literal=True)
    blank = text.str.strip_chars_end("\r").str.len_bytes() == 0
    if bool(((n_sep == n_header - 1) | blank).all()):
        return None
    reader = csv.reader(io.StringIO(src.text.decode("utf-8")), delimiter=separator)
    starts: list[int] = []
    prev = 0
    for i, row in enumerate(reader, start=1):
        start, prev = prev + 1, reader.line_num
        if i == 1:
            continue
        if row and len(row) != n_header:
            raise IngestError(
                Location(src.path, start), "wrong_field_count",
                f"la línea tiene {len(row)} campos y la cabecera {n_header}",
                f"the line has {len(row)} fields but the header has {n_header}",
            )
        starts.append(start)
    return starts


def read_csv_strict(
    src: SourceBytes,
    *,
    required: Iterable[str],
    optional: Iterable[str] = (),
    allow_extra: bool = False,
    extra_prefix: str | None = None,
    separator: str = ",",
) -> pl.DataFrame:
    """Parse CSV text with every column as a string, checking the header.

    Adds ``__line`` (1-based line number in the file; the header is line 1).
    """
    name = src.path
    header_line = src.text.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
    header = next(csv.reader([header_line], delimiter=separator))
    req = list(required)
    missing = [c for c in req if c not in header]
    if missing:
        raise IngestError(
            Location(name, 1, ", ".join(missing)), "missing_columns",
            f"faltan columnas obligatorias: {', '.join(missing)}",
            f"required columns are missing: {', '.join(missing)}",
        )
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise IngestError(Location(name, 1, ", ".join(dupes)), "duplicate_columns",
                          f"columnas repetidas: {', '.join(dupes)}",
                          f"duplicated columns: {', '.join(dupes)}")
    if not allow_extra:
        known = set(req) | set(optional)
        extra = [c for c in header if c not in known
                 and not (extra_prefix and c.startswith(extra_prefix))]
        if extra:
            raise IngestError(
                Location(name, 1, ", ".join(extra)), "unexpected_columns",
                f"columnas no reconocidas: {', '.join(extra)}",
                f"unrecognised columns: {', '.join(extra)}",
            )
    try:
        df = pl.read_csv(
            src.text,
            separator=separator,
            infer_schema=False,
            null_values=NULL_TOKENS,
            truncate_ragged_lines=False,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:
        ragged = _first_ragged_line(src, len(header), separator)
        if ragged:
            line, n = ragged
            raise IngestError(
                Location(name, line), "wrong_field_count",
                f"la línea tiene {n} campos y la cabecera {len(header)}",
                f"the line has {n} fields but the header has {len(header)}",
            ) from None
        raise IngestError(Location(name), "csv_syntax",
                          f"CSV ilegible: {exc}", f"unreadable CSV: {exc}") from None
    if df.height == 0:
        raise IngestError(Location(name, 2), "no_rows", "el archivo no tiene filas de datos",
                          "the file has no data rows")
    # polars silently pads short lines with nulls: check the field count of every line
    # (vectorised; the csv module walks the file only when that quick test fails).
    starts = _record_lines(src, len(header), separator)
    if starts is not None and len(starts) >= df.height:
        return df.with_columns(pl.Series("__line", starts[: df.height], dtype=pl.Int64))
    return df.with_row_index("__line", offset=2).with_columns(pl.col("__line").cast(pl.Int64))


def cast_ints(df: pl.DataFrame, columns: Iterable[str], file: str) -> pl.DataFrame:
    """Cast string columns to Int64; text in a number field names its line and field.

    Accepts values like ``"13,619"`` (thousands separators) and ``"182.0"`` (integral
    floats written by R), nothing else.
    """
    exprs = []
    cols = [c for c in columns if c in df.columns]
    for c in cols:
        s = pl.col(c).str.strip_chars().str.replace_all(",", "", literal=True)
        s = pl.when(s.str.contains(r"^-?\d+\.0+$")).then(s.str.replace(r"\.0+$", "")).otherwise(s)
        exprs.append(s.cast(pl.Int64, strict=False).alias(c))
    out = df.with_columns(exprs)
    for c in cols:
        bad = df.filter(pl.col(c).is_not_null() & out[c].is_null())
        if bad.height:
            line = int(bad["__line"][0])
            value = bad[c][0]
            raise IngestError(
                Location(file, line, c), "not_an_integer",
                f"se esperaba un número entero y se encontró {value!r} "
                f"({bad.height} filas con este problema)",
                f"expected an integer, found {value!r} ({bad.height} rows with this problem)",
            )
    return out


def parse_timestamp(value: str) -> datetime:
    v = value.strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(v)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def empty_rejected() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTED_SCHEMA)


@dataclass(frozen=True, slots=True)
class ParsedSnapshot:
    """One snapshot parsed from a source, canonical and validated, not yet stored.

    ``snapshot_id`` is content-addressed: the SHA-256 of the source bytes when the file
    holds one snapshot, or SHA-256(source hash + ":" + part) when one source holds
    several (ONPE's national progress tables hold 48 cuts of the count).
    """

    contest: Contest
    kind: SnapshotKind
    as_of: datetime
    source_uri: str
    source_sha256: str
    parser: str
    frame: pl.DataFrame
    rejected: pl.DataFrame = field(default_factory=empty_rejected)
    findings: pl.DataFrame = field(default_factory=empty_rejected)
    part: str | None = None
    label: str = ""
    level: str | None = None  # for unit snapshots: the finest level present
    geography: pl.DataFrame | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def snapshot_id(self) -> str:
        if self.part is None:
            return self.source_sha256
        return sha256_bytes(f"{self.source_sha256}:{self.part}".encode())

    def __post_init__(self) -> None:
        base = ACTA_COLUMNS if self.kind is SnapshotKind.ACTAS else UNIT_COLUMNS
        expected = list(base) + self.contest.candidate_columns
        if self.frame.columns != expected:
            raise ValueError(
                f"parser {self.parser} produced columns {self.frame.columns}, "
                f"expected {expected}"
            )


def conform(frame: pl.DataFrame, contest: Contest, kind: SnapshotKind) -> pl.DataFrame:
    """Select and cast a frame to the canonical column order and dtypes."""
    base = ACTA_COLUMNS if kind is SnapshotKind.ACTAS else UNIT_COLUMNS
    schema = dict(base) | {c: pl.Int64() for c in contest.candidate_columns}
    exprs = []
    for name, dtype in schema.items():
        if name in frame.columns:
            exprs.append(pl.col(name).cast(dtype))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(exprs)
