"""Argentina 2015 runoff by school (La Nación's data) -> escrutinio's generic format.

Source: ``argentina-2015-runoff/`` — ``arg_ballo_establecimientos.csv.gz`` (13,706 schools:
district / section / circuit, ``electores``, ``votantes``, ``validos``, ``blancos``,
``nulos``) and ``arg_ballo_est_diff_votos.csv.gz`` (school × party votes: ``0131`` FPV,
Scioli; ``0135`` Cambiemos, Macri).

One row per **school** (establecimiento), not per mesa: ``acta_id`` = the school's id,
``polling_place`` = its name, areas = distrito / sección / circuito. ``cast`` =
``votantes`` as published. **The source is inconsistent on purpose**: in most schools
``votantes`` is not Scioli + Macri + blank + null (only 3,788 of 13,706 add up). The
converter does not repair it: every school is written as the source has it, ingest rejects
the schools that fail the identity (rule ``sum_mismatch``, kept with their raw figures in
the snapshot's rejected rows), and those schools stay in every denominator — the count of
schools, the electors — because the place exists and voted even if its figures do not
add up. The totals are partial too (Macri won with 51.34 %; this file has Scioli
12,332,798 vs Macri 12,439,419). Both facts go into the sidecar's ``notes``.

    python docs/examples/argentina_2015_runoff.py SRC_DIR OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import polars as pl

FOLDER = "argentina-2015-runoff"
SOURCE_URI = "https://github.com/lanacioncom/elecciones_2015_arg_ballo_escuelas/tree/7404bc9"
PARTIES = {"0131": "scioli", "0135": "macri"}
CONTEST = {
    "id": "ar-2015-presidencial-2v-escuelas",
    "name": "Argentina 2015, presidencial, segunda vuelta (por escuela, datos de La Nación) / "
            "Argentina 2015 presidential runoff (by school, La Nación's data)",
    "kind": "runoff", "country": "AR", "date": "2015-11-22", "majority_threshold": None,
    "candidates": [
        {"code": "scioli", "name": "Daniel Scioli", "party": "Frente para la Victoria",
         "authority_code": "0131"},
        {"code": "macri", "name": "Mauricio Macri", "party": "Cambiemos",
         "authority_code": "0135"},
    ],
}
AREA_LABELS = {"area1": {"es": "distrito", "en": "district"},
               "area2": {"es": "sección", "en": "section"},
               "area3": {"es": "circuito", "en": "circuit"}}
COLUMNS = ["acta_id", "status", "area1_code", "area1_name", "area2_code", "area2_name",
           "area3_code", "area3_name", "polling_place", "electors", "cast", "blank", "null",
           "v_scioli", "v_macri"]


def read_schools(src_dir: str | Path) -> tuple[pl.DataFrame, dict[str, int]]:
    """One row per school in the generic columns, and what the converter counted."""
    d = Path(src_dir)
    if (d / FOLDER).is_dir():
        d = d / FOLDER
    est = pl.read_csv(d / "arg_ballo_establecimientos.csv.gz", infer_schema_length=0)
    votes = pl.read_csv(d / "arg_ballo_est_diff_votos.csv.gz", infer_schema_length=0)
    unknown = sorted(set(votes["id_partido"].to_list()) - set(PARTIES))
    if unknown:
        raise ValueError(f"unknown parties in the votes file: {unknown}")
    wide = (votes.with_columns(pl.col("votos").cast(pl.Int64),
                               ("v_" + pl.col("id_partido").replace_strict(PARTIES))
                               .alias("col"))
            .pivot(on="col", index="id_establecimiento", values="votos",
                   aggregate_function="sum"))
    orphans = wide.join(est, on="id_establecimiento", how="anti")
    df = est.join(wide, on="id_establecimiento", how="left")
    dist, sec, circ = pl.col("id_distrito"), pl.col("id_seccion"), pl.col("id_circuito")
    out = df.select(
        pl.col("id_establecimiento").alias("acta_id"), pl.lit("counted").alias("status"),
        dist.alias("area1_code"), pl.col("distrito").alias("area1_name"),
        (dist + "-" + sec).alias("area2_code"), pl.col("seccion").alias("area2_name"),
        (dist + "-" + sec + "-" + circ).alias("area3_code"),
        ("circuito " + circ).alias("area3_name"),
        pl.col("nombre").alias("polling_place"),
        pl.col("electores").cast(pl.Int64).alias("electors"),
        pl.col("votantes").cast(pl.Int64).alias("cast"),
        pl.col("blancos").cast(pl.Int64).alias("blank"),
        pl.col("nulos").cast(pl.Int64).alias("null"),
        pl.col("v_scioli"), pl.col("v_macri"),
    ).sort(pl.col("acta_id").cast(pl.Int64))
    adds_up = out.select((pl.col("v_scioli") + pl.col("v_macri") + pl.col("blank")
                          + pl.col("null") == pl.col("cast")).fill_null(False).sum()).item()
    stats = {"schools": out.height, "adds_up": int(adds_up),
             "without_votes": int(out["v_scioli"].null_count()),
             "orphan_vote_rows": orphans.height,
             "orphan_votes": int(orphans.select(pl.sum_horizontal(
                 pl.col("v_scioli"), pl.col("v_macri")).sum()).item() or 0)}
    return out.select(COLUMNS), stats


def convert(src_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write ``ar-2015-runoff-schools.csv`` and its sidecar; returns [data path]."""
    rows, st = read_schools(src_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "ar-2015-runoff-schools.csv"
    rows.write_csv(data)
    notes = [
        {"es": f"'votantes' (cast) no es Scioli + Macri + blancos + nulos en "
               f"{st['schools'] - st['adds_up']:,} de {st['schools']:,} escuelas: la fuente "
               "es inconsistente; esas escuelas se rechazan (sum_mismatch) y siguen contando "
               "en los denominadores",
         "en": f"'votantes' (cast) is not Scioli + Macri + blank + null in "
               f"{st['schools'] - st['adds_up']:,} of {st['schools']:,} schools: the source "
               "is inconsistent; those schools are rejected (sum_mismatch) and stay in the "
               "denominators"},
        {"es": "totales parciales: el resultado oficial fue Macri 51,34 %",
         "en": "partial totals: the official result was Macri 51.34%"},
        {"es": f"{st['without_votes']} escuela(s) sin votos por partido; "
               f"{st['orphan_vote_rows']} filas de votos de escuelas que no están en la "
               f"lista ({st['orphan_votes']:,} votos) no se usan",
         "en": f"{st['without_votes']} school(s) without party votes; "
               f"{st['orphan_vote_rows']} vote rows of schools missing from the list "
               f"({st['orphan_votes']:,} votes) are not used"},
        {"es": "datos sin hora: as_of es el día siguiente a la elección, supuesto",
         "en": "undated data: as_of is the day after the vote, assumed"},
    ]
    sidecar = {"format": "escrutinio-tabular", "format_version": 2, "kind": "actas",
               "contest": CONTEST, "as_of": "2015-11-23T00:00:00-03:00",
               "timezone": "America/Argentina/Buenos_Aires", "source_uri": SOURCE_URI,
               "label": "La Nación, por escuela", "area_labels": AREA_LABELS,
               "court_name": {"es": "Justicia Nacional Electoral",
                              "en": "National Electoral Justice"},
               "notes": notes}
    data.with_name(data.name + ".contest.json").write_text(
        json.dumps(sidecar, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return [data]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help=f"the data folder (holding {FOLDER}/) or {FOLDER} itself")
    ap.add_argument("out_dir")
    a = ap.parse_args(argv)
    try:
        paths = convert(a.src, a.out_dir)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
