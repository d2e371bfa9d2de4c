"""The drift model (escrutinio.projection.drift) and the per-unit / series projections that
use it: errors learned from the count itself, late shifts, vote types (issue 13).

Reduced versions of ``validation/projection_counts.py`` (synthetic counts with a
non-random arrival order and a late batch) and ``validation/replay_us2020.py`` (real US
2020 count progressions): they can fail, and the full runs are recorded in
``validation/RESULTS-projection.md``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from escrutinio.domain import Candidate, Contest, ContestKind
from escrutinio.projection.drift import PRIOR_PERSISTENCE, PRIOR_WEIGHT, fit_drift
from escrutinio.projection.model import ModelParams, project_actas
from escrutinio.projection.result import CallStatus
from escrutinio.projection.units import project_series, project_units

VALIDATION = Path(__file__).resolve().parents[1] / "validation"
sys.path.insert(0, str(VALIDATION))

import count_simulator as cs  # noqa: E402
import projection_counts as pc  # noqa: E402

RUNOFF = Contest("zz-2v", "Segunda vuelta", ContestKind.RUNOFF, "ZZ", "2030-01-01",
                 (Candidate("azul", "Azul", "v_azul"), Candidate("rojo", "Rojo", "v_rojo")))


def test_one_cut_uses_the_declared_priors_only() -> None:
    fit = fit_drift(np.array([[[5200.0, 4800.0], [3000.0, 3100.0]]]))
    assert fit.common.n_resid == 0 and fit.unit.n_resid == 0
    assert np.allclose(fit.center, 0.0)
    assert fit.tail_df is None
    assert float(fit.common.at(1000.0)) == pytest.approx(fit.common.prior)


def test_a_steady_trend_is_learned_and_anticipated() -> None:
    """New votes lean more and more to 'rojo': the centre moves towards rojo beyond the
    counted shares, and the common error is learned from the cuts (not the prior)."""
    cum = np.zeros(2)
    hist = []
    for i in range(30):
        share_rojo = 0.40 + 0.006 * i  # the share among newly counted votes rises
        batch = np.array([1 - share_rojo, share_rojo]) * 100_000
        cum = cum + batch
        hist.append((cum.tolist(), (i + 1) / 40))
    p = project_series(hist, RUNOFF, params=ModelParams(n_sims=4000, seed=1))
    counted = np.array(hist[-1][0])
    rest = counted.sum() * (40 / 30 - 1)
    naive_rojo = counted[1] / counted.sum() * rest
    exp_rojo = next(c for c in p.candidates if c.code == "rojo").expected_remaining
    assert exp_rojo > naive_rojo * 1.05  # anticipates the trend
    d = p.diagnostics["drift"]
    assert isinstance(d, dict) and d["n_common_residuals"] == 29 and d["carry"] > 0.3
    # the truth, if the trend goes on (new votes at 0.58 → 0.64 rojo), is inside
    truth = counted + np.array([1 - 0.61, 0.61]) * rest
    iv = next(i for i in p.races[0].intervals if i.level == 0.9)
    sign = 1 if p.races[0].leader == "azul" else -1
    lo, hi = sorted((sign * iv.lower, sign * iv.upper))
    assert lo <= truth[0] - truth[1] <= hi


def test_a_series_keeps_its_prior_apart_as_a_mixture() -> None:
    """A national series cannot see what kind of votes remain: the declared prior is not
    blended into the scale learned from the count (which it would dominate: a 21-point
    prior against batches that move a few points) but kept apart, with probability
    w0/(w0 + residuals) — so a calm count gets a narrow core and still a heavy tail.
    Per-unit data keeps the blend (the parts still to come are visible unit by unit)."""
    rng = np.random.default_rng(3)
    cum = np.zeros(2)
    hist = []
    for _ in range(30):
        share = 0.5 + rng.normal(0, 0.004)
        cum = cum + np.array([share, 1 - share]) * 100_000
        hist.append(cum.copy())
    series = fit_drift(np.array(hist)[:, None, :])
    n = series.common.n_resid
    assert n == 29 and not series.common.blend
    prob, cov = series.prior_mix()
    assert prob == pytest.approx(PRIOR_WEIGHT / (PRIOR_WEIGHT + n))
    assert float(series.common.at(50_000.0)) < series.common.prior / 20  # the count's own
    assert np.trace(cov) == pytest.approx(series.common.prior * np.trace(series.shape))
    two = np.stack([np.array(hist), np.array(hist) * 0.7], axis=1)  # two units
    units = fit_drift(two)
    assert units.common.blend and units.prior_mix()[0] == 0.0
    # the projection draws the mixture: the 50% interval is narrow, the 99% one is not
    p = project_series([(h.tolist(), (i + 1) / 40) for i, h in enumerate(hist)], RUNOFF,
                       params=ModelParams(n_sims=20_000, seed=2, levels=(0.5, 0.99)))
    iv = {i.level: (i.upper - i.lower) / 2 for i in p.races[0].intervals}
    assert iv[0.99] > 4 * iv[0.5] * 2.576 / 0.674  # much heavier than a normal's tail


def test_isotropic_prior_means_what_it_says() -> None:
    """``isotropic_clr_cov(k, sd)``: the log-ratio of any two candidates has SD ``sd``
    (it had sd/√2 until the seventh session: the declared priors were 30% narrower)."""
    from escrutinio.projection import linalg as la

    for k in (2, 3, 5):
        cov = la.isotropic_clr_cov(k, 0.8)
        for i, j in ((0, 1), (0, k - 1)):
            d = np.zeros(k)
            d[i], d[j] = 1.0, -1.0
            assert float(d @ cov @ d) == pytest.approx(0.64)


@pytest.mark.slow  # parses two national per-acta files
def test_the_prior_on_an_unseen_vote_type_is_the_measured_late_lean(data_dir: Path) -> None:
    """PRIOR_TYPE_SD is declared from real counts (validation/late_lean.py), not from the
    synthetic ones: the RMS lean of late blocks, rounded to one decimal."""
    import late_lean

    from escrutinio.projection.model import PRIOR_TYPE_SD

    res = late_lean.measure()
    assert res["pooled_n"] >= 25  # comparisons: 24 US states, two Peruvian abroad-v-home
    assert round(float(res["pooled_rms"]), 1) == PRIOR_TYPE_SD  # type: ignore[arg-type]
    # the synthetic counts' late batches lean by the same measured spread (the model's
    # prior and the simulator share the measurement, not a fit to each other)
    assert round(float(res["pooled_rms"]), 2) == cs.MEASURED_LATE_LEAN_SD  # type: ignore[arg-type]


def test_synthetic_late_batches_lean_as_measured_or_towards_the_trailer() -> None:
    """Half the synthetic counts have a mail-style late batch (towards the election-day
    trailer, 0.3-1.0 on the log-odds); the other half lean either way with the measured
    spread; ``late_leans="mild"`` is the earlier design where that half did not lean."""
    sims = [cs.simulate(s) for s in range(1, 201)]
    other = np.array([x.late_shift for x in sims if not x.mail_scenario])
    mail = [x for x in sims if x.mail_scenario]
    assert 60 < other.size < 140 and len(mail) == 200 - other.size
    assert np.all(other != 0.0)
    assert 0.5 * cs.MEASURED_LATE_LEAN_SD < float(np.sqrt((other ** 2).mean())) \
        < 1.5 * cs.MEASURED_LATE_LEAN_SD
    assert all(0.3 <= abs(x.late_shift) <= 1.0 for x in mail)
    # towards the trailer on election day: the late batch moves A's share up iff A trails
    for x in mail[:10]:
        day = ~x.late
        a_day = x.votes[day, 0].sum() / x.votes[day].sum()
        assert (x.late_shift > 0) == (a_day < 0.5)
    mild = [cs.simulate(s, late_leans="mild") for s in range(1, 41)]
    assert all(x.late_shift == 0.0 for x in mild if not x.mail_scenario)
    with pytest.raises(ValueError):
        cs.simulate(1, late_leans="wild")


def test_json_of_a_drift_projection_is_strict() -> None:
    p = project_series([([520_000, 480_000], 0.8), ([600_000, 570_000], 0.9)], RUNOFF,
                       params=ModelParams(n_sims=500))
    from escrutinio.provenance import to_jsonable

    text = json.dumps(to_jsonable(p), allow_nan=False)
    assert "NaN" not in text
    assert all(math.isfinite(v) for v in (p.margin.median, p.margin.mean))


def _late_count_seed() -> int:
    """A synthetic count whose late batch shifts by at least 0.6 on the log-odds."""
    for s in range(1, 200):
        sim = cs.simulate(s)
        if abs(sim.late_shift) >= 0.6 and sim.late.mean() > 0.08:
            return s
    raise AssertionError("no such count")


def test_an_unseen_vote_type_keeps_the_door_open() -> None:
    """Before any late (mail) vote is counted, a source that says which votes are late
    lets the model keep them uncertain: the eventual winner is never ruled out. With the
    late rows published apart the model is honest at every cut."""
    seed = _late_count_seed()
    sim = cs.simulate(seed)
    final = sim.final
    winner = "a" if final["a"] > final["b"] else "b"
    sizes = cs.cut_sizes(sim, pc.CUTS)
    frames = cs.unit_frames(sim, sizes, typed=True)
    for i in (int(np.argmin(np.abs(pc.CUTS - f))) for f in (0.5, 0.8, 0.9, 0.98)):
        p = project_units(frames[i], cs.CONTEST, params=ModelParams(n_sims=2000, seed=seed),
                          history=frames[:i], pairs=(("a", "b"),))
        pw = next(c for c in p.candidates if c.code == winner).p_win
        assert pw > 0.01, (pc.CUTS[i], pw)
        if p.call.status is CallStatus.CALLED:
            assert p.call.winner == winner


@pytest.mark.slow  # seconds of Monte-Carlo / random inputs: make test runs it
@pytest.mark.parametrize("granularity", ["units", "series"])
def test_synthetic_counts_reduced(granularity: str) -> None:
    """20 synthetic counts (the full 1,000 are in validation/RESULTS-projection.md): no
    wrong call, and the 90% interval covers at least 80% of the projections."""
    rows = [r for s in range(1, 21) for r in pc.run_count(s, granularity, 1000)]
    summ = pc.summarise(rows)
    assert summ["counts_with_a_wrong_call"] == 0
    cov = summ["coverage"]
    assert isinstance(cov, dict) and cov["90%"] >= 0.80, cov


def test_synthetic_actas_with_vote_types() -> None:
    seed = _late_count_seed()
    sim = cs.simulate(seed)
    winner = "a" if sim.final["a"] > sim.final["b"] else "b"
    n = int(cs.cut_sizes(sim, np.array([0.8]))[0])
    p = project_actas(cs.acta_frame(sim, n), cs.CONTEST,
                      params=ModelParams(n_sims=2000, seed=seed))
    assert next(c for c in p.candidates if c.code == winner).p_win > 0.01
    if p.call.status is CallStatus.CALLED:
        assert p.call.winner == winner


def test_us_2020_series_never_certain_of_the_wrong_winner(data_dir: Path) -> None:
    """Real count progressions with late mail ballots (New York: Biden 58.97% → 61.74%;
    California the other way): no wrong call, and the eventual leader keeps P > 0.5."""
    import replay_us2020 as us

    states = us.load(data_dir / "us-2020-president-progress" /
                     "state-changes-excerpt.csv.gz")
    for name in ("New York", "California", "Alaska"):
        res = us.replay_state(states[name], 500, 0)
        assert res["wrong_calls"] == 0, name
        assert isinstance(res["min_p_winner"], float) and res["min_p_winner"] > 0.5, name


def test_a_count_that_corrected_itself_is_not_final_at_100_percent(data_dir: Path) -> None:
    """Florida 2020 (NYT feed): the feed's estimate of votes remaining went to 0 (the count
    had passed its expected total) after a cut that took votes away from a candidate; the
    margin then still moved by 1,400 votes. The projection at that "100%" cut keeps one
    more correction like the one seen (its own component, labelled in both languages) and
    its 90% interval holds the final; before, it was a zero-width interval — "final" said
    of a count that was not."""
    import replay_us2020 as us

    g = us.load(data_dir / "us-2020-president-progress" / "state-changes-excerpt.csv.gz"
                )["Florida"]
    v = g.select("biden", "trump", "other").to_numpy().astype(float)
    rem = g["votes_remaining"].to_numpy().astype(float).clip(0, None)
    frac = v.sum(axis=1) / np.maximum(v.sum(axis=1) + rem, 1.0)
    fm = v[-1, 0] - v[-1, 1]
    hist = [(v[i].tolist(), float(min(frac[i], 1.0))) for i in range(2)]
    assert hist[1][1] == 1.0 and (np.diff(v[:2], axis=0) < 0).any()
    p = project_series(hist, us.CONTEST, params=ModelParams(n_sims=4000, seed=0),
                       pairs=(("biden", "trump"),))
    race = next(r for r in p.races if {r.leader, r.trailer} == {"biden", "trump"})
    sign = 1.0 if race.leader == "biden" else -1.0
    lo, hi = sorted((sign * race.interval(0.9).lower, sign * race.interval(0.9).upper))
    assert lo <= fm <= hi and hi - lo > 1_000, (lo, fm, hi)
    rev = [c for c in p.components if c.component.value == "revision"]
    assert len(rev) == 1 and rev[0].n_items == 1 and rev[0].label_es.startswith("correcciones")
    assert rev[0].count_text("es") == "correcciones vistas: 1"
    assert rev[0].count_text("en") == "corrections seen: 1"
    # nothing remains per the source, and the hurdle says so — with the exception
    es, en = p.hurdle.sentence()
    assert "no votes remain" in en and "except through corrections" in en
    assert "salvo por correcciones" in es
    assert abs(rev[0].expected_margin_change) < 0.1 * rev[0].sd_margin_change


def test_corrections_are_steps_that_take_votes_away_not_broken_cuts() -> None:
    """fit_corrections: a unit that loses a few votes is a correction (its whole step
    counts); a unit missing from a cut (NaN) is not; a step that removes more than 1% of
    the counted votes is a broken cut, left out; a count without any has no term."""
    from escrutinio.projection.drift import fit_corrections

    cum = np.array([[[1000.0, 900.0], [500.0, 500.0]],
                    [[1100.0, 1000.0], [np.nan, np.nan]],
                    [[1095.0, 1010.0], [600.0, 600.0]],   # unit 0 takes 5 away from a
                    [[1200.0, 1100.0], [100.0, 100.0]]])  # unit 1 loses 1,000: broken
    cov, n = fit_corrections(cum)
    assert n == 1 and cov is not None
    np.testing.assert_allclose(cov, np.outer([-5.0, 10.0], [-5.0, 10.0]))
    none, n0 = fit_corrections(np.cumsum(np.ones((4, 3, 2)), axis=0))
    assert none is None and n0 == 0
    sim = cs.simulate(2)
    hist = cs.series(sim, cs.cut_sizes(sim, np.array([0.5, 0.7, 0.9])))
    p = project_series(hist, cs.CONTEST, params=ModelParams(n_sims=2000, seed=3))
    assert all(c.component.value != "revision" for c in p.components)


def test_prior_weight_is_declared() -> None:
    assert PRIOR_WEIGHT == 2.0  # documented in docs/projection.md


def test_fewer_votes_per_acta_late_are_anticipated() -> None:
    """Batches of actas with fewer and fewer valid votes each: the votes still to come
    per acta are expected below the counted average (the volume of the rest shrinks);
    with a steady rate, no shift."""
    from escrutinio.projection.drift import fit_volume

    actas = np.cumsum(np.full(12, 100.0))[:, None]
    falling = np.cumsum(np.linspace(220.0, 120.0, 12) * 100.0)[:, None]
    steady = np.cumsum(np.full(12, 200.0 * 100.0))[:, None]
    assert float(fit_volume(falling, actas)[0]) < -0.05
    assert abs(float(fit_volume(steady, actas)[0])) < 1e-9
    assert float(fit_volume(falling[:1], actas[:1])[0]) == 0.0


def test_each_unit_gets_its_own_lumpiness_shrunk_to_the_pool() -> None:
    """Two kinds of units over ten cuts: 'calm' ones whose batches look like what they had
    counted, and one 'lumpy' unit whose batches swing ±20 points of share. The lumpy unit's
    term must come out larger than a calm unit's, each shrunk towards the pooled fit (never
    0, never the lumpy unit's raw ratio); a national series (one unit) has no such scale."""
    rng = np.random.default_rng(7)
    n_units, n_cuts = 12, 10
    cum = np.zeros((n_cuts, n_units, 2))
    tot = np.zeros((n_units, 2))
    for j in range(n_cuts):
        share = 0.5 + rng.normal(0.0, 0.01, n_units)
        share[0] = 0.5 + (0.2 if j % 2 else -0.2)  # the lumpy unit
        size = np.full(n_units, 5_000.0)
        tot = tot + np.column_stack([share * size, (1 - share) * size])
        cum[j] = tot
    fit = fit_drift(cum, remaining=np.full(n_units, 20_000.0))
    assert fit.unit_scale is not None
    lumpy, calm = fit.unit_scale[0], float(np.median(fit.unit_scale[1:]))
    assert lumpy > 3.0 * calm
    raw = 1.0 + (lumpy - 1.0) * (PRIOR_WEIGHT + (n_cuts - 1)) / (n_cuts - 1)
    assert lumpy < raw  # shrunk towards the pool
    f = fit.unit_factor(np.full(n_units, 20_000.0), tot.sum(axis=1), np.arange(n_units))
    assert f[0] > 3.0 * float(np.median(f[1:]))
    series = fit_drift(cum[:, :1, :], remaining=np.array([20_000.0]))
    assert series.unit_scale is None or np.allclose(series.unit_scale, 1.0)


def test_a_units_part_under_review_leans_by_the_measured_amount() -> None:
    """At 98% counted a synthetic count's remainder is mostly observed actas held for
    review (scattered over their regions). Their deviation is the country's measured lean
    (``JeeOutcomes.lean_margin_sd``): the interval widens with it, and the projection says
    which value it used."""
    from escrutinio.projection.model import JeeOutcomes

    sim = cs.simulate(3)
    sizes = cs.cut_sizes(sim, pc.CUTS)
    frames = cs.unit_frames(sim, sizes, typed=True)
    i = int(np.argmin(np.abs(pc.CUTS - 0.98)))
    assert int(frames[i]["actas_jee"].sum()) > 0
    width = {}
    for lean in (0.01, 0.5):
        params = ModelParams(n_sims=4000, seed=1, jee=JeeOutcomes(lean_margin_sd=lean))
        p = project_units(frames[i], cs.CONTEST, params=params, history=frames[:i],
                          pairs=(("a", "b"),))
        assert p.diagnostics["review_lean_margin_sd"] == lean
        iv = next(r for r in p.races if {r.leader, r.trailer} == {"a", "b"}).interval(0.9)
        width[lean] = iv.upper - iv.lower
    assert width[0.5] > 1.2 * width[0.01], width


def test_a_remainder_of_many_batches_averages_what_does_not_persist() -> None:
    """Units whose batch deviations flip sign from one batch to the next (no persistence)
    get ρ well below 1, and a remainder of many batches a smaller unit term than a
    remainder of one batch; with a couple of batch pairs only, ρ stays near its declared
    prior (a count that has shown little is shrunk towards what real counts show)."""
    rng = np.random.default_rng(11)

    def fit(n_units: int, n_cuts: int):
        cum = np.zeros((n_cuts, n_units, 2))
        tot = np.zeros((n_units, 2))
        sign = rng.choice([-1.0, 1.0], n_units)
        for j in range(n_cuts):
            share = 0.5 + 0.08 * sign * (-1.0) ** j + rng.normal(0, 0.01, n_units)
            tot = tot + np.column_stack([share, 1 - share]) * 4_000.0
            cum[j] = tot
        return fit_drift(cum, remaining=np.full(n_units, 40_000.0)), tot

    flip, tot = fit(20, 12)
    assert flip.persistence < 0.5, flip.persistence
    units = np.arange(20)
    many = flip.unit_factor(np.full(20, 40_000.0), tot.sum(axis=1), units)
    one = flip.unit_factor(np.full(20, 4_000.0), tot.sum(axis=1), units)
    assert float(np.median(many)) < 0.8 * float(np.median(one))
    few, _ = fit(2, 3)
    assert few.persistence >= 0.4 * PRIOR_PERSISTENCE > 5 * flip.persistence, (
        few.persistence, flip.persistence)


@pytest.mark.slow  # parses the 2021 runoff tables and both first rounds' district scrapes
def test_the_persistence_prior_is_what_real_counts_show(data_dir: Path) -> None:
    """The declared persistence prior is the largest lag-1 correlation measured on the
    real per-unit counts with at least 10 pairs of batches (validation/unit_persistence.py),
    rounded up to a tenth — not 1, which no real count shows, nor a number picked to fit."""
    import unit_persistence as up

    res = up.measure()
    rhos = [float(v["rho"]) for v in res.values() if v["pairs"] >= 10 and v["rho"] is not None]
    assert len(rhos) >= 3, res
    assert max(rhos) <= PRIOR_PERSISTENCE <= max(rhos) + 0.1, (rhos, PRIOR_PERSISTENCE)
    assert max(rhos) < 0.9, rhos  # full persistence (the old prior) is not what counts do


def test_perus_review_lean_is_its_measurement(data_dir: Path) -> None:
    """The constant in Peru's pack is what validation/review_lean_peru.py measures on the
    2021 runoff (the largest of the three levels), not a number picked to fit."""
    import review_lean_peru as rl

    from escrutinio.countries.peru import COURT_OUTCOMES_2021

    got = rl.measure(data_dir)
    top = max(v["rms_margin_share"] for v in got.values())
    assert COURT_OUTCOMES_2021.lean_margin_sd == pytest.approx(top, abs=0.005)
    assert all(v["held_actas_counted"] > 1_000 for v in got.values())


def test_the_court_lottery_is_per_sheet_not_per_unit() -> None:
    """A unit's part at the court is many sheets, each annulled or not on its own: the
    lottery's variance of 400 sheets holding V votes is 1/400 of one sheet holding V."""
    from escrutinio.projection.engine import LevelVariance, build_cells

    k = 2
    zero = np.zeros((k, k))

    def cov(sheets: float) -> np.ndarray:
        cells = build_cells(
            v=np.array([40_000.0]), p=np.array([[0.6, 0.4]]), tder=np.ones(1),
            component=np.array(["jee"], dtype=object), regime=np.zeros(1, np.int64),
            cell=np.zeros(1, np.int64), group=np.zeros(1, np.int64),
            levels=[LevelVariance(np.zeros(1, np.int64), np.zeros(1), np.zeros(1),
                                  (zero, zero), (0.0, 0.0))],
            noise_share=(zero, zero), noise_turn=(0.0, 0.0), cap=np.full(1, 1e9),
            jee=np.ones(1, bool), p_annulled=0.14, jee_scale=np.ones(1),
            jee_sheets=np.array([sheets]))
        return cells.cov[0]

    one, many = cov(1.0), cov(400.0)
    assert one[0, 0] > 0 and np.allclose(many, one / 400.0)


def test_sheets_under_review_are_not_the_counts_late_arrivals() -> None:
    """Synthetic count 96 at 98%: all that remains is observed actas (random sheets). The
    drift of the late arrivals (a mail batch came last) must not move them: the final
    margin (−188, a near tie) lies inside the 90% interval and no wrong candidate is
    called."""
    sim = cs.simulate(96)
    fm = sim.final["a"] - sim.final["b"]
    sizes = cs.cut_sizes(sim, pc.CUTS)
    frames = cs.unit_frames(sim, sizes)
    i = int(np.argmin(np.abs(pc.CUTS - 0.98)))
    p = project_units(frames[i], cs.CONTEST, params=ModelParams(n_sims=4000, seed=96),
                      history=frames[:i], pairs=(("a", "b"),))
    race = next(r for r in p.races if {r.leader, r.trailer} == {"a", "b"})
    sign = 1.0 if race.leader == "a" else -1.0
    lo, hi = sorted((sign * race.interval(0.9).lower, sign * race.interval(0.9).upper))
    assert lo <= fm <= hi, (lo, fm, hi)
    if p.call.status is CallStatus.CALLED:
        assert p.call.winner == ("a" if fm > 0 else "b")


def test_no_look_ahead_term_from_noise_alone() -> None:
    """Units whose batches are drawn from fixed shares (nothing builds up as the count
    goes on): the look-ahead term is estimated from the excess of each stretch over the
    batch-level terms, averaged before it is clipped at zero — so in about half of such
    counts it is exactly zero (clipping each stretch's excess first kept the positive half
    of the noise and never gave zero)."""
    zeros = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        n_units, n_cuts = 30, 6
        p = rng.dirichlet([20.0, 20.0], n_units)
        sizes = rng.integers(2_000, 20_000, (n_cuts, n_units))
        batches = np.stack([np.stack([rng.multinomial(int(sizes[j, u]), p[u])
                                      for u in range(n_units)]) for j in range(n_cuts)])
        cum = np.cumsum(batches, axis=0).astype(float)
        fit = fit_drift(cum, remaining=np.full(n_units, 20_000.0))
        s2 = fit.diagnostics["unit_lookahead"]
        assert isinstance(s2, float) and s2 >= 0.0
        zeros += s2 == 0.0
    assert zeros >= 5, zeros


def test_a_source_that_starts_late_does_not_widen_on_noise() -> None:
    """Synthetic count 3 published only from 90% counted (as Peru 2021's department
    tables began at 93%): one or two more cuts must not make the interval much wider than
    with none — a few mesas of a small unit are noise, not a trend building up (before the
    look-ahead excess was weighed by its expected variance, with the unit's own
    lumpiness, the 90% half-width went 9.7k → 19.9k → 29.3k; now 9.7k → 8.7k → 15.1k)."""
    sim = cs.simulate(3)
    sizes = cs.cut_sizes(sim, pc.CUTS)
    frames = cs.unit_frames(sim, sizes)
    j0 = int(np.searchsorted(pc.CUTS, 0.9 - 1e-9))
    fm = sim.final["a"] - sim.final["b"]
    hw = {}
    for f in (0.90, 0.905, 0.91):
        i = int(np.argmin(np.abs(pc.CUTS - f)))
        p = project_units(frames[i], cs.CONTEST, params=ModelParams(n_sims=2000, seed=1),
                          history=frames[j0:i], pairs=(("a", "b"),))
        race = next(r for r in p.races if {r.leader, r.trailer} == {"a", "b"})
        iv = race.interval(0.9)
        hw[f] = (iv.upper - iv.lower) / 2
        sign = 1.0 if race.leader == "a" else -1.0
        lo, hi = sorted((sign * iv.lower, sign * iv.upper))
        assert lo <= fm <= hi, (f, lo, fm, hi)
    assert max(hw[0.905], hw[0.91]) < 2.0 * hw[0.90], hw


@pytest.mark.slow  # parses the 2021 per-acta file and the US progressions
def test_the_unit_prior_is_in_the_range_real_units_show(data_dir: Path) -> None:
    """Before any history a unit's remainder may differ from its counted votes by the
    declared PRIOR_UNIT_MARGIN_SD (validation/unit_remainder_lean.py): at the first cut of
    the real per-unit counts the units' own leans have an RMS of 0.12-0.37 of the margin's
    share (Peru 2021 districts, provinces, departments; US 2020 states), the shared part
    is within the common prior."""
    import unit_remainder_lean as url

    from escrutinio.projection.drift import PRIOR_COMMON_MARGIN_SD, PRIOR_UNIT_MARGIN_SD

    res = url.measure()
    peru = res["peru_2021_runoff_first_snapshot"]
    us2020 = res["us_2020_first_record"]
    assert isinstance(peru, dict) and isinstance(us2020, dict)
    rms = [float(v["unit_rms"]) for v in peru.values()] + [float(us2020["unit_rms"])]
    assert min(rms) <= PRIOR_UNIT_MARGIN_SD <= max(rms), rms
    commons = [abs(float(v["common"])) for v in peru.values()] + [abs(float(us2020["common"]))]
    assert max(commons) <= 1.5 * PRIOR_COMMON_MARGIN_SD, commons


def test_sheets_held_for_review_per_acta_take_the_declared_lean_not_the_arrival_shock() -> None:
    """Per acta, at 98% counted a synthetic count has only its sheets held for review left
    (random sheets, none with figures). With the country's measured lean declared (the
    simulator's: none) they are not the count's next arrivals: no national arrival shock,
    so the interval is narrower than when the lean is unknown (None: the shock stays), and
    the final margin stays inside it."""
    from dataclasses import replace as dc_replace

    sim = cs.simulate(5)
    fm = sim.final["a"] - sim.final["b"]
    n = int(cs.cut_sizes(sim, np.array([0.98]))[0])
    frame = cs.acta_frame(sim, n)
    width = {}
    for name, jee in (("declared", cs.REVIEW), ("unknown", dc_replace(cs.REVIEW,
                                                                        lean_margin_sd=None))):
        p = project_actas(frame, cs.CONTEST, params=ModelParams(n_sims=4000, seed=5, jee=jee))
        race = next(r for r in p.races if {r.leader, r.trailer} == {"a", "b"})
        iv = race.interval(0.9)
        width[name] = iv.upper - iv.lower
        sign = 1.0 if race.leader == "a" else -1.0
        lo, hi = sorted((sign * iv.lower, sign * iv.upper))
        assert lo <= fm <= hi, (name, lo, fm, hi)
    assert width["declared"] < 0.95 * width["unknown"], width
