"""What a country calls its three nested areas (``area1`` ⊃ ``area2`` ⊃ ``area3``).

The names come, in this order, from the newest snapshot of the contest whose metadata
carries ``area_labels`` (a generic-format sidecar, :mod:`escrutinio.sources.tabular`), from
the country pack of a country escrutinio knows (:mod:`escrutinio.countries`, by ISO
country code), or
fall back to the generic "nivel 1 / level 1" (:data:`escrutinio.domain.GENERIC_AREA_LABELS`).
Presenters ask :func:`escrutinio.service.area_labels`; nothing below this layer names a
country's levels.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Final

from escrutinio.countries import PACKS
from escrutinio.domain import GENERIC_AREA_LABELS

#: the country packs' own names, by ISO 3166-1 alpha-2 country code
KNOWN: Final[dict[str, Mapping[str, Mapping[str, str]]]] = {
    code: pack.area_labels for code, pack in PACKS.items()
}


def _pairs(labels: Mapping[str, Mapping[str, str]]) -> dict[str, tuple[str, str]]:
    return {k: (str(v["es"]), str(v["en"])) for k, v in labels.items()
            if k in GENERIC_AREA_LABELS and isinstance(v, Mapping)
            and isinstance(v.get("es"), str) and isinstance(v.get("en"), str)}


def from_metadata(metadata: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``area_labels`` of one snapshot's metadata (a JSON text), or ``{}``."""
    raw = metadata.get("area_labels")
    if not raw:
        return {}
    try:
        obj = json.loads(raw)
    except ValueError:
        return {}
    return _pairs(obj) if isinstance(obj, Mapping) else {}


def area_labels(country: str, newest_first: Iterable[Mapping[str, str]] = ()
                ) -> dict[str, tuple[str, str]]:
    """``{"area1": (es, en), ...}`` for all three levels: the first snapshot metadata in
    ``newest_first`` that names them, else the known country's names, else generic."""
    out = dict(GENERIC_AREA_LABELS)
    out.update(_pairs(KNOWN.get(country.upper(), {})))
    for md in newest_first:
        found = from_metadata(md)
        if found:
            out.update(found)
            break
    return out
