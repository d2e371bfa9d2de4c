"""Size-aware nulls for the count-based tests (integer percentages, last digit, 2BL).

A test reads a *feature* of each count (is it a whole percentage? its last digit? its
second digit?). Under the null, each count is redrawn at its own size:

* ``binomial`` — Binomial(n_i, p_i) with p_i the acta's observed share (Kobak et al.;
  Beber & Scacco): the integer-percentage and last-digit tests.
* ``smoothed`` — a discretised normal with mean μ_i and variance v_i (used by 2BL): the
  acta's share shrunk towards its polling place's by empirical Bayes, with the variance
  of a fresh count. Second digits of 3-digit counts are tens digits, which depend on
  where the counts sit at the scale of ten votes; redrawing at the observed share adds a
  second dose of binomial noise and flattens that structure, so a plain binomial
  baseline rejects clean elections (it does on Peru 2021). The smoothed null keeps the
  spread of counts across mesas equal to the observed one.

For every acta the probability of each category is computed exactly from the null's
probabilities over a window of ±6 standard deviations (:func:`moments`); Monte-Carlo
redraws of the same null give the finite-sample law (:func:`draw`). One pmf (or one
draw) serves every feature of the same count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from escrutinio.forensics.stats import log_factorials

Feature = Callable[[np.ndarray, np.ndarray], np.ndarray]

@dataclass(frozen=True)
class CountNull:
    """The null law of one count per acta: binomial (n, p) or smoothed (n, mean, var)."""

    kind: str  # binomial | smoothed
    n: np.ndarray  # int64 base (electors or valid votes)
    p: np.ndarray  # binomial: share; smoothed: mean / n
    var: np.ndarray | None = None  # smoothed: variance in votes

    def sd(self, sl: slice = slice(None)) -> np.ndarray:
        if self.kind == "binomial":
            p = self.p[sl]
            return np.sqrt(self.n[sl] * p * (1 - p))
        assert self.var is not None
        return np.sqrt(self.var[sl])


def last_digit(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    return k % 10


def second_digit(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Second digit of k for k >= 10; category 10 for k < 10 (no second digit)."""
    out = np.where(k >= 100, (k // 10) % 10, np.where(k >= 10, k % 10, 10))
    if np.any(k >= 1000):  # rare at mesa level: general formula
        ndig = np.floor(np.log10(np.maximum(k, 1))).astype(np.int64) + 1
        out = np.where(k >= 1000, (k // 10 ** np.maximum(ndig - 2, 0)) % 10, out)
    return out


def _window(null: CountNull, sl: slice, sds: float) -> tuple[np.ndarray, np.ndarray]:
    """Counts k (N, W) on a window around each mean and their null probabilities;
    k = -1 marks window cells outside 0..n (probability 0). Windows start at a multiple
    of 10 and have a width that is a multiple of 10 (digit features then reduce to
    reshapes)."""
    n = null.n[sl]
    p = np.clip(null.p[sl], 0.0, 1.0)
    mean = n * p
    sd = null.sd(sl)
    half = np.ceil(sds * sd + 2).astype(np.int64)
    lo = np.clip((np.floor(mean).astype(np.int64) - half) // 10 * 10, 0, None)
    hi = np.minimum(np.ceil(mean).astype(np.int64) + half, n)
    width = int((hi - lo).max(initial=0)) + 1
    width = -(-width // 10) * 10
    k = lo[:, None] + np.arange(width)[None, :]
    inside = k <= n[:, None]
    if null.kind == "binomial":
        # pmf(lo) from log-factorials, then pmf(k+1) = pmf(k) (n-k)/(k+1) p/(1-p)
        lf = log_factorials(int(n.max(initial=0)))
        interior = (p > 0) & (p < 1)
        pc = np.where(interior, p, 0.5)
        log0 = lf[n] - lf[lo] - lf[n - lo] + lo * np.log(pc) + (n - lo) * np.log1p(-pc)
        ratio = np.empty((len(n), width))
        ratio[:, 0] = np.exp(log0)
        kk = k[:, :-1]
        ratio[:, 1:] = (np.maximum(n[:, None] - kk, 0) / (kk + 1)) * (pc / (1 - pc))[:, None]
        pmf = np.cumprod(ratio, axis=1)
        pmf *= inside
        if not interior.all():  # point masses at 0 or n
            rows = np.flatnonzero(~interior)
            at = np.where(p[rows] >= 1, n[rows], 0)
            pmf[rows] = (k[rows] == at[:, None]).astype(float)
    else:
        # discretised normal: density at the integers, renormalised over 0..n
        s = np.maximum(sd, 1e-9)[:, None]
        zz = (k - mean[:, None]) / s
        pmf = np.exp(-0.5 * zz * zz)
        pmf *= inside
        tot = pmf.sum(axis=1, keepdims=True)
        pmf /= np.where(tot > 0, tot, 1.0)
    return np.where(inside, k, -1), pmf


def _category_probs(
    k: np.ndarray, pmf: np.ndarray, n: np.ndarray, fn: Feature, n_cat: int, mirror: bool,
) -> np.ndarray:
    """(rows, C) probabilities of a feature's categories from a window of the pmf
    (of n − k when ``mirror``). Fast paths for the last digit, the second digit and
    two-category features; a weighted bincount otherwise."""
    rows, width = k.shape
    if fn is last_digit:
        fwd = pmf.reshape(rows, width // 10, 10).sum(axis=1)  # windows start at 0 mod 10
        if not mirror:
            return fwd
        # P((n − k) mod 10 = d) = P(k mod 10 = (n − d) mod 10)
        cols = (n[:, None] - np.arange(10)[None, :]) % 10
        return np.take_along_axis(fwd, cols, axis=1)
    if fn is second_digit and not mirror and int(k.max(initial=0)) < 10_000:
        nb = width // 10
        blocks = pmf.reshape(rows, nb, 10)
        block_sum = blocks.sum(axis=2)
        start = np.maximum(k[:, ::10], 0)  # first count of each block (-1 cells: pmf 0)
        out = np.zeros((rows, 11))
        # blocks at 100+: one second digit per block (it depends on k // 10 only)
        big = start >= 100
        cat = np.where(big, second_digit(start, start), 0)
        idx = (np.arange(rows)[:, None] * 11 + cat)[big]
        out += np.bincount(idx, weights=block_sum[big], minlength=rows * 11).reshape(rows, 11)
        # blocks at 10..99: the second digit is the units digit
        two = (start >= 10) & (start < 100)
        if two.any():
            out[:, :10] += (blocks * two[:, :, None]).sum(axis=1)
        # the block 0..9: no second digit
        out[:, 10] += (block_sum * (start < 10)).sum(axis=1)
        return out
    nn = np.broadcast_to(n[:, None], k.shape)
    kk = np.maximum(k, 0)
    cat = fn(nn - kk, nn) if mirror else fn(kk, nn)
    if n_cat <= 3:  # a few categories: one masked sum each beats a weighted bincount
        inside = k >= 0
        return np.column_stack([(pmf * ((cat == c) & inside)).sum(axis=1)
                                for c in range(n_cat)])
    cat = np.where((k >= 0) & (cat >= 0), cat, n_cat)  # outside the support → spare column
    base = np.arange(rows, dtype=np.int64)[:, None]
    flat = np.bincount((base * (n_cat + 1) + cat).ravel(), weights=pmf.ravel(),
                       minlength=rows * (n_cat + 1))
    return flat.reshape(rows, n_cat + 1)[:, :n_cat]


class WindowSampler:
    """Exact inverse-CDF sampling from each unit's windowed pmf with a guide table
    (Chen & Asau 1974): the table gives, for u in [j/T, (j+1)/T), a count at or below the
    answer, and a few vectorised steps finish the search. NumPy's binomial sampler
    re-initialises for every (n, p) pair; this one is set up once per unit and reused
    for every draw, which is what a Monte-Carlo null of thousands of draws needs."""

    def __init__(self, k: np.ndarray, pmf: np.ndarray, n: np.ndarray, slots: int = 256) -> None:
        self.lo = np.where(k[:, 0] >= 0, k[:, 0], 0)
        self.n = n
        self.cdf = np.cumsum(pmf, axis=1)
        self.cdf /= np.maximum(self.cdf[:, -1:], 1e-300)
        self.cdf[:, -1] = 1.0 + 1e-12  # every u < 1 stops by the last cell
        rows, width = pmf.shape
        self.width = width
        self.slots = slots
        # table[i, j] = #{w : cdf[i, w] < j / T}: a lower bound of the answer for u ≥ j/T
        first = np.minimum(np.floor(self.cdf * slots).astype(np.int64) + 1, slots + 1)
        hist = np.bincount((np.arange(rows)[:, None] * (slots + 2) + first).ravel(),
                           minlength=rows * (slots + 2)).reshape(rows, slots + 2)
        self.table = np.cumsum(hist, axis=1)[:, :slots].astype(np.int32)
        self.rows = rows

    def sample(self, b: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.random((b, self.rows))
        j = (u * self.slots).astype(np.int64)
        col = np.arange(self.rows)[None, :]
        w = self.table[col, j].astype(np.int64)
        flat_u = u.ravel()
        flat_w = w.ravel()
        flat_row = np.broadcast_to(col, u.shape).ravel()
        # the answer is #{w : cdf[w] <= u}; step up from the table's lower bound
        todo = np.flatnonzero(self.cdf[flat_row, flat_w] <= flat_u)
        while len(todo):
            flat_w[todo] += 1
            r = flat_row[todo]
            keep = self.cdf[r, flat_w[todo]] <= flat_u[todo]
            todo = todo[keep]
        return np.minimum(flat_w.reshape(b, self.rows) + self.lo[None, :], self.n[None, :])


def evaluate(
    null: CountNull, features: list[tuple[Feature, int, np.ndarray, bool, bool]],
    region_idx: np.ndarray,
    n_regions: int, draws: int, rng: np.random.Generator, *, chunk: int = 16_384,
    sds: float = 5.0, max_cells: int = 2_000_000,
) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """For each (feature, categories, unit mask, wants Monte Carlo, mirror): the
    per-unit probabilities of each category (N, C) and, when ``draws`` > 0 and wanted,
    the Monte-Carlo category counts per draw and region (draws, R, C) for the units in
    the mask. ``mirror`` evaluates the feature on n − k (the other candidate of a
    two-candidate race). One pmf and one set of redraws serve every feature."""
    n_units = len(null.n)
    probs = [np.zeros((n_units, c)) for _, c, _, _, _ in features]
    mc: list[np.ndarray | None] = [
        np.zeros((draws, n_regions, c), dtype=np.int64) if draws > 0 and want else None
        for _, c, _, want, _ in features]
    draws = draws if any(m is not None for m in mc) else 0
    for start in range(0, n_units, chunk):
        sl = slice(start, min(start + chunk, n_units))
        k, pmf = _window(null, sl, sds)
        n = null.n[sl]
        for (fn, n_cat, _, _, mirror), arr in zip(features, probs, strict=True):
            arr[sl] = _category_probs(k, pmf, n, fn, n_cat, mirror)
        if draws <= 0:
            continue
        sampler = WindowSampler(k, pmf, n)
        rows = k.shape[0]
        reg = region_idx[sl].astype(np.int64)
        step = max(1, min(draws, max_cells // rows))
        for d0 in range(0, draws, step):
            b = min(step, draws - d0)
            x = sampler.sample(b, rng)
            for (fn, n_cat, units, _, mirror), acc in zip(features, mc, strict=True):
                if acc is None:
                    continue
                u = units[sl]
                if u.all():
                    xs, ns, rg = x, n, reg
                else:
                    xs, ns, rg = x[:, u], n[u], reg[u]
                if xs.shape[1] == 0:
                    continue
                nb = np.broadcast_to(ns, xs.shape)
                cat = fn(nb - xs, nb) if mirror else fn(xs, nb)
                idx = (np.arange(b, dtype=np.int64)[:, None] * (n_regions * n_cat)
                       + (rg * n_cat)[None, :] + cat)
                flat = np.bincount(idx.ravel(), minlength=b * n_regions * n_cat)
                acc[d0:d0 + b] += flat.reshape(b, n_regions, n_cat)
    return probs, mc
