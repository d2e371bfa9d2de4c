"""Arrival order of actas, rebuilt from what was published while the count went on.

A per-acta replay needs to know which actas were in the count at each published cut.
Authorities publish national cuts (how many actas were processed, the running totals)
and, less often, per-unit progress (how many actas of each district were processed) and
per-acta states; nobody publishes arrival times. This module derives one arrival order
that agrees with all of them, and says how far it has to guess.

The derivation (every step deterministic from ``seed``)
--------------------------------------------------------
Positions are measured on the **count scale**: the number of actas processed
(contabilizadas + at the JEE) nationally. A national cut at time τ sits at N(τ); a unit
snapshot at time T sits at N(T), linearly interpolated in time between the two national
cuts around it (clamped to the first/last cut); a per-acta state sits at its own number
of processed actas.

1. **Bounds from per-acta states (exact).** An acta processed in a state at position P
   arrived at or before P (``hi = min(hi, P)``); one still pending arrived after it
   (``lo = max(lo, P)``).
2. **Bounds from unit progress (counts, not identities).** For a unit snapshot at T
   (finest level first when several share a time), in each unit: the actas already bound
   to be in (``hi <= N(T)``) are in; those bound to be out (``lo >= N(T)``) are out; of
   the undetermined rest, as many as the unit's count requires are taken, **at random
   within the unit** (a seeded key), and get ``hi = N(T)``; the others get ``lo = N(T)``.
   When a national cut exists at T, the actas of units the snapshot does not cover (in
   Peru 2021: abroad) form one more unit whose count is national − Σ units.
3. **Position inside the bounds.** Each acta gets u = lo + q·(hi − lo), where q is its
   rank quantile, among the actas sharing its (lo, hi), of the key
   γ·s + √(1 − γ²)·Z: Z is seeded noise and s a standardised **geographic score** — the
   final log-odds of the first candidate against the second in the acta's ``tilt_by``
   area (district by default). γ = 0 spreads arrivals at random inside their bounds;
   γ ≠ 0 makes places that lean one way arrive earlier, which is what real counts do
   (cities first). γ is the single fitted number: the value on a grid that best
   reproduces the published national running margin at every cut (least squares).
   Because s is the same for every acta of an area, the order *within* an area stays
   random: a replay built this way tests a model against geographic selection, not
   against selection on each acta's own outcome (pass ``tilt_by="acta_id"`` for that
   harsher stress test).
4. **Arrival rank** = order of u (ties by Z). The actas in the count at a national cut
   are exactly the first N(τ) of them, so every rebuilt cut has the published number of
   processed actas.
5. **JEE route.** An acta that went to the electoral court (resolved in the final data,
   annulled, or at the JEE in any state) is at the JEE from its arrival until its
   resolution: the position of the first state that shows it resolved, else after the
   last cut. While at the JEE it shows its provisional figures: those of the first state
   that shows it at the JEE with figures, else its final figures (flag
   ``provisional_from_final``), else none.

What it cannot know: the order inside a district before the first district snapshot,
beyond "random within the district, districts tilted by their lean". The rebuilt running
margins are compared with the published ones cut by cut (``cut_fit``): that comparison is
the measure of how good the reconstruction is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import polars as pl
from numpy.random import PCG64, Generator

from escrutinio.domain import AT_JEE, CONTABILIZADA, PROCESADA, ActaStatus, Contest
from escrutinio.provenance import Provenance

_PROCESSED = [s.value for s in PROCESADA]
_AT_JEE = [s.value for s in AT_JEE]
_FINAL_FORM = [s.value for s in CONTABILIZADA]


@dataclass(frozen=True, slots=True)
class ActaState:
    """A per-acta state published at ``as_of`` (canonical acta frame)."""

    as_of: datetime
    frame: pl.DataFrame
    label: str = ""


@dataclass(frozen=True, slots=True)
class UnitProgress:
    """Processed actas per unit at ``as_of``. ``key`` is the acta-frame column that holds
    the unit code (``area1_code``, ``area2_code`` or ``area3_code``); ``counts`` has
    ``unit_code`` and ``actas_processed``."""

    as_of: datetime
    key: str
    counts: pl.DataFrame
    label: str = ""


@dataclass(frozen=True, slots=True)
class NationalCut:
    """A published national cut: processed and counted actas, running votes."""

    as_of: datetime
    actas_processed: int
    actas_counted: int
    votes: dict[str, int]
    label: str = ""
    snapshot_id: str = ""


@dataclass(frozen=True, slots=True)
class CutFit:
    """How well the rebuilt cut matches the published one."""

    as_of: datetime
    actas_processed: int
    published_counted: int
    rebuilt_counted: int
    published_margin: int
    rebuilt_margin: int


@dataclass(frozen=True, slots=True)
class ArrivalOrder:
    """One arrival order. ``frame``: acta_id, ``rank`` (0 = first), ``position`` (count
    scale), ``lo``/``hi`` (bounds), ``jee_route``, ``resolve_position`` (inf = after the
    last cut), ``provisional_from_final`` and the provisional candidate columns
    ``p_<column>`` (null = no provisional figures)."""

    contest: Contest
    frame: pl.DataFrame
    cuts: tuple[NationalCut, ...]
    cut_fit: tuple[CutFit, ...]
    gamma: float
    gamma_grid_sse: tuple[tuple[float, float], ...]
    tilt_by: str
    n_unit_constraints_clipped: int
    provenance: Provenance
    final: pl.DataFrame = field(repr=False)

    def snapshot(self, cut: int) -> pl.DataFrame:
        """The canonical acta frame at national cut ``cut`` (index into ``cuts``)."""
        return self.snapshot_at_position(float(self.cuts[cut].actas_processed))

    def snapshot_at_position(self, n_processed: float) -> pl.DataFrame:
        """The canonical acta frame once the first ``n_processed`` actas have arrived."""
        return rebuild_snapshot(self.final, self.frame, self.contest, n_processed)


def rebuild_snapshot(final: pl.DataFrame, order: pl.DataFrame, contest: Contest,
                     n_processed: float) -> pl.DataFrame:
    """Statuses and figures of every acta after ``n_processed`` arrivals (vectorised)."""
    cand = contest.candidate_columns
    o = order.select("acta_id", "rank", "jee_route", "resolve_position",
                     *[f"p_{c}" for c in cand])
    df = final.join(o, on="acta_id", how="left")
    arrived = pl.col("rank") < n_processed
    at_jee = arrived & pl.col("jee_route") & (pl.col("resolve_position") > n_processed)
    pending = ~arrived
    figures = ["cast", "blank", "null", "challenged"]
    return df.with_columns(
        pl.when(pending).then(pl.lit(ActaStatus.PENDING.value))
        .when(at_jee).then(pl.lit(ActaStatus.JEE.value))
        .otherwise(pl.col("status")).alias("status"),
        pl.when(pending).then(pl.lit(False)).when(at_jee).then(pl.lit(False))
        .otherwise(pl.col("resolved")).alias("resolved"),
        *[pl.when(pending | at_jee).then(None).otherwise(pl.col(c)).alias(c) for c in figures],
        *[pl.when(pending).then(None).when(at_jee).then(pl.col(f"p_{c}"))
          .otherwise(pl.col(c)).alias(c) for c in cand],
    ).drop("rank", "jee_route", "resolve_position", *[f"p_{c}" for c in cand])


def cuts_from_unit_snapshots(frames: Sequence[tuple[datetime, pl.DataFrame, str, str]],
                             contest: Contest) -> list[NationalCut]:
    """National cuts from national unit snapshots: (as_of, frame, label, snapshot_id)."""
    out = []
    for as_of, f, label, sid in frames:
        row = f.row(0, named=True)
        out.append(NationalCut(as_of, int(row["actas_processed"]), int(row["actas_counted"]),
                               {c.code: int(row[c.column] or 0) for c in contest.candidates},
                               label, sid))
    return sorted(out, key=lambda c: c.as_of)


def _interp_position(t: datetime, cuts: Sequence[NationalCut]) -> float:
    xs = np.array([c.as_of.timestamp() for c in cuts])
    ys = np.array([c.actas_processed for c in cuts], dtype=float)
    return float(np.interp(t.timestamp(), xs, ys))


def _score(final: pl.DataFrame, contest: Contest, tilt_by: str) -> np.ndarray:
    """Standardised log-odds of candidate 0 vs 1 in each acta's ``tilt_by`` area."""
    a, b = contest.candidate_columns[:2]
    area = final.group_by(tilt_by).agg(
        ((pl.col(a).fill_null(0).sum() + 0.5) / (pl.col(b).fill_null(0).sum() + 0.5))
        .log().alias("__s"))
    s = final.select(tilt_by).join(area, on=tilt_by, how="left")["__s"].to_numpy()
    s = np.nan_to_num(s.astype(float))
    sd = s.std()
    return (s - s.mean()) / sd if sd > 0 else np.zeros_like(s)


def derive_arrival_order(
    final: pl.DataFrame,
    contest: Contest,
    cuts: Sequence[NationalCut],
    *,
    states: Sequence[ActaState] = (),
    units: Sequence[UnitProgress] = (),
    seed: int = 2021,
    tilt_by: str = "area3_code",
    gamma: float | None = None,
    gamma_grid: Sequence[float] = tuple(np.round(np.linspace(-0.95, 0.95, 39), 3)),
) -> ArrivalOrder:
    """Derive an arrival order (see the module docstring). ``gamma`` fixes the tilt
    instead of fitting it on ``gamma_grid``."""
    if not cuts:
        raise ValueError("at least one national cut is needed")
    cuts = sorted(cuts, key=lambda c: c.as_of)
    rng = Generator(PCG64(seed))
    n = final.height
    ids = final["acta_id"]
    z_unit = rng.random(n)  # random choice within a unit (step 2)
    z_noise = rng.standard_normal(n)  # noise of the tilted key (step 3)
    lo = np.zeros(n)
    hi = np.full(n, float(n))
    index = pl.DataFrame({"acta_id": ids, "__i": np.arange(n)})

    # 1. per-acta states
    state_pos: list[tuple[float, np.ndarray, pl.DataFrame]] = []
    for st in sorted(states, key=lambda s: s.as_of):
        f = index.join(st.frame.select("acta_id", "status"), on="acta_id", how="left")
        processed = f["status"].is_in(_PROCESSED).fill_null(False).to_numpy()
        pos = float(processed.sum())
        hi = np.where(processed, np.minimum(hi, pos), hi)
        lo = np.where(~processed, np.maximum(lo, pos), lo)
        state_pos.append((pos, processed, st.frame))

    # 2. unit progress, in time order, finest level first at equal times
    finest = {"area3_code": 0, "area2_code": 1, "area1_code": 2}
    clipped = 0
    national_at = {c.as_of: c for c in cuts}
    for up in sorted(units, key=lambda u: (u.as_of, finest.get(u.key, 3))):
        p = _interp_position(up.as_of, cuts)
        codes = final[up.key]
        counts = up.counts.select("unit_code", pl.col("actas_processed").cast(pl.Int64))
        cut = national_at.get(up.as_of)
        covered = codes.is_in(counts["unit_code"].implode()).to_numpy()
        unit = codes.to_numpy().astype(object)
        if cut is not None and (~covered).any():
            rest = cut.actas_processed - int(counts["actas_processed"].sum())
            counts = pl.concat([counts, pl.DataFrame({"unit_code": ["__rest__"],
                                                      "actas_processed": [rest]})])
            unit = np.where(covered, unit, "__rest__")
        f = pl.DataFrame({"__i": np.arange(n), "unit_code": unit.astype(str),
                          "certain": hi <= p, "out": lo >= p, "z": z_unit})
        f = f.join(counts, on="unit_code", how="left")
        f = f.with_columns(
            pl.col("certain").sum().over("unit_code").alias("n_certain"),
            pl.when(~pl.col("certain") & ~pl.col("out")).then(pl.col("z"))
            .otherwise(None).rank("ordinal").over("unit_code").alias("r"),
        )
        need = (pl.col("actas_processed") - pl.col("n_certain"))
        chosen = (pl.col("r").is_not_null() & pl.col("actas_processed").is_not_null()
                  & (pl.col("r") <= need))
        undetermined = pl.col("r").is_not_null() & pl.col("actas_processed").is_not_null()
        f = f.with_columns(chosen.alias("chosen"), undetermined.alias("und"),
                           (need < 0).alias("over"))
        clipped += int(f.filter(pl.col("over")).select(pl.col("unit_code").n_unique()).item())
        ch = f["chosen"].to_numpy()
        und = f["und"].to_numpy()
        hi = np.where(ch, p, hi)
        lo = np.where(und & ~ch, np.maximum(lo, p), lo)

    lo = np.minimum(lo, hi)
    score = _score(final, contest, tilt_by)
    a, b = contest.candidate_columns[:2]
    margin_final = (final[a].fill_null(0) - final[b].fill_null(0)).to_numpy().astype(float)

    # 5. JEE route and resolution (needed to score the fit of gamma)
    final_status = final["status"].to_numpy()
    jee_route = (final["resolved"].fill_null(False).to_numpy()
                 | (final_status == ActaStatus.ANNULLED.value))
    resolve = np.full(n, np.inf)
    prov = {c: np.full(n, np.nan) for c in contest.candidate_columns}
    for pos, _processed, frame in state_pos:
        f = index.join(frame.select("acta_id", "status", *contest.candidate_columns),
                       on="acta_id", how="left")
        status = f["status"].to_numpy()
        at_jee = np.isin(status, _AT_JEE)
        jee_route |= at_jee
        in_final_form = np.isin(status, _FINAL_FORM)
        resolve = np.where(jee_route & in_final_form & np.isinf(resolve) & ~at_jee,
                           np.minimum(resolve, pos), resolve)
        has = at_jee & f[contest.candidate_columns[0]].is_not_null().to_numpy()
        for c in contest.candidate_columns:
            vals = f[c].cast(pl.Float64).to_numpy()
            prov[c] = np.where(np.isnan(prov[c]) & has, vals, prov[c])
    # an acta resolved in a state but never seen at the JEE: resolved at arrival
    no_prov = jee_route & np.isnan(prov[contest.candidate_columns[0]])
    from_final = no_prov & (final_status == ActaStatus.COUNTED.value)
    for c in contest.candidate_columns:
        vals = final[c].cast(pl.Float64).to_numpy()
        prov[c] = np.where(from_final, vals, prov[c])

    cut_pos = np.array([c.actas_processed for c in cuts], dtype=float)
    pub_margin = np.array([c.votes[contest.candidates[0].code]
                           - c.votes[contest.candidates[1].code] for c in cuts], dtype=float)

    def order_for(g: float) -> np.ndarray:
        key = g * score + np.sqrt(max(0.0, 1 - g * g)) * z_noise
        grp = pl.DataFrame({"lo": lo, "hi": hi, "key": key})
        q = grp.select(((pl.col("key").rank("ordinal").over("lo", "hi") - 0.5)
                        / pl.len().over("lo", "hi")).alias("q"))["q"].to_numpy()
        u = lo + q * (hi - lo)
        return np.lexsort((z_noise, u))

    def rebuilt_margins(perm: np.ndarray) -> np.ndarray:
        rank = np.empty(n, dtype=np.int64)
        rank[perm] = np.arange(n)
        counted_at_arrival = ~jee_route & np.isin(final_status, _FINAL_FORM)
        contrib = np.where(counted_at_arrival, margin_final, 0.0)
        cs = np.concatenate([[0.0], np.cumsum(contrib[perm])])
        k = np.clip(cut_pos.astype(np.int64), 0, n)
        out = cs[k]
        # JEE-route actas resolved (counted) before the cut
        jr = jee_route & np.isfinite(resolve)
        if jr.any():
            m = margin_final[jr]
            r = rank[jr]
            rp = resolve[jr]
            out = out + np.array([m[(r < kk) & (rp <= kk)].sum() for kk in k])
        return out

    grid_sse: list[tuple[float, float]] = []
    if gamma is None:
        best = (np.inf, 0.0)
        for g in gamma_grid:
            sse = float(((rebuilt_margins(order_for(float(g))) - pub_margin) ** 2).sum())
            grid_sse.append((float(g), sse))
            if sse < best[0]:
                best = (sse, float(g))
        gamma = best[1]
    perm = order_for(gamma)
    rank = np.empty(n, dtype=np.int64)
    rank[perm] = np.arange(n)
    key_u = np.empty(n)
    key_u[perm] = np.arange(n) + 0.5
    frame = pl.DataFrame({
        "acta_id": ids, "rank": rank, "position": key_u, "lo": lo, "hi": hi,
        "jee_route": jee_route, "resolve_position": resolve,
        "provisional_from_final": from_final,
        **{f"p_{c}": pl.Series(prov[c]).fill_nan(None).cast(pl.Int64)
           for c in contest.candidate_columns},
    })
    margins = rebuilt_margins(perm)
    counted_rebuilt = []
    for k in cut_pos.astype(np.int64):
        arrived = rank < k
        counted_rebuilt.append(int((arrived & (~jee_route | (resolve <= k))).sum()))
    fit = tuple(CutFit(c.as_of, c.actas_processed, c.actas_counted, cr, int(pm), int(rm))
                for c, cr, pm, rm in zip(cuts, counted_rebuilt, pub_margin, margins,
                                         strict=True))
    return ArrivalOrder(
        contest=contest, frame=frame, cuts=tuple(cuts), cut_fit=fit, gamma=float(gamma),
        gamma_grid_sse=tuple(grid_sse), tilt_by=tilt_by, n_unit_constraints_clipped=clipped,
        provenance=Provenance(tuple(c.snapshot_id for c in cuts if c.snapshot_id),
                              "arrival_order", {"tilt_by": tilt_by, "gamma": gamma,
                                                "n_states": len(states),
                                                "n_unit_snapshots": len(units)}, seed),
        final=final,
    )


def unit_progress_from_frames(frames: Sequence[tuple[datetime, pl.DataFrame, str]]
                              ) -> list[UnitProgress]:
    """UnitProgress from canonical unit frames (as_of, frame, label); each frame's rows of
    level area1/area2/area3 become one constraint set (national rows are ignored)."""
    keys = {"area1": "area1_code", "area2": "area2_code", "area3": "area3_code"}
    out = []
    for as_of, f, label in frames:
        for lv, key in keys.items():
            sub = f.filter(pl.col("level") == lv)
            if sub.height:
                out.append(UnitProgress(as_of, key, sub.select("unit_code",
                                                               "actas_processed"), label))
    return out
