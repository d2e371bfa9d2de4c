"""Simulation core shared by the per-acta and the per-unit models.

Both models reduce what is still to come to **cells** — one per (component, model
regime, area1 code) — each with

* ``m`` (K): expected votes per candidate still to come;
* ``G`` (K × K): how those votes respond to a shared shift ε of the candidates' centred
  log-ratio shares, first order: Σ_i V_i (diag p_i − p_i p_iᵀ);
* ``u`` (K): how they respond to a shared shift δ of the log-odds of valid votes per
  elector, first order: Σ_i m_i (1 − ρ_i);
* ``cov`` (K × K): covariance of everything independent between cells: the area1 effect
  still unknown (G Σ₁ f Gᵀ + s₁ f u uᵀ), the area2 / area3 effects and the acta noise
  summed analytically over the groups inside the cell (sum of independent terms ⇒
  sum of covariances), and, for actas at the JEE, the annulment / correction lottery;
* ``cap`` (K): the most votes the cell could still add (its electors).

A simulation draws, per group (home / abroad), one national share shock ε ~ N(0, Σ_nat)
and one turnout shock δ ~ N(0, s²_nat); one JEE annulment-rate shock; and per cell one
N(0, cov) vector. The cell's votes are m + Gε + uδ + (its own draw), clipped to
[0, cap], and added to the counted votes. The national terms are what makes errors
correlated across the whole country; drawing per acta instead (independent errors)
would give falsely narrow intervals.

Cost: O(S · C · K²) for S simulations and C cells, in chunks of simulations; no loop
over actas.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.random import PCG64, Generator

from escrutinio.count import hurdle
from escrutinio.domain import Contest, ContestKind
from escrutinio.projection.linalg import (
    dense_ids,
    group_jacobian,
    group_outer,
    group_sandwich_jacobian,
    group_sum,
    sandwich,
)
from escrutinio.projection.result import (
    COMPONENT_LABELS,
    DEFAULT_CALL_RULE,
    LEVELS,
    Call,
    CallRule,
    CallStatus,
    CandidateProjection,
    Component,
    ComponentChange,
    Interval,
    MarginProjection,
    Projection,
    ShockScales,
)
from escrutinio.provenance import Provenance

GROUPS = ("home", "abroad")


@dataclass(frozen=True, slots=True)
class Cells:
    """What is still to come, per cell (see the module docstring)."""

    m: np.ndarray  # (C, K)
    G: np.ndarray  # (C, K, K)
    u: np.ndarray  # (C, K)
    cov: np.ndarray  # (C, K, K)
    cap: np.ndarray  # (C, K)
    shock: np.ndarray  # (C,) index into Shocks.share / Shocks.turnout
    component: np.ndarray  # (C,) Component values (str)
    jee_rate: np.ndarray  # (C, K): votes exposed to the JEE annulment-rate shock
    n_items: np.ndarray  # (C,) actas or units in the cell


@dataclass(frozen=True, slots=True)
class Shocks:
    """The shared shocks. Shock j has share covariance ``share[j]`` (K × K, CLR scale) and
    turnout variance ``turnout[j]``, and is driven by the standard-normal draw of group
    ``draw[j]`` (0 home, 1 abroad): shocks of one group are perfectly correlated (the
    same draw scaled differently, e.g. for actas with and without a baseline), the two
    groups are independent. Plus the JEE annulment-rate shock."""

    share: tuple[np.ndarray, ...]
    turnout: tuple[float, ...]
    draw: tuple[int, ...]
    jee_rate_sd: float
    scales: ShockScales
    #: when set, the national share draws are multivariate Student t with these degrees of
    #: freedom (a scale estimated from few residuals: :mod:`escrutinio.projection.drift`)
    tail_df: float | None = None
    #: a late block unlike anything counted so far: with probability ``break_prob`` per
    #: simulation, one more shared shift of covariance ``break_cov`` (group 0's shocks)
    break_prob: float = 0.0
    break_cov: np.ndarray | None = None
    #: the count's history may not speak for what remains: with probability ``mix_prob``
    #: per simulation and group, shock j gets one more shift of covariance ``mix_cov[j]``
    #: (the declared prior's, :mod:`escrutinio.projection.drift`)
    mix_prob: float = 0.0
    mix_cov: tuple[np.ndarray, ...] | None = None
    #: the counted votes may still be corrected: per simulation one N(0, revision_cov)
    #: vector (votes², K × K) added to them, from its own random stream (the other draws
    #: are the same with or without it); ``n_revisions``: the corrections it comes from
    revision_cov: np.ndarray | None = None
    n_revisions: int = 0


#: the random stream of the corrections term (a fixed tag mixed with the seed)
REVISION_STREAM = 0x5E71


def sqrt_psd(m: np.ndarray) -> np.ndarray:
    """A square root A (A Aᵀ = m) of symmetric PSD matrices (batched on leading axes)."""
    m = (m + np.swapaxes(m, -1, -2)) / 2
    vals, vecs = np.linalg.eigh(m)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))[..., None, :]


def empty_cells(k: int) -> Cells:
    return Cells(np.zeros((0, k)), np.zeros((0, k, k)), np.zeros((0, k)),
                 np.zeros((0, k, k)), np.zeros((0, k)), np.zeros(0, dtype=np.int64),
                 np.zeros(0, dtype=object), np.zeros((0, k)), np.zeros(0, dtype=np.int64))


def concat_cells(parts: list[Cells], k: int) -> Cells:
    parts = [p for p in parts if p.m.shape[0]]
    if not parts:
        return empty_cells(k)
    return Cells(*(np.concatenate([getattr(p, f) for p in parts]) for f in Cells.__slots__))


@dataclass(frozen=True, slots=True)
class LevelVariance:
    """One area level for :func:`build_cells`: integer group codes per item, posterior
    factors per item (share, turnout), and the level's covariance per regime."""

    codes: np.ndarray  # (N,) int
    f_share: np.ndarray  # (N,)
    f_turn: np.ndarray  # (N,)
    share_cov: tuple[np.ndarray, ...]  # per regime code (K, K)
    turn_var: tuple[float, ...]  # per regime code


def build_cells(
    *, v: np.ndarray, p: np.ndarray, tder: np.ndarray, component: np.ndarray,
    regime: np.ndarray, cell: np.ndarray, group: np.ndarray, levels: list[LevelVariance],
    noise_share: tuple[np.ndarray, ...], noise_turn: tuple[float, ...], cap: np.ndarray,
    jee: np.ndarray, p_annulled: float, jee_scale: np.ndarray,
    jee_sheets: np.ndarray | None = None,
) -> Cells:
    """Reduce predicted items (actas or units) to cells.

    Per item i: expected valid votes ``v`` (already scaled for the JEE annulment), shares
    ``p`` (N × K), ``tder`` = d log(valid votes)/d(turnout shock) (1 − ρ for the log-odds
    of a rate, 1 for a log), ``component`` (Component values), ``regime`` (int, indexes
    the per-regime covariances), ``cell`` (int area code), ``group`` (0 home, 1 abroad),
    ``cap`` (most votes it could add), ``jee`` (bool: subject to the annulment lottery)
    and ``jee_scale`` (its unscaled votes / scaled ones); ``jee_sheets``: how many sheets
    an item under review holds (a unit's part at the court: each sheet is annulled or not
    on its own, so the lottery's variance is divided by their number; default 1, an acta).
    Cells are (component, regime, cell); shock index = 2·group + regime (group 2: a third
    set of shocks, e.g. sheets under review).
    """
    k = p.shape[1]
    n = v.size
    if n == 0:
        return empty_cells(k)
    comps = list(Component)
    comp_code = np.zeros(n, dtype=np.int64)
    for ci, c in enumerate(comps):
        comp_code[component == c.value] = ci
    key = (comp_code * 2 + regime) * (int(cell.max()) + 1) + cell
    ukey, inv = dense_ids(key)
    nc = ukey.size
    first = np.zeros(nc, dtype=np.int64)
    first[inv[::-1]] = np.arange(n)[::-1]
    m = v[:, None] * p
    u = m * tder[:, None]
    m_c = group_sum(m, inv, nc)
    u_c = group_sum(u, inv, nc)
    g_c = group_jacobian(v, p, inv, nc)
    cov = np.zeros((nc, k, k))
    reg_c = regime[first]
    for lv in levels:
        sub_key = inv.astype(np.int64) * (int(lv.codes.max()) + 1) + lv.codes
        usub, sinv = dense_ids(sub_key)
        ns = usub.size
        cell_of_sub = np.zeros(ns, dtype=np.int64)
        cell_of_sub[sinv] = inv
        g_s = group_jacobian(v, p, sinv, ns)
        u_s = group_sum(u, sinv, ns)
        fs = np.zeros(ns)
        ft = np.zeros(ns)
        fs[sinv] = lv.f_share
        ft[sinv] = lv.f_turn
        for r in np.unique(reg_c):
            rsel = reg_c[cell_of_sub] == r
            contrib = (sandwich(g_s[rsel], lv.share_cov[r], fs[rsel])
                       + (ft[rsel] * lv.turn_var[r])[:, None, None]
                       * np.einsum("bk,bl->bkl", u_s[rsel], u_s[rsel]))
            cov += group_sum(contrib, cell_of_sub[rsel], nc)
    for r in np.unique(regime):
        rsel = regime == r
        if np.any(noise_share[r]):
            cov += group_sandwich_jacobian(v[rsel], p[rsel], noise_share[r], inv[rsel], nc)
        if noise_turn[r] > 0:
            cov += group_outer(u[rsel], np.full(int(rsel.sum()), noise_turn[r]), inv[rsel], nc)
    jee_rate = np.zeros((nc, k))
    if jee.any():
        mf = m[jee] * jee_scale[jee, None]
        sheets = np.ones(mf.shape[0]) if jee_sheets is None else \
            np.maximum(np.asarray(jee_sheets, dtype=float)[jee], 1.0)
        cov += group_outer(mf, p_annulled * (1 - p_annulled) / sheets, inv[jee], nc)
        jee_rate = group_sum(np.where(jee[:, None], m * jee_scale[:, None], 0.0), inv, nc)
    cap_c = np.repeat(group_sum(cap, inv, nc)[:, None], k, axis=1)
    grp = np.zeros(nc, dtype=np.int64)
    np.maximum.at(grp, inv, group.astype(np.int64))
    return Cells(m_c, g_c, u_c, cov, cap_c, 2 * grp + reg_c,
                 component[first].astype(object), jee_rate, np.bincount(inv, minlength=nc))


def _quantile_intervals(x: np.ndarray, levels: tuple[float, ...]) -> tuple[Interval, ...]:
    qs = []
    for lv in levels:
        qs += [(1 - lv) / 2, (1 + lv) / 2]
    vals = np.quantile(x, qs, method="linear")
    return tuple(Interval(lv, float(vals[2 * i]), float(vals[2 * i + 1]))
                 for i, lv in enumerate(levels))


def _make_call(p_ahead: float, iv: Interval, leader: str, rule: CallRule,
               names: dict[str, str]) -> Call:
    if p_ahead >= rule.min_probability and iv.lower > 0:
        nm = names.get(leader, leader)
        return Call(CallStatus.CALLED, leader, p_ahead, rule,
                    f"Se proyecta: {nm} (probabilidad {100 * p_ahead:.1f}%)",
                    f"Projected: {nm} (probability {100 * p_ahead:.1f}%)")
    return Call(CallStatus.TOO_CLOSE, None, p_ahead, rule,
                f"Demasiado ajustado para proyectar (empate técnico): probabilidad del "
                f"que va adelante {100 * p_ahead:.1f}%",
                f"Too close to call: the projected leader's probability is "
                f"{100 * p_ahead:.1f}%")


def draw_totals(counted: np.ndarray, cells: Cells, shocks: Shocks, *, n_sims: int,
                seed: int, chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw the final votes: (S, K) totals and (S, n components, K) votes per component
    (the same random numbers for the same seed)."""
    k = counted.shape[0]
    n_cells = cells.m.shape[0]
    rng = Generator(PCG64(seed))
    comps = list(Component)
    comp_idx = np.array([comps.index(Component(c)) for c in cells.component], dtype=np.int64)
    local_sqrt = sqrt_psd(cells.cov) if n_cells else np.zeros((0, k, k))
    nat_sqrt = np.stack([sqrt_psd(s) for s in shocks.share]) if shocks.share else \
        np.zeros((0, k, k))
    mix_sqrt = np.stack([sqrt_psd(c) for c in shocks.mix_cov]) \
        if shocks.mix_prob > 0 and shocks.mix_cov is not None else None
    draw = np.asarray(shocks.draw, dtype=np.int64)
    tsd = np.sqrt(np.asarray(shocks.turnout, dtype=float))
    if chunk is None:
        chunk = max(1, min(n_sims, int(4e7 // max(1, n_cells * k * k + k))))
    totals = np.empty((n_sims, k))
    comp_tot = np.zeros((n_sims, len(comps), k))
    shock = cells.shock
    for start in range(0, n_sims, chunk):
        s = min(chunk, n_sims - start)
        xi = rng.standard_normal((2, s, k))
        zeta = rng.standard_normal((2, s))
        if shocks.tail_df is not None:
            df = float(shocks.tail_df)
            xi *= np.sqrt(df / rng.chisquare(df, (2, s)))[:, :, None]
        brk = None
        if shocks.break_prob > 0 and shocks.break_cov is not None:
            hit = rng.random(s) < shocks.break_prob
            brk = (rng.standard_normal((s, k)) @ sqrt_psd(shocks.break_cov).T) * hit[:, None]
        # (J, S, K): shock j = its group's draw through its own square root
        eps = xi[draw] @ np.swapaxes(nat_sqrt, 1, 2)
        if brk is not None:
            eps = eps + np.where((draw == 0)[:, None, None], brk[None], 0.0)
        if mix_sqrt is not None:
            hit_g = rng.random((2, s)) < shocks.mix_prob
            zg = rng.standard_normal((2, s, k)) * hit_g[:, :, None]
            eps = eps + zg[draw] @ np.swapaxes(mix_sqrt, 1, 2)
        dlt = zeta[draw] * tsd[:, None]
        jee = rng.standard_normal(s) * shocks.jee_rate_sd
        if n_cells:
            z = rng.standard_normal((s, n_cells, k))
            # batched per cell: (C, S, K) @ (C, K, K)
            local = np.swapaxes(np.swapaxes(z, 0, 1) @ np.swapaxes(local_sqrt, 1, 2), 0, 1)
            nat = np.swapaxes(eps[shock] @ np.swapaxes(cells.G, 1, 2), 0, 1)
            tur = cells.u[None, :, :] * dlt[shock].T[:, :, None]
            votes = (cells.m[None] + local + nat + tur
                     - jee[:, None, None] * cells.jee_rate[None])
            votes = np.clip(votes, 0.0, cells.cap[None])
            for ci in np.unique(comp_idx):
                comp_tot[start:start + s, ci] = votes[:, comp_idx == ci].sum(1)
            totals[start:start + s] = counted[None] + votes.sum(1)
        else:
            totals[start:start + s] = counted[None]
    if shocks.revision_cov is not None:
        rr = Generator(PCG64(np.random.SeedSequence([seed, REVISION_STREAM])))
        rev = rr.standard_normal((n_sims, k)) @ sqrt_psd(shocks.revision_cov).T
        comp_tot[:, comps.index(Component.REVISION)] = rev
        totals = np.maximum(totals + rev, 0.0)
    return totals, comp_tot


def simulate(
    contest: Contest,
    counted: np.ndarray,
    cells: Cells,
    shocks: Shocks,
    *,
    n_sims: int,
    seed: int,
    levels: tuple[float, ...] = LEVELS,
    call_rule: CallRule = DEFAULT_CALL_RULE,
    basis: str,
    snapshot_id: str = "",
    as_of: object = None,
    parameters: dict[str, object] | None = None,
    diagnostics: dict[str, object] | None = None,
    chunk: int | None = None,
    pairs: tuple[tuple[str, str], ...] = (),
) -> Projection:
    """Simulate the final votes and summarise them into a :class:`Projection`."""
    k = len(contest.candidates)
    counted = np.asarray(counted, dtype=float)
    n_cells = cells.m.shape[0]
    comps = list(Component)
    comp_idx = np.array([comps.index(Component(c)) for c in cells.component], dtype=np.int64)
    totals, comp_tot = draw_totals(counted, cells, shocks, n_sims=n_sims, seed=seed,
                                   chunk=chunk)

    names = {c.code: c.name for c in contest.candidates}
    codes = [c.code for c in contest.candidates]
    med = np.median(totals, axis=0)
    order = np.argsort(-med, kind="stable")
    # P(win): most votes, ties split evenly
    top = totals.max(axis=1, keepdims=True)
    is_top = totals >= top
    p_win = (is_top / is_top.sum(axis=1, keepdims=True)).mean(axis=0)
    first_round = contest.kind is ContestKind.FIRST_ROUND and k > 2
    p_top2 = None
    if first_round:
        rank = np.argsort(np.argsort(-totals, axis=1, kind="stable"), axis=1)
        p_top2 = (rank < 2).mean(axis=0)
    expected_rem = cells.m.sum(0) if n_cells else np.zeros(k)
    cands = tuple(
        CandidateProjection(
            code=codes[j], name=names[codes[j]], counted=int(counted[j]),
            expected_remaining=float(totals[:, j].mean() - counted[j]),
            mean=float(totals[:, j].mean()), median=float(med[j]),
            intervals=_quantile_intervals(totals[:, j], levels), p_win=float(p_win[j]),
            p_top_two=None if p_top2 is None else float(p_top2[j]),
        ) for j in range(k))

    def race(a: int, b: int) -> MarginProjection:
        diff = totals[:, a] - totals[:, b]
        p_ahead = float((diff > 0).mean() + 0.5 * (diff == 0).mean())
        ivs = _quantile_intervals(diff, tuple(sorted(set(levels) | {call_rule.interval_level})))
        rule_iv = next(iv for iv in ivs if abs(iv.level - call_rule.interval_level) < 1e-9)
        return MarginProjection(
            leader=codes[a], trailer=codes[b], counted_margin=int(counted[a] - counted[b]),
            mean=float(diff.mean()), median=float(np.median(diff)),
            intervals=tuple(iv for iv in ivs if iv.level in levels) or ivs,
            p_leader_ahead=p_ahead, call=_make_call(p_ahead, rule_iv, codes[a], call_rule,
                                                    names))

    main = race(int(order[0]), int(order[1])) if k > 1 else race(0, 0)
    races: tuple[MarginProjection, ...] = (main,)
    if first_round and contest.majority_threshold is not None:
        # the race for second place matters only where the top two go to a runoff
        races = (main, race(int(order[1]), int(order[2])))
    for x, y in pairs:
        if x not in codes or y not in codes or x == y:
            raise ValueError(f"unknown race {x!r} v {y!r}")
        ia, ib = codes.index(x), codes.index(y)
        if {(r.leader, r.trailer) for r in races} & {(x, y), (y, x)}:
            continue
        ia, ib = (ia, ib) if med[ia] >= med[ib] else (ib, ia)
        races = (*races, race(ia, ib))
    p_outright = None
    if contest.majority_threshold is not None and k > 2:
        valid = totals.sum(axis=1)
        p_outright = float((totals.max(axis=1) > contest.majority_threshold * valid).mean())

    a, b = int(order[0]), int(order[1])
    components = []
    revised = shocks.revision_cov is not None
    for ci, comp in enumerate(comps):
        sel = comp_idx == ci
        is_rev = comp is Component.REVISION and revised
        if not sel.any() and not is_rev:
            continue
        margin_change = comp_tot[:, ci, a] - comp_tot[:, ci, b]
        es, en = COMPONENT_LABELS[comp]
        components.append(ComponentChange(
            component=comp, label_es=es, label_en=en,
            n_items=shocks.n_revisions if is_rev else int(cells.n_items[sel].sum()),
            expected_votes={codes[j]: float(comp_tot[:, ci, j].mean()) for j in range(k)},
            expected_margin_change=float(margin_change.mean()),
            sd_margin_change=float(margin_change.std()),
        ))
    # hurdle on the counted leader, with R = expected two-candidate votes still to come
    c_order = np.argsort(-counted, kind="stable")
    cl, ct = int(c_order[0]), int(c_order[1]) if k > 1 else int(c_order[0])
    remaining_two = float(expected_rem[cl] + expected_rem[ct])
    h = hurdle(int(counted[cl] - counted[ct]), round(remaining_two), codes[cl], codes[ct],
               "projection: expected votes still to come for both candidates (all "
               "components)")
    if shocks.revision_cov is not None:
        h = replace(h, corrections=shocks.n_revisions)
    return Projection(
        contest_id=contest.id, kind=contest.kind.value, basis=basis,
        snapshot_id=snapshot_id, as_of=as_of,  # type: ignore[arg-type]
        n_simulations=n_sims, candidates=cands, margin=main, races=races,
        components=tuple(components), hurdle=h, p_outright=p_outright,
        shocks=shocks.scales, call=main.call, diagnostics=dict(diagnostics or {}),
        provenance=Provenance((snapshot_id,) if snapshot_id else (), f"projection_{basis}",
                              dict(parameters or {}), seed),
    )
