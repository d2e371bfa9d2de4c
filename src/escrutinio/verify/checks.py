"""Acta arithmetic and integrity rules applied to every acta on ingest (docs/methods.md §3).

Each rule has a name, a bilingual message and a severity:

* ``reject`` — the row is removed from the snapshot and kept, with the rule, in the
  snapshot's rejected rows (``escrutinio status`` reports how many and which).
* ``flag`` — the row stays; the finding is recorded. Observed actas are observed
  precisely because their arithmetic can fail, so arithmetic on an acta that is not
  counted only flags.

All rules are vectorised polars expressions: no Python loop over actas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from escrutinio.domain import REJECTED_SCHEMA, ActaStatus, Contest


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    severity: str  # "reject" | "flag"
    field: str
    message_es: str
    message_en: str


RULES: dict[str, Rule] = {
    r.name: r
    for r in [
        Rule("missing_acta_id", "reject", "acta_id", "acta sin identificador",
             "acta without an identifier"),
        Rule("row_without_data", "reject", "*",
             "fila sin datos (ni estado, ni ubigeo, ni cifras) en la fuente",
             "row with no data (no status, no location, no figures) in the source"),
        Rule("unknown_status", "reject", "status", "estado de acta desconocido",
             "unknown acta status"),
        Rule("negative_count", "reject", "*", "conteo negativo", "negative count"),
        Rule("duplicate_acta", "reject", "acta_id",
             "acta repetida con cifras distintas (se rechazan todas las copias)",
             "duplicated acta with different figures (every copy rejected)"),
        Rule("duplicate_acta_identical", "reject", "acta_id",
             "acta repetida con las mismas cifras (se conserva la primera)",
             "duplicated acta with identical figures (the first is kept)"),
        Rule("counted_incomplete", "reject", "*",
             "acta contabilizada con campos vacíos", "counted acta with empty fields"),
        Rule("sum_mismatch", "reject", "cast",
             "candidatos + blancos + nulos + impugnados no suman los votos emitidos",
             "candidates + blank + null + challenged do not add up to votes cast"),
        Rule("cast_exceeds_electors", "reject", "cast",
             "más votos emitidos que electores hábiles", "more votes cast than electors"),
        Rule("sum_mismatch_uncounted", "flag", "cast",
             "acta no contabilizada cuyas cifras no suman (típico de un error material)",
             "uncounted acta whose figures do not add up (typical of an 'error material')"),
        Rule("cast_exceeds_electors_uncounted", "flag", "cast",
             "acta no contabilizada con más votos que electores",
             "uncounted acta with more votes than electors"),
    ]
}


@dataclass(frozen=True, slots=True)
class ValidationResult:
    frame: pl.DataFrame  # accepted rows (without __line)
    rejected: pl.DataFrame  # REJECTED_SCHEMA
    findings: pl.DataFrame  # REJECTED_SCHEMA, rows kept


def _report(df: pl.DataFrame, mask: pl.Expr | pl.Series, rule: Rule,
            field: str | None = None) -> pl.DataFrame:
    hit = df.filter(mask)
    if hit.height == 0:
        return pl.DataFrame(schema=REJECTED_SCHEMA)
    raw_cols = [c for c in hit.columns if not c.startswith("__")]
    return hit.select(
        pl.col("__line").cast(pl.Int64).alias("line"),
        pl.col("acta_id"),
        pl.lit(field or rule.field).alias("field"),
        pl.lit(rule.name).alias("rule"),
        pl.lit(rule.message_es).alias("message_es"),
        pl.lit(rule.message_en).alias("message_en"),
        pl.struct(raw_cols).struct.json_encode().alias("raw"),
    )


def validate_actas(df: pl.DataFrame, contest: Contest, *,
                   absent: Sequence[str] = ()) -> ValidationResult:
    """Apply every rule to a canonical acta frame carrying ``__line``.

    ``absent``: figures the source does not have at all (a country whose actas have no
    ``blank`` or ``null`` line): they stay null (unknown), a counted acta is complete
    without them, and the sum identity becomes "candidates (+ the known figures) do not
    exceed the votes cast", since what is missing cannot be checked."""
    if "__line" not in df.columns:
        df = df.with_row_index("__line", offset=1).with_columns(pl.col("__line").cast(pl.Int64))
    cand = contest.candidate_columns
    counts = ["electors", "cast", "blank", "null", "challenged", *cand]
    valid_status = [s.value for s in ActaStatus]
    counted = pl.col("status") == ActaStatus.COUNTED.value
    votes_sum = pl.sum_horizontal([pl.col(c).fill_null(0) for c in
                                   [*cand, "blank", "null", "challenged"]])
    gap = ((votes_sum > pl.col("cast")) if {"blank", "null"} & set(absent)
           else (votes_sum != pl.col("cast")))
    sum_bad = pl.col("cast").is_not_null() & gap
    over = (pl.col("cast").is_not_null() & pl.col("electors").is_not_null()
            & (pl.col("cast") > pl.col("electors")))

    empty = (pl.col("status").is_null() & pl.col("cast").is_null()
             & pl.col("area3_code").is_null())
    incomplete = pl.any_horizontal([pl.col(c).is_null() for c in
                                    ["cast", "blank", "null", *cand] if c not in absent])
    # (mask, rule, field) in reporting order; every mask is computed in one pass and only
    #: the rules that hit some row build a report
    checks: list[tuple[pl.Expr, str, str | None]] = [
        (pl.col("acta_id").is_null() | (pl.col("acta_id").str.strip_chars() == ""),
         "missing_acta_id", None),
        (empty, "row_without_data", None),
        ((~pl.col("status").is_in(valid_status) | pl.col("status").is_null()) & ~empty,
         "unknown_status", None),
        *[(pl.col(c).is_not_null() & (pl.col(c) < 0), "negative_count", c) for c in counts],
        (counted & incomplete, "counted_incomplete", None),
        (counted & sum_bad, "sum_mismatch", None),
        (counted & over, "cast_exceeds_electors", None),
        (~counted & sum_bad, "sum_mismatch_uncounted", None),
        (~counted & over, "cast_exceeds_electors_uncounted", None),
    ]
    masks = df.select(*[m.fill_null(False).alias(f"__m{i}") for i, (m, _, _) in enumerate(checks)])
    hits = masks.select(pl.all().any()).row(0)
    # ids strictly increasing (the usual order of a file) cannot repeat: a cheap test first
    ids = df["acta_id"]
    unique_ids = df.height < 2 or (ids.null_count() == 0 and bool(
        (ids.slice(1) > ids.slice(0, df.height - 1)).all()))
    unique_ids = unique_ids or ids.n_unique() == df.height

    rejects: list[pl.DataFrame] = []
    flags: list[pl.DataFrame] = []
    rejected_lines: list[pl.Series] = []
    for i, (_, rule, field) in enumerate(checks):
        if not hits[i]:
            continue
        rep = _report(df, masks.to_series(i), RULES[rule], field)
        if RULES[rule].severity == "reject":
            rejects.append(rep)
            rejected_lines.append(rep["line"])
        else:
            flags.append(rep)

    # duplicates: identical copies keep the first; conflicting copies are all rejected
    if not unique_ids:
        dup = pl.col("acta_id").is_duplicated()
        sig_cols = [c for c in df.columns if not c.startswith("__")]
        with_sig = df.with_columns(pl.struct(sig_cols).hash().alias("__sig"))
        n_sigs = pl.col("__sig").n_unique().over("acta_id")
        first = pl.col("__line") == pl.col("__line").min().over("acta_id")
        conflict = dup & (n_sigs > 1)
        ident_extra = dup & (n_sigs == 1) & ~first
        for mask, rule in ((conflict, "duplicate_acta"), (ident_extra, "duplicate_acta_identical")):
            rep = _report(with_sig, mask, RULES[rule])
            if rep.height:
                rejects.append(rep.select(REJECTED_SCHEMA.keys()))
                rejected_lines.append(rep["line"])

    rejected = (pl.concat(rejects) if rejects else pl.DataFrame(schema=REJECTED_SCHEMA))
    findings = (pl.concat(flags) if flags else pl.DataFrame(schema=REJECTED_SCHEMA))
    if rejected_lines:
        bad = pl.concat(rejected_lines).unique()
        df = df.filter(~pl.col("__line").is_in(bad.implode()))
    frame = df.drop([c for c in df.columns if c.startswith("__")])
    return ValidationResult(frame=frame, rejected=rejected.sort("line"),
                            findings=findings.sort("line"))
