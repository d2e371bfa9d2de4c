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

import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from escrutinio.audit import alpha as alpha_mod
from escrutinio.audit import bravo as bravo_mod
from escrutinio.audit import macro
from escrutinio.audit import supersimple as ss
from escrutinio.audit.model import AuditPopulation, BallotTotals, ballot_totals
from escrutinio.provenance import Provenance

DEFAULT_RISK_LIMITS = (0.05, 0.10)
#: simulated audits behind every first-round size (the 90% size): ``audit plan``, ``audit
#: sample`` and the dashboard all use these, so they show the same number. With 200,000
#: the 90% size of the Peru 2021 runoff moves by less than +/-1% between seeds (MACRO at
#: 5%: 1,738-1,768 over 6 seeds with 100,000; tests/test_audit_math.py checks the spread)
PLAN_REPLICATES = 200_000
PLAN_SEED = 20210606
_CHUNK = 50_000  # replicates simulated at once (memory), each chunk from its own stream


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
    #: super-simple only: the initial size the common tools (Arlo; rlacalc) give for the
    #: same diluted margin, with their default discrepancy rates and rounding
    common_tools_size: int | None = None


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
    #: every ballot total of the audit screens, reconciled (model.ballot_totals)
    ballots: BallotTotals | None = None
    #: how the first-round (90%) sizes were computed, and how stable they are
    size_note_es: str = ""
    size_note_en: str = ""


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
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        need = np.ceil((threshold - cum) / c - 1e-12)
    need = np.where(np.isfinite(need), need, np.inf)
    j = np.maximum(lo, need)
    valid = (j <= hi) & (lo <= hi) & (lo <= n_max)
    j = np.where(valid, j, np.inf)
    first = j.min(axis=1)
    return np.where(np.isfinite(first), first, 0).astype(np.int64)


def simulate_first_passage(pop: AuditPopulation, errors: ErrorModel, alphas: tuple[float, ...],
                           n_max: int, *, replicates: int = 1000,
                           seed: int | np.random.SeedSequence = PLAN_SEED,
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
    u_eff = pop.size * float(w.max()) / pop.scale if uniform else U  # U* or U
    if not uniform:
        uw, cnt = np.unique(w, return_counts=True)
        cum = np.cumsum(uw * cnt)
    c_km = -math.log1p(-1 / u_eff)
    lam = min(alpha_mod.design_bet(u_eff, params), params.c_max / 0.5)
    x0 = 1.0 / (2.0 * (1.0 - 1.0 / u_eff))
    c_al = math.log1p(lam * (x0 - 0.5))
    counts = rng.binomial(n_max, errors.rate, size=replicates)
    out: dict[str, dict[float, np.ndarray]] = {"macro": {}, "alpha": {}}
    for a in alphas:
        if not uniform:
            out["macro"][a] = np.zeros(replicates, dtype=np.int64)
        out["alpha"][a] = np.zeros(replicates, dtype=np.int64)
    # replicates in buckets of similar discrepancy counts, so that the arrays are as wide
    # as each bucket needs (the work follows the discrepancies, not their maximum)
    top = int(counts.max())
    edges = sorted({0, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, *range(128, top + 64, 64)})
    for lo, hi in itertools.pairwise([*[e for e in edges if e <= top], top + 1]):
        idx = np.flatnonzero((counts >= lo) & (counts < hi))
        if idx.size == 0:
            continue
        r, k_max = idx.size, max(1, hi - 1)
        pos = rng.integers(1, n_max + 1, size=(r, k_max))  # unsorted: keep uniform
        pos = np.sort(np.where(np.arange(k_max)[None, :] < counts[idx, None], pos,
                               n_max + 1), axis=1)
        k = votes[rng.choice(len(votes), size=(r, k_max), p=probs)]
        if uniform:
            t = np.minimum(k / (m_min * float(w.max()) / pop.scale), 1.0)
        else:
            wd = uw[np.minimum(np.searchsorted(cum, rng.random((r, k_max)) * cum[-1],
                                               side="right"), len(uw) - 1)]
            t = np.minimum(k / (m_min * wd / pop.scale), 1.0)
        with np.errstate(divide="ignore"):
            d_km = np.log1p(-t)  # -inf when a draw hides its whole bound
        d_al = np.log1p(lam * ((1.0 - t) * x0 - 0.5)) - c_al
        for a in alphas:
            thr = math.log(1 / a)
            if not uniform:
                out["macro"][a][idx] = first_passage_sparse(c_km, pos, d_km, thr, n_max)
            out["alpha"][a][idx] = first_passage_sparse(
                c_al, pos, d_al, thr + alpha_mod.slack(n_max), n_max)
    return out


def first_passages(pop: AuditPopulation, a: float, errors: ErrorModel,
                   params: alpha_mod.AlphaParams, *, replicates: int = PLAN_REPLICATES,
                   seed: int = PLAN_SEED, uniform: bool = False) -> dict[str, np.ndarray]:
    """First draw at which each method reaches the risk limit ``a``, per simulated audit.

    The one computation behind every first-round size: it depends only on the population,
    ``a``, the error model, the ALPHA bet, ``replicates`` and ``seed`` (never on the other
    risk limits asked for at the same time), so ``audit plan`` and ``audit sample`` agree.
    Simulated in chunks of 50,000, chunk i from ``SeedSequence([seed, i])``."""
    if uniform:
        n0 = alpha_mod.zero_discrepancy_draws(pop.size * float(pop.weights.max()) / pop.scale,
                                              a, params, n_pop=pop.size) or 0
        n_max = int(min(pop.size, n0 * 4 + 50))
    else:
        n_max = int(macro.zero_discrepancy_draws(pop.U, a) * 4 + 50)
    parts: dict[str, list[np.ndarray]] = {}
    done, i = 0, 0
    while done < replicates:
        r = min(_CHUNK, replicates - done)
        sims = simulate_first_passage(pop, errors, (a,), n_max, replicates=r,
                                      seed=np.random.SeedSequence([seed, i]), params=params,
                                      uniform=uniform)
        for name, per in sims.items():
            if a in per:
                parts.setdefault(name, []).append(per[a])
        done, i = done + r, i + 1
    return {name: np.concatenate(v) for name, v in parts.items()}


def first_round_size(pop: AuditPopulation, method: str, a: float, *,
                     errors: ErrorModel | None = None,
                     params: alpha_mod.AlphaParams | None = None,
                     replicates: int = PLAN_REPLICATES, seed: int = PLAN_SEED) -> int | None:
    """The first-round size with a 90% chance to finish (``macro``, ``alpha`` or
    ``alpha_uniform``): exactly the plan's ``size_90`` for the same inputs (the same
    :func:`first_passages`), which ``audit sample`` draws by default."""
    uniform = method == "alpha_uniform"
    first = first_passages(pop, a, errors or ErrorModel(), params or alpha_mod.AlphaParams(),
                           replicates=replicates, seed=seed, uniform=uniform)
    return _quantile_size(first["alpha" if uniform else method], 0.9)


def plan_audit(pop: AuditPopulation, *, risk_limits: tuple[float, ...] = DEFAULT_RISK_LIMITS,
               errors: ErrorModel | None = None, params: alpha_mod.AlphaParams | None = None,
               replicates: int = PLAN_REPLICATES, seed: int = PLAN_SEED) -> AuditPlan:
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
        alpha_params=params.to_dict(), provenance=prov, ballots=ballot_totals(pop),
        size_note_es=(f"tamaño 90%: {replicates:,} auditorías simuladas por método y límite "
                      f"(semilla {seed}), el mismo cálculo que usa 'audit sample'; con "
                      f"{PLAN_REPLICATES:,} varía menos de ±1% entre semillas"),
        size_note_en=(f"90% size: {replicates:,} simulated audits per method and limit "
                      f"(seed {seed}), the same computation 'audit sample' uses; with "
                      f"{PLAN_REPLICATES:,} it moves by less than ±1% between seeds"))
    if not pop.auditable:
        bad = [a.id for a, v in zip(pop.assertions, margins, strict=True) if v <= 0]
        es = [f"sin margen que proteger en {bad}: las actas apartadas de forma conservadora "
              "podrían revertir el resultado; ninguna auditoría puede confirmarlo así"]
        en = [f"no margin left for {bad}: the actas set aside conservatively could reverse "
              "the outcome; no audit can confirm it this way"]
        unk = {k: v for k, v in pop.left_out.items() if k in ("rejected", "missing")}
        if unk:
            n_r = unk.get("rejected", {}).get("actas", 0)
            n_m = unk.get("missing", {}).get("actas", 0)
            b = sum(v["ballots"] for v in unk.values())
            es.append(f"{n_r:,} actas rechazadas al ingerir y {n_m:,} faltantes (sus votos se "
                      f"desconocen) podrían contener {b:,} boletas; contadas como el peor "
                      f"caso, todas para el perdedor, dejan el margen en {min(margins):,}")
            en.append(f"{n_r:,} actas rejected at ingest and {n_m:,} missing (their votes "
                      f"are unknown) could hold {b:,} ballots; counted as the worst case, "
                      f"all for the loser, they leave the margin at {min(margins):,}")
        return AuditPlan(**base, total_bound=Fraction(0), diluted_margin=0.0, methods=(),
                         reasons_es=tuple(es), reasons_en=tuple(en))
    U = pop.U  # noqa: N806
    probs = pop.weights_float() / float(pop.total_weight)
    ballots = pop.ballots.astype(np.float64)
    methods: list[MethodPlan] = []
    n0 = {a: macro.zero_discrepancy_draws(U, a) for a in risk_limits}
    u_max = float(pop.weights.max()) / pop.scale
    u_star = pop.size * u_max
    uni_n0 = {a: alpha_mod.zero_discrepancy_draws(u_star, a, params, n_pop=pop.size)
              for a in risk_limits}
    half = pop.size / 2
    for a in risk_limits:
        sims = first_passages(pop, a, errors, params, replicates=replicates, seed=seed)
        sims_u = first_passages(pop, a, errors, params, replicates=replicates, seed=seed,
                                uniform=True)
        for name, n in (("macro", n0[a]),
                        ("alpha", alpha_mod.zero_discrepancy_draws(float(U), a, params))):
            first = sims[name]
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
        first = sims_u["alpha"]
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
                "candidatos; " + {"exact": "colas binomiales exactas, cada n probado",
                                  "exact_bisection": "colas binomiales exactas, bisección",
                                  "normal": "aproximación normal, error relativo < 0,1% a "
                                            "este tamaño"}.get(pf.minerva_method, "") + ")",
        note_en="first round with a 90% chance to stop (ballots for the two candidates; "
                + {"exact": "exact binomial tails, every n tried",
                   "exact_bisection": "exact binomial tails, bisection",
                   "normal": "normal approximation, relative error < 0.1% at this size"
                   }.get(pf.minerva_method, "") + ")"))
    mu = min(pop.margin) / nb
    mean_k = float(np.dot(errors.votes, errors.probs))
    r1 = errors.rate * mean_k / float(ballots.mean())
    n_ss = ss.sample_size(mu, a)
    common = ss.sample_size_common(mu, a)
    c = "—" if common is None else f"{common:,}"
    out.append(MethodPlan(
        "supersimple", a, "ballots", n_ss, None, float(n_ss), None,
        ss.sample_size_rates(mu, a, r1=r1), None, practical=False,
        note_es=("referencia: necesita un registro de cada boleta (CVR), que no existe. "
                 "Tamaño con errores: fórmula lineal de Stark (2010) n = −2γ ln α / (μ + "
                 "2γ r₁ ln(1 − 1/2γ)), γ = 1,03905, con la tasa de sobredeclaraciones de un "
                 f"voto del modelo de errores (r₁ = {r1:.2e}); no es un cuantil 90%. Las "
                 f"herramientas comunes (Arlo, rlacalc: denominador logarítmico, tasas 0,001 "
                 f"y 0,0001, discrepancias redondeadas) dan {c}"),
        note_en=("reference: needs a cast-vote record per ballot, which does not exist. "
                 "Size with errors: Stark's (2010) linear formula n = −2γ ln α / (μ + 2γ r₁ "
                 "ln(1 − 1/2γ)), γ = 1.03905, with the error model's one-vote overstatement "
                 f"rate (r₁ = {r1:.2e}); not a 90% quantile. The common tools (Arlo, "
                 "rlacalc: log denominator, rates 0.001 and 0.0001, rounded discrepancies) "
                 f"give {c}"),
        common_tools_size=common))
    return out
