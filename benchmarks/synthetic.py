"""A synthetic national-scale election, deterministic from a seed.

Used by the benchmarks (``benchmarks/run.py``) and by ``tests/test_synthetic.py``. The
election is a runoff between two candidates over a Peru-like geography:

* at home, 25 ``area1`` units, each with 4-12 ``area2`` (mean 8), each with 5-15 ``area3``
  (mean 10): about 2,000 districts; abroad, 5 continents with 4-15 countries each and
  1-5 cities per country, coded like RENIEC ubigeos (``9xxxxx`` abroad);
* actas spread over districts with log-normal weights (every district has at least one),
  about 3.5% abroad; electors per acta up to 300 (most mesas near full, abroad smaller);
* turnout about 75% at home and 35% abroad, with regional variation; null and blank
  votes, rare challenged votes;
* candidate shares with regional swings (department, province, district and acta
  levels; abroad leans to the second candidate), calibrated so that the race at home is
  close;
* a realistic mix of statuses for a count in progress: mostly counted (some of them
  resolved by the JEE), pending actas without figures (more of them abroad and in some
  departments), actas at the JEE keeping their provisional figures (some with an
  arithmetic error, which is flagged, never rejected), annulled actas and a few mesas not
  installed.

Everything random comes from one ``numpy.random.Generator`` seeded by ``seed``; the same
seed and size give the same frame, and :func:`write` gives the same bytes.

Command line::

    python benchmarks/synthetic.py --actas 1000000 --seed 7 --out /tmp/synthetic.parquet
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from escrutinio.domain import (
    ACTA_COLUMNS,
    ActaStatus,
    Candidate,
    Contest,
    ContestKind,
)

SYNTHETIC_CONTEST = Contest(
    id="zz-sintetica-2v",
    name="Elección sintética, segunda vuelta",
    kind=ContestKind.RUNOFF,
    country="ZZ",
    date="2031-06-01",
    candidates=(
        Candidate("azul", "Candidata Azul", "Partido Azul"),
        Candidate("rojo", "Candidato Rojo", "Partido Rojo"),
    ),
)
AS_OF = datetime(2031, 6, 3, 18, 0, tzinfo=UTC)

#: share of actas by status (abroad and some departments have more pending actas)
STATUS_SHARES = {
    ActaStatus.PENDING: 0.05,
    ActaStatus.JEE: 0.03,
    ActaStatus.ANNULLED: 0.003,
    ActaStatus.NOT_INSTALLED: 0.0008,
}  # the rest is counted
RESOLVED_SHARE = 0.02  # of counted actas, went through the JEE before being counted
JEE_ERROR_SHARE = 0.4  # of actas at the JEE, arithmetic that does not add up
ABROAD_SHARE = 0.035
HOME_SHARE = 0.502  # expected share of the first candidate at home
OBSERVATIONS = ["error_material", "ilegibilidad", "votos_impugnados", "sin_firmas",
                "solicitud_nulidad", "incompleta"]


@dataclass(frozen=True, slots=True)
class SyntheticElection:
    contest: Contest
    as_of: datetime
    frame: pl.DataFrame  # canonical acta frame (ACTA_COLUMNS + v_azul, v_rojo)
    geography: pl.DataFrame  # code, name, level, parent, abroad, alt_code
    seed: int


def _geography(rng: np.random.Generator) -> pl.DataFrame:
    """One row per area3 (district or city) with its parents and names."""
    a1: list[str] = []
    a2: list[str] = []
    a3: list[str] = []
    abroad: list[bool] = []
    for d in range(1, 26):
        for p in range(1, int(rng.integers(4, 13)) + 1):
            for q in range(1, int(rng.integers(5, 16)) + 1):
                a1.append(f"{d:02d}0000")
                a2.append(f"{d:02d}{p:02d}00")
                a3.append(f"{d:02d}{p:02d}{q:02d}")
                abroad.append(False)
    for k in range(1, 6):
        for c in range(1, int(rng.integers(4, 16)) + 1):
            for q in range(1, int(rng.integers(1, 6)) + 1):
                a1.append(f"9{k}0000")
                a2.append(f"9{k}{c:02d}00")
                a3.append(f"9{k}{c:02d}{q:02d}")
                abroad.append(True)
    return pl.DataFrame({"area1_code": a1, "area2_code": a2, "area3_code": a3,
                         "abroad": abroad})


def _names(districts: pl.DataFrame) -> pl.DataFrame:
    """Geography frame (GEOGRAPHY_COLUMNS) with readable names for every area."""
    ab = pl.col("abroad")
    parts = [
        districts.select(
            pl.col("area1_code").alias("code"),
            pl.when(ab).then(pl.lit("Continente ") + pl.col("area1_code").str.slice(1, 1))
            .otherwise(pl.lit("Departamento ") + pl.col("area1_code").str.slice(0, 2))
            .alias("name"),
            pl.lit("area1").alias("level"), pl.lit(None, pl.String).alias("parent"), ab),
        districts.select(
            pl.col("area2_code").alias("code"),
            pl.when(ab).then(pl.lit("País ")).otherwise(pl.lit("Provincia "))
            .add(pl.col("area2_code").str.slice(0, 4)).alias("name"),
            pl.lit("area2").alias("level"), pl.col("area1_code").alias("parent"), ab),
        districts.select(
            pl.col("area3_code").alias("code"),
            pl.when(ab).then(pl.lit("Ciudad ")).otherwise(pl.lit("Distrito "))
            .add(pl.col("area3_code")).alias("name"),
            pl.lit("area3").alias("level"), pl.col("area2_code").alias("parent"), ab),
    ]
    return (pl.concat(parts).unique(subset=["code", "level"], keep="first")
            .with_columns(pl.lit(None, pl.String).alias("alt_code"))
            .sort("level", "code"))


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def generate(n_actas: int = 1_000_000, seed: int = 2031) -> SyntheticElection:
    """Generate ``n_actas`` actas (at least one per district, so n_actas >= ~2,100)."""
    rng = np.random.default_rng(seed)
    districts = _geography(rng)
    n_d = districts.height
    if n_actas < n_d:
        raise ValueError(f"n_actas must be at least the number of districts ({n_d})")
    is_abroad = districts["abroad"].to_numpy()
    a1_idx = districts["area1_code"].rank("dense").cast(pl.Int64).to_numpy() - 1
    a2_idx = districts["area2_code"].rank("dense").cast(pl.Int64).to_numpy() - 1
    n_a1, n_a2 = int(a1_idx.max()) + 1, int(a2_idx.max()) + 1

    # actas per district: one each, the rest by log-normal weight (home vs abroad share)
    weight = rng.lognormal(0.0, 1.0, n_d)
    rest = n_actas - n_d
    n_abroad_rest = round(rest * ABROAD_SHARE)
    per = np.ones(n_d, dtype=np.int64)
    for mask, n in ((~is_abroad, rest - n_abroad_rest), (is_abroad, n_abroad_rest)):
        w = weight * mask
        per += rng.multinomial(n, w / w.sum())
    d_of = np.repeat(np.arange(n_d), per)  # district of each acta, in geography order
    n = int(per.sum())
    ab = is_abroad[d_of]

    # district-level parameters
    swing1, swing2 = rng.normal(0, 0.6, n_a1), rng.normal(0, 0.25, n_a2)
    logit_d = swing1[a1_idx] + swing2[a2_idx] + rng.normal(0, 0.2, n_d)
    logit_d = np.where(is_abroad, np.log(0.34 / 0.66) + rng.normal(0, 0.3, n_d), logit_d)
    t1 = rng.normal(0, 0.04, n_a1)
    turnout_d = np.where(is_abroad, 0.35 + rng.normal(0, 0.08, n_d),
                         0.75 + t1[a1_idx] + rng.normal(0, 0.03, n_d)).clip(0.1, 0.95)
    # a close race: shift the home districts so that the first candidate expects
    # HOME_SHARE of the votes at home (bisection on the shift, weighted by expected votes)
    home = ~is_abroad
    w_home = (per * turnout_d)[home]
    lo, hi = -5.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.average(_expit(logit_d[home] + mid), weights=w_home) < HOME_SHARE:
            lo = mid
        else:
            hi = mid
    logit_d = np.where(home, logit_d + (lo + hi) / 2, logit_d)
    null_d = rng.uniform(0.04, 0.12, n_d)
    blank_d = rng.uniform(0.005, 0.03, n_d)
    pend1 = rng.lognormal(0.0, 0.6, n_a1)
    pending_d = np.where(is_abroad, 0.12, STATUS_SHARES[ActaStatus.PENDING] * pend1[a1_idx])

    # figures of every acta
    electors = np.where(ab, rng.normal(200, 80, n), rng.normal(285, 25, n))
    electors = np.rint(electors).clip(5, 300).astype(np.int64)
    p_turn = (turnout_d[d_of] + rng.normal(0, 0.05, n)).clip(0.02, 0.99)
    cast = rng.binomial(electors, p_turn)
    challenged = np.where(rng.random(n) < 0.003, rng.binomial(cast, 0.02), 0)
    rest_v = cast - challenged
    null = rng.binomial(rest_v, null_d[d_of])
    rest_v -= null
    blank = rng.binomial(rest_v, blank_d[d_of])
    valid = rest_v - blank
    share = _expit(logit_d[d_of] + rng.normal(0, 0.15, n))
    v_a = rng.binomial(valid, share)
    v_b = valid - v_a

    # statuses
    u = rng.random(n)
    cut_p = pending_d[d_of].clip(0, 0.5)
    cut_j = cut_p + STATUS_SHARES[ActaStatus.JEE]
    cut_a = cut_j + STATUS_SHARES[ActaStatus.ANNULLED]
    cut_n = cut_a + np.where(ab, 0.01, STATUS_SHARES[ActaStatus.NOT_INSTALLED])
    code = np.select([u < cut_p, u < cut_j, u < cut_a, u < cut_n], [1, 2, 3, 4], 0)
    pending, jee, annulled, not_inst = code == 1, code == 2, code == 3, code == 4
    counted = code == 0
    resolved = (counted & (rng.random(n) < RESOLVED_SHARE)) | annulled
    obs_i = rng.integers(0, len(OBSERVATIONS), n)
    obs_i = np.where(challenged > 0, 2, obs_i)
    jee_error = jee & (rng.random(n) < JEE_ERROR_SHARE)
    obs_i = np.where(jee_error, 0, obs_i)
    has_obs = jee | resolved
    # an 'error material' at the JEE: the digitised total does not add up
    cast = np.where(jee_error, cast + rng.integers(1, 21, n) * rng.choice([-1, 1], n),
                    cast).clip(0)
    zero = not_inst
    status_names = pl.Series([ActaStatus.COUNTED.value, ActaStatus.PENDING.value,
                              ActaStatus.JEE.value, ActaStatus.ANNULLED.value,
                              ActaStatus.NOT_INSTALLED.value], dtype=pl.String)

    def fig(x: np.ndarray, name: str) -> pl.Series:
        s = pl.Series(name, np.where(zero, 0, x), dtype=pl.Int64)
        return s.scatter(np.flatnonzero(pending), None) if pending.any() else s

    width = max(6, len(str(n)))
    d_idx = pl.Series("d", d_of, dtype=pl.Int64)
    rank_in_d = np.arange(n) - np.repeat(np.cumsum(per) - per, per)
    frame = pl.DataFrame({
        "acta_id": pl.int_range(1, n + 1, eager=True).cast(pl.String).str.zfill(width),
        "area1_code": districts["area1_code"].gather(d_idx),
        "area2_code": districts["area2_code"].gather(d_idx),
        "area3_code": districts["area3_code"].gather(d_idx),
        "abroad": pl.Series(ab, dtype=pl.Boolean),
        "__place": pl.Series(rank_in_d // 10 + 1, dtype=pl.Int64),
        "status": status_names.gather(pl.Series(code, dtype=pl.Int64)),
        "observation": pl.Series(OBSERVATIONS, dtype=pl.String).gather(
            pl.Series(obs_i, dtype=pl.Int64).scatter(np.flatnonzero(~has_obs), None)),
        "resolved": pl.Series(resolved, dtype=pl.Boolean),
        "electors": pl.Series(electors, dtype=pl.Int64),
        "cast": fig(cast, "cast"),
        "blank": fig(blank, "blank"),
        "null": fig(null, "null"),
        "challenged": fig(challenged, "challenged"),
        "v_azul": fig(v_a, "v_azul"),
        "v_rojo": fig(v_b, "v_rojo"),
    }).with_columns(
        pl.format("Local {}-{}", pl.col("area3_code"),
                  pl.col("__place").cast(pl.String).str.zfill(3)).alias("polling_place"),
    )
    cols = [*ACTA_COLUMNS, *SYNTHETIC_CONTEST.candidate_columns]
    frame = frame.select(cols).cast(  # type: ignore[arg-type]
        dict(ACTA_COLUMNS) | {c: pl.Int64() for c in SYNTHETIC_CONTEST.candidate_columns})
    return SyntheticElection(SYNTHETIC_CONTEST, AS_OF, frame, _names(districts), seed)


def write(election: SyntheticElection, path: str | Path) -> tuple[Path, Path]:
    """Write the election in the generic format (CSV, CSV.gz or Parquet by extension),
    with area names and the contest sidecar. Returns (data path, sidecar path)."""
    from escrutinio.sources.tabular import write_tabular

    return write_tabular(election.frame, election.contest, path, election.as_of,
                         geography=election.geography,
                         label=f"sintética {election.frame.height} actas, semilla {election.seed}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--actas", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=2031)
    ap.add_argument("--out", type=Path, required=True,
                    help="output file: .csv, .csv.gz or .parquet (sidecar written beside it)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    el = generate(args.actas, args.seed)
    t1 = time.perf_counter()
    data, side = write(el, args.out)
    t2 = time.perf_counter()
    counts = el.frame["status"].value_counts(sort=True)
    print(f"{el.frame.height:,} actas, {el.geography.height:,} areas; generated in "
          f"{t1 - t0:.2f} s, written in {t2 - t1:.2f} s -> {data} ({data.stat().st_size:,} "
          f"bytes), {side}")
    print(counts)


if __name__ == "__main__":
    main()
