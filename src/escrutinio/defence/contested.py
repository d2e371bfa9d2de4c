"""Contested actas: could they flip the result? (docs/methods.md §4)

For the actas observed or at the JEE (*actas observadas*, sent to the electoral court),
and for any list of mesas a party asks to annul (*pedidos de nulidad*):

1. **Bounds.** The margin (leader − runner-up) if every contested acta were annulled
   (only the counted actas remain), if every one were counted as provisionally
   digitised, and the range over every combination of annulling and counting.
   Contested actas without provisional figures are kept apart: at most their electors
   either way.
2. **A probability distribution** from resolution rates. Each acta ends *counted as is*,
   *corrected* (counted with figures that move its net by δ ~ N(0, s_t²)) or *annulled*,
   with probabilities by observation type t (error material, ilegibilidad, ...).
   Probabilities are Dirichlet posteriors: a prior (by default the 2021 runoff figures,
   :data:`RATES_2021`, with a weight of ``strength`` pseudo-actas) updated with the
   outcomes of actas already resolved between earlier snapshots and this one. Each
   simulation draws the probabilities, then every acta's outcome; actas without figures
   get the counted votes per elector of their district (else province, department,
   nation) times their electors, with the spread of their department.
3. **The smallest set whose annulment would flip the result**, starting from the
   scenario where every contested acta is counted as digitised: annulling an acta
   removes its net, so the fewest actas are those that favour the leader most (greedy
   is exact for a cardinality minimum). Or a proof that none can: annulling all of
   them removes less than the margin.
4. **Nullity requests**: the same questions for a list of acta ids, whatever their state.

Everything is vectorised (numpy over actas × simulations in chunks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import numpy as np
import polars as pl
from numpy.random import PCG64, Generator

from escrutinio.countries import pack_for
from escrutinio.defence.pvt import pick_pair
from escrutinio.domain import AT_JEE, CONTABILIZADA, ActaStatus, Contest
from escrutinio.provenance import Provenance, to_jsonable

OUTCOMES: Final = ("as_is", "corrected", "annulled")
ANY_TYPE: Final = "*"


@dataclass(frozen=True, slots=True)
class TypeRates:
    """Outcome counts (as pseudo-counts) and the spread of corrections for one type."""

    as_is: float
    corrected: float
    annulled: float
    correction_sd: float  # votes of net margin change when corrected

    @property
    def total(self) -> float:
        return self.as_is + self.corrected + self.annulled

    def probs(self) -> tuple[float, float, float]:
        t = self.total
        return (self.as_is / t, self.corrected / t, self.annulled / t) if t else (1.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class ResolutionRates:
    """Resolution rates by observation type; ``"*"`` covers any other type."""

    by_type: Mapping[str, TypeRates]
    source: str

    def for_type(self, t: str | None) -> TypeRates:
        return self.by_type.get(t or ANY_TYPE, self.by_type[ANY_TYPE])


#: 2021 runoff: the 1,354 actas bound for the JEE on 15 June and their state in the final
#: file (~17 June): counted with identical candidate figures / counted with other figures
#: (or without provisional figures) / annulled. Correction spread: standard deviation of
#: the change of (Castillo − Fujimori) among corrected actas with provisional figures
#: (types with < 5 corrections get the pooled 30 votes).
RATES_2021: Final = ResolutionRates({
    "votos_impugnados": TypeRates(283, 188, 0, 3.1),
    "otras_observaciones": TypeRates(108, 40, 46, 159.0),
    "incompleta": TypeRates(109, 0, 0, 30.0),
    "error_material": TypeRates(249, 28, 122, 43.4),
    "sin_firmas": TypeRates(98, 0, 16, 30.0),
    "ilegibilidad": TypeRates(62, 1, 3, 30.0),
    "solicitud_nulidad": TypeRates(1, 0, 0, 30.0),
    ANY_TYPE: TypeRates(910, 257, 187, 30.3),
}, "Perú 2021, segunda vuelta: actas al JEE del 15 jun y su estado final (ONPE, "
   "vía jmcastagnetto)")

#: Unofficial curated national counts of observed / annulled runoff actas (docs/methods.md §2):
#: 2011 4,575 / 607; 2016 1,637 / 300; 2021 1,619 / 222.
HISTORICAL_OBSERVED_ANNULLED: Final = {2011: (4575, 607), 2016: (1637, 300), 2021: (1619, 222)}


def historical_prior(years: Sequence[int] = (2011, 2016), corrected_share: float = 0.2,
                     correction_sd: float = 30.0) -> ResolutionRates:
    """A type-free prior from the historical annulment share of ``years``; the split of
    the rest between as-is and corrected (``corrected_share``) is an assumption."""
    obs = sum(HISTORICAL_OBSERVED_ANNULLED[y][0] for y in years)
    ann = sum(HISTORICAL_OBSERVED_ANNULLED[y][1] for y in years)
    p_ann = ann / obs
    kept = 1 - p_ann
    return ResolutionRates(
        {ANY_TYPE: TypeRates(kept * (1 - corrected_share), kept * corrected_share, p_ann,
                             correction_sd)},
        f"historical annulment share {', '.join(map(str, years))}: {ann:,}/{obs:,} "
        f"({100 * p_ann:.1f}%); corrected share of the rest assumed {corrected_share:.0%}")


def resolution_prior(contest: Contest | str | None) -> ResolutionRates:
    """The prior of ``contested`` for the contest's country: what its court did to
    observed actas. Peru: the 2021 runoff's rates by observation type (:data:`RATES_2021`);
    elsewhere one type-free prior from the country pack's
    :class:`~escrutinio.countries.CourtOutcomes`, its source stated in both languages.
    (Was ``escrutinio.countries.resolution_prior``: packs sit below the analyses.)"""
    pack = pack_for(contest)
    if pack.code == "PE":
        return RATES_2021
    o = pack.court_outcomes
    n = o.rate_prior_n
    return ResolutionRates(
        {ANY_TYPE: TypeRates(n * (1 - o.p_annulled - o.p_corrected), n * o.p_corrected,
                             n * o.p_annulled, o.correction_sd)},
        f"{o.source[0]} / {o.source[1]}")


# --- learning from resolved actas -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LearnedRates:
    rates: ResolutionRates  # posterior pseudo-counts (prior × strength + observed)
    observed: Mapping[str, tuple[int, int, int]]  # outcomes seen, by type
    n_resolved: int
    strength: float


def resolved_outcomes(earlier: Sequence[pl.DataFrame], current: pl.DataFrame,
                      contest: Contest) -> pl.DataFrame:
    """Actas at the JEE in an earlier snapshot and final in ``current``: one row each,
    with their type (latest earlier observation), provisional and final figures and
    outcome (as_is / corrected / annulled)."""
    cand = contest.candidate_columns
    at = [s.value for s in AT_JEE]
    frames = [f.filter(pl.col("status").is_in(at)).select(
        "acta_id", "observation", *[pl.col(c).alias(f"p_{c}") for c in cand])
        .with_columns(pl.lit(i).alias("__k")) for i, f in enumerate(earlier)]
    if not frames:
        return pl.DataFrame(schema={"acta_id": pl.String, "observation": pl.String,
                                    "outcome": pl.String, "delta_sq": pl.Float64})
    prev = pl.concat(frames).sort("__k").unique("acta_id", keep="last").drop("__k")
    fin = current.filter(pl.col("status").is_in([ActaStatus.COUNTED.value,
                                                  ActaStatus.ANNULLED.value]))
    j = prev.join(fin.select("acta_id", "status", *cand), on="acta_id")
    has = pl.all_horizontal([pl.col(f"p_{c}").is_not_null() for c in cand])
    same = pl.all_horizontal([pl.col(f"p_{c}") == pl.col(c) for c in cand])
    return j.with_columns(
        pl.when(pl.col("status") == ActaStatus.ANNULLED.value).then(pl.lit("annulled"))
        .when(has & same).then(pl.lit("as_is")).otherwise(pl.lit("corrected")).alias("outcome"),
        has.alias("had_figures"),
    )


def learn_rates(prior: ResolutionRates, resolved: pl.DataFrame, *, strength: float = 20.0,
                pair_cols: tuple[str, str] | None = None) -> LearnedRates:
    """Dirichlet update: prior probabilities × ``strength`` pseudo-actas + outcomes seen.
    Types absent from the prior use its ``"*"`` entry; correction spreads are pooled
    (prior weight ``strength``) with the squared net changes seen."""
    observed: dict[str, tuple[int, int, int]] = {}
    sq: dict[str, list[float]] = {}
    if resolved.height:
        t = resolved.with_columns(pl.col("observation").fill_null(ANY_TYPE))
        for (typ,), g in t.group_by(["observation"]):
            vc = dict(g.group_by("outcome").len().iter_rows())
            observed[str(typ)] = (int(vc.get("as_is", 0)), int(vc.get("corrected", 0)),
                                  int(vc.get("annulled", 0)))
            if pair_cols is not None:
                a, b = pair_cols
                c = g.filter((pl.col("outcome") == "corrected") & pl.col("had_figures"))
                d = ((c[a] - c[b]) - (c[f"p_{a}"] - c[f"p_{b}"])).cast(pl.Float64)
                sq[str(typ)] = (d * d).to_list()
    types = set(prior.by_type) | set(observed) | {ANY_TYPE}
    out: dict[str, TypeRates] = {}
    pooled = [x for v in sq.values() for x in v]
    for typ in types:
        base = prior.for_type(typ)
        p = base.probs()
        obs = observed.get(typ, (0, 0, 0)) if typ != ANY_TYPE else tuple(
            sum(o[i] for o in observed.values()) for i in range(3))
        d2 = sq.get(typ, []) if typ != ANY_TYPE else pooled
        sd = float(np.sqrt((strength * base.correction_sd ** 2 + sum(d2)) / (strength + len(d2))))
        out[typ] = TypeRates(strength * p[0] + obs[0], strength * p[1] + obs[1],
                             strength * p[2] + obs[2], sd)
    n = sum(sum(v) for v in observed.values())
    src = f"{prior.source}; actualizado con {n} actas resueltas / updated with {n} resolved actas"
    return LearnedRates(ResolutionRates(out, src), observed, n, strength)


# --- results ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FlipSet:
    """The fewest actas whose annulment turns the base margin into a tie / a reversal."""

    base_margin: int
    leader: str
    possible: bool
    n_to_tie: int | None
    n_to_flip: int | None
    acta_ids: tuple[str, ...]  # the actas (most favourable to the leader first)
    removable: int  # the most annulment can remove from the leader's lead
    n_favouring_leader: int
    explanation_es: str
    explanation_en: str


@dataclass(frozen=True, slots=True)
class Distribution:
    n_sims: int
    seed: int
    margin_quantiles: dict[str, float]  # "p05", "p10", "p25", "p50", "p75", "p90", "p95"
    margin_mean: float
    p_leader_keeps: float  # P(final margin > 0 for the base leader)
    p_tie: float
    p_flip: float
    annulled_quantiles: dict[str, float]
    annulled_mean: float
    change_quantiles: dict[str, float]  # net change contributed by the contested actas
    change_mean: float


@dataclass(frozen=True, slots=True)
class NullityRequest:
    n_requested: int
    n_found: int
    not_found: tuple[str, ...]
    n_without_figures: int
    votes_leader: int
    votes_runner_up: int
    margin_if_all_annulled: int  # from the base scenario
    flip: FlipSet


@dataclass(frozen=True, slots=True)
class ContestedAnalysis:
    contest_id: str
    leader: str
    runner_up: str
    counted_margin: int  # margin among counted actas only (= all contested annulled)
    n_contested: int
    n_with_figures: int
    n_without_figures: int
    electors_without_figures: int
    contested_net: int  # sum of provisional nets (leader − runner-up)
    margin_all_counted: int  # every contested acta counted as digitised
    margin_min: int  # any combination of annulling / counting (no-figure actas worst case)
    margin_max: int
    n_pending: int  # actas not yet processed: outside this analysis
    electors_pending: int
    n_resolved_since: int  # contested in an earlier snapshot, final now
    distribution: Distribution | None
    flip: FlipSet
    request: NullityRequest | None
    rates_source: str
    rates: dict[str, dict[str, float]]
    observed_outcomes: dict[str, tuple[int, int, int]]
    summary_es: str
    summary_en: str
    provenance: Provenance
    actas: pl.DataFrame = field(default_factory=pl.DataFrame)  # one row per contested acta
    #: actas contested in an earlier snapshot and final now, with their outcome
    resolved_actas: pl.DataFrame = field(default_factory=pl.DataFrame)

    def to_jsonable(self, limit: int | None = 200) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.__dataclass_fields__:
            if f in ("actas", "resolved_actas"):
                continue
            out[f] = to_jsonable(getattr(self, f))
        for name in ("actas", "resolved_actas"):
            frame: pl.DataFrame = getattr(self, name)
            out[name] = (frame if limit is None else frame.head(limit)).to_dicts()
        return out


# --- the analysis -------------------------------------------------------------------------------

def flip_set(nets: np.ndarray, ids: np.ndarray, base_margin: int, leader: str,
             runner: str) -> FlipSet:
    """Greedy minimum: annul the actas with the largest net for the base leader first."""
    sign = 1 if base_margin >= 0 else -1
    s = nets * sign
    m = abs(int(base_margin))
    order = np.argsort(-s, kind="stable")
    fav = s[order] > 0
    gains = s[order][fav]
    cum = np.cumsum(gains)
    removable = int(cum[-1]) if len(cum) else 0
    k_tie = int(np.searchsorted(cum, m, side="left") + 1) if removable >= m and m > 0 else (
        0 if m == 0 else None)
    k_flip = int(np.searchsorted(cum, m, side="right") + 1) if removable > m else None
    who = leader if sign > 0 else runner
    other = runner if sign > 0 else leader
    if k_flip is not None:
        chosen = tuple(str(x) for x in ids[order][:k_flip])
        es = (f"Anular las {k_flip:,} actas más favorables a {who} (que suman "
              f"{int(cum[k_flip - 1]):,} votos netos) daría la ventaja a {other}; con "
              f"{k_tie:,} se llegaría al empate. Ningún conjunto más pequeño lo logra.")
        en = (f"Annulling the {k_flip:,} actas most favourable to {who} (net "
              f"{int(cum[k_flip - 1]):,} votes) would put {other} ahead; {k_tie:,} would "
              "tie. No smaller set can.")
    elif not len(gains):
        chosen = ()
        es = (f"Ninguna acta en disputa favorece a {who}: ningún conjunto puede cambiar el "
              f"resultado (margen {m:,}).")
        en = (f"No contested acta favours {who}: no set can change the result (margin "
              f"{m:,}).")
    else:
        chosen = ()
        es = (f"Ningún conjunto puede cambiar el resultado: aun anulando las "
              f"{len(gains):,} actas que favorecen a {who}, se restan como máximo "
              f"{removable:,} votos netos, menos que el margen de {m:,}.")
        en = (f"No set can change the result: annulling all {len(gains):,} actas that "
              f"favour {who} removes at most {removable:,} net votes, less than the "
              f"margin of {m:,}.")
        if k_tie is not None:
            es += f" (Con {k_tie:,} actas se llegaría exactamente al empate.)"
            en += f" ({k_tie:,} actas would make it an exact tie.)"
    return FlipSet(int(base_margin), who, k_flip is not None, k_tie, k_flip, chosen,
                   removable, len(gains), es, en)


def _impute(frame: pl.DataFrame, targets: pl.DataFrame, a: str, b: str) -> pl.DataFrame:
    """Expected net (a − b) and its spread for actas without figures, from counted actas:
    net per elector in the same area3, else area2, area1, all; spread of the area1."""
    counted = frame.filter((pl.col("status") == ActaStatus.COUNTED.value)
                           & pl.col(a).is_not_null() & pl.col(b).is_not_null()
                           & (pl.col("electors") > 0))
    counted = counted.with_columns((pl.col(a) - pl.col(b)).alias("__net"))
    out = targets
    rates = []
    for lv in ("area3_code", "area2_code", "area1_code"):
        r = counted.group_by(lv).agg((pl.col("__net").sum() / pl.col("electors").sum())
                                     .alias(f"__r_{lv}"))
        out = out.join(r, on=lv, how="left")
        rates.append(pl.col(f"__r_{lv}"))
    nat = (float(cast(float, counted["__net"].sum()) / cast(float, counted["electors"].sum()))
           if counted.height else 0.0)
    sd = counted.group_by("area1_code").agg(
        (pl.col("__net") / pl.col("electors")).std().alias("__sd"))
    nat_sd = float(cast("float | None", (counted["__net"] / counted["electors"]).std())
                   or 0.0) if counted.height \
        else 0.0
    out = out.join(sd, on="area1_code", how="left")
    return out.with_columns(
        (pl.coalesce([*rates, pl.lit(nat)]) * pl.col("electors").fill_null(0)).alias("imp_net"),
        (pl.col("__sd").fill_null(nat_sd) * pl.col("electors").fill_null(0)).alias("imp_sd"),
    ).drop([c for c in out.columns if c.startswith("__")])


def _quantiles(x: np.ndarray) -> dict[str, float]:
    qs = {"p05": 0.05, "p10": 0.10, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p90": 0.9,
          "p95": 0.95}
    v = np.quantile(x, list(qs.values()))
    return {k: float(x_) for k, x_ in zip(qs, v, strict=True)}


def simulate_outcomes(nets: np.ndarray, has_fig: np.ndarray, imp_mean: np.ndarray,
                      imp_sd: np.ndarray, types: np.ndarray, rates: ResolutionRates, *,
                      n_sims: int, seed: int, chunk: int = 1000
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Simulated net change of the contested actas and number annulled, per simulation."""
    rng = Generator(PCG64(seed))
    tnames = sorted(set(types.tolist()))
    t_idx = np.searchsorted(np.array(tnames), types)
    alpha = np.array([[rates.for_type(t).as_is, rates.for_type(t).corrected,
                       rates.for_type(t).annulled] for t in tnames], dtype=float)
    alpha = np.maximum(alpha, 1e-6)
    sd_corr = np.array([rates.for_type(t).correction_sd for t in tnames])[t_idx]
    mean = np.where(has_fig, nets, imp_mean).astype(float)
    base_sd = np.where(has_fig, 0.0, imp_sd).astype(float)
    change = np.empty(n_sims)
    annulled = np.empty(n_sims, dtype=np.int64)
    n = len(nets)
    for lo in range(0, n_sims, chunk):
        k = min(chunk, n_sims - lo)
        g = rng.standard_gamma(alpha[None, :, :], size=(k, *alpha.shape))
        p = g / g.sum(axis=2, keepdims=True)  # Dirichlet draws: k × types × 3
        c1 = p[:, t_idx, 0]
        c2 = c1 + p[:, t_idx, 1]
        u = rng.random((k, n))
        ann = u >= c2
        corr = (u >= c1) & ~ann
        noise = rng.standard_normal((k, n))
        value = mean + noise * np.sqrt(base_sd ** 2 + np.where(corr, sd_corr ** 2, 0.0))
        change[lo:lo + k] = np.where(ann, 0.0, value).sum(axis=1)
        annulled[lo:lo + k] = ann.sum(axis=1)
    return change, annulled


def analyse_contested(
    current: pl.DataFrame, contest: Contest, *, earlier: Sequence[pl.DataFrame] = (),
    prior: ResolutionRates = RATES_2021, strength: float = 20.0,
    requested: Sequence[str] | None = None, pair: tuple[str, str] | None = None,
    n_sims: int = 20_000, seed: int = 0, snapshot_ids: Sequence[str] = (),
) -> ContestedAnalysis:
    """Bounds, distribution and smallest flipping set for the contested actas of
    ``current`` (canonical acta frame); rates learned from ``earlier`` snapshots."""
    leader, runner, counted_margin = pick_pair(current, contest, pair)
    a, b = f"v_{leader}", f"v_{runner}"
    at = [s.value for s in AT_JEE]
    cont = current.filter(pl.col("status").is_in(at))
    has = pl.col(a).is_not_null() & pl.col(b).is_not_null()
    cont = _impute(current, cont.with_columns(has.alias("has_figures")), a, b).with_columns(
        pl.when(pl.col("has_figures")).then(pl.col(a) - pl.col(b)).otherwise(None)
        .alias("net"))
    nets = cont["net"].fill_null(0).to_numpy().astype(np.int64)
    has_fig = cont["has_figures"].to_numpy()
    electors_nofig = int(cont.filter(~pl.col("has_figures"))["electors"].fill_null(0).sum())
    contested_net = int(nets.sum())
    all_counted = counted_margin + contested_net
    mmin = counted_margin + int(np.minimum(nets, 0).sum()) - electors_nofig
    mmax = counted_margin + int(np.maximum(nets, 0).sum()) + electors_nofig

    resolved = resolved_outcomes(earlier, current, contest)
    learned = learn_rates(prior, resolved, strength=strength, pair_cols=(a, b))
    rates = learned.rates
    types = cont["observation"].fill_null(ANY_TYPE).to_numpy().astype(str)
    types = np.where(np.isin(types, list(rates.by_type)), types, ANY_TYPE)

    dist = None
    if cont.height and n_sims > 0:
        change, ann = simulate_outcomes(nets, has_fig, cont["imp_net"].to_numpy(),
                                        cont["imp_sd"].to_numpy(), types, rates,
                                        n_sims=n_sims, seed=seed)
        final = counted_margin + change
        sign = 1 if all_counted >= 0 else -1
        dist = Distribution(
            n_sims=n_sims, seed=seed, margin_quantiles=_quantiles(final),
            margin_mean=float(final.mean()),
            p_leader_keeps=float((final * sign > 0).mean()),
            p_tie=float((np.abs(final) < 0.5).mean()),
            p_flip=float((final * sign < 0).mean()),
            annulled_quantiles=_quantiles(ann.astype(float)), annulled_mean=float(ann.mean()),
            change_quantiles=_quantiles(change), change_mean=float(change.mean()))

    pending = current.filter(~pl.col("status").is_in([*at, *[s.value for s in CONTABILIZADA]]))
    ids = cont["acta_id"].to_numpy().astype(str)
    fs = flip_set(np.where(has_fig, nets, 0), ids, all_counted, leader, runner)

    p_ann = np.array([rates.for_type(t).probs()[2] for t in types]) if len(types) else \
        np.zeros(0)
    in_flip = np.isin(ids, np.array(fs.acta_ids, dtype=str))
    table = cont.select(
        "acta_id", "status", "observation", "area1_code", "area3_code", "electors",
        pl.col(a).alias(f"prov_{leader}"), pl.col(b).alias(f"prov_{runner}"), "net",
        "has_figures", pl.col("imp_net").round(1).alias("imputed_net"),
    ).with_columns(pl.Series("p_annulled", p_ann),
                   pl.Series("in_flip_set", in_flip),
                   ).with_columns(
        ((1 - pl.col("p_annulled")) * pl.coalesce(pl.col("net").cast(pl.Float64),
                                                  pl.col("imputed_net"))).round(1)
        .alias("expected_net")).sort(pl.col("net").fill_null(0).abs(), descending=True)

    req = None
    if requested is not None:
        req = _nullity(current, requested, a, b, leader, runner, all_counted, has)
        table = table.with_columns(pl.col("acta_id").is_in(list(req_ids(current, requested)))
                                   .alias("requested"))

    n_res = resolved.height
    if resolved.height:
        res_table = resolved.select(
            "acta_id", "observation", "outcome", "status",
            (pl.col(f"p_{a}") - pl.col(f"p_{b}")).alias("provisional_net"),
            pl.when(pl.col("status") == ActaStatus.ANNULLED.value).then(0)
            .otherwise(pl.col(a) - pl.col(b)).alias("final_net"),
        ).sort("acta_id")
    else:
        res_table = pl.DataFrame(schema={"acta_id": pl.String, "observation": pl.String,
                                         "outcome": pl.String, "status": pl.String,
                                         "provisional_net": pl.Int64, "final_net": pl.Int64})
    who = leader if all_counted >= 0 else runner
    es = (f"{cont.height:,} actas en disputa ({int(has_fig.sum()):,} con cifras provisionales). "
          f"Margen {leader} − {runner}: {counted_margin:,} si se anulan todas; {all_counted:,} "
          f"si se cuentan como se digitaron; entre {mmin:,} y {mmax:,} en cualquier "
          "combinación.")
    en = (f"{cont.height:,} contested actas ({int(has_fig.sum()):,} with provisional figures). "
          f"Margin {leader} − {runner}: {counted_margin:,} if all are annulled; {all_counted:,} "
          f"if all are counted as digitised; between {mmin:,} and {mmax:,} in any "
          "combination.")
    if dist is not None:
        es += (f" Con las tasas de resolución: margen mediano {dist.margin_quantiles['p50']:,.0f}"
               f" (90%: {dist.margin_quantiles['p05']:,.0f} a {dist.margin_quantiles['p95']:,.0f}),"
               f" P(gana {who}) = {dist.p_leader_keeps:.3f}.")
        en += (f" With the resolution rates: median margin {dist.margin_quantiles['p50']:,.0f}"
               f" (90%: {dist.margin_quantiles['p05']:,.0f} to "
               f"{dist.margin_quantiles['p95']:,.0f}), P({who} wins) = "
               f"{dist.p_leader_keeps:.3f}.")
    es += " " + fs.explanation_es
    en += " " + fs.explanation_en
    if pending.height:
        pe = int(pending["electors"].fill_null(0).sum())
        es += (f" {pending.height:,} actas pendientes ({pe:,} electores) quedan fuera de este "
               "análisis.")
        en += f" {pending.height:,} pending actas ({pe:,} electors) are outside this analysis."
    prov = Provenance(tuple(snapshot_ids), "defence.contested.analyse_contested",
                      {"pair": [leader, runner], "strength": strength, "n_sims": n_sims,
                       "prior": prior.source, "n_requested": None if requested is None
                       else len(requested)}, seed=seed)
    return ContestedAnalysis(
        contest_id=contest.id, leader=leader, runner_up=runner, counted_margin=counted_margin,
        n_contested=cont.height, n_with_figures=int(has_fig.sum()),
        n_without_figures=int((~has_fig).sum()), electors_without_figures=electors_nofig,
        contested_net=contested_net, margin_all_counted=all_counted, margin_min=mmin,
        margin_max=mmax, n_pending=pending.height,
        electors_pending=int(pending["electors"].fill_null(0).sum()),
        n_resolved_since=n_res, distribution=dist, flip=fs, request=req,
        rates_source=rates.source,
        rates={t: {"as_is": r.probs()[0], "corrected": r.probs()[1], "annulled": r.probs()[2],
                   "weight": r.total, "correction_sd": r.correction_sd}
               for t, r in sorted(rates.by_type.items())},
        observed_outcomes=dict(learned.observed), summary_es=es, summary_en=en,
        provenance=prov, actas=table, resolved_actas=res_table)


def req_ids(current: pl.DataFrame, requested: Sequence[str]) -> set[str]:
    from escrutinio.defence.pvt import normalise_ids

    s = normalise_ids(pl.Series("acta_id", [str(x) for x in requested], dtype=pl.String),
                      current["acta_id"])
    return set(s.to_list())


def _nullity(current: pl.DataFrame, requested: Sequence[str], a: str, b: str, leader: str,
             runner: str, base: int, has: pl.Expr) -> NullityRequest:
    """What annulling the requested actas would do, from the base scenario (counted actas
    plus contested actas as digitised). Annulled / not-installed / pending actas hold no
    votes in that scenario; unknown ids are listed."""
    wanted = req_ids(current, requested)
    found = current.filter(pl.col("acta_id").is_in(list(wanted)))
    not_found = tuple(sorted(wanted - set(found["acta_id"].to_list())))
    in_base = pl.col("status").is_in([ActaStatus.COUNTED.value, *[s.value for s in AT_JEE]])
    f = found.with_columns((in_base & has).alias("__in"))
    live = f.filter(pl.col("__in"))
    nets = (live[a] - live[b]).to_numpy().astype(np.int64)
    va, vb = int(live[a].sum()), int(live[b].sum())
    fs = flip_set(nets, live["acta_id"].to_numpy().astype(str), base, leader, runner)
    return NullityRequest(len(wanted), found.height, not_found,
                          int((~f["__in"]).sum()), va, vb, base - (va - vb), fs)
