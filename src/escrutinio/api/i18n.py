"""Languages and number formats of the pages. Spanish is the default; English lives under
``/en/``. Numbers follow Peru's usage (``8,835,653``; ``50.126%``), the same in both
languages, so a screenshot reads the same everywhere."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

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


def when(d: datetime | None, lang: str, *, year: bool = False) -> str:
    if d is None:
        return "—"
    m = MONTHS[lang][d.month - 1]
    y = f" {d.year}" if year else ""
    return f"{d.day} {m}{y} {d:%H:%M} UTC"


def short_when(d: datetime, lang: str) -> str:
    return f"{d.day} {MONTHS[lang][d.month - 1]} {d:%H:%M}"


def short_name(name: str) -> str:
    """A short label for charts and narrow columns: the paternal surname under the Spanish
    naming convention ("José Pedro Castillo Terrones" -> "Castillo"), else the last word."""
    words = name.split()
    if len(words) >= 3:
        return words[-2]
    return words[-1] if words else name
