"""Parallel vote tabulation: observers' copies against the official actas (docs/methods.md §3).

Each copy is matched to the official acta by ``acta_id`` (and by copy code when both sides
carry one), compared field by field, and classified. Categories, most specific first:

* match problems (no numeric comparison is possible or meaningful):
  ``unknown_mesa`` (the copy names an acta the official roll does not have),
  ``official_missing`` (the acta exists but has no official figures yet: pending, lost),
  ``official_annulled`` / ``official_not_installed`` (the authority annulled the acta or
  says the mesa never opened, yet an observer holds a filled copy),
  ``copy_code_mismatch`` (the copy code differs: the copy or photo is of another acta);
* numeric discrepancies (both sides have figures and at least one field differs):
  ``candidates_swapped`` (two candidates' figures exchanged, all else equal),
  ``transposed_digits`` (exactly one field differs, by exchanging two of its digits —
  adjacent, the usual slip, or apart — without changing its number of digits),
  ``votes_above_electors`` (the copy has more votes cast than electors),
  ``sum_mismatch`` (the copy's figures do not add up: candidates + blank + null +
  challenged ≠ cast), ``figures_differ`` (any other difference: the figures add up but
  are not the official ones — the most material kind);
* ``exact`` — every field both sides report is equal: no alarm.

Across copies: ``duplicate_copy`` (the same figures sent again — information, not an
alarm), ``conflicting_copies`` (copies of one acta disagree among themselves: an alarm
on every copy of that acta), ``image_reused`` (one photo hash attached to copies of
different actas).

**Materiality** of a copy = the net change of the margin (leader − runner-up, in the
official count) if the copy were right: (copy leader − copy runner-up) minus the same
difference in the official figures (0 when the official acta has no figures or was
annulled). Every comparable copy falls in one **scope** (:data:`SCOPES`), and only the
``published`` scope — plausible copies (their own figures add up and do not exceed the
electors) of actas the authority has published with figures — enters the headline "all
plausible discrepancies together could move the margin by X of Y" (Y = current margin
among counted actas). Copies that cannot be right (``impossible``), copies of actas not
yet published (``unpublished``) and of actas annulled or never installed (``annulled``)
are separate lines, never added to X.

**Majority copy** of an acta (for "if each acta's majority copy were right"): among its
``published``-scope copies, the figures sent most often; ties go to the figures first
observed (earliest ``observed_at``; a copy without a time comes after every timed one),
then to the lowest SHA-256 of the figures' canonical content — the UTF-8 text
``electors|cast|blank|null|challenged|v_<c1>|…`` (candidates in the contest's order,
decimal integers, empty where not reported). The rule depends on nothing but the
copies, so the sentence is identical between runs and in any order of the rows.

Where the authority publishes only totals per unit (or a national total),
:func:`reconcile_units` aggregates the copies to that level and compares there.

Vectorised: one join and whole-column numpy; no Python loop over copies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import numpy as np
import polars as pl

from escrutinio.domain import ActaStatus, Contest, Level, level_label
from escrutinio.errors import BadOptionError, EscrutinioError
from escrutinio.provenance import Provenance, to_jsonable


class Category(StrEnum):
    EXACT = "exact"
    CANDIDATES_SWAPPED = "candidates_swapped"
    TRANSPOSED_DIGITS = "transposed_digits"
    VOTES_ABOVE_ELECTORS = "votes_above_electors"
    SUM_MISMATCH = "sum_mismatch"
    FIGURES_DIFFER = "figures_differ"
    OFFICIAL_MISSING = "official_missing"
    OFFICIAL_ANNULLED = "official_annulled"
    OFFICIAL_NOT_INSTALLED = "official_not_installed"
    UNKNOWN_MESA = "unknown_mesa"
    COPY_CODE_MISMATCH = "copy_code_mismatch"


NUMERIC: Final = frozenset({Category.CANDIDATES_SWAPPED, Category.TRANSPOSED_DIGITS,
                            Category.VOTES_ABOVE_ELECTORS, Category.SUM_MISMATCH,
                            Category.FIGURES_DIFFER})
#: categories whose net change enters the materiality totals
MATERIAL: Final = NUMERIC | {Category.OFFICIAL_MISSING, Category.OFFICIAL_ANNULLED,
                             Category.OFFICIAL_NOT_INSTALLED}

LABELS: Final[dict[str, tuple[str, str]]] = {
    "exact": ("idéntica", "exact"),
    "candidates_swapped": ("candidatos intercambiados", "candidates swapped"),
    "transposed_digits": ("dígitos transpuestos", "transposed digits"),
    "votes_above_electors": ("más votos que electores", "votes above electors"),
    "sum_mismatch": ("la suma no cuadra", "sum does not add up"),
    "figures_differ": ("cifras distintas (cuadran)", "figures differ (add up)"),
    "official_missing": ("falta el acta oficial", "official acta missing"),
    "official_annulled": ("acta oficial anulada", "official acta annulled"),
    "official_not_installed": ("mesa oficialmente no instalada",
                               "mesa officially not installed"),
    "unknown_mesa": ("mesa inexistente", "mesa does not exist"),
    "copy_code_mismatch": ("código de copia distinto (¿otra acta?)",
                           "copy code differs (another acta?)"),
    "duplicate_copy": ("copia repetida", "duplicate copy"),
    "conflicting_copies": ("copias en conflicto", "conflicting copies"),
    "image_reused": ("foto usada en otra mesa", "photo used for another mesa"),
    "copy_code_conflict": ("copias de una acta con códigos de copia distintos",
                           "copies of one acta with different copy codes"),
    "copy_sum_mismatch": ("la copia no suma", "copy does not add up"),
    "copy_above_electors": ("copia con más votos que electores",
                            "copy with more votes than electors"),
    "official_sum_mismatch": ("el acta oficial no suma", "official acta does not add up"),
    "official_above_electors": ("acta oficial con más votos que electores",
                                "official acta with more votes than electors"),
}

FIELDS_BASE: Final = ("electors", "cast", "blank", "null", "challenged")

#: where a comparable copy's change is counted: only ``published`` enters the headline
SCOPES: Final = ("published", "impossible", "unpublished", "annulled")
SCOPE_LABELS: Final[dict[str, tuple[str, str]]] = {
    "published": ("copias plausibles de actas publicadas",
                  "plausible copies of published actas"),
    "impossible": ("copias imposibles (no suman o tienen más votos que electores)",
                   "impossible copies (do not add up or exceed the electors)"),
    "unpublished": ("copias de actas aún no publicadas", "copies of actas not yet published"),
    "annulled": ("copias de actas anuladas o de mesas no instaladas",
                 "copies of annulled actas or of mesas not installed"),
    "excluded": ("copias sin comparación (mesa inexistente u otro código de copia)",
                 "copies not compared (unknown mesa or another copy code)"),
}


def category_label(name: str, lang: str = "es") -> str:
    es, en = LABELS.get(name, (name, name))
    return es if lang == "es" else en


# --- vectorised digit rules ----------------------------------------------------------------

_POW10: Final = 10 ** np.arange(12, dtype=np.int64)


def _n_digits(x: np.ndarray) -> np.ndarray:
    """Number of decimal digits of non-negative integers (0 has one digit)."""
    return np.maximum((x[:, None] >= _POW10[None, :]).sum(axis=1), 1)


def adjacent_transposition(x: np.ndarray, y: np.ndarray, *, adjacent_only: bool = True
                           ) -> np.ndarray:
    """True where ``y`` is ``x`` with two different digits exchanged, keeping the number of
    digits (so no leading zero appears): 123 ↔ 132, 105 ↔ 150, not 12 ↔ 102. With
    ``adjacent_only=False`` the two digits may be apart (152 ↔ 251, a "jump"
    transposition)."""
    x = np.asarray(x, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    ok = (x >= 0) & (y >= 0) & (x != y)
    xs, ys = np.where(ok, x, 0), np.where(ok, y, 0)
    dx = (xs[:, None] // _POW10[None, :]) % 10
    dy = (ys[:, None] // _POW10[None, :]) % 10
    diff = dx != dy
    same = ok & (_n_digits(xs) == _n_digits(ys)) & (diff.sum(axis=1) == 2)
    if adjacent_only:
        pair = diff[:, :-1] & diff[:, 1:]
        cross = (dx[:, :-1] == dy[:, 1:]) & (dx[:, 1:] == dy[:, :-1])
        return same & (pair & cross).any(1)
    # exactly two positions differ: they are a swap when the digit multisets agree
    return same & (np.sort(np.where(diff, dx, -1), axis=1)
                   == np.sort(np.where(diff, dy, -1), axis=1)).all(axis=1)


def _matrix(df: pl.DataFrame, cols: Sequence[str]) -> np.ndarray:
    """Int64 matrix with -1 for missing values (counts are never negative here)."""
    return np.column_stack([df[c].fill_null(-1).to_numpy().astype(np.int64) for c in cols]) \
        if cols else np.zeros((df.height, 0), dtype=np.int64)


def pick_pair(official: pl.DataFrame, contest: Contest,
              pair: tuple[str, str] | None = None) -> tuple[str, str, int]:
    """(leader, runner-up, margin) among counted actas; ``pair`` fixes the two codes."""
    counted = official.filter(pl.col("status") == ActaStatus.COUNTED.value)
    totals = {c.code: int(counted[c.column].fill_null(0).sum()) for c in contest.candidates}
    return _pair_of(totals, pair)


def _pair_of(totals: dict[str, int], pair: tuple[str, str] | None) -> tuple[str, str, int]:
    if pair is None:
        order = sorted(totals, key=lambda k: (-totals[k], k))
        if len(order) < 2:
            raise ValueError("a margin needs at least two candidates")
        pair = (order[0], order[1])
    a, b = pair
    if a not in totals or b not in totals or a == b:
        valid = ", ".join(sorted(totals))
        raise BadOptionError("--pair", f"{a},{b}", f"dos códigos distintos de: {valid}",
                             f"two different codes among: {valid}")
    return a, b, totals[a] - totals[b]


# --- result ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PvtSummary:
    contest_id: str
    leader: str
    runner_up: str
    margin: int  # official, counted actas, leader − runner-up
    n_copies: int
    n_actas_with_copies: int
    n_official_actas: int
    categories: dict[str, int]
    n_alarms: int
    n_numeric: int
    n_conflicting_actas: int
    n_duplicates: int
    n_image_reused: int
    toward_runner_up: int  # the most the margin could shrink (published scope)
    toward_leader: int  # the most it could grow (published scope)
    net_if_copies_right: int  # sum over published actas of the majority copy's change
    could_flip: bool
    statement_es: str
    statement_en: str
    #: per scope (:data:`SCOPES` and ``excluded``): n_copies, n_actas, toward_runner_up,
    #: toward_leader — the lines kept apart from the headline
    scopes: dict[str, dict[str, int]] = field(default_factory=dict)
    n_copy_codes_unchecked: int = 0  # copies with a code and no official code to check it
    n_copy_code_conflicts: int = 0  # actas whose copies carry different copy codes
    notes_es: tuple[str, ...] = ()
    notes_en: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PvtResult:
    """Reconciliation of observers' copies. ``copies`` has one row per copy, ranked by
    materiality; ``actas`` one row per acta with copies."""

    summary: PvtSummary
    copies: pl.DataFrame
    actas: pl.DataFrame
    provenance: Provenance
    rejected: pl.DataFrame = field(default_factory=pl.DataFrame)

    def alarms(self) -> pl.DataFrame:
        return self.copies.filter(pl.col("alarm"))

    def to_jsonable(self, limit: int | None = 100) -> dict[str, Any]:
        al = self.alarms()
        return {
            "summary": to_jsonable(self.summary),
            "alarms": (al if limit is None else al.head(limit)).with_columns(
                pl.col("observed_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_dicts(),
            "n_alarms_listed": al.height if limit is None else min(limit, al.height),
            "rejected": self.rejected.to_dicts() if self.rejected.height else [],
            "provenance": to_jsonable(self.provenance),
        }


def normalise_ids(ids: pl.Series, official_ids: pl.Series) -> pl.Series:
    """Zero-pad numeric ids when every official id is numeric with one width (Peru: the
    6-digit mesa), so that an observer's ``1`` matches ``000001``."""
    ids = ids.str.strip_chars()
    lengths = official_ids.str.len_chars().unique()
    numeric = bool(official_ids.str.contains(r"^\d+$").all())
    if numeric and lengths.len() == 1:
        w = int(lengths[0])
        padded = pl.select(pl.when(ids.str.contains(r"^\d+$") & (ids.str.len_chars() < w))
                           .then(ids.str.zfill(w)).otherwise(ids)).to_series()
        return padded.alias(ids.name)
    return ids


TIE_RULE: Final = ("most copies; then earliest observed_at (untimed last); then lowest "
                   "SHA-256 of the canonical content")


def canonical_content(fields: Sequence[str], prefix: str = "copy_") -> pl.Expr:
    """The figures of a copy as the canonical text ``electors|cast|…|v_<c>…`` (decimal,
    empty where not reported): what two copies must share to be the same copy, and what
    the majority tie rule hashes."""
    return pl.concat_str([pl.col(f"{prefix}{f}").cast(pl.String).fill_null("")
                          for f in fields], separator="|")


def majority_copies(copies: pl.DataFrame) -> pl.DataFrame:
    """One row per acta: the figures its copies send most often (``acta_id``, ``__sig``,
    ``n``, ``first_seen``, ``sha256``, ``net_change`` and the other columns' first value).

    ``copies`` needs ``acta_id``, ``__sig`` (:func:`canonical_content`) and
    ``observed_at``. Ties: the earliest ``observed_at`` (untimed copies last), then the
    lowest SHA-256 of the canonical content (computed only for the tied actas)."""
    extra = [c for c in copies.columns if c not in ("acta_id", "__sig", "observed_at")]
    order = [c for c in ("observed_at", "copy_id") if c in copies.columns]
    if order:  # the first value of the other columns is the earliest copy's
        copies = copies.sort(order, nulls_last=True)
    g = copies.group_by("acta_id", "__sig").agg(
        pl.len().alias("n"), pl.col("observed_at").min().alias("first_seen"),
        *[pl.col(c).first() for c in extra])
    tied = g.filter(pl.len().over("acta_id") > 1)["__sig"].unique()
    sha = pl.DataFrame({"__sig": tied, "sha256": [
        hashlib.sha256(v.encode("utf-8")).hexdigest() for v in tied.to_list()]},
        schema={"__sig": pl.String, "sha256": pl.String})
    return (g.join(sha, on="__sig", how="left")
            .sort(["acta_id", "n", "first_seen", "sha256"],
                  descending=[False, True, False, False], nulls_last=True)
            .unique("acta_id", keep="first", maintain_order=True))


def scope_lines(rep: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Per scope: copies, actas and the most the margin could move each way (sum over
    actas of the range of its comparable copies' changes in that scope)."""
    out = {sc: {"n_copies": 0, "n_actas": 0, "toward_runner_up": 0, "toward_leader": 0}
           for sc in (*SCOPES, "excluded")}
    for r in rep.group_by("scope").agg(pl.len().alias("n_copies"),
                                       pl.col("acta_id").n_unique().alias("n_actas")
                                       ).iter_rows(named=True):
        out[r["scope"]].update(n_copies=int(r["n_copies"]), n_actas=int(r["n_actas"]))
    per = (rep.filter(pl.col("comparable"))
           .group_by("scope", "acta_id").agg(pl.col("net_change").min().alias("lo"),
                                             pl.col("net_change").max().alias("hi"))
           .group_by("scope").agg(pl.max_horizontal(pl.lit(0), -pl.col("lo")).sum()
                                  .alias("toward_runner_up"),
                                  pl.max_horizontal(pl.lit(0), pl.col("hi")).sum()
                                  .alias("toward_leader")))
    for r in per.iter_rows(named=True):
        out[r["scope"]].update(toward_runner_up=int(r["toward_runner_up"]),
                               toward_leader=int(r["toward_leader"]))
    return out


def _scope_notes(scopes: dict[str, dict[str, int]], margin: int
                 ) -> tuple[list[str], list[str]]:
    """One sentence per non-empty scope kept apart from the headline."""
    es: list[str] = []
    en: list[str] = []
    why = {"impossible": ("no pueden ser correctas: no se suman al titular",
                          "they cannot be right: not added to the headline"),
           "unpublished": ("contarán cuando la autoridad publique esas actas; no se suman "
                           "al titular",
                           "they will count when the authority publishes those actas; not "
                           "added to the headline"),
           "annulled": ("solo la autoridad electoral puede revertir una anulación; no se suman "
                        "al titular", "only the electoral authority can reverse an "
                        "annulment; not added to the headline")}
    for sc, (w_es, w_en) in why.items():
        d = scopes[sc]
        if not d["n_copies"]:
            continue
        moved = d["toward_runner_up"] if margin >= 0 else d["toward_leader"]
        l_es, l_en = SCOPE_LABELS[sc]
        es.append(f"Aparte, {l_es}: {d['n_copies']:,} copias de {d['n_actas']:,} actas, que "
                  f"podrían mover el margen en {moved:,} votos si fueran correctas; {w_es}.")
        en.append(f"Separately, {l_en}: {d['n_copies']:,} copies of {d['n_actas']:,} actas, "
                  f"which could move the margin by {moved:,} votes if they were right; "
                  f"{w_en}.")
    d = scopes["excluded"]
    if d["n_copies"]:
        l_es, l_en = SCOPE_LABELS["excluded"]
        es.append(f"{l_es[0].upper()}{l_es[1:]}: {d['n_copies']:,}.")
        en.append(f"{l_en[0].upper()}{l_en[1:]}: {d['n_copies']:,}.")
    return es, en


def reconcile(
    copies: pl.DataFrame, official: pl.DataFrame, contest: Contest, *,
    copy_codes: pl.DataFrame | None = None, pair: tuple[str, str] | None = None,
    snapshot_ids: Sequence[str] = (), copies_sha256: str = "",
    rejected: pl.DataFrame | None = None, roll: pl.Series | None = None,
    copy_codes_source: str = "",
) -> PvtResult:
    """Match, compare, classify and rank observers' copies against an official acta frame.

    ``copies``: canonical copy frame (:func:`escrutinio.defence.observers.copy_columns`).
    ``official``: canonical acta frame (every acta of the roll; pending ones without
    figures). ``copy_codes``: optional frame ``acta_id, copy_code`` of official copy codes.
    ``roll``: optional list of every acta id that exists, when the official frame holds
    only the published actas: a copy of an acta on the roll but not in ``official`` is
    then ``official_missing`` rather than ``unknown_mesa``. ``copy_codes_source``: where
    the official codes came from (provenance).
    """
    cand = contest.candidate_columns
    leader, runner, margin = pick_pair(official, contest, pair)
    col_a, col_b = f"v_{leader}", f"v_{runner}"
    fields = [*FIELDS_BASE, *cand]
    k_base = len(FIELDS_BASE)

    c = copies.with_columns(normalise_ids(copies["acta_id"], official["acta_id"]))
    off = official.select(
        "acta_id", pl.col("status").alias("o_status"),
        *[pl.col(f).alias(f"o_{f}") for f in fields], pl.lit(True).alias("o_present"))
    if copy_codes is not None and copy_codes.height:
        codes = copy_codes.select(pl.col("acta_id").cast(pl.String),
                                  pl.col("copy_code").cast(pl.String).str.strip_chars()
                                  .str.to_uppercase().alias("o_copy_code")
                                  ).unique("acta_id", keep="first")
        codes = codes.with_columns(normalise_ids(codes["acta_id"], official["acta_id"]))
        off = off.join(codes, on="acta_id", how="left")
    else:
        off = off.with_columns(pl.lit(None, dtype=pl.String).alias("o_copy_code"))
    j = c.join(off, on="acta_id", how="left", maintain_order="left")
    n = j.height

    cm = _matrix(j, fields)
    om = _matrix(j, [f"o_{f}" for f in fields])
    comparable = (cm >= 0) & (om >= 0)
    dm = comparable & (cm != om)
    n_diff = dm.sum(axis=1)

    present = j["o_present"].fill_null(False).to_numpy()
    on_roll = np.zeros(n, dtype=bool)
    if roll is not None:
        roll_ids = normalise_ids(roll.cast(pl.String), official["acta_id"])
        on_roll = j["acta_id"].is_in(roll_ids.implode()).to_numpy() & ~present
    status = j["o_status"].fill_null("").to_numpy().astype(str)
    o_cand_missing = (om[:, k_base:] < 0).any(axis=1) | (om[:, 1] < 0)
    code_copy = j["copy_code"].str.strip_chars().str.to_uppercase()
    code_bad = (code_copy.is_not_null() & j["o_copy_code"].is_not_null()
                & (code_copy != j["o_copy_code"])).to_numpy()

    # internal arithmetic of each side
    def sums(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = np.concatenate([mat[:, 2:4], np.maximum(mat[:, 4:5], 0), mat[:, k_base:]], axis=1)
        total = np.where(parts < 0, 0, parts).sum(axis=1)
        has = (mat[:, 1] >= 0) & (mat[:, 2] >= 0) & (mat[:, 3] >= 0) & (mat[:, k_base:] >= 0).all(1)
        return has & (total != mat[:, 1]), has

    copy_sum_bad, _ = sums(cm)
    off_sum_bad, off_has = sums(om)
    electors_ref = np.where(om[:, 0] >= 0, om[:, 0], cm[:, 0])
    copy_over = (electors_ref >= 0) & (cm[:, 1] > electors_ref)
    off_over = (om[:, 0] >= 0) & (om[:, 1] >= 0) & (om[:, 1] > om[:, 0])

    # swapped candidates: exactly two fields differ, both candidates, values crossed
    order = np.argsort(~dm, axis=1, kind="stable")
    i1, i2 = order[:, 0], order[:, 1] if dm.shape[1] > 1 else order[:, 0]
    rows = np.arange(n)
    two = n_diff == 2
    swapped = (two & (i1 >= k_base) & (i2 >= k_base)
               & (cm[rows, i1] == om[rows, i2]) & (cm[rows, i2] == om[rows, i1]))
    transposed = (n_diff == 1) & adjacent_transposition(cm[rows, i1], om[rows, i1],
                                                        adjacent_only=False)

    cat = np.full(n, Category.EXACT.value, dtype=object)
    numeric_diff = n_diff > 0
    cat[numeric_diff] = Category.FIGURES_DIFFER.value
    cat[numeric_diff & copy_sum_bad] = Category.SUM_MISMATCH.value
    cat[numeric_diff & copy_over] = Category.VOTES_ABOVE_ELECTORS.value
    cat[transposed] = Category.TRANSPOSED_DIGITS.value
    cat[swapped] = Category.CANDIDATES_SWAPPED.value
    annulled = status == ActaStatus.ANNULLED.value
    not_inst = status == ActaStatus.NOT_INSTALLED.value
    missing = present & ~annulled & ~not_inst & o_cand_missing
    cat[present & code_bad] = Category.COPY_CODE_MISMATCH.value
    cat[missing & ~code_bad] = Category.OFFICIAL_MISSING.value
    cat[annulled & ~code_bad] = Category.OFFICIAL_ANNULLED.value
    cat[not_inst & ~code_bad] = Category.OFFICIAL_NOT_INSTALLED.value
    cat[~present] = Category.UNKNOWN_MESA.value
    cat[on_roll] = Category.OFFICIAL_MISSING.value

    ia, ib = fields.index(col_a), fields.index(col_b)
    copy_net = np.where((cm[:, ia] >= 0) & (cm[:, ib] >= 0), cm[:, ia] - cm[:, ib], 0)
    off_ref = np.where(present & ~annulled & ~not_inst & (om[:, ia] >= 0) & (om[:, ib] >= 0),
                       om[:, ia] - om[:, ib], 0)
    net_change = np.where(present | on_roll, copy_net - off_ref, 0)
    cat_s = pl.Series("category", cat.astype(str))
    material = cat_s.is_in([m.value for m in MATERIAL]).to_numpy()
    comparable_row = material | (cat == Category.EXACT.value)
    impossible = material & (copy_sum_bad | copy_over)
    scope = np.full(n, "published", dtype=object)
    scope[(cat == Category.OFFICIAL_ANNULLED.value)
          | (cat == Category.OFFICIAL_NOT_INSTALLED.value)] = "annulled"
    scope[cat == Category.OFFICIAL_MISSING.value] = "unpublished"
    scope[impossible] = "impossible"
    scope[~comparable_row] = "excluded"

    likely = np.full(n, "", dtype=object)
    num = cat_s.is_in([m.value for m in NUMERIC]).to_numpy()
    copy_bad = copy_sum_bad | copy_over
    off_bad = off_sum_bad | off_over
    likely[num & copy_bad & ~off_bad] = "copy"
    likely[num & off_bad & ~copy_bad] = "official"
    likely[num & (likely == "")] = "unknown"

    diff_fields = pl.DataFrame({f: dm[:, i] for i, f in enumerate(fields)}).select(
        pl.concat_str([pl.when(pl.col(f)).then(pl.lit(f)) for f in fields], separator=";",
                      ignore_nulls=True).alias("differing_fields")).to_series()

    rep = j.select(
        "copy_id", "acta_id", "observer_id", "organization", "observed_at", "line",
        "copy_code", "o_copy_code", "image_sha256", pl.col("o_status").alias("official_status"),
    ).with_columns(
        cat_s,
        pl.Series("scope", scope.astype(str)),
        diff_fields,
        pl.Series("n_fields_differ", n_diff.astype(np.int64)),
        pl.Series("copy_net", copy_net), pl.Series("official_net", off_ref),
        pl.Series("net_change", net_change),
        pl.Series("material", material), pl.Series("comparable", comparable_row),
        pl.Series("likely_wrong", likely.astype(str)),
        pl.Series("copy_sum_mismatch", copy_sum_bad), pl.Series("copy_above_electors", copy_over),
        pl.Series("official_sum_mismatch", off_sum_bad & off_has),
        pl.Series("official_above_electors", off_over),
        *[pl.Series(f"copy_{f}", cm[:, i]) for i, f in enumerate(fields)],
        *[pl.Series(f"official_{f}", om[:, i]) for i, f in enumerate(fields)],
    ).with_columns(
        [pl.when(pl.col(f"{side}_{f}") < 0).then(None).otherwise(pl.col(f"{side}_{f}"))
         .alias(f"{side}_{f}") for side in ("copy", "official") for f in fields]
    )

    # across copies: duplicates, conflicts, reused photos, disagreeing copy codes
    code_u = pl.col("copy_code").str.strip_chars().str.to_uppercase()
    rep = rep.with_columns(canonical_content(fields).alias("__sig")).with_columns(
        pl.len().over("acta_id").alias("acta_copies"),
        pl.col("observer_id").n_unique().over("acta_id").alias("acta_observers"),
        (pl.col("__sig").n_unique().over("acta_id") > 1).alias("conflicting_copies"),
        (pl.int_range(pl.len()).over(["acta_id", "__sig"],
                                     order_by=["observed_at", "line", "copy_id"])
         > 0).alias("duplicate_copy"),
        (pl.col("image_sha256").is_not_null()
         & (pl.col("acta_id").n_unique().over("image_sha256") > 1)).alias("image_reused"),
        (code_u.drop_nulls().n_unique().over("acta_id") > 1).alias("copy_code_conflict"),
    )
    rep = rep.with_columns(
        ((pl.col("category") != Category.EXACT.value) | pl.col("conflicting_copies")
         | pl.col("image_reused") | pl.col("copy_code_conflict")).alias("alarm"),
        (100.0 * pl.col("net_change") / margin if margin else pl.lit(None, pl.Float64)
         ).alias("pct_of_margin"),
        pl.concat_str([
            pl.when(pl.col("category") != "exact").then(pl.col("category")),
            *[pl.when(pl.col(f)).then(pl.lit(f)) for f in
              ("conflicting_copies", "duplicate_copy", "image_reused", "copy_code_conflict",
               "copy_sum_mismatch", "copy_above_electors", "official_sum_mismatch",
               "official_above_electors")],
        ], separator=";", ignore_nulls=True).alias("flags"),
    )

    # per acta: the range of margin changes its plausible published copies imply, and the
    # majority copy's change (deterministic tie rule, module docstring)
    head = rep.filter(pl.col("comparable") & (pl.col("scope") == "published"))
    majority = majority_copies(head.select("acta_id", "__sig", "observed_at", "copy_id",
                                           "net_change")).select("acta_id", pl.col("net_change")
                                            .alias("majority_change"),
                                            pl.col("sha256").alias("majority_sha256"))
    in_head = pl.col("comparable") & (pl.col("scope") == "published")
    actas = (rep.group_by("acta_id").agg(
        pl.len().alias("n_copies"), pl.col("observer_id").n_unique().alias("n_observers"),
        pl.col("official_status").first(),
        pl.col("category").first().alias("__category"),
        pl.col("alarm").any(), pl.col("conflicting_copies").any(),
        pl.col("copy_code_conflict").any(),
        pl.col("net_change").filter(in_head).min().alias("min_change"),
        pl.col("net_change").filter(in_head).max().alias("max_change"),
        pl.col("net_change").filter(pl.col("comparable")).min().alias("min_change_any"),
        pl.col("net_change").filter(pl.col("comparable")).max().alias("max_change_any"),
    ).join(majority, on="acta_id", how="left")
        # the categories of an acta's copies; joined as text only where it has several
        # copies (a string join per group is the slowest part of this step)
        .join(rep.filter(pl.len().over("acta_id") > 1).group_by("acta_id").agg(
            pl.col("category").unique().sort().str.join(";").alias("categories")),
            on="acta_id", how="left")
        .with_columns(pl.coalesce("categories", "__category").alias("categories"))
        .drop("__category")
        .with_columns(pl.max_horizontal(pl.lit(0), -pl.col("min_change").fill_null(0))
                      .alias("toward_runner_up"),
                      pl.max_horizontal(pl.lit(0), pl.col("max_change").fill_null(0))
                      .alias("toward_leader"))
        .sort(["toward_runner_up", "toward_leader", "acta_id"], descending=[True, True, False]))

    rep = (rep.drop("__sig").with_columns(pl.col("net_change").abs().alias("__abs"))
           .sort(["alarm", "__abs", "acta_id", "copy_id"], descending=[True, True, False, False])
           .drop("__abs").with_row_index("rank", offset=1))

    scopes = scope_lines(rep)
    counts = dict(zip(*np.unique(cat.astype(str), return_counts=True), strict=True))
    toward_r = scopes["published"]["toward_runner_up"]
    toward_l = scopes["published"]["toward_leader"]
    net_major = int(actas["majority_change"].fill_null(0).sum())
    abs_margin = abs(margin)
    moved = toward_r if margin >= 0 else toward_l
    flip = moved > 0 and moved >= abs_margin
    n_alarm = int(rep["alarm"].sum())
    n_unchecked = int((j["copy_code"].is_not_null() & j["o_copy_code"].is_null()).sum())
    n_code_conflicts = int(actas["copy_code_conflict"].sum())
    es = (f"Todas las discrepancias plausibles en actas publicadas, juntas, podrían mover el "
          f"margen en {moved:,} votos de {abs_margin:,} ({leader} − {runner}); "
          + ("alcanzaría para cambiar el resultado si esas copias fueran las correctas."
             if flip else "no alcanza para cambiar el resultado.")
          + f" Si la copia mayoritaria de cada acta publicada fuera la correcta, el margen "
            f"cambiaría en {net_major:+,}. {n_alarm:,} de {n:,} copias tienen alertas.")
    en = (f"All plausible discrepancies on published actas together could move the margin "
          f"by {moved:,} votes of {abs_margin:,} ({leader} − {runner}); "
          + ("enough to change the result if those copies were right." if flip
             else "not enough to change the result.")
          + f" If each published acta's majority copy were right, the margin would change by "
            f"{net_major:+,}. {n_alarm:,} of {n:,} copies raise alarms.")
    notes_es, notes_en = _scope_notes(scopes, margin)
    if n_code_conflicts:
        notes_es.append(f"{n_code_conflicts:,} actas tienen copias con códigos de copia "
                        "distintos entre sí: alguna foto o transcripción es de otra acta.")
        notes_en.append(f"{n_code_conflicts:,} actas have copies with different copy codes: "
                        "some photo or transcript is of another acta.")
    if n_unchecked:
        notes_es.append(f"{n_unchecked:,} copias traen código de copia sin código oficial con "
                        "qué cotejarlo (se comparan solo entre sí); dé los códigos oficiales "
                        "para cotejarlos.")
        notes_en.append(f"{n_unchecked:,} copies carry a copy code with no official code to "
                        "check it against (compared only with each other); give the official "
                        "codes to check them.")
    summary = PvtSummary(
        contest_id=contest.id, leader=leader, runner_up=runner, margin=margin, n_copies=n,
        n_actas_with_copies=actas.height, n_official_actas=official.height,
        categories={str(k): int(v) for k, v in sorted(counts.items())},
        n_alarms=n_alarm, n_numeric=int(num.sum()),
        n_conflicting_actas=int(actas["conflicting_copies"].sum()),
        n_duplicates=int(rep["duplicate_copy"].sum()),
        n_image_reused=int(rep["image_reused"].sum()),
        toward_runner_up=toward_r, toward_leader=toward_l, net_if_copies_right=net_major,
        could_flip=bool(flip), statement_es=es, statement_en=en, scopes=scopes,
        n_copy_codes_unchecked=n_unchecked, n_copy_code_conflicts=n_code_conflicts,
        notes_es=tuple(notes_es), notes_en=tuple(notes_en),
    )
    prov = Provenance(tuple(snapshot_ids) + ((copies_sha256,) if copies_sha256 else ()),
                      "defence.pvt.reconcile",
                      {"leader": leader, "runner_up": runner,
                       "copy_codes": copy_codes is not None,
                       "copy_codes_source": copy_codes_source or None,
                       "headline_scope": "published", "tie_rule": TIE_RULE})
    return PvtResult(summary, rep, actas, prov,
                     rejected if rejected is not None else pl.DataFrame())


# --- against published totals per unit (or national) -------------------------------------

UNIT_LEVELS: Final = (Level.NATIONAL.value, Level.AREA1.value, Level.AREA2.value,
                      Level.AREA3.value)


@dataclass(frozen=True, slots=True)
class PvtUnitsSummary:
    contest_id: str
    level: str  # the authority's published level the copies were aggregated to
    leader: str
    runner_up: str
    margin: int  # official, from the published totals (national row when published)
    n_copies: int
    n_impossible: int  # copies whose own figures cannot be right: not aggregated
    n_actas_with_copies: int  # actas with at least one plausible copy
    n_unplaced_actas: int  # actas whose unit at ``level`` is unknown: not aggregated
    actas_counted: int  # official, over the units compared
    n_units: int
    n_units_with_copies: int
    n_units_full: int  # units whose every counted acta has a plausible copy
    n_units_unpublished: int  # units with copies and no published total
    gap_change_full: int  # Σ over full units of (copies' gap − official gap)
    n_units_excess: int  # units where the copies add to more than the official total
    excess: dict[str, int]  # per field: Σ max(0, copies − official) over units
    statement_es: str
    statement_en: str
    notes_es: tuple[str, ...] = ()
    notes_en: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PvtUnitsResult:
    """Observers' copies aggregated to the level the authority publishes. ``units`` has
    one row per unit (official totals, the copies' sums, coverage, excess and, where the
    copies cover every counted acta, the difference); ``copies`` one row per copy, ranked
    by how much of the gap rests on its acta (``|copy_net|``)."""

    summary: PvtUnitsSummary
    units: pl.DataFrame
    copies: pl.DataFrame
    provenance: Provenance
    rejected: pl.DataFrame = field(default_factory=pl.DataFrame)

    def alarms(self) -> pl.DataFrame:
        return self.copies.filter(pl.col("alarm"))

    def to_jsonable(self, limit: int | None = 100) -> dict[str, Any]:
        cp = self.copies if limit is None else self.copies.head(limit)
        return {
            "summary": to_jsonable(self.summary),
            "units": self.units.to_dicts(),
            "copies": cp.with_columns(
                pl.col("observed_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_dicts(),
            "n_copies_listed": cp.height,
            "rejected": self.rejected.to_dicts() if self.rejected.height else [],
            "provenance": to_jsonable(self.provenance),
        }


def _level_words(level: str, labels: Mapping[str, tuple[str, str]] | None
                 ) -> tuple[str, str]:
    if level == Level.NATIONAL.value:
        return "el total nacional", "the national total"
    es, en = (level_label(labels or {}, level, "es"), level_label(labels or {}, level, "en"))
    return f"los totales por {es}", f"the totals per {en}"


def reconcile_units(
    copies: pl.DataFrame, units: pl.DataFrame, contest: Contest, *,
    level: str | None = None, acta_areas: pl.DataFrame | None = None,
    pair: tuple[str, str] | None = None, snapshot_ids: Sequence[str] = (),
    copies_sha256: str = "", rejected: pl.DataFrame | None = None,
    level_labels: Mapping[str, tuple[str, str]] | None = None,
) -> PvtUnitsResult:
    """Compare observers' copies with totals the authority publishes per unit (or only
    nationally), when it publishes no per-acta figures.

    Each acta is represented by its majority plausible copy (the tie rule of
    :func:`majority_copies`); copies whose own figures cannot be right are counted apart.
    The copies are summed per unit of ``level`` — the unit of an acta comes from
    ``acta_areas`` (``acta_id`` and ``<level>_code``, e.g. an earlier per-acta snapshot or
    the roll); every acta belongs to the national unit. Per unit and field:

    * the copies cover every counted acta (as many actas with copies as the authority
      counts): the difference copies − official is a discrepancy if the copies are right,
      and the gap change is (copies' leader − runner-up) − (official leader − runner-up);
    * partial coverage: the copies of part of a unit can only reveal a discrepancy where
      they add up to more than the official total of the whole unit (``excess``: those
      votes are not in the official total — copies of actas not yet counted or annulled,
      wrong copies, or an altered count); less than the total says nothing.

    ``copies`` are ranked by ``|copy_net|`` (leader − runner-up on the copy): the part of
    the gap that rests on that acta if the copy is right — an acta recorded with the two
    swapped would move the gap by twice that. ``level_labels``: what the country calls
    its levels (``{"area1": ("departamento", "department")}``), for the sentences.
    """
    cand = contest.candidate_columns
    fields = [*FIELDS_BASE, *cand]
    have = [lv for lv in UNIT_LEVELS if lv in set(units["level"].to_list())]
    mappable = [lv for lv in have if lv == Level.NATIONAL.value or (
        acta_areas is not None and f"{lv}_code" in acta_areas.columns)]
    if level is None:
        if not mappable:
            raise EscrutinioError(
                "la autoridad publica solo totales por unidad y no hay forma de saber a qué "
                "unidad pertenece cada acta (hace falta una instantánea por acta o un padrón "
                "con las áreas)",
                "the authority publishes only unit totals and nothing says which unit each "
                "acta belongs to (a per-acta snapshot or a roll with areas is needed)")
        level = mappable[0]
    if level not in mappable:
        raise BadOptionError("--level", level, f"niveles comparables: {', '.join(mappable)}",
                             f"comparable levels: {', '.join(mappable)}")
    off = units.filter(pl.col("level") == level)
    top = units.filter(pl.col("level") == Level.NATIONAL.value)
    ref = top if top.height else off
    totals = {c.code: int(ref[c.column].fill_null(0).sum()) for c in contest.candidates}
    leader, runner, margin = _pair_of(totals, pair)
    col_a, col_b = f"v_{leader}", f"v_{runner}"

    c = copies
    if acta_areas is not None and acta_areas.height:
        c = c.with_columns(normalise_ids(c["acta_id"], acta_areas["acta_id"].cast(pl.String)))
    else:
        c = c.with_columns(pl.col("acta_id").str.strip_chars())
    cm = _matrix(c, fields)
    k_base = len(FIELDS_BASE)
    parts = np.concatenate([cm[:, 2:4], np.maximum(cm[:, 4:5], 0), cm[:, k_base:]], axis=1)
    has = (cm[:, 1] >= 0) & (cm[:, 2] >= 0) & (cm[:, 3] >= 0) & (cm[:, k_base:] >= 0).all(1)
    sum_bad = has & (np.where(parts < 0, 0, parts).sum(axis=1) != cm[:, 1])
    over = (cm[:, 0] >= 0) & (cm[:, 1] > cm[:, 0])
    impossible = sum_bad | over
    ia, ib = fields.index(col_a), fields.index(col_b)
    copy_net = np.where((cm[:, ia] >= 0) & (cm[:, ib] >= 0), cm[:, ia] - cm[:, ib], 0)
    rep = c.with_columns(
        pl.Series("impossible", impossible), pl.Series("copy_sum_mismatch", sum_bad),
        pl.Series("copy_above_electors", over), pl.Series("copy_net", copy_net),
    )
    rep = rep.with_columns(canonical_content(fields, prefix="").alias("__sig"))
    if level == Level.NATIONAL.value:
        rep = rep.with_columns(pl.lit("").alias("unit_code"))
    else:
        assert acta_areas is not None
        areas = acta_areas.select(pl.col("acta_id").cast(pl.String),
                                  pl.col(f"{level}_code").cast(pl.String).alias("unit_code")
                                  ).unique("acta_id", keep="first")
        rep = rep.join(areas, on="acta_id", how="left", maintain_order="left")
    plaus = rep.filter(~pl.col("impossible"))
    maj = majority_copies(plaus.select("acta_id", "__sig", "observed_at", "copy_id",
                                       "unit_code", *fields))
    chosen = set(maj["copy_id"].to_list())
    unplaced = maj.filter(pl.col("unit_code").is_null())
    agg = (maj.filter(pl.col("unit_code").is_not_null()).group_by("unit_code")
           .agg(pl.len().alias("copies_actas"),
                *[pl.col(f).fill_null(0).sum().alias(f"copies_{f}") for f in fields]))
    o_cols = ["electors", "cast", "blank", "null", "challenged", *cand]
    joined = (off.select("unit_code", "actas_total", "actas_counted",
                         *[pl.col(f).alias(f"official_{f}") for f in o_cols])
              .with_columns(pl.lit(True).alias("published"))
              .join(agg, on="unit_code", how="full", coalesce=True)
              .with_columns(pl.col("published").fill_null(False),
                            pl.col("copies_actas").fill_null(0))
              .with_columns([pl.col(f"copies_{f}").fill_null(0) for f in fields]))
    cmp_fields = ["cast", "blank", "null", *cand]
    # every counted acta has a copy (as many actas as counted: more would include actas
    # the official total does not, and the difference would not be a discrepancy)
    full = (pl.col("published") & (pl.col("actas_counted") > 0)
            & (pl.col("copies_actas") == pl.col("actas_counted")))
    joined = joined.with_columns(
        full.alias("full_coverage"),
        *[pl.when(pl.col("published")).then(pl.max_horizontal(
            pl.lit(0), pl.col(f"copies_{f}") - pl.col(f"official_{f}").fill_null(0)))
          .alias(f"excess_{f}") for f in cmp_fields],
        *[pl.when(full).then(pl.col(f"copies_{f}") - pl.col(f"official_{f}"))
          .alias(f"diff_{f}") for f in cmp_fields],
        pl.when(full).then((pl.col(f"copies_{col_a}") - pl.col(f"copies_{col_b}"))
                           - (pl.col(f"official_{col_a}") - pl.col(f"official_{col_b}")))
        .alias("gap_change"),
    ).with_columns(
        (pl.sum_horizontal([pl.col(f"excess_{f}").fill_null(0) for f in cmp_fields]) > 0)
        .alias("has_excess"),
        # strict JSON: no NaN or Infinity where the authority counted nothing yet
        pl.when(pl.col("actas_counted") > 0)
        .then(100.0 * pl.col("copies_actas") / pl.col("actas_counted")).alias("pct_covered"),
    ).sort(["has_excess", "unit_code"], descending=[True, False], nulls_last=True)

    excess_units = set(joined.filter(pl.col("has_excess"))["unit_code"].to_list())
    full_diff_units = set(joined.filter(
        pl.col("full_coverage") & pl.any_horizontal(
            [pl.col(f"diff_{f}") != 0 for f in cmp_fields]))["unit_code"].to_list())
    rep = rep.drop("__sig").with_columns(
        pl.col("copy_id").is_in(list(chosen)).alias("majority"),
        pl.when(pl.col("impossible")).then(pl.lit("impossible"))
        .when(pl.col("unit_code").is_null()).then(pl.lit("unplaced"))
        .otherwise(pl.lit("plausible")).alias("scope"),
        pl.col("copy_net").abs().alias("could_move"),
    ).with_columns(
        (pl.col("impossible")
         | pl.col("unit_code").is_in(list(excess_units | full_diff_units))).alias("alarm"),
    ).sort(["impossible", "could_move", "acta_id", "copy_id"],
           descending=[False, True, False, False]).with_row_index("rank", offset=1)

    n_units = off.height
    n_with = int((joined["copies_actas"] > 0).sum())
    n_full = int(joined["full_coverage"].sum())
    n_unpub = int((~joined["published"]).sum())
    gap_full = int(joined["gap_change"].fill_null(0).sum())
    excess = {f: int(joined[f"excess_{f}"].fill_null(0).sum()) for f in cmp_fields}
    n_excess = len(excess_units)
    counted = int(off["actas_counted"].fill_null(0).sum())
    n_actas = maj.height
    where_es, where_en = _level_words(level, level_labels)
    pct = 100.0 * n_actas / counted if counted else 0.0
    es = (f"La autoridad no publica cifras por acta: las copias de {n_actas:,} actas "
          f"({pct:.1f}% de {counted:,} contabilizadas) se comparan con {where_es}. ")
    en = (f"The authority publishes no per-acta figures: the copies of {n_actas:,} actas "
          f"({pct:.1f}% of {counted:,} counted) are compared with {where_en}. ")
    if n_full:
        es += (f"En {n_full:,} de {n_units:,} unidades las copias cubren todas las actas "
               f"contabilizadas: si fueran correctas, el margen ({leader} − {runner}) "
               f"cambiaría en {gap_full:+,} votos de {abs(margin):,}. ")
        en += (f"In {n_full:,} of {n_units:,} units the copies cover every counted acta: if "
               f"they were right, the margin ({leader} − {runner}) would change by "
               f"{gap_full:+,} votes of {abs(margin):,}. ")
    if n_excess:
        worst = ", ".join(f"{f.removeprefix('v_')} +{v:,}" for f, v in sorted(excess.items(),
                                                             key=lambda kv: -kv[1]) if v)
        es += (f"En {n_excess:,} unidades las copias suman más votos que el total oficial de "
               f"toda la unidad ({worst}): esos votos no están en el total oficial — copias de "
               "actas aún no contadas o anuladas, copias erradas o un conteo alterado; solo "
               "las actas pueden decirlo.")
        en += (f"In {n_excess:,} units the copies add up to more votes than the official "
               f"total of the whole unit ({worst}): those votes are not in the official "
               "total — copies of actas not yet counted or annulled, wrong copies, or an "
               "altered count; only the actas can tell.")
    else:
        es += ("En ninguna unidad las copias suman más que el total oficial: a este nivel no "
               "revelan discrepancias, lo que no prueba que no las haya.")
        en += ("In no unit do the copies add up to more than the official total: at this "
               "level they reveal no discrepancy, which does not prove there is none.")
    n_imp = int(rep["impossible"].sum())
    notes_es: list[str] = []
    notes_en: list[str] = []
    if n_imp:
        notes_es.append(f"Aparte, {n_imp:,} copias imposibles (no suman o tienen más votos "
                        "que electores): no se suman.")
        notes_en.append(f"Separately, {n_imp:,} impossible copies (do not add up or exceed "
                        "the electors): not added.")
    if unplaced.height:
        notes_es.append(f"{unplaced.height:,} actas con copia no se pudieron ubicar en una "
                        "unidad: no se suman.")
        notes_en.append(f"{unplaced.height:,} actas with copies could not be placed in a "
                        "unit: not added.")
    n_more = int((joined["published"]
                  & (joined["copies_actas"] > joined["actas_counted"].fill_null(0))).sum())
    if n_more:
        notes_es.append(f"En {n_more:,} unidades hay copias de más actas que las contabilizadas "
                        "por la autoridad: incluyen actas que el total oficial aún no tiene.")
        notes_en.append(f"In {n_more:,} units there are copies of more actas than the "
                        "authority has counted: they include actas the official total does "
                        "not have yet.")
    if n_unpub:
        notes_es.append(f"{n_unpub:,} unidades con copias no tienen total publicado.")
        notes_en.append(f"{n_unpub:,} units with copies have no published total.")
    summary = PvtUnitsSummary(
        contest_id=contest.id, level=level, leader=leader, runner_up=runner, margin=margin,
        n_copies=rep.height, n_impossible=n_imp, n_actas_with_copies=n_actas,
        n_unplaced_actas=unplaced.height, actas_counted=counted, n_units=n_units,
        n_units_with_copies=n_with, n_units_full=n_full, n_units_unpublished=n_unpub,
        gap_change_full=gap_full, n_units_excess=n_excess, excess=excess,
        statement_es=es.strip(), statement_en=en.strip(),
        notes_es=tuple(notes_es), notes_en=tuple(notes_en))
    prov = Provenance(tuple(snapshot_ids) + ((copies_sha256,) if copies_sha256 else ()),
                      "defence.pvt.reconcile_units",
                      {"level": level, "leader": leader, "runner_up": runner,
                       "acta_areas": acta_areas is not None, "tie_rule": TIE_RULE})
    return PvtUnitsResult(summary, joined, rep, prov,
                          rejected if rejected is not None else pl.DataFrame())
