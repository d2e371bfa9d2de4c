"""The generic interchange format, version 2: CSV (comma, semicolon or tab; UTF-8, or
Latin-1 with a warning), Parquet or JSON, plus a contest sidecar (docs/formats.md; JSON
Schema in ``sources/schema/contest-sidecar.v2.json``).

Any country that publishes results per polling station (Chile, Argentina, Mexico,
Venezuela...) or per reporting unit fits through this one documented format:

* **per-acta** files — one row per acta / polling station: ``acta_id, status,
  area1_code, cast`` and one ``v_<code>`` column per candidate, plus optional columns
  (:data:`ACTA_OPTIONAL`: ``electors``, ``blank`` and ``null`` among them — absent means
  unknown, never 0 — and ``vote_type``, ``ballots_issued``);
* **per-unit** files — one row per reporting unit (:data:`UNIT_REQUIRED`,
  :data:`UNIT_OPTIONAL`, with the source's ``votes_remaining`` / ``pct_votes_counted``);
* **series** files — either of the above with an ``as_of`` or ``cut`` column: one
  snapshot per cut (:func:`parse_tabular_many`), and folders of files (:func:`parse_folder`);
* a **sidecar** JSON ``<data file name>.contest.json`` (for ``actas.csv.gz``:
  ``actas.csv.gz.contest.json``) declaring the contest, its candidates in ballot order,
  the moment the data describes (``as_of``) and optional keys (:data:`SIDECAR_KEYS`);
  unknown keys warn.

:func:`parse_tabular` reads one snapshot, :func:`parse_tabular_many` one or many, and
validates them like every other source: file-level problems raise
:class:`~escrutinio.errors.IngestError` naming file, line (Parquet and JSON: data row),
field and rule; row-level problems reject or flag rows (``verify.checks`` for actas,
``verify.unit_checks`` for units); what is accepted with a caveat is an
``ingest_warning`` finding. What the canonical frames do not hold (vote types, ballots
issued, the source's estimate of what remains, the sidecar's keys) is kept in the
snapshot's metadata. :func:`write_tabular` exports any canonical frame so that it reads
back identically.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import gzip
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any, Final, Literal, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from escrutinio.domain import (
    ACTA_COLUMNS,
    ACTA_ID_PATTERN,
    STATUS_LABELS,
    UNIT_COLUMNS,
    VOTE_TYPE,
    ActaStatus,
    Contest,
    ContestKind,
    Level,
    SnapshotKind,
)
from escrutinio.errors import IngestError, Location
from escrutinio.sources.base import (
    FRACTION_COUNTED_KEY,
    REJECTED_SCHEMA,
    SERIES_FRACTION_KEY,
    ParsedSnapshot,
    SourceBytes,
    cast_ints,
    conform,
    header_fields,
    read_csv_strict,
    read_source,
    sha256_bytes,
)
from escrutinio.verify.checks import validate_actas
from escrutinio.verify.unit_checks import validate_units

FORMAT: Final = "escrutinio-tabular"
FORMAT_VERSION: Final = 2
#: sidecar versions this code reads: 1 (the original keys) and 2 (1 plus the optional keys
#: timezone, court_name, vote_types, seats, previous_round, pct_votes_counted,
#: votes_remaining; unknown keys warn). Schema: ``sources/schema/contest-sidecar.v2.json``
SUPPORTED_VERSIONS: Final = (1, 2)
SIDECAR_SUFFIX: Final = ".contest.json"
#: the JSON Schema (draft 2020-12) of the sidecar, the documentation of read_sidecar
SIDECAR_SCHEMA: Final = (Path(__file__).parent / "schema" / "contest-sidecar.v2.json").resolve()
PARQUET_MAGIC: Final = b"PAR1"

ACTA_REQUIRED: Final = ("acta_id", "area1_code", "cast")
#: without a ``status`` column (final results, as most authorities publish them) an acta
#: with figures is counted and one without is pending — said in a warning, never silent
STATUS_DEFAULT_NOTE: Final = (
    "el archivo no tiene columna 'status': las actas con 'cast' se toman como "
    "contabilizadas y las que no lo tienen como pendientes",
    "the file has no 'status' column: actas with 'cast' are taken as counted and those "
    "without it as pending")
#: a series file (many cuts in one file) has one of these columns: the cut's moment
SERIES_COLUMNS: Final = ("as_of", "cut")
#: figures a country's actas may not have: an absent column is unknown (null), never 0
ABSENT_FIGURES: Final = ("electors", "blank", "null")
ACTA_OPTIONAL: Final = ("status", "area1_name", "area2_code", "area2_name", "area3_code",
                        "area3_name", "abroad", "polling_place", "observation", "resolved",
                        "challenged",
                        *ABSENT_FIGURES, "vote_type", "batch", "ballots_issued",
                        *SERIES_COLUMNS)
UNIT_REQUIRED: Final = ("level", "unit_code", "cast")
UNIT_OPTIONAL: Final = ("unit_name", "parent_code", "abroad", "actas_total", "actas_counted",
                        "actas_processed", "actas_jee", "actas_pending", "actas_annulled",
                        "actas_not_installed", "electors", "electors_total", "blank", "null",
                        "challenged", "votes_remaining", "pct_votes_counted", "vote_type",
                        "batch", *SERIES_COLUMNS)
#: per-unit columns that are not canonical figures: kept in the snapshot's metadata
UNIT_ESTIMATES: Final = ("votes_remaining", "pct_votes_counted")

TEXT_COLUMNS: Final = frozenset({
    "acta_id", "status", "area1_code", "area1_name", "area2_code", "area2_name", "area3_code",
    "area3_name", "polling_place", "observation", "level", "unit_code", "unit_name",
    "parent_code", "vote_type", "batch", "as_of", "cut",
})
#: columns read as numbers with a fraction (not integers)
FLOAT_COLUMNS: Final = frozenset({"pct_votes_counted"})
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
    """The contest sidecar of a data file (schema in docs/formats.md and
    ``sources/schema/contest-sidecar.v2.json``).

    ``as_of`` is None only when the sidecar leaves it to the data (a series file carries
    an ``as_of`` or ``cut`` column). ``warnings`` lists (field, es, en) for what was
    accepted with a caveat (an unknown key, a Latin-1 file...)."""

    path: str
    contest: Contest
    as_of: datetime | None
    sha256: str
    kind: SnapshotKind | None = None
    source_uri: str | None = None
    label: str | None = None
    area_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    timezone: str | None = None
    court_name: Mapping[str, Any] | None = None
    #: what becomes of sheets held for review in this country (docs/formats.md §6)
    review_outcomes: Mapping[str, Any] | None = None
    vote_types: Mapping[str, Mapping[str, str]] | None = None
    seats: int | None = None
    previous_round: str | None = None
    #: national fraction of the votes counted, and per unit code
    pct_votes_counted: float | None = None
    pct_votes_counted_by_unit: Mapping[str, float] = field(default_factory=dict)
    votes_remaining: int | None = None
    votes_remaining_by_unit: Mapping[str, int] = field(default_factory=dict)
    #: what the converter or the source says about the data, [{"es": ..., "en": ...}]
    notes: tuple[Mapping[str, str], ...] = ()
    #: the source's own column names -> the format's (a spreadsheet used as it is)
    columns: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[tuple[str, str, str], ...] = ()


def sidecar_path_for(data_path: str | Path) -> Path:
    """``<data file name>.contest.json`` in the same folder."""
    p = Path(data_path)
    return p.with_name(p.name + SIDECAR_SUFFIX)


#: top-level sidecar keys, in documented order (the JSON Schema lists the same)
SIDECAR_KEYS: Final = ("format", "format_version", "kind", "contest", "as_of", "timezone",
                       "source_uri", "label", "area_labels", "court_name", "review_outcomes",
                       "vote_types", "seats", "previous_round", "pct_votes_counted",
                       "votes_remaining", "notes", "columns")
CONTEST_KEYS: Final = ("id", "name", "kind", "country", "date", "majority_threshold",
                       "candidates")
CANDIDATE_KEYS: Final = ("code", "name", "party", "authority_code")
_SIDECAR_KEYS = set(SIDECAR_KEYS)
_CONTEST_KEYS = set(CONTEST_KEYS)
_CANDIDATE_KEYS = set(CANDIDATE_KEYS)
_CODE_RE = re.compile(r"^[a-z0-9_]+$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: the key of the national value in a per-unit ``pct_votes_counted`` / ``votes_remaining``
NATIONAL_KEY: Final = "national"


def _zone(name: str | None) -> tzinfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _parse_as_of(value: object, zone: tzinfo | None = None) -> datetime | None:
    """ISO 8601 with a zone; a bare local time only when ``zone`` (the sidecar's
    ``timezone``) says where it was read."""
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        if zone is None:
            return None
        dt = dt.replace(tzinfo=zone)
    return dt.astimezone(UTC)


def _close_key(key: str, known: Sequence[str]) -> str | None:
    """The known key a typo most likely meant (``asof`` -> ``as_of``)."""
    def norm(x: str) -> str:
        return x.lower().replace("_", "").replace("-", "").replace(" ", "")

    flat = {norm(k): k for k in known}
    if norm(key) in flat:
        return flat[norm(key)]
    close = difflib.get_close_matches(norm(key), list(flat), n=1, cutoff=0.85)
    return flat[close[0]] if close else None


def _labels_ok(v: object) -> bool:
    """A label in both languages: ``{"es": ..., "en": ...}``, neither empty."""
    return (isinstance(v, dict) and set(v) == {"es", "en"}
            and all(isinstance(x, str) and x.strip() for x in v.values()))


@overload
def _per_unit(d: Mapping[str, Any], key: str, bad: Any, *, fraction: Literal[True]
              ) -> tuple[float | None, dict[str, float]]: ...
@overload
def _per_unit(d: Mapping[str, Any], key: str, bad: Any, *, fraction: Literal[False]
              ) -> tuple[int | None, dict[str, int]]: ...
def _per_unit(d: Mapping[str, Any], key: str, bad: Any, *, fraction: bool
              ) -> tuple[float | int | None, dict[str, Any]]:
    """``pct_votes_counted`` / ``votes_remaining``: a number (national) or an object
    ``{unit_code: number}`` whose key ``national`` is the national value."""
    v = d.get(key)
    if v is None:
        return None, {}
    items = v.items() if isinstance(v, dict) else [(NATIONAL_KEY, v)]
    out: dict[str, Any] = {}
    for unit, x in items:
        where = key if not isinstance(v, dict) else f"{key}.{unit}"
        if fraction:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 <= x <= 1:
                raise bad(where, "debe ser una fracción entre 0 y 1 (0.975 para 97.5 %)",
                          "must be a fraction between 0 and 1 (0.975 for 97.5%)")
            out[str(unit)] = float(x)
        else:
            if isinstance(x, bool) or not isinstance(x, int) or x < 0:
                raise bad(where, "debe ser un número entero de votos >= 0",
                          "must be a whole number of votes >= 0")
            out[str(unit)] = int(x)
    national = out.pop(NATIONAL_KEY, None)
    return national, out


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
    from escrutinio.sources.sanitize import JSONLimitError, load_json

    try:
        d = load_json(text)  # capped size and nesting (a deep sidecar: json_too_deep)
    except JSONLimitError as exc:
        rule = "sidecar_json" if exc.rule == "json_syntax" else exc.rule
        raise IngestError(Location(name, exc.line), rule, exc.message_es,
                          exc.message_en) from None
    if not isinstance(d, dict):
        raise bad("*", "el JSON debe ser un objeto", "the JSON must be an object")
    warnings: list[tuple[str, str, str]] = []
    for k in d:
        if k not in _SIDECAR_KEYS:
            _unknown(k, k, SIDECAR_KEYS, bad, warnings)
    if "format" in d and d["format"] != FORMAT:
        raise bad("format", f"'format' debe ser {FORMAT!r}", f"'format' must be {FORMAT!r}")
    if "format_version" in d and d["format_version"] not in SUPPORTED_VERSIONS:
        raise bad("format_version", f"versión de formato no soportada: {d['format_version']!r} "
                  f"(se leen {', '.join(map(str, SUPPORTED_VERSIONS))})",
                  f"unsupported format version: {d['format_version']!r} (readable: "
                  f"{', '.join(map(str, SUPPORTED_VERSIONS))})")
    kind = None
    if d.get("kind") is not None:
        if d["kind"] not in ("actas", "units"):
            raise bad("kind", "'kind' debe ser 'actas' o 'units'",
                      "'kind' must be 'actas' or 'units'")
        kind = SnapshotKind(d["kind"])
    tz_name = d.get("timezone")
    zone = _zone(tz_name) if isinstance(tz_name, str) else None
    if tz_name is not None and zone is None:
        raise bad("timezone", f"zona horaria IANA desconocida {tz_name!r} (p. ej. "
                  "America/Lima, America/Santiago, UTC)",
                  f"unknown IANA time zone {tz_name!r} (e.g. America/Lima, "
                  "America/Santiago, UTC)")
    as_of = None
    if d.get("as_of") is not None:
        as_of = _parse_as_of(d["as_of"], zone)
        if as_of is None:
            raise bad("as_of", f"'as_of' debe ser ISO 8601 con zona horaria, p. ej. "
                      f"2021-06-17T00:00:00Z, o hora local con 'timezone' declarada (se "
                      f"encontró {d['as_of']!r})",
                      f"'as_of' must be ISO 8601 with a time zone, e.g. 2021-06-17T00:00:00Z, "
                      f"or a local time with 'timezone' declared (found {d['as_of']!r})")
    for k in ("source_uri", "label"):
        if d.get(k) is not None and not isinstance(d[k], str):
            raise bad(k, f"'{k}' debe ser texto", f"'{k}' must be text")
    labels = d.get("area_labels") or {}
    if not isinstance(labels, dict):
        raise bad("area_labels", "'area_labels' debe ser un objeto",
                  "'area_labels' must be an object")
    for k, v in labels.items():
        if not (k in ("area1", "area2", "area3") and _labels_ok(v)):
            raise bad(f"area_labels.{k}",
                      "use area1/area2/area3 con textos {\"es\": ..., \"en\": ...}",
                      "use area1/area2/area3 with texts {\"es\": ..., \"en\": ...}")
    court = d.get("court_name")

    def court_ok(v: object) -> bool:
        return (isinstance(v, str) and bool(v.strip())) or _labels_ok(v)

    if isinstance(court, str) and court.strip():
        court = {"es": court, "en": court}
    short_long = (isinstance(court, dict) and "short" in court and set(court) <= {"short", "long"}
                  and all(court_ok(v) for v in court.values()))
    if court is not None and not (short_long or _labels_ok(court)):
        raise bad("court_name", "'court_name': texto, {\"es\": ..., \"en\": ...} o "
                  "{\"short\": ..., \"long\": ...}",
                  "'court_name': text, {\"es\": ..., \"en\": ...} or "
                  "{\"short\": ..., \"long\": ...}")
    review = _review_outcomes(d.get("review_outcomes"), bad)
    vote_types = d.get("vote_types")
    if isinstance(vote_types, list):
        if not all(isinstance(x, str) and _CODE_RE.match(x) for x in vote_types):
            raise bad("vote_types", "lista de códigos (minúsculas ASCII, dígitos y '_')",
                      "a list of codes (lower-case ASCII, digits and '_')")
        vote_types = {x: {"es": x, "en": x} for x in vote_types}
    if vote_types is not None:
        if not isinstance(vote_types, dict) or not vote_types:
            raise bad("vote_types", "'vote_types': lista de códigos u objeto {código: "
                      "{\"es\": ..., \"en\": ...}}",
                      "'vote_types': a list of codes or an object {code: "
                      "{\"es\": ..., \"en\": ...}}")
        for k, v in vote_types.items():
            if not _CODE_RE.match(k) or not _labels_ok(v):
                raise bad(f"vote_types.{k}", "código en minúsculas con textos {\"es\", \"en\"}",
                          "a lower-case code with texts {\"es\", \"en\"}")
    seats = d.get("seats")
    if seats is not None and (isinstance(seats, bool) or not isinstance(seats, int)
                              or seats < 1):
        raise bad("seats", "'seats' debe ser un entero >= 1", "'seats' must be an integer >= 1")
    prev = d.get("previous_round")
    if prev is not None and (not isinstance(prev, str) or not _ID_RE.match(prev)):
        raise bad("previous_round", "identificador de contienda inválido (letras, dígitos, "
                  "'.', '_', '-')", "invalid contest identifier (letters, digits, '.', '_', '-')")
    notes = d.get("notes") or []
    if not isinstance(notes, list) or not all(_labels_ok(n) for n in notes):
        raise bad("notes", "'notes': lista de textos {\"es\": ..., \"en\": ...}",
                  "'notes': a list of texts {\"es\": ..., \"en\": ...}")
    columns = d.get("columns") or {}
    if not isinstance(columns, dict) or not all(
            isinstance(k, str) and k and (v is None or (isinstance(v, str) and v))
            for k, v in columns.items()):
        raise bad("columns", "'columns': objeto {columna del archivo: columna del formato, o "
                  "null para no leerla}",
                  "'columns': an object {column of the file: column of the format, or null "
                  "to leave it out}")
    targets = [v for v in columns.values() if v is not None]
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise bad("columns", f"dos columnas del archivo van a la misma: {', '.join(dupes)}",
                  f"two columns of the file map to the same one: {', '.join(dupes)}")
    pct, pct_units = _per_unit(d, "pct_votes_counted", bad, fraction=True)
    rem, rem_units = _per_unit(d, "votes_remaining", bad, fraction=False)
    contest = _contest_from_json(d.get("contest"), bad, warnings)
    if prev is not None and prev == contest.id:
        raise bad("previous_round", "'previous_round' no puede ser la misma contienda",
                  "'previous_round' cannot be the contest itself")
    return Sidecar(path=name, contest=contest, as_of=as_of, sha256=sha256_bytes(raw), kind=kind,
                   source_uri=d.get("source_uri"), label=d.get("label"), area_labels=labels,
                   timezone=tz_name, court_name=court, review_outcomes=review,
                   vote_types=vote_types, seats=seats,
                   previous_round=prev, pct_votes_counted=pct, pct_votes_counted_by_unit=pct_units,
                   votes_remaining=rem, votes_remaining_by_unit=rem_units,
                   notes=tuple(notes), columns=columns, warnings=tuple(warnings))


#: the keys of ``review_outcomes`` and their ranges (None: no upper bound)
REVIEW_OUTCOME_RANGES: Final = {"p_annulled": (0.0, 1.0), "p_corrected": (0.0, 1.0),
                                "correction_sd": (0.0, None), "rate_prior_n": (0.0, None),
                                "lean_margin_sd": (0.0, 2.0)}


def _review_outcomes(v: object, bad: Any) -> dict[str, Any] | None:
    """``review_outcomes``: what becomes of the sheets the court (or a review) holds —
    ``p_annulled`` (required), optionally ``p_corrected``, ``correction_sd`` (votes per
    candidate), ``rate_prior_n`` (how sure, in sheets), ``lean_margin_sd`` (how far the
    held sheets may lean from their unit's counted ones, SD of the margin's share) and
    ``source`` (text or {es, en}): measured figures, never a guess (without the key the
    rates are unknown, and said so)."""
    if v is None:
        return None
    msg = ("'review_outcomes': objeto {\"p_annulled\": 0..1, \"p_corrected\": 0..1, "
           "\"correction_sd\": > 0, \"rate_prior_n\": > 0, \"lean_margin_sd\": 0..2, "
           "\"source\": texto}",
           "'review_outcomes': an object {\"p_annulled\": 0..1, \"p_corrected\": 0..1, "
           "\"correction_sd\": > 0, \"rate_prior_n\": > 0, \"lean_margin_sd\": 0..2, "
           "\"source\": text}")
    if not isinstance(v, dict) or "p_annulled" not in v:
        raise bad("review_outcomes", *msg)
    out: dict[str, Any] = {}
    for key, val in v.items():
        if key == "source":
            if not ((isinstance(val, str) and val.strip()) or _labels_ok(val)):
                raise bad("review_outcomes.source", "texto o {\"es\": ..., \"en\": ...}",
                          "text or {\"es\": ..., \"en\": ...}")
            out[key] = val
            continue
        rng = REVIEW_OUTCOME_RANGES.get(key)
        if rng is None:
            raise bad(f"review_outcomes.{key}", *msg)
        lo, hi = rng
        ok = (isinstance(val, int | float) and not isinstance(val, bool)
              and math.isfinite(val) and val >= lo and (hi is None or val <= hi)
              and (key in ("p_annulled", "p_corrected", "lean_margin_sd") or val > lo))
        if not ok:
            raise bad(f"review_outcomes.{key}", *msg)
        out[key] = float(val)
    if out.get("p_annulled", 0.0) + out.get("p_corrected", 0.0) > 1.0:
        raise bad("review_outcomes", "p_annulled + p_corrected no puede pasar de 1",
                  "p_annulled + p_corrected cannot exceed 1")
    return out


def _unknown(key: str, where: str, known: Sequence[str], bad: Any,
             warnings: list[tuple[str, str, str]]) -> None:
    """An unknown key warns, unless it is a typo of a known one or a top-level key put in
    the wrong object: then it is an error (silently ignoring it would lose data)."""
    meant = _close_key(key, known)
    if meant is not None and meant != key:
        raise bad(where, f"clave no reconocida {key!r}: ¿quiso decir {meant!r}?",
                  f"unrecognised key {key!r}: did you mean {meant!r}?")
    if key in _SIDECAR_KEYS:
        raise bad(where, f"{key!r} va en el nivel superior del archivo, no aquí",
                  f"{key!r} belongs at the top level of the file, not here")
    warnings.append((where, f"clave no reconocida {key!r}: se ignora",
                     f"unrecognised key {key!r}: ignored"))


def _contest_from_json(c: Any, bad: Any, warnings: list[tuple[str, str, str]] | None = None
                       ) -> Contest:
    warns = warnings if warnings is not None else []
    if not isinstance(c, dict):
        raise bad("contest", "falta el objeto 'contest'", "the 'contest' object is missing")
    for k in c:
        if k not in _CONTEST_KEYS:
            _unknown(k, f"contest.{k}", CONTEST_KEYS, bad, warns)
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
                _unknown(k, f"{where}.{k}", CANDIDATE_KEYS, bad, warns)
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
    known = {k: v for k, v in c.items() if k in _CONTEST_KEYS}
    known["candidates"] = [{k: v for k, v in cand.items() if k in _CANDIDATE_KEYS}
                           for cand in cands]
    try:
        return Contest.from_dict(known)
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
        if c in SERIES_COLUMNS and isinstance(dt, pl.Datetime):
            fmt = "%Y-%m-%dT%H:%M:%S%.f" + ("%:z" if dt.time_zone else "")
            df = df.with_columns(pl.col(c).dt.strftime(fmt))
            continue
        if c in FLOAT_COLUMNS:
            if dt.is_numeric():
                df = df.with_columns(pl.col(c).cast(pl.Float64))
                continue
            df = _typed(df.with_columns(pl.col(c).cast(pl.String)), file, RowLocation)
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
    fmt: str  # "csv" | "parquet" | "json"
    warnings: tuple[tuple[str, str, str], ...] = ()  # (field, es, en)
    dialect: str = ""


#: separators a CSV may use: Excel writes ';' where the decimal mark is a comma
SEPARATORS: Final = {",": "comma", ";": "semicolon", "\t": "tab"}


def sniff_separator(header_line: str) -> str:
    """The separator that splits the header into the most fields (a tie keeps ',')."""
    best, n_best = ",", 0
    for sep in SEPARATORS:
        try:
            n = len(next(csv.reader([header_line], delimiter=sep)))
        except csv.Error:  # a stray carriage return in the header: read_csv_strict names it
            continue
        if n > n_best:
            best, n_best = sep, n
    return best


def _read_text(path: Path) -> tuple[SourceBytes, list[tuple[str, str, str]]]:
    """UTF-8 (with or without BOM); a file that is not UTF-8 is read as Latin-1 with a
    warning naming the first line that is not (Excel's export in many locales)."""
    try:
        return read_source(path), []
    except IngestError as exc:
        if exc.rule != "encoding":
            raise
        src = read_source(path, encoding="latin-1")
        return src, [("*", f"el archivo no es UTF-8 (línea {exc.location.line}): se leyó como "
                           "Latin-1 (ISO-8859-1); revise los nombres con tildes y eñes",
                      f"the file is not UTF-8 (line {exc.location.line}): read as Latin-1 "
                      "(ISO-8859-1); check names with accents")]


def _typed(df: pl.DataFrame, file: str, loc_type: type[Location]) -> pl.DataFrame:
    """String CSV columns to their types: integers, fractions, booleans."""
    ints = [c for c in df.columns if c not in TEXT_COLUMNS and c not in BOOL_COLUMNS
            and c not in FLOAT_COLUMNS and c != "__line"]
    try:
        df = cast_ints(df, ints, file)
    except IngestError as exc:
        raise IngestError(loc_type(file, exc.location.line, exc.location.field), exc.rule,
                          exc.detail_es, exc.detail_en) from None
    for c in [c for c in df.columns if c in FLOAT_COLUMNS]:
        x = pl.col(c).str.strip_chars().str.replace(",", ".", literal=True)
        out = df.select(x.cast(pl.Float64, strict=False).alias(c))[c]
        bad_mask = pl.col(c).is_not_null() & out.is_null()
        if df.select(bad_mask.any()).item():
            line, value, n = _first_bad(df, bad_mask, c)
            raise IngestError(loc_type(file, line, c), "not_a_number",
                              f"se esperaba un número y se encontró {value!r} ({n} filas)",
                              f"expected a number, found {value!r} ({n} rows)")
        df = df.with_columns(out)
    return _parse_bools(df, file, loc_type)


def _read_csv(path: Path, sidecar_getter: Any, wanted: SnapshotKind | None
              ) -> tuple[_Read, Sidecar]:
    src, warns = _read_text(path)
    header_line = src.text.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
    sep = sniff_separator(header_line)
    header = header_fields(header_line, src.path, sep)
    side: Sidecar = sidecar_getter()
    drop: list[str] = []
    if side.columns:  # the file's own names -> the format's, header line rewritten
        # a column mapped to null is read under a private name and dropped
        renamed = [side.columns.get(h, h) or f"__drop{i}" for i, h in enumerate(header)]
        drop = [r for r in renamed if r.startswith("__drop")]
        if renamed != header:
            buf = io.StringIO()
            csv.writer(buf, delimiter=sep, lineterminator="").writerow(renamed)
            cut = src.text.find(b"\n")
            rest = src.text[cut:] if cut >= 0 else b""
            src = dataclasses.replace(src, text=buf.getvalue().encode("utf-8") + rest)
            header = renamed
    loc = Location(src.path, 1)
    kind = _detect_kind(header, loc, wanted, side)
    _check_candidates(header, side.contest, loc, side.path)
    req, opt = _columns_for(kind)
    df = read_csv_strict(src, required=[*req, *side.contest.candidate_columns],
                         optional=[*opt, *drop], separator=sep).drop(drop)
    if sep != ",":
        # where ';' or a tab separates, the decimal mark is often a comma and '13.000' is
        # thirteen thousand: an integral decimal like that is refused, never guessed
        for c in [c for c in df.columns if c not in TEXT_COLUMNS and c not in BOOL_COLUMNS
                  and c not in FLOAT_COLUMNS and c != "__line"]:
            _fail_first(df, pl.col(c).str.strip_chars().str.contains(r"^-?\d{1,3}(\.\d{3})+$"),
                        c, src.path, "csv", "ambiguous_number",
                        "número ambiguo: ¿separador de miles o decimales? Exporte los conteos "
                        "sin separador de miles",
                        "ambiguous number: thousands separator or decimals? Export the counts "
                        "without thousands separators")
    df = _typed(df, src.path, Location)
    return _Read(df, kind, src.sha256, len(src.raw), "csv", tuple(warns),
                 SEPARATORS[sep]), side


def _json_frame(raw: bytes, name: str) -> pl.DataFrame:
    """A JSON array of row objects (or ``{"rows": [...]}``), gzip allowed; every value a
    JSON string, number, boolean or null."""
    data = raw
    if raw[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(raw)
        except (EOFError, gzip.BadGzipFile, OSError) as exc:
            raise IngestError(Location(name), "gzip_corrupt",
                              f"el archivo gzip está truncado o dañado ({exc})",
                              f"the gzip file is truncated or corrupt ({exc})") from None
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise IngestError(Location(name, line), "encoding", "el JSON no es UTF-8 válido",
                          "the JSON is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise IngestError(Location(name, exc.lineno), "json_syntax",
                          f"JSON ilegible: {exc.msg} (columna {exc.colno})",
                          f"unreadable JSON: {exc.msg} (column {exc.colno})") from None
    rows = doc.get("rows") if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise IngestError(Location(name), "json_shape",
                          "se esperaba una lista de filas [{columna: valor}, ...] o "
                          "{\"rows\": [...]}",
                          "expected a list of rows [{column: value}, ...] or {\"rows\": [...]}")
    if not rows:
        raise IngestError(RowLocation(name, 1), "no_rows", "el archivo no tiene filas de datos",
                          "the file has no data rows")
    columns: dict[str, None] = {}
    for r in rows:
        columns.update(dict.fromkeys(r))
    for i, r in enumerate(rows, start=1):
        for k, v in r.items():
            if isinstance(v, (dict, list)):
                raise IngestError(RowLocation(name, i, k), "wrong_type",
                                  "se esperaba un valor simple, no un objeto o lista",
                                  "expected a plain value, not an object or list")
    # every value as text: the same typing rules as CSV then apply
    def text(v: object) -> str | None:
        if v is None:
            return None
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    return pl.DataFrame({c: [text(r.get(c)) for r in rows] for c in columns},
                        schema=dict.fromkeys(columns, pl.String))


def _read_frame(path: Path, raw: bytes, fmt: str, sidecar_getter: Any,
                wanted: SnapshotKind | None) -> tuple[_Read, Sidecar]:
    """Parquet or JSON: a frame with typed (Parquet) or text (JSON) columns; errors name
    the data row."""
    name = str(path)
    if fmt == "parquet":
        try:
            df = pl.read_parquet(io.BytesIO(raw))
        except Exception as exc:  # polars/arrow raise several types for a damaged file
            raise IngestError(Location(name), "parquet_corrupt",
                              f"el archivo Parquet está truncado o dañado ({exc})",
                              f"the Parquet file is truncated or corrupt ({exc})") from None
    else:
        df = _json_frame(raw, name)
    side: Sidecar = sidecar_getter()
    if side.columns:
        df = df.drop([k for k, v in side.columns.items() if v is None and k in df.columns])
        df = df.rename({k: v for k, v in side.columns.items() if v and k in df.columns})
    loc = RowLocation(name, None)
    kind = _detect_kind(df.columns, loc, wanted, side)
    _check_candidates(df.columns, side.contest, loc, side.path)
    req, opt = _columns_for(kind)
    _check_header(df.columns, [*req, *side.contest.candidate_columns], opt, loc)
    if df.height == 0:
        raise IngestError(RowLocation(name, 1), "no_rows", "el archivo no tiene filas de datos",
                          "the file has no data rows")
    df = df.with_row_index("__line", offset=1).with_columns(pl.col("__line").cast(pl.Int64))
    df = _coerce_parquet(df, name) if fmt == "parquet" else _typed(df, name, RowLocation)
    return _Read(df, kind, sha256_bytes(raw), len(raw), fmt), side


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


def _open(p: Path, contest_file: str | Path | None, wanted: SnapshotKind | None
          ) -> tuple[_Read, Sidecar]:
    """Read the data file (CSV, Parquet or JSON, by its first bytes) and its sidecar."""
    name = str(p)
    side_path = Path(contest_file) if contest_file is not None else sidecar_path_for(p)
    cache: list[Sidecar] = []

    def get_sidecar() -> Sidecar:
        if not cache:
            cache.append(read_sidecar(side_path))
        return cache[0]

    try:
        raw = p.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise IngestError(Location(name), "file_not_found", "el archivo no existe",
                          "the file does not exist") from None
    head = raw[:4]
    lower = p.name.lower()
    if head == PARQUET_MAGIC:
        return _read_frame(p, raw, "parquet", get_sidecar, wanted)
    if lower.endswith(".parquet"):
        if not raw.strip():
            raise IngestError(Location(name), "empty_file", "el archivo está vacío",
                              "the file is empty")
        raise IngestError(Location(name), "parquet_corrupt",
                          "el archivo .parquet no empieza con la marca PAR1",
                          "the .parquet file does not start with the PAR1 marker")
    if lower.endswith((".json", ".json.gz")):
        if not raw.strip():
            raise IngestError(Location(name), "empty_file", "el archivo está vacío",
                              "the file is empty")
        return _read_frame(p, raw, "json", get_sidecar, wanted)
    return _read_csv(p, get_sidecar, wanted)


def _fail_first(df: pl.DataFrame, mask: pl.Expr, column: str, file: str, fmt: str, rule: str,
                es: str, en: str) -> None:
    if df.select(mask.fill_null(False).any()).item():
        line, value, n = _first_bad(df, mask.fill_null(False), column)
        loc = Location(file, line, column) if fmt == "csv" else RowLocation(file, line, column)
        raise IngestError(loc, rule, f"{es}: {value!r} ({n} filas)", f"{en}: {value!r} ({n} rows)")


def _cuts(df: pl.DataFrame, side: Sidecar, file: str, fmt: str) -> pl.DataFrame:
    """A series file: ``__cut`` (UTC datetime of each row's cut) and ``__cut_label``."""
    col = "as_of" if "as_of" in df.columns else "cut"
    zone = _zone(side.timezone)
    values = df[col].drop_nulls().unique().to_list()
    parsed = {v: _parse_as_of(v, zone) for v in values}
    bad = [v for v, t in parsed.items() if t is None]
    _fail_first(df, pl.col(col).is_null() | pl.col(col).str.strip_chars().eq(""), col, file, fmt,
                "missing_cut", "fila sin momento del corte",
                "row without the moment of its cut")
    _fail_first(df, pl.col(col).is_in(bad), col, file, fmt, "bad_cut",
                "momento del corte inválido: ISO 8601 con zona (2020-11-04T13:28:22Z), o "
                "local con 'timezone' en el archivo de contienda",
                "invalid cut moment: ISO 8601 with a zone (2020-11-04T13:28:22Z), or local "
                "with 'timezone' in the contest file")
    keys = list(parsed)
    times = [parsed[k] for k in keys]
    cut = pl.col(col).replace_strict(keys, times, return_dtype=pl.Datetime("us", "UTC"))
    label = pl.col("cut") if col == "as_of" and "cut" in df.columns else pl.lit(None, pl.String)
    return df.with_columns(cut.alias("__cut"), label.alias("__cut_label"))


def _check_estimates(df: pl.DataFrame, file: str, fmt: str) -> None:
    if "votes_remaining" in df.columns:
        _fail_first(df, pl.col("votes_remaining") < 0, "votes_remaining", file, fmt,
                    "negative_count", "votos por contar negativos",
                    "negative votes remaining")
    if "pct_votes_counted" in df.columns:
        x = pl.col("pct_votes_counted")
        _fail_first(df, (x < 0) | (x > 1) | x.is_nan(), "pct_votes_counted", file, fmt,
                    "fraction_out_of_range",
                    "fracción contada fuera de [0, 1] (0.975 para 97.5 %)",
                    "fraction counted outside [0, 1] (0.975 for 97.5%)")
    if "ballots_issued" in df.columns:
        _fail_first(df, pl.col("ballots_issued") < 0, "ballots_issued", file, fmt,
                    "negative_count", "cédulas entregadas negativas",
                    "negative ballots issued")


def _vote_types(df: pl.DataFrame, side: Sidecar, file: str, fmt: str) -> pl.DataFrame:
    """``batch`` is another name of ``vote_type``; declared types must match."""
    if "batch" in df.columns:
        if "vote_type" in df.columns:
            raise IngestError(Location(file, 1, "batch"), "duplicate_columns",
                              "'batch' y 'vote_type' son la misma columna: use una",
                              "'batch' and 'vote_type' are the same column: use one")
        df = df.rename({"batch": "vote_type"})
    if "vote_type" not in df.columns:
        return df
    vt = pl.col("vote_type").str.strip_chars().str.to_lowercase()
    df = df.with_columns(pl.when(vt == "").then(None).otherwise(vt).alias("vote_type"))
    if side.vote_types:
        _fail_first(df, pl.col("vote_type").is_not_null()
                    & ~pl.col("vote_type").is_in(list(side.vote_types)), "vote_type", file, fmt,
                    "unknown_vote_type",
                    f"tipo de voto no declarado en 'vote_types' ({', '.join(side.vote_types)})",
                    f"vote type not declared in 'vote_types' ({', '.join(side.vote_types)})")
    return df


def _jdump(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _warning_rows(warns: Sequence[tuple[str, str, str]], file: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"line": [None] * len(warns), "acta_id": [None] * len(warns),
         "field": [w[0] for w in warns], "rule": ["ingest_warning"] * len(warns),
         "message_es": [f"{file}: {w[1]}" for w in warns],
         "message_en": [f"{file}: {w[2]}" for w in warns], "raw": [None] * len(warns)},
        schema=REJECTED_SCHEMA)


def _audit_id_warning(frame: pl.DataFrame, file: str) -> pl.DataFrame:
    """Acta IDs the risk-limiting audit will refuse (blanks, commas, accents...): said at
    ingest, not discovered on audit day."""
    bad = frame.filter(~pl.col("acta_id").str.contains(ACTA_ID_PATTERN))["acta_id"]
    if bad.is_empty():
        return _warning_rows([], file)
    return _warning_rows([(
        "acta_id",
        f"{bad.len():,} IDs de acta no sirven para la auditoría (solo letras ASCII, dígitos "
        f"y . _ - / :), p. ej. {bad[0]!r}",
        f"{bad.len():,} acta IDs cannot be used by the audit (only ASCII letters, digits and "
        f". _ - / :), e.g. {bad[0]!r}")], file)


def _unit_estimates(part: pl.DataFrame, accepted: pl.DataFrame, side: Sidecar,
                    cand: Sequence[str]) -> dict[str, str]:
    """Metadata the projection reads: the fraction of the votes counted, national
    (``pct_votes_counted``) and per unit (``fraction_counted_by_unit``), from the
    sidecar and the unit columns (a column wins over the sidecar for its unit). Where
    only ``votes_remaining`` is given, fraction = candidates' votes / (those + remaining)."""
    pct: dict[str, float] = dict(side.pct_votes_counted_by_unit)
    rem: dict[str, int] = dict(side.votes_remaining_by_unit)
    nat_pct, nat_rem = side.pct_votes_counted, side.votes_remaining
    valid: dict[str, int] = {}
    # national rows of several vote types: (valid votes, votes remaining or None) per type
    nat_types: list[tuple[int, float | None]] = []
    if accepted.height:
        on = ["level", "unit_code", *([VOTE_TYPE] if VOTE_TYPE in accepted.columns else [])]
        keys = accepted.select(*on, pl.sum_horizontal(
            [pl.col(c).fill_null(0) for c in cand]).alias("__valid"))
        rows = part.join(keys, on=on, how="inner", nulls_equal=True)
        for r in rows.iter_rows(named=True):  # one row per unit (and type), not per acta
            vt = r.get(VOTE_TYPE)
            national = r["level"] == Level.NATIONAL.value
            if national and vt:
                v, p, n = int(r["__valid"]), r.get("pct_votes_counted"), r.get("votes_remaining")
                nat_types.append((v, float(n) if n is not None else
                                  v * (1.0 / p - 1.0) if p else None))
                continue
            unit = NATIONAL_KEY if national else r["unit_code"]
            if vt:  # the key the projection gives a typed unit: unit|type
                unit = f"{unit}|{vt}"
            valid[unit] = int(r["__valid"])
            if r.get("pct_votes_counted") is not None:
                pct[unit] = float(r["pct_votes_counted"])
            if r.get("votes_remaining") is not None:
                rem[unit] = int(r["votes_remaining"])
    if nat_types and NATIONAL_KEY not in valid:  # the nation = its types added up
        valid[NATIONAL_KEY] = sum(v for v, _ in nat_types)
        if all(n is not None for _, n in nat_types) and NATIONAL_KEY not in rem:
            rem[NATIONAL_KEY] = round(sum(n for _, n in nat_types if n is not None))
    if NATIONAL_KEY in pct:
        nat_pct = pct.pop(NATIONAL_KEY)
    if NATIONAL_KEY in rem:
        nat_rem = rem.pop(NATIONAL_KEY)

    def frac(unit: str, remaining: int) -> float | None:
        v = valid.get(unit)
        if v is None or v + remaining <= 0:
            return None
        return v / (v + remaining)

    for unit, n in rem.items():
        if unit not in pct and (f := frac(unit, n)) is not None:
            pct[unit] = f
    if nat_pct is None and nat_rem is not None:
        nat_pct = frac(NATIONAL_KEY, nat_rem)
    out: dict[str, str] = {}
    if nat_pct is not None and nat_pct > 0:
        out[SERIES_FRACTION_KEY] = repr(float(nat_pct))
    if pct:
        out[FRACTION_COUNTED_KEY] = _jdump({k: round(v, 9) for k, v in pct.items()})
    if rem or nat_rem is not None:
        out["votes_remaining"] = _jdump({**rem, **({NATIONAL_KEY: nat_rem}
                                                   if nat_rem is not None else {})})
    return out


def _snapshot(read: _Read, side: Sidecar, df: pl.DataFrame, *, name: str, as_of: datetime,
              part: str | None, label: str, geography: pl.DataFrame | None,
              warns: pl.DataFrame) -> ParsedSnapshot:
    contest = side.contest
    metadata: dict[str, str] = {"bytes": str(read.n_bytes), "format": read.fmt,
                                "sidecar": side.path, "sidecar_sha256": side.sha256}
    if read.dialect:
        metadata["csv_separator"] = read.dialect
    if side.area_labels:
        metadata["area_labels"] = json.dumps(side.area_labels, ensure_ascii=False,
                                             sort_keys=True)
    for key, value in (("timezone", side.timezone), ("previous_round", side.previous_round),
                       ("seats", None if side.seats is None else str(side.seats))):
        if value is not None:
            metadata[key] = value
    if side.court_name:
        metadata["court_name"] = _jdump(side.court_name)
    if side.review_outcomes:
        metadata["review_outcomes"] = _jdump(side.review_outcomes)
    if side.vote_types:
        metadata["vote_types"] = _jdump(side.vote_types)
    if side.notes:
        metadata["notes"] = _jdump(list(side.notes))
    absent = [c for c in ABSENT_FIGURES if c not in read.frame.columns]
    if absent:
        metadata["figures_absent"] = ",".join(absent)
    warnings = [*side.warnings, *read.warnings]
    if warnings:
        metadata["warnings"] = _jdump([{"field": f, "es": es, "en": en}
                                       for f, es, en in warnings])
    common: dict[str, Any] = {
        "contest": contest, "kind": read.kind, "as_of": as_of, "part": part,
        "source_uri": side.source_uri or name, "source_sha256": read.sha256,
        "parser": f"tabular.{read.fmt}", "label": label}
    if read.kind is SnapshotKind.ACTAS:
        canon = conform(df, contest, SnapshotKind.ACTAS).with_columns(df["__line"])
        result = validate_actas(canon, contest, absent=absent)
        warns = pl.concat([warns, _audit_id_warning(result.frame, name)])
        ok = df.join(result.frame.select("acta_id"), on="acta_id", how="semi")
        if "vote_type" in ok.columns:
            by_type = (ok.filter(pl.col("vote_type").is_not_null())
                       .group_by("vote_type").agg(pl.col("acta_id").sort()))
            metadata["vote_type_by_acta"] = _jdump(dict(zip(
                by_type["vote_type"].to_list(), by_type["acta_id"].to_list(), strict=True)))
        if "ballots_issued" in ok.columns:
            bi = ok.filter(pl.col("ballots_issued").is_not_null())
            metadata["ballots_issued_by_acta"] = _jdump(dict(zip(
                bi["acta_id"].to_list(), bi["ballots_issued"].to_list(), strict=True)))
        if side.pct_votes_counted is not None and side.pct_votes_counted > 0:
            metadata[SERIES_FRACTION_KEY] = repr(float(side.pct_votes_counted))
        return ParsedSnapshot(frame=result.frame, rejected=result.rejected,
                              findings=pl.concat([warns, result.findings]),
                              geography=geography, metadata=metadata, **common)
    canon = conform(df, contest, SnapshotKind.UNITS)
    if VOTE_TYPE in df.columns and df[VOTE_TYPE].is_not_null().any():
        # one row per unit and vote type: the column stays in the frame and the store
        canon = canon.with_columns(df[VOTE_TYPE])
    result = validate_units(canon.with_columns(df["__line"]), contest)
    metadata |= _unit_estimates(df, result.frame, side, contest.candidate_columns)
    present = set(result.frame["level"].unique().to_list())
    finest = next((lv for lv in reversed(_LEVEL_ORDER) if lv in present), None)
    return ParsedSnapshot(frame=result.frame, rejected=result.rejected,
                          findings=pl.concat([warns, result.findings]), geography=geography,
                          level=finest, metadata=metadata, **common)


def parse_tabular_many(
    path: str | Path, contest_file: str | Path | None = None, *,
    kind: SnapshotKind | str | None = None, label: str = "",
) -> list[ParsedSnapshot]:
    """Parse a file in the generic format (CSV in any of its dialects, CSV.gz, Parquet or
    JSON) with its sidecar: one snapshot, or one per cut of a **series** file (a file
    with an ``as_of`` or ``cut`` column, docs/formats.md §3b).

    ``contest_file`` defaults to ``<path>.contest.json``. ``kind`` forces per-acta or
    per-unit reading; by default the columns decide (``acta_id`` vs ``level``/``unit_code``).
    Raises :class:`IngestError` for anything that prevents reading the file; rows that
    break a rule are rejected (kept in ``ParsedSnapshot.rejected``) or flagged.
    """
    p = Path(path)
    name = str(path)
    wanted = SnapshotKind(kind) if kind is not None else None
    read, side = _open(p, contest_file, wanted)
    df = _vote_types(read.frame, side, name, read.fmt)
    _check_estimates(df, name, read.fmt)
    extra_warns: list[tuple[str, str, str]] = []
    if read.kind is SnapshotKind.ACTAS:
        if "status" not in df.columns:
            df = df.with_columns(pl.when(pl.col("cast").is_not_null())
                                 .then(pl.lit(ActaStatus.COUNTED.value))
                                 .otherwise(pl.lit(ActaStatus.PENDING.value)).alias("status"))
            extra_warns.append(("status", *STATUS_DEFAULT_NOTE))
        fills = [pl.lit(False).alias(c) for c in ("abroad", "resolved") if c not in df.columns]
        df = df.with_columns(_status_expr(), *fills)
        geography = _acta_geography(df)
    else:
        level = pl.col("level").str.strip_chars().str.to_lowercase()
        df = df.with_columns(level.alias("level")).with_columns(
            pl.when(pl.col("level") == Level.NATIONAL.value)
            .then(pl.col("unit_code").fill_null("")).otherwise(pl.col("unit_code"))
            .alias("unit_code"),
            *([] if "abroad" in df.columns else [pl.lit(None, pl.Boolean).alias("abroad")]),
        )
        geography = _unit_geography(df)
    warns = pl.concat([_warning_rows(side.warnings, side.path),
                       _warning_rows([*read.warnings, *extra_warns], name)])
    base_label = label or side.label or p.name
    if not any(c in df.columns for c in SERIES_COLUMNS):
        if side.as_of is None:
            raise IngestError(
                Location(side.path, None, "as_of"), "sidecar_invalid",
                "falta 'as_of' (momento que describen los datos, ISO 8601 con zona), o una "
                "columna 'as_of'/'cut' en los datos (archivo de serie)",
                "'as_of' is missing (moment the data describes, ISO 8601 with a zone), or an "
                "'as_of'/'cut' column in the data (a series file)")
        return [_snapshot(read, side, df, name=name, as_of=side.as_of, part=None,
                          label=base_label, geography=geography, warns=warns)]
    df = _cuts(df, side, name, read.fmt)
    out = []
    for (when,), part in df.partition_by("__cut", as_dict=True, maintain_order=True).items():
        assert isinstance(when, datetime)
        stamp = when.astimezone(UTC).isoformat().replace("+00:00", "Z")
        cut_label = part["__cut_label"].drop_nulls()
        lbl = (str(cut_label[0]) if cut_label.len() else
               f"{base_label} {when.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z")
        out.append(_snapshot(read, side, part.drop("__cut", "__cut_label"), name=name,
                             as_of=when, part=stamp, label=lbl, geography=geography,
                             warns=warns))
    return sorted(out, key=lambda s: s.as_of)


def parse_tabular(
    path: str | Path, contest_file: str | Path | None = None, *,
    kind: SnapshotKind | str | None = None, label: str = "",
) -> ParsedSnapshot:
    """Parse a file in the generic format holding **one** snapshot (see
    :func:`parse_tabular_many` for series files, which hold many)."""
    snaps = parse_tabular_many(path, contest_file, kind=kind, label=label)
    if len(snaps) != 1:
        raise IngestError(Location(str(path), None, "as_of"), "series_file",
                          f"el archivo es una serie de {len(snaps)} cortes: use "
                          "parse_tabular_many o 'escrutinio ingest'",
                          f"the file is a series of {len(snaps)} cuts: use parse_tabular_many "
                          "or 'escrutinio ingest'")
    return snaps[0]


def parse_folder(folder: str | Path) -> list[ParsedSnapshot]:
    """Every generic file of a folder that has its sidecar beside it (``x.csv`` with
    ``x.csv.contest.json``), in name order; a folder with none is an error."""
    d = Path(folder)
    files = sorted(f for f in d.iterdir() if f.is_file() and not f.name.endswith(SIDECAR_SUFFIX)
                   and sidecar_path_for(f).is_file())
    if not files:
        raise IngestError(Location(str(d)), "no_generic_files",
                          "la carpeta no tiene archivos con su archivo de contienda "
                          "(<datos>.contest.json)",
                          "the folder has no data file with its contest file "
                          "(<data>.contest.json)")
    out: list[ParsedSnapshot] = []
    for f in files:
        out.extend(parse_tabular_many(f))
    return out


def is_generic_folder(folder: str | Path) -> bool:
    """A folder holding at least one generic sidecar."""
    return any(Path(folder).glob(f"*{SIDECAR_SUFFIX}"))


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
    absent: Sequence[str] = (), sidecar_extra: Mapping[str, object] | None = None,
    extra_columns: Sequence[pl.Series] = (),
) -> tuple[Path, Path]:
    """Write a canonical acta or unit frame in the generic format, plus its sidecar.

    ``absent``: figures the source does not have (:data:`ABSENT_FIGURES`), left out so
    that they read back as unknown; ``sidecar_extra``: optional sidecar keys (``timezone``,
    ``court_name``, ``notes``...); ``extra_columns``: optional columns of the format, one
    value per row (``vote_type``, ``ballots_issued``).

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
    typed = kind is SnapshotKind.UNITS and VOTE_TYPE in frame.columns
    if typed:  # a unit in one row per vote type: the column follows unit_code
        out = out.with_columns(frame[VOTE_TYPE].cast(pl.String))
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
    if typed:
        order.insert(order.index("unit_code") + 1, VOTE_TYPE)
    order = [c for c in order if c not in absent]
    out = out.select([*order, *contest.candidate_columns])
    if extra_columns:
        out = out.with_columns(*extra_columns)
    p.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        out.write_parquet(p)
    else:
        data = out.write_csv().encode("utf-8")
        p.write_bytes(gzip.compress(data, compresslevel=6, mtime=0) if fmt == "csv.gz" else data)
    side = sidecar_path_for(p)
    doc = sidecar_dict(contest, as_of, kind=kind, source_uri=source_uri, label=label,
                       area_labels=area_labels)
    doc |= {k: v for k, v in (sidecar_extra or {}).items() if k in _SIDECAR_KEYS}
    side.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return p, side


def _sidecar_from_metadata(md: Mapping[str, str]) -> dict[str, object]:
    """The optional sidecar keys a snapshot's metadata holds, back in sidecar form."""
    out: dict[str, object] = {}
    for key in ("timezone", "previous_round"):
        if md.get(key):
            out[key] = md[key]
    if md.get("seats"):
        out["seats"] = int(md["seats"])
    for key in ("court_name", "review_outcomes", "vote_types", "notes"):
        if md.get(key):
            out[key] = json.loads(md[key])
    pct: dict[str, float] = json.loads(md.get(FRACTION_COUNTED_KEY) or "{}")
    if md.get(SERIES_FRACTION_KEY):
        pct[NATIONAL_KEY] = float(md[SERIES_FRACTION_KEY])
    if md.get("votes_remaining"):
        out["votes_remaining"] = json.loads(md["votes_remaining"])
    if pct:  # a fraction wins over votes_remaining for its unit: the same value again
        out["pct_votes_counted"] = pct
    return out


def write_snapshot(snapshot: ParsedSnapshot, path: str | Path) -> tuple[Path, Path]:
    """Export a parsed or stored snapshot (frame, contest, as_of, geography, label, and
    what its metadata keeps of the source: absent figures, vote types, ballots issued, the
    sidecar's optional keys), so that it reads back the same."""
    md = snapshot.metadata
    labels = md.get("area_labels")
    extra: list[pl.Series] = []
    if snapshot.kind is SnapshotKind.ACTAS:
        typed = with_vote_types(snapshot.frame, md)
        if "vote_type" in typed.columns:
            extra.append(typed["vote_type"])
        issued = ballots_issued(snapshot.frame, md)
        if issued is not None:
            extra.append(issued)
    absent = [c for c in (md.get("figures_absent") or "").split(",") if c in ABSENT_FIGURES]
    return write_tabular(snapshot.frame, snapshot.contest, path, snapshot.as_of,
                         geography=snapshot.geography, source_uri=snapshot.source_uri,
                         label=snapshot.label or None,
                         area_labels=json.loads(labels) if labels else None,
                         absent=absent, sidecar_extra=_sidecar_from_metadata(md),
                         extra_columns=extra)


# --- what the canonical frames do not hold ----------------------------------------------


def with_vote_types(frame: pl.DataFrame, metadata: Mapping[str, str]) -> pl.DataFrame:
    """An acta frame with the optional ``vote_type`` column the projection reads (one
    intercept per type), rebuilt from the snapshot's metadata ``vote_type_by_acta``; the
    frame unchanged when the source had no vote types. Actas of no stated type stay null."""
    raw = metadata.get("vote_type_by_acta")
    if not raw or "acta_id" not in frame.columns:
        return frame
    by_type: dict[str, list[str]] = json.loads(raw)
    ids = [a for acts in by_type.values() for a in acts]
    types = [t for t, acts in by_type.items() for _ in acts]
    lookup = pl.DataFrame({"acta_id": ids, "vote_type": types},
                          schema={"acta_id": pl.String, "vote_type": pl.String})
    return frame.join(lookup, on="acta_id", how="left", maintain_order="left")


def ballots_issued(frame: pl.DataFrame, metadata: Mapping[str, str]) -> pl.Series | None:
    """Ballots issued per acta of ``frame`` (null where not stated), from the snapshot's
    metadata ``ballots_issued_by_acta``: the forensics' turnout where the source has it;
    None when it has not."""
    raw = metadata.get("ballots_issued_by_acta")
    if not raw or "acta_id" not in frame.columns:
        return None
    got: dict[str, int] = json.loads(raw)
    return frame["acta_id"].replace_strict(list(got), list(got.values()), default=None,
                                           return_dtype=pl.Int64).alias("ballots_issued")
