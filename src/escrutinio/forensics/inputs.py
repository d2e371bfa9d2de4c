"""Columns the forensic tests work on, taken once from a canonical acta frame.

Only **counted** actas with complete figures enter the tests (annulled actas carry no
candidate votes; pending and JEE-bound actas have provisional or missing figures). What
was left out, and why, is kept in ``filters`` and printed in the report's footer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import polars as pl

from escrutinio.domain import ActaStatus, Contest


@dataclass(frozen=True)
class ForensicInput:
    """Per-acta arrays (one entry per acta kept), numpy, aligned."""

    contest: Contest
    acta_id: np.ndarray  # str
    electors: np.ndarray | None  # int64, None when the source has no electors
    cast: np.ndarray  # int64
    valid: np.ndarray  # int64 (sum of candidate votes)
    votes: np.ndarray  # int64 (N, K), candidate votes in contest order
    blank: np.ndarray
    null: np.ndarray
    abroad: np.ndarray  # bool
    area1: np.ndarray  # str
    area2: np.ndarray  # str
    area3: np.ndarray  # str
    place: np.ndarray  # str: area3 + polling place ("" when unknown)
    resolved: np.ndarray  # bool: went through the JEE
    region_idx: np.ndarray  # int: index into region_codes (area1)
    region_codes: np.ndarray  # str
    cluster_idx: np.ndarray  # int: area2 (province / country), for cluster-robust tests
    district_idx: np.ndarray  # int: area3
    place_idx: np.ndarray  # int: polling place within area3 (-1 when unknown)
    filters: dict[str, int] = field(default_factory=dict)
    data_hash: str = ""

    @property
    def n(self) -> int:
        return len(self.cast)

    @property
    def codes(self) -> list[str]:
        return [c.code for c in self.contest.candidates]

    @property
    def has_turnout(self) -> bool:
        return self.electors is not None


def _hash_frame(df: pl.DataFrame, cols: list[str]) -> str:
    """SHA-256 of the figures the tests read (sorted by acta), so that a report names
    exactly the numbers it was computed from."""
    h = hashlib.sha256()
    sorted_df = df.select(cols).sort("acta_id")
    h.update("\n".join(sorted_df["acta_id"].to_list()).encode())
    for c in cols[1:]:
        h.update(c.encode())
        h.update(sorted_df[c].fill_null(-1).to_numpy().astype("<i8").tobytes())
    return h.hexdigest()


def _dense(s: pl.Series) -> np.ndarray:
    return (s.rank("dense").cast(pl.Int64) - 1).to_numpy()


def prepare(frame: pl.DataFrame, contest: Contest) -> ForensicInput:
    """Keep counted actas with complete figures; record what was dropped and why."""
    cand_cols = contest.candidate_columns
    n_in = frame.height
    status = pl.col("status")
    counted = frame.filter(status == ActaStatus.COUNTED.value)
    filters: dict[str, int] = {"actas_in_snapshot": n_in}
    for st in ActaStatus:
        if st is ActaStatus.COUNTED:
            continue
        k = int(frame.filter(status == st.value).height)
        if k:
            filters[f"excluded_status_{st.value}"] = k
    complete = pl.all_horizontal(pl.col(c).is_not_null() for c in ["cast", *cand_cols])
    missing = counted.filter(~complete).height
    if missing:
        filters["excluded_missing_figures"] = missing
    df = counted.filter(complete)
    has_electors = bool(df.height) and df["electors"].null_count() == 0 and int(
        cast("int | None", df["electors"].max()) or 0) > 0
    if has_electors:
        bad = df.filter(pl.col("electors") <= 0).height
        if bad:
            filters["excluded_no_electors"] = bad
        df = df.filter(pl.col("electors") > 0)
    no_votes = df.filter(pl.sum_horizontal(cand_cols) <= 0).height
    if no_votes:
        filters["excluded_no_valid_votes"] = no_votes
    df = df.filter(pl.sum_horizontal(cand_cols) > 0)
    filters["actas_analysed"] = df.height
    votes = df.select(cand_cols).to_numpy().astype(np.int64)
    area1 = df["area1_code"].fill_null("?")
    area2 = df["area2_code"].fill_null(area1)
    area3 = df["area3_code"].fill_null("?")
    place_s = area3 + "|" + df["polling_place"].fill_null("")
    has_place = df["polling_place"].null_count() < df.height
    place_idx = _dense(place_s) if has_place else np.full(df.height, -1, dtype=np.int64)
    if has_place:  # an acta without a place name has no place (not "the empty place")
        no_name = (df["polling_place"].fill_null("").str.strip_chars() == "").to_numpy()
        place_idx = np.where(no_name, -1, place_idx)
    region_idx = _dense(area1)
    region_codes = np.asarray(area1.unique().sort().to_list(), dtype=object)
    hash_cols = ["acta_id", "cast", *cand_cols] + (["electors"] if has_electors else [])
    return ForensicInput(
        contest=contest,
        acta_id=df["acta_id"].to_numpy(),
        electors=df["electors"].to_numpy().astype(np.int64) if has_electors else None,
        cast=df["cast"].to_numpy().astype(np.int64),
        valid=votes.sum(axis=1),
        votes=votes,
        blank=df["blank"].fill_null(0).to_numpy().astype(np.int64),
        null=df["null"].fill_null(0).to_numpy().astype(np.int64),
        abroad=df["abroad"].fill_null(False).to_numpy().astype(bool),
        area1=area1.to_numpy(),
        area2=area2.to_numpy(),
        area3=area3.to_numpy(),
        place=df["polling_place"].fill_null("").to_numpy(),
        resolved=df["resolved"].fill_null(False).to_numpy().astype(bool),
        region_idx=region_idx,
        region_codes=region_codes,
        cluster_idx=_dense(area2),
        district_idx=_dense(area3),
        place_idx=place_idx,
        filters=filters,
        data_hash=_hash_frame(df, hash_cols),
    )

