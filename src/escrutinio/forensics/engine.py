"""Runs the count-based tests (integer percentages, last digit, 2BL) sharing work: one
null law per count, one pmf and one set of Monte-Carlo redraws for every feature of
that count. In a two-candidate race the second candidate's count is valid − first, so
its redraws are the mirror image of the first's (Binomial(n, 1 − p) exactly)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from escrutinio.forensics.common import Scope, ScopeResult
from escrutinio.forensics.digits import (
    MIN_EXPECTED_2BL,
    district_expected,
    smoothed_null,
    summarize_digits,
    summarize_second_digit,
)
from escrutinio.forensics.inputs import ForensicInput
from escrutinio.forensics.integers import (
    hit_probability,
    integer_candidates,
    integer_category_share,
    integer_category_turnout,
    integer_units,
    simulate_hits,
    summarize_integer,
)
from escrutinio.forensics.nulls import CountNull, Feature, evaluate, last_digit, second_digit

COUNT_TESTS = ("integer", "last_digit", "second_digit")


@dataclass(frozen=True)
class Job:
    test: str
    quantity: str
    feature: Feature
    n_categories: int
    units: np.ndarray  # bool over the null's rows
    mirror: bool = False  # evaluate the feature on n − k (the other candidate)


@dataclass(frozen=True)
class _Raw:
    """What a job produced before it is summarised: observed categories, per-unit null
    probabilities, regions, Monte-Carlo counts."""

    cat: np.ndarray
    q: np.ndarray
    reg: np.ndarray
    mc: np.ndarray | None
    idx: np.ndarray  # the units' rows in the ForensicInput


def _run(
    null: CountNull, observed: np.ndarray, jobs: list[Job], inp: ForensicInput,
    rows: np.ndarray, draws: int, rng: np.random.Generator,
) -> dict[tuple[str, str], _Raw]:
    n_reg = len(inp.region_codes)
    reg_all = inp.region_idx[rows]

    # only the last digit uses Monte-Carlo redraws of the counts: the integer test
    # simulates its hit indicators directly, 2BL is analytic
    feats = [(j.feature, j.n_categories, j.units, j.test == "last_digit", j.mirror)
             for j in jobs]
    qs, mc = evaluate(null, feats, reg_all, n_reg, draws, rng)
    out: dict[tuple[str, str], _Raw] = {}
    for job, q, nc in zip(jobs, qs, mc, strict=True):
        u = job.units
        k = observed[u]
        n = null.n[u]
        cat = job.feature(n - k, n) if job.mirror else job.feature(k, n)
        out[(job.test, job.quantity)] = _Raw(cat, q[u], reg_all[u], nc, rows[u])
    return out


def run_count_tests(
    inp: ForensicInput, scopes: list[Scope], tests: set[str], candidates: list[int], *,
    draws: int, rng: np.random.Generator, min_expected: float,
    integer_probs: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, dict[str, list[ScopeResult]]]:
    """{test: {quantity: [ScopeResult per scope]}} for the count-based tests asked for.

    ``integer_probs``, when given, receives for each integer quantity (turnout, a
    candidate code) its units' rows and their exact probabilities of a whole percentage
    (Kobak's combined count is built from them)."""
    raw: dict[tuple[str, str], _Raw] = {}
    if "integer" in tests and inp.electors is not None:
        units = integer_units(inp.cast, inp.electors, True)
        rows = np.flatnonzero(units)
        null = CountNull("binomial", inp.electors[rows],
                         inp.cast[rows] / np.maximum(inp.electors[rows], 1))
        job = Job("integer", "turnout", integer_category_turnout, 3,
                  np.ones(len(rows), dtype=bool))
        raw |= _run(null, inp.cast[rows], [job], inp, rows, draws, rng)
    int_cands = set(integer_candidates(inp, candidates)) if "integer" in tests else set()
    pair = len(inp.codes) == 2 and len(candidates) == 2
    # binomial null per candidate count: integer share, last digit, 2BL's plug-in baseline
    for c in candidates[:1] if pair else candidates:
        spec: list[tuple[str, int, bool, np.ndarray]] = []  # test, candidate, mirror, units
        for cand, mirror in [(c, False)] + ([(1 - c, True)] if pair else []):
            count = inp.votes[:, cand]
            expected = district_expected(inp, cand)
            if cand in int_cands:
                spec.append(("integer", cand, mirror, integer_units(count, inp.valid, False)))
            if "last_digit" in tests:
                spec.append(("last_digit", cand, mirror, expected >= min_expected))
            if "second_digit" in tests:
                spec.append(("second_digit_binomial", cand, mirror,
                             expected >= MIN_EXPECTED_2BL))
        if not spec:
            continue
        rows = np.flatnonzero(np.logical_or.reduce([m for *_, m in spec]))
        null = CountNull("binomial", inp.valid[rows],
                         inp.votes[rows, c] / np.maximum(inp.valid[rows], 1))
        feats = {"integer": (integer_category_share, 3), "last_digit": (last_digit, 10),
                 "second_digit_binomial": (second_digit, 11)}
        jobs = [Job(t, inp.codes[cand], *feats[t], m[rows], mirror)
                for t, cand, mirror, m in spec]
        raw |= _run(null, inp.votes[rows, c], jobs, inp, rows, draws, rng)
    if "second_digit" in tests:
        for c in candidates:
            rows = np.flatnonzero(district_expected(inp, c) >= MIN_EXPECTED_2BL)
            full = smoothed_null(inp, c)
            null = CountNull("smoothed", full.n[rows], full.p[rows],
                             None if full.var is None else full.var[rows])
            job = Job("second_digit", inp.codes[c], second_digit, 11,
                      np.ones(len(rows), dtype=bool))
            raw |= _run(null, inp.votes[rows, c], [job], inp, rows, draws, rng)
    n_reg = len(inp.region_codes)
    out: dict[str, dict[str, list[ScopeResult]]] = {t: {} for t in COUNT_TESTS if t in tests}
    for (test, quantity), r in raw.items():
        if test == "integer":
            q_hit = hit_probability(r.q)
            if integer_probs is not None:
                integer_probs[quantity] = (r.idx, q_hit)
            null_hits = (simulate_hits(q_hit, r.reg, n_reg, draws, rng) if draws > 0
                         else None)
            out[test][quantity] = summarize_integer(r.cat == 1, q_hit, r.reg, n_reg, scopes,
                                                    null_hits)
        elif test == "last_digit":
            out[test][quantity] = summarize_digits(r.cat, r.q, r.reg, n_reg, scopes, r.mc)
        elif test == "second_digit":
            plug = raw[("second_digit_binomial", quantity)]
            out[test][quantity] = summarize_second_digit(
                r.cat, r.q, plug.q, r.reg, n_reg, scopes, r.mc)
    return out
