"""The statistics under the forensic tests, against hand-computed values."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest

from escrutinio.forensics.common import loo_median
from escrutinio.forensics.integers import integer_hit
from escrutinio.forensics.nulls import (
    CountNull,
    WindowSampler,
    _window,
    evaluate,
    last_digit,
    second_digit,
)
from escrutinio.forensics.png import encode_png
from escrutinio.forensics.stats import (
    benjamini_hochberg,
    chi2_sf,
    hypergeom_sum_sf,
    poisson_binomial_sf,
    sign_flip_sf,
    wald_chi2,
)


def test_benjamini_hochberg_hand_computed() -> None:
    # sorted: .005 .01 .03 .04 .2 against k q / m = .01 .02 .03 .04 .05 → reject 4
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.2])
    adj, rej = benjamini_hochberg(p, 0.05)
    # m p_(k)/k = .025 .025 .05 .05 .2, running minimum from the top
    assert adj == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.2])
    assert rej.tolist() == [True, True, True, True, False]
    # at q = .04 the bars are .008 .016 .024 .032 .04: only .005 and .01 pass
    _, rej = benjamini_hochberg(p, 0.04)
    assert rej.tolist() == [True, False, False, True, False]
    adj, rej = benjamini_hochberg(np.array([0.03, 0.2]), 0.05)
    assert not rej.any() and adj.tolist() == pytest.approx([0.06, 0.2])


def test_weighted_benjamini_hochberg() -> None:
    p = np.array([0.03, 0.2])
    # weights 1.8 / 0.2 (mean 1): p / w = 0.0167, 1.0 → the first passes at q = 0.05
    adj, rej = benjamini_hochberg(p, 0.05, np.array([1.8, 0.2]))
    assert rej.tolist() == [True, False]
    assert adj[0] == pytest.approx(0.03 / 1.8 * 2)
    # weights are rescaled to mean 1: (9, 1) is the same as (1.8, 0.2)
    adj2, _ = benjamini_hochberg(p, 0.05, np.array([9.0, 1.0]))
    assert adj2 == pytest.approx(adj)


def test_chi2_sf_critical_values() -> None:
    for df, crit in [(1, 3.841459), (2, 5.991465), (9, 16.918978), (10, 18.307038)]:
        assert chi2_sf(crit, df) == pytest.approx(0.05, abs=1e-6)
    assert chi2_sf(0.0, 3) == 1.0
    assert chi2_sf(21.665994, 9) == pytest.approx(0.01, abs=1e-6)


def test_integer_hit_exact_arithmetic() -> None:
    k = np.arange(201)
    # n = 200: k/200 is a whole percentage exactly for even k; odd k sit at .5
    assert (integer_hit(k, np.full(201, 200)) == (k % 2 == 0)).all()
    # n = 300: every third count
    k3 = np.arange(301)
    assert (integer_hit(k3, np.full(301, 300)) == (k3 % 3 == 0)).all()
    # n = 237, k = 102 → 43.038 % (within 0.05 of 43); k = 103 → 43.46 %
    assert integer_hit(np.array([102, 103]), np.array([237, 237])).tolist() == [1, 0]


def test_binomial_window_matches_exact_pmf() -> None:
    n = np.array([220, 300, 57, 10])
    p = np.array([0.4, 0.97, 0.02, 0.5])
    k, pmf = _window(CountNull("binomial", n, p), slice(None), 5.0)
    for i in range(len(n)):
        for j in range(k.shape[1]):
            if k[i, j] >= 0:
                exact = math.comb(int(n[i]), int(k[i, j])) * p[i] ** k[i, j] * (
                    1 - p[i]) ** (n[i] - k[i, j])
                assert pmf[i, j] == pytest.approx(exact, rel=1e-9, abs=1e-15)
        assert pmf[i].sum() == pytest.approx(1.0, abs=1e-7)
    assert (k[:, 0] % 10 == 0).all()  # aligned windows (digit fast paths)


def test_fast_digit_paths_equal_generic_bincount() -> None:
    rng = np.random.default_rng(3)
    n = rng.integers(20, 300, 500)
    p = rng.uniform(0.02, 0.98, 500)
    null = CountNull("binomial", n, p)
    region = np.zeros(500, dtype=np.int64)
    all_units = np.ones(500, dtype=bool)
    fast, _ = evaluate(null, [(last_digit, 10, all_units, False, False),
                              (second_digit, 11, all_units, False, False),
                              (last_digit, 10, all_units, False, True)], region, 1, 0, rng)

    def generic(k: np.ndarray, nn: np.ndarray) -> np.ndarray:
        return k % 10

    def generic2(k: np.ndarray, nn: np.ndarray) -> np.ndarray:
        return np.asarray(second_digit(k, nn))

    slow, _ = evaluate(null, [(generic, 10, all_units, False, False),
                              (generic2, 11, all_units, False, False),
                              (generic, 10, all_units, False, True)], region, 1, 0, rng)
    for a, b in zip(fast, slow, strict=True):
        assert a == pytest.approx(b, abs=1e-12)


def test_window_sampler_draws_from_the_pmf() -> None:
    n = np.array([200, 300])
    p = np.array([0.3, 0.95])
    k, pmf = _window(CountNull("binomial", n, p), slice(None), 5.0)
    draws = WindowSampler(k, pmf, n).sample(40_000, np.random.default_rng(1))
    for i in range(2):
        counts = np.bincount(draws[:, i] - k[i, 0], minlength=k.shape[1])[: k.shape[1]]
        expected = pmf[i] * 40_000
        keep = expected > 20
        chi = ((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum()
        assert chi < keep.sum() + 5 * math.sqrt(2 * keep.sum())
        assert draws[:, i].max() <= n[i]


def test_sign_flip_and_hypergeometric_exact() -> None:
    # three clusters with one outlier each in favour: P(all three signs +) = 1/8
    assert sign_flip_sf(np.array([1, 1, 1])) == pytest.approx(1 / 8)
    # nets 2 and 1: sums 3, 1, -1, -3 equally likely
    assert sign_flip_sf(np.array([2, 1])) == pytest.approx(1 / 4)
    assert sign_flip_sf(np.array([0, 0])) == 1.0
    # one place of 4 mesas, one in the turnout tail, one in the share tail: P(same) = 1/4
    assert hypergeom_sum_sf(np.array([4]), np.array([1]), np.array([1]), 1) == \
        pytest.approx(0.25)
    # two such places: P(J >= 2) = 1/16, P(J >= 1) = 1 - (3/4)^2
    m, a = np.array([4, 4]), np.array([1, 1])
    assert hypergeom_sum_sf(m, a, a, 2) == pytest.approx(1 / 16)
    assert hypergeom_sum_sf(m, a, a, 1) == pytest.approx(1 - 0.75**2)


def test_poisson_binomial_and_wald() -> None:
    q = np.full(10_000, 0.3)
    # Binomial(10000, .3): mean 3000, sd 45.8; P(X >= 3092) ≈ P(Z >= 1.997)
    assert poisson_binomial_sf(3092, q) == pytest.approx(0.0229, abs=0.002)
    # uniform categorical units: Wald = Pearson chi-square with C - 1 df
    qq = np.full((1000, 4), 0.25)
    stat, df, _ = wald_chi2(np.array([270, 250, 240, 240]), qq)
    pearson = sum((o - 250) ** 2 / 250 for o in (270, 250, 240, 240))
    assert df == 3 and stat == pytest.approx(pearson, rel=1e-9)


def test_loo_median() -> None:
    values = np.array([1.0, 2.0, 10.0, 4.0, 5.0, 7.0])
    group = np.array([0, 0, 0, 0, 1, 1])
    med, size = loo_median(values, group)
    # group 0 = {1, 2, 10, 4}: without 1 → median(2, 4, 10) = 4; without 10 → 2
    assert med[:4].tolist() == [4.0, 4.0, 2.0, 2.0]
    assert med[4:].tolist() == [7.0, 5.0] and size.tolist() == [4, 4, 4, 4, 2, 2]


def test_png_encoder_is_valid() -> None:
    img = np.zeros((3, 5, 3), dtype=np.uint8)
    img[1, 2] = (255, 0, 0)
    data = encode_png(img)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, tag = struct.unpack(">I4s", data[8:16])
    assert tag == b"IHDR" and struct.unpack(">II", data[16:24]) == (5, 3)
    crc = struct.unpack(">I", data[16 + length:20 + length])[0]
    assert crc == zlib.crc32(data[12:16 + length]) & 0xFFFFFFFF
    idat_at = data.index(b"IDAT")
    size = struct.unpack(">I", data[idat_at - 4:idat_at])[0]
    raw = zlib.decompress(data[idat_at + 4: idat_at + 4 + size])
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(3, 16)
    assert (rows[:, 0] == 0).all() and tuple(rows[1, 1 + 6:1 + 9]) == (255, 0, 0)


def test_integer_null_is_conditioned_on_the_units_range() -> None:
    from escrutinio.forensics.integers import (
        hit_probability,
        integer_category_share,
        simulate_hits,
    )

    assert hit_probability(np.array([[0.5, 0.25, 0.25]])) == pytest.approx([1 / 3])
    # a share of 1 % is in range and whole; 0 % (k = 0) and 100 % are outside the range
    k = np.array([0, 2, 3, 200])
    assert integer_category_share(k, np.full(4, 200)).tolist() == [2, 1, 0, 2]
    # Monte-Carlo hit counts per region have the right means
    q = np.array([0.1, 0.5, 0.9, 0.3])
    sims = simulate_hits(q, np.array([0, 0, 1, 1]), 2, 4000, np.random.default_rng(0))
    assert sims.mean(axis=0) == pytest.approx([0.6, 1.2], abs=0.05)


def test_stakes_bound_hand_computed() -> None:
    """Three candidates, first round with a 50 % rule: the majority line and the race for
    second place; swaps count twice; annulment is reported but is not the worst case."""
    from escrutinio.domain import Candidate, Contest, ContestKind
    from escrutinio.forensics.stakes import decisive_thresholds, stakes_bound

    contest = Contest("t", "t", ContestKind.FIRST_ROUND, "ZZ", "2031-01-01",
                      (Candidate("a", "A"), Candidate("b", "B"), Candidate("c", "C")),
                      majority_threshold=0.5)
    votes = np.array([[500, 300, 200], [400, 350, 250], [100, 20, 80]])
    valid = votes.sum(axis=1)
    counted = np.array([False, False, True])
    # totals a 1000, b 670, c 530 of 2200: a is 100 below 1100; b leads c by 140
    assert decisive_thresholds(contest, votes.sum(axis=0)) == [("majority", 0, -1),
                                                               ("runoff", 1, 2)]
    st = stakes_bound(contest, ["a", "b", "c"], votes, valid, valid, counted, 5, 1, 1, {})
    maj, run = st.thresholds
    assert (maj.margin, maj.reach) == (100, 100)  # below the line: others' 100 votes to a
    assert maj.annul_move == -(100 - 0.5 * 200) and maj.could_change  # annul: a stays 100
    # b over c: 140; worst case 2 * 20 + 100 (a's votes really c's) = 140, reaches it
    assert (run.margin, run.reach, run.annul_move) == (140, 140, 20 - 80)
    assert run.could_change and st.could_change_result and st.could_change_winner
    assert "matter for the result" in run.text_en and "importan" in run.text_es
    assert st.n_actas == 1 and st.n_listed == 5 and st.valid_votes == 200
    # nothing counted: nothing can change, and it is said plainly
    none = stakes_bound(contest, ["a", "b", "c"], votes, valid, valid,
                        np.zeros(3, dtype=bool), 5, 0, 2, {})
    assert not none.could_change_result and none.n_actas == 0
    assert "no flagged vote can change" in none.text_en
    assert "aggregate tests" in none.text_en and "5 actas stand out" in none.text_en
    assert "matter" not in none.text_en
