"""Chile 2021, first round (21 Nov 2021), per mesa — converted to the generic format.

The converter of Chile's country pack (:mod:`escrutinio.countries.chile`, which names it
in its ``parsers``). It lives with the other sources because it reads a file and writes the
generic format: country packs sit below the sources and import none of them
(docs/design.md, "Layers").

The file ``chile_election_2021.csv.gz`` (SERVEL's results per mesa, as shipped by the
CRAN package fastei) has one row per ballot box: ``REGION``, ``ELECTORAL.DISTRICT``
(SERVEL's *circunscripción electoral*), ``BALLOT.BOX`` (the mesa, unique within its
circunscripción), ``C1``..``C7`` (Boric, Kast, Provoste, Sichel, Artés, Enríquez-Ominami,
Parisi), ``BLANK.VOTES``, ``NULL.VOTES``, voters by age band and sex, and ``MISMATCH``.

How it maps onto the canonical acta frame:

* ``acta_id`` = ``<circunscripción slug>:<mesa>``, e.g. ``ANTOFAGASTA_NORTE:126``;
* ``area1`` = región (CUT code, ``"02"`` Antofagasta ... ``"16"`` Ñuble); ``area2`` =
  comuna is **not in the file** and stays null; ``area3`` = circunscripción electoral
  (code = upper-case slug of its name);
* ``electors`` is **null**: the file has no registered-elector column (no *padrón*), so
  turnout cannot be computed and the ``cast_exceeds_electors`` rule never applies;
* ``cast`` = C1..C7 + blank + null, i.e. SERVEL's *votos emitidos* (ballots in the box).
  The file's voters (M + F, or the age bands) differ from that on 9,719 mesas (its
  ``MISMATCH`` flag): those are people who signed the roll, not ballots counted;
* ``challenged`` is null (Chile has no *votos impugnados*), ``abroad`` false (the file
  holds no mesa abroad), ``status`` is ``counted`` for every mesa (final results).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Final

import polars as pl

from escrutinio.countries.chile import AREA_LABELS
from escrutinio.domain import ActaStatus, Candidate, Contest, ContestKind, SnapshotKind
from escrutinio.errors import IngestError, Location
from escrutinio.sources.base import cast_ints, conform, read_csv_strict, read_source
from escrutinio.sources.tabular import write_tabular

CHILE_2021_FIRST_ROUND: Final = Contest(
    id="cl-2021-presidencial-1v",
    name="Chile 2021, elección presidencial, primera vuelta",
    kind=ContestKind.FIRST_ROUND,
    country="CL",
    date="2021-11-21",
    majority_threshold=0.5,
    candidates=(
        Candidate("boric", "Gabriel Boric Font", "Apruebo Dignidad", "C1"),
        Candidate("kast", "José Antonio Kast Rist", "Frente Social Cristiano", "C2"),
        Candidate("provoste", "Yasna Provoste Campillay", "Nuevo Pacto Social", "C3"),
        Candidate("sichel", "Sebastián Sichel Ramírez", "Chile Podemos Más", "C4"),
        Candidate("artes", "Eduardo Artés Brichetti", "Unión Patriótica", "C5"),
        Candidate("meo", "Marco Enríquez-Ominami Gumucio", "Partido Progresista", "C6"),
        Candidate("parisi", "Franco Parisi Fernández", "Partido de la Gente", "C7"),
    ),
)

#: region as written in the file -> (CUT region code, name)
CHILE_REGIONS: Final[dict[str, tuple[str, str]]] = {
    "DE TARAPACA": ("01", "Tarapacá"),
    "DE ANTOFAGASTA": ("02", "Antofagasta"),
    "DE ATACAMA": ("03", "Atacama"),
    "DE COQUIMBO": ("04", "Coquimbo"),
    "DE VALPARAISO": ("05", "Valparaíso"),
    "DEL LIBERTADOR GENERAL BERNARDO O'HIGGINS": ("06", "Libertador General Bernardo O'Higgins"),
    "DEL MAULE": ("07", "Maule"),
    "DEL BIOBIO": ("08", "Biobío"),
    "DE LA ARAUCANIA": ("09", "La Araucanía"),
    "DE LOS LAGOS": ("10", "Los Lagos"),
    "DE AYSEN DEL GENERAL CARLOS IBANEZ DEL CAMPO": ("11", "Aysén del General Carlos Ibáñez "
                                                     "del Campo"),
    "DE MAGALLANES Y DE LA ANTARTICA CHILENA": ("12", "Magallanes y de la Antártica Chilena"),
    "METROPOLITANA DE SANTIAGO": ("13", "Metropolitana de Santiago"),
    "DE LOS RIOS": ("14", "Los Ríos"),
    "DE ARICA Y PARINACOTA": ("15", "Arica y Parinacota"),
    "DE NUBLE": ("16", "Ñuble"),
}

__all__ = ["AREA_LABELS", "CHILE_2021_FIRST_ROUND", "CHILE_REGIONS", "chile_2021_actas",
           "convert_chile_2021"]

_CANDIDATE_SOURCE = [c.authority_code for c in CHILE_2021_FIRST_ROUND.candidates]
_REQUIRED = ["REGION", "ELECTORAL.DISTRICT", "BALLOT.BOX", *_CANDIDATE_SOURCE, "BLANK.VOTES",
             "NULL.VOTES"]


def _slug(col: str) -> pl.Expr:
    return (pl.col(col).str.strip_chars().str.to_uppercase()
            .str.replace_all(r"[^A-Z0-9]+", "_").str.strip_chars("_"))


def chile_2021_actas(path: str | Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read the Chile 2021 file into a canonical acta frame and its geography.

    ``electors`` is null on every row (no registered-elector column in the source); see
    the module docstring for the rest of the mapping.
    """
    src = read_source(path)
    df = read_csv_strict(src, required=_REQUIRED, allow_extra=True)
    df = cast_ints(df, [*_CANDIDATE_SOURCE, "BLANK.VOTES", "NULL.VOTES"], src.path)
    region = pl.col("REGION").str.strip_chars().str.to_uppercase()
    df = df.with_columns(
        region.replace_strict({k: v[0] for k, v in CHILE_REGIONS.items()}, default=None,
                              return_dtype=pl.String).alias("area1_code"),
        region.replace_strict({k: v[1] for k, v in CHILE_REGIONS.items()}, default=None,
                              return_dtype=pl.String).alias("area1_name"),
        _slug("ELECTORAL.DISTRICT").alias("area3_code"),
    )
    unknown = df.filter(pl.col("area1_code").is_null())
    if unknown.height:
        raise IngestError(
            Location(src.path, int(unknown["__line"][0]), "REGION"), "unknown_region",
            f"región desconocida: {unknown['REGION'][0]!r}",
            f"unknown region: {unknown['REGION'][0]!r}",
        )
    votes = [*_CANDIDATE_SOURCE, "BLANK.VOTES", "NULL.VOTES"]
    df = df.with_columns(
        (pl.col("area3_code") + pl.lit(":") + pl.col("BALLOT.BOX").str.strip_chars())
        .alias("acta_id"),
        pl.lit(None, pl.String).alias("area2_code"),
        pl.lit(False).alias("abroad"),
        pl.lit(ActaStatus.COUNTED.value).alias("status"),
        pl.lit(False).alias("resolved"),
        pl.lit(None, pl.Int64).alias("electors"),
        pl.sum_horizontal(votes).alias("cast"),
        pl.col("BLANK.VOTES").alias("blank"),
        pl.col("NULL.VOTES").alias("null"),
        *[pl.col(c.authority_code).alias(c.column) for c in CHILE_2021_FIRST_ROUND.candidates],
    )
    frame = conform(df, CHILE_2021_FIRST_ROUND, SnapshotKind.ACTAS)
    geo = pl.concat([
        df.select(pl.col("area1_code").alias("code"), pl.col("area1_name").alias("name"),
                  pl.lit("area1").alias("level"), pl.lit(None, pl.String).alias("parent")),
        df.select(pl.col("area3_code").alias("code"),
                  pl.col("ELECTORAL.DISTRICT").str.strip_chars().alias("name"),
                  pl.lit("area3").alias("level"), pl.col("area1_code").alias("parent")),
    ]).unique(subset=["code", "level"], keep="first", maintain_order=True).with_columns(
        pl.lit(False).alias("abroad"), pl.lit(None, pl.String).alias("alt_code"),
    ).sort("level", "code")
    return frame, geo


def convert_chile_2021(
    path: str | Path, out: str | Path, *, as_of: datetime | str,
    source_uri: str | None = None,
) -> tuple[Path, Path]:
    """Convert the Chile 2021 file to the generic per-acta format (``out`` = ``.csv``,
    ``.csv.gz`` or ``.parquet``) with its sidecar. The file carries no timestamp: pass
    ``as_of``. ``electors`` is left empty (null): the source has no elector roll.
    The file carries region names (area1) and circunscripción names (area3); reading it
    back, each circunscripción has its region as parent (area2, the comuna, is unknown).
    """
    frame, geo = chile_2021_actas(path)
    return write_tabular(frame, CHILE_2021_FIRST_ROUND, out, as_of, geography=geo,
                         source_uri=source_uri or str(path), area_labels=AREA_LABELS)
