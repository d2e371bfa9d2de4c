"""ONPE per-acta files (2021) as republished by public scrapers.

* ``ronderos``: one row per mesa, final state, columns ``v2_*`` (runoff) or ``v1_*``
  (first round) — the ronderos.pe export in jmcastagnetto's repositories.
* ``provisional``: one row per mesa with ONPE's state columns ``observacion`` /
  ``observacion_detalle`` and a ``descargado`` download time (runoff, 8 and 15 June).

Pending rows carry zeros in the scrape (a gap, not zero votes): their figures become
null. Actas bound for the JEE keep their provisional digitised figures.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from escrutinio.domain import ActaStatus, Contest, SnapshotKind
from escrutinio.errors import IngestError, Location
from escrutinio.sources.base import (
    ParsedSnapshot,
    cast_ints,
    conform,
    latest_timestamp,
    parse_timestamp,
    read_csv_strict,
    read_source,
)
from escrutinio.sources.peru import (
    PERU_2021_FIRST_ROUND,
    PERU_2021_RUNOFF,
    geography_from_names,
    status_exprs,
    ubigeo_area_exprs,
)
from escrutinio.verify.checks import validate_actas

#: runoff candidate code -> column suffix in the ronderos export (first round: same code)
_RUNOFF_SUFFIX = {"castillo": "perulibre", "fujimori": "fp"}

_RONDEROS_META = ["TOT_CIUDADANOS_VOTARON", "emitidos", "validos", "blanco", "impugnados",
                  "nulos", "OBSERVACION", "OBSERVACION_TXT", "CCODI_UBIGEO", "DEPARTAMENTO",
                  "PROVINCIA", "DISTRITO", "TDIRE_LOCAL", "TNOMB_LOCAL", "CCOPIA_ACTA",
                  "NNUME_HABILM", "N_CANDIDATOS", "CCENT_COMPU"]


def _finish(
    df: pl.DataFrame, contest: Contest, src_path: str, sha: str, raw_len: int, parser: str,
    as_of: datetime, label: str, geography: pl.DataFrame,
) -> ParsedSnapshot:
    canon = conform(df, contest, SnapshotKind.ACTAS).with_columns(df["__line"])
    result = validate_actas(canon, contest)
    return ParsedSnapshot(
        contest=contest, kind=SnapshotKind.ACTAS, as_of=as_of, source_uri=src_path,
        source_sha256=sha, parser=parser, frame=result.frame, rejected=result.rejected,
        findings=result.findings, label=label, geography=geography,
        metadata={"bytes": str(raw_len)},
    )


def parse_ronderos(
    path: str | Path, *, contest: Contest | None = None, as_of: datetime | str | None = None,
    label: str = "",
) -> ParsedSnapshot:
    """Parse a ronderos.pe per-acta export (runoff ``v2_`` or first round ``v1_``)."""
    src = read_source(path)
    header = src.text.split(b"\n", 1)[0].decode()
    prefix = "v2_" if "v2_emitidos" in header else "v1_"
    if contest is None:
        contest = PERU_2021_RUNOFF if prefix == "v2_" else PERU_2021_FIRST_ROUND
    suffix = _RUNOFF_SUFFIX if prefix == "v2_" else {}
    cand_cols = [prefix + suffix.get(c.code, c.code) for c in contest.candidates]
    required = ["mesa", *cand_cols, *[prefix + c for c in _RONDEROS_META]]
    df = read_csv_strict(src, required=required, optional=["rowid"])
    df = cast_ints(df, [*cand_cols, *[prefix + c for c in
                                      ("TOT_CIUDADANOS_VOTARON", "emitidos", "validos",
                                       "blanco", "impugnados", "nulos", "NNUME_HABILM")]],
                   src.path)
    p = prefix
    df = df.with_columns(
        pl.col("mesa").str.strip_chars().str.zfill(6).alias("acta_id"),
        *ubigeo_area_exprs(p + "CCODI_UBIGEO"),
        pl.col(p + "TNOMB_LOCAL").alias("polling_place"),
        *status_exprs(p + "OBSERVACION", p + "OBSERVACION_TXT"),
        pl.col(p + "NNUME_HABILM").alias("electors"),
        pl.col(p + "emitidos").alias("cast"),
        pl.col(p + "blanco").alias("blank"),
        pl.col(p + "nulos").alias("null"),
        pl.col(p + "impugnados").alias("challenged"),
        *[pl.col(src_c).alias(c.column) for src_c, c in zip(cand_cols, contest.candidates,
                                                             strict=True)],
    )
    geo = geography_from_names(df, p + "CCODI_UBIGEO", p + "DEPARTAMENTO", p + "PROVINCIA",
                               p + "DISTRITO", with_areas=True)
    when = parse_timestamp(as_of) if isinstance(as_of, str) else as_of
    if when is None:
        raise IngestError(Location(src.path), "as_of_required",
                          "este archivo no trae fecha: indique --as-of",
                          "this file carries no timestamp: pass --as-of")
    return _finish(df, contest, src.path, src.sha256, len(src.raw), "onpe.ronderos", when,
                   label or Path(src.path).name, geo)


_PROVISIONAL_COLUMNS = ["num_mesa", "observacion", "observacion_detalle", "ubigeo",
                        "departamento", "provincia", "distrito", "local", "num_resoluciones",
                        "num_electores", "num_votos", "votos_perulibre", "votos_fuerzapopular",
                        "votos_blanco", "votos_nulos", "votos_impugnados", "descargado"]


def parse_provisional(path: str | Path, *, label: str = "") -> ParsedSnapshot:
    """Parse a provisional per-acta state of the 2021 runoff (``hist_actas_*``)."""
    contest = PERU_2021_RUNOFF
    src = read_source(path)
    df = read_csv_strict(src, required=_PROVISIONAL_COLUMNS)
    figures = ["num_electores", "num_votos", "votos_perulibre", "votos_fuerzapopular",
               "votos_blanco", "votos_nulos", "votos_impugnados"]
    df = cast_ints(df, [*figures, "num_resoluciones"], src.path)
    df = df.with_columns(
        pl.col("num_mesa").str.strip_chars().str.zfill(6).alias("acta_id"),
        *ubigeo_area_exprs("ubigeo"),
        pl.col("local").alias("polling_place"),
        *status_exprs("observacion", "observacion_detalle"),
    )
    pending = pl.col("status") == ActaStatus.PENDING.value
    vote = {"num_votos": "cast", "votos_blanco": "blank", "votos_nulos": "null",
            "votos_impugnados": "challenged", "votos_perulibre": "v_castillo",
            "votos_fuerzapopular": "v_fujimori"}
    df = df.with_columns(
        pl.col("num_electores").alias("electors"),
        *[pl.when(pending).then(None).otherwise(pl.col(k)).alias(v) for k, v in vote.items()],
    )
    stamps = df["descargado"].drop_nulls()
    if stamps.len() == 0:
        raise IngestError(Location(src.path, 2, "descargado"), "as_of_missing",
                          "sin fecha de descarga", "no download time")
    as_of = latest_timestamp(df, "descargado", src.path) or parse_timestamp(str(stamps.max()))
    geo = geography_from_names(df, "ubigeo", "departamento", "provincia", "distrito",
                               with_areas=True)
    return _finish(df, contest, src.path, src.sha256, len(src.raw), "onpe.provisional", as_of,
                   label or Path(src.path).name, geo)
