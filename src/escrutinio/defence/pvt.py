"""Parallel vote tabulation: observers' copies against the official actas (METHODS.md §3).

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
annulled). Per acta, the changes of its copies give a range; summed over actas, the
parts that favour the runner-up give "all discrepancies together could move the margin
by X of Y" (Y = current margin among counted actas).

Vectorised: one join and whole-column numpy; no Python loop over copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import numpy as np
import polars as pl

from escrutinio.domain import ActaStatus, Contest
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
    "copy_sum_mismatch": ("la copia no suma", "copy does not add up"),
    "copy_above_electors": ("copia con más votos que electores",
                            "copy with more votes than electors"),
    "official_sum_mismatch": ("el acta oficial no suma", "official acta does not add up"),
    "official_above_electors": ("acta oficial con más votos que electores",
                                "official acta with more votes than electors"),
}

FIELDS_BASE: Final = ("electors", "cast", "blank", "null", "challenged")


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
    if pair is None:
        order = sorted(totals, key=lambda k: (-totals[k], k))
        if len(order) < 2:
            raise ValueError("a margin needs at least two candidates")
        pair = (order[0], order[1])
    a, b = pair
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
    toward_runner_up: int  # the most the margin could shrink if the copies were right
    toward_leader: int  # the most it could grow
    net_if_copies_right: int  # sum over actas of the majority copy's change
    could_flip: bool
    statement_es: str
    statement_en: str


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


def reconcile(
    copies: pl.DataFrame, official: pl.DataFrame, contest: Contest, *,
    copy_codes: pl.DataFrame | None = None, pair: tuple[str, str] | None = None,
    snapshot_ids: Sequence[str] = (), copies_sha256: str = "",
    rejected: pl.DataFrame | None = None, roll: pl.Series | None = None,
) -> PvtResult:
    """Match, compare, classify and rank observers' copies against an official acta frame.

    ``copies``: canonical copy frame (:func:`escrutinio.defence.observers.copy_columns`).
    ``official``: canonical acta frame (every acta of the roll; pending ones without
    figures). ``copy_codes``: optional frame ``acta_id, copy_code`` of official copy codes.
    ``roll``: optional list of every acta id that exists, when the official frame holds
    only the published actas: a copy of an acta on the roll but not in ``official`` is
    then ``official_missing`` rather than ``unknown_mesa``.
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

    # across copies: duplicates, conflicts, reused photos
    sig = pl.concat_str([pl.col(f"copy_{f}").cast(pl.String).fill_null("·") for f in fields],
                        separator="|")
    rep = rep.with_columns(sig.alias("__sig")).with_columns(
        pl.len().over("acta_id").alias("acta_copies"),
        pl.col("observer_id").n_unique().over("acta_id").alias("acta_observers"),
        (pl.col("__sig").n_unique().over("acta_id") > 1).alias("conflicting_copies"),
        (pl.int_range(pl.len()).over(["acta_id", "__sig"], order_by=["observed_at", "line"])
         > 0).alias("duplicate_copy"),
        (pl.col("image_sha256").is_not_null()
         & (pl.col("acta_id").n_unique().over("image_sha256") > 1)).alias("image_reused"),
    )
    rep = rep.with_columns(
        ((pl.col("category") != Category.EXACT.value) | pl.col("conflicting_copies")
         | pl.col("image_reused")).alias("alarm"),
        (100.0 * pl.col("net_change") / margin if margin else pl.lit(None, pl.Float64)
         ).alias("pct_of_margin"),
        pl.concat_str([
            pl.when(pl.col("category") != "exact").then(pl.col("category")),
            *[pl.when(pl.col(f)).then(pl.lit(f)) for f in
              ("conflicting_copies", "duplicate_copy", "image_reused", "copy_sum_mismatch",
               "copy_above_electors", "official_sum_mismatch", "official_above_electors")],
        ], separator=";", ignore_nulls=True).alias("flags"),
    )

    # per acta: the range of margin changes its copies imply, and the majority copy's
    comp = rep.filter(pl.col("comparable"))
    # the most repeated figures; among equally repeated ones, the smallest change
    majority = (comp.group_by("acta_id", "__sig").agg(pl.len().alias("n"),
                                                       pl.col("net_change").first())
                .with_columns(pl.col("net_change").abs().alias("__abs"))
                .sort(["acta_id", "n", "__abs"], descending=[False, True, False])
                .unique("acta_id", keep="first")
                .select("acta_id", pl.col("net_change").alias("majority_change")))
    actas = (rep.group_by("acta_id").agg(
        pl.len().alias("n_copies"), pl.col("observer_id").n_unique().alias("n_observers"),
        pl.col("official_status").first(),
        pl.col("category").unique().sort().str.join(";").alias("categories"),
        pl.col("alarm").any(), pl.col("conflicting_copies").any(),
        pl.col("net_change").filter(pl.col("comparable")).min().alias("min_change"),
        pl.col("net_change").filter(pl.col("comparable")).max().alias("max_change"),
    ).join(majority, on="acta_id", how="left")
        .with_columns(pl.max_horizontal(pl.lit(0), -pl.col("min_change").fill_null(0))
                      .alias("toward_runner_up"),
                      pl.max_horizontal(pl.lit(0), pl.col("max_change").fill_null(0))
                      .alias("toward_leader"))
        .sort(["toward_runner_up", "toward_leader", "acta_id"], descending=[True, True, False]))

    rep = (rep.drop("__sig").with_columns(pl.col("net_change").abs().alias("__abs"))
           .sort(["alarm", "__abs", "acta_id", "copy_id"], descending=[True, True, False, False])
           .drop("__abs").with_row_index("rank", offset=1))

    counts = dict(zip(*np.unique(cat.astype(str), return_counts=True), strict=True))
    toward_r = int(actas["toward_runner_up"].sum())
    toward_l = int(actas["toward_leader"].sum())
    net_major = int(actas["majority_change"].fill_null(0).sum())
    abs_margin = abs(margin)
    moved = toward_r if margin >= 0 else toward_l
    flip = moved > 0 and moved >= abs_margin
    n_alarm = int(rep["alarm"].sum())
    es = (f"Todas las discrepancias juntas podrían mover el margen en {moved:,} votos de "
          f"{abs_margin:,} ({leader} − {runner}); "
          + ("alcanzaría para cambiar el resultado." if flip
             else "no alcanza para cambiar el resultado.")
          + f" Si la copia mayoritaria de cada acta fuera la correcta, el margen cambiaría "
            f"en {net_major:+,}. {n_alarm:,} de {n:,} copias tienen alertas.")
    en = (f"All discrepancies together could move the margin by {moved:,} votes of "
          f"{abs_margin:,} ({leader} − {runner}); "
          + ("enough to change the result." if flip else "not enough to change the result.")
          + f" If each acta's majority copy were right, the margin would change by "
            f"{net_major:+,}. {n_alarm:,} of {n:,} copies raise alarms.")
    summary = PvtSummary(
        contest_id=contest.id, leader=leader, runner_up=runner, margin=margin, n_copies=n,
        n_actas_with_copies=actas.height, n_official_actas=official.height,
        categories={str(k): int(v) for k, v in sorted(counts.items())},
        n_alarms=n_alarm, n_numeric=int(num.sum()),
        n_conflicting_actas=int(actas["conflicting_copies"].sum()),
        n_duplicates=int(rep["duplicate_copy"].sum()),
        n_image_reused=int(rep["image_reused"].sum()),
        toward_runner_up=toward_r, toward_leader=toward_l, net_if_copies_right=net_major,
        could_flip=bool(flip), statement_es=es, statement_en=en,
    )
    prov = Provenance(tuple(snapshot_ids) + ((copies_sha256,) if copies_sha256 else ()),
                      "defence.pvt.reconcile",
                      {"leader": leader, "runner_up": runner,
                       "copy_codes": copy_codes is not None})
    return PvtResult(summary, rep, actas, prov,
                     rejected if rejected is not None else pl.DataFrame())
