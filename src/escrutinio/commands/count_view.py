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
from escrutinio.count import CandidateVotes, UnitState

#: at most this many candidate columns in a table of units (the rest are summed)
MAX_CANDIDATE_COLUMNS: Final = 5


def by_votes(candidates: Sequence[CandidateVotes]) -> list[CandidateVotes]:
    """Candidates by votes, most first; ties keep the ballot order."""
    return sorted(candidates, key=lambda c: -c.votes)


def split_columns(national: UnitState, max_columns: int = MAX_CANDIDATE_COLUMNS
                  ) -> tuple[list[str], list[str]]:
    """(codes shown as columns, codes summed into "others"): the national leaders first.
    Never collapses a single candidate (it takes the column "others" would take) and never
    the runner-up or third place."""
    order = [c.code for c in by_votes(national.candidates)]
    keep = max(3, max_columns)
    if len(order) <= keep + 1:
        return order, []
    return order[:keep], order[keep:]


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
    votes = {c.code: c.votes for c in unit.candidates}
    cells = [f"{votes.get(c, 0):,}" for c in shown]
    if rest:
        cells.append(f"{sum(votes.get(c, 0) for c in rest):,}")
    return cells
