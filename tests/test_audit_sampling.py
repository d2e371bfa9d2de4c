"""Public samplers against published test vectors and the consistent_sampler oracle."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from escrutinio.audit.ids import AuditInputError, canonical_acta_id, canonical_ids, manifest_order
from escrutinio.audit.sampling import (
    consistent_sample,
    first_ticket_number,
    next_ticket_number,
    normalise_seed,
    ppeb_draws,
    rivest_picks,
    rivest_sample,
    seed_warning,
)

# github.com/cjerdonek/rivest-sampler-tests tests.json (sampling with replacement, 1..total)
RIVEST_VECTORS = [
    ("0", 1000, [905, 573, 160]),
    ("0", 2, [1, 1, 2]),
    ("1", 1000, [97, 89, 163]),
    ("0000000000", 1000, [978, 359, 132]),
    ("999999999999999999999999", 1000, [544, 800, 654]),
    ("abcde", 1000, [247, 427, 157]),
]

# Rivest, sampler.py (14 Nov 2011), documented transcript: seed from four dice rolls,
# 1..876 without replacement, n = 47; pick 32 (611) is a rejected duplicate.
TRANSCRIPT_SEED = "3546311556112163624615351222"
TRANSCRIPT = [740, 180, 264, 789, 238, 448, 272, 611, 761, 208, 596, 88, 160, 113, 766, 427,
              184, 816, 653, 411, 779, 331, 339, 487, 594, 235, 65, 527, 821, 490, 461, 251,
              471, 414, 174, 567, 300, 134, 144, 357, 786, 792, 218, 550, 787, 537, 197]


@pytest.mark.parametrize(("seed", "total", "expected"), RIVEST_VECTORS)
def test_rivest_2011_published_vectors(seed, total, expected):
    assert rivest_sample(seed, 3, 1, total, with_replacement=True) == expected


def test_rivest_2011_transcript_without_replacement_and_escalation():
    picks = rivest_picks(TRANSCRIPT_SEED, 47, 1, 876, with_replacement=False)
    assert [p.value for p in picks if not p.duplicate] == TRANSCRIPT
    dup = [p for p in picks if p.duplicate]
    assert [(p.counter, p.value) for p in dup] == [(32, 611)]
    # escalation extends the same sequence
    longer = rivest_sample(TRANSCRIPT_SEED, 60, 1, 876, with_replacement=False)
    assert longer[:47] == TRANSCRIPT and len(set(longer)) == 60
    # seeds typed on several lines are concatenated, blanks stripped
    assert normalise_seed(" 3546311\n5561121 \n6362461\n5351222\n") == TRANSCRIPT_SEED
    assert seed_warning("123") is not None and seed_warning(TRANSCRIPT_SEED) is None
    with pytest.raises(AuditInputError):
        rivest_sample("1", 5, 1, 4, with_replacement=False)


def test_consistent_sampler_published_docstring_vectors():
    # consistent_sampler 1.0.10 docstrings (Rivest 2018)
    assert first_ticket_number("AB-130", "01382438112797316654") == (
        "0.26299714122838008416507544297546663599715395525154425586041245287750224561854")
    assert next_ticket_number("0.25471") == (
        "0.642853261655004694691182528114375607701032283189922170593838029306715548381901")
    nxt = next_ticket_number(
        "0.26299714122838008416507544297546663599715395525154425586041245287750224561854")
    assert nxt == ("0.8232357229934205790595761924514048157652891124687533667363938813600770"
                   "093316")
    got = consistent_sample(["A#2", "B#7", "C#1", "D#4"], "314159", with_replacement=True,
                            take=8)
    assert [t.acta_id for t in got] == ["D#4", "C#1", "C#1", "B#7", "A#2", "C#1", "D#4", "B#7"]
    wo = consistent_sample(["ab-1", "ab-2", "cd-1", "ef-3"], "314159")
    assert [(t.short(), t.acta_id) for t in wo] == [
        ("0.317685817", "cd-1"), ("0.832984519", "ef-3"), ("0.9098039269", "ab-1"),
        ("0.9231549043", "ab-2")]
    # escalation = reading further down the same list
    assert consistent_sample(["ab-1", "ab-2", "cd-1", "ef-3"], "314159", take=2) == wo[:2]
    assert consistent_sample(["ab-1", "ab-2", "cd-1", "ef-3"], "314159", drop=2) == wo[2:]


def test_consistent_sampler_matches_pypi_oracle():
    try:
        import consistent_sampler as oracle
    except ImportError:  # the only check allowed to skip
        pytest.skip("consistent_sampler (test-only oracle) is not installed")
    ids = [f"{i:06d}" for i in range(1, 400)]
    seed = "87452938162530012298"
    mine = consistent_sample(ids, seed)
    theirs = list(oracle.sampler(ids, seed=seed, output="tuple", digits=30))
    assert [t.acta_id for t in mine] == [t[1] for t in theirs]
    assert [t.short(30) for t in mine] == [t[0] for t in theirs]
    mine_r = consistent_sample(ids[:25], seed, with_replacement=True, take=120)
    theirs_r = list(oracle.sampler(ids[:25], seed=seed, with_replacement=True, take=120,
                                   output="tuple", digits=40))
    assert [(t.acta_id, t.generation, t.short(40)) for t in mine_r] == \
        [(t[1], t[2], t[0]) for t in theirs_r]


def test_ppeb_is_rivest_on_error_bound_units_and_proportional():
    w = np.array([1, 0, 3, 6], dtype=np.int64)
    d = ppeb_draws("20210606", w, 5)
    # draw i is the acta owning unit (SHA-256(seed, i) mod S), units laid out in order
    cum = np.cumsum(w)
    for u, p in zip(d.units, d.positions.tolist(), strict=True):
        assert cum[p - 1] <= u < cum[p] if p else u < cum[0]
    assert d.units[0] == rivest_picks("20210606", 1, 0, 9, with_replacement=True)[0].value
    big = ppeb_draws("abc", w, 20_000)
    counts = np.bincount(big.positions, minlength=4)
    assert counts[1] == 0
    expected = 20_000 * w / w.sum()
    chi2 = float(((counts - expected) ** 2 / np.where(expected > 0, expected, 1)).sum())
    assert chi2 < 16.3  # chi-square, 2 df, p = 0.0003
    # escalation: draws 6..10 continue the same sequence; Python-int weights agree
    more = ppeb_draws("20210606", w, 5, start=6)
    both = ppeb_draws("20210606", w, 10)
    assert np.array_equal(np.concatenate([d.positions, more.positions]), both.positions)
    as_objects = ppeb_draws("20210606", np.array(w.tolist(), dtype=object), 10)
    assert np.array_equal(as_objects.positions, both.positions)
    huge = ppeb_draws("x", np.array([2**70, 0, 2**70], dtype=object), 50)
    assert set(huge.positions.tolist()) == {0, 2}


def test_canonical_ids_and_manifest_order():
    assert canonical_acta_id(" 000123 ") == "000123"
    for bad in ("12 3", "1,2", "", "ñ01"):
        with pytest.raises(AuditInputError):
            canonical_acta_id(bad)
    with pytest.raises(AuditInputError):
        canonical_ids(pl.Series(["000001", "000001"]))
    ids = pl.Series(["B-2", "000010", "A-1", "000009"])
    assert [ids[int(i)] for i in manifest_order(ids)] == ["000009", "000010", "A-1", "B-2"]
