"""One canonical ID string per acta, published with the audit manifest.

Public samplers hash or index these strings, so the same seed gives the same sample on any
machine only if everybody agrees, byte for byte, on each acta's ID and on the manifest
order. The rule (documented in docs/audit.md):

* the ID is the authority's own acta number as published in the canonical acta frame
  (``acta_id``; Peru: the 6-digit *mesa* number with leading zeros, e.g. ``"000001"``);
* Unicode NFC, no leading or trailing blanks, only ASCII letters, digits and ``. _ - / :``
  (no blanks, no commas: Rivest's sampler joins ``seed + "," + counter``);
* the manifest lists actas in ascending order of the UTF-8 bytes of their IDs (for ASCII
  IDs, plain string order), numbered 1, 2, ... N. That number is the *ordinal* that
  Rivest's 2011 sampler draws, and the order in which PPEB lays out the error-bound units.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
import polars as pl

from escrutinio.domain import ACTA_ID_PATTERN
from escrutinio.errors import EscrutinioError

ID_PATTERN: Final = ACTA_ID_PATTERN
_ID_RE: Final = re.compile(ID_PATTERN)

CANONICAL_ID_RULE_ES: Final = (
    "ID canónico del acta: el número de acta/mesa publicado por la autoridad (Perú: 6 "
    "dígitos con ceros a la izquierda), NFC, sin espacios ni comas, solo letras ASCII, "
    "dígitos y . _ - / :; el manifiesto ordena las actas por los bytes UTF-8 del ID y las "
    "numera 1..N.")
CANONICAL_ID_RULE_EN: Final = (
    "Canonical acta ID: the authority's published acta/mesa number (Peru: 6 digits with "
    "leading zeros), NFC, no blanks or commas, only ASCII letters, digits and . _ - / :; the "
    "manifest sorts actas by the UTF-8 bytes of the ID and numbers them 1..N.")


class AuditInputError(EscrutinioError):
    """Bad audit input (IDs, seeds, hand counts): bilingual, with what to fix."""

    exit_code = 2


def canonical_acta_id(raw: str) -> str:
    """Return the canonical form of one acta ID or raise :class:`AuditInputError`."""
    s = unicodedata.normalize("NFC", str(raw)).strip()
    if not _ID_RE.match(s):
        raise AuditInputError(
            f"ID de acta no canónico: {raw!r} (solo letras ASCII, dígitos y . _ - / :)",
            f"non-canonical acta ID: {raw!r} (only ASCII letters, digits and . _ - / :)")
    return s


def canonical_ids(ids: pl.Series | Sequence[str]) -> pl.Series:
    """Vectorised :func:`canonical_acta_id` for a whole column."""
    s = ids if isinstance(ids, pl.Series) else pl.Series("acta_id", list(ids), pl.String)
    s = s.cast(pl.String).str.strip_chars()
    if s.null_count():
        raise AuditInputError("hay actas sin ID", "some actas have no ID")
    bad = s.filter(~s.str.contains(ID_PATTERN))
    if bad.len():
        # NFC can only matter for non-ASCII text, which the pattern rejects anyway
        raise AuditInputError(
            f"{bad.len()} IDs de acta no canónicos, p. ej. {bad[0]!r}",
            f"{bad.len()} non-canonical acta IDs, e.g. {bad[0]!r}")
    if s.n_unique() != s.len():
        dup = s.filter(s.is_duplicated()).unique().sort()
        raise AuditInputError(f"IDs de acta repetidos: {dup.head(5).to_list()}",
                              f"duplicate acta IDs: {dup.head(5).to_list()}")
    return s.alias("acta_id")


def manifest_order(ids: pl.Series | Iterable[str]) -> np.ndarray:
    """Positions that sort ``ids`` into manifest order (UTF-8 byte order)."""
    s = ids if isinstance(ids, pl.Series) else pl.Series("acta_id", list(ids), pl.String)
    # canonical IDs are ASCII, and polars orders strings by their UTF-8 bytes
    return s.arg_sort().to_numpy().astype(np.int64)
