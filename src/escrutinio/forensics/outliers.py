"""Outliers among the mesas of one polling place (local de votación).

Mesas at the same school serve neighbours of the same district; their turnout and
shares differ mostly by sampling noise. A mesa whose figures jump away from its
siblings' — much higher turnout, a much larger share for one candidate — is worth a
look (a transcription error, a mesa of a different electorate, or manipulation).

Per acta i, for turnout (cast of electors) and for each candidate's share of valid
votes, on Anscombe's variance-stabilised scale a = asin √((x + 3/8)/(n + 3/4)):

    z_i = (a_i − median_{j ≠ i} a_j) / √(1/(4 n_i) + π/(8 n̄ (m − 1)))

where the median runs over the other mesas of the place (or of the district when the
place has fewer than 3 usable mesas), n̄ is their mean size and m the group size. The
z's are divided by their robust spread (MAD/0.6745) in each area1, which absorbs the
real extra-binomial variation between mesas (age cohorts, late roll changes...).

**When most of a place is anomalous** its own median is the anomaly, and its honest mesas
look like outliers the other way (stuffing for A would name A's opponents' mesas). So
each place's median is also compared with a robust centre of its **neighbouring places**
(the median of the other places' medians in the same province, area2; the region when
the province has fewer than 3 other places). A place is *re-referenced* when its median
is itself an outlier among places (≥ 3 robust SD of the place medians' deviations in its
area1) and it holds a within-place outlier that is ordinary against the neighbours
(|z_neighbours| < c), on the opposite side from the place's median: then every mesa of
that place is
measured against the neighbours instead (z_neighbours, scaled by its own robust spread
per area1), so the stuffed majority is named and the honest minority is not.

**Test.** Benign outliers go both ways; manipulation in favour of a candidate makes
outliers in one direction. With K⁺ actas at z ≥ c (in favour) and K⁻ at z ≤ −c
(against), the test asks whether K⁺ − K⁻ is too large for chance. Benign outliers come
in clusters (one odd district), so the null flips the sign of each province's (area2's)
net count together, and the exact law of the sum gives the p-value.
For turnout the suspicious direction is up (stuffing adds ballots).
"""

from __future__ import annotations

import math

import numpy as np

from escrutinio.forensics.common import (
    Outliers,
    Scope,
    ScopeResult,
    asin_sqrt,
    comparison_groups,
    group_median,
    loo_median,
)
from escrutinio.forensics.inputs import ForensicInput
from escrutinio.forensics.stats import robust_scale, sign_flip_normal_sf, sign_flip_sf

DEFAULT_THRESHOLD = 5.0
MIN_REGION_UNITS = 30


def standardize_by_region(z_raw: np.ndarray, region_idx: np.ndarray) -> np.ndarray:
    """Divide by the robust spread within each region (national spread for small ones)."""
    z = np.full_like(z_raw, np.nan)
    fin = np.isfinite(z_raw)
    overall = robust_scale(z_raw[fin])
    n_reg = int(region_idx.max()) + 1 if len(region_idx) else 0
    for r in range(n_reg):
        m = fin & (region_idx == r)
        k = int(m.sum())
        if k == 0:
            continue
        s = robust_scale(z_raw[m]) if k >= MIN_REGION_UNITS else overall
        z[m] = z_raw[m] / s
    return z


def deviation_z(
    values: np.ndarray, size: np.ndarray, group: np.ndarray, region_idx: np.ndarray
) -> np.ndarray:
    """Standardized deviation of each acta's stabilised value from its group's others."""
    ref, m = loo_median(values, group)
    gsize = np.bincount(group[group >= 0], weights=size[group >= 0],
                        minlength=int(group.max()) + 1 if (group >= 0).any() else 0)
    gcount = np.bincount(group[group >= 0], minlength=len(gsize))
    nbar = np.full(len(values), np.nan)
    ok = group >= 0
    nbar[ok] = (gsize[group[ok]] - size[ok]) / np.maximum(gcount[group[ok]] - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = 1.0 / (4.0 * size) + math.pi / (8.0 * nbar * np.maximum(m - 1, 1))
        z_raw = (values - ref) / np.sqrt(var)
    z_raw[(m < 3) | ~np.isfinite(z_raw)] = np.nan
    return standardize_by_region(z_raw, region_idx)


MIN_NEIGHBOURS = 3
#: a place is re-referenced only if its median is this many robust SD away from its
#: neighbours' (among the places of its area1) — and it holds an opposite outlier
PLACE_GATE = 3.0


def neighbour_centre(values: np.ndarray, group: np.ndarray, inp: ForensicInput) -> np.ndarray:
    """Per acta: the median of the *other* places' medians in its province (area2), or in
    its region (area1) when the province has fewer than MIN_NEIGHBOURS other places. NaN
    for actas without a group."""
    n = len(values)
    out = np.full(n, np.nan)
    ok = group >= 0
    if not ok.any():
        return out
    ng = int(group[ok].max()) + 1
    gmed = group_median(values, group, ng)
    g_cluster = np.full(ng, -1, dtype=np.int64)
    g_region = np.full(ng, -1, dtype=np.int64)
    g_cluster[group[ok]] = inp.cluster_idx[ok]
    g_region[group[ok]] = inp.region_idx[ok]
    valid_g = np.isfinite(gmed)
    by_cluster, k_cluster = loo_median(gmed, np.where(valid_g, g_cluster, -1))
    by_region, _ = loo_median(gmed, np.where(valid_g, g_region, -1))
    centre = np.where(k_cluster - 1 >= MIN_NEIGHBOURS, by_cluster, by_region)
    out[ok] = centre[group[ok]]
    return out


def robust_z(values: np.ndarray, size: np.ndarray, group: np.ndarray, inp: ForensicInput,
             region_idx: np.ndarray, threshold: float) -> np.ndarray:
    """Within-place z (:func:`deviation_z`), with places whose own centre is the anomaly
    re-referenced to their neighbouring places (module docstring)."""
    z_place = deviation_z(values, size, group, region_idx)
    ref = neighbour_centre(values, group, inp)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_nb = standardize_by_region((values - ref) * np.sqrt(4.0 * size), region_idx)
    ok = (group >= 0) & np.isfinite(z_place) & np.isfinite(z_nb)
    if not ok.any():
        return z_place
    ng = int(group[group >= 0].max()) + 1
    gmed = group_median(values, group, ng)
    g_ref = np.full(ng, np.nan)
    g_ref[group[ok]] = ref[ok]
    side = np.sign(gmed - g_ref)  # where the place's own centre sits against neighbours
    # the place itself must be an outlier among places (its median ≥ PLACE_GATE robust SD of the
    # place medians' deviations in its area1): a lone odd mesa in an ordinary place keeps
    # its within-place comparison
    g_region = np.full(ng, -1, dtype=np.int64)
    g_region[group[ok]] = region_idx[ok]
    with np.errstate(invalid="ignore"):
        g_z = standardize_by_region(np.where(g_region >= 0, gmed - g_ref, np.nan),
                                    g_region)
    odd_place = np.nan_to_num(np.abs(g_z), nan=0.0) >= PLACE_GATE
    gi = np.where(group >= 0, group, 0)
    odd = (ok & (np.abs(z_place) >= threshold) & (np.abs(z_nb) < threshold)
           & (np.sign(z_place) == -side[gi]) & (side[gi] != 0) & odd_place[gi])
    reref = np.zeros(ng, dtype=bool)
    reref[group[odd]] = True
    use_nb = (group >= 0) & reref[gi] & np.isfinite(z_nb)
    return np.where(use_nb, z_nb, z_place)


def place_outliers(inp: ForensicInput, candidates: list[int],
                   threshold: float = DEFAULT_THRESHOLD) -> list[Outliers]:
    """z for turnout (when electors are known) and for each candidate's share."""
    out: list[Outliers] = []
    if inp.electors is not None:
        usable = (inp.electors > 0) & (inp.cast <= inp.electors)
        group = comparison_groups(inp, usable)
        a = np.where(usable, asin_sqrt(inp.cast, inp.electors), np.nan)
        out.append(Outliers("turnout", robust_z(a, inp.electors.astype(float), group, inp,
                                                inp.region_idx, threshold)))
    usable = inp.valid > 0
    group = comparison_groups(inp, usable)
    cands = candidates[:1] if len(inp.codes) == 2 else candidates
    for c in cands:
        a = np.where(usable, asin_sqrt(inp.votes[:, c], inp.valid), np.nan)
        z = robust_z(a, inp.valid.astype(float), group, inp, inp.region_idx, threshold)
        out.append(Outliers(inp.codes[c], z))
        if len(inp.codes) == 2:  # the other candidate's share is the mirror image
            out.append(Outliers(inp.codes[1 - c], -z))
    return out


def sign_test(
    z: np.ndarray, inp: ForensicInput, scopes: list[Scope], threshold: float, *,
    exact: bool = True,
) -> list[ScopeResult]:
    """One-sided cluster sign-flip test of outliers in favour (z ≥ c) vs against (z ≤ −c),
    for every scope."""
    fav = np.nan_to_num(z, nan=0.0) >= threshold
    ag = np.nan_to_num(z, nan=0.0) <= -threshold
    net = fav.astype(np.int64) - ag.astype(np.int64)
    n_cl = int(inp.cluster_idx.max()) + 1 if inp.n else 0
    net_cl = np.bincount(inp.cluster_idx, weights=net, minlength=n_cl).astype(np.int64)
    cl_region = np.zeros(n_cl, dtype=np.int64)
    cl_region[inp.cluster_idx] = inp.region_idx
    fav_r = np.bincount(inp.region_idx, weights=fav, minlength=len(inp.region_codes))
    ag_r = np.bincount(inp.region_idx, weights=ag, minlength=len(inp.region_codes))
    n_r = np.bincount(inp.region_idx, weights=np.isfinite(z), minlength=len(inp.region_codes))
    rows = []
    for sc in scopes:
        regs = list(sc.regions)
        sel = np.isin(cl_region, regs)
        k_fav, k_ag = float(fav_r[regs].sum()), float(ag_r[regs].sum())
        if exact and k_fav + k_ag <= 20_000:
            p = sign_flip_sf(net_cl[sel])
            method = "exact"
        else:
            p = sign_flip_normal_sf(net_cl[sel])
            method = "analytic"
        rows.append(ScopeResult(
            scope=sc.id, n_units=int(n_r[regs].sum()), statistic=k_fav, expected=k_ag,
            effect=k_fav - k_ag, p_value=p, p_method=method,
            details={"outliers_in_favour": int(k_fav), "outliers_against": int(k_ag),
                     "threshold": threshold}))
    return rows


def run_place(
    inp: ForensicInput, scopes: list[Scope], candidates: list[int], *, threshold: float,
) -> tuple[dict[str, list[ScopeResult]], list[Outliers]]:
    zs = place_outliers(inp, candidates, threshold)
    return {o.quantity: sign_test(o.z, inp, scopes, threshold) for o in zs}, zs
