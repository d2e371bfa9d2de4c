"""The parameters the JSON routes share (their FastAPI declarations: validation and the
OpenAPI document)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import Path, Query

from escrutinio.api.backend import PROJECTION_SIMS
from escrutinio.service import DIFF_LIMIT


class LevelName(StrEnum):
    national = "national"
    area1 = "area1"
    area2 = "area2"
    area3 = "area3"
    nacional = "nacional"
    department = "department"
    departamento = "departamento"
    province = "province"
    provincia = "provincia"
    district = "district"
    distrito = "distrito"


LevelP = Annotated[LevelName, Path(description="national, area1, area2, area3, o / or "
                                   "departamento/department, provincia/province, "
                                   "distrito/district")]

Ref = Annotated[str, Path(
    max_length=300, description="id, prefijo (>= 6), etiqueta, latest, first, latest-N / id, "
    "prefix (>= 6), label, latest, first, latest-N",
    openapi_examples={"latest": {"value": "latest"}, "first": {"value": "first"}})]
ContestQ = Annotated[str | None, Query(max_length=200, description="contest id (default: the "
                                       "contest of the most recent snapshot)")]
SimsQ = Annotated[int | None, Query(ge=200, le=20_000, description="simulations "
                                    f"(default {PROJECTION_SIMS:,})")]
SeedQ = Annotated[int, Query(ge=0, le=2**32 - 1, description="seed of the simulations")]
BaselineQ = Annotated[str | None, Query(
    max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    description="baseline contest id, per acta or per unit at any level (default: the "
                "earlier round of the same election when stored); 'none': no baseline")]
LimitQ = Annotated[int, Query(ge=1, le=100_000, description="rows listed")]
DiffLimitQ = Annotated[int, Query(
    ge=0, le=100_000, description="filas listadas por categoría (0 = todas) / rows listed "
    f"per category (0 = all); default {DIFF_LIMIT}, as `escrutinio diff --limit`")]
PublicSeedQ = Annotated[str | None, Query(min_length=1, max_length=200,
                                          description="semilla pública / public seed")]


def strip_json(ref: str) -> str:
    return ref[:-5] if ref.endswith(".json") else ref


def analysis_params(ref: Ref, limit: LimitQ = 200, contest: ContestQ = None) -> dict[str, object]:
    """A per-snapshot analysis: the snapshot, the rows listed, the contest."""
    return {"ref": ref, "limit": limit, "contest": contest}
