"""Audit planning: initial sizes per method and risk limit, and the chance of finishing in
the first round under a plausible error model.

Acta-level methods (the sampling unit is the acta, the hand count checks its figures):

* ``macro`` — Kaplan-Markov with PPEB (:mod:`escrutinio.audit.macro`), draws with replacement;
* ``alpha`` — ALPHA on the same PPEB draws (:mod:`escrutinio.audit.alpha`);
* ``alpha_uniform`` — ALPHA with uniform sampling without replacement (consistent sampler).

Ballot-level references (need the paper ballots kept per acta, or CVRs): ``oneaudit``,
``bravo``, ``minerva``, ``supersimple``.

Error model (for the chance of finishing in round one): each drawn acta, independently,
with probability ``rate`` overstates every assertion's margin by k votes, k drawn from
``votes`` (the 2021 runoff default is documented in docs/audit.md). Monte Carlo with
``numpy.random.Generator(PCG64(seed))`` — this is planning, never the public sample.
Draws are sequential within the round: a replicate finishes in round one of size n if the
risk fell to the limit at some draw j <= n (computed in closed form between discrepancies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from escrutinio.audit import alpha as alpha_mod
from escrutinio.audit import bravo as bravo_mod
from escrutinio.audit import macro
from escrutinio.audit import supersimple as ss
from escrutinio.audit.model import AuditPopulation
from escrutinio.provenance import Provenance

DEFAULT_RISK_LIMITS = (0.05, 0.10)


@dataclass(frozen=True, slots=True)
class ErrorModel:
    """Default: Peru 2021 runoff, first digitised vs final figures of the same actas
    (235 of 83,960 actas changed; |margin change| binned; see validation/audit_peru.py)."""

    rate: float = 0.003  # share of actas with a discrepancy
    votes: tuple[int, ...] = (1, 2, 4, 8, 15, 35, 75, 200)  # margin overstatement...
    probs: tuple[float, ...] = (165 / 235, 24 / 235, 16 / 235, 7 / 235, 4 / 235, 7 / 235,
                                4 / 235, 8 / 235)  # ...with these odds

    def __post_init__(self) -> None:
        if len(self.votes) != len(self.probs) or not math.isclose(sum(self.probs), 1.0):
            raise ValueError("error model: votes and probs must match and probs sum to 1")

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "votes": list(self.votes), "probs": list(self.probs)}


@dataclass(frozen=True, slots=True)
class MethodPlan:
    method: str
    risk_limit: float
    unit: str  # "acta_draws" | "actas" | "ballots" | "cards"
    zero_error: int | None  # sample size if no discrepancy is found
    expected_actas: float | None  # distinct actas to examine for that size
    expected_ballots: float | None  # ballots in those actas
    p_first_round: float | None  # P(stop within zero_error) under the error model
    size_90: int | None  # first-round size with a 90% chance to stop under the model
    expected_actas_90: float | None
    practical: bool
    note_es: str = ""
    note_en: str = ""


@dataclass(frozen=True)
class AuditPlan:
    contest_id: str
    snapshot_id: str
    auditable: bool
    assertions: tuple[dict[str, Any], ...]
    winners: tuple[str, ...]
    reported_margins: tuple[int, ...]
    subtracted: tuple[int, ...]
    margins: tuple[int, ...]
    left_out: dict[str, dict[str, int]]
    n_actas: int
    total_ballots: int
    total_bound: Fraction  # U
    diluted_margin: float  # smallest V_a / total ballots
    policy: dict[str, Any]
    error_model: dict[str, Any]
    alpha_params: dict[str, Any]
    methods: tuple[MethodPlan, ...]
    provenance: Provenance
    reasons_es: tuple[str, ...] = field(default_factory=tuple)
    reasons_en: tuple[str, ...] = field(default_factory=tuple)


def _quantile_size(first: np.ndarray, q: float) -> int | None:
    ok = np.sort(np.where(first > 0, first, np.iinfo(np.int64).max))
    k = math.ceil(q * len(ok)) - 1
    v = ok[k]
    return None if v == np.iinfo(np.int64).max else int(v)


def first_passage_sparse(c: float, pos: np.ndarray, d: np.ndarray, threshold: float,
                         n_max: int) -> np.ndarray:
    """First draw j <= n_max with ``j c + D_j >= threshold`` (0 = never), per row.

    The log wealth grows by ``c`` on every draw and by ``c + d_i`` on the draws ``pos``
    (1-based, sorted; padding = n_max + 1) where a discrepancy is found; ``D_j`` is the sum
    of the ``d_i`` up to j. Closed form per stretch between discrepancies: O(errors), not
    O(draws).
    """
    r = pos.shape[0]
    dd = np.where(pos <= n_max, d, 0.0)
    cum = np.concatenate([np.zeros((r, 1)), np.cumsum(dd, axis=1)], axis=1)  # D after k
    lo = np.concatenate([np.ones((r, 1), dtype=np.int64), pos], axis=1)  # stretch start
    hi = np.concatenate([pos - 1, np.full((r, 1), n_max, dtype=np.int64)], axis=1)
    hi = np.minimum(hi, n_max)
    with np.errstate(invalid="ignore", over="ignore"):
        need = np.ceil((threshold - cum) / c - 1e-12)
    need = np.where(np.isfinite(need), need, np.inf)
    j = np.maximum(lo, need)
    valid = (j <= hi) & (lo <= hi) & (lo <= n_max)
    j = np.where(valid, j, np.inf)
    first = j.min(axis=1)
    return np.where(np.isfinite(first), first, 0).astype(np.int64)


def simulate_first_passage(pop: AuditPopulation, errors: ErrorModel, alphas: tuple[float, ...],
                           n_max: int, *, replicates: int = 1000, seed: int = 20210606,
                           params: alpha_mod.AlphaParams | None = None,
                           uniform: bool = False) -> dict[str, dict[float, np.ndarray]]:
    """First draw at which KM / ALPHA reach each risk limit, per simulated audit.

    Only the draws that find a discrepancy are simulated one by one (their number is
    Binomial(n_max, rate), their places uniform, their acta drawn by PPEB, i.e. from the
    size-biased distribution of the bounds); every other draw multiplies the wealth by the
    same factor. ``uniform``: ALPHA with uniform draws and the bound u* of every acta,
    simulated with replacement (without replacement only lowers the risk further).
    """
    params = params or alpha_mod.AlphaParams()
    rng = np.random.Generator(np.random.PCG64(seed))
    w = pop.weights_float()
    U = float(pop.U)  # noqa: N806
    m_min = float(min(pop.margin))
    votes = np.array(errors.votes, dtype=np.float64)
    probs = np.array(errors.probs)
    counts = rng.binomial(n_max, errors.rate, size=replicates)
    k_max = max(1, int(counts.max()))
    pos = rng.integers(1, n_max + 1, size=(replicates, k_max))  # unsorted: keep uniform
    pos = np.sort(np.where(np.arange(k_max)[None, :] < counts[:, None], pos, n_max + 1),
                  axis=1)
    k = votes[rng.choice(len(votes), size=(replicates, k_max), p=probs)]
    if uniform:
        u_eff = pop.size * float(w.max()) / pop.scale  # U*
        t = np.minimum(k / (m_min * float(w.max()) / pop.scale), 1.0)
    else:
        u_eff = U
        uw, cnt = np.unique(w, return_counts=True)
        cum = np.cumsum(uw * cnt)
        wd = uw[np.minimum(np.searchsorted(cum, rng.random((replicates, k_max)) * cum[-1],
                                           side="right"), len(uw) - 1)]
        t = np.minimum(k / (m_min * wd / pop.scale), 1.0)
    c_km = -math.log1p(-1 / u_eff)
    with np.errstate(divide="ignore"):
        d_km = np.log1p(-t)  # -inf when a draw hides its whole bound
    lam = min(alpha_mod.design_bet(u_eff, params), params.c_max / 0.5)
    x0 = 1.0 / (2.0 * (1.0 - 1.0 / u_eff))
    c_al = math.log1p(lam * (x0 - 0.5))
    d_al = np.log1p(lam * ((1.0 - t) * x0 - 0.5)) - c_al
    out: dict[str, dict[float, np.ndarray]] = {"macro": {}, "alpha": {}}
    for a in alphas:
        thr = math.log(1 / a)
        if not uniform:
            out["macro"][a] = first_passage_sparse(c_km, pos, d_km, thr, n_max)
        out["alpha"][a] = first_passage_sparse(c_al, pos, d_al, thr + alpha_mod.slack(n_max),
                                               n_max)
    return out


def plan_audit(pop: AuditPopulation, *, risk_limits: tuple[float, ...] = DEFAULT_RISK_LIMITS,
               errors: ErrorModel | None = None, params: alpha_mod.AlphaParams | None = None,
               replicates: int = 2000, seed: int = 20210606) -> AuditPlan:
    errors = errors or ErrorModel()
    params = params or alpha_mod.AlphaParams()
    total_ballots = int(pop.ballots.sum())
    margins = pop.margin
    prov = Provenance(snapshot_ids=(pop.snapshot_id,) if pop.snapshot_id else (),
                      analysis="audit.plan",
                      parameters={"risk_limits": list(risk_limits), "replicates": replicates,
                                  "policy": pop.policy.to_dict(),
                                  "error_model": errors.to_dict(),
                                  "alpha": params.to_dict()},
                      seed=seed)
    base: dict[str, Any] = dict(
        contest_id=pop.contest.id, snapshot_id=pop.snapshot_id, auditable=pop.auditable,
        assertions=tuple(a.to_dict() for a in pop.assertions), winners=pop.winners,
        reported_margins=pop.reported_margin, subtracted=pop.subtracted, margins=margins,
        left_out=pop.left_out, n_actas=pop.size, total_ballots=total_ballots,
        policy=pop.policy.to_dict(), error_model=errors.to_dict(),
        alpha_params=params.to_dict(), provenance=prov)
    if not pop.auditable:
        bad = [a.id for a, v in zip(pop.assertions, margins, strict=True) if v <= 0]
        return AuditPlan(**base, total_bound=Fraction(0), diluted_margin=0.0, methods=(),
                         reasons_es=(f"sin margen que proteger en {bad}: las actas apartadas "
                                     "de forma conservadora podrían revertir el resultado; "
                                     "ninguna auditoría puede confirmarlo así",),
                         reasons_en=(f"no margin left for {bad}: the actas set aside "
                                     "conservatively could reverse the outcome; no audit "
                                     "can confirm it this way",))
    U = pop.U  # noqa: N806
    probs = pop.weights_float() / float(pop.total_weight)
    ballots = pop.ballots.astype(np.float64)
    methods: list[MethodPlan] = []
    n0 = {a: macro.zero_discrepancy_draws(U, a) for a in risk_limits}
    n_max = int(max(n0.values()) * 4 + 50)
    sims = simulate_first_passage(pop, errors, risk_limits, n_max, replicates=replicates,
                                  seed=seed, params=params)
    u_max = float(pop.weights.max()) / pop.scale
    u_star = pop.size * u_max
    uni_n0 = {a: alpha_mod.zero_discrepancy_draws(u_star, a, params, n_pop=pop.size)
              for a in risk_limits}
    n_max_u = int(min(pop.size, max(v or 0 for v in uni_n0.values()) * 4 + 50))
    sims_u = simulate_first_passage(pop, errors, risk_limits, n_max_u, replicates=replicates,
                                    seed=seed, params=params, uniform=True)
    half = pop.size / 2
    for a in risk_limits:
        for name, n in (("macro", n0[a]),
                        ("alpha", alpha_mod.zero_discrepancy_draws(float(U), a, params))):
            first = sims[name][a]
            p1 = float(np.mean((first > 0) & (first <= (n or 0)))) if n else None
            n90 = _quantile_size(first, 0.9)
            ea = macro.expected_distinct(probs, n) if n else None
            methods.append(MethodPlan(
                name, a, "acta_draws", n, ea,
                macro.expected_ballots(probs, ballots, n) if n else None, p1, n90,
                macro.expected_distinct(probs, n90) if n90 else None,
                practical=ea is not None and ea < half,
                note_es="extracciones con reemplazo (PPEB); se revisa cada acta distinta una vez",
                note_en="draws with replacement (PPEB); each distinct acta is checked once"))
        n = uni_n0[a]
        first = sims_u["alpha"][a]
        p1 = float(np.mean((first > 0) & (first <= (n or 0)))) if n else None
        n90 = _quantile_size(first, 0.9)
        methods.append(MethodPlan(
            "alpha_uniform", a, "actas", n, float(n) if n else None,
            float(n * ballots.mean()) if n else None, p1, n90, float(n90) if n90 else None,
            practical=n is not None and n < half,
            note_es="muestra uniforme sin reemplazo (muestreador consistente)",
            note_en="uniform sample without replacement (consistent sampler)"))
        methods.extend(_ballot_level(pop, a, errors))
    diluted = min(margins) / total_ballots if total_ballots else 0.0
    return AuditPlan(**base, total_bound=U, diluted_margin=diluted, methods=tuple(methods))


def _closest_assertion(pop: AuditPopulation) -> int:
    return int(np.argmin(np.array(pop.margin, dtype=np.float64)))


def _ballot_level(pop: AuditPopulation, a: float, errors: ErrorModel) -> list[MethodPlan]:
    out: list[MethodPlan] = []
    i = _closest_assertion(pop)
    asr = pop.assertions[i]
    coef = np.array(asr.coef)
    vf = (pop.votes * np.where(coef > 0, 1, 0)).sum(axis=1)
    va = (pop.votes * np.where(coef < 0, 1, 0)).sum(axis=1)
    ballots = pop.ballots
    nb = float(ballots.sum())
    # ONEAudit: cards; applies to thresholds of 1/2 (equal coefficients up and down)
    if asr.pos == asr.neg:
        m = alpha_mod.oneaudit_expected_cards(vf, va, ballots, a)
        touched = None if m is None else float(
            np.sum(-np.expm1(m * np.log1p(-np.minimum(ballots / nb, 1 - 1e-16)))))
        out.append(MethodPlan(
            "oneaudit", a, "cards", None if m is None else math.ceil(m), touched,
            None if m is None else float(math.ceil(m)), None, None, None,
            practical=touched is not None and touched < pop.size / 2,
            note_es="referencia: boletas sueltas dentro de las actas; exige conservar las "
                    "boletas por acta; tamaño esperado con la mejor apuesta fija",
            note_en="reference: single ballots within actas; needs the ballots kept per "
                    "acta; expected size with the best fixed bet"))
    pf = bravo_mod.polling_figures(asr.id, int(vf.sum()), int(va.sum()), ballots, a)
    out.append(MethodPlan(
        "bravo", a, "ballots", None if pf.asn_ballots is None else math.ceil(pf.asn_ballots),
        pf.expected_actas_touched, pf.asn_ballots, None, pf.bravo_90_ballots, None,
        practical=not pf.impractical,
        note_es=("impracticable: el ASN equivale a un recuento casi total; exige conservar "
                 "las boletas" if pf.impractical else "exige conservar las boletas"),
        note_en=("impractical: the ASN amounts to an almost full hand count; needs the "
                 "paper ballots" if pf.impractical else "needs the paper ballots")))
    out.append(MethodPlan(
        "minerva", a, "ballots", None, None, None, None, pf.minerva_90_relevant_ballots,
        None, practical=not pf.impractical,
        note_es="primera ronda con 90% de probabilidad de terminar (boletas de los dos "
                "candidatos; aproximación normal)",
        note_en="first round with a 90% chance to stop (ballots for the two candidates; "
                "normal approximation)"))
    mu = min(pop.margin) / nb
    mean_k = float(np.dot(errors.votes, errors.probs))
    r1 = errors.rate * mean_k / float(ballots.mean())
    n_ss = ss.sample_size(mu, a)
    out.append(MethodPlan(
        "supersimple", a, "ballots", n_ss, None, float(n_ss), None,
        ss.sample_size_rates(mu, a, r1=r1), None, practical=False,
        note_es="referencia: necesita un registro de cada boleta (CVR), que no existe",
        note_en="reference: needs a cast-vote record per ballot, which does not exist"))
    return out
