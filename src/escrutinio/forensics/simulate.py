"""Clean redraws of a real election and synthetic manipulation, for calibration and power.

* :func:`redraw_clean` — a *clean* election with the real one's structure: every counted
  acta's turnout is redrawn as Binomial(electors, observed turnout) and its ballots are
  split among candidates, blank, null and challenged as Multinomial(cast, observed
  shares). Nothing else changes (places, regions, sizes). A screen that flags such
  elections more often than its nominal level cries wolf.
* Manipulations injected into a share of the counted actas (chosen at random):
  :func:`inject_stuffing` (ballots added for one candidate, filling part of the
  non-voters; optionally also taking other candidates' votes — Klimek's "extreme"
  fraud), :func:`inject_shift` (votes moved from one candidate to another),
  :func:`inject_rounding` (figures adjusted so that turnout and the candidate's share are
  whole percentages, Kobak's fingerprint) and :func:`inject_fabricated_digits` (final
  digits invented with human preferences for 0 and 5).

:func:`small_election` builds a clean synthetic election from scratch (a new structure
each time, small enough to run the whole screen in a fraction of a second): regions,
provinces, districts and polling places with their own turnout and lean, binomial
counts per mesa.

Every function takes a canonical acta frame and an explicit ``numpy.random.Generator``,
returns a new frame (the input is not modified) and, for injections, the boolean mask of
manipulated rows. Acta arithmetic (candidates + blank + null + challenged = cast ≤
electors) is preserved.
"""

from __future__ import annotations

import typing
from typing import Any

import numpy as np
import polars as pl

from escrutinio.domain import ACTA_COLUMNS, ActaStatus, Candidate, Contest, ContestKind


def _counted(frame: pl.DataFrame, contest: Contest) -> np.ndarray:
    ok = (frame["status"] == ActaStatus.COUNTED.value).fill_null(False).to_numpy()
    for c in ["cast", *contest.candidate_columns]:
        ok &= frame[c].is_not_null().to_numpy()
    return ok


def _ints(frame: pl.DataFrame, col: str) -> np.ndarray:
    return frame[col].fill_null(0).to_numpy().astype(np.int64)


def _sequential_multinomial(total: np.ndarray, parts: np.ndarray,
                            rng: np.random.Generator) -> np.ndarray:
    """Multinomial(total_i, parts_i / Σ parts_i) per row, by conditional binomials."""
    n, k = parts.shape
    out = np.zeros((n, k), dtype=np.int64)
    remaining = total.astype(np.int64).copy()
    weight_left = parts.sum(axis=1).astype(float)
    for j in range(k - 1):
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(weight_left > 0, parts[:, j] / weight_left, 0.0)
        draw = rng.binomial(remaining, np.clip(p, 0.0, 1.0))
        out[:, j] = draw
        remaining -= draw
        weight_left -= parts[:, j]
    out[:, k - 1] = remaining
    return out


def redraw_clean(frame: pl.DataFrame, contest: Contest, rng: np.random.Generator,
                 *, redraw_turnout: bool = True) -> pl.DataFrame:
    """A clean election with the same structure: binomial/multinomial redraws of every
    counted acta at its own observed rates (see the module docstring)."""
    ok = _counted(frame, contest)
    cand = contest.candidate_columns
    cols = [*cand, "blank", "null", "challenged"]
    parts = np.column_stack([_ints(frame, c) for c in cols])[ok]
    cast = _ints(frame, "cast")[ok]
    # ballots in the acta (may differ from cast when the acta does not add up)
    total = parts.sum(axis=1)
    has_electors = frame["electors"].null_count() == 0
    if redraw_turnout and has_electors:
        electors = _ints(frame, "electors")[ok]
        p = np.where(electors > 0, np.minimum(total, electors) / np.maximum(electors, 1), 0.0)
        total = rng.binomial(electors, p)
    new = _sequential_multinomial(total, parts, rng)
    updates = {}
    for j, c in enumerate(cols):
        col = _ints(frame, c)
        col[ok] = new[:, j]
        updates[c] = col
    cast_new = _ints(frame, "cast")
    cast_new[ok] = total if redraw_turnout and has_electors else new.sum(axis=1)
    del cast
    updates["cast"] = cast_new
    return _replace(frame, updates, ok)


def _replace(frame: pl.DataFrame, updates: dict[str, np.ndarray],
             rows: np.ndarray) -> pl.DataFrame:
    """Write integer columns back, keeping nulls where the acta was not touched."""
    exprs = []
    keep = pl.Series(rows)
    for c, values in updates.items():
        s = pl.Series(c, values, dtype=pl.Int64)
        exprs.append(pl.when(keep).then(s).otherwise(pl.col(c)).alias(c))
    return frame.with_columns(exprs)


def _pick(frame: pl.DataFrame, contest: Contest, share: float, rng: np.random.Generator,
          eligible: np.ndarray | None = None) -> np.ndarray:
    ok = _counted(frame, contest)
    if eligible is not None:
        ok &= eligible
    idx = np.flatnonzero(ok)
    k = round(share * len(idx))
    mask = np.zeros(frame.height, dtype=bool)
    if k > 0:
        mask[rng.choice(idx, size=min(k, len(idx)), replace=False)] = True
    return mask


def inject_stuffing(
    frame: pl.DataFrame, contest: Contest, candidate: str, share: float,
    rng: np.random.Generator, *, fill: float | tuple[float, float] = (0.3, 0.8),
    steal: float = 0.0, where: np.ndarray | None = None,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Ballot stuffing in a random ``share`` of counted actas (of those in ``where``,
    when given): ballots for ``candidate`` fill a fraction ``fill`` (fixed, or uniform in
    a range per acta) of the acta's non-voters; ``steal`` also moves that fraction of the
    other candidates' votes to it (``fill`` ≈ 0.95, ``steal`` ≈ 0.9 is Klimek's extreme
    fraud)."""
    if frame["electors"].null_count():
        raise ValueError("ballot stuffing needs electors per acta")
    mask = _pick(frame, contest, share, rng, where)
    m = int(mask.sum())
    f = (rng.uniform(fill[0], fill[1], m) if isinstance(fill, tuple) else np.full(m, fill))
    col = f"v_{candidate}"
    electors = _ints(frame, "electors")[mask]
    cast = _ints(frame, "cast")[mask]
    added = np.floor(f * np.maximum(electors - cast, 0)).astype(np.int64)
    updates: dict[str, np.ndarray] = {}
    target = _ints(frame, col)
    target_m = target[mask] + added
    for other in contest.candidate_columns:
        if other == col:
            continue
        v = _ints(frame, other)
        moved = np.floor(steal * v[mask]).astype(np.int64)
        v[mask] -= moved
        target_m += moved
        updates[other] = v
    target[mask] = target_m
    updates[col] = target
    new_cast = _ints(frame, "cast")
    new_cast[mask] = cast + added
    updates["cast"] = new_cast
    return _replace(frame, updates, mask), mask


def inject_shift(
    frame: pl.DataFrame, contest: Contest, to: str, from_: str, share: float,
    rng: np.random.Generator, *, moved: float | tuple[float, float] = 0.25,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Move a fraction ``moved`` of ``from_``'s votes to ``to`` in a random ``share`` of
    counted actas (turnout unchanged)."""
    mask = _pick(frame, contest, share, rng)
    m = int(mask.sum())
    f = rng.uniform(moved[0], moved[1], m) if isinstance(moved, tuple) else np.full(m, moved)
    a, b = _ints(frame, f"v_{to}"), _ints(frame, f"v_{from_}")
    k = np.floor(f * b[mask]).astype(np.int64)
    a[mask] += k
    b[mask] -= k
    return _replace(frame, {f"v_{to}": a, f"v_{from_}": b}, mask), mask


def _whole(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    nn = np.maximum(n, 1)
    r = (100 * k) % nn
    return 20 * np.minimum(r, nn - r) <= nn


def inject_rounding(
    frame: pl.DataFrame, contest: Contest, candidate: str, share: float,
    rng: np.random.Generator, *, turnout: bool = True, max_change: int = 12,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Kobak's fingerprint: in a random ``share`` of counted actas with ≥ 100 electors,
    adjust ``candidate``'s votes (and another candidate's) by the smallest amounts that
    make its share of valid votes — and turnout, when ``turnout`` — whole percentages.
    Actas where no adjustment within ``max_change`` votes works are left unchanged."""
    has_e = frame["electors"].null_count() == 0
    eligible = (frame["electors"].fill_null(0).to_numpy() >= 100) if has_e else None
    mask = _pick(frame, contest, share, rng, eligible)
    idx = np.flatnonzero(mask)
    cols = contest.candidate_columns
    col = f"v_{candidate}"
    other = next(c for c in cols if c != col)
    votes = {c: _ints(frame, c) for c in cols}
    a, b = votes[col][idx], votes[other][idx]
    # typing.cast: ``cast`` is a local name here; cols is never empty, so not the 0 start
    valid = typing.cast(np.ndarray, sum(votes[c][idx] for c in cols))
    cast = _ints(frame, "cast")[idx]
    electors = _ints(frame, "electors")[idx] if has_e else None
    # search the (da, db) grid for the smallest |da| + |db| that works
    rng_d = np.arange(-max_change, max_change + 1)
    da: np.ndarray
    db: np.ndarray
    da, db = np.meshgrid(rng_d, rng_d, indexing="ij")
    da, db = da.ravel(), db.ravel()
    cost = np.abs(da) + np.abs(db)
    order = np.argsort(cost, kind="stable")
    da, db = da[order], db[order]
    a2 = a[:, None] + da[None, :]
    b2 = b[:, None] + db[None, :]
    v2 = valid[:, None] + da[None, :] + db[None, :]
    ok = (a2 >= 0) & (b2 >= 0) & (v2 > 0) & _whole(a2, v2)
    if turnout and electors is not None:
        c2 = cast[:, None] + da[None, :] + db[None, :]
        ok &= (c2 <= electors[:, None]) & _whole(c2, electors[:, None])
    has = ok.any(axis=1)
    first = np.argmax(ok, axis=1)
    choice_a = np.where(has, da[first], 0)
    choice_b = np.where(has, db[first], 0)
    votes[col][idx] = a + choice_a
    votes[other][idx] = b + choice_b
    new_cast = _ints(frame, "cast")
    new_cast[idx] = cast + choice_a + choice_b
    done = np.zeros(frame.height, dtype=bool)
    done[idx[has]] = True
    updates = {col: votes[col], other: votes[other], "cast": new_cast}
    return _replace(frame, updates, done), done


def inject_fabricated_digits(
    frame: pl.DataFrame, contest: Contest, share: float, rng: np.random.Generator,
    *, preferred: tuple[float, ...] = (0.2, 0.08, 0.08, 0.08, 0.08, 0.16, 0.08, 0.08, 0.08,
                                       0.08),
) -> tuple[pl.DataFrame, np.ndarray]:
    """Invented figures: in a random ``share`` of counted actas, every candidate count of
    10 or more gets a final digit drawn with human preferences (0 and 5 favoured); cast
    changes by the same amount."""
    mask = _pick(frame, contest, share, rng)
    idx = np.flatnonzero(mask)
    updates: dict[str, np.ndarray] = {}
    delta = np.zeros(len(idx), dtype=np.int64)
    probs = np.asarray(preferred) / np.sum(preferred)
    electors = (_ints(frame, "electors")[idx] if frame["electors"].null_count() == 0
                else None)
    cast = _ints(frame, "cast")[idx]
    for c in contest.candidate_columns:
        v = _ints(frame, c)
        x = v[idx]
        digit = rng.choice(10, size=len(idx), p=probs)
        new = np.where(x >= 10, x - x % 10 + digit, x)
        if electors is not None:  # never above the electors
            room = electors - (cast + delta)
            new = np.where(new - x > room, x, new)
        delta += new - x
        v[idx] = new
        updates[c] = v
    new_cast = _ints(frame, "cast")
    new_cast[idx] = cast + delta
    updates["cast"] = new_cast
    return _replace(frame, updates, mask), mask


SMALL_RUNOFF = Contest(
    id="zz-pequena-2v", name="Elección sintética pequeña, segunda vuelta",
    kind=ContestKind.RUNOFF, country="ZZ", date="2031-06-01",
    candidates=(Candidate("azul", "Candidata Azul", "Partido Azul"),
                Candidate("rojo", "Candidato Rojo", "Partido Rojo")))

SMALL_FIRST_ROUND = Contest(
    id="zz-pequena-1v", name="Elección sintética pequeña, primera vuelta",
    kind=ContestKind.FIRST_ROUND, country="ZZ", date="2031-04-06",
    candidates=(Candidate("azul", "Candidata Azul", "Partido Azul"),
                Candidate("rojo", "Candidato Rojo", "Partido Rojo"),
                Candidate("verde", "Candidata Verde", "Partido Verde"),
                Candidate("ocre", "Candidato Ocre", "Partido Ocre")),
    majority_threshold=0.5)


def small_election(
    rng: np.random.Generator, *, regions: int = 6, provinces: int = 4, districts: int = 4,
    places: int = 3, mesas: tuple[int, int] = (6, 14), contest: Contest = SMALL_RUNOFF,
) -> pl.DataFrame:
    """A clean election (every acta counted) with nested geography: each region,
    province, district and polling place has its own turnout and lean (normal shifts on
    the logit scale), each mesa 150-300 electors and binomial/multinomial counts.
    Candidates' shares: a softmax of per-candidate leans (first candidates stronger)."""
    k = len(contest.candidates)
    n_pl = regions * provinces * districts * places
    per = rng.integers(mesas[0], mesas[1] + 1, n_pl)
    pl_idx = np.repeat(np.arange(n_pl), per)
    n = len(pl_idx)
    d_idx = pl_idx // places
    p_idx = d_idx // districts
    r_idx = p_idx // provinces

    def lean(sd: tuple[float, float, float, float], size: int) -> np.ndarray:
        r = rng.normal(0, sd[0], (regions, size))[r_idx]
        p = rng.normal(0, sd[1], (regions * provinces, size))[p_idx]
        d = rng.normal(0, sd[2], (regions * provinces * districts, size))[d_idx]
        q = rng.normal(0, sd[3], (n_pl, size))[pl_idx]
        return r + p + d + q

    t_logit = 1.1 + lean((0.25, 0.15, 0.1, 0.08), 1)[:, 0] + rng.normal(0, 0.1, n)
    base = -0.35 * np.arange(k, dtype=float)
    s_logit = base[None, :] + lean((0.45, 0.25, 0.15, 0.1), k) + rng.normal(0, 0.08, (n, k))
    share = np.exp(s_logit - s_logit.max(axis=1, keepdims=True))
    share /= share.sum(axis=1, keepdims=True)
    electors = rng.integers(150, 301, n)
    cast = rng.binomial(electors, 1.0 / (1.0 + np.exp(-t_logit)))
    null = rng.binomial(cast, 0.06)
    blank = rng.binomial(cast - null, 0.02)
    votes = _sequential_multinomial(cast - null - blank, share, rng)
    reg = np.char.add("R", np.char.zfill((r_idx + 1).astype(str), 2))
    prov = np.char.add(reg, np.char.zfill((p_idx % provinces + 1).astype(str), 2))
    dist = np.char.add(prov, np.char.zfill((d_idx % districts + 1).astype(str), 2))
    cols: dict[str, object] = {
        "acta_id": [f"{i + 1:06d}" for i in range(n)],
        "area1_code": reg.tolist(), "area2_code": prov.tolist(), "area3_code": dist.tolist(),
        "abroad": np.zeros(n, dtype=bool),
        "polling_place": [f"Local {i % places + 1}" for i in pl_idx.tolist()],
        "status": [ActaStatus.COUNTED.value] * n, "observation": [None] * n,
        "resolved": np.zeros(n, dtype=bool), "electors": electors, "cast": cast,
        "blank": blank, "null": null, "challenged": np.zeros(n, dtype=np.int64),
    }
    for j, col in enumerate(contest.candidate_columns):
        cols[col] = votes[:, j]
    frame = pl.DataFrame(cols)
    for c, dtype in ACTA_COLUMNS.items():
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype).alias(c))
    schema: dict[Any, pl.DataType] = {
        **ACTA_COLUMNS, **{c: pl.Int64() for c in contest.candidate_columns}}
    return frame.select([*ACTA_COLUMNS, *contest.candidate_columns]).cast(schema)
