"""Typed errors with bilingual messages (Spanish first).

Every error a user can cause names the file, the line, the field and the rule that was
broken, so that a volunteer at 3 a.m. can find and fix the input.
"""

from __future__ import annotations

from dataclasses import dataclass


class EscrutinioError(Exception):
    """Base class. ``message_es`` is shown first, ``message_en`` after it."""

    exit_code = 1

    def __init__(self, message_es: str, message_en: str) -> None:
        super().__init__(f"{message_es} / {message_en}")
        self.message_es = message_es
        self.message_en = message_en

    def to_dict(self) -> dict[str, object]:
        return {"error": type(self).__name__, "message_es": self.message_es,
                "message_en": self.message_en}


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int | None = None  # 1-based line in the file (header = line 1)
    field: str | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(f"línea/line {self.line}")
        if self.field is not None:
            parts.append(f"campo/field '{self.field}'")
        return ", ".join(parts)


class IngestError(EscrutinioError):
    """Input that cannot be ingested at all. The store is left unchanged."""

    exit_code = 2

    def __init__(self, location: Location, rule: str, message_es: str, message_en: str) -> None:
        super().__init__(
            f"{location}: [{rule}] {message_es}", f"{location}: [{rule}] {message_en}"
        )
        self.location = location
        self.rule = rule
        self.detail_es = message_es
        self.detail_en = message_en

    def to_dict(self) -> dict[str, object]:
        return super().to_dict() | {
            "file": self.location.file,
            "line": self.location.line,
            "field": self.location.field,
            "rule": self.rule,
        }


class NotFoundError(EscrutinioError):
    exit_code = 3


class DatasetError(EscrutinioError):
    exit_code = 4
