"""Shared machinery of every source: read bytes safely, parse CSV strictly, and the
:class:`ParsedSnapshot` container that sources hand to the store.

Fast path: polars reads the whole file at once. Only when something is wrong does a slow
path walk the file line by line, to name the exact line and field in the error.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import polars as pl

from escrutinio.domain import (  # REJECTED_SCHEMA: re-exported (it was defined here)
    ACTA_COLUMNS,
    REJECTED_SCHEMA,
    UNIT_COLUMNS,
    VOTE_TYPE,
    Contest,
    SnapshotKind,
)
from escrutinio.errors import IngestError, Location
from escrutinio.sources.raw import (  # also the names below, first defined here
    SourceBytes,
    sha256_bytes,
)
from escrutinio.sources.raw import gunzip_capped as gunzip_capped
from escrutinio.sources.raw import max_decompressed_bytes as max_decompressed_bytes
from escrutinio.sources.raw import read_source as read_source
from escrutinio.sources.sanitize import (
    CONTROL_CLASS,
    FORMULA_PATTERN,
    MAX_COUNT,
    control_char,
    describe_char,
)

if TYPE_CHECKING:  # numpy is imported where a CSV is scanned: a command that
    import numpy as np  # reads none (status, history...) skips its import

NULL_TOKENS = ["", "NA", "N/A", "null", "NULL"]


#: bytes per block of the line scan: small enough to stay in cache, large enough that the
#: per-block overhead does not matter
_SCAN_BLOCK = 1 << 22


def _field_counts_ok(text: bytes, n_header: int, separator: str) -> bool:
    """Fast, sound check: True only when every physical line is blank ("" or "\r"), or has
    an even number of quotes and ``n_header - 1`` separators outside quotes.

    numpy over blocks of whole lines, reusing the same buffers: allocating masks the
    size of a 100 MB file costs more than scanning it. False means "look closer", not
    "wrong" (multi-byte separators always get False).
    """
    import numpy as np

    sep = separator.encode("utf-8")
    if len(sep) != 1 or not text:
        return False
    want = n_header - 1
    size = len(text)
    buf = np.frombuffer(text, dtype=np.uint8)
    cap = min(size, _SCAN_BLOCK)
    mask, quotes = np.empty(cap, dtype=np.bool_), np.empty(cap, dtype=np.uint8)
    pos = 0
    while pos < size:
        end = min(pos + _SCAN_BLOCK, size)
        if end < size:  # end the block after a newline (or after a line longer than it)
            cut = text.rfind(b"\n", pos, end)
            if cut < 0:
                cut = text.find(b"\n", end)
            end = size if cut < 0 else cut + 1
        n = end - pos
        if mask.size < n:
            mask, quotes = np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.uint8)
        m, q = mask[:n], quotes[:n]
        block = buf[pos:end]
        np.equal(block, 10, out=m)
        line_end = np.flatnonzero(m)
        if block[-1] != 10:
            line_end = np.append(line_end, n)
        starts = np.empty(line_end.size, dtype=np.int64)
        starts[0] = 0
        starts[1:] = line_end[:-1] + 1
        np.equal(block, sep[0], out=m)
        if text.find(b'"', pos, end) >= 0:
            np.equal(block, 34, out=q.view(np.bool_))
            # each segment [start, next start) is a line and its newline: never empty
            if (np.add.reduceat(q, starts, dtype=np.int64) & 1).any():
                return False  # a quoted newline (or a stray quote)
            # with an even count per line, a byte is inside quotes iff an odd number of
            # quotes precede it in the block (uint8 wraps at 256, parity survives)
            np.cumsum(q.view(np.bool_), dtype=np.uint8, out=q)
            np.bitwise_and(q, 1, out=q)
            np.greater(m.view(np.uint8), q, out=m)
        counts = np.add.reduceat(m.view(np.uint8), starts, dtype=np.int64)
        for i in np.flatnonzero(counts != want).tolist():  # only blank lines may differ
            if text[pos + int(starts[i]): pos + int(line_end[i])].rstrip(b"\r"):
                return False
        pos = end
    return True


def _scan_records(text: bytes, sep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Vectorised CSV record scan (RFC 4180 quoting, as the csv module reads it).

    For every record: the physical line where it starts (1-based), its number of fields
    and whether it is blank. None when the quoting is irregular (a quote inside an
    unquoted field, text after a closing quote, a bare carriage return, an unclosed
    quote): then only the csv module knows what it means. Blocks of the text are scanned
    with reused buffers, carrying the quote state and the open record across blocks.
    """
    import numpy as np

    size = len(text)
    buf = np.frombuffer(text, dtype=np.uint8)
    cap = min(size, _SCAN_BLOCK)
    inside_buf = np.empty(cap, dtype=np.uint8)
    mask_buf = np.empty(cap, dtype=np.bool_)
    parity = 0  # 1 when the previous block ended inside quotes
    newlines = 0  # newlines before the block
    open_seps, open_start, open_line = 0, 0, 1  # the record still open at the block start
    rec_start: list[np.ndarray] = []
    rec_line: list[np.ndarray] = []
    rec_seps: list[np.ndarray] = []

    def byte_at(idx: np.ndarray) -> np.ndarray:  # a newline stands for outside the text
        out = buf[np.clip(idx, 0, size - 1)]
        return np.where((idx < 0) | (idx >= size), 10, out)

    for pos in range(0, size, _SCAN_BLOCK):
        end = min(pos + _SCAN_BLOCK, size)
        n = end - pos
        block = buf[pos:end]
        mask = mask_buf[:n]
        if text.find(b'"', pos, end) >= 0:
            inside = inside_buf[:n]  # 1 when a byte is inside quotes (a quote: after it)
            np.equal(block, 34, out=mask)
            quotes = np.flatnonzero(mask)
            np.cumsum(mask, dtype=np.uint8, out=inside)  # wraps at 256: parity survives
            np.bitwise_and(inside, 1, out=inside)
            if parity:
                np.bitwise_xor(inside, 1, out=inside)
            at = quotes + pos
            before, after = byte_at(at - 1), byte_at(at + 1)
            ok = np.where(inside[quotes] == 1,
                          (before == sep) | (before == 10) | (before == 34),
                          (after == sep) | (after == 10) | (after == 13) | (after == 34))
            if not ok.all():
                return None
            last_parity = int(inside[-1])
        else:
            inside = None
            last_parity = parity
        if text.find(b"\r", pos, end) >= 0:
            np.equal(block, 13, out=mask)
            cr = np.flatnonzero(mask)  # a carriage return outside quotes ends a line
            if inside is not None:
                cr = cr[inside[cr] == 0]
            elif parity:
                cr = cr[:0]
            if cr.size and (byte_at(cr + pos + 1) != 10).any():
                return None
        np.equal(block, 10, out=mask)
        nl = np.flatnonzero(mask)
        nl_inside = inside[nl] if inside is not None else np.full(nl.size, parity)
        ends = nl[nl_inside == 0]  # newlines that end a record
        np.equal(block, sep, out=mask)
        if inside is not None:
            np.greater(mask.view(np.uint8), inside, out=mask)  # separators outside quotes
        elif parity:
            mask[:] = False
        seg = np.empty(ends.size + 1, dtype=np.int64)
        seg[0] = 0
        seg[1:] = ends + 1
        tail = seg[-1] < n
        counts = np.add.reduceat(mask.view(np.uint8), seg if tail else seg[:-1],
                                 dtype=np.int64)
        if ends.size:
            seps = counts[:ends.size]
            seps[0] += open_seps
            line_of_end = newlines + np.searchsorted(nl, ends)  # newlines before each end
            starts = np.empty(ends.size, dtype=np.int64)
            starts[0] = open_start
            starts[1:] = ends[:-1] + 1 + pos
            lines = np.empty(ends.size, dtype=np.int64)
            lines[0] = open_line
            lines[1:] = line_of_end[:-1] + 2
            rec_start.append(starts)
            rec_line.append(lines)
            rec_seps.append(seps)
            open_seps = int(counts[-1]) if tail else 0
            open_start = int(ends[-1]) + 1 + pos
            open_line = int(line_of_end[-1]) + 2
        else:
            open_seps += int(counts[0])
        newlines += nl.size
        parity = last_parity
    if parity:
        return None  # a quote never closed
    if open_start < size:  # the last record has no final newline
        rec_start.append(np.array([open_start]))
        rec_line.append(np.array([open_line]))
        rec_seps.append(np.array([open_seps]))
    start = np.concatenate(rec_start) if rec_start else np.zeros(0, dtype=np.int64)
    line = np.concatenate(rec_line) if rec_line else np.zeros(0, dtype=np.int64)
    fields = (np.concatenate(rec_seps) if rec_seps else np.zeros(0, dtype=np.int64)) + 1
    # a record's end: the next record's start minus its newline (or the end of the text)
    stop = np.append(start[1:] - 1, size if buf[-1] != 10 else size - 1)
    length = stop - start
    blank = (length == 0) | ((length == 1) & (byte_at(start) == 13))
    return line, fields, blank


def _one_record_per_line(text: bytes, n_rows: int, n_header: int, separator: str) -> bool:
    """True only when every data line of ``text`` is one record of ``n_header`` fields (or
    blank), as the csv module reads it, and polars read ``n_rows`` of them: what
    :func:`_record_lines` would find, answering None. Cheap and without numpy: polars
    splits the text into its physical lines and counts each line's separators; the lines
    holding a quote (few) must be quoted regularly, and their separators inside quotes do
    not count. False means "look closer" (:func:`_record_lines`), not "wrong"."""
    sep = separator.encode("utf-8")
    if len(sep) != 1 or sep in b'"\r\n\x00' or not text or b"\x00" in text:
        return False
    n_lines = text.count(b"\n") + (not text.endswith(b"\n"))
    if n_rows != n_lines - 1:
        return False  # a record over several lines (or polars read them otherwise)
    try:  # NUL is in no line: each line is one field, unquoted
        lines = pl.read_csv(text, has_header=False, separator="\x00", quote_char=None,
                            new_columns=["line"], infer_schema=False,
                            raise_if_empty=False)["line"]
    except pl.exceptions.PolarsError:
        return False
    if lines.len() != n_lines:
        return False
    line = pl.col("line")
    blank = line.is_null() | (line.str.strip_chars_end("\r") == "")
    data = lines.slice(1).to_frame().with_columns(
        blank.alias("blank"), line.str.contains('"', literal=True).alias("quoted"))
    plain = data.select((pl.col("blank") | pl.col("quoted")
                         | (line.str.count_matches(separator, literal=True) == n_header - 1))
                        .all()).item()
    if not plain:
        return False
    quoted = data.filter(pl.col("quoted") & ~pl.col("blank"))
    if quoted.height == 0:
        return True
    sep_re = f"\\x{{{ord(separator):X}}}"
    field = f'(?:[^"\\r\\n{sep_re}]*|"(?:[^"]|"")*")'
    regular = line.str.contains(f"^{field}(?:{sep_re}{field})*\\r?$")  # as RFC 4180 quotes
    inside = '"(?:[^"]|"")*"'  # a quoted field, whose separators do not count
    return bool(quoted.select((regular & (line.str.replace_all(inside, "").str.count_matches(
        separator, literal=True) == n_header - 1)).all()).item())


def _record_lines(src: SourceBytes, n_header: int, separator: str) -> list[int] | None:
    """Check the field count of every record; return the line where each data record
    starts when that differs from "one record per physical line", else None.

    Fast paths (numpy, vectorised): count separators per physical line, or follow the
    quoting record by record (:func:`_scan_records`). Only a file with irregular quoting
    (or a separator of more than one byte) is walked with the csv module, which raises
    ``wrong_field_count`` or finds each record's line.
    polars pads a short line with nulls without complaint, so this check is needed.
    """
    import numpy as np

    # fast paths (numpy): count separators per line, or (with quotes) follow the quoting
    sep = separator.encode("utf-8")
    quoted = b'"' in src.text
    if not quoted and _field_counts_ok(src.text, n_header, separator):
        return None
    scanned = _scan_records(src.text, sep[0]) if len(sep) == 1 else None
    if scanned is not None:  # what the csv module walk below finds, vectorised
        line, fields, blank = scanned
        bad = np.flatnonzero(~blank[1:] & (fields[1:] != n_header))
        if bad.size:
            i = int(bad[0]) + 1
            raise IngestError(
                Location(src.path, int(line[i])), "wrong_field_count",
                f"la línea tiene {fields[i]} campos y la cabecera {n_header}",
                f"the line has {fields[i]} fields but the header has {n_header}",
            )
        if int(line[-1] - line[0]) == line.size - 1:
            return None  # one record per physical line
        return [int(x) for x in line[1:]]
    text = pl.Series([src.text.decode("utf-8")]).str.split("\n").explode()
    # separators inside quotes do not count; an odd number of quotes means a quoted
    # newline, which only the csv module can follow
    unquoted = text.str.replace_all(r'"[^"]*"', "")
    n_sep = unquoted.str.count_matches(separator, literal=True)
    one_line = text.str.count_matches('"', literal=True) % 2 == 0
    empty = text.str.strip_chars_end("\r").str.len_bytes() == 0
    if bool((((n_sep == n_header - 1) & one_line) | empty).all()):
        return None
    reader = csv.reader(io.StringIO(src.text.decode("utf-8")), delimiter=separator)
    starts: list[int] = []
    prev = 0
    try:
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
    except csv.Error as exc:  # a bare carriage return inside a field, an unclosed quote...
        raise IngestError(Location(src.path, prev + 1), "csv_syntax",
                          f"CSV ilegible: {exc}", f"unreadable CSV: {exc}") from None
    return starts


def header_fields(line: str, file: str, separator: str = ",") -> list[str]:
    """The fields of a header line, or ``csv_syntax`` naming line 1 (a stray carriage
    return or an unclosed quote makes the csv module raise)."""
    try:
        return next(csv.reader([line], delimiter=separator), [])
    except csv.Error as exc:
        raise IngestError(Location(file, 1), "csv_syntax", f"cabecera ilegible: {exc}",
                          f"unreadable header: {exc}") from None


def first_line(text: bytes) -> str:
    """The first line of the text, without its line break (and without copying the rest)."""
    cut = text.find(b"\n")
    return (text if cut < 0 else text[:cut]).decode("utf-8").rstrip("\r")


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
    header_line = first_line(src.text)
    header = header_fields(header_line, name, separator)
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
        _record_lines(src, len(header), separator)  # raises wrong_field_count if ragged
        raise IngestError(Location(name), "csv_syntax",
                          f"CSV ilegible: {exc}", f"unreadable CSV: {exc}") from None
    if df.height == 0:
        raise IngestError(Location(name, 2), "no_rows", "el archivo no tiene filas de datos",
                          "the file has no data rows")
    # polars silently pads short lines with nulls: check the field count of every line
    # (counts first, then vectorised; the csv module walks the file only when both fail).
    one_line = _one_record_per_line(src.text, df.height, len(header), separator)
    starts = None if one_line else _record_lines(src, len(header), separator)
    if starts is not None and len(starts) == df.height:
        df = df.with_columns(pl.Series("__line", starts, dtype=pl.Int64))
    else:
        df = df.with_row_index("__line", offset=2).with_columns(pl.col("__line").cast(pl.Int64))
    # one vectorised pass per text column, unless no field can hold a control character
    refuse_hostile_text(df, name, clean=one_line and _no_control_characters(src.text))
    return df


_C0_BYTES: Final = bytes([*range(0x0A), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])  # not \n, \r
_NOT_C0: Final = bytes(b for b in range(256) if b not in _C0_BYTES)
#: C1 controls and the bidi overrides and isolates, as UTF-8 bytes
_C1_UTF8: Final = re.compile(rb"\xc2[\x80-\x9f]")
_BIDI_UTF8: Final = re.compile(rb"\xe2(?:\x80[\xaa-\xae]|\x81[\xa6-\xa9])")


def _no_control_characters(text: bytes) -> bool:
    """True when the UTF-8 text of a CSV whose records are one line each holds no
    character of :data:`~escrutinio.sources.sanitize.CONTROL_CLASS` except its line ends
    (``\\n``, ``\\r\\n``), so that no field does: a few byte scans in C, cheaper than
    a regex over every text column."""
    bare = text.translate(None, _NOT_C0)  # only the C0 controls and DEL are left
    if bare.strip(b"\n\r"):
        return False
    if b"\r" in text and text.count(b"\r") != text.count(b"\r\n"):
        return False  # a carriage return that does not end a line
    return _C1_UTF8.search(text) is None and _BIDI_UTF8.search(text) is None


#: invisible characters never legitimate in any field: NUL and the bidi overrides/isolates
_NEVER_CLASS: Final = "[\\x00\\u202a-\\u202e\\u2066-\\u2069]"
#: columns that hold ids, codes or names (where every control character is refused)
_ID_NAME_RE: Final = r"^(acta_id|polling_place|code|name|.*_code|.*_name)$"


def refuse_hostile_text(df: pl.DataFrame, file: str, *, clean: bool = False) -> None:
    """Refuse, naming line and field: NUL and bidi controls in any text field; any control
    character (line breaks, tabs...) in an id, code or name column; an ``acta_id`` a
    spreadsheet would run as a formula. Vectorised: one pass per column. ``clean``: the
    caller knows no field holds a control character (only the formula check is left)."""
    cols = [c for c, t in df.schema.items() if t == pl.String and c != "__line"]
    if not cols:
        return
    strict = [c for c in cols if re.match(_ID_NAME_RE, c)]
    checks = [] if clean else (
        [(c, _NEVER_CLASS, "control_character") for c in cols if c not in strict]
        + [(c, CONTROL_CLASS, "control_character") for c in strict])
    checks += [("acta_id", FORMULA_PATTERN, "formula_id")] * ("acta_id" in cols)
    if not checks:
        return
    hits = df.select([pl.col(c).str.contains(pat).fill_null(False).any().alias(str(i))
                      for i, (c, pat, _) in enumerate(checks)]).row(0)
    for (c, pat, rule), hit in zip(checks, hits, strict=True):
        if not hit:
            continue
        row = df.filter(pl.col(c).str.contains(pat).fill_null(False)).head(1)
        value, line = str(row[c][0]), int(row["__line"][0])
        if rule == "formula_id":
            raise IngestError(
                Location(file, line, c), rule,
                f"el id de acta {value[:60]!r} empieza con =, +, - o @: una hoja de cálculo "
                "lo ejecutaría como fórmula",
                f"the acta id {value[:60]!r} starts with =, +, - or @: a spreadsheet would "
                "run it as a formula")
        ch = describe_char(value[control_char(value) or 0])
        raise IngestError(
            Location(file, line, c), rule,
            f"{value[:60]!r} contiene el carácter de control {ch} (NUL, saltos de línea y "
            "marcas de dirección no se admiten en ids ni nombres)",
            f"{value[:60]!r} holds the control character {ch} (NUL, line breaks and "
            "direction overrides are not allowed in ids or names)")


def cast_ints(df: pl.DataFrame, columns: Iterable[str], file: str) -> pl.DataFrame:
    """Cast string columns to Int64; text in a number field names its line and field.

    Accepts values like ``"13,619"`` (thousands separators) and ``"182.0"`` (integral
    floats written by R), nothing else.
    """
    cols = [c for c in columns if c in df.columns]
    if not cols:
        return df
    # fast path: a plain integer casts as it is (and then none of the clean-ups below
    # would change it); only columns with some other value take the slow path
    direct = df.select([pl.col(c).cast(pl.Int64, strict=False) for c in cols])
    nulls = df.select([pl.col(c).null_count() for c in cols]).row(0)
    slow = [c for c, n in zip(cols, nulls, strict=True) if direct[c].null_count() != n]
    exprs = []
    for c in slow:
        s = pl.col(c).str.strip_chars().str.replace_all(",", "", literal=True)
        s = pl.when(s.str.contains(r"^-?\d+\.0+$")).then(s.str.replace(r"\.0+$", "")).otherwise(s)
        exprs.append(s.cast(pl.Int64, strict=False).alias(c))
    out = df.with_columns(*[direct[c] for c in cols if c not in slow], *exprs)
    for c in slow:
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


#: the earliest and latest times a snapshot may carry (outside: a typo, not a count)
EARLIEST_TIME: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIME: Final = datetime(2200, 1, 1, tzinfo=UTC)


def timestamp_or_none(value: str) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime (no zone: UTC), or None when the text is
    not one or lies outside 1900-2200."""
    v = value.strip()
    if not v or len(v) > 40 or not v[:4].isdigit():
        return None
    if v[-1:] in ("Z", "z"):
        v = v[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(v)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        dt = dt.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return dt if EARLIEST_TIME <= dt < LATEST_TIME else None


def parse_timestamp(value: str, where: Location | None = None) -> datetime:
    """An ISO 8601 time (see :func:`timestamp_or_none`), or an :class:`IngestError`
    (rule ``bad_timestamp``) naming ``where`` (file, line, field)."""
    dt = timestamp_or_none(value)
    if dt is None:
        shown = repr(value[:60])
        raise IngestError(
            where or Location("?"), "bad_timestamp",
            f"fecha y hora no válida {shown}: se espera ISO 8601 entre 1900 y 2200, p. ej. "
            "2021-06-07T12:00:00-05:00",
            f"invalid time {shown}: expected ISO 8601 between 1900 and 2200, e.g. "
            "2021-06-07T12:00:00-05:00")
    return dt


def latest_timestamp(df: pl.DataFrame, column: str, file: str) -> datetime | None:
    """The latest time in a text column of ISO 8601 times, every value checked: a bad one
    raises ``bad_timestamp`` naming its line (``__line``) and field. None when empty."""
    values = df.select(pl.col(column).drop_nulls().unique())[column].to_list()
    parsed = {v: timestamp_or_none(str(v)) for v in values}
    bad = [v for v, dt in parsed.items() if dt is None]
    if bad:
        row = df.filter(pl.col(column).is_in(bad)).head(1)
        line = int(row["__line"][0]) if "__line" in row.columns else None
        parse_timestamp(str(row[column][0]), Location(file, line, column))
    good = [dt for dt in parsed.values() if dt is not None]
    return max(good) if good else None


#: snapshot metadata: JSON {unit_code: fraction of the unit's votes counted}, an external
#: estimate a source may carry when it publishes no acta counts (the 2026 bundle's, from
#: the scraper's votosRestantes); the unit projection uses it for the votes still to come
FRACTION_COUNTED_KEY: Final = "fraction_counted_by_unit"

#: snapshot metadata of a national cut without acta counts: the fraction of the votes
#: counted (0-1], as the source estimates it; the projection then models the series
SERIES_FRACTION_KEY: Final = "pct_votes_counted"


def empty_rejected() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTED_SCHEMA)


def _row_key(rejected: pl.DataFrame) -> pl.Expr:
    """One key per source row of a report frame: its line, else its id (reports without
    either are rows of their own)."""
    return (pl.when(pl.col("line").is_not_null()).then(pl.format("l{}", pl.col("line")))
            .when(pl.col("acta_id").is_not_null()).then(pl.format("i{}", pl.col("acta_id")))
            .otherwise(pl.format("r{}", pl.int_range(pl.len()))))


def rejected_rows(rejected: pl.DataFrame) -> int:
    """How many source rows a rejected-row report frame holds: a row that breaks two rules
    has two reports and is one row."""
    if not rejected.height:
        return 0
    return int(rejected.select(_row_key(rejected).n_unique()).item())


def rejected_by_row(rejected: pl.DataFrame) -> list[dict[str, object]]:
    """The rejected rows, one entry per source row in line order, with every rule it
    broke: ``line``, ``acta_id``, ``rules`` and the messages joined (``message_es``,
    ``message_en``)."""
    if not rejected.height:
        return []
    grouped = (rejected.with_row_index("__i").with_columns(_row_key(rejected).alias("__k"))
               .group_by("__k", maintain_order=True)
               .agg(pl.col("line").first(), pl.col("acta_id").first(),
                    pl.col("rule").unique(maintain_order=True),
                    pl.col("message_es").unique(maintain_order=True).str.join("; "),
                    pl.col("message_en").unique(maintain_order=True).str.join("; "),
                    pl.col("__i").min())
               .sort("line", "__i", nulls_last=True))
    return grouped.select("line", "acta_id", pl.col("rule").alias("rules"), "message_es",
                          "message_en").to_dicts()


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
    def n_rejected(self) -> int:
        """Rejected source rows (each once, whatever the number of rules it broke)."""
        return rejected_rows(self.rejected)

    @property
    def snapshot_id(self) -> str:
        if self.part is None:
            return self.source_sha256
        return sha256_bytes(f"{self.source_sha256}:{self.part}".encode())

    def __post_init__(self) -> None:
        base = ACTA_COLUMNS if self.kind is SnapshotKind.ACTAS else UNIT_COLUMNS
        expected = list(base) + self.contest.candidate_columns
        if self.kind is SnapshotKind.UNITS and self.frame.columns == [*expected, VOTE_TYPE]:
            expected.append(VOTE_TYPE)  # a unit published in one row per vote type
        if self.frame.columns != expected:
            raise ValueError(
                f"parser {self.parser} produced columns {self.frame.columns}, "
                f"expected {expected}"
            )
        check_limits(self)


#: text columns of a snapshot frame that hold ids, codes or names
_TEXT_COLUMNS: Final = ("acta_id", "area1_code", "area2_code", "area3_code", "polling_place",
                        "unit_code", "unit_name", "parent_code", "code", "name", VOTE_TYPE)


def _first_bad_text(frame: pl.DataFrame, columns: Iterable[str]) -> tuple[str, int] | None:
    """(column, row index) of the first value holding a refused control character."""
    cols = [c for c in columns if c in frame.columns and frame.schema[c] == pl.String]
    if not cols:
        return None
    hits = frame.select([pl.col(c).str.contains(CONTROL_CLASS).fill_null(False).any()
                         for c in cols]).row(0)
    for c, hit in zip(cols, hits, strict=True):
        if hit:  # where: only in the column that has one (one pass less over the others)
            return c, int(frame.select(pl.col(c).str.contains(CONTROL_CLASS).fill_null(False)
                                       .arg_max()).item())
    return None


def check_limits(snap: ParsedSnapshot) -> None:
    """The limits every stored snapshot keeps (docs/formats.md, "Limits"), whatever its
    source: no control character in an id, code, name or label; no acta id a spreadsheet
    would run as a formula; no count above :data:`~escrutinio.sources.sanitize.MAX_COUNT`.
    Raises :class:`IngestError` naming the file, the row and the field."""
    name = snap.source_uri
    frame = snap.frame

    def where(field: str, row: int | None) -> Location:
        line = None
        if row is not None and "__line" in frame.columns:
            line = int(frame["__line"][row])
        return Location(name, line, field)

    def refuse_control(field: str, value: str, row: int | None) -> None:
        at = control_char(value) or 0
        ident = ""
        if row is not None and "acta_id" in frame.columns and field != "acta_id":
            ident = f" (acta {frame['acta_id'][row]!r})"
        ch = describe_char(value[at]) if value else "?"
        raise IngestError(
            where(field, row), "control_character",
            f"{value[:60]!r}{ident} contiene el carácter de control {ch} (NUL, saltos de "
            "línea y marcas de dirección no se admiten en ids ni nombres)",
            f"{value[:60]!r}{ident} holds the control character {ch} (NUL, line breaks and "
            "direction overrides are not allowed in ids or names)")

    bad = _first_bad_text(frame, _TEXT_COLUMNS)
    if bad is not None:
        refuse_control(bad[0], str(frame[bad[0]][bad[1]]), bad[1])
    if snap.geography is not None:
        bad = _first_bad_text(snap.geography, _TEXT_COLUMNS)
        if bad is not None:
            refuse_control(f"geography.{bad[0]}", str(snap.geography[bad[0]][bad[1]]), None)
    c = snap.contest
    for what, value in [("contest.id", c.id), ("contest.name", c.name), ("label", snap.label),
                        *[(f"candidates.{k.code}", f"{k.code}{k.name}{k.party}")
                          for k in c.candidates]]:
        if value and control_char(value) is not None:
            refuse_control(what, value, None)
    if "acta_id" in frame.columns:
        formula = frame.select(pl.col("acta_id").str.contains(FORMULA_PATTERN)
                               .fill_null(False).arg_true().first()).item()
        if formula is not None:
            value = frame["acta_id"][formula]
            raise IngestError(
                where("acta_id", formula), "formula_id",
                f"el id de acta {value[:60]!r} empieza con =, +, - o @: una hoja de cálculo "
                "lo ejecutaría como fórmula",
                f"the acta id {value[:60]!r} starts with =, +, - or @: a spreadsheet would "
                "run it as a formula")
    ints = [k for k, t in frame.schema.items() if t.is_integer() and k != "__line"]
    if ints:
        peaks = frame.select([pl.col(k).abs().max().alias(k) for k in ints]).row(0)
        for k, peak in zip(ints, peaks, strict=True):
            if peak is not None and peak > MAX_COUNT:
                row = frame.select((pl.col(k).abs() > MAX_COUNT).arg_true().first()).item()
                raise IngestError(
                    where(k, row), "count_too_large",
                    f"la cifra {frame[k][row]:,} supera el máximo de {MAX_COUNT:,} por fila",
                    f"the count {frame[k][row]:,} exceeds the maximum of {MAX_COUNT:,} per "
                    "row")


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
