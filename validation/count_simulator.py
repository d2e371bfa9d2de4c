"""Synthetic counts with a non-random arrival order, for validating the projection.

*Conteos sintéticos con orden de llegada no aleatorio.*

Each count is one close two-candidate election over a country of regions (home) and
continents (abroad), drawn from a seed, then counted in an order that is **not random**:

* places arrive by a key that mixes how rural they are (rural places later, with a
  strength drawn per count), a delay per region and noise;
* abroad arrives late;
* a **late batch** (mail ballots / votes counted apart) of 0-15% of the votes arrives
  last; in half the counts its votes lean towards the candidate trailing on election
  day (a US-style mail shift, 0.3-1.0 on the log-odds); in the other half they lean
  either way by a normal amount whose spread is the one measured on 26 real late blocks
  (RMS 0.66 on the log-odds, ``validation/late_lean.py``: US 2020 states' last 5%,
  Peru's abroad votes). ``late_leans="mild"`` keeps the earlier design, where that other
  half did not lean at all (no real late block measured so far was like that: the US
  states' median |lean| is 0.38);
* observed actas (2%) are held for review and arrive at the very end; 10% of them are
  annulled.

The truth — whichever way rural places lean, how large the late batch's shift is — is
drawn per count and never told to the model. Every number comes from one
``numpy.random.Generator`` seeded by the count's seed.

Granularities: per acta (:func:`acta_frame`), per unit (regions and continents plus a
national row, :func:`unit_frames`) and national series (:func:`series`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from escrutinio.domain import ActaStatus, Candidate, Contest, ContestKind
from escrutinio.projection.model import JeeOutcomes

CONTEST = Contest(
    id="zz-conteo-sintetico", name="Conteo sintético", kind=ContestKind.RUNOFF,
    country="ZZ", date="2030-01-01",
    candidates=(Candidate("a", "Candidata A", "v_a"), Candidate("b", "Candidato B", "v_b")))


#: what becomes of the sheets held for review, declared as a country pack would declare
#: its own court's rates: the simulator's process (10% annulled at random, none corrected,
#: random sheets: no lean of their own). The synthetic country is not Peru: Peru's JEE
#: rates are not its rates
REVIEW = JeeOutcomes(p_annulled=0.10, p_corrected=0.0, correction_sd=0.0, rate_prior_n=100.0,
                     source="simulador / simulator: 10% of held sheets annulled at random",
                     lean_margin_sd=0.0)


@dataclass(frozen=True)
class SimCount:
    seed: int
    unit: np.ndarray  # (N,) unit index of each mesa (regions first, then continents)
    place: np.ndarray  # (N,) place (district) index
    abroad_unit: np.ndarray  # (U,) bool
    electors: np.ndarray  # (N,)
    votes: np.ndarray  # (N, 2) final valid votes per candidate (0 when annulled)
    order: np.ndarray  # (N,) arrival rank (0 first)
    held: np.ndarray  # (N,) bool: observed, held for review until the end
    annulled: np.ndarray  # (N,) bool
    late: np.ndarray  # (N,) bool: the late batch
    late_shift: float  # logit shift of the late batch towards candidate A
    rural_slope: float
    mail_scenario: bool = False  # the late batch leans to the election-day trailer

    @property
    def n(self) -> int:
        return int(self.unit.size)

    @property
    def final(self) -> dict[str, int]:
        tot = self.votes.sum(axis=0)
        return {"a": int(tot[0]), "b": int(tot[1])}


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


#: the spread of a late block's lean on the log-odds when it is not a mail-style shift
#: towards the trailer: the RMS of 26 real late blocks (validation/results/late_lean.json)
MEASURED_LATE_LEAN_SD = 0.66


def simulate(seed: int, *, n_regions: int = 25, n_abroad: int = 5,
             mean_mesas: int = 6000, late_scenario: bool | None = None,
             late_leans: str = "measured") -> SimCount:
    """Draw one count (see the module docstring)."""
    if late_leans not in ("measured", "mild"):
        raise ValueError(f"late_leans must be 'measured' or 'mild', not {late_leans!r}")
    rng = np.random.default_rng([20_31, seed])
    n_units = n_regions + n_abroad
    # places: 15-50 per region, 5-20 per continent; mesas per place log-normal
    n_places_u = np.concatenate([rng.integers(15, 51, n_regions), rng.integers(5, 21, n_abroad)])
    place_unit = np.repeat(np.arange(n_units), n_places_u)
    n_places = place_unit.size
    w = rng.lognormal(0.0, 1.0, n_places)
    w[place_unit >= n_regions] *= 0.15
    mesas_p = np.maximum(1, rng.poisson(w / w.sum() * mean_mesas))
    place = np.repeat(np.arange(n_places), mesas_p)
    unit = place_unit[place]
    n = place.size
    abroad_u = np.arange(n_units) >= n_regions
    ab = abroad_u[unit]
    rural_p = rng.beta(1.5, 1.5, n_places)
    rural_p[place_unit >= n_regions] = 0.0
    rural = rural_p[place]
    electors = np.where(ab, rng.integers(40, 301, n), rng.integers(150, 301, n))
    # turnout
    t_logit = (np.where(ab, -0.7, 1.1) + rng.normal(0, 0.3, n_units)[unit]
               + 0.3 * rural + rng.normal(0, 0.2, n))
    voters = rng.binomial(electors, _expit(t_logit))
    valid = rng.binomial(voters, 0.93)
    # candidate A's share: regions, places, mesas, a rural slope; abroad apart
    rural_slope = float(rng.normal(0, 0.8))
    s_logit = (rng.normal(0, 0.5, n_units)[unit] + rng.normal(0, 0.35, n_places)[place]
               + rng.normal(0, 0.15, n) + rural_slope * (rural - 0.5)
               + np.where(ab, rng.normal(0, 0.5), 0.0))
    # the late batch (0-15% of mesas, everywhere at home), its shift drawn below
    late_frac = rng.uniform(0.0, 0.15)
    late = (rng.random(n) < late_frac) & ~ab
    if late_scenario is None:
        late_scenario = bool(rng.random() < 0.5)
    late_mag = float(rng.uniform(0.3, 1.0)) if late_scenario else 0.0
    # outside the mail scenario: a lean either way (towards A if > 0), or none ("mild")
    other_lean = (float(rng.normal(0.0, MEASURED_LATE_LEAN_SD))
                  if not late_scenario and late_leans == "measured" else 0.0)
    # a close race: shift everybody so that A's final share is 0.5 ± 0.015
    target = 0.5 + rng.normal(0, 0.015)
    day = ~late
    off = 0.0
    for _ in range(30):  # bisection-free Newton on the offset (vectorised inside)
        p_day = _expit(s_logit + off)
        day_a = (valid * p_day)[day].sum() / max(valid[day].sum(), 1)
        sign = -1.0 if day_a > 0.5 else 1.0  # the late batch leans to the day-trailer
        p = np.where(late, _expit(s_logit + off + sign * late_mag + other_lean), p_day)
        share = (valid * p).sum() / valid.sum()
        grad = (valid * p * (1 - p)).sum() / valid.sum()
        off += (target - share) / max(grad, 1e-9)
        if abs(target - share) < 1e-7:
            break
    p_day = _expit(s_logit + off)
    day_a = (valid * p_day)[day].sum() / max(valid[day].sum(), 1)
    sign = -1.0 if day_a > 0.5 else 1.0
    p = np.where(late, _expit(s_logit + off + sign * late_mag + other_lean), p_day)
    va = rng.binomial(valid, p)
    votes = np.column_stack([va, valid - va]).astype(np.int64)
    held = rng.random(n) < 0.02
    annulled = held & (rng.random(n) < 0.10)
    votes[annulled] = 0
    # arrival: rural later (strength per count), region delays, abroad late, then the
    # late batch, then the held actas
    gamma = rng.uniform(0.5, 2.0)
    key = (gamma * rural + rng.normal(0, 0.5, n_units)[unit] + rng.normal(0, 0.5, n_places)[place]
           + rng.normal(0, 0.3, n) + np.where(ab, 1.5 + rng.normal(0, 0.5), 0.0))
    key = np.where(late, 10.0 + rng.normal(0, 0.5, n), key)
    key = np.where(held, 20.0 + rng.random(n), key)
    order = np.empty(n, dtype=np.int64)
    order[np.argsort(key, kind="stable")] = np.arange(n)
    return SimCount(seed, unit, place, abroad_u, electors.astype(np.int64), votes, order, held,
                    annulled, late, sign * late_mag if late_mag else other_lean, rural_slope,
                    bool(late_scenario))


def cut_sizes(sim: SimCount, fractions: np.ndarray) -> np.ndarray:
    """Number of actas counted at each cut (fractions of all actas)."""
    return np.clip(np.round(fractions * sim.n).astype(np.int64), 1, sim.n)


def unit_frames(sim: SimCount, counted_n: np.ndarray, *, with_national: bool = True,
                typed: bool = True) -> list[pl.DataFrame]:
    """Per-unit snapshots (regions/continents + national row) at each cut; ``typed``: the
    late batch is published apart, as a second row per region (``vote_type`` "late"),
    its size known from the start (as US feeds and Peru's abroad table do)."""
    n_base = sim.abroad_unit.size
    base_codes = [f"{'9' if a else '0'}{i:02d}" for i, a in enumerate(sim.abroad_unit)]
    if typed:
        unit = np.where(sim.late, sim.unit + n_base, sim.unit)
        n_units = 2 * n_base
        codes = base_codes * 2
        vtype = ["day"] * n_base + ["late"] * n_base
        abroad = sim.abroad_unit.tolist() * 2
    else:
        unit, n_units, codes, abroad = sim.unit, n_base, base_codes, sim.abroad_unit.tolist()
        vtype = None
    tot_actas = np.bincount(unit, minlength=n_units)
    keep = tot_actas > 0
    tot_el = np.bincount(unit, weights=sim.electors, minlength=n_units)
    out = []
    for c in counted_n:
        m = sim.order < c
        ann = m & sim.annulled
        jee = ~m & sim.held
        cols = {
            "level": ["area1"] * n_units, "unit_code": codes,
            **({"vote_type": vtype} if vtype is not None else {}),
            "abroad": abroad,
            "actas_total": tot_actas.astype(np.int64),
            "actas_counted": np.bincount(unit[m], minlength=n_units).astype(np.int64),
            "actas_jee": np.bincount(unit[jee], minlength=n_units).astype(np.int64),
            "actas_annulled": np.bincount(unit[ann], minlength=n_units).astype(np.int64),
            "actas_not_installed": np.zeros(n_units, dtype=np.int64),
            "electors": np.bincount(unit[m], weights=sim.electors[m],
                                    minlength=n_units).astype(np.int64),
            "electors_total": tot_el.astype(np.int64),
            "v_a": np.bincount(unit[m], weights=sim.votes[m, 0],
                               minlength=n_units).astype(np.int64),
            "v_b": np.bincount(unit[m], weights=sim.votes[m, 1],
                               minlength=n_units).astype(np.int64),
        }
        df = pl.DataFrame(cols).filter(pl.Series(keep))
        if with_national:
            nat = df.select([pl.lit("national").alias("level"), pl.lit("").alias("unit_code"),
                             *([pl.lit(None, dtype=pl.String).alias("vote_type")]
                               if vtype is not None else []),
                             pl.lit(None, dtype=pl.Boolean).alias("abroad"),
                             *[pl.col(k).sum() for k in cols if k not in
                               ("level", "unit_code", "abroad", "vote_type")]])
            df = pl.concat([nat, df])
        out.append(df)
    return out


def series(sim: SimCount, counted_n: np.ndarray) -> list[tuple[list[float], float]]:
    """National totals at each cut with the share of the final valid votes counted (a
    source's "votes remaining" figure, exact here)."""
    final_valid = float(sim.votes.sum())
    rank = np.argsort(sim.order)
    cum = np.cumsum(sim.votes[rank], axis=0)
    out = []
    for c in counted_n:
        v = cum[c - 1].astype(float)
        out.append((v.tolist(), float(v.sum() / final_valid)))
    return out


def acta_states(sim: SimCount, counted: int) -> pl.DataFrame:
    """The per-acta states at a cut (``acta_id``, ``status``): what an earlier snapshot
    tells a later projection (which actas were counted then)."""
    m = sim.order < counted
    status = np.where(m, np.where(sim.annulled, ActaStatus.ANNULLED.value,
                                  ActaStatus.COUNTED.value),
                      np.where(sim.held, ActaStatus.JEE.value, ActaStatus.PENDING.value))
    return pl.DataFrame({"acta_id": [f"{i:07d}" for i in range(sim.n)], "status": status})


def acta_frame(sim: SimCount, counted: int, *, typed: bool = True) -> pl.DataFrame:
    """The per-acta snapshot at a cut: counted actas with figures, the held ones at the
    court without figures, the rest pending; ``typed``: a ``vote_type`` column says which
    actas belong to the late batch."""
    m = sim.order < counted
    status = np.where(m, np.where(sim.annulled, ActaStatus.ANNULLED.value,
                                  ActaStatus.COUNTED.value),
                      np.where(sim.held, ActaStatus.JEE.value, ActaStatus.PENDING.value))
    codes = np.array([f"{'9' if a else '0'}{i:02d}" for i, a in enumerate(sim.abroad_unit)])
    a1 = codes[sim.unit]
    show = pl.Series(m & ~sim.annulled)
    df = pl.DataFrame({
        "acta_id": [f"{i:07d}" for i in range(sim.n)],
        "area1_code": a1,
        "area2_code": np.char.add(a1, (sim.place % 7).astype(str)),
        "area3_code": np.char.add(np.char.add(a1, "-"), sim.place.astype(str)),
        "abroad": sim.abroad_unit[sim.unit],
        "polling_place": sim.place.astype(str),
        "status": status,
        "observation": pl.Series([None] * sim.n, dtype=pl.String),
        "resolved": np.zeros(sim.n, dtype=bool),
        "electors": sim.electors,
        "cast": sim.votes.sum(1), "blank": np.zeros(sim.n, dtype=np.int64),
        "null": np.zeros(sim.n, dtype=np.int64), "challenged": np.zeros(sim.n, dtype=np.int64),
        "v_a": sim.votes[:, 0], "v_b": sim.votes[:, 1],
    })
    df = df.with_columns([pl.when(show).then(pl.col(c)).otherwise(None).alias(c)
                          for c in ("cast", "blank", "null", "challenged", "v_a", "v_b")])
    if typed:
        df = df.with_columns(pl.Series("vote_type", np.where(sim.late, "late", "day")))
    return df
