"""Quick count (*conteo rápido*): stratified sample of mesas, estimates with intervals, a
technical-tie rule and fusion with the official partial count (docs/methods.md §3).

Design
    Strata from :func:`escrutinio.defence.strata.assign_strata` (area1 × urban/rural, and
    abroad). The size comes from the sample-size formula for a proportion, in voters,
    ``n = p(1−p) / ((E/z)² + p(1−p)/N)``, inflated by a design effect for clustering in
    mesas and divided by the mean two-candidate votes per mesa:
    ``mesas = ⌈n · deff / v̄⌉``. It is allocated to strata in proportion to electors
    (largest remainders), at least ``min_per_stratum`` (2) per stratum so every stratum
    has a variance, and never more than the stratum has.

Public sample
    Within each stratum, mesas are ranked by ``SHA-256(seed + "," + acta_id)`` (the hex
    digest compared as text, i.e. as a 256-bit number) and the first ``n_h`` are taken.
    Anyone with the seed (rolled with dice in public) and the mesa list reproduces the
    sample with any SHA-256 implementation; no library RNG is involved (docs/methods.md §6).

Estimators (share of candidate A in the two-candidate vote, A / (A + B))
    * **ratio** (separate ratio estimator to electors): in each stratum, votes per elector
      in the sample times the stratum's electors; intervals from a stratified
      **Rao-Wu rescaling bootstrap** (n_h − 1 draws with replacement within each
      stratum; Rao & Wu 1988), percentile method.
    * **model** (Bayesian normal ratio model, after Mendoza & Nieto-Barajas 2016, the
      INE's quick count): per stratum, two-candidate votes per elector
      ``v_i ~ N(φ_h e_i, σ²_φ e_i)`` and A's votes given them ``a_i ~ N(θ_h v_i, σ²_θ v_i)``,
      flat priors on φ, θ and on log σ; posterior draws of (φ, σ²) and (θ, σ²) are
      conjugate (normal-gamma), then the stratum totals are drawn from the posterior
      predictive. Credible interval from the draws.
    Strata with fewer than two reports are collapsed into their area1, then into all.

Technical tie
    The combined interval is the union of the two estimators' intervals (the INE
    reports a range covering its estimators). If it contains 50% the quick count says
    **technical tie** (*empate técnico*); otherwise it names the winner.

Fusion with the official partial count
    Counted actas are known exactly. For the rest, each stratum's uncounted electors are
    estimated from the sampled mesas that are not yet counted (a random sample of them,
    because the sample was drawn before and independently of the count order); where a
    stratum has fewer than ``min_fusion`` such reports, from all its reports.

Repeated-sampling validation draws the same stratified design with a PCG64 generator:
statistically identical to the SHA-256 ranking, and fast enough for thousands of runs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import numpy as np
import polars as pl
from numpy.random import PCG64, Generator

from escrutinio.domain import CONTABILIZADA, ActaStatus
from escrutinio.provenance import Provenance, to_jsonable

Z95: Final = 1.959963984540054


# --- sample size and design effect --------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SampleSize:
    moe: float  # target half-width, as a fraction (0.01 = ±1 point)
    p: float
    z: float
    population_voters: int
    deff: float
    mean_votes_per_mesa: float
    voters_srs: float  # n from the formula (simple random sample of voters)
    mesas: int  # ⌈n · deff / v̄⌉


def sample_size(moe: float, *, population_voters: int, mean_votes_per_mesa: float,
                deff: float, p: float = 0.5, z: float = Z95) -> SampleSize:
    """n = p(1−p)/((E/z)² + p(1−p)/N) voters, then mesas = ⌈n · deff / v̄⌉."""
    if not 0 < moe < 0.5 or not 0 < p < 1 or population_voters <= 0:
        raise ValueError("need 0 < moe < 0.5, 0 < p < 1 and a positive population")
    pq = p * (1 - p)
    n = pq / ((moe / z) ** 2 + pq / population_voters)
    mesas = math.ceil(n * deff / mean_votes_per_mesa)
    return SampleSize(moe, p, z, population_voters, deff, mean_votes_per_mesa, n, mesas)


def margin_of_error(n_mesas: int, *, mean_votes_per_mesa: float, deff: float,
                    p: float = 0.5, z: float = Z95,
                    population_voters: int | None = None) -> float:
    """Half-width (fraction) for n mesas, the inverse of :func:`sample_size`: with
    n' = n·v̄/deff effective voters, z·√(p(1−p)·(1/n' − 1/N)) (no finite-population term
    without N)."""
    n_eff = n_mesas * mean_votes_per_mesa / deff
    fpc = 1 / population_voters if population_voters else 0.0
    return z * math.sqrt(max(p * (1 - p) * (1 / n_eff - fpc), 0.0))


@dataclass(frozen=True, slots=True)
class DesignEffect:
    deff_unstratified: float
    deff_stratified: float
    share: float  # A / (A + B) over the data used
    mean_votes_per_mesa: float
    n_mesas: int


def design_effect(a: np.ndarray, b: np.ndarray, strata: np.ndarray) -> DesignEffect:
    """Design effect of the ratio A/(A+B) estimated from mesas, against a simple random
    sample of voters, with and without stratification (proportional allocation):
    deff = Σ_h W_h S²_{d,h} / (v̄ p(1−p)), d_i = a_i − p v_i (Kish 1965, ratio
    linearisation). Use a past election's per-mesa results to plan the next one."""
    a = np.asarray(a, dtype=float)
    v = a + np.asarray(b, dtype=float)
    p = a.sum() / v.sum()
    d = a - p * v
    vbar = v.mean()
    pq = p * (1 - p)
    un = d.var(ddof=1) / (vbar * pq)
    _, inv, counts = np.unique(strata, return_inverse=True, return_counts=True)
    s1 = np.bincount(inv, d)
    s2 = np.bincount(inv, d * d)
    within = np.where(counts > 1, (s2 - s1 ** 2 / counts) / np.maximum(counts - 1, 1), 0.0)
    strat = float((counts / counts.sum() * within).sum() / (vbar * pq))
    return DesignEffect(float(un), strat, float(p), float(vbar), len(a))


# --- design and public sample --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StratumDesign:
    stratum: str
    mesas: int
    electors: int
    sample: int


@dataclass(frozen=True, slots=True)
class QuickCountDesign:
    strata: tuple[StratumDesign, ...]
    n_mesas: int
    n_strata: int
    size: SampleSize | None
    min_per_stratum: int
    provenance: Provenance

    def table(self) -> pl.DataFrame:
        return pl.DataFrame([to_jsonable(s) for s in self.strata])


def allocate(electors: np.ndarray, mesas: np.ndarray, n: int, min_per_stratum: int = 2
             ) -> np.ndarray:
    """Proportional-to-electors allocation with largest remainders, a floor of
    ``min_per_stratum`` and a ceiling of the stratum's mesas."""
    electors = np.asarray(electors, dtype=float)
    mesas = np.asarray(mesas, dtype=np.int64)
    floor = np.minimum(mesas, min_per_stratum)
    if n >= mesas.sum():
        return mesas.copy()
    if n < floor.sum():
        raise ValueError(f"{n} mesas cannot give {min_per_stratum} to each of "
                         f"{len(mesas)} strata (need {int(floor.sum())})")
    alloc = floor.copy()
    for _ in range(len(mesas) + 1):  # a few rounds at most: capped strata release seats
        free = n - alloc.sum()
        if free <= 0:
            break
        open_ = alloc < mesas
        share = np.where(open_, electors, 0.0)
        quota = share / share.sum() * (n - (alloc * ~open_).sum()) if share.sum() else share
        target = np.minimum(np.maximum(np.floor(quota), alloc), mesas)
        extra = int(n - target.sum())
        if extra > 0:
            rem = np.where(target < mesas, quota - np.floor(quota), -1.0)
            order = np.argsort(-rem, kind="stable")[:extra]
            target[order] += 1
        alloc = np.minimum(target.astype(np.int64), mesas)
        if alloc.sum() == n:
            break
    return alloc


def design(universe: pl.DataFrame, *, n_mesas: int | None = None, moe: float | None = None,
           deff: float | None = None, mean_votes_per_mesa: float | None = None,
           expected_turnout: float = 0.75, p: float = 0.5, z: float = Z95,
           min_per_stratum: int = 2, snapshot_ids: Sequence[str] = ()) -> QuickCountDesign:
    """Stratum sizes for ``n_mesas``, or for a target margin of error ``moe`` (then
    ``deff`` and ``mean_votes_per_mesa`` are needed, e.g. from :func:`design_effect` on a
    past election). ``universe``: :func:`assign_strata` output (one row per mesa)."""
    st = (universe.group_by("stratum").agg(pl.len().alias("mesas"),
                                           pl.col("electors").sum().alias("electors"))
          .sort("stratum"))
    size = None
    if n_mesas is None:
        if moe is None or deff is None or mean_votes_per_mesa is None:
            raise ValueError("give n_mesas, or moe with deff and mean_votes_per_mesa")
        voters = int(cast(float, st["electors"].sum()) * expected_turnout)
        size = sample_size(moe, population_voters=voters,
                           mean_votes_per_mesa=mean_votes_per_mesa, deff=deff, p=p, z=z)
        n_mesas = size.mesas
    alloc = allocate(st["electors"].to_numpy(), st["mesas"].to_numpy(), n_mesas,
                     min_per_stratum)
    strata = tuple(StratumDesign(s, int(m), int(e), int(k)) for s, m, e, k in
                   zip(st["stratum"], st["mesas"], st["electors"], alloc, strict=True))
    prov = Provenance(tuple(snapshot_ids), "defence.quickcount.design",
                      {"n_mesas": n_mesas, "moe": moe, "deff": deff, "p": p, "z": z,
                       "min_per_stratum": min_per_stratum})
    return QuickCountDesign(strata, int(alloc.sum()), len(strata), size, min_per_stratum, prov)


def sha256_keys(acta_ids: Sequence[str] | pl.Series, seed: str) -> list[str]:
    """Hex SHA-256 of ``seed + "," + acta_id`` for each acta (the public ranking key)."""
    return [hashlib.sha256(f"{seed},{a}".encode()).hexdigest() for a in acta_ids]


def draw_sample(universe: pl.DataFrame, plan: QuickCountDesign, seed: str) -> pl.DataFrame:
    """The public sample: in each stratum the ``n_h`` mesas with the smallest
    SHA-256(seed + "," + acta_id). Columns ``stratum, rank, acta_id, sha256``."""
    sizes = pl.DataFrame({"stratum": [s.stratum for s in plan.strata],
                          "__n": [s.sample for s in plan.strata]})
    keyed = universe.select("acta_id", "stratum").with_columns(
        pl.Series("sha256", sha256_keys(universe["acta_id"], seed)))
    return (keyed.sort("stratum", "sha256")
            .with_columns(pl.int_range(1, pl.len() + 1).over("stratum").alias("rank"))
            .join(sizes, on="stratum").filter(pl.col("rank") <= pl.col("__n"))
            .select("stratum", "rank", "acta_id", "sha256"))


# --- estimation core (numpy) --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Core:
    """Per estimation stratum: electors to estimate, and its sample (sorted by stratum)."""

    electors: np.ndarray  # (H,) electors of the mesas to estimate in each stratum
    frozen: np.ndarray  # (H,) True: every mesa to estimate was reported (no sampling error)
    starts: np.ndarray  # (H,) first sample position of each stratum
    sizes: np.ndarray  # (H,)
    a: np.ndarray  # (n,) A's votes in the sampled mesas
    v: np.ndarray  # (n,) A + B
    e: np.ndarray  # (n,) electors
    known_a: float  # exactly known part (counted actas in a fusion)
    known_v: float


def _ratio_point(c: _Core) -> float:
    sa = np.add.reduceat(c.a, c.starts)
    sv = np.add.reduceat(c.v, c.starts)
    se = np.add.reduceat(c.e, c.starts)
    ta = c.known_a + float((c.electors * sa / se).sum())
    tv = c.known_v + float((c.electors * sv / se).sum())
    return ta / tv


def _ratio_bootstrap(c: _Core, n_boot: int, rng: Generator) -> np.ndarray:
    """Rao-Wu rescaling bootstrap (m_h = n_h − 1) of the separate ratio estimator.

    Each replicate draws n_h − 1 of the n_h sampled mesas with replacement in every
    stratum; within a stratum the rescaling factor cancels in the ratio, so the stratum
    sums of the drawn mesas are all that is needed (gathered, then summed per stratum)."""
    live = ~c.frozen & (c.sizes >= 2)
    m = np.where(live, c.sizes - 1, 0)
    h_live = np.flatnonzero(m)
    # float32 uniforms and int32 indices: the index arithmetic is memory-bound
    slot_start = np.repeat(c.starts, m).astype(np.int32)
    slot_size = np.repeat(c.sizes, m).astype(np.float32)
    full = [np.add.reduceat(x, c.starts) for x in (c.a, c.v, c.e)]
    sa, sv, se = (np.repeat(x[None, :], n_boot, axis=0) for x in full)
    if len(slot_start):
        u = rng.random((n_boot, len(slot_start)), dtype=np.float32)
        idx = np.minimum((u * slot_size).astype(np.int32), slot_size.astype(np.int32) - 1)
        idx += slot_start
        first_slot = np.concatenate([[0], np.cumsum(m[h_live])[:-1]])
        for out, x in ((sa, c.a), (sv, c.v), (se, c.e)):
            out[:, h_live] = np.add.reduceat(np.take(x, idx), first_slot, axis=1)
    se = np.where(se > 0, se, np.nan)
    ta = c.known_a + np.nansum(c.electors * sa / se, axis=1)
    tv = c.known_v + np.nansum(c.electors * sv / se, axis=1)
    return ta / tv


def _normal_gamma(y: np.ndarray, x: np.ndarray, starts: np.ndarray, sizes: np.ndarray,
                  n_draws: int, rng: Generator) -> tuple[np.ndarray, np.ndarray]:
    """Posterior draws (H × S) of slope β and variance σ² in y_i ~ N(β x_i, σ² x_i) per
    stratum, prior ∝ 1/σ²: σ² = SS/χ²_{k−1}, β | σ² ~ N(β̂, σ²/Σx)."""
    use = x > 0
    xs = np.where(use, x, 0.0)
    ys = np.where(use, y, 0.0)
    sx = np.add.reduceat(xs, starts)
    sy = np.add.reduceat(ys, starts)
    k = np.add.reduceat(use.astype(float), starts)
    beta = np.where(sx > 0, sy / np.where(sx > 0, sx, 1.0), 0.0)
    resid = np.where(use, (y - np.repeat(beta, sizes) * x) ** 2 / np.where(use, x, 1.0), 0.0)
    ss = np.maximum(np.add.reduceat(resid, starts), 1e-9)
    dof = np.maximum(k - 1, 1)
    shape = (len(starts), n_draws)
    # χ²_k = 2·Gamma(k/2); float32 draws (then float64 arithmetic) halve the cost
    chi2 = 2.0 * rng.standard_gamma(np.broadcast_to((dof / 2)[:, None], shape)
                                    .astype(np.float32), dtype=np.float32)
    sigma2 = ss[:, None] / np.maximum(chi2.astype(np.float64), 1e-12)
    b = beta[:, None] + rng.standard_normal(shape, dtype=np.float32) * np.sqrt(
        sigma2 / np.where(sx > 0, sx, 1.0)[:, None])
    return b, sigma2


def _model_draws(c: _Core, n_draws: int, rng: Generator) -> np.ndarray:
    phi, s2_phi = _normal_gamma(c.v, c.e, c.starts, c.sizes, n_draws, rng)
    theta, s2_theta = _normal_gamma(c.a, c.v, c.starts, c.sizes, n_draws, rng)
    theta = np.clip(theta, 0.0, 1.0)
    e_tot = c.electors[:, None]
    noise = rng.standard_normal((2, *phi.shape), dtype=np.float32)
    v_tot = phi * e_tot + noise[0] * np.sqrt(s2_phi * e_tot)
    v_tot = np.maximum(v_tot, 0.0)
    a_tot = theta * v_tot + noise[1] * np.sqrt(s2_theta * v_tot)
    a_tot = np.clip(a_tot, 0.0, v_tot)
    # strata where every mesa to estimate was reported are known exactly
    sa = np.add.reduceat(c.a, c.starts)[:, None]
    sv = np.add.reduceat(c.v, c.starts)[:, None]
    fz = c.frozen[:, None]
    a_tot = np.where(fz, sa, a_tot)
    v_tot = np.where(fz, sv, v_tot)
    return (c.known_a + a_tot.sum(axis=0)) / (c.known_v + v_tot.sum(axis=0))


def _collapse(keys: np.ndarray, counts: dict[str, int], min_reports: int = 2) -> np.ndarray:
    """Map strata with fewer than ``min_reports`` reports to their area1 (the key before
    "|"), then to "*"; if even "*" is short, every stratum is pooled into "*"."""
    out = np.array(keys, dtype=object)
    for level in (1, 2, 3):
        current: dict[str, int] = {}
        for k_orig, k_cur in zip(keys, out, strict=True):
            current[k_cur] = current.get(k_cur, 0) + counts.get(str(k_orig), 0)
        small = np.array([current[k] < min_reports for k in out], dtype=bool)
        if not small.any():
            break
        if level == 3:
            out[:] = "*"
            break
        out[small] = [k.split("|", 1)[0] if level == 1 else "*" for k in out[small]]
    return out.astype(str)


# --- results ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Interval:
    method: str  # ratio_bootstrap | bayes_ratio_model | combined
    estimate: float  # share of A in A + B (fraction)
    lower: float
    upper: float
    level: float

    @property
    def half_width(self) -> float:
        return (self.upper - self.lower) / 2


@dataclass(frozen=True, slots=True)
class QuickCountEstimate:
    candidate_a: str
    candidate_b: str
    kind: str  # quick_count | fusion
    ratio: Interval
    model: Interval
    combined: Interval
    call: str  # "a" | "b" | "technical_tie"
    call_es: str
    call_en: str
    n_reports: int
    n_sampled: int | None
    n_strata: int
    n_collapsed_strata: int
    known_share: float | None  # fusion: share among the counted actas alone
    known_fraction_electors: float | None  # fusion: electors already counted / all
    provenance: Provenance
    #: what each stratum's ratio is taken to: "electors" (the roll of every mesa), or
    #: "stations" (one per polling station) when the snapshot lacks some electors
    size_basis: str = "electors"

    def to_jsonable(self) -> dict[str, Any]:
        out: dict[str, Any] = to_jsonable(self)
        return out


def call_rule(lower: float, upper: float) -> str:
    """Technical-tie rule: the interval must exclude 50% to name a winner."""
    if lower > 0.5:
        return "a"
    if upper < 0.5:
        return "b"
    return "technical_tie"


def _call_text(call: str, a: str, b: str, comb: Interval) -> tuple[str, str]:
    lo, hi = 100 * comb.lower, 100 * comb.upper
    if call == "technical_tie":
        return (f"Empate técnico: {a} tendría entre {lo:.2f}% y {hi:.2f}% de los votos de "
                "ambos candidatos; el intervalo contiene el 50%.",
                f"Technical tie: {a} would have between {lo:.2f}% and {hi:.2f}% of the "
                "two-candidate vote; the interval contains 50%.")
    w = a if call == "a" else b
    return (f"Gana {w}: {a} tendría entre {lo:.2f}% y {hi:.2f}% de los votos de ambos.",
            f"{w} wins: {a} would have between {lo:.2f}% and {hi:.2f}% of the two-candidate "
            "vote.")


def _intervals(c: _Core, *, alpha: float, n_boot: int, n_draws: int, rng: Generator
               ) -> tuple[Interval, Interval, Interval]:
    q = [alpha / 2, 1 - alpha / 2]
    point = _ratio_point(c)
    boot = _ratio_bootstrap(c, n_boot, rng)
    lo_r, hi_r = np.quantile(boot, q)
    draws = _model_draws(c, n_draws, rng)
    lo_m, hi_m = np.quantile(draws, q)
    level = 1 - alpha
    ratio = Interval("ratio_bootstrap", point, float(lo_r), float(hi_r), level)
    model = Interval("bayes_ratio_model", float(np.median(draws)), float(lo_m), float(hi_m),
                     level)
    comb = Interval("combined", (ratio.estimate + model.estimate) / 2,
                    min(ratio.lower, model.lower), max(ratio.upper, model.upper), level)
    return ratio, model, comb


def size_measure(universe: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """The size each mesa's votes are scaled by: its electors when every mesa has them
    (the ratio estimator to electors); otherwise one per mesa for all (a ratio to mesas:
    a snapshot without the roll, as Chile's, must not turn the estimate into 0/0)."""
    el = universe["electors"] if "electors" in universe.columns else None
    if el is not None and el.null_count() == 0 and universe.height \
            and bool((el.cast(pl.Float64) > 0).all()):
        return universe, "electors"
    return universe.with_columns(pl.lit(1.0).alias("electors")), "stations"


def _basis_note(basis: str, es: str, en: str) -> tuple[str, str]:
    if basis == "electors":
        return es, en
    return (es + " La instantánea no trae electores: cada estrato se estima en proporción a "
            "su número de actas, no de electores.",
            en + " The snapshot has no electors: each stratum is scaled by its number of "
            "tally sheets, not of electors.")


def _core_from(pop: pl.DataFrame, est: pl.DataFrame, known_a: float, known_v: float,
               frozen_strata: set[str]) -> _Core:
    """``pop``: stratum, electors (per estimation stratum, summed). ``est``: stratum, a, v, e."""
    est = est.sort("stratum")
    st = est.group_by("stratum", maintain_order=True).agg(pl.len().alias("n"))
    sizes = st["n"].to_numpy().astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    electors = st.join(pop, on="stratum", how="left")["electors"].fill_null(0).to_numpy()
    frozen = np.array([s in frozen_strata for s in st["stratum"]], dtype=bool)
    return _Core(electors.astype(float), frozen, starts, sizes,
                 est["a"].to_numpy().astype(float), est["v"].to_numpy().astype(float),
                 est["e"].to_numpy().astype(float), known_a, known_v)


def _reports_ab(reports: pl.DataFrame, a: str, b: str) -> pl.DataFrame:
    """One report per acta (the earliest when a mesa was reported twice); a report
    without both candidates' figures is not a report."""
    sort = [c for c in ("observed_at", "line") if c in reports.columns]
    r = reports.filter(pl.col(f"v_{a}").is_not_null() & pl.col(f"v_{b}").is_not_null())
    r = r.sort(sort) if sort else r
    return r.unique("acta_id", keep="first", maintain_order=True).select(
        "acta_id", pl.col(f"v_{a}").fill_null(0).alias("a"),
        (pl.col(f"v_{a}").fill_null(0) + pl.col(f"v_{b}").fill_null(0)).alias("v"))


def estimate(universe: pl.DataFrame, reports: pl.DataFrame, pair: tuple[str, str], *,
             alpha: float = 0.05, n_boot: int = 2000, n_draws: int = 4000, seed: int = 0,
             n_sampled: int | None = None, snapshot_ids: Sequence[str] = ()
             ) -> QuickCountEstimate:
    """Quick-count estimate of A's two-candidate share from the reports of sampled mesas.

    ``universe``: one row per mesa (``acta_id, stratum, electors``); ``reports``: observer
    copies (``acta_id, v_<a>, v_<b>``) of sampled mesas. Reports naming a mesa outside the
    universe are ignored (and counted)."""
    a, b = pair
    universe, basis = size_measure(universe)
    rep = _reports_ab(reports, a, b).join(universe.select("acta_id", "stratum",
                                                          pl.col("electors").alias("e")),
                                          on="acta_id", how="inner")
    if rep.height < 2:
        raise ValueError("a quick count needs at least two reports")
    counts = dict(zip(*np.unique(rep["stratum"].to_numpy().astype(str), return_counts=True),
                      strict=True))
    mapping = _collapse(universe["stratum"].unique().sort().to_numpy().astype(str),
                        {str(k): int(v) for k, v in counts.items()})
    mp = pl.DataFrame({"stratum": universe["stratum"].unique().sort(), "est": mapping})
    uni = universe.join(mp, on="stratum")
    pop = uni.group_by("est").agg(pl.col("electors").sum(), pl.len().alias("mesas")).rename(
        {"est": "stratum"})
    rep = rep.join(mp, on="stratum").drop("stratum").rename({"est": "stratum"})
    n_rep = rep.group_by("stratum").len()
    frozen = set(pop.join(n_rep, on="stratum").filter(pl.col("len") >= pl.col("mesas"))
                 ["stratum"].to_list())
    core = _core_from(pop.select("stratum", "electors"), rep, 0.0, 0.0, frozen)
    rng = Generator(PCG64(seed))
    ratio, model, comb = _intervals(core, alpha=alpha, n_boot=n_boot, n_draws=n_draws, rng=rng)
    call = call_rule(comb.lower, comb.upper)
    es, en = _basis_note(basis, *_call_text(call, a, b, comb))
    n_collapsed = int((mapping != universe["stratum"].unique().sort().to_numpy()).sum())
    prov = Provenance(tuple(snapshot_ids), "defence.quickcount.estimate",
                      {"alpha": alpha, "n_boot": n_boot, "n_draws": n_draws, "pair": [a, b]},
                      seed=seed)
    return QuickCountEstimate(a, b, "quick_count", ratio, model, comb, call, es, en,
                              rep.height, n_sampled, len(core.sizes), n_collapsed, None, None,
                              prov, basis)


def fuse(universe: pl.DataFrame, official: pl.DataFrame, reports: pl.DataFrame,
         pair: tuple[str, str], *, alpha: float = 0.05, n_boot: int = 2000,
         n_draws: int = 4000, seed: int = 0, min_fusion: int = 5,
         snapshot_ids: Sequence[str] = ()) -> QuickCountEstimate:
    """Fuse the official partial count (``official``: canonical acta frame at some moment)
    with the quick-count reports: counted actas exactly, the rest estimated per stratum."""
    a, b = pair
    universe, basis = size_measure(universe)
    done = official.filter(pl.col("status").is_in([s.value for s in CONTABILIZADA]))
    counted = done.filter(pl.col("status") == ActaStatus.COUNTED.value)
    ka = float(counted[f"v_{a}"].fill_null(0).sum())
    kv = ka + float(counted[f"v_{b}"].fill_null(0).sum())
    open_ = universe.filter(~pl.col("acta_id").is_in(done["acta_id"].implode()))
    rep_all = _reports_ab(reports, a, b).join(
        universe.select("acta_id", "stratum", pl.col("electors").alias("e")), on="acta_id")
    if open_.height == 0:
        point = ka / kv
        iv = Interval("official", point, point, point, 1 - alpha)
        call = call_rule(point, point)
        es, en = _call_text(call, a, b, iv)
        return QuickCountEstimate(a, b, "fusion", iv, iv, iv, call, es, en, rep_all.height,
                                  None, 0, 0, point, 1.0,
                                  Provenance(tuple(snapshot_ids), "defence.quickcount.fuse",
                                             {"pair": [a, b]}, seed=seed))
    rep_open = rep_all.filter(pl.col("acta_id").is_in(open_["acta_id"].implode()))
    n_open = rep_open.group_by("stratum").len()
    pop = open_.group_by("stratum").agg(pl.col("electors").sum(), pl.len().alias("mesas"))
    use_open = set(n_open.filter(pl.col("len") >= min_fusion)["stratum"].to_list())
    est = pl.concat([rep_open.filter(pl.col("stratum").is_in(list(use_open))),
                     rep_all.filter(pl.col("stratum").is_in(pop["stratum"].implode())
                                    & ~pl.col("stratum").is_in(list(use_open)))])
    counts = {str(k): int(v) for k, v in
              est.group_by("stratum").len().iter_rows()}
    keys = pop["stratum"].sort().to_numpy().astype(str)
    mapping = _collapse(keys, counts)
    mp = pl.DataFrame({"stratum": keys, "est": mapping})
    pop2 = (pop.join(mp, on="stratum").group_by("est")
            .agg(pl.col("electors").sum(), pl.col("mesas").sum()).rename({"est": "stratum"}))
    est2 = est.join(mp, on="stratum").drop("stratum").rename({"est": "stratum"})
    frozen = set(pop2.join(rep_open.join(mp, on="stratum").group_by("est").len()
                           .rename({"est": "stratum"}), on="stratum")
                 .filter(pl.col("len") >= pl.col("mesas"))["stratum"].to_list())
    core = _core_from(pop2.select("stratum", "electors"), est2, ka, kv, frozen)
    rng = Generator(PCG64(seed))
    ratio, model, comb = _intervals(core, alpha=alpha, n_boot=n_boot, n_draws=n_draws, rng=rng)
    call = call_rule(comb.lower, comb.upper)
    es, en = _basis_note(basis, *_call_text(call, a, b, comb))
    total_e = float(universe["electors"].sum())
    prov = Provenance(tuple(snapshot_ids), "defence.quickcount.fuse",
                      {"alpha": alpha, "n_boot": n_boot, "n_draws": n_draws, "pair": [a, b],
                       "min_fusion": min_fusion}, seed=seed)
    return QuickCountEstimate(a, b, "fusion", ratio, model, comb, call, es, en,
                              rep_all.height, None, len(core.sizes),
                              int((mapping != keys).sum()), ka / kv if kv else None,
                              1 - float(open_["electors"].sum()) / total_e if total_e else None,
                              prov, basis)


# --- repeated sampling ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SimulationResult:
    n_mesas: int
    n_sims: int
    true_share: float
    alpha: float
    coverage_ratio: float
    coverage_model: float
    coverage_combined: float
    mean_half_width_ratio: float
    mean_half_width_model: float
    mean_half_width_combined: float
    sd_estimate: float  # spread of the ratio point estimate over the simulations
    mean_error: float  # mean (estimate − truth)
    technical_tie_rate: float
    wrong_call_rate: float
    seed: int


def simulate(universe: pl.DataFrame, truth: pl.DataFrame, pair: tuple[str, str], *,
             n_mesas: int, n_sims: int = 1000, seed: int = 0, alpha: float = 0.05,
             n_boot: int = 400, n_draws: int = 1000, min_per_stratum: int = 2
             ) -> SimulationResult:
    """Draw ``n_sims`` stratified samples of ``n_mesas`` from ``universe`` (PCG64), take
    each sampled mesa's figures from ``truth`` (canonical acta frame, e.g. the final
    count) and score the intervals against the true share."""
    a, b = pair
    t = truth.select("acta_id", pl.col(f"v_{a}").fill_null(0).alias("a"),
                     (pl.col(f"v_{a}").fill_null(0) + pl.col(f"v_{b}").fill_null(0))
                     .alias("v"))
    u = universe.join(t, on="acta_id", how="left").with_columns(
        pl.col("a").fill_null(0), pl.col("v").fill_null(0)).sort("stratum", "acta_id")
    true_share = float(cast(float, u["a"].sum()) / cast(float, u["v"].sum()))
    st = u.group_by("stratum", maintain_order=True).agg(pl.len().alias("mesas"),
                                                         pl.col("electors").sum())
    mesas = st["mesas"].to_numpy().astype(np.int64)
    electors = st["electors"].to_numpy().astype(float)
    alloc = allocate(electors, mesas, n_mesas, min_per_stratum)
    first = np.concatenate([[0], np.cumsum(mesas)[:-1]])
    a_tot, v_tot, e_tot = (u[c].to_numpy().astype(float) for c in ("a", "v", "electors"))
    starts = np.concatenate([[0], np.cumsum(alloc)[:-1]]).astype(np.int64)
    frozen = alloc >= mesas
    rng = Generator(PCG64(seed))
    est_r = np.empty(n_sims)
    cov = np.zeros((3, n_sims), dtype=bool)
    hw = np.zeros((3, n_sims))
    calls = np.empty(n_sims, dtype=object)
    for s in range(n_sims):
        idx = np.concatenate([f + rng.choice(m, k, replace=False)
                              for f, m, k in zip(first, mesas, alloc, strict=True) if k])
        core = _Core(electors, frozen, starts, alloc, a_tot[idx], v_tot[idx], e_tot[idx],
                     0.0, 0.0)
        ratio, model, comb = _intervals(core, alpha=alpha, n_boot=n_boot, n_draws=n_draws,
                                        rng=rng)
        est_r[s] = ratio.estimate
        for i, iv in enumerate((ratio, model, comb)):
            cov[i, s] = iv.lower <= true_share <= iv.upper
            hw[i, s] = iv.half_width
        calls[s] = call_rule(comb.lower, comb.upper)
    truth_call = "a" if true_share > 0.5 else "b"
    return SimulationResult(
        n_mesas=int(alloc.sum()), n_sims=n_sims, true_share=true_share, alpha=alpha,
        coverage_ratio=float(cov[0].mean()), coverage_model=float(cov[1].mean()),
        coverage_combined=float(cov[2].mean()), mean_half_width_ratio=float(hw[0].mean()),
        mean_half_width_model=float(hw[1].mean()), mean_half_width_combined=float(hw[2].mean()),
        sd_estimate=float(est_r.std(ddof=1)) if n_sims > 1 else 0.0,
        mean_error=float(est_r.mean() - true_share),
        technical_tie_rate=float((calls == "technical_tie").mean()),
        wrong_call_rate=float(((calls != "technical_tie") & (calls != truth_call)).mean()),
        seed=seed)
