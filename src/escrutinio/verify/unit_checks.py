"""Integrity rules for unit snapshots (one row per reporting unit), applied on ingest.

Same contract as :mod:`escrutinio.verify.checks` for actas: a ``reject`` rule removes the
row and keeps it, with the rule, in the snapshot's rejected rows; a ``flag`` rule keeps the
row and records a finding. Every rule is a vectorised polars expression.

Why "candidates + blank + null (+ challenged) = cast" is *not* a rejecting rule here:
an aggregate mixes actas in different states. Annulled actas keep their ballots in the
votes cast while no candidate receives them; challenged ballots can be settled after the
unit total was published; and authorities often publish votes cast and votes per
candidate from different tables, refreshed at different moments. A unit whose candidate,
blank and null votes are *fewer* than its votes cast is therefore normal. The opposite
(more votes distributed than ballots cast) cannot be explained that way and is flagged.
"""

from __future__ import annotations

import polars as pl

from escrutinio.domain import REJECTED_SCHEMA, VOTE_TYPE, Contest, Level
from escrutinio.verify.checks import Rule, ValidationResult

#: acta-status counters of a unit, in the order they are reported
ACTA_COUNTERS = ("actas_total", "actas_counted", "actas_processed", "actas_jee",
                 "actas_pending", "actas_annulled", "actas_not_installed")

UNIT_RULES: dict[str, Rule] = {
    r.name: r
    for r in [
        Rule("unknown_level", "reject", "level",
             "nivel desconocido (use national, area1, area2 o area3)",
             "unknown level (use national, area1, area2 or area3)"),
        Rule("missing_unit_code", "reject", "unit_code",
             "unidad sin código (solo el nivel nacional puede ir sin código)",
             "unit without a code (only the national level may have none)"),
        Rule("negative_count", "reject", "*", "conteo negativo", "negative count"),
        Rule("counted_exceeds_total", "reject", "actas_counted",
             "más actas contabilizadas que actas en total",
             "more counted actas than actas in total"),
        Rule("counted_exceeds_processed", "reject", "actas_counted",
             "más actas contabilizadas que procesadas",
             "more counted actas than processed actas"),
        Rule("processed_exceeds_total", "reject", "actas_processed",
             "más actas procesadas que actas en total",
             "more processed actas than actas in total"),
        Rule("vote_type_mixed", "reject", "vote_type",
             "unidad dada con y sin tipo de voto: la fila sin tipo puede ser el total (se "
             "rechazan todas sus filas)",
             "unit given both with and without a vote type: the row without one may be the "
             "total (every row of the unit rejected)"),
        Rule("duplicate_unit", "reject", "unit_code",
             "unidad repetida con cifras distintas (se rechazan todas las copias)",
             "duplicated unit with different figures (every copy rejected)"),
        Rule("duplicate_unit_identical", "reject", "unit_code",
             "unidad repetida con las mismas cifras (se conserva la primera)",
             "duplicated unit with identical figures (the first is kept)"),
        Rule("votes_exceed_cast", "flag", "cast",
             "candidatos + blancos + nulos + impugnados suman más que los votos emitidos",
             "candidates + blank + null + challenged add up to more than the votes cast"),
        Rule("cast_exceeds_electors", "flag", "cast",
             "más votos emitidos que electores hábiles de las actas contabilizadas",
             "more votes cast than electors of the counted actas"),
    ]
}


def unit_key(typed: bool = False) -> pl.Expr:
    """The identifier reported in the ``acta_id`` column of rejected unit rows:
    ``level/unit_code``, plus ``|vote_type`` for a row of a vote type."""
    key = pl.col("level").fill_null("?") + pl.lit("/") + pl.col("unit_code").fill_null("")
    if typed:
        key = pl.when(pl.col(VOTE_TYPE).is_null()).then(key).otherwise(
            key + pl.lit("|") + pl.col(VOTE_TYPE))
    return key.alias("acta_id")


def _report(df: pl.DataFrame, mask: pl.Expr, rule: Rule, field: str | None = None
            ) -> pl.DataFrame:
    hit = df.filter(mask)
    if hit.height == 0:
        return pl.DataFrame(schema=REJECTED_SCHEMA)
    raw_cols = [c for c in hit.columns if not c.startswith("__")]
    return hit.select(
        pl.col("__line").cast(pl.Int64).alias("line"),
        unit_key(VOTE_TYPE in hit.columns),
        pl.lit(field or rule.field).alias("field"),
        pl.lit(rule.name).alias("rule"),
        pl.lit(rule.message_es).alias("message_es"),
        pl.lit(rule.message_en).alias("message_en"),
        pl.struct(raw_cols).struct.json_encode().alias("raw"),
    )


def validate_units(df: pl.DataFrame, contest: Contest) -> ValidationResult:
    """Apply every unit rule to a canonical unit frame carrying ``__line``."""
    if "__line" not in df.columns:
        df = df.with_row_index("__line", offset=1).with_columns(pl.col("__line").cast(pl.Int64))
    cand = contest.candidate_columns
    counts = [*ACTA_COUNTERS, "electors", "electors_total", "cast", "blank", "null",
              "challenged", *cand]
    rejects: list[pl.DataFrame] = []
    flags: list[pl.DataFrame] = []

    def reject(mask: pl.Expr, rule: str, field: str | None = None) -> None:
        rep = _report(df, mask, UNIT_RULES[rule], field)
        if rep.height:
            rejects.append(rep)

    levels = [lv.value for lv in Level]
    reject(~pl.col("level").is_in(levels) | pl.col("level").is_null(), "unknown_level")
    reject((pl.col("level") != Level.NATIONAL.value)
           & (pl.col("unit_code").is_null() | (pl.col("unit_code").str.strip_chars() == "")),
           "missing_unit_code")
    for c in counts:
        reject(pl.col(c).is_not_null() & (pl.col(c) < 0), "negative_count", c)
    total, counted, processed = (pl.col("actas_total"), pl.col("actas_counted"),
                                 pl.col("actas_processed"))
    reject(counted > total, "counted_exceeds_total")
    reject(counted > processed, "counted_exceeds_processed")
    reject(processed > total, "processed_exceeds_total")

    # a unit published in one row per vote type: the key is the unit and the type
    typed = VOTE_TYPE in df.columns
    key_cols = ["level", "unit_code", *([VOTE_TYPE] if typed else [])]
    if typed:
        unit = ["level", "unit_code"]
        vt = pl.col(VOTE_TYPE)
        reject(vt.is_null().any().over(unit) & vt.is_not_null().any().over(unit),
               "vote_type_mixed")
    dup = pl.struct(key_cols).is_duplicated()
    if df.select(dup.any()).item():
        sig_cols = [c for c in df.columns if not c.startswith("__")]
        keyed = df.with_columns(pl.struct(sig_cols).hash().alias("__sig"),
                                pl.struct(key_cols).hash().alias("__key"))
        n_sigs = pl.col("__sig").n_unique().over("__key")
        first = pl.col("__line") == pl.col("__line").min().over("__key")
        for mask, rule in ((dup & (n_sigs > 1), "duplicate_unit"),
                           (dup & (n_sigs == 1) & ~first, "duplicate_unit_identical")):
            rep = _report(keyed, mask, UNIT_RULES[rule])
            if rep.height:
                rejects.append(rep)

    votes = pl.sum_horizontal([pl.col(c).fill_null(0) for c in
                               [*cand, "blank", "null", "challenged"]])
    over_cast = pl.col("cast").is_not_null() & (votes > pl.col("cast"))
    over_electors = (pl.col("cast").is_not_null() & pl.col("electors").is_not_null()
                     & (pl.col("cast") > pl.col("electors")))
    for mask, rule in ((over_cast, "votes_exceed_cast"),
                       (over_electors, "cast_exceeds_electors")):
        rep = _report(df, mask, UNIT_RULES[rule])
        if rep.height:
            flags.append(rep)

    rejected = pl.concat(rejects) if rejects else pl.DataFrame(schema=REJECTED_SCHEMA)
    findings = pl.concat(flags) if flags else pl.DataFrame(schema=REJECTED_SCHEMA)
    if rejected.height:
        df = df.filter(~pl.col("__line").is_in(rejected["line"].unique().implode()))
    frame = df.drop([c for c in df.columns if c.startswith("__")])
    return ValidationResult(frame=frame, rejected=rejected.sort("line"),
                            findings=findings.sort("line"))
