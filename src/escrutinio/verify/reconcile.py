"""Reconcile per-acta totals with a published reference (a proclamation, an official total).

The gap between a file and an official figure is never papered over: it is reported per
candidate, with the margin on both sides and the bounds of what could explain it (the
votes the annulled actas held provisionally, if an earlier snapshot is given).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from escrutinio.domain import ActaStatus, Contest
from escrutinio.provenance import Provenance


@dataclass(frozen=True, slots=True)
class Reference:
    """Official totals per candidate code, with where they come from."""

    name: str
    votes: dict[str, int]
    source: str


@dataclass(frozen=True, slots=True)
class CandidateGap:
    candidate: str
    file_votes: int
    reference_votes: int
    gap: int  # reference − file


@dataclass(frozen=True, slots=True)
class Reconciliation:
    reference: str
    reference_source: str
    gaps: tuple[CandidateGap, ...]
    margin_file: int
    margin_reference: int
    annulled_actas: int
    annulled_provisional_votes: tuple[tuple[str, int], ...]  # from the earlier snapshot
    explained: bool  # every gap lies within what the annulled actas held provisionally
    explanation_es: str
    explanation_en: str
    provenance: Provenance


def reconcile_with_reference(
    actas: pl.DataFrame, contest: Contest, reference: Reference,
    *, earlier: pl.DataFrame | None = None,
) -> Reconciliation:
    counted = actas.filter(pl.col("status") == ActaStatus.COUNTED.value)
    gaps = []
    for c in contest.candidates:
        fv = int(counted[c.column].fill_null(0).sum())
        rv = int(reference.votes[c.code])
        gaps.append(CandidateGap(c.code, fv, rv, rv - fv))
    order = sorted(gaps, key=lambda g: -g.reference_votes)
    margin_ref = order[0].reference_votes - order[1].reference_votes
    margin_file = (next(g.file_votes for g in gaps if g.candidate == order[0].candidate)
                   - next(g.file_votes for g in gaps if g.candidate == order[1].candidate))
    annulled = actas.filter(pl.col("status") == ActaStatus.ANNULLED.value)
    held: list[tuple[str, int]] = []
    explained = False
    if earlier is not None:
        prov = annulled.select("acta_id").join(earlier, on="acta_id", how="inner")
        held = [(c.code, int(prov[c.column].fill_null(0).sum())) for c in contest.candidates]
        explained = all(0 <= g.gap <= dict(held)[g.candidate] for g in gaps)
    gap_txt = ", ".join(f"{g.candidate} {g.gap:+,}" for g in gaps)
    held_txt = ", ".join(f"{k} {v:,}" for k, v in held)
    es = (f"Diferencia referencia − archivo: {gap_txt}; margen {margin_file:,} en el archivo y "
          f"{margin_ref:,} en la referencia. Las {annulled.height} actas anuladas en el archivo "
          f"tenían provisionalmente {held_txt}: ")
    en = (f"Gap reference − file: {gap_txt}; margin {margin_file:,} in the file and "
          f"{margin_ref:,} in the reference. The {annulled.height} actas annulled in the file "
          f"held {held_txt} provisionally: ")
    if explained:
        es += ("la diferencia cabe en unas pocas actas anuladas que se restituyeron o "
               "corrigieron después de la descarga (apelaciones resueltas más tarde).")
        en += ("the gap fits a handful of annulled actas reinstated or corrected after the "
               "scrape (appeals settled later).")
    else:
        es += "la diferencia NO se explica por las actas anuladas; revise la fuente."
        en += "the gap is NOT explained by the annulled actas; check the source."
    return Reconciliation(
        reference.name, reference.source, tuple(gaps), margin_file, margin_ref, annulled.height,
        tuple(held), explained, es, en,
        Provenance((), "reconcile_with_reference", {"reference": reference.name}),
    )
