"""Turnout × share fingerprint (Klimek, Yegorov, Hanel & Thurner 2012).

The 2-D histogram of actas by turnout and a candidate's share. In a clean count it is a
single smooth blob; ballot stuffing smears it towards the upper right (more turnout,
more votes for the same candidate) and "extreme" stuffing piles actas at 100 % / 100 %.
Klimek's fraud parameters are fitted in :mod:`escrutinio.forensics.klimek` as an
estimate, not a test (published fits to the same data differ by 5-10×). Here:

* the histogram itself (data and an image), per stratum (each area1, home, abroad);
* **tail shares**: the share of actas (and of valid votes) with turnout ≥ 95 %, with the
  candidate's share ≥ 95 %, and with both;
* a **test** of the joint tail: J = number of actas with turnout ≥ 95 % *and* the
  candidate's share ≥ 95 %. Closed communities can vote en bloc and turn out in full, so
  J is compared not with a model but with its own polling places: under the null that,
  within a polling place (local de votación), which mesa has the high turnout is
  unrelated to which mesa has the high share, J is a sum of independent hypergeometric
  counts (one per place), whose exact law gives the p-value. A stuffed mesa, whose
  turnout and share jump together, raises J above that law.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from escrutinio.forensics.common import Scope, ScopeResult
from escrutinio.forensics.inputs import ForensicInput
from escrutinio.forensics.stats import hypergeom_sum_sf

TAIL = 0.95


@dataclass(frozen=True, slots=True)
class Histogram2D:
    """Actas per (turnout bin, share bin); ``bins`` equal-width bins over 0-100 %."""

    stratum: str
    candidate: str
    bins: int
    counts: tuple[tuple[int, ...], ...]  # [turnout bin][share bin]
    n_actas: int


@dataclass(frozen=True, slots=True)
class TailShares:
    stratum: str
    candidate: str
    n_actas: int
    turnout_tail: float  # share of actas with turnout >= 95 %
    share_tail: float  # share of actas with the candidate's share >= 95 %
    joint_tail: float  # both
    joint_tail_actas: int
    joint_tail_valid_votes: float  # share of the stratum's valid votes in joint-tail actas


def turnout_share(inp: ForensicInput, c: int) -> tuple[np.ndarray, np.ndarray]:
    assert inp.electors is not None
    t = inp.cast / np.maximum(inp.electors, 1)
    s = inp.votes[:, c] / np.maximum(inp.valid, 1)
    return t, s


def histogram(t: np.ndarray, s: np.ndarray, bins: int) -> np.ndarray:
    ti = np.clip((t * bins).astype(np.int64), 0, bins - 1)
    si = np.clip((s * bins).astype(np.int64), 0, bins - 1)
    return np.bincount(ti * bins + si, minlength=bins * bins).reshape(bins, bins)


def _strata(scopes: list[Scope], inp: ForensicInput) -> list[tuple[str, np.ndarray]]:
    out = []
    for sc in scopes:
        mask = (np.ones(inp.n, dtype=bool) if sc.kind == "national"
                else np.isin(inp.region_idx, list(sc.regions)))
        out.append((sc.id, mask))
    return out


def run_fingerprint(
    inp: ForensicInput, scopes: list[Scope], candidates: list[int], *, bins: int = 100,
    region_bins: int = 20,
) -> tuple[dict[str, list[ScopeResult]], list[Histogram2D], list[TailShares]]:
    """Joint-tail test per candidate and scope, histograms and tail shares."""
    if inp.electors is None:
        return {}, [], []
    results: dict[str, list[ScopeResult]] = {}
    hists: list[Histogram2D] = []
    tails: list[TailShares] = []
    group = inp.place_idx if (inp.place_idx >= 0).all() else inp.district_idx
    strata = _strata(scopes, inp)
    for c in candidates:
        code = inp.codes[c]
        t, s = turnout_share(inp, c)
        a = t >= TAIL
        b = s >= TAIL
        joint = a & b
        rows = []
        for (sid, mask), sc in zip(strata, scopes, strict=True):
            g = group[mask]
            ng = int(g.max()) + 1 if len(g) else 0
            m_g = np.bincount(g, minlength=ng)
            a_g = np.bincount(g, weights=a[mask], minlength=ng).astype(np.int64)
            b_g = np.bincount(g, weights=b[mask], minlength=ng).astype(np.int64)
            active = (m_g > 0) & (a_g > 0) & (b_g > 0)
            j_obs = int(joint[mask].sum())
            expected = float((a_g[active] * b_g[active] / m_g[active]).sum())
            p = hypergeom_sum_sf(m_g[active], a_g[active], b_g[active], j_obs)
            n_units = int(mask.sum())
            valid = float(inp.valid[mask].sum())
            tails.append(TailShares(
                stratum=sid, candidate=code, n_actas=n_units,
                turnout_tail=float(a[mask].mean()) if n_units else 0.0,
                share_tail=float(b[mask].mean()) if n_units else 0.0,
                joint_tail=float(joint[mask].mean()) if n_units else 0.0,
                joint_tail_actas=j_obs,
                joint_tail_valid_votes=(float(inp.valid[mask & joint].sum()) / valid
                                        if valid else 0.0)))
            rows.append(ScopeResult(
                scope=sc.id, n_units=n_units, statistic=float(j_obs), expected=expected,
                effect=(j_obs / expected if expected > 0 else (float("inf") if j_obs
                                                               else float("nan"))),
                p_value=p, p_method="exact",
                details={"turnout_tail_actas": int(a[mask].sum()),
                         "share_tail_actas": int(b[mask].sum()),
                         "places_with_both_tails": int(active.sum())}))
            nb = bins if sc.kind in ("national", "home", "abroad") else region_bins
            h = histogram(t[mask], s[mask], nb)
            hists.append(Histogram2D(stratum=sid, candidate=code, bins=nb,
                                     counts=tuple(tuple(int(x) for x in row) for row in h),
                                     n_actas=n_units))
        results[code] = rows
    return results, hists, tails


def joint_tail_mask(inp: ForensicInput, c: int) -> np.ndarray:
    if inp.electors is None:
        return np.zeros(inp.n, dtype=bool)
    t, s = turnout_share(inp, c)
    return (t >= TAIL) & (s >= TAIL)
