"""Map geometry for the dashboard: GeoJSON polygons drawn as SVG paths on the server.

Peru only for now (``MAPS``): the result files use RENIEC ubigeos, the GeoJSON uses INEI
codes, so each unit is joined RENIEC -> INEI through ``ubigeo_distrito.csv`` of the
``peru-geography`` dataset (found with :func:`escrutinio.datasets.locate`, never by a
fixed path). Departments use the first two INEI digits, provinces the first four.

Drawing is presentation, not analysis: an equirectangular projection scaled by the cosine
of the middle latitude, coordinates rounded to 0.1 px and consecutive duplicates dropped.
Computed once per level and process (``functools.cache``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import polars as pl

from escrutinio.countries import PACKS
from escrutinio.domain import Level

#: width of the SVG viewBox; the height follows from the country's shape
MAP_WIDTH = 560

#: level -> (GeoJSON file, property with the INEI key, property with the name, key length)
_PERU_FILES: dict[Level, tuple[str, str, str, int]] = {
    Level.AREA1: ("peru_departamental_simple.geojson", "FIRST_IDDP", "NOMBDEP", 2),
    Level.AREA2: ("peru_provincial_simple.geojson", "FIRST_IDPR", "NOMBPROV", 4),
    Level.AREA3: ("peru_distrital_simple.geojson", "IDDIST", "NOMBDIST", 6),
}

#: countries with a map; anything else gets the table without a map
#: the countries whose pack names boundary files (escrutinio.countries: Peru's geography)
MAPS: frozenset[str] = frozenset(code for code, pack in PACKS.items() if pack.maps)


@dataclass(frozen=True, slots=True)
class Shape:
    key: str  # INEI code (2, 4 or 6 digits)
    name: str
    d: str  # SVG path data


@dataclass(frozen=True, slots=True)
class MapGeometry:
    level: Level
    width: int
    height: int
    shapes: tuple[Shape, ...]
    source: str  # file name, for the attribution line

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width} {self.height}"


def _rings(geometry: dict[str, object] | None) -> Iterable[list[list[float]]]:
    if not geometry:
        return
    coords: Any = geometry.get("coordinates")  # GeoJSON: rings, or polygons of rings
    if geometry.get("type") == "Polygon":
        yield from coords
    elif geometry.get("type") == "MultiPolygon":
        for poly in coords:
            yield from poly


def _path(rings: list[np.ndarray]) -> str:
    parts: list[str] = []
    for xy in rings:
        r = np.round(xy, 1)
        keep = np.ones(len(r), dtype=bool)
        keep[1:] = np.any(r[1:] != r[:-1], axis=1)
        r = r[keep]
        if len(r) < 3:
            continue
        pts = " ".join(f"{x:g},{y:g}" for x, y in r.tolist())
        parts.append(f"M{pts}Z")
    return "".join(parts)


@cache
def peru_geometry(level: Level) -> MapGeometry:
    """SVG geometry of Peru's departments, provinces or districts (INEI keys)."""
    from escrutinio.datasets import locate

    fname, key_prop, name_prop, _ = _PERU_FILES[level]
    path = locate("peru-geography", fname)
    data = json.loads(path.read_text("utf-8"))
    # the projection is fixed by the department outline so the three levels align
    dep = json.loads(locate("peru-geography", _PERU_FILES[Level.AREA1][0]).read_text("utf-8"))
    allpts = np.array([p for f in dep["features"] for r in _rings(f["geometry"]) for p in r])
    lon0, lon1 = float(allpts[:, 0].min()), float(allpts[:, 0].max())
    lat0, lat1 = float(allpts[:, 1].min()), float(allpts[:, 1].max())
    kx = math.cos(math.radians((lat0 + lat1) / 2))
    pad = 4.0
    scale = (MAP_WIDTH - 2 * pad) / ((lon1 - lon0) * kx)
    height = math.ceil((lat1 - lat0) * scale + 2 * pad)

    grouped: dict[str, tuple[str, list[np.ndarray]]] = {}
    for f in data["features"]:
        props = f["properties"]
        key = str(props[key_prop])
        rings = []
        for ring in _rings(f["geometry"]):
            a = np.asarray(ring, dtype=np.float64)[:, :2]
            xy = np.column_stack([pad + (a[:, 0] - lon0) * kx * scale,
                                  pad + (lat1 - a[:, 1]) * scale])
            rings.append(xy)
        if not rings:
            continue  # features without geometry (a few districts in the source)
        name, have = grouped.get(key, (str(props.get(name_prop, key)), []))
        grouped[key] = (name, have + rings)
    shapes = tuple(Shape(k, n, _path(r)) for k, (n, r) in sorted(grouped.items()))
    return MapGeometry(level, MAP_WIDTH, height, shapes, fname)


@cache
def peru_reniec_to_inei(level: Level) -> dict[str, str]:
    """RENIEC unit code (6 digits, as in the results) -> INEI key of the map at ``level``.

    Built from ``ubigeo_distrito.csv`` (the district rows carry both codes); a RENIEC
    province or department takes the INEI prefix its districts share most often."""
    from escrutinio.datasets import locate

    n = _PERU_FILES[level][3]
    d = pl.read_csv(locate("peru-geography", "ubigeo_distrito.csv"), infer_schema_length=0,
                    null_values=["NA", ""], columns=["inei", "reniec"]).drop_nulls()
    if level is Level.AREA3:
        pairs = d.select(pl.col("reniec").alias("code"), pl.col("inei").alias("key"))
    else:
        suffix = "0" * (6 - n)
        pairs = (d.select((pl.col("reniec").str.slice(0, n) + suffix).alias("code"),
                          pl.col("inei").str.slice(0, n).alias("key"))
                 .group_by("code", "key").len().sort("len", descending=True)
                 .unique("code", keep="first", maintain_order=True))
    return dict(zip(pairs["code"].to_list(), pairs["key"].to_list(), strict=True))


def has_map(country: str) -> bool:
    return country in MAPS
