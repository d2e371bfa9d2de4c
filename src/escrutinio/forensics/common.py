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
    #: the smallest p-value the method can tell apart from 0: 1/(B + 1) for a
    #: Monte-Carlo p-value with B draws, ANALYTIC_RESOLUTION otherwise
    p_resolution: float = 0.0
    p_text: str = ""  # "0.397", "< 0.001": what the report prints (never "0")
    q_text: str = ""


def finite_or_none(x: Any) -> Any:
    """NaN/inf → None (JSON has no NaN), recursively through dicts and lists."""
    if isinstance(x, float | np.floating):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: finite_or_none(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(finite_or_none(v) for v in x)
    return x


#: below this an analytic or exact p-value is not told apart from 0: tails computed as
#: 1 − cdf lose everything under double precision's 1e-16, and the approximations
#: behind them are not accurate that far out anyway
ANALYTIC_RESOLUTION = 1e-15


def p_resolution(r: ScopeResult) -> float:
    """The resolution of ``r``'s p-value: 1/(B + 1) for a Monte-Carlo p-value, the
    analytic floor otherwise."""
    draws = r.details.get("draws")
    if r.p_method == "monte_carlo" and isinstance(draws, int) and draws > 0:
        return 1.0 / (draws + 1)
    return ANALYTIC_RESOLUTION


def format_p(p: float | None, resolution: float = ANALYTIC_RESOLUTION) -> str:
    """A p- or q-value as printed: never "0". At or below the method's resolution it is
    "< resolution" (a Monte-Carlo p-value with 999 draws and none as extreme prints
    "< 0.001"); otherwise 3 significant decimals, scientific below 1e-4."""
    if p is None or not np.isfinite(p):
        return "—"
    if p <= resolution:
        r = f"{resolution:.2g}" if resolution >= 1e-4 else f"{resolution:.0e}"
        return f"< {r}"
    if p < 1e-4:
        return f"{p:.1e}"
    return f"{p:.4f}" if p < 0.01 else f"{p:.3f}"


def sanitized(r: ScopeResult) -> ScopeResult:
    res = p_resolution(r)
    p = r.p_value if np.isfinite(r.p_value) else 1.0
    return ScopeResult(
        scope=r.scope, n_units=r.n_units, statistic=finite_or_none(r.statistic),
        expected=finite_or_none(r.expected), effect=finite_or_none(r.effect),
        p_value=p, p_method=r.p_method,
        q_value=r.q_value, flagged=r.flagged, details=finite_or_none(r.details),
        p_resolution=res, p_text=format_p(p, res),
        q_text=format_p(r.q_value, res) if r.q_value is not None else "—")


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


def group_median(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of ``values`` in each group 0..n_groups-1 (NaN for empty groups; rows with
    group < 0 or NaN values ignored). Vectorised: one lexsort."""
    out = np.full(n_groups, np.nan)
    ok = (group >= 0) & np.isfinite(values)
    if not ok.any():
        return out
    g, v = group[ok], values[ok]
    order = np.lexsort((v, g))
    gs, vs = g[order], v[order]
    uniq, start, count = np.unique(gs, return_index=True, return_counts=True)
    lo = vs[start + (count - 1) // 2]
    hi = vs[start + count // 2]
    out[uniq] = 0.5 * (lo + hi)
    return out


def known_geography(inp: ForensicInput) -> np.ndarray:
    """Actas whose neighbours are known: a polling place, or a district (area3) that is
    not unknown. Without either, an acta would be compared with the whole country."""
    known_district = inp.area3.astype(str) != "?"
    return (inp.place_idx >= 0) | known_district


def comparison_groups(inp: ForensicInput, usable: np.ndarray, min_size: int = 3) -> np.ndarray:
    """Group of each acta for within-place comparisons: its polling place when that place
    has at least ``min_size`` usable actas, else its district (area3) when the district's
    remaining actas are enough, else -1 (not compared)."""
    n = inp.n
    group = np.full(n, -1, dtype=np.int64)
    use = usable & known_geography(inp)
    if (inp.place_idx >= 0).any():
        pcount = np.bincount(inp.place_idx[use & (inp.place_idx >= 0)],
                             minlength=int(inp.place_idx.max()) + 1)
        in_place = use & (inp.place_idx >= 0)
        big = in_place.copy()
        big[in_place] = pcount[inp.place_idx[in_place]] >= min_size
        group[big] = inp.place_idx[big]
        rest = use & ~big
    else:
        rest = use.copy()
    rest &= inp.area3.astype(str) != "?"  # no district to fall back on: not compared
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
