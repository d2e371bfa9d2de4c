"""How ``status`` (and any table of units) shows candidates: every one of them.

Candidates are listed by votes (ties keep the ballot order). The national list names all
of them; a table of units has one column per candidate while that fits
(:data:`MAX_CANDIDATE_COLUMNS`), otherwise the leading ones by national votes and one
"otros (N) / others (N)" column with the sum of the rest — the runner-up (and, in a first
round, the third place that races it for the runoff) is always a column. JSON is not
touched here: it always carries every candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from escrutinio.commands.common import T
from escrutinio.count import UnitState
from escrutinio.service.count import by_votes, others_votes, split_candidates, votes_of

__all__ = ["MAX_CANDIDATE_COLUMNS", "MIN_NAME_WIDTH", "by_votes", "candidate_cells",
           "candidate_headers", "fit_widths", "short_name", "split_columns"]

#: at most this many candidate columns in a table of units (the rest are summed)
MAX_CANDIDATE_COLUMNS: Final = 8


def split_columns(national: UnitState, max_columns: int = MAX_CANDIDATE_COLUMNS
                  ) -> tuple[list[str], list[str]]:
    """(codes shown as columns, codes summed into "others"): the national leaders first.
    Never collapses a single candidate (it takes the column "others" would take) and never
    the runner-up or third place (:func:`escrutinio.service.count.split_candidates`)."""
    return split_candidates(national, max_columns)


def short_name(code: str) -> str:
    """A candidate in a narrow column: its code (short, distinct, the one ``--pair`` and
    the JSON use; first names repeat: two of Peru 2021's candidates are "Rafael")."""
    return code


def candidate_headers(shown: Sequence[str], rest: Sequence[str]) -> list[str]:
    heads = [short_name(c) for c in shown]
    if rest:
        heads.append(T(f"otros ({len(rest)})", f"others ({len(rest)})"))
    return heads


def candidate_cells(unit: UnitState, shown: Sequence[str], rest: Sequence[str]) -> list[str]:
    cells = [f"{v:,}" for v in votes_of(unit, shown).values()]
    if rest:
        cells.append(f"{others_votes(unit, rest):,}")
    return cells


def fit_widths(headers: Sequence[str], rows: Sequence[Sequence[str]], total: int,
               flex: tuple[int, ...] = (0, 1)) -> list[int]:
    """Column widths for a table without vertical rules (``box.SIMPLE_HEAD``, collapsed
    padding, no edge padding) that fills ``total`` characters: every column as wide as its
    widest cell or header word (figures never fold mid-number; headers wrap between
    words); the ``flex`` columns (code and name) share what is left, in proportion."""
    widths = [max(max((len(r[j]) for r in rows), default=1),
                  max((len(w) for w in h.split()), default=1))
              for j, h in enumerate(headers)]
    overhead = 2 * len(headers) + 2  # gaps of a SIMPLE_HEAD table, collapsed padding
    budget = total - overhead - sum(w for j, w in enumerate(widths) if j not in flex)
    want = sum(widths[j] for j in flex)
    if want > budget:
        for j in flex:
            widths[j] = min(widths[j], max(6, budget * widths[j] // want))
    return widths


#: the name column is never squeezed below this while fewer candidate columns would do
MIN_NAME_WIDTH: Final = 14
