"""Runoff against first round, mesa by mesa (panel residuals).

In Peru a mesa keeps its number and its electors between the two rounds (99.5 % of the
2021 mesas had the same electors). How a mesa votes in the runoff is largely predicted
by how it voted in the first round: the runoff share of candidate A is regressed on the
first-round shares of all first-round candidates (weighted least squares on Anscombe's
scale, weights = valid votes), and runoff turnout on first-round turnout. The residual
e_i says how much better (or worse) A did in mesa i than its first-round bloc predicts.

Whole places swing together (a local campaign, a regional mood), so each residual is
compared with the residuals of the **other mesas of the same polling place** (the
district when the place is small), exactly as in :mod:`escrutinio.forensics.outliers`:

    z_i = (e_i − median_{j ≠ i} e_j) / √(1/(4 n_i) + π/(8 n̄ (m − 1)))

scaled by its robust spread per area1 (and, where most of a place moved together against
its neighbouring places, re-referenced to them: :func:`escrutinio.forensics.outliers.robust_z`).
A stuffed or shifted mesa moves away from its
neighbours *and* from its own first-round past; benign causes include electors moved
between rounds, a first-round acta error, or a genuine local event.

The test is the cluster sign-flip test of outliers in favour of vs against each
candidate (turnout: up vs down), one-sided.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from escrutinio.forensics.common import Outliers, Scope, ScopeResult, asin_sqrt, comparison_groups
from escrutinio.forensics.inputs import ForensicInput
from escrutinio.forensics.outliers import DEFAULT_THRESHOLD, robust_z, sign_test


def join_rounds(current: ForensicInput, previous: ForensicInput) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (current, previous) of actas present in both rounds (same acta_id)."""
    a = pl.DataFrame({"acta_id": current.acta_id.astype(str),
                      "i": np.arange(current.n, dtype=np.int64)})
    b = pl.DataFrame({"acta_id": previous.acta_id.astype(str),
                      "j": np.arange(previous.n, dtype=np.int64)})
    j = a.join(b, on="acta_id", how="inner").sort("i")
    return j["i"].to_numpy(), j["j"].to_numpy()


def _wls(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Fitted values of weighted least squares (normal equations, tiny ridge for
    first-round parties with no votes in the subset)."""
    xw = x * w[:, None]
    gram = xw.T @ x
    gram[np.diag_indices_from(gram)] += 1e-9 * max(float(np.trace(gram)), 1.0)
    coef = np.linalg.solve(gram, xw.T @ y)
    return np.asarray(x @ coef)


def panel_outliers(
    current: ForensicInput, previous: ForensicInput, candidates: list[int],
    threshold: float = DEFAULT_THRESHOLD,
) -> tuple[list[Outliers], dict[str, int]]:
    """Per-acta z (NaN where the acta is not in both rounds) for turnout and shares."""
    i, j = join_rounds(current, previous)
    n = current.n
    info = {"actas_joined": len(i), "actas_not_in_previous_round": n - len(i)}
    out: list[Outliers] = []
    if len(i) < 10:
        return out, info
    sub = _subset(current, i)
    # turnout: runoff vs first round
    if current.electors is not None and previous.electors is not None:
        e2, c2 = current.electors[i], current.cast[i]
        e1, c1 = previous.electors[j], previous.cast[j]
        usable = (e2 > 0) & (e1 > 0) & (c2 <= e2) & (c1 <= e1)
        y = asin_sqrt(c2, e2)
        x = np.column_stack([np.ones(len(i)), asin_sqrt(c1, e1)])
        resid = np.full(len(i), np.nan)
        resid[usable] = y[usable] - _wls(x[usable], y[usable], e2[usable].astype(float))
        group = comparison_groups(sub, usable)
        z = robust_z(resid, e2.astype(float), group, sub, sub.region_idx, threshold)
        full = np.full(n, np.nan)
        full[i] = z
        out.append(Outliers("turnout", full))
        info["electors_changed_between_rounds"] = int((e1 != e2).sum())
    # shares: each candidate's runoff share on all first-round shares
    v1 = previous.valid[j].astype(float)
    shares1 = previous.votes[j] / np.maximum(v1, 1)[:, None]
    v2 = current.valid[i]
    usable = (v2 > 0) & (v1 > 0)
    x = np.column_stack([np.ones(len(i)), shares1[:, :-1]])
    group = comparison_groups(sub, usable)
    cands = candidates[:1] if len(current.codes) == 2 else candidates
    for c in cands:
        y = asin_sqrt(current.votes[i, c], v2)
        resid = np.full(len(i), np.nan)
        resid[usable] = y[usable] - _wls(x[usable], y[usable], v2[usable].astype(float))
        z = robust_z(resid, v2.astype(float), group, sub, sub.region_idx, threshold)
        full = np.full(n, np.nan)
        full[i] = z
        out.append(Outliers(current.codes[c], full))
        if len(current.codes) == 2:
            out.append(Outliers(current.codes[1 - c], -full))
    return out, info


def _subset(inp: ForensicInput, rows: np.ndarray) -> ForensicInput:
    """The same input restricted to ``rows`` (group indices keep their meaning)."""
    return replace(
        inp, acta_id=inp.acta_id[rows],
        electors=None if inp.electors is None else inp.electors[rows], cast=inp.cast[rows],
        valid=inp.valid[rows], votes=inp.votes[rows], blank=inp.blank[rows],
        null=inp.null[rows], abroad=inp.abroad[rows], area1=inp.area1[rows],
        area2=inp.area2[rows], area3=inp.area3[rows], place=inp.place[rows],
        resolved=inp.resolved[rows], region_idx=inp.region_idx[rows],
        cluster_idx=inp.cluster_idx[rows], district_idx=inp.district_idx[rows],
        place_idx=inp.place_idx[rows])


def run_panel(
    current: ForensicInput, previous: ForensicInput, scopes: list[Scope],
    candidates: list[int], *, threshold: float,
) -> tuple[dict[str, list[ScopeResult]], list[Outliers], dict[str, int]]:
    zs, info = panel_outliers(current, previous, candidates, threshold)
    return {o.quantity: sign_test(o.z, current, scopes, threshold) for o in zs}, zs, info
