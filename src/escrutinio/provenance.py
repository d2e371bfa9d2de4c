"""Provenance carried by every analysis result, and JSON helpers for frozen results."""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from typing import Any

from escrutinio import __version__


@dataclass(frozen=True, slots=True)
class Provenance:
    """What a number was computed from: enough to reproduce it exactly."""

    snapshot_ids: tuple[str, ...]
    analysis: str
    parameters: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    version: str = __version__


def to_jsonable(obj: Any) -> Any:
    """Convert frozen dataclasses, enums, fractions... into JSON-ready values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Fraction):
        return float(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), ensure_ascii=False, indent=2, sort_keys=False)
