"""The audit population: actas as batches, the assertions to check, and error bounds.

Every assertion is a *linear margin*: a vector of integer coefficients ``c`` over the
candidates such that the reported outcome is right iff ``sum_k c_k * true_votes_k > 0``.

* pairwise (winner w beats loser l): ``c_w = 1, c_l = -1``;
* majority (first round won outright with more than a share f = p/q of valid votes):
  ``c_k = q - p`` for the winner k and ``-p`` for every other candidate;
* no majority (nobody reached f, so there is a runoff): ``c_k = -(q - p)``, others ``+p``.

Blank, null and challenged ballots have coefficient 0, but they are in each acta's ballot
count ``b_p``: a hand count could find any of them to be a vote for a loser. The largest
amount one ballot can take off a margin is ``neg = max(-c)``, so the most the acta's
margin ``m_p = c . v_p`` can be overstated is ``m_p + neg * b_p``; divided by the
overall margin ``V`` this is MACRO's error bound ``u_p`` (Stark 2008-2010).

Conservative treatment of actas without usable reported figures (:class:`Policy`):

* annulled actas (``batch``, default): they stay in the population with their published
  figures (in Peru every ballot of an annulled acta is recorded as null), so a hand count
  that finds candidate votes on them counts against the outcome when it favours a loser;
  ``subtract`` instead takes ``neg * b_p`` off every margin (the annulment may hide votes
  for the loser: for Peru 2021 this alone exceeds the margin);
* not installed (``batch``, default): a *phantom* batch with reported figures 0 and bound
  ``neg * electors`` (ballots that could exist); a hand check that finds no ballots has no
  error; ``subtract`` takes ``neg * electors`` off the margins;
* pending, observed, at the JEE, lost, destroyed (``subtract``, default): no reported
  figures yet; ``neg * max(electors, cast)`` is taken off every margin, i.e. every ballot
  they could hold is assumed to be for the loser; ``batch`` keeps them as phantom batches.
* rejected at ingest (the row broke an acta rule) or missing (the source lists the acta
  with no data): their votes are unknown, so they are the RLA's "ballots not found"
  (``rejected``: ``subtract``, default, i.e. each counts as the worst outcome, every ballot
  it could hold for the loser; ``batch``: phantom batches, the worst case if drawn and not
  found). Their bound is their electors; without electors the population refuses, saying
  how many and why, unless ``missing_bound`` (ballots per acta, e.g. the largest mesa)
  is given. An audit never plans over the surviving batches only.

With several assertions one sampling weight per acta must bound all of them: the weights
are ``w_p = max_a ceil(bound_pa * Q / V_a)`` with ``Q = 2**k`` (integers); using a
rounded-up bound keeps MACRO and ALPHA risk-limiting. With one assertion the weights are
the exact integers ``bound_p`` and ``Q = V``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any

import numpy as np
import polars as pl

from escrutinio.audit.ids import AuditInputError, canonical_ids
from escrutinio.domain import ActaStatus, Contest, ContestKind


class Category(StrEnum):
    COUNTED = "counted"
    ANNULLED = "annulled"
    NOT_INSTALLED = "not_installed"
    UNRESOLVED = "unresolved"  # pending, observed, JEE, lost, destroyed
    REJECTED = "rejected"  # the source's row broke an acta rule (count.REJECTED)
    MISSING = "missing"  # the source lists the acta with no data (count.MISSING)


_STATUS_CATEGORY = {
    ActaStatus.COUNTED.value: Category.COUNTED,
    ActaStatus.ANNULLED.value: Category.ANNULLED,
    ActaStatus.NOT_INSTALLED.value: Category.NOT_INSTALLED,
    Category.REJECTED.value: Category.REJECTED,
    Category.MISSING.value: Category.MISSING,
}


@dataclass(frozen=True, slots=True)
class Policy:
    """How actas without usable figures enter the audit (see the module docstring)."""

    annulled: str = "batch"  # batch | subtract
    not_installed: str = "batch"  # batch | subtract
    unresolved: str = "subtract"  # subtract | batch
    ballot_bound: str = "cast"  # cast | electors: b_p for actas with figures
    clip_understatements: bool = False  # taints below 0 are set to 0 (more conservative)
    rejected: str = "subtract"  # subtract | batch: rejected and missing actas
    missing_bound: int | None = None  # ballots of a rejected/missing acta without electors

    def __post_init__(self) -> None:
        if self.missing_bound is not None and self.missing_bound <= 0:
            raise AuditInputError("--missing-bound debe ser un número positivo de boletas",
                                  "--missing-bound must be a positive number of ballots")
        for name in ("annulled", "not_installed", "unresolved", "rejected"):
            if getattr(self, name) not in ("batch", "subtract"):
                raise AuditInputError(f"política {name} desconocida: {getattr(self, name)}",
                                      f"unknown {name} policy: {getattr(self, name)}")
        if self.ballot_bound not in ("cast", "electors"):
            raise AuditInputError(f"cota de boletas desconocida: {self.ballot_bound}",
                                  f"unknown ballot bound: {self.ballot_bound}")

    def to_dict(self) -> dict[str, Any]:
        return {"annulled": self.annulled, "not_installed": self.not_installed,
                "unresolved": self.unresolved, "ballot_bound": self.ballot_bound,
                "clip_understatements": self.clip_understatements, "rejected": self.rejected,
                "missing_bound": self.missing_bound}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Policy:
        return Policy(**{k: d[k] for k in ("annulled", "not_installed", "unresolved",
                                           "ballot_bound", "clip_understatements", "rejected",
                                           "missing_bound") if k in d})


@dataclass(frozen=True, slots=True)
class Assertion:
    """A linear margin that must be positive for the reported outcome to be right."""

    id: str
    kind: str  # pairwise | majority | no_majority
    winners: tuple[str, ...]  # candidates with a positive coefficient
    losers: tuple[str, ...]  # candidates with a negative coefficient
    coef: tuple[int, ...]  # one per candidate, contest order
    threshold: str | None = None  # "1/2" for majority assertions

    @property
    def neg(self) -> int:
        """Most one ballot can take off the margin."""
        return max(0, *(-c for c in self.coef))

    @property
    def pos(self) -> int:
        """Most one ballot can add to the margin."""
        return max(0, *self.coef)

    def label(self, lang: str = "es") -> str:
        w, lo = ", ".join(self.winners), ", ".join(self.losers)
        if self.kind == "pairwise":
            return f"{w} > {lo}"
        if self.kind == "majority":
            return (f"{w} > {self.threshold} de los votos válidos" if lang == "es"
                    else f"{w} > {self.threshold} of valid votes")
        return (f"{lo} ≤ {self.threshold} de los votos válidos" if lang == "es"
                else f"{lo} ≤ {self.threshold} of valid votes")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "winners": list(self.winners),
                "losers": list(self.losers), "coef": list(self.coef),
                "threshold": self.threshold, "label_es": self.label("es"),
                "label_en": self.label("en")}


def _threshold(contest: Contest) -> Fraction:
    f = contest.majority_threshold if contest.majority_threshold is not None else 0.5
    return Fraction(f).limit_denominator(1000)


def build_assertions(contest: Contest, totals: dict[str, int],
                     n_winners: int | None = None) -> tuple[tuple[Assertion, ...],
                                                             tuple[str, ...]]:
    """Assertions that together confirm the reported outcome, and the reported winners.

    Runoff (or any plurality contest, including a first round whose
    ``majority_threshold`` is null): the winner beats every loser. First round: if the
    leader has more than the threshold share of valid votes, the majority assertion plus
    every winner-loser pair; otherwise the two finalists each beat every other candidate
    and neither has a majority. Ties in the reported totals are ordered by contest order.
    """
    codes = [c.code for c in contest.candidates]
    order = sorted(range(len(codes)), key=lambda i: -int(totals.get(codes[i], 0)))
    k = len(codes)
    f = _threshold(contest)
    p, q = f.numerator, f.denominator
    valid = sum(int(totals.get(c, 0)) for c in codes)
    out: list[Assertion] = []

    def pair(wi: int, li: int) -> Assertion:
        coef = [0] * k
        coef[wi], coef[li] = 1, -1
        return Assertion(f"{codes[wi]}>{codes[li]}", "pairwise", (codes[wi],), (codes[li],),
                         tuple(coef))

    # a first round without a threshold is a plurality contest: no majority to assert
    if (contest.kind is ContestKind.FIRST_ROUND and n_winners is None
            and contest.majority_threshold is not None):
        top = order[0]
        if int(totals.get(codes[top], 0)) * q > p * valid:
            coef = [-p] * k
            coef[top] = q - p
            out.append(Assertion(f"majority:{codes[top]}", "majority", (codes[top],),
                                 tuple(c for i, c in enumerate(codes) if i != top),
                                 tuple(coef), f"{p}/{q}"))
            winners = [top]
        else:
            winners = order[:2]
            for wi in winners:
                coef = [p] * k
                coef[wi] = -(q - p)
                out.append(Assertion(f"no_majority:{codes[wi]}", "no_majority",
                                     tuple(c for i, c in enumerate(codes) if i != wi),
                                     (codes[wi],), tuple(coef), f"{p}/{q}"))
    else:
        winners = order[: (n_winners or 1)]
    losers = [i for i in order if i not in winners]
    pairs = [pair(wi, li) for wi in winners for li in losers]
    return tuple(pairs + out) if out and out[0].kind == "no_majority" else tuple(out + pairs), \
        tuple(codes[i] for i in winners)


@dataclass(frozen=True, eq=False)
class AuditPopulation:
    """Actas in manifest order with their reported figures, bounds and sampling weights."""

    contest: Contest
    snapshot_id: str
    policy: Policy
    ids: np.ndarray  # canonical IDs (object array of str), manifest order
    category: np.ndarray  # Category values
    votes: np.ndarray  # (P, K) int64 reported candidate votes
    cast: np.ndarray  # reported ballots cast (valid + blank + null + challenged)
    ballots: np.ndarray  # b_p: the ballot bound used
    assertions: tuple[Assertion, ...]
    winners: tuple[str, ...]
    batch_margin: np.ndarray  # (P, A) int64: c_a . v_p
    bound: np.ndarray  # (P, A) int64: m_pa + neg_a * b_p  (>= 0)
    reported_margin: tuple[int, ...]  # sum of batch margins (counted actas)
    subtracted: tuple[int, ...]  # taken off each margin for actas left out
    weights: np.ndarray  # w_p, int64 or object (Python ints)
    scale: int  # Q: u_p = w_p / Q
    left_out: dict[str, dict[str, int]] = field(default_factory=dict)  # category -> n, ballots

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])

    @property
    def margin(self) -> tuple[int, ...]:
        """V_a: the margins the audit must protect (after subtractions)."""
        return tuple(r - s for r, s in zip(self.reported_margin, self.subtracted, strict=True))

    @property
    def auditable(self) -> bool:
        return bool(self.assertions) and all(v > 0 for v in self.margin)

    @property
    def total_weight(self) -> int:
        return int(sum(int(x) for x in self.weights)) if self.weights.dtype == object \
            else int(self.weights.sum(dtype=np.int64))

    @property
    def U(self) -> Fraction:  # noqa: N802  (the literature's name)
        """Total error bound U = sum u_p (exact)."""
        return Fraction(self.total_weight, self.scale)

    def weights_float(self) -> np.ndarray:
        return np.asarray(self.weights, dtype=np.float64)

    def position(self, acta_id: str) -> int:
        idx = np.searchsorted(self.ids, acta_id)
        if idx >= self.size or self.ids[idx] != acta_id:
            raise AuditInputError(f"el acta {acta_id} no está en el manifiesto",
                                  f"acta {acta_id} is not in the manifest")
        return int(idx)


def _choose_scale(bound: np.ndarray, margins: list[int]) -> int:
    """Q = 2**k with every weight and their total below 2**61 (int64-safe)."""
    per_unit = float(np.max(bound / np.array(margins, dtype=np.float64), axis=1).sum())
    max_bound = float(bound.max()) if bound.size else 1.0
    k = math.floor(math.log2(2.0**60 / max(per_unit, 1.0, max_bound)))
    return 2 ** max(k, 1)


def build_population(frame: pl.DataFrame, contest: Contest, *, snapshot_id: str = "",
                     policy: Policy | None = None,
                     n_winners: int | None = None) -> AuditPopulation:
    """Build the audit population from a canonical acta frame (vectorised)."""
    policy = policy or Policy()
    cand = contest.candidate_columns
    missing_cols = [c for c in ("acta_id", "status", "cast", "electors", *cand)
                    if c not in frame.columns]
    if missing_cols:
        raise AuditInputError(f"faltan columnas: {missing_cols}",
                              f"missing columns: {missing_cols}")
    ids = canonical_ids(frame["acta_id"])
    df = frame.with_columns(ids).sort("acta_id")
    status = df["status"].cast(pl.String).to_numpy()
    cat = np.full(df.height, Category.UNRESOLVED.value, dtype=object)
    for s, c in _STATUS_CATEGORY.items():
        cat[status == s] = c.value
    votes = np.column_stack([df[c].fill_null(0).to_numpy().astype(np.int64) for c in cand]) \
        if cand else np.zeros((df.height, 0), np.int64)
    unknown = (cat == Category.REJECTED.value) | (cat == Category.MISSING.value)
    votes[cat == Category.NOT_INSTALLED.value] = 0
    votes[cat == Category.UNRESOLVED.value] = 0  # not in the reported totals
    votes[unknown] = 0  # their figures, if any, broke a rule: unknown
    if (votes < 0).any():
        raise AuditInputError("votos negativos en el marco de actas",
                              "negative votes in the acta frame")
    parts = votes.sum(axis=1)
    for col in ("blank", "null", "challenged"):
        if col in df.columns:
            parts = parts + df[col].fill_null(0).to_numpy().astype(np.int64)
    cast = df["cast"].fill_null(0).to_numpy().astype(np.int64)
    electors = df["electors"].fill_null(0).to_numpy().astype(np.int64)
    with_figures = (cat == Category.COUNTED.value) | (cat == Category.ANNULLED.value)
    cast_rep = np.where(with_figures, np.maximum(cast, parts), 0)
    ballots = np.where(with_figures, cast_rep, np.maximum(electors, cast))
    if policy.ballot_bound == "electors":
        ballots = np.maximum(ballots, electors)
    if unknown.any():
        _bound_unknown(df, cat, unknown, electors, ballots, policy)
    no_bound = (~with_figures) & (ballots <= 0) & (cat == Category.UNRESOLVED.value)
    if no_bound.any():
        bad = df["acta_id"].filter(pl.Series(no_bound)).head(3).to_list()
        raise AuditInputError(
            f"{int(no_bound.sum())} actas sin cifras ni electores: no se pueden acotar ({bad})",
            f"{int(no_bound.sum())} actas without figures or electors cannot be bounded "
            f"({bad})")

    totals = {c.code: int(votes[:, i].sum()) for i, c in enumerate(contest.candidates)}
    assertions, winners = build_assertions(contest, totals, n_winners)
    coef = np.array([a.coef for a in assertions], dtype=np.int64).T  # (K, A)
    negs = np.array([a.neg for a in assertions], dtype=np.int64)
    margin_pa = votes @ coef
    reported = [int(x) for x in margin_pa.sum(axis=0)]

    leave = np.zeros(df.height, dtype=bool)
    left_out: dict[str, dict[str, int]] = {}
    for name, c in (("annulled", Category.ANNULLED), ("not_installed", Category.NOT_INSTALLED),
                    ("unresolved", Category.UNRESOLVED), ("rejected", Category.REJECTED),
                    ("rejected", Category.MISSING)):
        sel = cat == c.value
        if getattr(policy, name) == "subtract" and sel.any():
            leave |= sel
            left_out[c.value] = {"actas": int(sel.sum()), "ballots": int(ballots[sel].sum())}
    subtracted = [int(negs[a] * ballots[leave].sum() + margin_pa[leave, a].sum())
                  for a in range(len(assertions))]
    keep = ~leave
    margin_pa = margin_pa[keep]
    bound = margin_pa + ballots[keep, None] * negs[None, :]
    margins = [r - s for r, s in zip(reported, subtracted, strict=True)]
    if len(assertions) == 1 and margins[0] > 0:
        weights: np.ndarray = bound[:, 0].copy()
        scale = margins[0]
    elif assertions and all(m > 0 for m in margins):
        scale = _choose_scale(bound, margins)
        num = bound * scale  # int64-safe by construction of the scale
        w = np.zeros(bound.shape[0], dtype=np.int64)
        for a, m in enumerate(margins):
            w = np.maximum(w, -((-num[:, a]) // m))  # ceil division
        weights = w
    else:
        weights = np.zeros(int(keep.sum()), dtype=np.int64)
        scale = 1
    return AuditPopulation(
        contest=contest, snapshot_id=snapshot_id, policy=policy,
        ids=np.asarray(df["acta_id"].to_numpy()[keep], dtype=object),
        category=cat[keep], votes=votes[keep], cast=cast_rep[keep], ballots=ballots[keep],
        assertions=assertions, winners=winners, batch_margin=margin_pa, bound=bound,
        reported_margin=tuple(reported), subtracted=tuple(subtracted), weights=weights,
        scale=int(scale), left_out=left_out)


def _bound_unknown(df: pl.DataFrame, cat: np.ndarray, unknown: np.ndarray,
                   electors: np.ndarray, ballots: np.ndarray, policy: Policy) -> None:
    """Ballot bounds of rejected and missing actas (in place): their electors, else
    ``policy.missing_bound``; without either the audit cannot bound them and refuses."""
    ballots[unknown] = electors[unknown]
    no_bound = unknown & (ballots <= 0)
    if no_bound.any() and policy.missing_bound is not None:
        ballots[no_bound] = policy.missing_bound
        no_bound[:] = False
    if no_bound.any():
        n_rej = int((no_bound & (cat == Category.REJECTED.value)).sum())
        n_mis = int((no_bound & (cat == Category.MISSING.value)).sum())
        ex = df["acta_id"].filter(pl.Series(no_bound)).drop_nulls().head(3).to_list()
        raise AuditInputError(
            f"{n_mis:,} actas faltantes (la fuente las lista sin datos) y {n_rej:,} rechazadas "
            f"al ingerir no tienen electores: no se sabe cuántas boletas podrían contener y "
            f"una auditoría que las ignore no limita ningún riesgo; no se planifica ni se "
            f"sortea nada (indique --missing-bound con el máximo de boletas por acta para "
            f"contarlas como el peor caso) {ex}",
            f"{n_mis:,} missing actas (listed by the source with no data) and {n_rej:,} "
            f"rejected at ingest have no electors: how many ballots they could hold is "
            f"unknown and an audit that ignores them limits no risk; nothing is planned or "
            f"drawn (give --missing-bound, the most ballots an acta can hold, to count them "
            f"as the worst case) {ex}")


@dataclass(frozen=True, slots=True)
class BallotTotals:
    """Every ballot total an audit screen shows, and how they differ (plan, manifest)."""

    reported_cast: int  # votes emitidos of the batches with figures (counted, annulled)
    above_cast: int  # bound above emitidos (parts larger than emitidos, --ballot-bound)
    phantom: dict[str, tuple[int, int]]  # category -> (batches, ballots) with no figures
    bound: int  # = reported_cast + above_cast + phantom ballots: the audit's ballots
    left_out: dict[str, dict[str, int]]  # category -> actas, ballots (subtracted)

    def sentence(self) -> tuple[str, str]:
        names = {"not_installed": ("mesas no instaladas", "mesas not installed"),
                 "unresolved": ("actas sin cifras (pendientes, JEE...)",
                                "actas without figures (pending, JEE...)"),
                 "rejected": ("actas rechazadas", "rejected actas"),
                 "missing": ("actas faltantes", "missing actas"),
                 "annulled": ("actas anuladas", "annulled actas"),
                 "counted": ("actas contadas", "counted actas")}
        es = [f"{self.reported_cast:,} boletas emitidas en las actas con cifras"]
        en = [f"{self.reported_cast:,} ballots cast in the actas with figures"]
        if self.above_cast:
            es.append(f"+ {self.above_cast:,} por encima de los emitidos (la suma de las "
                      "partes o los electores como cota)")
            en.append(f"+ {self.above_cast:,} above ballots cast (the sum of the parts or "
                      "the electors as the bound)")
        for c, (n, b) in self.phantom.items():
            es.append(f"+ {b:,} posibles en {n:,} {names.get(c, (c, c))[0]} (lotes "
                      "fantasma: reportado 0, cota sus electores)")
            en.append(f"+ {b:,} possible in {n:,} {names.get(c, (c, c))[1]} (phantom "
                      "batches: reported 0, bounded by their electors)")
        es_s = " ".join(es) + f" = {self.bound:,} en la cota de la auditoría"
        en_s = " ".join(en) + f" = {self.bound:,} in the audit's error bound"
        if self.left_out:
            n = sum(v["actas"] for v in self.left_out.values())
            b = sum(v["ballots"] for v in self.left_out.values())
            parts_es = ", ".join(f"{v['actas']:,} {names.get(k, (k, k))[0]}"
                                 for k, v in self.left_out.items())
            parts_en = ", ".join(f"{v['actas']:,} {names.get(k, (k, k))[1]}"
                                 for k, v in self.left_out.items())
            es_s += (f"; aparte, {n:,} actas ({parts_es}) con {b:,} boletas posibles cuentan "
                     "como el peor caso: se restan del margen")
            en_s += (f"; besides, {n:,} actas ({parts_en}) with {b:,} possible ballots count "
                     "as the worst case: taken off the margin")
        return es_s, en_s


def ballot_totals(pop: AuditPopulation) -> BallotTotals:
    """The ballot totals of a population, reconciled (one function for every screen)."""
    cat = pop.category.astype(str)
    figures = (cat == Category.COUNTED.value) | (cat == Category.ANNULLED.value)
    cast = int(pop.cast[figures].sum())
    above = int((pop.ballots[figures] - pop.cast[figures]).sum())
    phantom = {str(c): (int((cat == c).sum()), int(pop.ballots[cat == c].sum()))
               for c in np.unique(cat[~figures])}
    return BallotTotals(cast, above, phantom, int(pop.ballots.sum()), dict(pop.left_out))


def population_from_arrays(contest: Contest, ids: list[str] | np.ndarray, votes: np.ndarray,
                           ballots: np.ndarray, *, policy: Policy | None = None,
                           n_winners: int | None = None) -> AuditPopulation:
    """Build a population of counted batches straight from arrays (simulations, benchmarks)."""
    cols: dict[str, Any] = {"acta_id": list(ids), "status": ActaStatus.COUNTED.value,
                            "cast": np.asarray(ballots, np.int64),
                            "electors": np.asarray(ballots, np.int64)}
    for i, c in enumerate(contest.candidate_columns):
        cols[c] = np.asarray(votes[:, i], np.int64)
    valid = np.asarray(votes, np.int64).sum(axis=1)
    cols["null"] = np.asarray(ballots, np.int64) - valid
    return build_population(pl.DataFrame(cols), contest, policy=policy, n_winners=n_winners)
