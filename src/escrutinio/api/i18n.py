"""Languages and number formats of the pages. Spanish is the default; English lives under
``/en/``. Numbers follow Peru's usage (``8,835,653``; ``50.126%``), the same in both
languages, so a screenshot reads the same everywhere."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from escrutinio.countries import PACKS
from escrutinio.domain import short_name as domain_short_name

LANGS = ("es", "en")
MONTHS = {
    "es": ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}

LEVEL_ALIASES = {
    "national": "national", "nacional": "national",
    "area1": "area1", "department": "area1", "departamento": "area1",
    "area2": "area2", "province": "area2", "provincia": "area2",
    "area3": "area3", "district": "area3", "distrito": "area3",
}


def t(lang: str, es: str, en: str) -> str:
    return es if lang == "es" else en


def num(x: Any, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:,.{digits}f}" if digits or isinstance(x, float) else f"{int(x):,}"


def signed(x: Any, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    s = f"{x:+,.{digits}f}"
    return s.replace("-", "−")


def pct(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}f}%"


def prob(x: Any) -> str:
    """A probability in percent, never printed as a certain 100% or 0% unless exact."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    v = 100 * float(x)
    if 99.9 < v < 100:
        return ">99.9%"
    if 0 < v < 0.1:
        return "<0.1%"
    return f"{v:.1f}%"


#: the time zone of a country's election authority when the sources do not declare one
#: (ISO 3166 alpha-2 -> IANA zone); the pages show local time with its UTC offset
COUNTRY_ZONES = {
    "PE": "America/Lima", "CL": "America/Santiago", "AR": "America/Argentina/Buenos_Aires",
    "BO": "America/La_Paz", "EC": "America/Guayaquil", "CO": "America/Bogota",
    "MX": "America/Mexico_City", "BR": "America/Sao_Paulo", "UY": "America/Montevideo",
    "PY": "America/Asuncion", "VE": "America/Caracas", "ES": "Europe/Madrid",
    # the country packs' own zones (escrutinio.countries) win
    **{code: pack.timezone for code, pack in PACKS.items()},
}


def contest_zone(country: str | None, metadata: Mapping[str, Mapping[str, Any]] | None = None
                 ) -> tzinfo:
    """The contest's local time zone: the ``timezone`` its sources declare (sidecar key,
    latest snapshot first), else the country's authority's zone, else UTC."""
    for md in reversed(list((metadata or {}).values())):
        name = md.get("timezone") if isinstance(md, Mapping) else None
        if isinstance(name, str) and name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    name = COUNTRY_ZONES.get((country or "").upper())
    if name:
        try:
            return ZoneInfo(name)
        except ZoneInfoNotFoundError:
            pass
    return UTC


def utc_offset(d: datetime) -> str:
    """``UTC−5``, ``UTC+5:30``, ``UTC`` (a true minus sign)."""
    off = d.utcoffset()
    if not off:
        return "UTC"
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes > 0 else "−"
    h, m = divmod(abs(minutes), 60)
    return f"UTC{sign}{h}" + (f":{m:02d}" if m else "")


def local(d: datetime, tz: tzinfo | None) -> datetime:
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.astimezone(tz or UTC)


def when(d: datetime | None, lang: str, *, year: bool = False, tz: tzinfo | None = None
         ) -> str:
    """``6 jun 2021 20:23 (UTC−5)``: the contest's local time with its offset."""
    if d is None:
        return "—"
    d = local(d, tz)
    m = MONTHS[lang][d.month - 1]
    y = f" {d.year}" if year else ""
    return f"{d.day} {m}{y} {d:%H:%M} ({utc_offset(d)})"


def short_when(d: datetime, lang: str, tz: tzinfo | None = None) -> str:
    """``6 jun 20:23`` in local time (charts: the offset is said once, in the caption)."""
    d = local(d, tz)
    return f"{d.day} {MONTHS[lang][d.month - 1]} {d:%H:%M}"


def short_name(name: str) -> str:
    """A short label for charts and narrow columns (the one rule:
    :func:`escrutinio.domain.short_name`)."""
    return domain_short_name(name)
