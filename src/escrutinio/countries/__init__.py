"""Country packs: one place per country for everything it adds (docs/countries.md).

``pack_for(contest)`` picks the pack by ``contest.country`` (ISO 3166-1 alpha-2); a
country without a pack gets :data:`GENERIC` — "electoral court", "polling station",
"level 1..3", UTC and stated generic default rates — never another country's words.

Packs: :mod:`escrutinio.countries.peru` (PE), :mod:`escrutinio.countries.chile` (CL).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from typing import Any, Final, Protocol, TypeVar

from escrutinio.countries import chile, peru
from escrutinio.countries.pack import (
    GENERIC,
    CountryPack,
    CourtOutcomes,
    Pair,
    StatedRate,
    Vocabulary,
)
from escrutinio.domain import ContestKind

__all__ = ["GENERIC", "PACKS", "CountryPack", "CourtOutcomes", "Pair", "StatedRate",
           "Vocabulary", "has_runoff", "localized", "pack_for", "vocabulary"]

T_ = TypeVar("T_")

#: the packs escrutinio knows, by ISO 3166-1 alpha-2 code
PACKS: Final[dict[str, CountryPack]] = {p.code: p for p in (peru.PACK, chile.PACK)}


class _HasCountry(Protocol):
    @property
    def country(self) -> str: ...


def pack_for(contest: _HasCountry | str | None) -> CountryPack:
    """The pack of a contest (or of an ISO country code); :data:`GENERIC` when unknown."""
    if contest is None:
        return GENERIC
    code = contest if isinstance(contest, str) else contest.country
    return PACKS.get((code or "").upper(), GENERIC)


def _court_from_metadata(raw: object) -> tuple[Pair, Pair | None] | None:
    """A sidecar's ``court_name``: a string (both languages) or ``{"es", "en"}``, with an
    optional ``{"short": ..., "long": ...}`` form."""
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            raw = json.loads(raw) if raw.strip().startswith("{") else raw
    if isinstance(raw, str) and raw.strip():
        return (raw.strip(), raw.strip()), None
    if isinstance(raw, Mapping):
        if "short" in raw:
            short = _court_from_metadata(raw["short"])
            long = _court_from_metadata(raw.get("long"))
            return (short[0], long[0] if long else None) if short else None
        es, en = raw.get("es"), raw.get("en")
        if isinstance(es, str) and isinstance(en, str) and es.strip() and en.strip():
            return (es.strip(), en.strip()), None
    return None


def vocabulary(contest: _HasCountry | str | None,
               metadata: Mapping[str, object] | None = None) -> Vocabulary:
    """The contest's words: its pack's, with the court named by the snapshot metadata
    (a generic-format sidecar's ``court_name``) when it names one."""
    voc = pack_for(contest).vocabulary
    court = _court_from_metadata((metadata or {}).get("court_name"))
    return voc.with_court(*court) if court else voc


def has_runoff(contest: object) -> bool:
    """True for a first round that leads to a runoff when nobody reaches the contest's
    ``majority_threshold``; a first round without a threshold is a plurality contest
    (the most votes win; no runoff, no "second place" race)."""
    return (getattr(contest, "kind", None) is ContestKind.FIRST_ROUND
            and getattr(contest, "majority_threshold", None) is not None)


def localized(obj: T_, voc: Vocabulary) -> T_:
    """``obj`` (a frozen result dataclass, or a JSON-like tree) with every bilingual
    text — a string field or key ending in ``_es`` / ``_en`` — written in the contest's
    words (:meth:`Vocabulary.localize`). Numbers, codes and names are untouched."""
    if voc.is_reference:
        return obj
    return _walk(obj, voc)


def _text(name: str, value: object, voc: Vocabulary) -> object:
    if isinstance(value, str) and name.endswith(("_es", "_en")):
        return voc.localize(value, "es" if name.endswith("_es") else "en")
    return _walk(value, voc)


def _walk(obj: Any, voc: Vocabulary) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        changes = {}
        for f in fields(obj):
            if not f.init:
                continue
            old = getattr(obj, f.name)
            new = _text(f.name, old, voc)
            if new is not old:
                changes[f.name] = new
        return replace(obj, **changes) if changes else obj
    if isinstance(obj, dict):
        out_ = {k: _text(str(k), v, voc) for k, v in obj.items()}
        return obj if all(out_[k] is obj[k] for k in obj) else out_
    if type(obj) in (list, tuple) and obj:
        items = [_walk(v, voc) for v in obj]
        if all(a is b for a, b in zip(items, obj, strict=True)):
            return obj
        return type(obj)(items) if isinstance(obj, list) else tuple(items)
    return obj
