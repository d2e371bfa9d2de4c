"""What hostile text may not carry, in one place (docs/formats.md, "Limits").

* Control characters are refused in ids, codes, names and labels: C0 controls (NUL,
  newline, carriage return, tab, ...), DEL, C1 controls, and the bidirectional overrides
  and isolates (U+202A-U+202E, U+2066-U+2069) that make a name read differently from
  what it is ("Trojan Source").
* An acta id that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``
  or ``@``) is refused; other text written to a CSV export is escaped
  (:func:`csv_safe`, OWASP's advice: a leading apostrophe).
* JSON is read with a cap on its size and nesting depth (:func:`load_json`).
* Decompressed data is capped (:data:`MAX_DECOMPRESSED_BYTES`), counts per acta are
  capped (:data:`MAX_COUNT`).

Pure functions, no I/O except :func:`load_json` reading the bytes it is given.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

#: control characters refused in ids and names (regex character class)
CONTROL_CLASS: Final = "[\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]"
_CONTROL_RE: Final = re.compile(CONTROL_CLASS)

#: a leading character that makes a spreadsheet evaluate a cell as a formula
FORMULA_PREFIXES: Final = ("=", "+", "-", "@")
#: regex of a value a spreadsheet would evaluate (also after leading blanks)
FORMULA_PATTERN: Final = r"^[\s]*[=+\-@]"

#: largest count of votes (or electors) one acta or unit row may declare: 10^9, far above
#: any real polling station (a few hundred electors) and any country, far below the
#: 64-bit limit, so that sums over millions of rows cannot overflow
MAX_COUNT: Final = 10**9

#: the most bytes a compressed source may expand to: 256 MiB (the largest real source,
#: a national acta file, expands to tens of MB); a gzip bomb is refused while it streams
MAX_DECOMPRESSED_BYTES: Final = 256 << 20

#: JSON documents (sidecars, configs, copies): at most this many bytes and this nesting
MAX_JSON_BYTES: Final = 64 << 20
MAX_JSON_DEPTH: Final = 64


def control_char(text: str) -> int | None:
    """The index of the first refused control character in ``text``, or None."""
    m = _CONTROL_RE.search(text)
    return None if m is None else m.start()


def describe_char(ch: str) -> str:
    """A refused character named so that a volunteer can find it: ``U+202E``."""
    return f"U+{ord(ch):04X}"


def is_formula(text: str) -> bool:
    """True when a spreadsheet would evaluate ``text`` as a formula."""
    return text.lstrip()[:1] in FORMULA_PREFIXES if text else False


def csv_safe(text: str) -> str:
    """Text for a CSV cell that a spreadsheet shows as text, never evaluates.

    A value starting with ``=``, ``+``, ``-`` or ``@`` (after blanks), or with a tab or
    carriage return, gets a leading apostrophe. Numbers are not text and never pass here,
    so ``-12`` stays a number in numeric columns.
    """
    if text and (is_formula(text) or text[0] in "\t\r"):
        return "'" + text
    return text


def json_depth_ok(raw: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when no bracket nesting in the JSON text goes deeper than ``limit``.

    A linear scan over the text, skipping strings, before :func:`json.loads` sees it (the
    standard parser recurses and dies with ``RecursionError`` on deep nesting).
    """
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return True
    import numpy as np

    bare = _JSON_STRING_RE.sub(b"", data)  # brackets inside strings do not nest
    buf = np.frombuffer(bare, dtype=np.uint8)
    step = ((buf == 91) | (buf == 123)).astype(np.int32) - ((buf == 93) | (buf == 125))
    return bool(step.size == 0 or int(np.cumsum(step).max()) <= limit)


_JSON_STRING_RE: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


class JSONLimitError(ValueError):
    """JSON refused before or while parsing: ``rule`` is ``json_too_large``,
    ``json_too_deep`` or ``json_syntax``; ``line`` is 1-based when known."""

    def __init__(self, rule: str, message_es: str, message_en: str,
                 line: int | None = None) -> None:
        super().__init__(message_en)
        self.rule = rule
        self.message_es = message_es
        self.message_en = message_en
        self.line = line


def load_json(raw: bytes | str, *, max_bytes: int = MAX_JSON_BYTES,
              max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON with a cap on size and nesting, and no NaN/Infinity.

    Raises :class:`JSONLimitError` (never ``RecursionError`` or ``MemoryError``).
    """
    size = len(raw)
    if size > max_bytes:
        raise JSONLimitError("json_too_large",
                             f"el JSON ocupa {size:,} bytes; el máximo es {max_bytes:,}",
                             f"the JSON is {size:,} bytes; the maximum is {max_bytes:,}")
    if not json_depth_ok(raw, max_depth):
        raise JSONLimitError("json_too_deep",
                             f"el JSON anida más de {max_depth} niveles",
                             f"the JSON nests deeper than {max_depth} levels")

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(raw, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise JSONLimitError("json_syntax", f"JSON ilegible: {exc.msg} (columna {exc.colno})",
                             f"unreadable JSON: {exc.msg} (column {exc.colno})",
                             line=exc.lineno) from None
    except (ValueError, RecursionError) as exc:
        raise JSONLimitError("json_syntax", f"JSON ilegible: {exc}",
                             f"unreadable JSON: {exc}") from None
