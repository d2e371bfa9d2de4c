"""The generic interchange format: CSV or Parquet plus a contest sidecar (docs/formats.md).

Any country that publishes results per polling station (Chile, Argentina, Mexico,
Venezuela...) or per reporting unit fits through this one documented format:

* **per-acta** files — one row per acta / polling station: ``acta_id, status,
  area1_code, electors, cast, blank, null`` and one ``v_<code>`` column per candidate,
  plus optional columns (:data:`ACTA_OPTIONAL`);
* **per-unit** files — one row per reporting unit with counts of actas by status
  (:data:`UNIT_REQUIRED`, :data:`UNIT_OPTIONAL`);
* a **sidecar** JSON ``<data file name>.contest.json`` (for ``actas.csv.gz``:
  ``actas.csv.gz.contest.json``) declaring the contest, its candidates in ballot order
  and the moment the data describes (``as_of``).

:func:`parse_tabular` reads either format (CSV, gzipped CSV or Parquet, told apart by
their magic bytes) and validates it like every other source: file-level problems raise
:class:`~escrutinio.errors.IngestError` naming file, line (Parquet: data row), field and
rule; row-level problems reject or flag rows (``verify.checks`` for actas,
``verify.unit_checks`` for units). :func:`write_tabular` exports any canonical frame so
that it reads back identically.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl

from escrutinio.domain import (
    ACTA_COLUMNS,
    STATUS_LABELS,
    UNIT_COLUMNS,
    ActaStatus,
    Contest,
    ContestKind,
    Level,
    SnapshotKind,
)
from escrutinio.errors import IngestError, Location
from escrutinio.sources.base import (
    ParsedSnapshot,
    cast_ints,
    conform,
    read_csv_strict,
    read_source,
    sha256_bytes,
)
from escrutinio.verify.checks import validate_actas
from escrutinio.verify.unit_checks import validate_units

FORMAT: Final = "escrutinio-tabular"
FORMAT_VERSION: Final = 1
SIDECAR_SUFFIX: Final = ".contest.json"
PARQUET_MAGIC: Final = b"PAR1"

ACTA_REQUIRED: Final = ("acta_id", "status", "area1_code", "electors", "cast", "blank", "null")
ACTA_OPTIONAL: Final = ("area1_name", "area2_code", "area2_name", "area3_code", "area3_name",
                        "abroad", "polling_place", "observation", "resolved", "challenged")
UNIT_REQUIRED: Final = ("level", "unit_code", "actas_total", "actas_counted", "electors",
                        "cast", "blank", "null")
UNIT_OPTIONAL: Final = ("unit_name", "parent_code", "abroad", "actas_processed", "actas_jee",
                        "actas_pending", "actas_annulled", "actas_not_installed",
                        "electors_total", "challenged")

TEXT_COLUMNS: Final = frozenset({
    "acta_id", "status", "area1_code", "area1_name", "area2_code", "area2_name", "area3_code",
    "area3_name", "polling_place", "observation", "level", "unit_code", "unit_name",
    "parent_code",
})
BOOL_COLUMNS: Final = frozenset({"abroad", "resolved"})
# every other column (counts and v_<code>) is an integer

_TRUE = ("true", "t", "1", "yes", "y", "si", "sí", "verdadero")
_FALSE = ("false", "f", "0", "no", "n", "falso")
_BOOL_WORDS: Final = {w: True for w in _TRUE} | {w: False for w in _FALSE}


def _status_aliases() -> dict[str, str]:
    out: dict[str, str] = {}
    for s in ActaStatus:
        es, en = STATUS_LABELS[s]
        for word in (s.value, s.value.replace("_", " "), es, en):
            out[word.lower()] = s.value
    out |= {"en el jee": ActaStatus.JEE.value, "enviada al jee": ActaStatus.JEE.value,
            "no instalada": ActaStatus.NOT_INSTALLED.value}
    return out


#: accepted spellings of each status (matched after trimming, lower-casing and
#: collapsing spaces): the ActaStatus value, its Spanish and English labels
STATUS_ALIASES: Final = _status_aliases()

_LEVEL_ORDER: Final = [lv.value for lv in Level]
_GEO_SCHEMA: Final = {"code": pl.String(), "name": pl.String(), "level": pl.String(),
                      "parent": pl.String(), "abroad": pl.Boolean(), "alt_code": pl.String()}


class RowLocation(Location):
    """A place in a Parquet file: ``line`` holds the 1-based data row (no header line)."""

    __slots__ = ()

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(f"fila/row {self.line}")
        if self.field is not None:
            parts.append(f"campo/field '{self.field}'")
        return ", ".join(parts)


# --- sidecar -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sidecar:
    """The contest sidecar of a data file (schema in docs/formats.md)."""

    path: str
    contest: Contest
    as_of: datetime
    sha256: str
    kind: SnapshotKind | None = None
    source_uri: str | None = None
    label: str | None = None
    area_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def sidecar_path_for(data_path: str | Path) -> Path:
    """``<data file name>.contest.json`` in the same folder."""
    p = Path(data_path)
    return p.with_name(p.name + SIDECAR_SUFFIX)


_SIDECAR_KEYS = {"format", "format_version", "kind", "contest", "as_of", "source_uri", "label",
                 "area_labels"}
_CONTEST_KEYS = {"id", "name", "kind", "country", "date", "majority_threshold", "candidates"}
_CANDIDATE_KEYS = {"code", "name", "party", "authority_code"}
_CODE_RE = re.compile(r"^[a-z0-9_]+$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _parse_as_of(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return dt.astimezone(UTC)


def read_sidecar(path: str | Path) -> Sidecar:
    """Read and validate a contest sidecar; every problem names the JSON field."""
    name = str(path)

    def bad(fld: str, es: str, en: str) -> IngestError:
        return IngestError(Location(name, None, fld), "sidecar_invalid", es, en)

    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise IngestError(
            Location(name), "sidecar_missing",
            "falta el archivo de contienda (JSON con candidatos y fecha); créelo junto a los "
            "datos con este nombre o indíquelo explícitamente",
            "the contest file (JSON with candidates and timestamp) is missing; create it next "
            "to the data with this name or pass it explicitly",
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise IngestError(Location(name, line), "encoding",
                          "el JSON no es UTF-8 válido", "the JSON is not valid UTF-8") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IngestError(Location(name, exc.lineno), "sidecar_json",
                          f"JSON ilegible: {exc.msg} (columna {exc.colno})",
                          f"unreadable JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(d, dict):
        raise bad("*", "el JSON debe ser un objeto", "the JSON must be an object")
    for k in d:
        if k not in _SIDECAR_KEYS:
            raise bad(k, f"clave no reconocida {k!r}", f"unrecognised key {k!r}")
    if "format" in d and d["format"] != FORMAT:
        raise bad("format", f"'format' debe ser {FORMAT!r}", f"'format' must be {FORMAT!r}")
    if "format_version" in d and d["format_version"] != FORMAT_VERSION:
        raise bad("format_version", f"versión de formato no soportada: {d['format_version']!r}",
                  f"unsupported format version: {d['format_version']!r}")
    kind = None
    if d.get("kind") is not None:
        if d["kind"] not in ("actas", "units"):
            raise bad("kind", "'kind' debe ser 'actas' o 'units'",
                      "'kind' must be 'actas' or 'units'")
        kind = SnapshotKind(d["kind"])
    if "as_of" not in d:
        raise bad("as_of", "falta 'as_of' (momento que describen los datos, ISO 8601 con zona)",
                  "'as_of' is missing (moment the data describes, ISO 8601 with a zone)")
    as_of = _parse_as_of(d["as_of"])
    if as_of is None:
        raise bad("as_of", f"'as_of' debe ser ISO 8601 con zona horaria, p. ej. "
                  f"2021-06-17T00:00:00Z (se encontró {d['as_of']!r})",
                  f"'as_of' must be ISO 8601 with a time zone, e.g. 2021-06-17T00:00:00Z "
                  f"(found {d['as_of']!r})")
    for k in ("source_uri", "label"):
        if d.get(k) is not None and not isinstance(d[k], str):
            raise bad(k, f"'{k}' debe ser texto", f"'{k}' must be text")
    labels = d.get("area_labels") or {}
    if not isinstance(labels, dict):
        raise bad("area_labels", "'area_labels' debe ser un objeto",
                  "'area_labels' must be an object")
    for k, v in labels.items():
        ok = (k in ("area1", "area2", "area3") and isinstance(v, dict)
              and set(v) <= {"es", "en"} and all(isinstance(x, str) for x in v.values()))
        if not ok:
            raise bad(f"area_labels.{k}",
                      "use area1/area2/area3 con textos {\"es\": ..., \"en\": ...}",
                      "use area1/area2/area3 with texts {\"es\": ..., \"en\": ...}")
    contest = _contest_from_json(d.get("contest"), bad)
    return Sidecar(path=name, contest=contest, as_of=as_of, sha256=sha256_bytes(raw), kind=kind,
                   source_uri=d.get("source_uri"), label=d.get("label"), area_labels=labels)


def _contest_from_json(c: Any, bad: Any) -> Contest:
    if not isinstance(c, dict):
        raise bad("contest", "falta el objeto 'contest'", "the 'contest' object is missing")
    for k in c:
        if k not in _CONTEST_KEYS:
            raise bad(f"contest.{k}", f"clave no reconocida {k!r}", f"unrecognised key {k!r}")
    for k in ("id", "name", "kind", "country", "date", "candidates"):
        if k not in c:
            raise bad(f"contest.{k}", f"falta 'contest.{k}'", f"'contest.{k}' is missing")
    if not isinstance(c["id"], str) or not _ID_RE.match(c["id"]):
        raise bad("contest.id", "identificador inválido (letras, dígitos, '.', '_', '-')",
                  "invalid identifier (letters, digits, '.', '_', '-')")
    if not isinstance(c["name"], str) or not c["name"].strip():
        raise bad("contest.name", "nombre vacío", "empty name")
    if c["kind"] not in [k.value for k in ContestKind]:
        raise bad("contest.kind", "'kind' debe ser 'runoff' o 'first_round'",
                  "'kind' must be 'runoff' or 'first_round'")
    if not isinstance(c["country"], str) or not re.match(r"^[A-Z]{2}$", c["country"]):
        raise bad("contest.country", "país: código ISO 3166-1 de dos letras mayúsculas",
                  "country: two-letter upper-case ISO 3166-1 code")
    try:
        date.fromisoformat(c["date"])
    except (TypeError, ValueError):
        raise bad("contest.date", "fecha inválida (AAAA-MM-DD)",
                  "invalid date (YYYY-MM-DD)") from None
    mt = c.get("majority_threshold")
    if mt is not None and (isinstance(mt, bool) or not isinstance(mt, (int, float))
                           or not 0 < mt <= 1):
        raise bad("contest.majority_threshold", "debe ser null o una fracción en (0, 1]",
                  "must be null or a fraction in (0, 1]")
    cands = c["candidates"]
    if not isinstance(cands, list) or not cands:
        raise bad("contest.candidates", "lista de candidatos vacía o inválida",
                  "empty or invalid list of candidates")
    for i, cand in enumerate(cands):
        where = f"contest.candidates[{i}]"
        if not isinstance(cand, dict):
            raise bad(where, "cada candidato es un objeto", "each candidate is an object")
        for k in cand:
            if k not in _CANDIDATE_KEYS:
                raise bad(f"{where}.{k}", f"clave no reconocida {k!r}", f"unrecognised key {k!r}")
        code = cand.get("code")
        if not isinstance(code, str) or not _CODE_RE.match(code):
            raise bad(f"{where}.code",
                      f"código inválido {code!r}: minúsculas ASCII, dígitos y '_'",
                      f"invalid code {code!r}: lower-case ASCII, digits and '_'")
        if not isinstance(cand.get("name"), str) or not cand["name"].strip():
            raise bad(f"{where}.name", "nombre vacío", "empty name")
        for k in ("party", "authority_code"):
            if cand.get(k) is not None and not isinstance(cand[k], str):
                raise bad(f"{where}.{k}", f"'{k}' debe ser texto", f"'{k}' must be text")
    try:
        return Contest.from_dict(c)
    except ValueError as exc:
        raise bad("contest.candidates", f"contienda inválida: {exc}",
                  f"invalid contest: {exc}") from None


def sidecar_dict(
    contest: Contest, as_of: datetime | str, *, kind: SnapshotKind | None = None,
    source_uri: str | None = None, label: str | None = None,
    area_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, object]:
    """The JSON object of a sidecar, keys in documented order."""
    when = _parse_as_of(as_of) if isinstance(as_of, str) else as_of.astimezone(UTC)
    if when is None:
        raise ValueError(f"as_of must be ISO 8601 with a time zone: {as_of!r}")
    d: dict[str, object] = {"format": FORMAT, "format_version": FORMAT_VERSION}
    if kind is not None:
        d["kind"] = kind.value
    d["contest"] = contest.to_dict()
    d["as_of"] = when.isoformat().replace("+00:00", "Z")
    if source_uri is not None:
        d["source_uri"] = source_uri
    if label is not None:
        d["label"] = label
    if area_labels:
        d["area_labels"] = {k: dict(v) for k, v in area_labels.items()}
    return d


# --- reading -------------------------------------------------------------------------


def _columns_for(kind: SnapshotKind) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if kind is SnapshotKind.ACTAS:
        return ACTA_REQUIRED, ACTA_OPTIONAL
    return UNIT_REQUIRED, UNIT_OPTIONAL


def _detect_kind(columns: Sequence[str], loc: Location, wanted: SnapshotKind | None,
                 side: Sidecar) -> SnapshotKind:
    """Per-acta or per-unit: ``wanted`` (the caller's choice) wins, else the columns decide
    and must agree with the sidecar's ``kind`` when it declares one."""
    if wanted is not None:
        return wanted
    has_acta = "acta_id" in columns
    has_unit = "unit_code" in columns or "level" in columns
    if has_acta and has_unit:
        raise IngestError(loc, "ambiguous_format",
                          "el archivo tiene a la vez 'acta_id' y 'level'/'unit_code'",
                          "the file has both 'acta_id' and 'level'/'unit_code'")
    if not has_acta and not has_unit:
        raise IngestError(
            Location(loc.file, loc.line, "acta_id"), "unknown_format",
            "no es el formato genérico: falta 'acta_id' (una fila por acta) o 'level' y "
            "'unit_code' (una fila por unidad); vea docs/formats.md",
            "not the generic format: 'acta_id' (one row per acta) or 'level' and 'unit_code' "
            "(one row per unit) is missing; see docs/formats.md",
        )
    kind = SnapshotKind.ACTAS if has_acta else SnapshotKind.UNITS
    if side.kind is not None and kind is not side.kind:
        raise IngestError(Location(side.path, None, "kind"), "kind_mismatch",
                          f"el archivo de contienda declara '{side.kind.value}' y los datos "
                          f"son '{kind.value}'",
                          f"the contest file declares '{side.kind.value}' but the data are "
                          f"'{kind.value}'")
    return kind


def _check_candidates(columns: Sequence[str], contest: Contest, loc: Location,
                      sidecar: str) -> None:
    expected = contest.candidate_columns
    present = [c for c in columns if c.startswith("v_")]
    for c in expected:
        if c not in present:
            raise IngestError(
                Location(loc.file, loc.line, c), "missing_candidate_column",
                f"falta la columna {c!r} del candidato declarado en {sidecar}",
                f"column {c!r} of a candidate declared in {sidecar} is missing",
            )
    for c in present:
        if c not in expected:
            raise IngestError(
                Location(loc.file, loc.line, c), "unknown_candidate_column",
                f"la columna {c!r} no corresponde a ningún candidato de {sidecar}",
                f"column {c!r} matches no candidate declared in {sidecar}",
            )


def _check_header(columns: Sequence[str], required: Sequence[str], optional: Sequence[str],
                  loc: Location) -> None:
    """The header rules of ``read_csv_strict``, for Parquet columns."""
    missing = [c for c in required if c not in columns]
    if missing:
        raise IngestError(
            Location(loc.file, loc.line, ", ".join(missing)), "missing_columns",
            f"faltan columnas obligatorias: {', '.join(missing)}",
            f"required columns are missing: {', '.join(missing)}",
        )
    known = set(required) | set(optional)
    extra = [c for c in columns if c not in known]
    if extra:
        raise IngestError(
            Location(loc.file, loc.line, ", ".join(extra)), "unexpected_columns",
            f"columnas no reconocidas: {', '.join(extra)}",
            f"unrecognised columns: {', '.join(extra)}",
        )


def _first_bad(df: pl.DataFrame, mask: pl.Expr, column: str) -> tuple[int, object, int]:
    bad = df.filter(mask)
    return int(bad["__line"][0]), bad[column][0], bad.height


def _parse_bools(df: pl.DataFrame, file: str, loc_type: type[Location]) -> pl.DataFrame:
    for c in [c for c in df.columns if c in BOOL_COLUMNS]:
        if df.schema[c] == pl.Boolean:
            continue
        text = pl.col(c).cast(pl.String).str.strip_chars().str.to_lowercase()
        parsed = text.replace_strict(_BOOL_WORDS, default=None, return_dtype=pl.Boolean)
        out = df.select(parsed.alias(c))[c]
        mask = pl.col(c).is_not_null() & (pl.col(c).cast(pl.String).str.strip_chars() != "")
        bad_mask = mask & out.is_null()
        if df.select(bad_mask.any()).item():
            line, value, n = _first_bad(df, bad_mask, c)
            raise IngestError(
                loc_type(file, line, c), "not_a_boolean",
                f"se esperaba verdadero/falso (true/false, 1/0, sí/no) y se encontró {value!r} "
                f"({n} filas con este problema)",
                f"expected true/false (true/false, 1/0, yes/no), found {value!r} "
                f"({n} rows with this problem)",
            )
        df = df.with_columns(out)
    return df


def _coerce_parquet(df: pl.DataFrame, file: str) -> pl.DataFrame:
    """Bring typed Parquet columns to the canonical types; name field and row on error."""
    for c in [c for c in df.columns if c != "__line"]:
        dt = df.schema[c]
        if dt == pl.Null:
            target = (pl.String if c in TEXT_COLUMNS else pl.Boolean if c in BOOL_COLUMNS
                      else pl.Int64)
            df = df.with_columns(pl.col(c).cast(target))
            continue
        if c in TEXT_COLUMNS:
            if dt in (pl.String, pl.Categorical) or isinstance(dt, pl.Enum):
                df = df.with_columns(pl.col(c).cast(pl.String))
                continue
            line, value, _ = _first_bad(df, pl.col(c).is_not_null(), c)
            raise IngestError(
                RowLocation(file, line, c), "wrong_type",
                f"se esperaba texto y la columna es {dt} (valor {value!r}); guarde los códigos "
                "como texto para conservar los ceros iniciales",
                f"expected text but the column is {dt} (value {value!r}); store codes as text "
                "to keep leading zeros",
            )
        if c in BOOL_COLUMNS:
            if dt == pl.Boolean:
                continue
            if dt == pl.String or dt.is_integer():
                df = _parse_bools(df.with_columns(pl.col(c).cast(pl.String)), file, RowLocation)
                continue
            line, value, _ = _first_bad(df, pl.col(c).is_not_null(), c)
            raise IngestError(RowLocation(file, line, c), "wrong_type",
                              f"se esperaba verdadero/falso y la columna es {dt}",
                              f"expected true/false but the column is {dt}")
        # integer columns
        if dt.is_integer():
            cast = df[c].cast(pl.Int64, strict=False)
            bad_mask = pl.col(c).is_not_null() & cast.is_null()
            if df.select(bad_mask.any()).item():
                line, value, n = _first_bad(df, bad_mask, c)
                raise IngestError(RowLocation(file, line, c), "not_an_integer",
                                  f"número fuera de rango {value!r} ({n} filas)",
                                  f"number out of range {value!r} ({n} rows)")
            df = df.with_columns(cast)
        elif dt.is_float():
            x = pl.col(c)
            bad_mask = x.is_not_null() & (~x.is_finite() | (x != x.round(0)))
            if df.select(bad_mask.any()).item():
                line, value, n = _first_bad(df, bad_mask, c)
                raise IngestError(
                    RowLocation(file, line, c), "not_an_integer",
                    f"se esperaba un número entero y se encontró {value!r} ({n} filas con "
                    "este problema)",
                    f"expected an integer, found {value!r} ({n} rows with this problem)")
            df = df.with_columns(x.cast(pl.Int64))
        elif dt == pl.String:
            try:
                df = cast_ints(df, [c], file)
            except IngestError as exc:
                raise IngestError(RowLocation(file, exc.location.line, c), exc.rule,
                                  exc.detail_es, exc.detail_en) from None
        else:
            line, value, _ = _first_bad(df, pl.col(c).is_not_null(), c)
            raise IngestError(RowLocation(file, line, c), "not_an_integer",
                              f"se esperaba un número entero y la columna es {dt} "
                              f"(valor {value!r})",
                              f"expected an integer but the column is {dt} (value {value!r})")
    return df


@dataclass(frozen=True, slots=True)
class _Read:
    frame: pl.DataFrame  # typed columns + __line
    kind: SnapshotKind
    sha256: str
    n_bytes: int
    fmt: str  # "csv" | "parquet"


def _read_csv(path: Path, sidecar_getter: Any, wanted: SnapshotKind | None
              ) -> tuple[_Read, Sidecar]:
    src = read_source(path)
    header_line = src.text.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
    header = next(csv.reader([header_line]))
    side: Sidecar = sidecar_getter()
    loc = Location(src.path, 1)
    kind = _detect_kind(header, loc, wanted, side)
    _check_candidates(header, side.contest, loc, side.path)
    req, opt = _columns_for(kind)
    df = read_csv_strict(src, required=[*req, *side.contest.candidate_columns], optional=opt)
    ints = [c for c in df.columns if c not in TEXT_COLUMNS and c not in BOOL_COLUMNS
            and c != "__line"]
    df = cast_ints(df, ints, src.path)
    df = _parse_bools(df, src.path, Location)
    return _Read(df, kind, src.sha256, len(src.raw), "csv"), side


def _read_parquet(path: Path, raw: bytes, sidecar_getter: Any, wanted: SnapshotKind | None
                  ) -> tuple[_Read, Sidecar]:
    name = str(path)
    try:
        df = pl.read_parquet(io.BytesIO(raw))
    except Exception as exc:  # polars/arrow raise several types for a damaged file
        raise IngestError(Location(name), "parquet_corrupt",
                          f"el archivo Parquet está truncado o dañado ({exc})",
                          f"the Parquet file is truncated or corrupt ({exc})") from None
    side: Sidecar = sidecar_getter()
    loc = RowLocation(name, None)
    kind = _detect_kind(df.columns, loc, wanted, side)
    _check_candidates(df.columns, side.contest, loc, side.path)
    req, opt = _columns_for(kind)
    _check_header(df.columns, [*req, *side.contest.candidate_columns], opt, loc)
    if df.height == 0:
        raise IngestError(RowLocation(name, 1), "no_rows", "el archivo no tiene filas de datos",
                          "the file has no data rows")
    df = df.with_row_index("__line", offset=1).with_columns(pl.col("__line").cast(pl.Int64))
    df = _coerce_parquet(df, name)
    return _Read(df, kind, sha256_bytes(raw), len(raw), "parquet"), side


def _status_expr() -> pl.Expr:
    raw = pl.col("status").str.strip_chars()
    key = raw.str.to_lowercase().str.replace_all(r"\s+", " ")
    mapped = key.replace_strict(STATUS_ALIASES, default=None, return_dtype=pl.String)
    # an unknown status is kept verbatim: validate_actas rejects it as unknown_status
    return (pl.when(raw.is_null() | (raw == "")).then(None)
            .otherwise(pl.coalesce(mapped, raw)).alias("status"))


def _acta_geography(df: pl.DataFrame) -> pl.DataFrame | None:
    parts = []
    for k in (1, 2, 3):
        code, name = f"area{k}_code", f"area{k}_name"
        if code not in df.columns or name not in df.columns:
            continue
        # parent: the nearest enclosing area that is known (Chile: area3 -> area1)
        up = [pl.col(f"area{j}_code") for j in range(k - 1, 0, -1)
              if f"area{j}_code" in df.columns]
        parent = pl.coalesce(up) if up else pl.lit(None, pl.String)
        parts.append(
            df.filter(pl.col(code).is_not_null())
            .select(pl.col(code).alias("code"), pl.col(name).alias("name"),
                    pl.lit(f"area{k}").alias("level"), parent.alias("parent"),
                    pl.col("abroad"), pl.lit(None, pl.String).alias("alt_code"))
            .unique(subset=["code"], keep="first", maintain_order=True)
        )
    if not parts:
        return None
    return pl.concat(parts).cast(_GEO_SCHEMA).sort("level", "code")  # type: ignore[arg-type]


def _unit_geography(df: pl.DataFrame) -> pl.DataFrame | None:
    if "unit_name" not in df.columns:
        return None
    parent = pl.col("parent_code") if "parent_code" in df.columns else pl.lit(None, pl.String)
    geo = (df.filter((pl.col("level") != Level.NATIONAL.value) & pl.col("level").is_in(
        _LEVEL_ORDER) & pl.col("unit_code").is_not_null())
        .select(pl.col("unit_code").alias("code"), pl.col("unit_name").alias("name"),
                pl.col("level"), parent.alias("parent"), pl.col("abroad"),
                pl.lit(None, pl.String).alias("alt_code"))
        .unique(subset=["code", "level"], keep="first", maintain_order=True))
    return geo.cast(_GEO_SCHEMA).sort("level", "code")  # type: ignore[arg-type]


def parse_tabular(
    path: str | Path, contest_file: str | Path | None = None, *,
    kind: SnapshotKind | str | None = None, label: str = "",
) -> ParsedSnapshot:
    """Parse a file in the generic format (CSV, CSV.gz or Parquet) with its sidecar.

    ``contest_file`` defaults to ``<path>.contest.json``. ``kind`` forces per-acta or
    per-unit reading; by default the columns decide (``acta_id`` vs ``level``/``unit_code``).
    Raises :class:`IngestError` for anything that prevents reading the file; rows that
    break a rule are rejected (kept in ``ParsedSnapshot.rejected``) or flagged.
    """
    p = Path(path)
    name = str(path)
    wanted = SnapshotKind(kind) if kind is not None else None
    side_path = Path(contest_file) if contest_file is not None else sidecar_path_for(p)
    cache: list[Sidecar] = []

    def get_sidecar() -> Sidecar:
        if not cache:
            cache.append(read_sidecar(side_path))
        return cache[0]

    try:
        with p.open("rb") as fh:
            head = fh.read(4)
    except FileNotFoundError:
        raise IngestError(Location(name), "file_not_found", "el archivo no existe",
                          "the file does not exist") from None
    if head == PARQUET_MAGIC:
        read, side = _read_parquet(p, p.read_bytes(), get_sidecar, wanted)
    elif p.name.lower().endswith(".parquet"):
        if not head:
            raise IngestError(Location(name), "empty_file", "el archivo está vacío",
                              "the file is empty")
        raise IngestError(Location(name), "parquet_corrupt",
                          "el archivo .parquet no empieza con la marca PAR1",
                          "the .parquet file does not start with the PAR1 marker")
    else:
        read, side = _read_csv(p, get_sidecar, wanted)
    contest = side.contest
    df = read.frame
    metadata = {"bytes": str(read.n_bytes), "format": read.fmt, "sidecar": side.path,
                "sidecar_sha256": side.sha256}
    if side.area_labels:
        metadata["area_labels"] = json.dumps(side.area_labels, ensure_ascii=False,
                                             sort_keys=True)
    common = {"contest": contest, "kind": read.kind, "as_of": side.as_of,
              "source_uri": side.source_uri or name, "source_sha256": read.sha256,
              "parser": f"tabular.{read.fmt}", "label": label or side.label or p.name,
              "metadata": metadata}
    if read.kind is SnapshotKind.ACTAS:
        fills = [pl.lit(False).alias(c) for c in ("abroad", "resolved") if c not in df.columns]
        df = df.with_columns(_status_expr(), *fills)
        canon = conform(df, contest, SnapshotKind.ACTAS).with_columns(df["__line"])
        result = validate_actas(canon, contest)
        return ParsedSnapshot(frame=result.frame, rejected=result.rejected,
                              findings=result.findings, geography=_acta_geography(df),
                              **common)
    level = pl.col("level").str.strip_chars().str.to_lowercase()
    df = df.with_columns(level.alias("level")).with_columns(
        pl.when(pl.col("level") == Level.NATIONAL.value)
        .then(pl.col("unit_code").fill_null("")).otherwise(pl.col("unit_code"))
        .alias("unit_code"),
        *([] if "abroad" in df.columns else [pl.lit(None, pl.Boolean).alias("abroad")]),
    )
    canon = conform(df, contest, SnapshotKind.UNITS).with_columns(df["__line"])
    result = validate_units(canon, contest)
    present = set(result.frame["level"].unique().to_list())
    finest = next((lv for lv in reversed(_LEVEL_ORDER) if lv in present), None)
    return ParsedSnapshot(frame=result.frame, rejected=result.rejected,
                          findings=result.findings, geography=_unit_geography(df),
                          level=finest, **common)


# --- writing -------------------------------------------------------------------------


def _format_of(path: Path) -> str:
    n = path.name.lower()
    for ext in (".csv.gz", ".csv", ".parquet"):
        if n.endswith(ext):
            return ext[1:]
    raise ValueError(f"unsupported extension for {path} (use .csv, .csv.gz or .parquet)")


def _names(codes: pl.Expr, geo: pl.DataFrame, level: str) -> pl.Expr:
    g = geo.filter(pl.col("level") == level).unique(subset=["code"], keep="first",
                                                    maintain_order=True)
    return codes.replace_strict(g["code"], g["name"], default=None, return_dtype=pl.String)


def write_tabular(
    frame: pl.DataFrame, contest: Contest, path: str | Path, as_of: datetime | str, *,
    geography: pl.DataFrame | None = None, source_uri: str | None = None,
    label: str | None = None, area_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[Path, Path]:
    """Write a canonical acta or unit frame in the generic format, plus its sidecar.

    The format follows the extension (``.csv``, ``.csv.gz``, ``.parquet``). With
    ``geography`` (code, name, level, parent...) the area names are written too, so that
    :func:`parse_tabular` gives back the same frame and the same names. Gzip output is
    byte-for-byte reproducible (no timestamp in the header), so an export of the same
    frame always has the same snapshot id. Returns (data path, sidecar path).
    """
    p = Path(path)
    fmt = _format_of(p)
    if "acta_id" in frame.columns:
        kind = SnapshotKind.ACTAS
    elif "unit_code" in frame.columns:
        kind = SnapshotKind.UNITS
    else:
        raise ValueError("frame is neither an acta frame (acta_id) nor a unit frame (unit_code)")
    base = ACTA_COLUMNS if kind is SnapshotKind.ACTAS else UNIT_COLUMNS
    missing = [c for c in [*base, *contest.candidate_columns] if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks canonical columns: {missing}")
    out = conform(frame, contest, kind)
    if geography is not None and geography.height:
        if kind is SnapshotKind.ACTAS:
            out = out.with_columns(
                _names(pl.col(f"area{k}_code"), geography, f"area{k}").alias(f"area{k}_name")
                for k in (1, 2, 3))
            order = ["acta_id", "status"]
            for k in (1, 2, 3):
                order += [f"area{k}_code", f"area{k}_name"]
            order += [c for c in base if c not in order]
        else:
            g = geography.unique(subset=["code", "level"], keep="first", maintain_order=True)
            key = pl.col("level") + pl.lit("\x1f") + pl.col("unit_code")
            gkey = g["level"] + "\x1f" + g["code"]
            out = out.with_columns(
                key.replace_strict(gkey, g["name"], default=None,
                                   return_dtype=pl.String).alias("unit_name"),
                key.replace_strict(gkey, g["parent"], default=None,
                                   return_dtype=pl.String).alias("parent_code"))
            order = ["level", "unit_code", "unit_name", "parent_code"]
            order += [c for c in base if c not in order]
    else:
        order = list(base)
    out = out.select([*order, *contest.candidate_columns])
    p.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        out.write_parquet(p)
    else:
        data = out.write_csv().encode("utf-8")
        p.write_bytes(gzip.compress(data, compresslevel=6, mtime=0) if fmt == "csv.gz" else data)
    side = sidecar_path_for(p)
    side.write_text(json.dumps(sidecar_dict(contest, as_of, kind=kind, source_uri=source_uri,
                                            label=label, area_labels=area_labels),
                               ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return p, side


def write_snapshot(snapshot: ParsedSnapshot, path: str | Path) -> tuple[Path, Path]:
    """Export a parsed or stored snapshot (frame, contest, as_of, geography, label)."""
    labels = snapshot.metadata.get("area_labels")
    return write_tabular(snapshot.frame, snapshot.contest, path, snapshot.as_of,
                         geography=snapshot.geography, source_uri=snapshot.source_uri,
                         label=snapshot.label or None,
                         area_labels=json.loads(labels) if labels else None)
