"""Klimek, Yegorov, Hanel & Thurner (PNAS 2012): the election-fingerprint fit.

The model (their Methods; the Election Forensics Toolkit's ``ComputeKlimekModel`` is a
port of their code). Every unit i with N_i electors gets a clean turnout a_i ~ N(μ_a, σ_a)
and a clean share for the candidate ν_i ~ N(μ_ν, σ_ν) (both truncated to (0, 1)):
votes = round(N_i a_i), the candidate's = round(votes ν_i), the rest go to the others.
With probability f_i the unit has **incremental** stuffing: a fraction x_i ~ |N(0, θ)| of
the non-voters' ballots is added for the candidate and the same fraction of the others'
votes is moved to it; with probability f_e **extreme** stuffing, the same with
x_i = 1 − |N(0, 0.075)| (almost everything). The clean parameters are estimated robustly
from the data (medians and MAD-based standard deviations of the observed turnout and
share), θ over a small grid.

**Fit.** As in the paper, (f_i, f_e) minimise the distance between the observed and the
modelled 2-D turnout × share histograms (``BINS`` × ``BINS`` over [0, 1]², normalised).
The modelled histogram of the mixture is exactly (1 − f_i − f_e) H_clean + f_i H_inc +
f_e H_ext, each component simulated over the units' own sizes (``REPLICAS`` copies for
the fit, one in each bootstrap replicate), so
the least-squares fit is a 2-parameter quadratic with constraints f ≥ 0, f_i + f_e ≤ 1,
solved exactly. **Intervals**: a nonparametric bootstrap over units (the clean
parameters, the observed histogram and the simulated components all redone each time),
percentile 95 %.

**What it can and cannot show.** f_i and f_e are the shares of units the model needs to
explain the shape of the fingerprint with stuffing. A clean election whose turnout or
share is not a single normal blob (Peru's rural/urban split, closed communities voting en
bloc) gets f_i > 0 with no stuffing at all; the fit is therefore reported as an estimate,
never as a test, and it does not enter the false-discovery control. f_e near 0 with a
tight interval says the extreme (≈ 100 % / 100 %) corner is as empty as the clean model
predicts; published fits on the same data differ 5-10×, so compare like with like (the
same election's strata, or clean redraws of it), not with a universal threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from escrutinio.forensics.inputs import ForensicInput

BINS = 25
REPLICAS = 3
THETAS = (0.05, 0.1, 0.2, 0.3)
EXTREME_SD = 0.075
DEFAULT_BOOTSTRAP = 50
_MAD = 0.6744897501960817


@dataclass(frozen=True, slots=True)
class KlimekFit:
    """The fit for one candidate in one stratum (``home`` when the contest has actas
    abroad, whose turnout is another distribution, else ``national``)."""

    stratum: str
    candidate: str
    n_actas: int
    f_incremental: float
    f_extreme: float
    ci_incremental: tuple[float, float] | None  # bootstrap percentile 95 % (None: B = 0)
    ci_extreme: tuple[float, float] | None
    bootstrap: int
    theta: float  # spread of the incremental stuffing fraction, chosen by the fit
    turnout_mean: float
    turnout_sd: float
    share_mean: float
    share_sd: float
    distance: float  # Σ (H_obs − H_model)² at the fit (histograms normalised to 1)
    distance_clean: float  # the same with f_i = f_e = 0
    bins: int
    text_es: str
    text_en: str


def _truncated_normal(mu: float, sd: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """N(mu, sd) redrawn until inside (0, 1) (vectorised; a few rounds at most)."""
    x = rng.normal(mu, sd, n)
    bad = (x <= 0) | (x >= 1)
    for _ in range(50):
        if not bad.any():
            break
        x[bad] = rng.normal(mu, sd, int(bad.sum()))
        bad = (x <= 0) | (x >= 1)
    return np.clip(x, 1e-6, 1 - 1e-6)


def _fraction(kind: str, theta: float, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "incremental":
        x = np.abs(rng.normal(0.0, theta, n))
    else:
        x = 1.0 - np.abs(rng.normal(0.0, EXTREME_SD, n))
    return np.clip(x, 0.0, 1.0)


def _hist(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    ti = np.clip((t * BINS).astype(np.int64), 0, BINS - 1)
    si = np.clip((s * BINS).astype(np.int64), 0, BINS - 1)
    h = np.bincount(ti * BINS + si, minlength=BINS * BINS).astype(float)
    return h / max(h.sum(), 1.0)


def _components(electors: np.ndarray, mu_t: float, sd_t: float, mu_s: float, sd_s: float,
                thetas: tuple[float, ...], rng: np.random.Generator, replicas: int
                ) -> tuple[np.ndarray, dict[float, np.ndarray], np.ndarray]:
    """Histograms of the clean, incremental (one per θ) and extreme components."""
    n_el = np.tile(electors, replicas).astype(float)
    n = len(n_el)
    a = _truncated_normal(mu_t, sd_t, n, rng)
    nu = _truncated_normal(mu_s, sd_s, n, rng)
    voters = np.rint(n_el * a)
    win = np.rint(voters * nu)
    opp = voters - win
    ok = voters > 0

    def stuffed(x: np.ndarray) -> np.ndarray:
        moved = np.rint(x * opp)
        w = win + np.floor(x * (n_el - voters)) + moved
        o = opp - moved
        tot = w + o
        return _hist((tot / n_el)[ok], (w / np.maximum(tot, 1))[ok])

    clean = _hist((voters / n_el)[ok], (win / np.maximum(voters, 1))[ok])
    inc = {th: stuffed(_fraction("incremental", th, n, rng)) for th in thetas}
    ext = stuffed(_fraction("extreme", 0.0, n, rng))
    return clean, inc, ext


def _solve(obs: np.ndarray, clean: np.ndarray, inc: np.ndarray,
           ext: np.ndarray) -> tuple[float, float, float]:
    """min ||obs − (1 − fi − fe) clean − fi inc − fe ext||² with fi, fe ≥ 0, fi + fe ≤ 1:
    exact (the unconstrained solution if feasible, else the best point on the edges)."""
    r = obs - clean
    di = inc - clean
    de = ext - clean

    def dist(fi: float, fe: float) -> float:
        e = r - fi * di - fe * de
        return float(e @ e)

    cands: list[tuple[float, float]] = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]
    g = np.array([[di @ di, di @ de], [di @ de, de @ de]])
    b = np.array([r @ di, r @ de])
    try:
        fi, fe = np.linalg.solve(g, b)
        cands.append((float(fi), float(fe)))
    except np.linalg.LinAlgError:
        pass
    if di @ di > 0:
        cands.append((float(np.clip(r @ di / (di @ di), 0, 1)), 0.0))
    if de @ de > 0:
        cands.append((0.0, float(np.clip(r @ de / (de @ de), 0, 1))))
    d = di - de  # the edge fi + fe = 1: fi di + (1 − fi) de
    if d @ d > 0:
        fi = float(np.clip((r - de) @ d / (d @ d), 0, 1))
        cands.append((fi, 1.0 - fi))
    feasible = [(fi, fe) for fi, fe in cands
                if fi >= -1e-12 and fe >= -1e-12 and fi + fe <= 1 + 1e-12]
    best = min(feasible, key=lambda c: dist(*c))
    return max(best[0], 0.0), max(best[1], 0.0), dist(*best)


def _robust(x: np.ndarray) -> tuple[float, float]:
    mu = float(np.median(x))
    sd = float(np.median(np.abs(x - mu))) / _MAD
    return mu, max(sd, 1e-3)


def _fit_once(t: np.ndarray, s: np.ndarray, electors: np.ndarray, thetas: tuple[float, ...],
              rng: np.random.Generator, replicas: int = REPLICAS
              ) -> tuple[float, float, float, float, float, tuple[float, float, float, float]]:
    mu_t, sd_t = _robust(t)
    mu_s, sd_s = _robust(s)
    obs = _hist(t, s)
    clean, inc, ext = _components(electors, mu_t, sd_t, mu_s, sd_s, thetas, rng, replicas)
    fits = {th: _solve(obs, clean, inc[th], ext) for th in thetas}
    th = min(fits, key=lambda k: fits[k][2])
    fi, fe, d = fits[th]
    d0 = float((obs - clean) @ (obs - clean))
    return fi, fe, th, d, d0, (mu_t, sd_t, mu_s, sd_s)


def fit_klimek(inp: ForensicInput, candidate: int, rng: np.random.Generator, *,
               bootstrap: int = DEFAULT_BOOTSTRAP,
               names: dict[str, str] | None = None) -> KlimekFit | None:
    """The fit for ``candidate`` (index into the contest's candidates); None without
    electors or with fewer than 100 usable actas."""
    if inp.electors is None:
        return None
    home = ~inp.abroad if (inp.abroad.any() and (~inp.abroad).any()) else np.ones(inp.n, bool)
    stratum = "home" if not home.all() else "national"
    use = home & (inp.electors > 0) & (inp.valid > 0) & (inp.cast <= inp.electors)
    electors = inp.electors[use]
    if len(electors) < 100:
        return None
    t = inp.cast[use] / electors
    s = inp.votes[use, candidate] / inp.valid[use]
    fi, fe, theta, d, d0, (mu_t, sd_t, mu_s, sd_s) = _fit_once(t, s, electors, THETAS, rng)
    boots = np.zeros((bootstrap, 2))
    n = len(t)
    for b in range(bootstrap):
        idx = rng.integers(0, n, n)
        bi, be, *_ = _fit_once(t[idx], s[idx], electors[idx], (theta,), rng, 1)
        boots[b] = (bi, be)
    code = inp.codes[candidate]
    nm = (names or {}).get(code, code)
    where_es = "en el país" if stratum == "home" else "nacional"
    where_en = "home" if stratum == "home" else "national"
    ci_i: tuple[float, float] | None = None
    ci_e: tuple[float, float] | None = None
    ci = ("", "")
    if bootstrap:
        lo = np.percentile(boots, 2.5, axis=0)
        hi = np.percentile(boots, 97.5, axis=0)
        ci_i, ci_e = (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))
        ci = f"[{lo[0]:.3f}–{hi[0]:.3f}]", f"[{lo[1]:.3f}–{hi[1]:.3f}]"
    es = (f"Ajuste de Klimek et al. (2012) para {nm} ({where_es}, {n:,} actas): relleno "
          f"incremental f_i = {fi:.3f} {ci[0]}, extremo f_e = {fe:.3f} {ci[1]} (bootstrap "
          f"95 %, B = {bootstrap}). Es una estimación de modelo, no una prueba: una "
          "elección limpia pero heterogénea también da f_i > 0, y no entra en el control "
          "FDR.")
    en = (f"Klimek et al. (2012) fit for {nm} ({where_en}, {n:,} actas): incremental "
          f"stuffing f_i = {fi:.3f} {ci[0]}, extreme f_e = {fe:.3f} {ci[1]} (bootstrap 95 %, "
          f"B = {bootstrap}). A model estimate, not a test: a clean but heterogeneous "
          "election also gives f_i > 0, and it does not enter the FDR control.")
    return KlimekFit(
        stratum=stratum, candidate=code, n_actas=n, f_incremental=fi, f_extreme=fe,
        ci_incremental=ci_i, ci_extreme=ci_e,
        bootstrap=bootstrap, theta=theta, turnout_mean=mu_t, turnout_sd=sd_t,
        share_mean=mu_s, share_sd=sd_s, distance=d, distance_clean=d0, bins=BINS,
        text_es=es, text_en=en)
