"""Shared pieces of the forensic tests: scopes (nation, home, abroad, each region),
per-scope results, outlier bookkeeping and the Monte-Carlo category counter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from escrutinio.forensics.inputs import ForensicInput


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a test is run: ``national``, ``home``, ``abroad`` or ``area1:<code>``."""

    id: str
    kind: str  # national | home | abroad | region
    regions: tuple[int, ...]  # indices into ForensicInput.region_codes
    code: str = ""


def scopes_for(inp: ForensicInput) -> list[Scope]:
    """The nation; home and abroad when both exist; every area1 (department/continent)."""
    n_reg = len(inp.region_codes)
    reg_abroad = np.zeros(n_reg, dtype=bool)
    if inp.n:
        reg_abroad[inp.region_idx[inp.abroad]] = True
    out = [Scope("national", "national", tuple(range(n_reg)))]
    if reg_abroad.any() and (~reg_abroad).any():
        out.append(Scope("home", "home", tuple(np.flatnonzero(~reg_abroad).tolist())))
        out.append(Scope("abroad", "abroad", tuple(np.flatnonzero(reg_abroad).tolist())))
    for r, code in enumerate(inp.region_codes.tolist()):
        out.append(Scope(f"area1:{code}", "region", (r,), str(code)))
    return out


@dataclass(frozen=True, slots=True)
class ScopeResult:
    """One test in one scope. ``statistic`` and ``expected`` are in the test's own unit
    (a count of actas, a chi-square...); ``effect`` is the plain-language effect size
    named by the test (ratio observed/expected, excess outliers...)."""

    scope: str
    n_units: int
    statistic: float | None  # None when not computable (no units): never NaN in JSON
    expected: float | None
    effect: float | None
    p_value: float
    p_method: str  # analytic | monte_carlo | exact | monte_carlo+analytic_tail | none
    q_value: float | None = None
    flagged: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def finite_or_none(x: Any) -> Any:
    """NaN/inf → None (JSON has no NaN), recursively through dicts and lists."""
    if isinstance(x, float | np.floating):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: finite_or_none(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(finite_or_none(v) for v in x)
    return x


def sanitized(r: ScopeResult) -> ScopeResult:
    return ScopeResult(
        scope=r.scope, n_units=r.n_units, statistic=finite_or_none(r.statistic),
        expected=finite_or_none(r.expected), effect=finite_or_none(r.effect),
        p_value=r.p_value if np.isfinite(r.p_value) else 1.0, p_method=r.p_method,
        q_value=r.q_value, flagged=r.flagged, details=finite_or_none(r.details))


@dataclass(frozen=True, slots=True)
class Outliers:
    """Per-acta standardized deviations of one quantity (NaN where not computed)."""

    quantity: str  # "turnout" or a candidate code
    z: np.ndarray


def per_region_sum(values: np.ndarray, region_idx: np.ndarray, n_regions: int) -> np.ndarray:
    """Sum of rows of ``values`` (N,) or (N, C) by region → (R,) or (R, C)."""
    if values.ndim == 1:
        return np.bincount(region_idx, weights=values, minlength=n_regions)
    return np.stack([np.bincount(region_idx, weights=values[:, c], minlength=n_regions)
                     for c in range(values.shape[1])], axis=1)


def per_region_outer(q: np.ndarray, region_idx: np.ndarray, n_regions: int) -> np.ndarray:
    """Σ_i q_i q_iᵀ by region → (R, C, C): one matrix product per region over the rows
    sorted by region (no (N, C, C) temporary)."""
    c = q.shape[1]
    out = np.zeros((n_regions, c, c))
    if len(q) == 0:
        return out
    order = np.argsort(region_idx, kind="stable")
    reg = region_idx[order]
    qs = q[order]
    bounds = np.flatnonzero(np.r_[True, reg[1:] != reg[:-1], True])
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        block = qs[start:stop]
        out[reg[start]] = block.T @ block
    return out


def loo_median(values: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out median of ``values`` among the other members of each row's group,
    and the group size. Rows with group < 0 get NaN. Vectorised (one lexsort)."""
    n = len(values)
    out = np.full(n, np.nan)
    size = np.zeros(n, dtype=np.int64)
    ok = (group >= 0) & np.isfinite(values)
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return out, size
    g = group[idx]
    v = values[idx]
    order = np.lexsort((v, g))
    gs, vs = g[order], v[order]
    uniq, start_of, counts = np.unique(gs, return_index=True, return_counts=True)
    pos_in = np.searchsorted(uniq, gs)
    start = start_of[pos_in]
    m = counts[pos_in]
    rank = np.arange(len(gs)) - start
    big = m - 1  # members left after removing the row itself
    # index of the j-th remaining member (0-based) in the sorted group
    def member(j: np.ndarray) -> np.ndarray:
        jj = np.clip(j, 0, None)
        return vs[np.clip(start + jj + (jj >= rank), 0, len(vs) - 1)]
    odd = big % 2 == 1
    mid = (big - 1) // 2
    j1 = big // 2 - 1
    j2 = big // 2
    med = np.where(odd, member(mid), 0.5 * (member(j1) + member(j2)))
    med = np.where(big >= 1, med, np.nan)
    res = np.empty(len(gs))
    res[order] = med
    sz = np.empty(len(gs), dtype=np.int64)
    sz[order] = m
    out[idx] = res
    size[idx] = sz
    return out, size


def comparison_groups(inp: ForensicInput, usable: np.ndarray, min_size: int = 3) -> np.ndarray:
    """Group of each acta for within-place comparisons: its polling place when that place
    has at least ``min_size`` usable actas, else its district (area3) when the district's
    remaining actas are enough, else -1 (not compared)."""
    n = inp.n
    group = np.full(n, -1, dtype=np.int64)
    use = usable.copy()
    if (inp.place_idx >= 0).any():
        pcount = np.bincount(inp.place_idx[use & (inp.place_idx >= 0)],
                             minlength=int(inp.place_idx.max()) + 1)
        in_place = use & (inp.place_idx >= 0)
        big = in_place.copy()
        big[in_place] = pcount[inp.place_idx[in_place]] >= min_size
        group[big] = inp.place_idx[big]
        rest = use & ~big
    else:
        rest = use
    if rest.any():
        offset = int(group.max()) + 1
        dcount = np.bincount(inp.district_idx[rest], minlength=int(inp.district_idx.max()) + 1)
        ok = rest.copy()
        ok[rest] = dcount[inp.district_idx[rest]] >= min_size
        group[ok] = offset + inp.district_idx[ok]
    return group


def asin_sqrt(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Anscombe's variance-stabilised proportion asin(sqrt((x + 3/8) / (n + 3/4))):
    variance ≈ 1/(4n) whatever the share, and nearly symmetric even near 0 or 1."""
    return np.arcsin(np.sqrt((x + 0.375) / (n + 0.75)))
