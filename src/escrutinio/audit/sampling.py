"""Public, reproducible sampling from a seed rolled with dice: SHA-256 only, never a library RNG.

Three samplers, all pure functions of (seed, manifest):

* :func:`rivest_picks` — Rivest's 2011 counter-mode sampler (``sampler.py``, 14 Nov 2011):
  the i-th pick (i = 1, 2, ...) is ``a + SHA-256(seed + "," + str(i)) mod (b - a + 1)``,
  the hash read as a big-endian 256-bit integer, strings UTF-8. Without replacement a
  pick equal to an earlier one is rejected (and the counter moves on). Escalation asks
  for more picks: the first n are always the same.
* :func:`ppeb_draws` — sampling with probability proportional to an error bound (PPEB),
  with replacement, through the same counter mode: acta p owns a block of ``w_p``
  consecutive integers ("error-bound units", ``w_p`` = its bound in integer units) laid
  out in manifest order; draw i is the acta owning unit ``SHA-256(seed + "," + i) mod S``,
  ``S = sum w_p``. That is exactly Rivest's 2011 pick on 0..S-1. The modulo bias is at
  most S / 2**256, i.e. nil.
* :func:`consistent_sample` — Rivest's 2018 consistent sampler (arXiv:1808.10016; PyPI
  ``consistent_sampler``): each acta gets a ticket number in (0, 1) from
  ``SHA-256(hex(SHA-256(seed)) + id)``, digits reversed; the sample is the actas in
  ascending ticket order. With replacement a drawn acta gets a new, larger ticket
  computed from its previous one, so escalation just reads further down the same list.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from escrutinio.audit.ids import AuditInputError

MIN_SEED_DIGITS = 20


def normalise_seed(seed: str) -> str:
    """Seed as Rivest's sampler reads it: each line stripped, lines concatenated."""
    s = "".join(line.strip() for line in str(seed).splitlines())
    if not s:
        raise AuditInputError("la semilla está vacía", "the seed is empty")
    return s


def seed_warning(seed: str) -> tuple[str, str] | None:
    """(es, en) warning when the seed has fewer than 20 random digits."""
    digits = sum(ch.isdigit() for ch in seed)
    if digits >= MIN_SEED_DIGITS:
        return None
    return (f"la semilla tiene {digits} dígitos; se recomiendan al menos {MIN_SEED_DIGITS} "
            "tirados con dados en público",
            f"the seed has {digits} digits; at least {MIN_SEED_DIGITS} rolled with dice in "
            "public are recommended")


def sha256_int(text: str) -> int:
    """SHA-256 of the UTF-8 text as a big-endian integer in [0, 2**256)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big")


# --- Rivest 2011 ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RivestPick:
    counter: int  # i in SHA-256(seed + "," + i)
    value: int
    duplicate: bool  # rejected (sampling without replacement only)


def rivest_value(seed: str, counter: int, a: int, b: int) -> int:
    if b < a:
        raise AuditInputError(f"rango vacío {a}..{b}", f"empty range {a}..{b}")
    return a + sha256_int(f"{seed},{counter}") % (b - a + 1)


def rivest_picks(seed: str, n: int, a: int, b: int, *,
                 with_replacement: bool) -> list[RivestPick]:
    """The transcript of Rivest's sampler until ``n`` picks are accepted.

    Without replacement, rejected duplicates are listed too (``duplicate=True``), as the
    reference program prints them.
    """
    if n < 0:
        raise AuditInputError("tamaño negativo", "negative sample size")
    if not with_replacement and n > b - a + 1:
        raise AuditInputError(
            f"no se pueden elegir {n} valores distintos en {a}..{b}",
            f"cannot pick {n} distinct values from {a}..{b}")
    out: list[RivestPick] = []
    seen: set[int] = set()
    accepted = 0
    for i in itertools.count(1):
        if accepted >= n:
            break
        v = rivest_value(seed, i, a, b)
        dup = not with_replacement and v in seen
        out.append(RivestPick(i, v, dup))
        if not dup:
            seen.add(v)
            accepted += 1
    return out


def rivest_sample(seed: str, n: int, a: int, b: int, *, with_replacement: bool) -> list[int]:
    """The n accepted picks of Rivest's 2011 sampler, in the order they were generated."""
    return [p.value for p in rivest_picks(seed, n, a, b, with_replacement=with_replacement)
            if not p.duplicate]


# --- PPEB ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PPEBDraws:
    counters: np.ndarray  # i = start, start + 1, ...
    units: list[int]  # SHA-256(seed + "," + i) mod S (Python ints: S may exceed int64)
    positions: np.ndarray  # 0-based manifest position of the drawn acta
    total_units: int  # S


def ppeb_draws(seed: str, weights: Sequence[int] | np.ndarray, n: int, *,
               start: int = 1) -> PPEBDraws:
    """Draws ``start .. start + n - 1`` of a PPEB sample with replacement.

    ``weights`` are non-negative integers in manifest order (an acta with weight 0 is
    never drawn). Escalation calls this again with ``start`` = previous n + 1.
    """
    arr = np.asarray(weights)
    small = arr.dtype.kind in "iu"
    if small:
        if arr.size and int(arr.min()) < 0:
            raise AuditInputError("pesos negativos", "negative weights")
        small = float(arr.sum(dtype=np.float64)) < 2.0**61  # int64 sums are then exact
        total = int(arr.sum(dtype=np.int64)) if small else 0
    if not small:
        w = [int(x) for x in arr.tolist()]
        if any(x < 0 for x in w):
            raise AuditInputError("pesos negativos", "negative weights")
        cum_list = list(itertools.accumulate(w))
        total = cum_list[-1] if cum_list else 0
    if total <= 0:
        raise AuditInputError("ninguna acta tiene cota de error positiva",
                              "no acta has a positive error bound")
    counters = np.arange(start, start + n, dtype=np.int64)
    units = [sha256_int(f"{seed},{i}") % total for i in range(start, start + n)]
    if small:
        cum = np.cumsum(arr.astype(np.int64))
        positions = np.searchsorted(cum, np.array(units, dtype=np.int64), side="right")
    else:
        positions = np.array([bisect.bisect_right(cum_list, u) for u in units],
                             dtype=np.int64)
    return PPEBDraws(counters, units, positions.astype(np.int64), total)


# --- Rivest 2018 consistent sampler --------------------------------------------------------

@dataclass(frozen=True, slots=True, order=True)
class Ticket:
    """A ticket: actas are sampled in increasing ``number`` order (a decimal string)."""

    number: str  # "0.ddd...", full precision
    acta_id: str
    generation: int  # 1 for the first ticket; +1 each time the acta is drawn (with repl.)

    def short(self, digits: int = 9) -> str:
        """The number cut (not rounded) to ``digits`` digits after the leading 9s."""
        return _trim(self.number, digits)


def _reversed_digits(text: str) -> str:
    # decimal digits of the hash, at least 64 of them, low-order (unbiased) digits first
    return f"{sha256_int(text):064d}"[::-1]


def _first_non9(x0: str) -> int:
    for k in range(2, len(x0)):
        if x0[k] != "9":
            return k
    return len(x0)


def _trim(x: str, digits: int) -> str:
    return x[:_first_non9(x + "0") + digits]


def seed_hash(seed: str) -> str:
    return hashlib.sha256(str(seed).encode("utf-8")).hexdigest()


def first_ticket_number(acta_id: str, seed: str, hashed_seed: str | None = None) -> str:
    h = hashed_seed if hashed_seed is not None else seed_hash(seed)
    return "0." + _reversed_digits(h + str(acta_id))


def next_ticket_number(x: str) -> str:
    """A pseudorandom number in (x, 1): keep the leading 9s of x, redraw the rest."""
    if not x.startswith("0."):
        raise ValueError(f"not a ticket number: {x!r}")
    x0 = x + "0"
    prefix = x0[:_first_non9(x0)]
    y = "0."
    i = 0
    while y <= x0:
        i += 1
        y = prefix + _reversed_digits(f"{x}:{i}")
    return y


def consistent_sample(ids: Sequence[str], seed: str, *, with_replacement: bool = False,
                      take: int | None = None, drop: int = 0) -> list[Ticket]:
    """Tickets ``drop + 1 .. drop + take`` of the consistent sample of ``ids``.

    Without replacement ``take`` defaults to every acta. With replacement the stream is
    infinite, so ``take`` is required. Escalation = a larger ``take`` (same prefix).
    """
    ids = list(ids)
    if len(set(ids)) != len(ids):
        raise AuditInputError("IDs repetidos en el manifiesto",
                              "duplicate IDs in the manifest")
    if with_replacement and take is None:
        raise AuditInputError("con reemplazo hay que indicar cuántas extracciones",
                              "with replacement the number of draws is required")
    h = seed_hash(seed)
    first = [Ticket(first_ticket_number(i, seed, h), i, 1) for i in ids]
    stop = drop + (len(ids) if take is None else take)
    if not with_replacement:
        first.sort()
        return first[drop:stop]
    heapq.heapify(first)
    out: list[Ticket] = []
    for count in range(1, stop + 1):
        t = heapq.heappop(first)
        heapq.heappush(first, Ticket(next_ticket_number(t.number), t.acta_id,
                                     t.generation + 1))
        if count > drop:
            out.append(t)
    return out
