"""Forensic screening on real data: it does not cry wolf on clean redraws, it sees strong
injected manipulation, it refuses first-digit Benford, and its report adds up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from escrutinio.forensics import BenfordRefused, fingerprint_image, run_forensics
from escrutinio.forensics.simulate import (
    inject_fabricated_digits,
    inject_rounding,
    inject_shift,
    inject_stuffing,
    redraw_clean,
)
from escrutinio.provenance import to_jsonable
from escrutinio.sources.chile import CHILE_2021_FIRST_ROUND, chile_2021_actas
from escrutinio.sources.onpe_files import parse_ronderos

RUNOFF = "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz"
FIRST = "peru-2021-first-round/presidencial-actas_ronderos.pe.csv.gz"
#: Arequipa, Cusco, Puno and Europe: ~11,600 actas, home and abroad, fast to test on
SUBSET = ["040000", "070000", "200000", "940000"]


@pytest.fixture(scope="session")
def peru(data_dir: Path):
    r = parse_ronderos(data_dir / RUNOFF, as_of="2021-06-17T00:00:00Z")
    f = parse_ronderos(data_dir / FIRST, as_of="2021-05-11T09:15:00Z")
    return r, f


@pytest.fixture(scope="session")
def subset(peru):
    r, f = peru
    keep = pl.col("area1_code").is_in(SUBSET)
    return r.frame.filter(keep), r.contest, f.frame.filter(keep), f.contest


@pytest.fixture(scope="session")
def peru_report(peru):
    r, f = peru
    names = dict(zip(r.geography["code"], r.geography["name"], strict=True))
    return run_forensics(r.frame, r.contest, previous=f.frame, previous_contest=f.contest,
                         names=names, snapshot_ids=(r.snapshot_id, f.snapshot_id),
                         max_flagged=None)


def test_real_runoff_is_not_flagged_and_report_adds_up(peru, peru_report) -> None:
    r, _ = peru
    rep = peru_report
    assert rep.flags == ()
    assert {t.test for t in rep.tests} == {"integer", "last_digit", "second_digit",
                                          "fingerprint", "place", "panel"}
    integer = next(t for t in rep.tests if t.test == "integer" and t.quantity == "turnout")
    # 300-elector mesas make a third of turnouts whole percentages: expected ≈ observed
    assert integer.national.statistic == 24_070
    assert abs(integer.national.expected - 24_070) < 500
    assert integer.verdict_es.startswith("Sin anomalía") and "p = " in integer.verdict_en
    # the stakes bound: only actas in flagged scopes count (issue 14). Nothing is flagged,
    # so the actas that stand out individually are listed for review but weigh nothing
    st = rep.stakes
    assert st.margin == 8_835_653 - 8_791_696 and st.leader == "castillo"
    assert st.n_listed == rep.n_flagged_actas == len(rep.flagged_actas) > 0
    assert not any(a.in_flagged_scope for a in rep.flagged_actas)
    assert st.n_actas == st.valid_votes == st.net_for_leader == 0
    assert st.margin_if_annulled == st.margin - st.net_for_leader
    assert not st.could_change_winner and not st.could_change_result
    assert [t.kind for t in st.thresholds] == ["winner"]
    assert "matter for the result" not in st.text_en and "importan" not in st.text_es
    assert "no flagged vote can change" in st.text_en
    assert rep.panel_info["actas_joined"] > 75_000
    # reproducibility footer: data hash, snapshots, seed, filters, in both languages
    assert rep.data_hash[:16] in rep.footer_es and rep.data_hash[:16] in rep.footer_en
    assert r.snapshot_id[:12] in rep.footer_en and "20210606" in rep.footer_es
    assert "excluded_status_annulled=220" in rep.footer_en
    doc = json.loads(json.dumps(to_jsonable(rep)))
    # 14 test × quantity pairs, plus Kobak et al.'s combined count (issue 14)
    assert doc["provenance"]["seed"] == 20210606 and len(doc["tests"]) == 15
    combined = next(t for t in rep.tests if t.quantity == "turnout_or_share")
    assert combined.national.p_method in ("monte_carlo", "analytic_tail")
    assert not combined.n_flagged_scopes and combined.national.details["draws"] == 199
    assert combined.national.statistic == 30_196 and combined.national.p_value > 0.05
    assert abs(combined.national.expected - 30_196) < 500
    # Klimek's fit next to the joint-tail test: both candidates, at home, no extreme corner
    assert [k.candidate for k in rep.klimek] == ["castillo", "fujimori"]
    for k in rep.klimek:
        assert k.stratum == "home" and k.f_extreme < 0.005 and k.ci_extreme is not None
        assert 0 <= k.ci_extreme[0] <= k.ci_extreme[1] < 0.005
        assert "not a test" in k.text_en and "no una prueba" in k.text_es
    img = fingerprint_image(rep)
    assert img.ndim == 3 and img.shape[2] == 3 and img.shape[1] > 600  # home + abroad


# 13 s: many Monte-Carlo redraws (make test runs it; make test-fast does not)
@pytest.mark.slow
def test_clean_redraws_do_not_cry_wolf(subset) -> None:
    """Reduced calibration: 25 clean redraws of ~11,600 real actas. With a level-0.05
    test, 6 or more rejections out of 25 happen by chance with probability 0.007."""
    frame, contest, prev, prev_contest = subset
    rng = np.random.Generator(np.random.PCG64(2024))
    rejections: dict[str, int] = {}
    any_flag = 0
    pvalues: list[float] = []
    for _ in range(25):
        clean = redraw_clean(frame, contest, rng)
        clean_prev = redraw_clean(prev, prev_contest, rng)
        rep = run_forensics(clean, contest, previous=clean_prev, previous_contest=prev_contest,
                            max_flagged=0)
        any_flag += bool(rep.flags)
        for t in rep.tests:
            key = f"{t.test}:{t.quantity}"
            rejections[key] = rejections.get(key, 0) + (t.national.p_value < 0.05)
            if t.test in ("integer", "last_digit"):
                pvalues.append(t.national.p_value)
    assert len(rejections) == 15
    assert max(rejections.values()) <= 5, rejections
    assert any_flag <= 4
    # the binomial-null tests are not degenerate: their p-values spread over (0, 1)
    assert 0.3 < float(np.mean(pvalues)) < 0.7


def test_strong_manipulations_are_detected(subset) -> None:
    frame, contest, prev, prev_contest = subset
    rng = np.random.Generator(np.random.PCG64(99))
    clean = redraw_clean(frame, contest, rng)
    # Klimek's extreme fraud in 1% of actas, for Fujimori
    stuffed, mask = inject_stuffing(clean, contest, "fujimori", 0.01, rng, fill=0.95, steal=0.9)
    rep = run_forensics(stuffed, contest, previous=prev, previous_contest=prev_contest)
    flagged = {(f.test, f.quantity) for f in rep.flags}
    assert ("fingerprint", "fujimori") in flagged and ("place", "fujimori") in flagged
    assert ("panel", "fujimori") in flagged and ("place", "turnout") in flagged
    assert not any(q == "castillo" for _, q in flagged)
    listed = {a.acta_id for a in rep.flagged_actas}
    manipulated = set(stuffed.filter(pl.Series(mask))["acta_id"].to_list())
    assert len(listed & manipulated) >= 0.9 * len(manipulated)
    # stakes: the flagged actas hold at least the injected votes
    assert rep.stakes.valid_votes >= int(stuffed.filter(pl.Series(mask))["v_fujimori"].sum())
    assert any("ANOMAL" in t.verdict_es for t in rep.tests if t.test == "place")
    # Kobak's fingerprint: 10% of actas with whole-percentage turnout and share
    rounded, _ = inject_rounding(clean, contest, "fujimori", 0.10, rng)
    rep = run_forensics(rounded, contest, tests=["integer"])
    assert {t.quantity for t in rep.tests if t.n_flagged_scopes} == {"turnout", "castillo",
                                                                   "turnout_or_share"}
    nat = next(t for t in rep.tests if t.quantity == "turnout").national
    assert nat.effect > 1.05 and nat.p_value < 1e-6
    # invented final digits (0 and 5 favoured) in 20% of actas
    invented, _ = inject_fabricated_digits(clean, contest, 0.20, rng)
    rep = run_forensics(invented, contest, tests=["last_digit"])
    assert all(t.n_flagged_scopes > 0 for t in rep.tests)
    # 25% of Castillo's votes moved to Fujimori in 5% of actas: the panel sees it
    shifted, _ = inject_shift(clean, contest, "fujimori", "castillo", 0.05, rng)
    rep = run_forensics(shifted, contest, previous=prev, previous_contest=prev_contest,
                        tests=["panel", "place"])
    assert {(f.test, f.quantity) for f in rep.flags} >= {("panel", "fujimori")}


def test_benford_is_refused_with_reasons(subset) -> None:
    frame, contest, *_ = subset
    with pytest.raises(BenfordRefused) as exc:
        run_forensics(frame, contest, tests=["benford"])
    assert "no es una prueba válida" in exc.value.message_es
    assert "not a valid election test" in exc.value.message_en
    assert "Deckert" in exc.value.message_en and exc.value.exit_code == 2
    assert exc.value.to_dict()["refused"] is True
    with pytest.raises(ValueError, match="unknown tests"):
        run_forensics(frame, contest, tests=["chi_by_eye"])


def test_chile_without_electors(data_dir: Path) -> None:
    frame, _ = chile_2021_actas(data_dir / "chile-2021-first-round/chile_election_2021.csv.gz")
    rep = run_forensics(frame, CHILE_2021_FIRST_ROUND, tests=["integer", "last_digit",
                                                             "fingerprint", "place"])
    skipped = {s.test for s in rep.skipped}
    assert {"integer:turnout", "fingerprint", "place:turnout"} <= skipped
    assert all("turnout" in s.reason_en for s in rep.skipped)
    # top three candidates by votes: Kast, Boric, Parisi
    assert {t.quantity for t in rep.tests if t.test == "integer"} == {"kast", "boric", "parisi"}
    assert rep.flags == ()


def test_monte_carlo_null_agrees_with_exact(subset) -> None:
    frame, contest, *_ = subset
    a = run_forensics(frame, contest, tests=["integer", "last_digit"])
    b = run_forensics(frame, contest, tests=["integer", "last_digit"], draws=300, seed=5)
    c = run_forensics(frame, contest, tests=["integer", "last_digit"], draws=300, seed=5)
    for ta, tb, tc in zip(a.tests, b.tests, c.tests, strict=True):
        assert tb.national.p_method in ("monte_carlo", "analytic_tail")
        assert tb.national.p_value == tc.national.p_value  # same seed, same draws
        assert abs(ta.national.p_value - tb.national.p_value) < 0.12
        if ta.test == "integer":
            assert tb.national.details["null_mean"] == pytest.approx(ta.national.expected,
                                                                     rel=0.01)


def _stuff_most_of_districts(seed: int, candidate: str, share: float):
    """A small clean synthetic election; in the first district of every other province,
    ``share`` of the mesas stuffed heavily for ``candidate`` (most of each place)."""
    from escrutinio.forensics.simulate import SMALL_RUNOFF, small_election

    rng = np.random.Generator(np.random.PCG64(seed))
    frame = small_election(rng)
    prov = frame["area2_code"].to_numpy()
    dist = frame["area3_code"].to_numpy()
    first = {p: d for p, d in zip(prov[::-1], dist[::-1], strict=True)}
    target = np.isin(dist, [first[p] for p in sorted(first)[::2]])
    stuffed, mask = inject_stuffing(frame, SMALL_RUNOFF, candidate, share, rng, fill=0.9,
                                    steal=0.8, where=target)
    return stuffed, SMALL_RUNOFF, mask, target


def test_place_outliers_where_most_mesas_are_stuffed() -> None:
    """80% of the mesas of a dozen districts stuffed for Rojo: the place's own median is
    the stuffed value, so a within-place comparison alone names the honest mesas as
    outliers for Azul. Re-referenced to the neighbouring places, the stuffed mesas are
    named, for Rojo, and no honest mesa is."""
    frame, contest, mask, target = _stuff_most_of_districts(1, "rojo", 0.8)
    rep = run_forensics(frame, contest, max_flagged=None)
    ids = frame["acta_id"].to_numpy()
    stuffed, honest = set(ids[mask]), set(ids[target & ~mask])
    flagged = {(f.test, f.quantity) for f in rep.flags}
    assert ("place", "rojo") in flagged and ("place", "turnout") in flagged
    assert not any(q == "azul" for _, q in flagged)
    listed = {a.acta_id: a for a in rep.flagged_actas}
    assert not set(listed) & honest  # the honest minority is never named
    assert len(set(listed) & stuffed) >= 0.7 * len(stuffed)
    assert all("place:azul" not in a.reasons for a in rep.flagged_actas if a.acta_id in stuffed)
    place = next(t for t in rep.tests if t.test == "place" and t.quantity == "rojo")
    assert place.national.details["outliers_in_favour"] > 10 * max(
        place.national.details["outliers_against"], 1)
    # the stakes count those actas, against the winner line, swaps counted twice
    st = rep.stakes
    assert st.n_actas == sum(a.in_flagged_scope for a in rep.flagged_actas) > 0
    (line,) = st.thresholds
    counted = [a for a in rep.flagged_actas if a.in_flagged_scope]
    lead, other = line.ahead, line.behind
    assert line.reach == sum(2 * a.votes[lead] for a in counted)  # two candidates
    assert line.annul_move == sum(a.votes[lead] - a.votes[other] for a in counted)


def test_place_test_needs_a_geography(subset) -> None:
    frame, contest, *_ = subset
    bare = frame.with_columns(pl.lit(None, pl.String).alias("area3_code"),
                              pl.lit(None, pl.String).alias("polling_place"))
    rep = run_forensics(bare, contest, tests=["place", "integer"])
    assert [s.test for s in rep.skipped] == ["place"]
    assert "polling place" in rep.skipped[0].reason_en and "local" in rep.skipped[0].reason_es
    assert {t.test for t in rep.tests} == {"integer"}


def test_klimek_fit_sees_extreme_stuffing_and_not_in_a_clean_election() -> None:
    from escrutinio.forensics.inputs import prepare
    from escrutinio.forensics.klimek import fit_klimek
    from escrutinio.forensics.simulate import SMALL_RUNOFF, small_election

    rng = np.random.Generator(np.random.PCG64(5))
    clean = small_election(rng, regions=10)
    stuffed, mask = inject_stuffing(clean, SMALL_RUNOFF, "azul", 0.03, rng, fill=0.95,
                                    steal=0.9)
    fits = {}
    for label, frame in (("clean", clean), ("stuffed", stuffed)):
        fits[label] = fit_klimek(prepare(frame, SMALL_RUNOFF), 0,
                                 np.random.Generator(np.random.PCG64(1)), bootstrap=40)
    c, s = fits["clean"], fits["stuffed"]
    assert c is not None and s is not None and c.ci_extreme and s.ci_extreme
    assert c.f_extreme < 0.005 and c.ci_extreme[1] < 0.005
    share = mask.mean()  # 3 % of the actas: the extreme share is recovered, interval too
    assert s.ci_extreme[0] > 0.01 and s.ci_extreme[0] <= share <= s.ci_extreme[1] + 0.005
    assert s.distance < s.distance_clean
