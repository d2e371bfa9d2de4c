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
  - the **unit** residuals around it (independent between units). Units are not all
    equally lumpy (a capital's batches are many polling stations, a remote province's a
    few villages, abroad a few countries): each unit's term is the pooled one times the
    mean ratio of its own residuals to the pooled fit, shrunk towards 1 with the weight
    of :data:`PRIOR_WEIGHT` residuals (empirical Bayes). A unit's deviation persists
    from one batch to its next only in part: the lag-1 correlation ρ of the units'
    standardised residuals (pooled, shrunk towards :data:`PRIOR_PERSISTENCE` with
    :data:`PRIOR_WEIGHT` pairs) makes a remainder of k batches (k = votes to come ÷ the
    unit's largest batch, at least 1) carry A·(ρ + (1 − ρ)/k) of the batch-level term.
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
#: declared priors: SD of the change in the margin's share of the votes to come — shared
#: by all units (5 points) and each unit's own (20 points: a unit's remainder may be a few
#: places unlike the rest; independent between units, so it averages out over many). A
#: single unit (a national series) carries both: √(5² + 20²) ≈ 21 points — a first cut may
#: be far from the end, as Peru 2021's was at 67% counted.
PRIOR_COMMON_MARGIN_SD = 0.05
PRIOR_UNIT_MARGIN_SD = 0.20
#: weight of the prior, in residuals
PRIOR_WEIGHT = 2.0
#: declared prior of the persistence ρ (how much of a unit's batch-level deviation carries
#: over to its next batch) until the count shows pairs of batches: the largest lag-1
#: correlation measured on the real per-unit counts with at least 10 pairs
#: (validation/unit_persistence.py: Peru 2021 runoff departments 0.39, provinces 0.33;
#: 2021 and 2026 first rounds per district 0.00). It was 1 (full persistence) until the
#: ninth session: a remainder of k batches was taken to deviate as much as one batch of
#: the first pair of cuts, which no real count measured does.
PRIOR_PERSISTENCE = 0.4
#: the share of the carried-over trend put in the centre (the rest, and as much again, is
#: uncertainty: "the trend may go on or stop")
TREND_SHARE = 0.5
#: smallest degrees of freedom of the common shock's Student t
MIN_TAIL_DF = 3.0
#: a trend is only learned from stretches holding at least this share of the votes
#: (shorter ones show the make-up of a few places, not where the count is heading)
MIN_LOOKAHEAD_H = 0.05


@dataclass(frozen=True, slots=True)
class VarianceModel:
    """Scalar variance A + B / min(n, n_cap) + S·h², blended with a prior of weight w0:
    n the votes of the block to predict, h its share of the unit's final votes (how far
    ahead the prediction looks). A trend measured over blocks up to ``h_max`` makes the
    error grow like h² up to there, and only like h beyond it (a trend is never
    extrapolated further than it was seen; past that, the drift is a random walk)."""

    a: float
    b: float
    n_cap: float
    n_resid: int
    prior: float
    w0: float = PRIOR_WEIGHT
    s2: float = 0.0
    h_max: float = 1.0  # the longest look-ahead measured: S·h² up to it, linear beyond
    #: False: the prior is not blended into the fit but kept apart as a mixture component
    #: of probability :attr:`prior_prob` (see :meth:`DriftFit.prior_mix`)
    blend: bool = True

    @property
    def prior_prob(self) -> float:
        return 0.0 if self.blend or self.n_resid == 0 else self.w0 / (self.w0 + self.n_resid)

    def at(self, n: np.ndarray | float, h: np.ndarray | float = 0.0,
           a_factor: np.ndarray | float = 1.0) -> np.ndarray:
        n_arr = np.maximum(np.minimum(np.asarray(n, dtype=float), self.n_cap), 1.0)
        h_arr = np.asarray(h, dtype=float)
        hm = max(self.h_max, 1e-9)
        ahead = np.where(h_arr <= hm, h_arr ** 2, hm * h_arr)
        fit = self.a * np.asarray(a_factor, dtype=float) + self.b / n_arr + self.s2 * ahead
        if self.n_resid == 0:
            return np.full(n_arr.shape, self.prior)
        if not self.blend:
            return np.asarray(fit, dtype=float) * np.ones(n_arr.shape)
        return (self.w0 * self.prior + self.n_resid * fit) / (self.w0 + self.n_resid)


@dataclass(frozen=True, slots=True)
class DriftFit:
    """What the count's own history says about the votes still to come."""

    center: np.ndarray  # (U, K) clr gap of each unit's votes to come vs its counted ones
    shape: np.ndarray  # (K, K) clr covariance shape, scaled to unit "share variance"
    common: VarianceModel
    unit: VarianceModel
    tail_df: float | None  # Student t degrees of freedom of the common shock
    n_cuts: int
    n_batches: int
    diagnostics: dict[str, object] = field(default_factory=dict)
    #: "the trend may go on or stop": share variance added to the common term and, per
    #: unit, to the unit term (the centre sits halfway between the two)
    stop_common: float = 0.0
    stop_unit: np.ndarray | None = None
    #: (U,) each unit's own scale of the unit term (1: the pooled fit)
    unit_scale: np.ndarray | None = None
    #: how much of a unit's batch-level deviation persists from one batch to the next
    #: (lag-1 correlation of its residuals, shrunk towards PRIOR_PERSISTENCE): a remainder
    #: of k batches has the batch term A·(ρ + (1 − ρ)/k)
    persistence: float = 1.0
    #: (U,) the largest batch (votes) each unit has shown: k = remaining / it, at least 1
    unit_batch: np.ndarray | None = None
    #: (K, K) votes² — the counted votes themselves may still be corrected: the mean outer
    #: product of the steps between cuts that took votes away from someone (the count's
    #: own corrections, :func:`fit_corrections`); None when the count has shown none
    revision_cov: np.ndarray | None = None
    n_corrections: int = 0

    def common_cov(self, remaining_total: float, counted_total: float) -> np.ndarray:
        h = remaining_total / max(remaining_total + counted_total, 1.0)
        return (float(self.common.at(remaining_total, h)) + self.stop_common) * self.shape

    def prior_mix(self) -> tuple[float, np.ndarray]:
        """The common term's prior kept apart: (probability, clr covariance)."""
        return self.common.prior_prob, self.common.prior * self.shape

    def scattered_factor(self, remaining: np.ndarray, units: np.ndarray) -> np.ndarray:
        """Per-unit multiplier of :attr:`shape` for sheets scattered over their unit
        (held for review): the sampling part of the unit term only (B/n)."""
        return _scattered(self, remaining, units)

    def unit_factor(self, remaining: np.ndarray, counted: np.ndarray,
                    units: np.ndarray | None = None) -> np.ndarray:
        """Per-unit multiplier of :attr:`shape` for the unit's own deviation (``units``:
        the index of each item's unit, for the trend-stop term)."""
        h = remaining / np.maximum(remaining + counted, 1.0)
        extra = 0.0 if self.stop_unit is None or units is None else self.stop_unit[units]
        scale = 1.0 if self.unit_scale is None or units is None else self.unit_scale[units]
        a_factor: np.ndarray | float = 1.0
        if self.unit_batch is not None and units is not None and self.persistence < 1.0:
            k = np.maximum(1.0, remaining / np.maximum(self.unit_batch[units], 1.0))
            a_factor = self.persistence + (1.0 - self.persistence) / k
        return scale * self.unit.at(remaining, h, a_factor) + extra


def _scattered(fit: DriftFit, remaining: np.ndarray, units: np.ndarray) -> np.ndarray:
    """The unit term of sheets scattered over a unit (not a place arriving): only the
    part that shrinks with their votes (B/n, each unit's own scale), no lumpiness A and no
    look-ahead."""
    scale = 1.0 if fit.unit_scale is None else fit.unit_scale[units]
    return scale * fit.unit.at(remaining, 0.0, 0.0)


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
        if q.size >= 3 and np.ptp(x) > 1e-6 * float(x.mean()):
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


#: a step whose corrections take away more than this share of the counted votes is a
#: broken cut (as :func:`escrutinio.projection.units.clean_series` treats a series), not a
#: correction
MAX_CORRECTION_SHARE = 0.01


def fit_corrections(cum: np.ndarray) -> tuple[np.ndarray | None, int]:
    """The count's own corrections: (K × K covariance in votes², number of steps).

    ``cum``: (J, U, K) cumulative votes per cut, unit and candidate (NaN: the unit is not in
    that cut). A **correction step** is a step between successive cuts in which at least
    one unit took votes away from at least one candidate (a recount, a sheet pulled for
    review, a duplicated upload removed); its vector is the sum over those units of their
    whole step (what they removed and what they added in the same step: the two cannot be
    told apart). Steps that remove more than :data:`MAX_CORRECTION_SHARE` of the counted
    votes are broken cuts and left out. The rule is "one more correction like those this
    count has shown": the mean outer product of the correction vectors — zero-mean, so
    that it widens the result without moving it. None without corrections (nothing is
    assumed of a count that has never corrected itself)."""
    cum = np.asarray(cum, dtype=float)
    if cum.shape[0] < 2:
        return None, 0
    steps = np.diff(cum, axis=0)  # (J-1, U, K)
    fin = np.isfinite(steps).all(axis=2) & np.isfinite(cum[:-1]).all(axis=2)
    took = fin & (np.where(fin[:, :, None], steps, 0.0) < 0).any(axis=2)
    vec = np.where(took[:, :, None], np.nan_to_num(steps), 0.0).sum(axis=1)  # (J-1, K)
    removed = -np.where(took[:, :, None] & (steps < 0), steps, 0.0).sum(axis=(1, 2))
    base = np.nansum(cum[:-1], axis=(1, 2))
    ev = took.any(axis=1) & (removed <= MAX_CORRECTION_SHARE * np.maximum(base, 1.0))
    if not ev.any():
        return None, 0
    v = vec[ev]
    return (v.T @ v) / v.shape[0], int(ev.sum())


def fit_drift(cum: np.ndarray, *, reference: np.ndarray | None = None,
              remaining: np.ndarray | None = None,
              unit_prior_cov: np.ndarray | None = None,
              window_share: float = WINDOW_SHARE) -> DriftFit:
    """Learn the late-count drift from the cumulative votes of successive cuts.

    ``cum``: (J, U, K) cumulative votes per cut (oldest first; the last is "now"), unit and
    candidate; NaN where a unit is missing from a cut. ``reference``: the shares used to
    weigh candidates in the scalar variance (default: the national counted shares now).
    ``remaining``: (U,) votes each unit still has to count (sizes the look-ahead term).
    ``unit_prior_cov``: a clr covariance that replaces the declared prior of the unit
    term (the per-unit model passes the spread of the swing between units when a
    baseline is given: the count's own evidence before it has any history).
    """
    cum = np.asarray(cum, dtype=float)
    n_cuts, n_units, k = cum.shape
    now = cum[-1]
    tot_now = np.nansum(now, axis=0)
    p_ref = reference if reference is not None else tot_now / max(tot_now.sum(), 1.0)
    jac = _share_jacobian(np.asarray(p_ref, dtype=float))
    prior_shape = _prior_shape(k, jac)
    q_common0 = _margin_var_to_q(PRIOR_COMMON_MARGIN_SD) + (
        _margin_var_to_q(PRIOR_UNIT_MARGIN_SD) if n_units == 1 else 0.0)
    # one unit (a national series): everything is common, no separate unit term
    q_unit0 = _margin_var_to_q(PRIOR_UNIT_MARGIN_SD) if n_units > 1 else 0.0
    if unit_prior_cov is not None and n_units > 1:
        q_unit0 = float(np.trace(jac @ unit_prior_cov @ jac.T))

    # batches between successive cuts, per unit: sizes, clr levels; corrections skipped
    batches = np.diff(cum, axis=0) if n_cuts > 1 else np.zeros((0, n_units, k))
    size = np.nansum(batches, axis=2)
    ok = (np.isfinite(batches).all(axis=2) & (batches >= 0).all(axis=2)
          & (size >= MIN_BATCH_VOTES)
          & np.isfinite(cum[:-1]).all(axis=2) & (np.nansum(cum[:-1], axis=2) > 0))
    level = la.clr(np.where(np.isfinite(batches) & (batches >= 0), batches, 0.0).reshape(-1, k)
                   ).reshape(batches.shape) if batches.size else batches
    if batches.size:
        level = np.where(ok[:, :, None], level, 0.0)
    w = np.where(ok, size, 0.0)

    # prefix sums over cuts: votes and vote-weighted clr levels of the batches
    pw = np.concatenate([np.zeros((1, n_units)), np.cumsum(w, axis=0)])
    pl_ = np.concatenate([np.zeros((1, n_units, k)),
                          np.cumsum(level * w[:, :, None], axis=0)])

    # each unit's recent-batch gap at every cut (J, U, K): its batches before the cut
    # (batch i ends at cut i + 1), newest first until they hold ``window_share`` of its
    # counted votes then, against its cumulative then; window starts by binary search on
    # the (non-decreasing) prefix sums
    base_all = np.where(np.isfinite(cum), cum, 0.0)
    target = np.maximum(window_share * base_all.sum(axis=2), 1e-9)
    thr = pw - target
    start = np.empty((n_cuts, n_units), dtype=np.int64)
    for u in range(n_units):  # one vectorised search per unit (units x cuts)
        start[:, u] = np.searchsorted(pw[:, u], thr[:, u], side="right") - 1
    start = np.clip(start, 0, np.arange(n_cuts)[:, None])
    cols = np.arange(n_units)[None, :]
    wsum = pw - pw[start, cols]
    lsum = pl_ - pl_[start, cols]
    zb_all = la.clr(base_all.reshape(-1, k)).reshape(base_all.shape)
    centres = np.zeros((n_cuts, n_units, k))
    np.divide(lsum - zb_all * wsum[:, :, None], wsum[:, :, None], out=centres,
              where=wsum[:, :, None] > 0)

    def centre(upto: int) -> np.ndarray:
        return centres[upto]

    # one-step-ahead: the rule at cut i predicts batch i (cut i -> i + 1) from the cuts
    # before it; what it got wrong sizes every error term
    preds: list[np.ndarray] = []
    real: list[np.ndarray] = []
    wts: list[np.ndarray] = []
    uids: list[np.ndarray] = []
    for i in range(batches.shape[0]):
        sel = ok[i]
        if not sel.any():
            continue
        base = cum[i]
        uids.append(np.flatnonzero(sel))
        preds.append(centre(i)[sel])
        real.append(level[i][sel] - la.clr(base[sel]))
        wts.append(w[i][sel])

    def qs(r: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", r @ jac.T, r @ jac.T)

    def fit_carry(p_list: list[np.ndarray], r_list: list[np.ndarray],
                  w_list: list[np.ndarray], n_eff: float | None = None) -> float | None:
        """λ of r ≈ λ·p over out-of-sample predictions (ridge towards 0, the naive
        centre, of PRIOR_WEIGHT predictions against ``n_eff`` independent ones), clipped
        to [0, 1]; None without predictions."""
        if not p_list:
            return None
        pr, rl, wa = np.concatenate(p_list), np.concatenate(r_list), np.concatenate(w_list)
        jp, jr = pr @ jac.T, rl @ jac.T
        pp = float((wa * np.einsum("ij,ij->i", jp, jp)).sum())
        if pp <= 0:
            return 0.0
        ridge = PRIOR_WEIGHT * pp / (n_eff or len(p_list))
        return float(np.clip((wa * np.einsum("ij,ij->i", jp, jr)).sum() / (pp + ridge),
                             0.0, 1.0))

    # look-ahead blocks: from each earlier cut, everything counted since (to now)
    rem = np.zeros(n_units) if remaining is None else np.asarray(remaining, dtype=float)
    final_u = np.nansum(now, axis=1) + rem
    blk: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    if n_cuts > 2:
        blocks = now[None] - cum[:-1]
        bsize = np.nansum(blocks, axis=2)
        okb = (np.isfinite(blocks).all(axis=2) & (blocks >= 0).all(axis=2)
               & (bsize >= MIN_BATCH_VOTES) & np.isfinite(cum[:-1]).all(axis=2)
               & (np.nansum(cum[:-1], axis=2) > 0))
        for i in range(n_cuts - 1):
            sel = okb[i]
            if not sel.any():
                continue
            gap = la.clr(np.maximum(blocks[i][sel], 0.0)) - la.clr(cum[i][sel])
            blk.append((gap, centre(i)[sel], bsize[i][sel],
                        bsize[i][sel] / np.maximum(final_u[sel], 1.0), sel))
    # how much of a unit's recent-batch gap carried over: to its next batch, and over
    # stretches of at least MIN_LOOKAHEAD_H of its votes; the smaller is used (a trend
    # is only extrapolated as far as it has held)
    carry = carry_one = fit_carry(preds, real, wts) or 0.0
    long_ = [(g[h >= MIN_LOOKAHEAD_H], pd[h >= MIN_LOOKAHEAD_H], wb[h >= MIN_LOOKAHEAD_H])
             for g, pd, wb, h, _ in blk if (h >= MIN_LOOKAHEAD_H).any()]
    # blocks that all end now overlap: as many independent ones as the longest spans
    # MIN_LOOKAHEAD_H stretches
    h_max = max((float(h.max()) for *_, h, _ in blk), default=0.0)
    carry_long = fit_carry([x[1] for x in long_], [x[0] for x in long_],
                           [x[2] for x in long_], n_eff=max(1.0, h_max / MIN_LOOKAHEAD_H))
    if carry_long is not None:
        carry = min(carry, carry_long)
    # the trend may go on (the full carry-over) or stop (the counted shares): the centre
    # is halfway, and the half-gap is one SD of the common and unit terms
    center = TREND_SHARE * carry * centre(n_cuts - 1)
    common_r: list[np.ndarray] = []
    common_n: list[float] = []
    common_w: list[np.ndarray] = []
    unit_r: list[np.ndarray] = []
    unit_n: list[np.ndarray] = []
    unit_id: list[np.ndarray] = []
    for pred, gap0, wi, ui in zip(preds, real, wts, uids, strict=True):
        gap = gap0 - carry * pred
        mean = (gap * wi[:, None]).sum(0) / wi.sum()
        common_r.append(mean)
        common_n.append(float(wi.sum()))
        common_w.append(wi)
        if wi.size > 1:
            unit_r.append(gap - mean)
            unit_n.append(wi)
            unit_id.append(ui)

    cr = np.array(common_r).reshape(-1, k)
    cn = np.array(common_n)
    ur = np.concatenate(unit_r) if unit_r else np.zeros((0, k))
    un = np.concatenate(unit_n) if unit_n else np.zeros(0)
    a_u, b_u = _fit_ab(qs(ur), un)
    # each unit's own lumpiness: the ratio of its residuals to the pooled fit, shrunk
    # towards 1 with the weight of PRIOR_WEIGHT residuals (empirical Bayes)
    unit_scale = np.ones(n_units)
    if ur.shape[0]:
        ui_all = np.concatenate(unit_id)
        fit_all = np.maximum(a_u + b_u / np.maximum(un, 1.0), 1e-12)
        ratio = qs(ur) / fit_all
        cnt = np.bincount(ui_all, minlength=n_units).astype(float)
        tot = np.bincount(ui_all, weights=ratio, minlength=n_units)
        unit_scale = (PRIOR_WEIGHT + tot) / (PRIOR_WEIGHT + cnt)
    # persistence: lag-1 correlation of each unit's standardised residuals (jac metric),
    # pooled over units, shrunk towards the declared PRIOR_PERSISTENCE with PRIOR_WEIGHT
    # pairs
    persistence = PRIOR_PERSISTENCE
    rho_raw: float | None = None
    n_pairs = 0
    unit_batch = None
    if ur.shape[0]:
        ui_all = np.concatenate(unit_id)
        cut_all = np.concatenate([np.full(u.size, i) for i, u in enumerate(unit_id)])
        fit_all = np.maximum(a_u + b_u / np.maximum(un, 1.0), 1e-12)
        zr = (ur @ jac.T) / np.sqrt(fit_all)[:, None]
        grid = np.full((len(unit_id), n_units, k), np.nan)
        grid[cut_all, ui_all] = zr
        x, y = grid[:-1].reshape(-1, k), grid[1:].reshape(-1, k)
        both = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
        m = int(both.sum())
        if m:
            xy = float(np.einsum("ij,ij->", x[both], y[both]))
            xx = float(np.einsum("ij,ij->", x[both], x[both]))
            yy = float(np.einsum("ij,ij->", y[both], y[both]))
            rho = float(np.clip(xy / max(np.sqrt(xx * yy), 1e-300), 0.0, 1.0))
            persistence = (PRIOR_WEIGHT * PRIOR_PERSISTENCE + m * rho) / (PRIOR_WEIGHT + m)
            rho_raw = rho
            n_pairs = m
        unit_batch = np.zeros(n_units)
        np.maximum.at(unit_batch, ui_all, un)
    if ur.shape[0]:
        # several units: a cut's common residual is the shared shift plus the vote-weighted
        # mean of the units' own deviations; only the excess is shared (moments)
        own = np.array([float((wi ** 2 * (a_u + b_u / np.maximum(wi, 1.0))).sum()
                              / wi.sum() ** 2) for wi in common_w])
        a_c, b_c = float(max(0.0, np.mean(qs(cr) - own))), 0.0
    else:  # one unit (a national series): the batch's own spread, shrinking with its size
        a_c, b_c = _fit_ab(qs(cr), cn)
    # look-ahead error: what the batch-level terms do not already explain, against how
    # far ahead the rule looked (h = the block's share of the unit's final votes); a
    # trend that goes on makes the error grow like h
    s2_c = s2_u = 0.0
    hmax_c = hmax_u = 1.0
    cap_c = float(cn.max()) if cn.size else 1.0
    cap_u = float(un.max()) if un.size else 1.0
    # the fitted batch-level terms alone (no prior, no look-ahead): what a block of n votes
    # is expected to show before any trend
    vc_model = VarianceModel(a_c, b_c, cap_c, 1, 0.0, w0=0.0)
    vu_model = VarianceModel(a_u, b_u, cap_u, 1, 0.0, w0=0.0)
    if blk:
        hq_c: list[tuple[float, float]] = []
        hq_u: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for gap0, pd, wi, hb, sel in blk:
            gap = gap0 - carry * pd
            mean = (gap * wi[:, None]).sum(0) / wi.sum()
            # what the units' own batch terms expect of this stretch, each unit with its
            # own lumpiness (a small, lumpy unit's stretch is not a trend building up)
            exp_u = unit_scale[sel] * vu_model.at(wi)
            own_i = float((wi ** 2 * exp_u).sum() / wi.sum() ** 2) if ur.shape[0] else 0.0
            exp_c = float(vc_model.at(float(wi.sum()))) + own_i
            hq_c.append((float(wi.sum() / max(final_u[sel].sum(), 1.0)),
                         float(qs(mean[None])[0]) - exp_c))
            if sel.sum() > 1:
                hq_u.append((hb, qs(gap - mean) - exp_u, exp_u))
        # the excess of each block over the batch-level terms is noisy around zero when
        # nothing builds up: it is averaged first and the fitted S clipped at 0 (clipping
        # each block's excess kept the positive half of the noise, a look-ahead term even
        # for a count with none — short histories showed it most). Per unit each excess
        # weighs by the inverse of its expected variance, as the batch terms' fit does: a
        # stretch of a few mesas in a small unit is noise, not a trend, however far it
        # reaches into that unit
        if hq_c:
            h, q = np.array(hq_c).T
            hmax_c = float(h.max())
            q = np.where(h >= MIN_LOOKAHEAD_H, q, 0.0)
            h = np.where(h >= MIN_LOOKAHEAD_H, h, 0.0)
            s2_c = max(0.0, float((q * h ** 2).sum() / max((h ** 4).sum(), 1e-300)))
        if hq_u:
            h = np.concatenate([x[0] for x in hq_u])
            q = np.concatenate([x[1] for x in hq_u])
            ev = np.concatenate([x[2] for x in hq_u])
            wq = (h >= MIN_LOOKAHEAD_H) / np.maximum(ev, 1e-9) ** 2
            hmax_u = float(h.max())
            s2_u = max(0.0, float((wq * q * h ** 2).sum() / max((wq * h ** 4).sum(), 1e-300)))
    # shape: the residuals' own covariance (each scaled to unit share variance), blended
    # with the isotropic prior shape
    shape = prior_shape * PRIOR_WEIGHT
    allr = np.concatenate([cr, ur])
    if allr.shape[0]:
        qa = np.maximum(qs(allr), 1e-12)
        emp = (allr / np.sqrt(qa)[:, None]).T @ (allr / np.sqrt(qa)[:, None])
        shape = shape + emp
    shape = shape / max(float(np.trace(jac @ shape @ jac.T)), 1e-12)
    common = VarianceModel(a_c, b_c, cap_c, int(cr.shape[0]), q_common0, s2=s2_c,
                           h_max=hmax_c, blend=n_units > 1)
    unit = VarianceModel(a_u, b_u, cap_u, int(ur.shape[0]), q_unit0, s2=s2_u, h_max=hmax_u)
    tail = max(MIN_TAIL_DF, cr.shape[0] + PRIOR_WEIGHT) if cr.shape[0] else None
    diag: dict[str, object] = {
        "n_cuts": int(n_cuts), "n_batches": int(ok.sum()),
        "n_common_residuals": int(cr.shape[0]), "n_unit_residuals": int(ur.shape[0]),
        "carry": carry, "carry_next_batch": carry_one, "carry_long": carry_long,
        "common_a": a_c, "common_b": b_c, "unit_a": a_u, "unit_b": b_u,
        "common_lookahead": s2_c, "unit_lookahead": s2_u,
        "common_lookahead_h_max": hmax_c, "unit_lookahead_h_max": hmax_u,
        "unit_prior_q": q_unit0,
        "prior_mixture_prob": common.prior_prob,
        "center_share_shift_max": float(np.abs(center @ jac.T).max()) if center.size else 0.0,
    }
    wr = np.maximum(rem, 0.0)
    mean_c = (center * wr[:, None]).sum(0) / wr.sum() if wr.sum() > 0 else np.zeros(k)
    stop_common = float(qs(mean_c[None])[0])
    stop_unit = qs(center - mean_c) if n_units > 1 else np.zeros(n_units)
    diag["trend_stop_sd_margin_share"] = float(np.sqrt(2 * stop_common))
    diag["unit_scale_range"] = [float(unit_scale.min()), float(unit_scale.max())]
    diag["unit_persistence"] = persistence
    diag["unit_persistence_measured"] = rho_raw
    diag["unit_persistence_pairs"] = n_pairs
    rev_cov, n_corr = fit_corrections(cum)
    diag["corrections"] = n_corr
    if rev_cov is not None:
        top = np.argsort(-tot_now, kind="stable")
        ia, ib = int(top[0]), int(top[min(1, k - 1)])
        diag["correction_margin_sd"] = float(np.sqrt(max(
            rev_cov[ia, ia] + rev_cov[ib, ib] - 2 * rev_cov[ia, ib], 0.0)))
    return DriftFit(center, shape, common, unit, tail, int(n_cuts), int(ok.sum()), diag,
                    stop_common, stop_unit, unit_scale, persistence, unit_batch,
                    rev_cov, n_corr)


def fit_volume(valid: np.ndarray, actas: np.ndarray,
               remaining: np.ndarray | None = None) -> np.ndarray:
    """The centre of the log of valid votes per acta still to come against the counted
    ones, per unit: the same rule as the shares' (:func:`fit_drift`), applied to the
    two-part composition (valid votes, actas). Late actas often hold fewer votes
    (abroad, small remote mesas, sheets under review; Peru 2021: 134-150 valid votes per
    acta in the batches counted after 93% against 208 in all counted before), and the
    count shows it batch after batch. ``valid``, ``actas``: (J, U) cumulative, oldest
    first; ``remaining``: (U,) valid votes still to come. Returns (U,) log shifts (0
    without history)."""
    valid = np.asarray(valid, dtype=float)
    actas = np.asarray(actas, dtype=float)
    if valid.shape[0] < 2:
        return np.zeros(valid.shape[1])
    gone = ~(np.isfinite(valid) & np.isfinite(actas))
    valid = np.where(gone, np.nan, valid)
    actas = np.where(gone, np.nan, actas)
    tot_v, tot_a = np.nansum(valid[-1]), np.nansum(actas[-1])
    scale = tot_v / tot_a if tot_a > 0 and tot_v > 0 else 1.0
    cum = np.stack([valid, actas * scale], axis=2)
    rem = None if remaining is None else 2.0 * np.asarray(remaining, dtype=float)
    fit = fit_drift(cum, reference=np.array([0.5, 0.5]), remaining=rem)
    shift = fit.center[:, 0] - fit.center[:, 1]
    return np.where(np.isfinite(shift) & ~gone[-1], shift, 0.0)


#: declared prior SD of the log of valid votes per acta still to come vs counted (10%)
PRIOR_TURNOUT_DRIFT_SD = 0.10


@dataclass(frozen=True, slots=True)
class TurnoutDrift:
    """Variances (log scale) of the valid votes per acta still to come against the
    unit's counted ones: shared by all units (``common``) and per unit (``unit``)."""

    common: float
    unit: float
    n_resid: int


def fit_turnout(valid: np.ndarray, actas: np.ndarray) -> TurnoutDrift:
    """From (J, U) cumulative valid votes and actas with votes per cut: how the valid
    votes per acta of each batch differed from those counted before it (no centre: the
    volume of what is to come is the unit's own rate; only the spread is learned)."""
    valid = np.asarray(valid, dtype=float)
    actas = np.asarray(actas, dtype=float)
    prior = PRIOR_TURNOUT_DRIFT_SD ** 2
    if valid.shape[0] < 2:
        return TurnoutDrift(prior, prior, 0)
    dv, da = np.diff(valid, axis=0), np.diff(actas, axis=0)
    ok = (np.isfinite(dv) & np.isfinite(da) & (dv >= MIN_BATCH_VOTES) & (da >= 1)
          & np.isfinite(valid[:-1]) & (valid[:-1] > 0) & (actas[:-1] > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.log(dv / da) - np.log(valid[:-1] / actas[:-1])
    w = np.where(ok, dv, 0.0)
    gap = np.where(ok, gap, 0.0)
    steps = w.sum(axis=1) > 0
    if not steps.any():
        return TurnoutDrift(prior, prior, 0)
    mean = (gap * w).sum(axis=1)[steps] / w.sum(axis=1)[steps]
    dev = (gap[steps] - mean[:, None]) ** 2
    n_c = int(steps.sum())
    n_u = int(ok[steps].sum())
    common = (PRIOR_WEIGHT * prior + (mean ** 2).sum()) / (PRIOR_WEIGHT + n_c)
    unit = (PRIOR_WEIGHT * prior + (dev * w[steps]).sum() / max(w[steps].sum(), 1.0) * n_u
            ) / (PRIOR_WEIGHT + n_u)
    return TurnoutDrift(float(common), float(unit), n_c)
