"""Verify the actas of a snapshot: arithmetic problems and changed counted actas, ranked
by how much of the margin they hold (docs/methods.md §3, "acta arithmetic").

Three sources of items, all already computed elsewhere and only gathered here:

* rows **rejected** on ingest (``verify.checks``: sums that do not add up, votes above
  electors, negative or missing figures, conflicting duplicates) — their votes are not in
  the totals; ``net`` is what they would add to the margin as written;
* rows **flagged** on ingest (uncounted actas whose arithmetic fails: typically the
  *error material* actas bound for the JEE) — ``net`` is their provisional net;
* counted actas whose figures **changed** since a previous snapshot (an alarm: a counted
  acta should never change) — ``net_change`` is how much that change moved the margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from escrutinio.defence.pvt import pick_pair
from escrutinio.domain import ActaStatus, Contest
from escrutinio.provenance import Provenance, to_jsonable

ITEM_SCHEMA = {
    "acta_id": pl.String(), "kind": pl.String(), "rule": pl.String(), "field": pl.String(),
    "line": pl.Int64(), "status": pl.String(), "net": pl.Int64(), "net_change": pl.Int64(),
    "message_es": pl.String(), "message_en": pl.String(),
}


@dataclass(frozen=True, slots=True)
class ActaVerification:
    contest_id: str
    leader: str
    runner_up: str
    margin: int
    n_actas: int
    n_rejected: int
    n_flagged: int
    n_changed: int
    rules: dict[str, int]
    votes_at_stake: int  # Σ |net| over the actas listed (each acta once)
    toward_runner_up: int  # the most these actas could shrink the margin
    statement_es: str
    statement_en: str
    provenance: Provenance
    items: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ITEM_SCHEMA))

    def to_jsonable(self, limit: int | None = 200) -> dict[str, Any]:
        out: dict[str, Any] = {f: to_jsonable(getattr(self, f))
                               for f in self.__dataclass_fields__ if f != "items"}
        out["items"] = (self.items if limit is None else self.items.head(limit)).to_dicts()
        return out


def verify_actas(frame: pl.DataFrame, contest: Contest, reports: pl.DataFrame, *,
                 previous: pl.DataFrame | None = None, pair: tuple[str, str] | None = None,
                 snapshot_ids: Sequence[str] = ()) -> ActaVerification:
    """``frame``: canonical acta frame; ``reports``: the snapshot's row reports
    (``severity`` + REJECTED_SCHEMA, as ``Store.load_row_reports`` returns them);
    ``previous``: an earlier acta frame of the same contest."""
    leader, runner, margin = pick_pair(frame, contest, pair)
    a, b = f"v_{leader}", f"v_{runner}"
    parts: list[pl.DataFrame] = []
    if reports.height:
        dtype = pl.Struct({a: pl.Int64, b: pl.Int64, "status": pl.String})
        r = reports.with_columns(pl.col("raw").str.json_decode(dtype).alias("__raw"))
        parts.append(r.select(
            pl.col("acta_id"),
            pl.when(pl.col("severity") == "reject").then(pl.lit("rejected"))
            .otherwise(pl.lit("flagged")).alias("kind"),
            "rule", "field", pl.col("line").cast(pl.Int64),
            pl.col("__raw").struct.field("status").alias("status"),
            (pl.col("__raw").struct.field(a) - pl.col("__raw").struct.field(b)).alias("net"),
            pl.lit(None, dtype=pl.Int64).alias("net_change"), "message_es", "message_en",
        ))
    if previous is not None:
        counted = ActaStatus.COUNTED.value
        figs = ["electors", "cast", "blank", "null", "challenged", *contest.candidate_columns]
        old = previous.filter(pl.col("status") == counted).select(
            "acta_id", *[pl.col(c).alias(f"o_{c}") for c in figs])
        new = frame.filter(pl.col("status") == counted)
        j = new.join(old, on="acta_id")
        changed = pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"o_{c}")) for c in figs])
        ch = j.filter(changed)
        if ch.height:
            parts.append(ch.select(
                "acta_id", pl.lit("changed").alias("kind"),
                pl.lit("counted_acta_changed").alias("rule"),
                pl.concat_str([pl.when(pl.col(c).ne_missing(pl.col(f"o_{c}"))).then(pl.lit(c))
                               for c in figs], separator=";", ignore_nulls=True).alias("field"),
                pl.lit(None, dtype=pl.Int64).alias("line"), "status",
                (pl.col(a) - pl.col(b)).alias("net"),
                ((pl.col(a) - pl.col(b)) - (pl.col(f"o_{a}") - pl.col(f"o_{b}")))
                .alias("net_change"),
                pl.lit("acta contabilizada cuyas cifras cambiaron entre instantáneas")
                .alias("message_es"),
                pl.lit("counted acta whose figures changed between snapshots")
                .alias("message_en"),
            ))
    # polars types cast() with an invariant key union, so a dict[str, DataType] is refused
    # although it is accepted at run time (pola-rs/polars#14468)
    items = (pl.concat([p.cast(ITEM_SCHEMA) for p in parts])  # type: ignore[arg-type]
             if parts
             else pl.DataFrame(schema=ITEM_SCHEMA))
    items = items.with_columns(
        pl.coalesce(pl.col("net_change"), pl.col("net")).fill_null(0).abs().alias("__m")
    ).sort(["__m", "acta_id"], descending=[True, False]).drop("__m")
    per_acta = items.group_by("acta_id").agg(
        pl.coalesce(pl.col("net_change"), pl.col("net")).fill_null(0).abs().max().alias("m"),
        pl.coalesce(pl.col("net_change"), pl.col("net")).fill_null(0).max().alias("mx"),
        pl.coalesce(pl.col("net_change"), pl.col("net")).fill_null(0).min().alias("mn"))
    stake = int(per_acta["m"].sum()) if per_acta.height else 0
    # counting them as written helps the runner-up where their net is negative
    toward = int(((-per_acta["mn"]).clip(lower_bound=0).sum() if margin >= 0
                  else per_acta["mx"].clip(lower_bound=0).sum()) if per_acta.height else 0)
    kinds = dict(items.group_by("kind").len().iter_rows()) if items.height else {}
    rules = dict(sorted(items.group_by("rule").len().iter_rows())) if items.height else {}
    n_act = per_acta.height
    es = (f"{n_act:,} actas con problemas ({kinds.get('rejected', 0):,} rechazadas, "
          f"{kinds.get('flagged', 0):,} con alerta, {kinds.get('changed', 0):,} contabilizadas "
          f"que cambiaron). Tienen {stake:,} votos netos en juego frente a un margen de "
          f"{abs(margin):,} ({leader} − {runner}).")
    en = (f"{n_act:,} actas with problems ({kinds.get('rejected', 0):,} rejected, "
          f"{kinds.get('flagged', 0):,} flagged, {kinds.get('changed', 0):,} counted actas "
          f"that changed). They hold {stake:,} net votes against a margin of {abs(margin):,} "
          f"({leader} − {runner}).")
    return ActaVerification(
        contest.id, leader, runner, margin, frame.height, int(kinds.get("rejected", 0)),
        int(kinds.get("flagged", 0)), int(kinds.get("changed", 0)),
        {str(k): int(v) for k, v in rules.items()}, stake, toward, es, en,
        Provenance(tuple(snapshot_ids), "defence.verify.verify_actas",
                   {"pair": [leader, runner], "previous": previous is not None}), items)
