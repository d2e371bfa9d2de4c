"""Measuring risk from hand counts: per-acta discrepancies, taints, risk per assertion,
and the decision (stop, next round, or full hand count). Pure: arrays in, results out.

A drawn acta without a recorded hand count counts as the worst case (taint 1: it may hide
its whole error bound), so an unfinished round can never confirm an outcome.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from escrutinio.audit import alpha as alpha_mod
from escrutinio.audit import macro
from escrutinio.audit.model import AuditPopulation
from escrutinio.provenance import Provenance

FULL_COUNT_SHARE = 0.5  # escalate to a full hand count beyond this share of actas


@dataclass(frozen=True, slots=True)
class HandCount:
    acta_id: str
    votes: tuple[int, ...]  # contest candidate order
    blank: int = 0
    null: int = 0
    challenged: int = 0

    @property
    def ballots(self) -> int:
        return sum(self.votes) + self.blank + self.null + self.challenged


@dataclass(frozen=True, slots=True)
class Discrepancy:
    acta_id: str
    times_drawn: int
    category: str
    reported_votes: tuple[int, ...]
    audited_votes: tuple[int, ...] | None
    reported_ballots: int
    audited_ballots: int | None
    ballot_bound: int
    overstatement_votes: tuple[int, ...] | None  # per assertion: reported - audited margin
    overstatement: tuple[float, ...] | None  # e_pa = votes / V_a
    error_bound: float  # u_p
    taint: float  # MACRO taint (max over assertions); 1.0 when not recorded
    bound_violated: bool  # more ballots found than the bound allows


@dataclass(frozen=True, slots=True)
class AssertionRisk:
    assertion: str
    margin: int
    macro_risk: float | None
    alpha_risk: float


@dataclass(frozen=True)
class Measurement:
    method: str
    design: str
    risk_limit: float
    n_draws: int
    n_distinct: int
    n_missing: int  # drawn actas without a hand count (worst case)
    risk: float  # by the declared method (max over assertions)
    macro_risk: float | None  # exact KM (MACRO) risk as a float
    macro_risk_exact: str | None  # as a fraction "p/q" (may be long)
    alpha_risk: float
    assertions: tuple[AssertionRisk, ...]
    confirmed: bool
    status: str  # confirmed | continue | incomplete | full_hand_count
    next_round_draws: int | None  # more draws suggested (None: full hand count)
    expected_actas_after: float | None
    discrepancies: tuple[Discrepancy, ...]
    n_with_discrepancy: int
    provenance: Provenance
    notes_es: tuple[str, ...] = field(default_factory=tuple)
    notes_en: tuple[str, ...] = field(default_factory=tuple)


def _alpha_log_wealth(pop: AuditPopulation, taints: np.ndarray, design: str,
                      params: alpha_mod.AlphaParams) -> np.ndarray:
    if design == "uniform":
        u_star = pop.size * float(pop.weights.max()) / pop.scale
        return alpha_mod.log_wealth(alpha_mod.comparison_x(taints, u_star), u_star, params,
                                    n_pop=pop.size)
    U = float(pop.U)  # noqa: N806
    return alpha_mod.log_wealth(alpha_mod.comparison_x(taints, U), U, params)


def measure_risk(pop: AuditPopulation, positions: np.ndarray, counts: dict[str, HandCount], *,
                 method: str = "macro", design: str = "ppeb", risk_limit: float = 0.05,
                 params: alpha_mod.AlphaParams | None = None,
                 full_count_share: float = FULL_COUNT_SHARE,
                 provenance: Provenance | None = None) -> Measurement:
    """Risk after the draws at ``positions`` (manifest positions, in draw order)."""
    params = params or alpha_mod.AlphaParams()
    alpha = macro.as_fraction(risk_limit)
    n_assert = len(pop.assertions)
    coef = np.array([a.coef for a in pop.assertions], dtype=np.int64).T
    margins = pop.margin
    positions = np.asarray(positions, dtype=np.int64)
    uniq, times = np.unique(positions, return_counts=True)
    clip = pop.policy.clip_understatements
    u_max_w = int(pop.weights.max()) if pop.size else 1
    taint_of: dict[int, tuple[Fraction, list[Fraction]]] = {}
    rows: list[Discrepancy] = []
    missing = 0
    for pos, k in zip(uniq.tolist(), times.tolist(), strict=True):
        acta = str(pop.ids[pos])
        w = int(pop.weights[pos])
        rep = tuple(int(v) for v in pop.votes[pos])
        hc = counts.get(acta)
        u_p = w / pop.scale
        if hc is None:
            missing += 1
            one = Fraction(1)
            taint_of[pos] = (one, [one] * n_assert)
            rows.append(Discrepancy(acta, k, str(pop.category[pos]), rep, None,
                                    int(pop.cast[pos]), None, int(pop.ballots[pos]), None,
                                    None, u_p, 1.0, False))
            continue
        aud = np.array(hc.votes, dtype=np.int64)
        aud_m = aud @ coef
        over = [int(pop.batch_margin[pos, a]) - int(aud_m[a]) for a in range(n_assert)]
        if design == "uniform":
            # uniform design: every acta's bound is the largest one, u* = max w / Q
            per = [Fraction(o * pop.scale, v * u_max_w) for o, v in zip(over, margins,
                                                                          strict=True)]
            if clip:
                per = [max(t, Fraction(0)) for t in per]
            t_max = max(per)
        else:
            t_max, per = macro.taint_fraction(pop, pos, aud_m.tolist(), clip=clip)
        taint_of[pos] = (t_max, per)
        rows.append(Discrepancy(
            acta, k, str(pop.category[pos]), rep, tuple(int(v) for v in aud),
            int(pop.cast[pos]), hc.ballots, int(pop.ballots[pos]), tuple(over),
            tuple(o / v for o, v in zip(over, margins, strict=True)), u_p, float(t_max),
            hc.ballots > int(pop.ballots[pos])))
    seq = [taint_of[int(p)] for p in positions]
    # MACRO / Kaplan-Markov (exact), PPEB only
    km_exact: Fraction | None = None
    per_km: list[float | None] = [None] * n_assert
    if design == "ppeb":
        U = pop.U  # noqa: N806
        km_exact = macro.km_pvalue(U, [s[0] for s in seq])
        per_km = [float(macro.km_pvalue(U, [s[1][a] for s in seq])) for a in range(n_assert)]
    lws = [_alpha_log_wealth(pop, np.array([float(min(s[1][a], Fraction(1))) for s in seq]),
                             design, params) for a in range(n_assert)]
    alpha_risks = [alpha_mod.risk_from_log_wealth(lw) for lw in lws]
    alpha_ok = all(alpha_mod.confirms(lw, float(alpha)) for lw in lws) and len(seq) > 0
    km_ok = km_exact is not None and km_exact <= alpha and len(seq) > 0
    confirmed = km_ok if method == "macro" else alpha_ok
    if method == "macro" and design != "ppeb":
        confirmed = False
    violated = any(s[0] > 1 for s in seq)
    if violated:
        confirmed = False
    risk = float(km_exact) if method == "macro" and km_exact is not None else max(alpha_risks)
    risks = tuple(AssertionRisk(a.id, v, per_km[i], alpha_risks[i])
                  for i, (a, v) in enumerate(zip(pop.assertions, margins, strict=True)))

    nxt: int | None = 0
    notes_es: list[str] = []
    notes_en: list[str] = []
    if confirmed:
        status = "confirmed"
    elif violated:
        status = "full_hand_count"
        nxt = None
        notes_es.append("un acta superó su cota de error (más boletas o diferencia que la cota "
                        "permite): el manifiesto no la acota; recuento completo o nuevo "
                        "manifiesto")
        notes_en.append("an acta exceeded its error bound (more ballots or a larger difference "
                        "than the bound allows): the manifest does not bound it; full hand "
                        "count or a new manifest")
    elif missing:
        status = "incomplete"
        nxt = 0
        notes_es.append(f"{missing} actas sorteadas sin recuento: cuentan como el peor caso")
        notes_en.append(f"{missing} drawn actas without a hand count: counted as worst case")
    else:
        if method == "macro":
            nxt = macro.next_round_draws(pop.U, [s[0] for s in seq], alpha)
        else:
            nxt = _alpha_next(lws, float(alpha))
        status = "continue"
    exp_after: float | None = None
    if status == "continue":
        if nxt is None:
            status = "full_hand_count"
        else:
            total = len(seq) + nxt
            if design == "ppeb":
                probs = pop.weights_float() / float(pop.total_weight)
                exp_after = macro.expected_distinct(probs, total)
            else:
                exp_after = float(min(total, pop.size))
            if exp_after > full_count_share * pop.size:
                status = "full_hand_count"
                nxt = None
    if status == "full_hand_count" and not violated:
        notes_es.append("recuento manual completo: la escalada costaría más que contarlo todo")
        notes_en.append("full hand count: escalating further would cost more than counting "
                        "everything")
    with_disc = sum(1 for r in rows if r.overstatement_votes is not None
                    and any(o != 0 for o in r.overstatement_votes))
    prov = provenance or Provenance(
        snapshot_ids=(pop.snapshot_id,) if pop.snapshot_id else (), analysis="audit.measure",
        parameters={"method": method, "design": design, "risk_limit": str(alpha),
                    "alpha": params.to_dict(), "policy": pop.policy.to_dict()})
    exact_txt = None
    if km_exact is not None:
        exact_txt = (f"{km_exact.numerator}/{km_exact.denominator}"
                     if km_exact.denominator.bit_length() <= 1300 else None)
    return Measurement(
        method=method, design=design, risk_limit=float(alpha), n_draws=len(seq),
        n_distinct=len(uniq), n_missing=missing, risk=min(1.0, risk),
        macro_risk=None if km_exact is None else float(km_exact), macro_risk_exact=exact_txt,
        alpha_risk=max(alpha_risks) if alpha_risks else 1.0, assertions=risks,
        confirmed=confirmed, status=status, next_round_draws=nxt,
        expected_actas_after=exp_after, discrepancies=tuple(rows),
        n_with_discrepancy=with_disc, provenance=prov, notes_es=tuple(notes_es),
        notes_en=tuple(notes_en))


def _alpha_next(lws: list[np.ndarray], alpha: float) -> int | None:
    need = 0
    for lw in lws:
        if lw.size == 0:
            return None
        now = float(lw[-1])
        top = float(np.max(lw))
        target = math.log(1 / alpha) + alpha_mod.slack(lw.size)
        if top >= target:
            continue
        g = now / lw.size
        if g <= 0:
            return None
        need = max(need, math.ceil((target - now) / g))
    return max(need, 1)


def measurement_summary(m: Measurement) -> dict[str, Any]:
    """The measurement without the per-acta rows (for storing and short output)."""
    from escrutinio.provenance import to_jsonable

    d = to_jsonable(m)
    d.pop("discrepancies", None)
    return d
