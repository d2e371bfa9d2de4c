"""Late-count drift, learned from the count itself (docs/projection.md §3).

*Deriva del conteo tardío, aprendida del propio conteo.*

Votes counted late differ from votes counted early (cities first and remote areas last;
abroad, observed actas and mail ballots last). What any count shows, cut after cut, is
how each **batch** of newly counted votes differed from what had been counted before it.
This module turns that record into the one thing a projection needs: how the part of a
unit still to come may differ from the part already counted, and how sure anyone can be.

For unit *u* (an area of a per-unit table, or the whole country in a national series)
and two successive cuts, the batch is B = C(t) − C(t−1) (votes per candidate). Shares are
compared as centred log-ratios (clr, Aitchison 1986).

* **Centre** — the *recent-batch gap*: over the most recent batches (at least one cut and
  at least :data:`WINDOW_SHARE` of the counted votes), the vote-weighted mean of
  clr(batch) − clr(C_u now), pooled over units. It says how the newest votes differ from
  everything counted so far; the part still to come is expected to differ the same way
  (a trend that continues; what it does instead is in the error below). Without history
  the centre is 0: the unit's counted shares (the naive per-unit extrapolation).
* **Errors, sized out of sample** — the same rule is applied at every earlier cut, using
  only the cuts before it, to predict the batch that then arrived. Its residuals are what
  the rule gets wrong on this count, and nothing else sizes the error:
  - the **common** residual of a cut (vote-weighted over units: shared by every unit,
    the national shock);
  - the **unit** residuals around it (independent between units).
  Each is a scalar variance that may shrink with the size of a batch, A + B/n (n its
  votes; fitted by non-negative weighted least squares), times a K × K shape (the
  residuals' own covariance, blended with an isotropic prior shape). The part still to
  come is one batch of R votes, with n = min(R, the largest batch seen): the model never
  assumes more averaging than the count has shown.
* **Prior** — a declared prior (:data:`PRIOR_COMMON_MARGIN_SD`,
  :data:`PRIOR_UNIT_MARGIN_SD`, weight :data:`PRIOR_WEIGHT` residuals) keeps the first
  cuts honest; it is the whole answer when there is no earlier cut.
* **Tails** — with few common residuals the common shock is a Student t with
  ν = residuals + prior weight degrees of freedom (never below :data:`MIN_TAIL_DF`): a
  count that has shown little cannot rule out a large late shift.

No term is sized from how different areas are from one another: only from how well this
rule, applied to this count, predicted what came next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from escrutinio.projection import linalg as la

#: smallest batch (votes) that enters the residuals (smaller ones are rounding noise)
MIN_BATCH_VOTES = 20.0
#: the recent batches behind the centre hold at least this share of the counted votes
WINDOW_SHARE = 0.05
#: declared prior SD of the change in the margin's share of the votes to come (common,
#: i.e. shared by all units) — 5 points; and per unit — 8 points
PRIOR_COMMON_MARGIN_SD = 0.05
PRIOR_UNIT_MARGIN_SD = 0.08
#: weight of the prior, in residuals
PRIOR_WEIGHT = 2.0
#: smallest degrees of freedom of the common shock's Student t
MIN_TAIL_DF = 3.0


@dataclass(frozen=True, slots=True)
class VarianceModel:
    """Scalar variance A + B / min(n, n_cap), blended with a prior of weight w0."""

    a: float
    b: float
    n_cap: float
    n_resid: int
    prior: float
    w0: float = PRIOR_WEIGHT

    def at(self, n: np.ndarray | float) -> np.ndarray:
        n_arr = np.maximum(np.minimum(np.asarray(n, dtype=float), self.n_cap), 1.0)
        fit = self.a + self.b / n_arr
        if self.n_resid == 0:
            return np.full(n_arr.shape, self.prior)
        return (self.w0 * self.prior + self.n_resid * fit) / (self.w0 + self.n_resid)


@dataclass(frozen=True, slots=True)
class DriftFit:
    """What the count's own history says about the votes still to come."""

    center: np.ndarray  # (K,) clr gap of the votes to come vs the counted ones
    shape: np.ndarray  # (K, K) clr covariance shape, scaled to unit "share variance"
    common: VarianceModel
    unit: VarianceModel
    tail_df: float | None  # Student t degrees of freedom of the common shock
    n_cuts: int
    n_batches: int
    diagnostics: dict[str, object] = field(default_factory=dict)

    def common_cov(self, remaining_total: float) -> np.ndarray:
        return float(self.common.at(remaining_total)) * self.shape

    def unit_factor(self, remaining: np.ndarray) -> np.ndarray:
        """Per-unit multiplier of :attr:`shape` for the unit's own deviation."""
        return self.unit.at(remaining)


def _share_jacobian(p: np.ndarray) -> np.ndarray:
    return np.diag(p) - np.outer(p, p)


def _prior_shape(k: int, jac: np.ndarray) -> np.ndarray:
    s = np.eye(k) - 1.0 / k
    return s / max(float(np.trace(jac @ s @ jac.T)), 1e-12)


def _margin_var_to_q(sd: float) -> float:
    """A prior on the SD of the margin's share (two candidates: twice a share) as the
    "share variance" q = ‖J r‖² used throughout (two candidates: q = margin² / 2)."""
    return sd * sd / 2.0


def _fit_ab(q: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Non-negative weighted least squares of q ≈ A + B/n (two passes, weights 1/fit²)."""
    if q.size == 0:
        return 0.0, 0.0
    x = 1.0 / np.maximum(n, 1.0)
    w = np.ones_like(q)
    a = b = 0.0
    for _ in range(2):
        sw = w.sum()
        if q.size >= 3 and np.ptp(x) > 0:
            xm, qm = (w * x).sum() / sw, (w * q).sum() / sw
            sxx = (w * (x - xm) ** 2).sum()
            b = (w * (x - xm) * (q - qm)).sum() / sxx if sxx > 0 else 0.0
            a = qm - b * xm
            if a < 0:
                a, b = 0.0, float((w * x * q).sum() / max((w * x * x).sum(), 1e-300))
            if b < 0:
                a, b = float((w * q).sum() / sw), 0.0
        else:
            a, b = float((w * q).sum() / sw), 0.0
        fit = np.maximum(a + b * x, 1e-12)
        w = 1.0 / fit ** 2
    return float(max(a, 0.0)), float(max(b, 0.0))


def fit_drift(cum: np.ndarray, *, reference: np.ndarray | None = None,
              window_share: float = WINDOW_SHARE) -> DriftFit:
    """Learn the late-count drift from the cumulative votes of successive cuts.

    ``cum``: (J, U, K) cumulative votes per cut (oldest first; the last is "now"), unit and
    candidate; NaN where a unit is missing from a cut. ``reference``: the shares used to
    weigh candidates in the scalar variance (default: the national counted shares now).
    """
    cum = np.asarray(cum, dtype=float)
    n_cuts, n_units, k = cum.shape
    now = cum[-1]
    tot_now = np.nansum(now, axis=0)
    p_ref = reference if reference is not None else tot_now / max(tot_now.sum(), 1.0)
    jac = _share_jacobian(np.asarray(p_ref, dtype=float))
    prior_shape = _prior_shape(k, jac)
    q_common0 = _margin_var_to_q(PRIOR_COMMON_MARGIN_SD)
    q_unit0 = _margin_var_to_q(PRIOR_UNIT_MARGIN_SD)

    # batches between successive cuts, per unit: sizes, clr levels; corrections skipped
    batches = np.diff(cum, axis=0) if n_cuts > 1 else np.zeros((0, n_units, k))
    size = np.nansum(batches, axis=2)
    ok = (np.isfinite(batches).all(axis=2) & (batches >= 0).all(axis=2)
          & (size >= MIN_BATCH_VOTES)
          & np.isfinite(cum[:-1]).all(axis=2) & (np.nansum(cum[:-1], axis=2) > 0))
    level = la.clr(np.where(np.isfinite(batches), batches, 0.0).reshape(-1, k)
                   ).reshape(batches.shape) if batches.size else batches
    w = np.where(ok, size, 0.0)

    def centre(upto: int, base: np.ndarray) -> np.ndarray:
        """Recent-batch gap with the batches before cut ``upto`` (exclusive; batch i
        ends at cut i + 1) against the cumulative ``base`` (U, K)."""
        if upto <= 0:
            return np.zeros(k)
        zb = la.clr(np.where(np.isfinite(base), base, 0.0))
        counted = float(np.nansum(base))
        acc = 0.0
        num = np.zeros(k)
        den = 0.0
        for i in range(upto - 1, -1, -1):  # cuts, newest first (a few hundred at most)
            wi = w[i]
            if wi.sum() <= 0:
                continue
            num += ((level[i] - zb) * wi[:, None]).sum(0)
            den += wi.sum()
            acc += wi.sum()
            if acc >= window_share * counted:
                break
        return num / den if den > 0 else np.zeros(k)

    # one-step-ahead residuals: the rule at cut i predicts batch i (cut i -> i + 1)
    common_r: list[np.ndarray] = []
    common_n: list[float] = []
    unit_r: list[np.ndarray] = []
    unit_n: list[np.ndarray] = []
    for i in range(batches.shape[0]):
        sel = ok[i]
        if not sel.any():
            continue
        base = cum[i]
        pred = centre(i, base)
        gap = level[i][sel] - la.clr(base[sel]) - pred  # (u, K)
        wi = w[i][sel]
        mean = (gap * wi[:, None]).sum(0) / wi.sum()
        common_r.append(mean)
        common_n.append(float(wi.sum()))
        if sel.sum() > 1:
            unit_r.append(gap - mean)
            unit_n.append(wi)
    center = centre(batches.shape[0], now)

    def qs(r: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", r @ jac.T, r @ jac.T)

    cr = np.array(common_r).reshape(-1, k)
    cn = np.array(common_n)
    ur = np.concatenate(unit_r) if unit_r else np.zeros((0, k))
    un = np.concatenate(unit_n) if unit_n else np.zeros(0)
    a_c, b_c = _fit_ab(qs(cr), cn)
    a_u, b_u = _fit_ab(qs(ur), un)
    # shape: the residuals' own covariance (each scaled to unit share variance), blended
    shape = prior_shape * PRIOR_WEIGHT
    allr = np.concatenate([cr, ur])
    if allr.shape[0]:
        qa = np.maximum(qs(allr), 1e-12)
        emp = (allr / np.sqrt(qa)[:, None]).T @ (allr / np.sqrt(qa)[:, None])
        shape = shape + emp
    shape = shape / max(float(np.trace(jac @ shape @ jac.T)), 1e-12)
    common = VarianceModel(a_c, b_c, float(cn.max()) if cn.size else 1.0, int(cr.shape[0]),
                           q_common0)
    unit = VarianceModel(a_u, b_u, float(un.max()) if un.size else 1.0, int(ur.shape[0]),
                         q_unit0)
    tail = max(MIN_TAIL_DF, cr.shape[0] + PRIOR_WEIGHT) if cr.shape[0] else None
    diag: dict[str, object] = {
        "n_cuts": int(n_cuts), "n_batches": int(ok.sum()),
        "n_common_residuals": int(cr.shape[0]), "n_unit_residuals": int(ur.shape[0]),
        "common_a": a_c, "common_b": b_c, "unit_a": a_u, "unit_b": b_u,
        "center_margin_share_shift": float(np.abs(jac @ center).sum() / 2 * 2)
        if k > 1 else 0.0,
    }
    return DriftFit(center, shape, common, unit, tail, int(n_cuts), int(ok.sum()), diag)


def stack_cuts(frames_votes: list[dict[str, np.ndarray]], codes: list[str], k: int
               ) -> np.ndarray:
    """(J, U, K) cumulative votes for the units ``codes`` from per-cut mappings
    unit_code -> votes (K,); NaN where a cut lacks the unit."""
    out = np.full((len(frames_votes), len(codes), k), np.nan)
    pos = {c: i for i, c in enumerate(codes)}
    for j, fv in enumerate(frames_votes):
        for code, v in fv.items():
            i = pos.get(code)
            if i is not None:
                out[j, i] = v
    return out
