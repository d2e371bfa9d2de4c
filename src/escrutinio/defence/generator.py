"""Realistic, seeded observers' copies with known defects (ground truth kept).

No real personero copies are public, so the reconciliation is validated on copies made
from real official actas: a chosen share of counted actas gets a copy, and each defect is
injected at a chosen rate. Everything random comes from one
``numpy.random.Generator(PCG64(seed))``; the same seed, rates and official frame give the
same copies.

Defects (one per copy; the rest are exact copies):

* ``transposed_digits`` — two adjacent, different digits of one figure exchanged
  (never creating a leading zero);
* ``candidates_swapped`` — the two largest candidates' figures exchanged;
* ``sum_mismatch`` — one of blank / null / a candidate changed by 1-30 without touching
  ``cast`` (never a mere transposition);
* ``votes_above_electors`` — votes added to a candidate and to ``cast`` until cast
  exceeds electors by 1-40;
* ``figures_differ`` — 1-40 votes moved from one candidate to another, sums intact (the
  "altered tally"; never an exact swap);
* ``official_missing`` — the official acta is turned into a pending one without figures;
* ``copy_code_mismatch`` — the copy carries another acta's copy code;
* extra copies: ``unknown_mesa`` (a mesa number the roll does not have), duplicates (the
  same figures sent again) and conflicting copies (a second observer's copy of an acta
  with one of the numeric defects above).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, cast

import numpy as np
import polars as pl
from numpy.random import PCG64, Generator

from escrutinio.defence.observers import COUNT_COLUMNS, copy_columns
from escrutinio.defence.pvt import NUMERIC, Category, PvtResult, adjacent_transposition
from escrutinio.domain import ActaStatus, Contest

PRIMARY_DEFECTS: Final = (
    Category.TRANSPOSED_DIGITS, Category.CANDIDATES_SWAPPED, Category.SUM_MISMATCH,
    Category.VOTES_ABOVE_ELECTORS, Category.FIGURES_DIFFER, Category.OFFICIAL_MISSING,
    Category.COPY_CODE_MISMATCH,
)
NUMERIC_ORDER: Final = (Category.TRANSPOSED_DIGITS, Category.CANDIDATES_SWAPPED,
                        Category.SUM_MISMATCH, Category.VOTES_ABOVE_ELECTORS,
                        Category.FIGURES_DIFFER)

DEFAULT_RATES: Final[dict[str, float]] = {
    "transposed_digits": 0.01, "candidates_swapped": 0.005, "sum_mismatch": 0.01,
    "votes_above_electors": 0.003, "figures_differ": 0.005, "official_missing": 0.005,
    "copy_code_mismatch": 0.002, "unknown_mesa": 0.002, "duplicate": 0.03,
    "conflicting": 0.01,
}


@dataclass(frozen=True, slots=True)
class GeneratedCopies:
    copies: pl.DataFrame  # canonical copy frame (observers.copy_columns)
    official: pl.DataFrame  # the official frame, with the "official_missing" actas blanked
    copy_codes: pl.DataFrame  # acta_id, copy_code (official)
    truth: pl.DataFrame  # copy_id, acta_id, defect, field, conflict, duplicate
    seed: int
    rates: dict[str, float] = field(default_factory=dict)


def synthetic_copy_codes(acta_ids: pl.Series, seed: int) -> pl.DataFrame:
    """Copy codes shaped like Peru's (two digits and a letter), one per acta."""
    rng = Generator(PCG64(seed))
    n = acta_ids.len()
    num = rng.integers(10, 100, n)
    let = rng.integers(0, 26, n)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    codes = np.char.add(num.astype(str), letters[let])
    return pl.DataFrame({"acta_id": acta_ids, "copy_code": codes})


def _digits(v: np.ndarray, k: int = 7) -> np.ndarray:
    return (v[..., None] // (10 ** np.arange(k))) % 10


def _inject_transposition(figs: np.ndarray, rows: np.ndarray, rng: Generator, lo: int
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Swap two adjacent distinct digits of one field (columns ``lo:``) per row.
    Returns the rows done and the field index touched (-1 where impossible)."""
    sub = figs[rows, lo:]
    d = _digits(sub)  # rows × fields × positions
    nd = np.maximum((sub[..., None] >= 10 ** np.arange(7)).sum(-1), 1)
    pos = np.arange(6)
    elig = ((pos[None, None, :] + 1 < nd[..., None]) & (d[..., :-1] != d[..., 1:])
            & ~((pos[None, None, :] + 1 == nd[..., None] - 1) & (d[..., :-1] == 0)))
    score = rng.random(elig.shape) * elig
    flat = score.reshape(len(rows), -1)
    best = flat.argmax(axis=1)
    ok = flat[np.arange(len(rows)), best] > 0
    f_idx, p = np.divmod(best, 6)
    r = np.arange(len(rows))
    dp, dq = d[r, f_idx, p], d[r, f_idx, p + 1]
    new = sub[r, f_idx] + (dq - dp) * 10 ** p + (dp - dq) * 10 ** (p + 1)
    done = rows[ok]
    figs[done, lo + f_idx[ok]] = new[ok]
    return ok, np.where(ok, lo + f_idx, -1)


def _inject(kind: Category, figs: np.ndarray, rows: np.ndarray, rng: Generator, k_base: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Inject a numeric defect in ``F[rows]`` in place; returns (ok mask, field index)."""
    n = len(rows)
    cand = figs[rows, k_base:]
    r = np.arange(n)
    if kind is Category.TRANSPOSED_DIGITS:
        return _inject_transposition(figs, rows, rng, 1)
    if kind is Category.CANDIDATES_SWAPPED:
        top = np.argsort(-cand, axis=1, kind="stable")
        i, j = top[:, 0], top[:, 1]
        ok = cand[r, i] != cand[r, j]
        a, b = cand[r, i].copy(), cand[r, j].copy()
        figs[rows[ok], k_base + i[ok]] = b[ok]
        figs[rows[ok], k_base + j[ok]] = a[ok]
        return ok, np.where(ok, k_base + i, -1)
    if kind is Category.SUM_MISMATCH:
        choices = np.array([2, 3, *range(k_base, figs.shape[1])])
        fld = choices[rng.integers(0, len(choices), n)]
        old = figs[rows, fld]
        delta = rng.integers(1, 31, n) * np.where(rng.random(n) < 0.5, -1, 1)
        delta = np.where(old + delta < 0, -delta, delta)
        new = old + delta
        for _ in range(5):  # never a mere transposition
            t = adjacent_transposition(old, new)
            if not t.any():
                break
            new = np.where(t, new + 1, new)
        ok = ~adjacent_transposition(old, new) & (new != old)
        figs[rows[ok], fld[ok]] = new[ok]
        return ok, np.where(ok, fld, -1)
    if kind is Category.VOTES_ABOVE_ELECTORS:
        i = rng.integers(0, cand.shape[1], n)
        electors = figs[rows, 0]
        ok = electors > 0  # only where the electors are known
        k = np.maximum(electors - figs[rows, 1], 0) + rng.integers(1, 41, n)
        figs[rows[ok], k_base + i[ok]] += k[ok]
        figs[rows[ok], 1] += k[ok]
        return ok, np.where(ok, k_base + i, -1)
    if kind is Category.FIGURES_DIFFER:
        m = cand.shape[1]
        p = rng.integers(0, m, n)
        q = (p + rng.integers(1, m, n)) % m if m > 1 else p
        ap, aq = cand[r, p], cand[r, q]
        k = 1 + (rng.random(n) * np.minimum(ap, 40)).astype(np.int64)
        k = np.where(k == ap - aq, np.where(k > 1, k - 1, k + 1), k)
        ok = (m > 1) & (ap >= 1) & (k <= ap) & (k >= 1) & (k != ap - aq)
        figs[rows[ok], k_base + p[ok]] -= k[ok]
        figs[rows[ok], k_base + q[ok]] += k[ok]
        return ok, np.where(ok, k_base + p, -1)
    raise ValueError(kind)


def generate_copies(
    official: pl.DataFrame, contest: Contest, *, coverage: float = 0.5,
    rates: Mapping[str, float] | None = None, seed: int = 0,
    copy_codes: pl.DataFrame | None = None, observers: int | None = None,
) -> GeneratedCopies:
    """Copies for ``coverage`` of the counted actas of ``official``, defects at ``rates``
    (keys of :data:`DEFAULT_RATES`; primary defects are fractions of the copied actas)."""
    rt = dict(DEFAULT_RATES) | dict(rates or {})
    unknown = set(rt) - set(DEFAULT_RATES)
    if unknown:
        raise ValueError(f"unknown defect rates: {sorted(unknown)}")
    if sum(rt[d.value] for d in PRIMARY_DEFECTS) > 1:
        raise ValueError("primary defect rates add up to more than 1")
    rng = Generator(PCG64(seed))
    cand = contest.candidate_columns
    fields = [*COUNT_COLUMNS, *cand]
    k_base = len(COUNT_COLUMNS)
    if copy_codes is None:
        copy_codes = synthetic_copy_codes(official["acta_id"], seed + 1)
    # electors, blank and null are optional in many countries (unknown, not 0): a copy
    # needs the candidates' figures only
    figures_ok = pl.all_horizontal([pl.col(c).is_not_null() for c in cand])
    base = official.filter((pl.col("status") == ActaStatus.COUNTED.value) & figures_ok)
    if base.height == 0:
        from escrutinio.errors import EscrutinioError

        raise EscrutinioError(
            "no hay actas contabilizadas con cifras de candidatos de las que generar copias",
            "there are no counted actas with candidate figures to generate copies from")
    n_sel = round(coverage * base.height)
    pick = np.sort(rng.choice(base.height, n_sel, replace=False))
    sel = base[pick].join(copy_codes, on="acta_id", how="left", maintain_order="left")
    figs = np.column_stack([sel[c].fill_null(0).to_numpy().astype(np.int64) for c in fields])

    # primary defect of each copy
    probs = np.array([rt[d.value] for d in PRIMARY_DEFECTS])
    cum = np.cumsum(probs)
    u = rng.random(n_sel)
    which = np.searchsorted(cum, u, side="right")  # == len(PRIMARY_DEFECTS) -> exact
    defect = np.full(n_sel, Category.EXACT.value, dtype=object)
    fld = np.full(n_sel, -1)
    for i, d in enumerate(PRIMARY_DEFECTS):
        rows = np.flatnonzero(which == i)
        if not len(rows):
            continue
        if d in NUMERIC:
            ok, f = _inject(d, figs, rows, rng, k_base)
            defect[rows[ok]] = d.value
            fld[rows[ok]] = f[ok]
        else:
            defect[rows] = d.value
    codes = sel["copy_code"].to_numpy().astype(object)
    bad_code = np.flatnonzero(defect == Category.COPY_CODE_MISMATCH.value)
    if len(bad_code):
        other = copy_codes["copy_code"].to_numpy()[rng.integers(0, copy_codes.height,
                                                                len(bad_code))]
        same = other == codes[bad_code]
        other = np.where(same, np.char.add(other.astype(str), "X"), other)
        codes[bad_code] = other

    n_obs = observers or max(1, n_sel // 3)
    obs_ids = np.char.add("obs-", np.char.zfill(rng.integers(0, n_obs, n_sel).astype(str), 5))
    t0 = datetime.fromisoformat(contest.date).replace(hour=21, tzinfo=UTC)
    t0_us = int(t0.timestamp() * 1e6)

    def times(k: int, extra_h: float = 0.0) -> np.ndarray:
        return t0_us + ((rng.random(k) * 5 + extra_h) * 3600e6).astype(np.int64)

    def images(k: int) -> list[str]:
        raw = rng.integers(0, 256, size=(k, 32), dtype=np.uint8)
        return [row.tobytes().hex() for row in raw]

    primary = pl.DataFrame({
        "acta_id": sel["acta_id"], "copy_code": pl.Series(codes.astype(str)),
        "observer_id": obs_ids, "observed_at": times(n_sel),
        "image_sha256": images(n_sel),
        **{f: figs[:, i] for i, f in enumerate(fields)},
    })
    truth_p = pl.DataFrame({"acta_id": sel["acta_id"], "defect": defect.astype(str),
                            "field": [fields[i] if i >= 0 else None for i in fld],
                            "duplicate": False})
    exact_rows = np.flatnonzero(defect == Category.EXACT.value)
    n_dup = min(round(rt["duplicate"] * n_sel), len(exact_rows))
    n_conf = min(round(rt["conflicting"] * n_sel), len(exact_rows) - n_dup)
    perm = rng.permutation(exact_rows)
    dup_rows, conf_rows = perm[:n_dup], perm[n_dup:n_dup + n_conf]

    parts, truths = [primary], [truth_p]
    if n_dup:
        dup = primary[dup_rows]
        same_obs = rng.random(n_dup) < 0.5
        new_obs = np.char.add("obs-", np.char.zfill(rng.integers(0, n_obs, n_dup).astype(str), 5))
        dup = dup.with_columns(
            pl.Series("observer_id", np.where(same_obs, dup["observer_id"].to_numpy(), new_obs)),
            pl.Series("observed_at", dup["observed_at"].to_numpy() + (rng.random(n_dup) * 3600e6
                                                                       ).astype(np.int64) + 1),
            pl.Series("image_sha256", np.where(same_obs, dup["image_sha256"].to_numpy(),
                                               np.array(images(n_dup), dtype=object))),
        )
        parts.append(dup)
        truths.append(pl.DataFrame({"acta_id": dup["acta_id"], "defect": "exact",
                                    "field": pl.Series([None] * n_dup, dtype=pl.String),
                                    "duplicate": True}))
    conflict_actas = pl.Series("acta_id", [], dtype=pl.String)
    if n_conf:
        figs2 = figs[conf_rows].copy()
        kinds = rng.integers(0, len(NUMERIC_ORDER), n_conf)
        cdef = np.full(n_conf, Category.EXACT.value, dtype=object)
        cfld = np.full(n_conf, -1)
        for i, kind in enumerate(NUMERIC_ORDER):
            rows = np.flatnonzero(kinds == i)
            if len(rows):
                ok, f = _inject(kind, figs2, rows, rng, k_base)
                cdef[rows[ok]] = kind.value
                cfld[rows[ok]] = f[ok]
        keep = cdef != Category.EXACT.value
        base_c = primary[conf_rows[keep]]
        c = base_c.with_columns(
            pl.Series("observer_id", np.char.add("obs-", np.char.zfill(
                rng.integers(0, n_obs, int(keep.sum())).astype(str), 5))),
            pl.Series("observed_at", times(int(keep.sum()), 0.5)),
            pl.Series("image_sha256", images(int(keep.sum()))),
            *[pl.Series(f, figs2[keep, i]) for i, f in enumerate(fields)],
        )
        parts.append(c)
        truths.append(pl.DataFrame({"acta_id": c["acta_id"], "defect": cdef[keep].astype(str),
                                    "field": [fields[i] for i in cfld[keep]],
                                    "duplicate": False}))
        conflict_actas = c["acta_id"]
    n_unk = round(rt["unknown_mesa"] * n_sel)
    if n_unk:
        ids = official["acta_id"]
        width = int(cast("int | None", ids.str.len_chars().max()) or 6)
        numeric = bool(ids.str.contains(r"^\d+$").all())
        top = int(cast(int, ids.cast(pl.Int64).max())) if numeric else 0
        new_ids = (np.char.zfill((top + 1 + rng.permutation(10 * n_unk)[:n_unk]).astype(str),
                                 width) if numeric
                   else np.char.add("ZZ-", np.arange(n_unk).astype(str)))
        src = primary[rng.integers(0, n_sel, n_unk)]
        unk = src.with_columns(pl.Series("acta_id", new_ids),
                               pl.Series("image_sha256", images(n_unk)),
                               pl.Series("observed_at", times(n_unk)))
        parts.append(unk)
        truths.append(pl.DataFrame({"acta_id": unk["acta_id"], "defect": "unknown_mesa",
                                    "field": pl.Series([None] * n_unk, dtype=pl.String),
                                    "duplicate": False}))

    cols = copy_columns(contest)
    allc = pl.concat([p.with_columns(pl.col("observed_at").cast(pl.Datetime("us"))
                                     .dt.replace_time_zone("UTC")) for p in parts],
                     how="vertical_relaxed")
    n_all = allc.height
    order = rng.permutation(n_all)  # submissions arrive interleaved
    truth = pl.concat(truths)
    ids = pl.Series("copy_id", [f"c{i:07d}" for i in range(n_all)])
    allc = allc[order].with_columns(ids, pl.lit(None, dtype=pl.String).alias("organization"),
                                    pl.lit(None, dtype=pl.String).alias("notes"),
                                    pl.Series("line", np.arange(2, n_all + 2)))
    truth = truth[order].with_columns(ids).with_columns(
        pl.col("acta_id").is_in(conflict_actas.implode()).alias("conflict"))
    allc = allc.select([pl.col(c).cast(t) for c, t in cols.items()])

    missing_ids = sel["acta_id"].filter(pl.Series(defect == Category.OFFICIAL_MISSING.value))
    blank_missing = pl.col("acta_id").is_in(missing_ids.implode())
    off = official.with_columns(
        pl.when(blank_missing).then(pl.lit(ActaStatus.PENDING.value)).otherwise(pl.col("status"))
        .alias("status"),
        *[pl.when(blank_missing).then(None).otherwise(pl.col(c)).alias(c)
          for c in ["cast", "blank", "null", "challenged", *cand]],
    )
    return GeneratedCopies(allc, off, copy_codes,
                           truth.select("copy_id", "acta_id", "defect", "field", "conflict",
                                        "duplicate"), seed, rt)


# --- scoring --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TypeScore:
    category: str
    injected: int
    predicted: int
    correct: int

    @property
    def recall(self) -> float:
        return self.correct / self.injected if self.injected else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0


@dataclass(frozen=True, slots=True)
class GeneratorScore:
    per_type: tuple[TypeScore, ...]
    numeric_recall: float  # injected numeric defects classified with the right type
    numeric_precision: float  # copies classified numeric that carry that numeric defect
    detection_recall: float  # injected numeric defects flagged as any numeric discrepancy
    exact_copies: int  # exact copies of actas without an injected conflict
    false_alarms_on_exact: int
    conflicts_injected: int
    conflicts_found: int


def score(result: PvtResult, truth: pl.DataFrame) -> GeneratorScore:
    """Compare a reconciliation with the generator's ground truth."""
    j = truth.join(result.copies.select("copy_id", "category", "alarm"), on="copy_id")
    numeric = [c.value for c in NUMERIC]
    per = []
    for cat in [c.value for c in Category]:
        inj = j.filter(pl.col("defect") == cat)
        pred = j.filter(pl.col("category") == cat)
        ok = j.filter((pl.col("defect") == cat) & (pl.col("category") == cat))
        if inj.height or pred.height:
            per.append(TypeScore(cat, inj.height, pred.height, ok.height))
    inj_n = j.filter(pl.col("defect").is_in(numeric))
    pred_n = j.filter(pl.col("category").is_in(numeric))
    right = j.filter(pl.col("defect").is_in(numeric) & (pl.col("defect") == pl.col("category")))
    detected = inj_n.filter(pl.col("category").is_in(numeric))
    exact = j.filter((pl.col("defect") == "exact") & ~pl.col("conflict"))
    conf_actas = truth.filter(pl.col("conflict"))["acta_id"].unique()
    found = result.actas.filter(pl.col("conflicting_copies"))["acta_id"]
    return GeneratorScore(
        per_type=tuple(per),
        numeric_recall=right.height / inj_n.height if inj_n.height else 1.0,
        numeric_precision=right.height / pred_n.height if pred_n.height else 1.0,
        detection_recall=detected.height / inj_n.height if inj_n.height else 1.0,
        exact_copies=exact.height, false_alarms_on_exact=int(exact["alarm"].sum()),
        conflicts_injected=conf_actas.len(),
        conflicts_found=int(found.is_in(conf_actas.implode()).sum()),
    )
