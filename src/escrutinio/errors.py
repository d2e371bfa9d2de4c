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


class BadOptionError(EscrutinioError):
    """A command-line option (or argument) with a value the command cannot use.

    The message names the option, the value and the values that are valid; exit code 2,
    like every other bad input, and nothing is computed or stored.
    """

    exit_code = 2

    def __init__(self, option: str, value: object, valid_es: str, valid_en: str) -> None:
        shown = _short(value)
        super().__init__(f"{option}: valor no válido {shown}; {valid_es}",
                         f"{option}: invalid value {shown}; {valid_en}")
        self.option = option
        self.value = value

    def to_dict(self) -> dict[str, object]:
        return super().to_dict() | {"option": self.option, "rule": "bad_option"}


class NeedsActas(EscrutinioError):
    """The analysis needs a per-acta snapshot and was given an aggregate (per-unit) one.

    Exit code 2 on the command line (the snapshot named is bad input); the web layer
    answers 422."""

    exit_code = 2


class Unavailable(EscrutinioError):
    """The analysis cannot run on this data (the message says why): e.g. a quick-count
    estimate from fewer than two reports of sampled mesas. The web layer answers 422."""


class UnknownReferenceError(NotFoundError):
    """A snapshot, contest or other reference that the store does not hold.

    A ``NotFoundError`` (the web layer answers 404) whose exit code is 2: on the command
    line an unknown reference is a mistyped option value, and the message lists the
    valid ones.
    """

    exit_code = 2


def _short(value: object, limit: int = 60) -> str:
    """A value quoted for a message: escaped (no control character reaches the terminal)
    and cut to ``limit`` characters."""
    text = repr(value)  # repr escapes NUL, newlines and bidi controls (not printable)
    return text if len(text) <= limit else text[: limit - 1] + "…'"


class ContestConflictError(IngestError, ValueError):
    """A contest id already stored with another definition (candidates, names, rules).

    Reusing an id for a different contest would mix two elections' figures: refused
    (exit 2, rule ``contest_conflict``), naming the fields that differ.
    """

    def __init__(self, source: str, contest_id: str, stored: dict[str, object],
                 new: dict[str, object]) -> None:
        fields = sorted(k for k in set(stored) | set(new) if stored.get(k) != new.get(k))
        listing = ", ".join(fields) or "?"
        super().__init__(
            Location(source, None, "contest.id"), "contest_conflict",
            f"la contienda {contest_id!r} ya está en el almacén con otra definición (difiere "
            f"en: {listing}); use otro id de contienda",
            f"contest {contest_id!r} is already stored with a different definition (it "
            f"differs in: {listing}); use another contest id")
