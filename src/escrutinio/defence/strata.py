"""Strata for quick counts: area1 (department) × urban/rural, and abroad.

The stratum of a mesa is generic: ``"<area1_code>|U"`` or ``"<area1_code>|R"`` at home,
``"abroad"`` (or ``"abroad|<area1_code>"``, by continent, when asked) abroad. What counts
as urban is a per-district flag supplied by the caller; without one, the stratum is the
area1 alone.

Peru's urban/rural proxy (:func:`peru_urban_districts`) comes from the district table
``peru-geography/ubigeo_distrito.csv`` (jmcastagnetto/ubigeo-peru-aumentado), joined on
the RENIEC ubigeo that ONPE's files use: a district is **urban when its 2020 population
density is at least 100 inhabitants per km²**. Where the table has no density (``NA``,
``S.I.``: districts created after the table, 4 districts and 43 mesas in 2021) or does not
know the ubigeo, the fallback is the size of the district's roll: urban when it has at
least 20,000 electors. With this rule 67% of the 2021 home mesas are urban; Castillo got
43% of the two-candidate vote in them and 67% in the rural ones, which is why the split
is worth a stratum. (INEI's census definition of urban — populated centres of 100 or
more contiguous dwellings — is finer than a district and not in the public tables: the
proxy is a district-level approximation, documented as such.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl

from escrutinio.errors import IngestError, Location
from escrutinio.sources.base import read_csv_strict, read_source

URBAN_DENSITY: Final = 100.0  # inhabitants per km², 2020
URBAN_ELECTORS_FALLBACK: Final = 20_000
ABROAD: Final = "abroad"


def peru_urban_districts(path: str | Path) -> pl.DataFrame:
    """``area3_code`` (RENIEC ubigeo), ``density`` (inhabitants/km², null if unknown) and
    ``urban`` (null where the density is unknown: the caller's fallback decides)."""
    src = read_source(path)
    df = read_csv_strict(src, required=["reniec", "pob_densidad_2020"], allow_extra=True)
    out = df.select(
        pl.col("reniec").str.strip_chars().str.zfill(6).alias("area3_code"),
        pl.col("pob_densidad_2020").str.strip_chars().cast(pl.Float64, strict=False)
        .alias("density"),
    ).filter(pl.col("area3_code").str.contains(r"^\d{6}$"))
    if out.height == 0:
        raise IngestError(Location(src.path, 2, "reniec"), "no_rows",
                          "la tabla de distritos no tiene ubigeos RENIEC",
                          "the district table has no RENIEC ubigeos")
    return out.unique("area3_code", keep="first").with_columns(
        pl.when(pl.col("density").is_null()).then(None)
        .otherwise(pl.col("density") >= URBAN_DENSITY).alias("urban"))


def assign_strata(actas: pl.DataFrame, urban: pl.DataFrame | None = None, *,
                  abroad_by_area1: bool = False,
                  electors_fallback: int = URBAN_ELECTORS_FALLBACK) -> pl.DataFrame:
    """One row per acta: ``acta_id, stratum, area1_code, area3_code, abroad, electors,
    urban``. ``urban``: frame ``area3_code, urban`` (null urban -> the electors rule)."""
    base = actas.select("acta_id", "area1_code", "area3_code",
                        pl.col("abroad").fill_null(False), pl.col("electors").fill_null(0))
    if urban is not None:
        district_electors = base.group_by("area3_code").agg(
            pl.col("electors").sum().alias("__district_electors"))
        base = (base.join(urban.select("area3_code", pl.col("urban").alias("__u")),
                          on="area3_code", how="left")
                .join(district_electors, on="area3_code", how="left")
                .with_columns(pl.coalesce(pl.col("__u"), pl.col("__district_electors")
                                          >= electors_fallback).alias("urban"))
                .drop("__u", "__district_electors"))
        home = (pl.col("area1_code") + pl.when(pl.col("urban")).then(pl.lit("|U"))
                .otherwise(pl.lit("|R")))
    else:
        base = base.with_columns(pl.lit(None, dtype=pl.Boolean).alias("urban"))
        home = pl.col("area1_code")
    away = (pl.lit(ABROAD + "|") + pl.col("area1_code")) if abroad_by_area1 else pl.lit(ABROAD)
    return base.with_columns(
        pl.when(pl.col("abroad")).then(away).otherwise(home).alias("stratum"),
        pl.when(pl.col("abroad")).then(None).otherwise(pl.col("urban")).alias("urban"),
    ).select("acta_id", "stratum", "area1_code", "area3_code", "abroad", "electors", "urban")
