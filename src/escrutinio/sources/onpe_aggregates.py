"""ONPE aggregate tables (counts per reporting unit) as unit snapshots.

Two families of sources, both turned into :class:`ParsedSnapshot` of kind
``SnapshotKind.UNITS`` with the canonical :data:`~escrutinio.domain.UNIT_COLUMNS` plus one
``v_<candidate>`` column per candidate:

* **2021 runoff progress tables** (:func:`parse_progress_tables`): ONPE's
  ``votacion-<level>-{participacion,resultados,resumen,totales}`` CSV tables scraped by
  jmcastagnetto while the count went on. National tables hold 48 cuts (column ``updated``,
  UTC); the department / province / district tables hold one cut each, stamped in the
  file name (``.20210607T202100Z.csv``).
* **2026 first round, republished by ikusij/ONPE-Monte-Carlo**: the district bundle
  (:func:`parse_2026_district_bundle`) and the national time series
  (:func:`parse_2026_national_timeseries`).

What is unknown stays null: no count is invented to fill a canonical column.

Arithmetic identities that ONPE's tables should satisfy (``CONTABILIZA = CONT_NORMAL +
CONT_ANULADA + MESAS_NO_INST`` and so on) are checked on every unit; a unit that breaks
one is kept and the break is recorded in the snapshot's ``findings`` (severity "flag",
``acta_id`` = the unit code, ``line`` = the line of the unit in the ``resumen`` table).
Structural problems (missing table, column or row, unknown candidate, text in a number,
wrong timestamp) raise :class:`~escrutinio.errors.IngestError` naming file, line, field
and rule.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final, cast

import polars as pl

from escrutinio.domain import Contest, Level, SnapshotKind
from escrutinio.errors import IngestError, Location
from escrutinio.sources.base import (
    FRACTION_COUNTED_KEY,
    REJECTED_SCHEMA,
    SERIES_FRACTION_KEY,
    ParsedSnapshot,
    SourceBytes,
    cast_ints,
    conform,
    read_csv_strict,
    read_source,
    sha256_bytes,
)
from escrutinio.sources.peru import PERU_2021_RUNOFF, PERU_2026_FIRST_ROUND

__all__ = [
    "parse_2026_district_bundle",
    "parse_2026_national_timeseries",
    "parse_progress_tables",
    "read_2026_bundle_remaining",
]

# --- 2021 progress tables ------------------------------------------------------------

TABLES: Final = ("participacion", "resultados", "resumen", "totales")

#: level word in ONPE's file names -> generic level
FILE_LEVELS: Final[dict[str, Level]] = {
    "general": Level.NATIONAL,
    "departamento": Level.AREA1,
    "provincia": Level.AREA2,
    "distrito": Level.AREA3,
}
_LEVEL_WORD: Final = {v: k for k, v in FILE_LEVELS.items()}
_LEVEL_ORDER: Final = {Level.NATIONAL: 0, Level.AREA1: 1, Level.AREA2: 2, Level.AREA3: 3}

#: name columns that identify a unit in the subnational tables
NAME_KEYS: Final[dict[Level, list[str]]] = {
    Level.NATIONAL: [],
    Level.AREA1: ["departamento"],
    Level.AREA2: ["departamento", "provincia"],
    Level.AREA3: ["departamento", "provincia", "distrito"],
}

_FILE_RE: Final = re.compile(
    r"^votacion-(general|departamento|provincia|distrito)-"
    r"(participacion|resultados|resumen|totales)(?:\.(\d{8}T\d{6}Z))?\.csv(?:\.gz)?$"
)

_RESUMEN_INTS: Final = [
    "MESAS_HABILES", "CONTABILIZA", "CONT_NORMAL", "CONT_ANULADA", "MESAS_NO_INST",
    "ACTAS_PROCESADAS", "TOTAL_JEE", "POR_PROCESAR", "ELECTORES_HABIL",
    "TOT_CIUDADANOS_VOTARON",
]
_PARTICIPACION_INTS: Final = ["ELECTORES_HABIL", "TOT_CIUDADANOS_VOTARON", "ACTAS_PROCESADAS",
                              "POR_PROCESAR", "CONTABILIZA"]
_PARTICIPACION_PCTS: Final = ["POR_ACTAS_CONTABILIZADAS", "POR_ACTAS_PROCESADAS"]

#: ``AGRUPACION`` labels of the ``totales`` table (accents stripped, upper case)
TOTAL_LABELS: Final[dict[str, str]] = {
    "TOTAL DE VOTOS VALIDOS": "t_valid",
    "VOTOS EN BLANCO": "t_blank",
    "VOTOS NULOS": "t_null",
    "VOTOS IMPUGNADOS": "t_challenged",
    "TOTAL DE VOTOS EMITIDOS": "t_cast",
}

#: tolerance, in percentage points, between a derived share of actas and ONPE's figure
#: (ONPE rounds its percentages to 3 decimals, so 0.0005 pp is the worst honest gap)
PCT_TOLERANCE_PP: Final = 0.01


def _err(file: str, line: int | None, field: str | None, rule: str, es: str,
         en: str) -> IngestError:
    return IngestError(Location(file, line, field), rule, es, en)


def _ascii_upper(s: str) -> str:
    """Upper case, accents stripped, whitespace collapsed (for matching labels/names)."""
    decomposed = unicodedata.normalize("NFKD", s)
    return " ".join(decomposed.encode("ascii", "ignore").decode().upper().split())


def _parse_utc(df: pl.DataFrame, column: str, file: str, fmt: str = "%Y-%m-%dT%H:%M:%SZ",
               offset: timedelta | None = None) -> pl.DataFrame:
    """Add ``__t`` (UTC datetime) parsed from ``column``; a bad value names its line."""
    parsed = pl.col(column).str.strip_chars().str.strptime(pl.Datetime("us"), fmt, strict=False)
    out = df.with_columns(parsed.alias("__t"))
    bad = out.filter(pl.col("__t").is_null())
    if bad.height:
        raise _err(file, int(bad["__line"][0]), column, "bad_timestamp",
                   f"fecha/hora ilegible {bad[column][0]!r} (formato esperado {fmt})",
                   f"unreadable date/time {bad[column][0]!r} (expected format {fmt})")
    t = pl.col("__t")
    if offset is not None:
        t = t - pl.duration(seconds=int(offset.total_seconds()))
    return out.with_columns(t.dt.replace_time_zone("UTC"))


def _cast_floats(df: pl.DataFrame, columns: Iterable[str], file: str) -> pl.DataFrame:
    cols = [c for c in columns if c in df.columns]
    out = df.with_columns([pl.col(c).str.strip_chars().cast(pl.Float64, strict=False)
                           for c in cols])
    for c in cols:
        bad = df.filter(pl.col(c).is_not_null() & out[c].is_null())
        if bad.height:
            raise _err(file, int(bad["__line"][0]), c, "not_a_number",
                       f"se esperaba un número y se encontró {bad[c][0]!r}",
                       f"expected a number, found {bad[c][0]!r}")
    return out


def _check_unique(df: pl.DataFrame, keys: list[str], file: str, rule: str = "duplicate_row",
                  what_es: str = "fila repetida", what_en: str = "repeated row") -> None:
    dup = df.filter(pl.struct(keys).is_duplicated())
    if dup.height:
        named = [k for k in keys if not k.startswith("__")]
        shown = _unit_label(dup.row(0, named=True), named)
        line = int(cast(int, dup["__line"].max())) if "__line" in dup.columns else None
        raise _err(file, line, ", ".join(named) or "updated", rule,
                   f"{what_es} ({shown}; {dup.height} filas)",
                   f"{what_en} ({shown}; {dup.height} rows)")


def _collect_files(folder_or_files: str | Path | Iterable[str | Path]
                   ) -> list[tuple[Path, Level, str, str | None]]:
    """(path, level, table, stamp) of every ONPE progress table named."""
    if isinstance(folder_or_files, (str, Path)):
        items: list[str | Path] = [folder_or_files]
    else:
        items = list(folder_or_files)
    found: list[tuple[Path, Level, str, str | None]] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.rglob("votacion-*")):
                m = _FILE_RE.match(f.name)
                if m and f.is_file():
                    found.append((f, FILE_LEVELS[m[1]], m[2], m[3]))
        elif p.is_file():
            m = _FILE_RE.match(p.name)
            if not m:
                raise _err(str(p), None, None, "unrecognised_file_name",
                           "nombre de archivo no reconocido; se espera "
                           "votacion-<general|departamento|provincia|distrito>-"
                           "<participacion|resultados|resumen|totales>[.<AAAAMMDDTHHMMSSZ>].csv",
                           "unrecognised file name; expected "
                           "votacion-<general|departamento|provincia|distrito>-"
                           "<participacion|resultados|resumen|totales>[.<YYYYMMDDTHHMMSSZ>].csv")
            found.append((p, FILE_LEVELS[m[1]], m[2], m[3]))
        else:
            raise _err(str(p), None, None, "file_not_found", "el archivo o carpeta no existe",
                       "the file or folder does not exist")
    return found


def _stamp_dt(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_table(src: SourceBytes, required: list[str], ints: list[str], stamp: str | None
                ) -> pl.DataFrame:
    df = read_csv_strict(src, required=[*required, "updated"], allow_extra=True)
    df = cast_ints(df, ints, src.path)
    df = _parse_utc(df, "updated", src.path)
    if stamp is not None:
        want = _stamp_dt(stamp)
        bad = df.filter(pl.col("__t") != pl.lit(want))
        if bad.height:
            raise _err(src.path, int(bad["__line"][0]), "updated", "timestamp_mismatch",
                       f"'updated' = {bad['updated'][0]} no coincide con la hora del nombre "
                       f"del archivo ({_iso(want)})",
                       f"'updated' = {bad['updated'][0]} does not match the time in the file "
                       f"name ({_iso(want)})")
    return df


def _check_ubigeo(df: pl.DataFrame, level: Level, file: str) -> pl.DataFrame:
    """Normalise CCODI_UBIGEO to 6 digits and check it is a code of ``level``."""
    u = pl.col("CCODI_UBIGEO").str.strip_chars().str.zfill(6)
    df = df.with_columns(u.alias("__ubigeo"))
    ok = pl.col("__ubigeo").str.contains(r"^\d{6}$")
    if level is Level.AREA1:
        ok = ok & pl.col("__ubigeo").str.ends_with("0000")
    elif level is Level.AREA2:
        ok = ok & pl.col("__ubigeo").str.ends_with("00") & ~pl.col("__ubigeo").str.ends_with(
            "0000")
    elif level is Level.AREA3:
        ok = ok & ~pl.col("__ubigeo").str.ends_with("00")
    bad = df.filter(~ok.fill_null(False))
    if bad.height:
        raise _err(file, int(bad["__line"][0]), "CCODI_UBIGEO", "bad_ubigeo",
                   f"ubigeo {bad['CCODI_UBIGEO'][0]!r} no es un código de nivel {level.value} "
                   "(6 dígitos; departamento XX0000, provincia XXXX00)",
                   f"ubigeo {bad['CCODI_UBIGEO'][0]!r} is not a {level.value} code "
                   "(6 digits; department XX0000, province XXXX00)")
    return df


def _unit_label(row: dict[str, Any], keys: list[str]) -> str:
    parts = [f"{k}={row[k]}" for k in keys]
    t = row.get("__t")
    if isinstance(t, datetime):
        parts.insert(0, f"updated={_iso(t)}")
    return ", ".join(parts)


def _check_coverage(base: pl.DataFrame, other: pl.DataFrame, on: list[str], base_file: str,
                    other_file: str) -> None:
    """Every unit-cut of the resumen must be in ``other`` and vice versa."""
    missing = base.join(other.select(on).unique(), on=on, how="anti")
    if missing.height:
        row = missing.row(0, named=True)
        keys = [k for k in on if k != "__t"]
        raise _err(other_file, None, ", ".join(keys) or "updated", "missing_unit",
                   f"falta la unidad ({_unit_label(row, keys)}) que sí está en {base_file} "
                   f"({missing.height} unidades faltan)",
                   f"the unit ({_unit_label(row, keys)}) present in {base_file} is missing "
                   f"({missing.height} units missing)")
    extra = other.join(base.select(on).unique(), on=on, how="anti")
    if extra.height:
        row = extra.row(0, named=True)
        keys = [k for k in on if k != "__t"]
        line = int(extra["__line"][0]) if "__line" in extra.columns else None
        raise _err(other_file, line, ", ".join(keys) or "updated", "unknown_unit",
                   f"unidad ({_unit_label(row, keys)}) ausente de {base_file}: no se le puede "
                   "asignar un ubigeo",
                   f"unit ({_unit_label(row, keys)}) absent from {base_file}: it cannot be "
                   "given a ubigeo")


def _flag(df: pl.DataFrame, mask: pl.Expr, rule: str, field: str, es: str, en: str,
          raw: list[str]) -> pl.DataFrame:
    hit = df.filter(mask.fill_null(False))
    if hit.height == 0:
        return pl.DataFrame(schema=REJECTED_SCHEMA | {"__t": pl.Datetime("us", "UTC")})
    return hit.select(
        pl.col("__line").cast(pl.Int64).alias("line"),
        pl.col("unit_code").alias("acta_id"),
        pl.lit(field).alias("field"),
        pl.lit(rule).alias("rule"),
        pl.lit(es).alias("message_es"),
        pl.lit(en).alias("message_en"),
        pl.struct([c for c in raw if c in hit.columns]).struct.json_encode().alias("raw"),
        pl.col("__t"),
    )


def _unit_findings(df: pl.DataFrame, cand_cols: list[str]) -> pl.DataFrame:
    """Arithmetic identities of ONPE's aggregate tables, as flags (rows are kept)."""
    c = pl.col
    mh = c("MESAS_HABILES").cast(pl.Float64)
    parts = [
        _flag(df, c("CONTABILIZA") != c("CONT_NORMAL") + c("CONT_ANULADA") + c("MESAS_NO_INST"),
              "counted_identity", "CONTABILIZA",
              "CONTABILIZA ≠ CONT_NORMAL + CONT_ANULADA + MESAS_NO_INST",
              "CONTABILIZA ≠ CONT_NORMAL + CONT_ANULADA + MESAS_NO_INST",
              ["CONTABILIZA", "CONT_NORMAL", "CONT_ANULADA", "MESAS_NO_INST"]),
        _flag(df, c("ACTAS_PROCESADAS") != c("CONTABILIZA") + c("TOTAL_JEE"),
              "processed_identity", "ACTAS_PROCESADAS",
              "ACTAS_PROCESADAS ≠ CONTABILIZA + TOTAL_JEE",
              "ACTAS_PROCESADAS ≠ CONTABILIZA + TOTAL_JEE",
              ["ACTAS_PROCESADAS", "CONTABILIZA", "TOTAL_JEE"]),
        _flag(df, c("POR_PROCESAR") != c("MESAS_HABILES") - c("ACTAS_PROCESADAS"),
              "pending_identity", "POR_PROCESAR",
              "POR_PROCESAR ≠ MESAS_HABILES − ACTAS_PROCESADAS",
              "POR_PROCESAR ≠ MESAS_HABILES − ACTAS_PROCESADAS",
              ["POR_PROCESAR", "MESAS_HABILES", "ACTAS_PROCESADAS"]),
        _flag(df, c("t_cast") != c("TOT_CIUDADANOS_VOTARON"), "cast_disagrees", "t_cast",
              "los votos emitidos de 'totales' difieren de TOT_CIUDADANOS_VOTARON del resumen",
              "votes cast in 'totales' differ from TOT_CIUDADANOS_VOTARON in the resumen",
              ["t_cast", "TOT_CIUDADANOS_VOTARON"]),
        _flag(df, (c("t_cast") != pl.sum_horizontal(
                  c("t_valid"), c("t_blank"), c("t_null"), c("t_challenged").fill_null(0)))
              & c("t_valid").is_not_null(), "cast_identity", "t_cast",
              "emitidos ≠ válidos + blancos + nulos (+ impugnados)",
              "cast ≠ valid + blank + null (+ challenged)",
              ["t_cast", "t_valid", "t_blank", "t_null", "t_challenged"]),
        _flag(df, (c("t_valid") != pl.sum_horizontal(cand_cols)), "valid_identity", "t_valid",
              "votos válidos ≠ suma de los candidatos", "valid votes ≠ sum of the candidates",
              ["t_valid", *cand_cols]),
        _flag(df, pl.any_horizontal([c(k) != c(f"p_{k}") for k in _PARTICIPACION_INTS]),
              "tables_disagree", "participacion",
              "la tabla de participación difiere del resumen en un contador",
              "the participacion table differs from the resumen in a counter",
              [*_PARTICIPACION_INTS, *[f"p_{k}" for k in _PARTICIPACION_INTS]]),
        _flag(df, (mh > 0) & (
            ((100 * c("CONTABILIZA") / mh - c("POR_ACTAS_CONTABILIZADAS")).abs()
             > PCT_TOLERANCE_PP)
            | ((100 * c("ACTAS_PROCESADAS") / mh - c("POR_ACTAS_PROCESADAS")).abs()
               > PCT_TOLERANCE_PP)),
              "pct_disagrees", "POR_ACTAS_CONTABILIZADAS",
              f"el % de actas publicado difiere en más de {PCT_TOLERANCE_PP} pp del calculado",
              f"the published % of actas differs from the derived one by more than "
              f"{PCT_TOLERANCE_PP} pp",
              ["CONTABILIZA", "ACTAS_PROCESADAS", "MESAS_HABILES", *_PARTICIPACION_PCTS]),
    ]
    return pl.concat(parts)


def _geography(df: pl.DataFrame, level: Level) -> pl.DataFrame | None:
    """Geography rows (code, name, level, parent, abroad, alt_code) from ONPE's names."""
    if level is Level.NATIONAL:
        return None
    u = pl.col("__ubigeo")
    base = df.select(
        (u.str.slice(0, 2) + "0000").alias("c1"), (u.str.slice(0, 4) + "00").alias("c2"),
        u.alias("c3"), u.str.starts_with("9").alias("abroad"),
        *[pl.col(k).alias(f"n{i}") for i, k in enumerate(NAME_KEYS[level], start=1)],
    ).unique(subset=["c3"], keep="first")
    parts = []
    for i in range(1, _LEVEL_ORDER[level] + 1):
        parent = pl.col(f"c{i - 1}") if i > 1 else pl.lit(None, pl.String)
        parts.append(base.select(
            pl.col(f"c{i}").alias("code"), pl.col(f"n{i}").alias("name"),
            pl.lit(f"area{i}").alias("level"), parent.alias("parent"), "abroad"))
    return (pl.concat(parts).unique(subset=["code", "level"], keep="first")
            .with_columns(pl.lit(None, pl.String).alias("alt_code")).sort("level", "code"))


def _parse_group(level: Level, stamp: str | None, files: dict[str, Path],
                 contest: Contest) -> list[ParsedSnapshot]:
    keys = NAME_KEYS[level]
    on = ["__t", *keys]
    srcs = {t: read_source(files[t]) for t in TABLES}
    cand_by_code = {c.authority_code: c.column for c in contest.candidates if c.authority_code}
    cand_cols = contest.candidate_columns
    if len(cand_by_code) != len(cand_cols):
        raise ValueError(f"every candidate of {contest.id} needs an authority_code "
                         "(ONPE C_CODI_AGRUPOL) to read ONPE's resultados tables")

    # resumen: acta counters, ubigeo
    res_src = srcs["resumen"]
    resumen = _read_table(res_src, [*keys, "CCODI_UBIGEO", *_RESUMEN_INTS], _RESUMEN_INTS,
                          stamp)
    _check_unique(resumen, on, res_src.path, "duplicate_unit", "unidad repetida",
                  "repeated unit")
    if level is not Level.NATIONAL:
        resumen = _check_ubigeo(resumen, level, res_src.path)
    else:
        resumen = resumen.with_columns(pl.lit("").alias("__ubigeo"))

    # participacion: duplicated counters and ONPE's percentages
    par_src = srcs["participacion"]
    par = _read_table(par_src, [*keys, *_PARTICIPACION_INTS, *_PARTICIPACION_PCTS],
                      _PARTICIPACION_INTS, stamp)
    par = _cast_floats(par, _PARTICIPACION_PCTS, par_src.path)
    _check_unique(par, on, par_src.path, "duplicate_unit", "unidad repetida", "repeated unit")
    _check_coverage(resumen, par, on, res_src.path, par_src.path)
    par = par.select(*on, *_PARTICIPACION_PCTS,
                     *[pl.col(k).alias(f"p_{k}") for k in _PARTICIPACION_INTS])

    # resultados: votes per party (long -> wide)
    rr_src = srcs["resultados"]
    rr = _read_table(rr_src, [*keys, "C_CODI_AGRUPOL", "TOTAL_VOTOS"], ["TOTAL_VOTOS"], stamp)
    rr = rr.with_columns(pl.col("C_CODI_AGRUPOL").str.strip_chars().str.zfill(8)
                         .replace_strict(cand_by_code, default=None, return_dtype=pl.String)
                         .alias("__col"))
    unknown = rr.filter(pl.col("__col").is_null())
    if unknown.height:
        raise _err(rr_src.path, int(unknown["__line"][0]), "C_CODI_AGRUPOL", "unknown_candidate",
                   f"código de agrupación {unknown['C_CODI_AGRUPOL'][0]!r} desconocido en "
                   f"{contest.id}",
                   f"party code {unknown['C_CODI_AGRUPOL'][0]!r} is unknown in {contest.id}")
    _check_unique(rr, [*on, "__col"], rr_src.path)
    _check_coverage(resumen, rr, on, res_src.path, rr_src.path)
    wide = rr.group_by(on).agg(
        [pl.col("TOTAL_VOTOS").filter(pl.col("__col") == col).first().alias(col)
         for col in cand_cols])
    lacking = wide.filter(pl.any_horizontal([pl.col(c).is_null() for c in cand_cols]))
    if lacking.height:
        row = lacking.row(0, named=True)
        raise _err(rr_src.path, None, "C_CODI_AGRUPOL", "missing_candidate_row",
                   f"la unidad ({_unit_label(row, keys)}) no trae fila (o trae votos vacíos) "
                   "para algún candidato",
                   f"the unit ({_unit_label(row, keys)}) lacks a row (or has empty votes) "
                   "for some candidate")

    # totales: valid / blank / null / cast (long -> wide)
    tt_src = srcs["totales"]
    tt = _read_table(tt_src, [*keys, "AGRUPACION", "TOTAL_VOTOS"], ["TOTAL_VOTOS"], stamp)
    labels = {v: TOTAL_LABELS.get(_ascii_upper(v)) for v in tt["AGRUPACION"].drop_nulls().unique()}
    tt = tt.with_columns(pl.col("AGRUPACION").replace_strict(labels, default=None,
                                                             return_dtype=pl.String)
                         .alias("__col"))
    unknown = tt.filter(pl.col("__col").is_null())
    if unknown.height:
        raise _err(tt_src.path, int(unknown["__line"][0]), "AGRUPACION", "unknown_total_label",
                   f"etiqueta {unknown['AGRUPACION'][0]!r} desconocida (se esperan: "
                   f"{', '.join(TOTAL_LABELS)})",
                   f"unknown label {unknown['AGRUPACION'][0]!r} (expected: "
                   f"{', '.join(TOTAL_LABELS)})")
    _check_unique(tt, [*on, "__col"], tt_src.path)
    _check_coverage(resumen, tt, on, res_src.path, tt_src.path)
    totals = tt.group_by(on).agg(
        [pl.col("TOTAL_VOTOS").filter(pl.col("__col") == col).first().alias(col)
         for col in TOTAL_LABELS.values()])

    df = (resumen.join(par, on=on, how="left").join(wide, on=on, how="left")
          .join(totals, on=on, how="left"))
    if level is Level.NATIONAL:
        code, abroad = pl.lit(""), pl.lit(None, pl.Boolean)
    else:
        width = {Level.AREA1: 2, Level.AREA2: 4, Level.AREA3: 6}[level]
        code = pl.col("__ubigeo").str.slice(0, width).str.pad_end(6, "0")
        abroad = pl.col("__ubigeo").str.starts_with("9")
    df = df.with_columns(
        pl.lit(level.value).alias("level"),
        code.alias("unit_code"),
        abroad.alias("abroad"),
        pl.col("MESAS_HABILES").alias("actas_total"),
        pl.col("CONTABILIZA").alias("actas_counted"),
        pl.col("ACTAS_PROCESADAS").alias("actas_processed"),
        pl.col("TOTAL_JEE").alias("actas_jee"),
        pl.col("POR_PROCESAR").alias("actas_pending"),
        pl.col("CONT_ANULADA").alias("actas_annulled"),
        pl.col("MESAS_NO_INST").alias("actas_not_installed"),
        pl.col("ELECTORES_HABIL").alias("electors"),
        pl.coalesce("t_cast", "TOT_CIUDADANOS_VOTARON").alias("cast"),
        pl.col("t_blank").alias("blank"),
        pl.col("t_null").alias("null"),
        pl.col("t_challenged").alias("challenged"),
    ).sort("__t", "unit_code")
    findings = _unit_findings(df, cand_cols)
    geography = _geography(resumen, level)

    ordered = sorted(files.items(), key=lambda kv: kv[1].name)
    combined = sha256_bytes("".join(srcs[t].sha256 for t, _ in ordered).encode())
    folder = files["resumen"].parent
    suffix = "" if stamp is None else f".{stamp}"
    ext = ".csv.gz" if files["resumen"].name.endswith(".gz") else ".csv"
    uri = f"{folder}/votacion-{_LEVEL_WORD[level]}-{{{','.join(TABLES)}}}{suffix}{ext}"
    file_meta = ";".join(f"{p.name}={srcs[t].sha256}" for t, p in ordered)

    out: list[ParsedSnapshot] = []
    for (t,), part_df in df.partition_by("__t", as_dict=True, maintain_order=True).items():
        assert isinstance(t, datetime)
        iso = _iso(t)
        meta = {"files": file_meta, "level": level.value, "units": str(part_df.height)}
        if level is Level.NATIONAL:
            row = part_df.row(0, named=True)
            meta |= {
                "onpe_por_actas_contabilizadas": repr(row["POR_ACTAS_CONTABILIZADAS"]),
                "onpe_por_actas_procesadas": repr(row["POR_ACTAS_PROCESADAS"]),
            }
        found = findings.filter(pl.col("__t") == t).drop("__t")
        out.append(ParsedSnapshot(
            contest=contest, kind=SnapshotKind.UNITS, as_of=t, source_uri=uri,
            source_sha256=combined, parser="onpe.progress_tables",
            frame=conform(part_df, contest, SnapshotKind.UNITS), findings=found,
            part=f"{level.value}@{iso}", label=f"ONPE {_LEVEL_WORD[level]} {iso}",
            level=level.value, geography=geography, metadata=meta,
        ))
    return out


def parse_progress_tables(
    folder_or_files: str | Path | Iterable[str | Path],
    level: Level | str | None = None,
    *,
    contest: Contest = PERU_2021_RUNOFF,
) -> list[ParsedSnapshot]:
    """Parse ONPE's progress tables into unit snapshots, one per (level, cut).

    ``folder_or_files`` is a folder (searched recursively for ``votacion-*`` files), a
    file, or a list of either. ``level`` (``national``/``area1``/``area2``/``area3``, or
    None for every level found) selects which tables to read. The four tables of a level
    and cut (``participacion``, ``resultados``, ``resumen``, ``totales``) must all be there.

    Mapping of ONPE's counters (``resumen`` table) to canonical columns:

    ======================  =====================================================
    actas_total             MESAS_HABILES
    actas_counted           CONTABILIZA (= CONT_NORMAL + CONT_ANULADA + MESAS_NO_INST)
    actas_processed         ACTAS_PROCESADAS (= CONTABILIZA + TOTAL_JEE)
    actas_jee               TOTAL_JEE
    actas_pending           POR_PROCESAR (= MESAS_HABILES − ACTAS_PROCESADAS)
    actas_annulled          CONT_ANULADA
    actas_not_installed     MESAS_NO_INST
    electors                ELECTORES_HABIL (electors of the counted actas)
    electors_total          null (not published in these tables)
    cast                    TOTAL DE VOTOS EMITIDOS (totales), else TOT_CIUDADANOS_VOTARON
    blank / null            VOTOS EN BLANCO / VOTOS NULOS (totales)
    challenged              VOTOS IMPUGNADOS (totales) when present, else null
    v_<candidate>           TOTAL_VOTOS of resultados, by C_CODI_AGRUPOL = authority_code
    ======================  =====================================================

    Unit codes are RENIEC ubigeos from ``CCODI_UBIGEO`` of the resumen table (department
    ``XX0000``, province ``XXXX00``, district ``XXXXXX``; ``9xxxxx`` is abroad); the other
    three tables carry only place names and are joined to the resumen of the same cut by
    (departamento, provincia, distrito). National rows have ``unit_code`` "" and a null
    ``abroad``. The 2021 subnational tables cover Peru only (25 departments, 196
    provinces, 1,874 districts): abroad (continents / countries / cities, ``9xxxxx``) is
    in the national tables but has no subnational rows, so national − Σ units = abroad
    (3,440 mesas). ``abroad`` is still set from the ubigeo, should a file carry it.
    ONPE's ``PENDIENTE`` counter is not used: it is not POR_PROCESAR (it is smaller, by
    487 actas at the first national cut and 6 at the last) and ONPE does not define it.
    ONPE's ``POR_ACTAS_CONTABILIZADAS`` / ``POR_ACTAS_PROCESADAS`` of national cuts go
    into ``metadata`` (they are actas_counted / actas_total and actas_processed /
    actas_total, rounded to 3 decimals).

    Snapshot identity: ``source_sha256`` is the SHA-256 of the concatenation of the four
    files' SHA-256 hex digests, taken in file-name order; ``part`` is
    ``"<level>@<UTC ISO time>"`` (for example ``"national@2021-06-07T05:48:00Z"``), so
    ``snapshot_id`` = SHA-256(source_sha256 + ":" + part) is content-addressed even when
    one set of files holds 48 cuts.
    """
    want: Level | None = None if level is None else Level(level)
    found = _collect_files(folder_or_files)
    if want is not None:
        found = [f for f in found if f[1] is want]
    if not found:
        where = str(folder_or_files) if isinstance(folder_or_files, (str, Path)) else "(lista)"
        raise _err(where, None, None, "no_files",
                   "no hay tablas de avance de ONPE (votacion-*.csv)"
                   + (f" de nivel {want.value}" if want else ""),
                   "no ONPE progress tables (votacion-*.csv) found"
                   + (f" at level {want.value}" if want else ""))
    groups: dict[tuple[Level, str | None], dict[str, Path]] = {}
    for path, lvl, table, stamp in found:
        g = groups.setdefault((lvl, stamp), {})
        if table in g and g[table].resolve() != path.resolve():
            raise _err(str(path), None, None, "duplicate_table",
                       f"la tabla {table} aparece dos veces ({g[table]})",
                       f"the {table} table appears twice ({g[table]})")
        g[table] = path
    out: list[ParsedSnapshot] = []
    for (lvl, stamp), files in sorted(groups.items(),
                                      key=lambda kv: (_LEVEL_ORDER[kv[0][0]], kv[0][1] or "")):
        missing = [t for t in TABLES if t not in files]
        if missing:
            some = next(iter(files.values()))
            suffix = "" if stamp is None else f".{stamp}"
            expected = some.parent / f"votacion-{_LEVEL_WORD[lvl]}-{missing[0]}{suffix}.csv"
            raise _err(str(expected), None, None, "missing_table",
                       f"falta la tabla {', '.join(missing)} de este corte; las cuatro "
                       f"({', '.join(TABLES)}) son necesarias",
                       f"the {', '.join(missing)} table of this cut is missing; all four "
                       f"({', '.join(TABLES)}) are needed")
        out.extend(_parse_group(lvl, stamp, files, contest))
    out.sort(key=lambda s: (s.as_of, _LEVEL_ORDER[Level(s.level or "national")]))
    return out


# --- 2026 first round (ikusij/ONPE-Monte-Carlo) --------------------------------------

BLANK_NAME: Final = "VOTOS EN BLANCO"
NULL_NAME: Final = "VOTOS NULOS"
_BUNDLE_KEYS: Final = ("ubigeo_distrito", "votosEmitidos", "votosRestantes", "pendientesJee",
                       "candidatos")
_HIERARCHY_NAMES: Final = ("ikusij_hierarchy.json.gz", "ikusij_hierarchy.json",
                           "hierarchy.json.gz", "hierarchy.json")

#: ikusij's time stamps are the clock of the machine that ran the scraper; no zone is
#: recorded. Peru (UTC−5, no daylight saving) is assumed unless told otherwise.
DEFAULT_UTC_OFFSET_HOURS: Final = -5.0


def _name_columns(contest: Contest) -> dict[str, str]:
    """Normalised ONPE name -> canonical column (candidates, blank, null)."""
    m = {_ascii_upper(c.name): c.column for c in contest.candidates}
    m[_ascii_upper(BLANK_NAME)] = "blank"
    m[_ascii_upper(NULL_NAME)] = "null"
    return m


def _load_json(src: SourceBytes) -> Any:
    from escrutinio.sources.sanitize import MAX_DECOMPRESSED_BYTES, JSONLimitError, load_json

    try:  # capped nesting (deep JSON: json_too_deep, not a RecursionError)
        return load_json(src.text, max_bytes=MAX_DECOMPRESSED_BYTES)
    except JSONLimitError as exc:
        raise _err(src.path, exc.line, None, exc.rule, exc.message_es,
                   exc.message_en) from None


def _bundle_frame(src: SourceBytes, contest: Contest) -> pl.DataFrame:
    """Validate the bundle and return one row per ubigeo (canonical vote columns plus
    ``votos_restantes`` and ``pendientes_jee``)."""
    data = _load_json(src)
    file = src.path
    if not isinstance(data, dict) or not data:
        raise _err(file, None, None, "json_structure",
                   "se esperaba un objeto JSON {ubigeo: {...}} no vacío",
                   "expected a non-empty JSON object {ubigeo: {...}}")
    names = _name_columns(contest)
    columns = list(dict.fromkeys(names.values()))
    cols: dict[str, list[int]] = {c: [] for c in
                                  [*columns, "cast", "votos_restantes", "pendientes_jee"]}
    codes: list[str] = []

    def whole(value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _err(file, None, field, "not_an_integer",
                       f"se esperaba un número entero y se encontró {value!r}",
                       f"expected an integer, found {value!r}")
        if value < 0:
            raise _err(file, None, field, "negative_count", f"conteo negativo ({value})",
                       f"negative count ({value})")
        return value

    for key, entry in data.items():
        if not isinstance(entry, dict):
            raise _err(file, None, key, "json_structure", "se esperaba un objeto por ubigeo",
                       "expected an object per ubigeo")
        for k in _BUNDLE_KEYS:
            if k not in entry:
                raise _err(file, None, f"{key}.{k}", "missing_field", f"falta el campo {k}",
                           f"field {k} is missing")
        ubigeo = str(entry["ubigeo_distrito"]).strip()
        if not re.fullmatch(r"\d{6}", ubigeo) or ubigeo != str(key).strip():
            raise _err(file, None, f"{key}.ubigeo_distrito", "bad_ubigeo",
                       f"ubigeo {ubigeo!r} inválido o distinto de la clave {key!r}",
                       f"ubigeo {ubigeo!r} is invalid or differs from the key {key!r}")
        codes.append(ubigeo)
        cols["cast"].append(whole(entry["votosEmitidos"], f"{key}.votosEmitidos"))
        cols["votos_restantes"].append(whole(entry["votosRestantes"], f"{key}.votosRestantes"))
        cols["pendientes_jee"].append(whole(entry["pendientesJee"], f"{key}.pendientesJee"))
        cands = entry["candidatos"]
        if not isinstance(cands, dict):
            raise _err(file, None, f"{key}.candidatos", "json_structure",
                       "se esperaba un objeto {nombre: votos}", "expected an object {name: votes}")
        seen: dict[str, int] = {}
        for name, votes in cands.items():
            col = names.get(_ascii_upper(str(name)))
            field = f"{key}.candidatos.{name}"
            if col is None:
                raise _err(file, None, field, "unknown_candidate",
                           f"candidato desconocido en {contest.id}: {name!r}",
                           f"unknown candidate in {contest.id}: {name!r}")
            if col in seen:
                raise _err(file, None, field, "duplicate_candidate",
                           "candidato repetido", "repeated candidate")
            seen[col] = whole(votes, field)
        if len(seen) != len(columns):
            lacking = [c for c in columns if c not in seen]
            raise _err(file, None, f"{key}.candidatos", "missing_candidate",
                       f"faltan candidatos: {', '.join(lacking)}",
                       f"candidates are missing: {', '.join(lacking)}")
        for c in columns:
            cols[c].append(seen[c])
    if len(set(codes)) != len(codes):
        raise _err(file, None, "ubigeo_distrito", "duplicate_unit", "ubigeo repetido",
                   "repeated ubigeo")
    return pl.DataFrame({"unit_code": codes, **cols},
                        schema_overrides={c: pl.Int64 for c in cols})


def _hierarchy_geography(path: Path) -> pl.DataFrame:
    """Geography from ikusij's ``hierarchy.json`` (departments/continents -> provinces/
    countries -> districts/cities, RENIEC ubigeos)."""
    src = read_source(path)
    data = _load_json(src)
    rows: list[tuple[str, str, str, str | None]] = []
    try:
        for d in data:
            rows.append((str(d["ubigeo"]), str(d["nombre"]), "area1", None))
            for p in d["provincias"]:
                rows.append((str(p["ubigeo"]), str(p["nombre"]), "area2", str(d["ubigeo"])))
                rows.extend((str(x["ubigeo"]), str(x["nombre"]), "area3", str(p["ubigeo"]))
                            for x in p["distritos"])
    except (KeyError, TypeError) as exc:
        raise _err(src.path, None, str(exc), "json_structure",
                   "se esperaba [{ubigeo, nombre, provincias: [{..., distritos: [...]}]}]",
                   "expected [{ubigeo, nombre, provincias: [{..., distritos: [...]}]}]"
                   ) from None
    geo = pl.DataFrame(rows, schema={"code": pl.String, "name": pl.String, "level": pl.String,
                                     "parent": pl.String}, orient="row")
    return (geo.with_columns(pl.col("code").str.starts_with("9").alias("abroad"),
                             pl.lit(None, pl.String).alias("alt_code"))
            .unique(subset=["code", "level"], keep="first").sort("level", "code"))


def _as_of_from_name(path: Path) -> datetime | None:
    m = re.search(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)", path.name)
    if not m:
        return None
    try:
        return datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC)
    except ValueError:
        return None


def read_2026_bundle_remaining(path: str | Path, *,
                               contest: Contest = PERU_2026_FIRST_ROUND) -> pl.DataFrame:
    """Per-ubigeo fields of the 2026 bundle that have no canonical column.

    Columns: ``unit_code``, ``votos_restantes`` (the scraper's extrapolation of votes still
    to come, see :func:`parse_2026_district_bundle`), ``pendientes_jee`` (ONPE's count of
    pending actas) and ``pct_actas_counted_implied`` — ONPE's percentage of actas counted
    recovered from the extrapolation, 100·E/(E+R); null where E+R = 0 (the scraper wrote
    R = 0 there whatever the percentage). Precise to about 100/E points, because the
    scraper truncated R to an integer.
    """
    src = read_source(path)
    df = _bundle_frame(src, contest)
    total = pl.col("cast") + pl.col("votos_restantes")
    return df.select(
        "unit_code", "votos_restantes", "pendientes_jee",
        pl.when(total > 0).then(100 * pl.col("cast") / total).otherwise(None)
        .alias("pct_actas_counted_implied"),
    )


def parse_2026_district_bundle(
    path: str | Path,
    *,
    as_of: datetime | str | None = None,
    hierarchy: str | Path | None = None,
    contest: Contest = PERU_2026_FIRST_ROUND,
) -> ParsedSnapshot:
    """Parse ikusij's district bundle of the 2026 first round (``bundle.json``).

    The file is ``{ubigeo: {ubigeo_distrito, votosEmitidos, votosRestantes, pendientesJee,
    candidatos: {name: votes}}}``, one entry per district at home and per city abroad
    (``9xxxxx``), fetched by the scraper from ONPE's ``presentacion-backend``
    (``/resumen-general/totales`` and
    ``/eleccion-presidencial/participantes-ubicacion-geografica-nombre``, district level).
    Each entry becomes one ``area3`` unit; abroad = ubigeo starting with 9.

    Field by field:

    * ``votosEmitidos`` — ONPE's ``totalVotosEmitidos`` of the counted actas -> ``cast``.
    * ``candidatos`` — votes per candidate name (ONPE's ``nombreCandidato``), matched to
      the contest's candidates by name (accents and case ignored) -> ``v_<code>``.
      ``VOTOS NULOS`` -> ``null``. ``VOTOS EN BLANCO`` -> ``blank``, **but it is not
      ONPE's figure**: the scraper computes it as max(0, emitidos − Σ names − nulos), so
      it absorbs anything else in the emitted total (challenged votes, if any, and any
      difference). By construction cast = Σ candidates + blank + null. ``challenged`` is
      therefore null (unknown).
    * ``pendientesJee`` — ONPE's ``pendientesJee`` count of actas: despite the name, the
      actas neither counted nor sent to the JEE (ONPE: totalActas = contabilizadas +
      enviadasJee + pendientesJee) -> ``actas_pending``. Zero everywhere in the 4 May file.
    * ``votosRestantes`` — **not ONPE data**: the scraper's extrapolation
      int(votosEmitidos × (100 / actasContabilizadas% − 1)), the votes still to come if the
      uncounted actas vote like the counted ones. It is not a count of actas or votes, so
      it has no canonical column: its total is kept in ``metadata``
      (``votos_restantes_total``) and per unit by :func:`read_2026_bundle_remaining`,
      which also recovers ONPE's % of actas counted from it.
    * ``actas_total``, ``actas_counted``, ``actas_processed``, ``actas_jee``,
      ``actas_annulled``, ``actas_not_installed``, ``electors`` and ``electors_total`` are
      null: the bundle does not carry them.

    ``as_of``: the file carries no time. Unless given, it is the date in the file name
    (``..._20260504.json.gz`` -> 2026-05-04T00:00Z, ``metadata['as_of_precision'] =
    'day'``). The bundle's totals equal the national time-series cut stamped
    ``2026-05-04 07:30`` (scraper's clock), which is the better time if you know it.

    ``hierarchy``: ikusij's ``hierarchy.json`` for names (department/continent ->
    province/country -> district/city). By default a sibling file named
    ``ikusij_hierarchy.json.gz`` (or ``hierarchy.json``) is used when present.
    """
    p = Path(path)
    src = read_source(p)
    df = _bundle_frame(src, contest)
    meta: dict[str, str] = {}
    if as_of is None:
        when = _as_of_from_name(p)
        if when is None:
            raise _err(src.path, None, None, "as_of_required",
                       "este archivo no trae fecha ni la tiene en el nombre: indique --as-of",
                       "this file carries no time and none is in its name: pass --as-of")
        meta["as_of_precision"] = "day"
    elif isinstance(as_of, str):
        when = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    else:
        when = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    when = when.astimezone(UTC)

    geo = None
    hier = Path(hierarchy) if hierarchy is not None else next(
        (p.parent / n for n in _HIERARCHY_NAMES if (p.parent / n).is_file()), None)
    if hier is not None:
        geo = _hierarchy_geography(hier)
        unknown = df.join(geo.filter(pl.col("level") == "area3").select(
            pl.col("code").alias("unit_code")), on="unit_code", how="anti")
        if unknown.height:
            raise _err(str(hier), None, unknown["unit_code"][0], "unknown_unit",
                       f"{unknown.height} ubigeos del bundle no están en la jerarquía",
                       f"{unknown.height} ubigeos of the bundle are not in the hierarchy")
        meta["hierarchy"] = f"{hier.name}={read_source(hier).sha256}"

    cand_cols = contest.candidate_columns
    u = pl.col("unit_code")
    frame = df.with_columns(
        pl.lit(Level.AREA3.value).alias("level"),
        u.str.starts_with("9").alias("abroad"),
        pl.col("pendientes_jee").alias("actas_pending"),
    ).sort("unit_code")
    with_line = frame.with_columns(pl.lit(None, pl.Int64).alias("__line"),
                                   pl.lit(when).alias("__t"))
    findings = _flag(
        with_line,
        pl.col("cast") != pl.sum_horizontal(*cand_cols, "blank", "null"),
        "sum_mismatch", "cast",
        "candidatos + blancos + nulos no suman los votos emitidos",
        "candidates + blank + null do not add up to votes cast",
        ["cast", "blank", "null"],
    ).drop("__t")
    restantes = int(df["votos_restantes"].sum())
    emitidos = int(df["cast"].sum())
    seen = df.filter(pl.col("cast") + pl.col("votos_restantes") > 0)
    fraction = dict(zip(seen["unit_code"].to_list(), (
        seen["cast"] / (seen["cast"] + seen["votos_restantes"])).round(6).to_list(),
        strict=True))
    meta |= {
        # what the projection may use for the votes still to come (acta counts unknown)
        FRACTION_COUNTED_KEY: json.dumps(fraction, sort_keys=True, separators=(",", ":")),
        "units": str(df.height),
        "units_abroad": str(int(frame["abroad"].sum())),
        "votos_restantes_total": str(restantes),
        "pendientes_jee_total": str(int(df["pendientes_jee"].sum())),
        "pct_votes_counted_implied": (f"{emitidos / (emitidos + restantes):.6f}"
                                      if emitidos + restantes else ""),
        "note": ("blank = scraper residual (emitidos - candidates - nulos); votosRestantes = "
                 "scraper extrapolation, not ONPE data; acta counts unknown"),
    }
    return ParsedSnapshot(
        contest=contest, kind=SnapshotKind.UNITS, as_of=when, source_uri=src.path,
        source_sha256=src.sha256, parser="ikusij.district_bundle",
        frame=conform(frame, contest, SnapshotKind.UNITS), findings=findings,
        label=f"ikusij bundle {p.name}", level=Level.AREA3.value, geography=geo,
        metadata=meta,
    )


#: a series cut below this fraction of the largest earlier total is a truncated scrape
SERIES_DROP_FRACTION: Final = 0.9


def parse_2026_national_timeseries(
    path: str | Path,
    *,
    utc_offset_hours: float = DEFAULT_UTC_OFFSET_HOURS,
    contest: Contest = PERU_2026_FIRST_ROUND,
) -> list[ParsedSnapshot]:
    """Parse ikusij's national time series of the 2026 first round (``timeseries.csv``).

    Columns: ``timestamp`` (``YYYY-MM-DD HH:MM``, the scraper machine's clock, no zone:
    read as UTC``utc_offset_hours``, Peru's UTC−5 by default), ``pct_counted``,
    ``candidate`` (ONPE's name, or ``VOTOS EN BLANCO`` / ``VOTOS NULOS``),
    ``projected_votes`` (the author's Monte Carlo projection: model output, ignored) and
    ``votes_counted`` (Σ of the district bundle of that moment for that name).

    A cut whose total falls below :data:`SERIES_DROP_FRACTION` of the largest total before
    it is a truncated scrape, not a correction (``2026-04-23 11:38``: 303,186 votes
    against 19.1 million the cut before): its row is rejected with the rule
    ``series_cut_truncated`` and kept in the snapshot's rejected rows; the snapshot holds
    no row, so histories and replays skip it instead of showing a false change of leader.
    Smaller decreases (``2026-04-29 11:32``: −12,221) are kept: corrections happen.

    Each timestamp becomes one national unit snapshot: ``v_<code>``, ``blank``, ``null``
    from ``votes_counted``; ``cast`` = the sum of all rows of the cut (the bundle's
    emitidos, since the bundle's blank is the residual that makes them add up). Acta
    counts are unknown and stay null. ``pct_counted`` is **not** ONPE's % of actas: it is
    Σ emitidos / (Σ emitidos + Σ votosRestantes) over districts (a vote-weighted average of
    ONPE's district percentages), plus, while some districts had nothing counted, a guess
    of 220 votes per pending acta there. It is kept in ``metadata['pct_votes_counted']``.
    """
    src = read_source(path)
    file = src.path
    df = read_csv_strict(src, required=["timestamp", "pct_counted", "candidate",
                                        "votes_counted"], optional=["projected_votes"])
    df = cast_ints(df, ["votes_counted"], file)
    df = _cast_floats(df, ["pct_counted"], file)
    for col in ("votes_counted", "pct_counted", "candidate"):
        empty = df.filter(pl.col(col).is_null())
        if empty.height:
            raise _err(file, int(empty["__line"][0]), col, "empty_field", "campo vacío",
                       "empty field")
    bad = df.filter((pl.col("pct_counted") < 0) | (pl.col("pct_counted") > 1)
                    | (pl.col("votes_counted") < 0))
    if bad.height:
        raise _err(file, int(bad["__line"][0]), "pct_counted/votes_counted", "out_of_range",
                   "pct_counted fuera de [0, 1] o votos negativos",
                   "pct_counted outside [0, 1] or negative votes")
    offset = timedelta(hours=utc_offset_hours)
    df = _parse_utc(df, "timestamp", file, fmt="%Y-%m-%d %H:%M", offset=offset)
    names = _name_columns(contest)
    mapping = {v: names.get(_ascii_upper(v)) for v in df["candidate"].unique()}
    df = df.with_columns(pl.col("candidate").replace_strict(mapping, default=None,
                                                            return_dtype=pl.String)
                         .alias("__col"))
    unknown = df.filter(pl.col("__col").is_null())
    if unknown.height:
        raise _err(file, int(unknown["__line"][0]), "candidate", "unknown_candidate",
                   f"candidato desconocido en {contest.id}: {unknown['candidate'][0]!r}",
                   f"unknown candidate in {contest.id}: {unknown['candidate'][0]!r}")
    _check_unique(df, ["__t", "__col"], file, "duplicate_candidate",
                  "candidato repetido en un corte", "candidate repeated within a cut")
    columns = list(dict.fromkeys(names.values()))
    counts = df.group_by("__t").agg(pl.len().alias("n"), pl.col("__line").min(),
                                    pl.col("pct_counted").n_unique().alias("n_pct"))
    short = counts.filter(pl.col("n") != len(columns))
    if short.height:
        row = short.sort("__line").row(0, named=True)
        raise _err(file, int(row["__line"]), "candidate", "missing_candidate",
                   f"el corte {_iso(row['__t'])} trae {row['n']} filas y se esperan "
                   f"{len(columns)} (candidatos + blancos + nulos)",
                   f"the cut {_iso(row['__t'])} has {row['n']} rows, expected {len(columns)} "
                   "(candidates + blank + null)")
    mixed = counts.filter(pl.col("n_pct") > 1)
    if mixed.height:
        row = mixed.sort("__line").row(0, named=True)
        raise _err(file, int(row["__line"]), "pct_counted", "inconsistent_cut",
                   "pct_counted cambia dentro de un mismo corte",
                   "pct_counted changes within one cut")
    wide = df.group_by("__t").agg(
        pl.col("pct_counted").first(), pl.col("timestamp").first(),
        *[pl.col("votes_counted").filter(pl.col("__col") == c).first().alias(c)
          for c in columns],
    ).sort("__t")
    wide = wide.with_columns(
        pl.lit(Level.NATIONAL.value).alias("level"), pl.lit("").alias("unit_code"),
        pl.lit(None, pl.Boolean).alias("abroad"),
        pl.sum_horizontal(columns).alias("cast"),
    )
    best_before = wide["cast"].cum_max().shift(1).fill_null(0)
    truncated = (wide["cast"] < SERIES_DROP_FRACTION * best_before).to_list()
    tz = timezone(offset)
    out: list[ParsedSnapshot] = []
    for row, part_df, cut_bad, best in zip(
            wide.iter_rows(named=True), wide.partition_by("__t", maintain_order=True),
            truncated, best_before.to_list(), strict=True):
        t = row["__t"]
        iso = _iso(t)
        frame = conform(part_df, contest, SnapshotKind.UNITS)
        rejected = pl.DataFrame(schema=REJECTED_SCHEMA)
        if cut_bad:
            rejected = pl.DataFrame({
                "line": [int(cast(int, df.filter(pl.col("__t") == t)["__line"].min()))],
                "acta_id": ["national/"], "field": ["votes_counted"],
                "rule": ["series_cut_truncated"],
                "message_es": [f"el corte suma {row['cast']:,} votos frente a {best:,} en un "
                               "corte anterior: un raspado truncado, no una corrección"],
                "message_en": [f"the cut adds up to {row['cast']:,} votes against {best:,} in "
                               "an earlier cut: a truncated scrape, not a correction"],
                "raw": [json.dumps({"timestamp": row["timestamp"], "cast": row["cast"]})],
            }, schema=REJECTED_SCHEMA)
            frame = frame.head(0)
        out.append(ParsedSnapshot(
            contest=contest, kind=SnapshotKind.UNITS, as_of=t, source_uri=file,
            source_sha256=src.sha256, parser="ikusij.national_timeseries",
            frame=frame, rejected=rejected,
            part=f"national@{iso}", label=f"ikusij national {row['timestamp']}",
            level=Level.NATIONAL.value,
            metadata={
                SERIES_FRACTION_KEY: repr(row["pct_counted"]),
                "timestamp_raw": str(row["timestamp"]),
                "timezone_assumed": str(tz),
                "note": ("pct_votes_counted is the scraper's vote-weighted estimate, not "
                         "ONPE's % of actas; acta counts unknown"),
            },
        ))
    return out

