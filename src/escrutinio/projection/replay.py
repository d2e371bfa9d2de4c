"""Replay harness: feed a real count's snapshots in time order, project each, score
against the final (docs/methods.md §2, "calibration is proven by replay, not asserted").

Scored race: two candidates A and B fixed by the final result (runoff: winner v
runner-up; first round, "who finishes second": second v third). The margin is A − B.

Per cut:

* **raw**: the counted margin at that moment (what the running total says);
* **naive baseline**: the counted shares applied to all remaining votes,
  A_naive = A_counted / f, with f the share of actas counted (so the naive margin is the
  raw margin scaled up, and its leader is always the raw leader);
* **projection**: median margin, the central intervals, P(A ahead of B) and the call.

Scores over the cuts: coverage of each interval level (share of cuts whose interval
contains the final margin; overall and from a given % counted), Brier score
mean (1 − P(A))² and log score mean −ln P(A) of the final leader, the first cut from
which the call stays correct, every wrong call (called for B), and the first cut from
which P(A) ≥ 0.9 and stays. A wrong call is the one failure the call rule exists to
prevent; a "too close to call" is never wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl

from escrutinio.domain import ActaStatus, Contest
from escrutinio.projection.result import LEVELS, CallStatus, Projection
from escrutinio.provenance import Provenance

if TYPE_CHECKING:
    from escrutinio.projection.model import Baseline, ModelParams
    from escrutinio.projection.order import ArrivalOrder


@dataclass(frozen=True, slots=True)
class CutMeta:
    """What the harness needs to know about a cut besides its projection."""

    as_of: datetime | None
    label: str
    snapshot_id: str
    pct_counted: float | None  # % of actas contabilizadas
    counted: dict[str, int]  # raw counted votes per candidate


@dataclass(frozen=True, slots=True)
class ReplayCut:
    index: int
    as_of: datetime | None
    label: str
    snapshot_id: str
    pct_counted: float | None
    raw_margin: int  # A − B counted
    naive_margin: float | None  # A − B with counted shares applied to everything left
    median: float  # projected A − B
    intervals: dict[str, tuple[float, float]]  # level (as "0.9") -> (lower, upper) of A − B
    covered: dict[str, bool]
    p_a: float  # P(A ahead of B)
    call_status: str
    call_winner: str | None
    wrong_call: bool
    expected_change: dict[str, float]  # component -> expected change of A − B


@dataclass(frozen=True, slots=True)
class Coverage:
    level: float
    n_cuts: int
    covered: int
    share: float
    n_cuts_from: int  # from ``from_pct`` counted on
    share_from: float | None


@dataclass(frozen=True, slots=True)
class BaselineScore:
    """Raw count and naive baseline over the same cuts."""

    name: str
    mean_abs_error: float  # |margin − final| averaged over cuts
    wrong_leader_cuts: int  # cuts where its leader is B
    last_wrong_leader_pct: float | None


@dataclass(frozen=True, slots=True)
class SkippedCut:
    """A cut that could not be projected (the replay goes on without it)."""

    index: int  # position among the cuts given to the replay
    as_of: datetime | None
    label: str
    snapshot_id: str
    pct_counted: float | None
    reason_es: str
    reason_en: str


@dataclass(frozen=True, slots=True)
class ReplayResult:
    contest_id: str
    basis: str
    candidate_a: str  # final leader of the scored race
    candidate_b: str
    final_margin: int
    n_cuts: int
    cuts: tuple[ReplayCut, ...]
    coverage: tuple[Coverage, ...]
    coverage_from_pct: float
    brier: float
    log_score: float
    mean_abs_error: float  # |median − final|
    first_stable_call: ReplayCut | None  # first cut from which the call stays correct
    first_stable_p90: ReplayCut | None  # first cut from which P(A) ≥ 0.9 stays
    wrong_calls: tuple[ReplayCut, ...]
    baselines: tuple[BaselineScore, ...]
    elapsed_seconds: float
    provenance: Provenance = field(default_factory=lambda: Provenance((), "replay"))
    skipped: tuple[SkippedCut, ...] = ()  # cuts that could not be projected, with why
    #: % counted of the state scored as the final (None: unknown); below 100 the scores
    #: measure the projection against a state that was not the end of the count
    final_pct_counted: float | None = None

    def coverage_at(self, level: float) -> Coverage:
        for c in self.coverage:
            if abs(c.level - level) < 1e-9:
                return c
        raise KeyError(level)


def _race(proj: Projection, a: str, b: str) -> tuple[float, dict[str, tuple[float, float]],
                                                     float, str, str | None]:
    """Median, intervals and P(A ahead) of A − B from a projection's races."""
    for r in proj.races:
        if (r.leader, r.trailer) in ((a, b), (b, a)):
            sign = 1.0 if r.leader == a else -1.0
            ivs = {f"{iv.level:g}": tuple(sorted((sign * iv.lower, sign * iv.upper)))
                   for iv in r.intervals}
            p_a = r.p_leader_ahead if sign > 0 else 1.0 - r.p_leader_ahead
            return (sign * r.median, ivs, p_a, r.call.status.value,  # type: ignore[return-value]
                    r.call.winner)
    raise KeyError(f"the projection has no race {a} v {b}; pass pairs=(({a!r}, {b!r}),)")


def score_replay(
    contest_id: str, basis: str, cuts: Sequence[tuple[CutMeta, Projection]],
    final: dict[str, int], *, race: tuple[str, str] | None = None, from_pct: float = 67.0,
    levels: Iterable[float] = LEVELS, elapsed_seconds: float = 0.0, seed: int | None = None,
    skipped: Sequence[SkippedCut] = (),
) -> ReplayResult:
    """Score projections made at successive cuts against the final votes ``final``.

    ``race``: (A, B) to score; default: the final winner v runner-up."""
    if race is None:
        order = sorted(final, key=lambda c: -final[c])
        race = (order[0], order[1])
    a, b = race
    if final[a] < final[b]:
        a, b = b, a
    final_margin = int(final[a] - final[b])
    out: list[ReplayCut] = []
    for i, (meta, proj) in enumerate(cuts):
        med, ivs, p_a, status, winner = _race(proj, a, b)
        raw = int(meta.counted.get(a, 0) - meta.counted.get(b, 0))
        naive = (raw / (meta.pct_counted / 100.0) if meta.pct_counted else None)
        covered = {lv: lo <= final_margin <= hi for lv, (lo, hi) in ivs.items()}
        wrong = status == CallStatus.CALLED.value and winner is not None and winner != a
        sign_main = 1.0 if proj.margin.leader == a else -1.0
        comps = {c.component.value: sign_main * c.expected_margin_change
                 for c in proj.components} if {proj.margin.leader, proj.margin.trailer} \
            == {a, b} else {}
        out.append(ReplayCut(i, meta.as_of, meta.label, meta.snapshot_id, meta.pct_counted,
                             raw, naive, med, ivs, covered, p_a, status, winner, wrong,
                             comps))
    levels = tuple(levels)
    cov = []
    for lv in levels:
        key = f"{lv:g}"
        inside = [c.covered.get(key, False) for c in out]
        late = [c.covered.get(key, False) for c in out
                if c.pct_counted is not None and c.pct_counted >= from_pct]
        cov.append(Coverage(lv, len(inside), int(sum(inside)),
                            float(np.mean(inside)) if inside else float("nan"),
                            len(late), float(np.mean(late)) if late else None))
    p = np.clip(np.array([c.p_a for c in out]), 1e-6, 1.0)
    brier = float(np.mean((1.0 - p) ** 2)) if out else float("nan")
    log_score = float(np.mean(-np.log(p))) if out else float("nan")

    def first_stable(ok: list[bool]) -> ReplayCut | None:
        idx = None
        for i in range(len(ok) - 1, -1, -1):
            if not ok[i]:
                break
            idx = i
        return out[idx] if idx is not None else None

    stable_call = first_stable([c.call_status == CallStatus.CALLED.value and c.call_winner == a
                                for c in out])
    stable_p90 = first_stable([c.p_a >= 0.9 for c in out])

    def base(name: str, margins: list[float | None]) -> BaselineScore:
        pairs = [(m, c.pct_counted) for m, c in zip(margins, out, strict=True) if m is not None]
        wrong = [pc for m, pc in pairs if m < 0]
        return BaselineScore(
            name, float(np.mean([abs(m - final_margin) for m, _ in pairs])) if pairs else
            float("nan"), len(wrong), max((w for w in wrong if w is not None), default=None))

    baselines = (
        base("projection", [c.median for c in out]),
        base("raw", [float(c.raw_margin) for c in out]),
        base("naive", [c.naive_margin for c in out]),
    )
    return ReplayResult(
        contest_id=contest_id, basis=basis, candidate_a=a, candidate_b=b,
        final_margin=final_margin, n_cuts=len(out), cuts=tuple(out), coverage=tuple(cov),
        coverage_from_pct=from_pct, brier=brier, log_score=log_score,
        mean_abs_error=baselines[0].mean_abs_error, first_stable_call=stable_call,
        first_stable_p90=stable_p90, wrong_calls=tuple(c for c in out if c.wrong_call),
        baselines=baselines, elapsed_seconds=elapsed_seconds,
        provenance=Provenance(tuple(c.snapshot_id for c in out if c.snapshot_id), "replay",
                              {"race": [a, b], "from_pct": from_pct,
                               "final": dict(final)}, seed),
        skipped=tuple(skipped),
    )


def run_replay(
    contest_id: str, basis: str, metas: Sequence[CutMeta],
    project: Callable[[int], Projection], final: dict[str, int], *,
    race: tuple[str, str] | None = None, from_pct: float = 67.0,
    progress: Callable[[int, int], Any] | None = None, seed: int | None = None,
    skipped: Sequence[SkippedCut] = (),
) -> ReplayResult:
    """Project every cut (``project(i)``), in order, and score. A cut that cannot be
    projected (the model or the data raise an error) is skipped with its reason, listed
    in the result beside ``skipped`` (cuts left out before projecting); the replay goes
    on."""
    import time

    from escrutinio.errors import EscrutinioError

    t0 = time.perf_counter()
    done = []
    left = list(skipped)
    for i, meta in enumerate(metas):
        try:
            done.append((meta, project(i)))
        except (EscrutinioError, ValueError, KeyError, np.linalg.LinAlgError) as exc:
            es = exc.message_es if isinstance(exc, EscrutinioError) else str(exc)
            en = exc.message_en if isinstance(exc, EscrutinioError) else str(exc)
            left.append(SkippedCut(i, meta.as_of, meta.label, meta.snapshot_id,
                                   meta.pct_counted, es, en))
        if progress is not None:
            progress(i + 1, len(metas))
    return score_replay(contest_id, basis, done, final, race=race, from_pct=from_pct,
                        elapsed_seconds=time.perf_counter() - t0, seed=seed, skipped=left)


# --- SVG chart (hand-written, no dependency) -----------------------------------------------

_BAND_FILL = {"0.95": "#dbe7f3", "0.9": "#c3d7ec", "0.8": "#a4c2e2", "0.5": "#7aa6d6"}


def replay_svg(result: ReplayResult, *, title: str = "", width: int = 900,
               height: int = 460, names: dict[str, str] | None = None) -> str:
    """Projected margin (median and 50/80/90/95% bands), raw running margin, naive
    baseline and final margin against the % of actas counted (or the cut number)."""
    names = names or {}
    cuts = result.cuts
    if not cuts:
        return "<svg xmlns='http://www.w3.org/2000/svg'/>"
    use_pct = all(c.pct_counted is not None for c in cuts)
    xs = np.array([c.pct_counted if use_pct else c.index for c in cuts], dtype=float)
    series = ([c.raw_margin for c in cuts] + [c.median for c in cuts]
              + [c.naive_margin for c in cuts if c.naive_margin is not None]
              + [result.final_margin, 0])
    for c in cuts:
        for lv in ("0.95", "0.9"):
            if lv in c.intervals:
                series += list(c.intervals[lv])
    ys = np.array(series, dtype=float)
    lo, hi = float(ys.min()), float(ys.max())
    pad = 0.05 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    x0, x1 = float(xs.min()), float(xs.max())
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    ml, mr, mt, mb = 80, 20, 40, 50
    pw, ph = width - ml - mr, height - mt - mb

    def px(x: float) -> float:
        return ml + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return mt + (hi - y) / (hi - lo) * ph

    def path(points: list[tuple[float, float]]) -> str:
        return " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}"
                        for i, (x, y) in enumerate(points))

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}' font-family='sans-serif' font-size='12'>",
             f"<rect width='{width}' height='{height}' fill='white'/>"]
    a = escape(names.get(result.candidate_a, result.candidate_a))
    b = escape(names.get(result.candidate_b, result.candidate_b))
    parts.append(f"<text x='{ml}' y='22' font-size='15' font-weight='bold'>"
                 f"{escape(title) or f'{a} − {b}'}</text>")
    for lv in ("0.95", "0.9", "0.8", "0.5"):
        pts = [(x, c.intervals[lv][1]) for x, c in zip(xs, cuts, strict=True)
               if lv in c.intervals]
        pts += [(x, c.intervals[lv][0]) for x, c in zip(xs[::-1], cuts[::-1], strict=True)
                if lv in c.intervals]
        if pts:
            parts.append(f"<path d='{path(pts)} Z' fill='{_BAND_FILL[lv]}' stroke='none'>"
                         f"<title>{float(lv):.0%}</title></path>")
    # axes and grid
    for t in np.linspace(lo, hi, 6):
        parts.append(f"<line x1='{ml}' x2='{ml + pw}' y1='{py(t):.1f}' y2='{py(t):.1f}' "
                     "stroke='#eee'/>")
        parts.append(f"<text x='{ml - 6}' y='{py(t) + 4:.1f}' text-anchor='end'>"
                     f"{t:,.0f}</text>")
    for t in np.linspace(x0, x1, 6):
        lab = f"{t:.1f}%" if use_pct else f"{t:.0f}"
        parts.append(f"<text x='{px(t):.1f}' y='{mt + ph + 18}' text-anchor='middle'>"
                     f"{lab}</text>")
    parts.append(f"<text x='{ml + pw / 2}' y='{height - 10}' text-anchor='middle'>"
                 + ("actas contabilizadas / actas counted (%)" if use_pct else "corte / cut")
                 + "</text>")
    parts.append(f"<line x1='{ml}' x2='{ml + pw}' y1='{py(0):.1f}' y2='{py(0):.1f}' "
                 "stroke='#555' stroke-width='1'/>")
    parts.append(f"<line x1='{ml}' x2='{ml + pw}' y1='{py(result.final_margin):.1f}' "
                 f"y2='{py(result.final_margin):.1f}' stroke='#2a7d2a' stroke-width='1.5' "
                 "stroke-dasharray='6,4'/>")
    parts.append(f"<path d='{path(list(zip(xs, [c.raw_margin for c in cuts], strict=True)))}'"
                 " fill='none' stroke='#c0392b' stroke-width='2'/>")
    naive = [(x, c.naive_margin) for x, c in zip(xs, cuts, strict=True)
             if c.naive_margin is not None]
    if naive:
        parts.append(f"<path d='{path(naive)}' fill='none' stroke='#e67e22' "
                     "stroke-width='1.2' stroke-dasharray='3,3'/>")
    parts.append(f"<path d='{path(list(zip(xs, [c.median for c in cuts], strict=True)))}' "
                 "fill='none' stroke='#1f4e89' stroke-width='2.2'/>")
    for c, x in zip(cuts, xs, strict=True):
        if c.call_status == CallStatus.CALLED.value:
            color = "#c0392b" if c.wrong_call else "#1f4e89"
            parts.append(f"<circle cx='{px(x):.1f}' cy='{py(c.median):.1f}' r='2.5' "
                         f"fill='{color}'/>")
    legend = [("#1f4e89", "proyección (mediana) / projection (median)"),
              ("#7aa6d6", "intervalos 50/80/90/95% / intervals"),
              ("#c0392b", "conteo / raw count"),
              ("#e67e22", "ingenuo / naive (current share)"),
              ("#2a7d2a", f"final {result.final_margin:+,}")]
    for i, (color, text) in enumerate(legend):
        y = mt + 14 + 16 * i
        parts.append(f"<rect x='{ml + pw - 290}' y='{y - 9}' width='12' height='10' "
                     f"fill='{color}'/><text x='{ml + pw - 272}' y='{y}'>{escape(text)}</text>")
    parts.append(f"<text x='{ml}' y='{mt - 6}' fill='#555'>{a} − {b} "
                 "(votos / votes)</text>")
    parts.append("</svg>")
    return "\n".join(parts)


# --- replays of the three kinds ------------------------------------------------------------

def replay_actas(
    order: ArrivalOrder, contest: Contest, *, baseline: pl.DataFrame | Baseline | None = None,
    blocs: dict[str, list[str]] | None = None, params: ModelParams | None = None,
    final: dict[str, int] | None = None, race: tuple[str, str] | None = None,
    from_pct: float = 67.0, progress: Callable[[int, int], Any] | None = None,
) -> ReplayResult:
    """Per-acta replay on an :class:`~escrutinio.projection.order.ArrivalOrder`: at each
    national cut, the actas in the count are the first N(τ) of the order (with their final
    figures, or their provisional ones while at the JEE), and the earlier cuts are its
    history (which actas were counted when). The raw margin scored is the *published*
    one (what people saw); the projection sees the rebuilt snapshot."""
    from escrutinio.projection.model import ModelParams, prepare_baseline, project_actas

    params = params or ModelParams()
    if final is None:
        counted = order.final.filter(pl.col("status") == ActaStatus.COUNTED.value)
        final = {c.code: int(counted[c.column].fill_null(0).sum()) for c in contest.candidates}
    base = prepare_baseline(baseline, blocs) if baseline is not None and not hasattr(
        baseline, "n_features") else baseline
    a, b = race or tuple(sorted(final, key=lambda c: -final[c])[:2])
    total = order.final.height
    metas = [CutMeta(c.as_of, c.label, c.snapshot_id, 100.0 * c.actas_counted / total,
                     dict(c.votes)) for c in order.cuts]

    states: dict[int, pl.DataFrame] = {}  # each cut's acta states: the later cuts' history

    def state(i: int) -> pl.DataFrame:
        if i not in states:
            states[i] = order.snapshot(i).select("acta_id", "status")
        return states[i]

    def one(i: int) -> Projection:
        snap = order.snapshot(i)
        states[i] = snap.select("acta_id", "status")
        return project_actas(snap, contest, baseline=base, params=params,
                             snapshot_id=order.cuts[i].snapshot_id, as_of=order.cuts[i].as_of,
                             pairs=((a, b),), history=[state(j) for j in range(i)])

    res = run_replay(contest.id, "actas", metas, one, final, race=(a, b), from_pct=from_pct,
                     progress=progress, seed=params.seed)
    return res


def replay_units(
    snapshots: Sequence[tuple[CutMeta, pl.DataFrame, dict[str, Any]]], contest: Contest, *,
    final: dict[str, int], params: ModelParams | None = None,
    race: tuple[str, str] | None = None,
    from_pct: float = 67.0, progress: Callable[[int, int], Any] | None = None,
) -> ReplayResult:
    """Replay unit snapshots: each item is (meta, unit frame, keyword arguments for
    :func:`~escrutinio.projection.units.project_units`: parents, baseline, remaining,
    history). Without a ``history`` of its own, a cut is given the frames of the earlier
    items (``as_of`` strictly before its own, oldest first) when the model takes one:
    a replay never shows the model a cut from its future."""
    from escrutinio.projection.model import ModelParams
    from escrutinio.projection.units import project_units

    params = params or ModelParams()
    a, b = race or tuple(sorted(final, key=lambda c: -final[c])[:2])

    def one(i: int) -> Projection:
        meta, frame, kw = snapshots[i]
        kw = dict(kw)
        if "history" not in kw:
            kw["history"] = earlier_frames(snapshots, i)
        return project_units(frame, contest, params=params, snapshot_id=meta.snapshot_id,
                             as_of=meta.as_of, pairs=((a, b),), **kw)

    return run_replay(contest.id, "units", [s[0] for s in snapshots], one, final,
                      race=(a, b), from_pct=from_pct, progress=progress, seed=params.seed)


def earlier_frames(snapshots: Sequence[tuple[CutMeta, pl.DataFrame, Any]], i: int
                   ) -> tuple[pl.DataFrame, ...]:
    """The frames of the items before ``i`` at the same level whose ``as_of`` is strictly
    earlier than item ``i``'s, oldest first (items without a time: by position)."""
    now, frame = snapshots[i][0].as_of, snapshots[i][1]

    def level(f: pl.DataFrame) -> object:
        return f["level"][0] if "level" in f.columns and f.height else None

    lv = level(frame)
    prior = [(m.as_of, j, f) for j, (m, f, _) in enumerate(snapshots[:i])
             if level(f) == lv and (now is None or (m.as_of is not None and m.as_of < now))]
    if now is not None:
        prior.sort(key=lambda t: (t[0], t[1]))
    return tuple(f for _, _, f in prior)


def replay_series(
    metas: Sequence[CutMeta], fractions: Sequence[float], contest: Contest, *,
    final: dict[str, int], params: ModelParams | None = None,
    race: tuple[str, str] | None = None,
    from_pct: float = 67.0,
    progress: Callable[[int, int], Any] | None = None, skipped: Sequence[SkippedCut] = (),
) -> ReplayResult:
    """Replay national totals alone (:func:`~escrutinio.projection.units.project_series`):
    at cut i the model sees cuts 0..i only."""
    from escrutinio.projection.model import ModelParams
    from escrutinio.projection.units import project_series

    params = params or ModelParams()
    a, b = race or tuple(sorted(final, key=lambda c: -final[c])[:2])
    codes = [c.code for c in contest.candidates]
    hist = [([m.counted.get(c, 0) for c in codes], f) for m, f in zip(metas, fractions,
                                                                        strict=True)]

    def one(i: int) -> Projection:
        return project_series(hist[:i + 1], contest, params=params,
                              snapshot_id=metas[i].snapshot_id, as_of=metas[i].as_of,
                              pairs=((a, b),))

    return run_replay(contest.id, "series", metas, one, final, race=(a, b), from_pct=from_pct,
                      progress=progress, seed=params.seed, skipped=skipped)


def replay_snapshots(
    snapshots: Sequence[tuple[CutMeta, pl.DataFrame]], contest: Contest, *,
    final: dict[str, int], baseline: pl.DataFrame | Baseline | None = None,
    blocs: dict[str, list[str]] | None = None, params: ModelParams | None = None,
    race: tuple[str, str] | None = None, from_pct: float = 67.0,
    progress: Callable[[int, int], Any] | None = None,
) -> ReplayResult:
    """Replay per-acta snapshots as they were published (no order to rebuild): each item
    is (meta, canonical acta frame). ``meta.pct_counted`` and ``meta.counted`` may be
    left empty: they are then taken from the frame (contabilizadas / all actas; votes of
    counted actas). Each cut is given the earlier ones as history."""
    from escrutinio.domain import CONTABILIZADA
    from escrutinio.projection.model import ModelParams, prepare_baseline, project_actas

    params = params or ModelParams()
    base = prepare_baseline(baseline, blocs) if baseline is not None and not hasattr(
        baseline, "n_features") else baseline
    a, b = race or tuple(sorted(final, key=lambda c: -final[c])[:2])
    metas = []
    for meta, frame in snapshots:
        pct = meta.pct_counted
        if pct is None:
            pct = 100.0 * cast(float, frame["status"].is_in([s.value for s in CONTABILIZADA])
                               .mean())
        counted = meta.counted or {
            c.code: int(frame.filter(pl.col("status") == ActaStatus.COUNTED.value)[c.column]
                        .fill_null(0).sum()) for c in contest.candidates}
        metas.append(CutMeta(meta.as_of, meta.label, meta.snapshot_id, pct, counted))

    def one(i: int) -> Projection:
        now = metas[i].as_of
        return project_actas(snapshots[i][1], contest, baseline=base, params=params,
                             snapshot_id=metas[i].snapshot_id, as_of=now, pairs=((a, b),),
                             history=[f for m, f in snapshots[:i]
                                      if now is None or m.as_of is None or m.as_of < now])

    return run_replay(contest.id, "actas", metas, one, final, race=(a, b), from_pct=from_pct,
                      progress=progress, seed=params.seed)
