"""Chile 2021 first round, per mesa -> a simulated count night in the generic per-unit format.

Source: ``chile-2021-first-round/chile_election_2021.csv.gz`` (SERVEL's final results per
mesa, as shipped by the CRAN package fastei): ``REGION``, ``ELECTORAL.DISTRICT``
(*circunscripción electoral*), ``BALLOT.BOX``, ``C1``..``C7``, ``BLANK.VOTES``,
``NULL.VOTES`` and columns not used here. The file is final: it has no arrival order. This
converter **invents one** (deterministic, not random) to exercise a count in progress:

* every circunscripción is "urban" when it has at least ``URBAN_MESAS`` mesas, else rural;
* urban mesas arrive first, then rural ones, interleaved across regions by a hash of the
  mesa's id (so no region is counted in one block);
* a **late block**: the rural circunscripciones where Kast's lead over Boric is largest,
  whole, until they hold about ``LATE_SHARE`` of the mesas, arrive last. The early count
  leans to Boric, the late block to Kast: the kind of late shift the projection is for.

Output (all through the generic format, docs/formats.md §3 and §3b):

* ``units/cl-2021-cut-NN.csv`` — one per-unit file per cut (``N_CUTS`` cuts), each with a
  ``national`` row and one ``area1`` row per región (CUT code), its sidecar beside it;
  ``actas_total`` / ``actas_counted`` / ``actas_pending`` are mesas. No electors (the file
  has no roll) and no abroad (the file has no mesa abroad): both left out, not zero.
* ``series/cl-2021-national-series.csv`` — one national row per cut (a series file with
  ``as_of``), with ``pct_votes_counted`` = ballots counted / final ballots (known here
  because the source is final; on a real night it is the authority's estimate).
* ``--broken`` also writes ``broken/<case>/`` folders, each a copy of the per-unit cuts
  with one defect ("sources that break"): ``missing_regions`` (one cut without two
  regions' rows), ``totals_down`` (a cut whose region totals fall), ``actas_total_changes``
  (a cut where a region's acta total changes) and ``acta_rule`` (a row with more counted
  mesas than mesas).

    python docs/examples/chile_2021_cuts.py SRC OUT_DIR [--broken]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

SOURCE = "chile-2021-first-round/chile_election_2021.csv.gz"
URBAN_MESAS = 400
LATE_SHARE = 0.10
CUT_FRACTIONS = (0.03, 0.08, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.82, 0.88, 0.93,
                 0.97, 0.99, 1.0)
FIRST_CUT = datetime(2021, 11, 21, 18, 30)  # local time, America/Santiago
CUT_STEP = timedelta(minutes=20)
REGIONS = {
    "DE TARAPACA": ("01", "Tarapacá"), "DE ANTOFAGASTA": ("02", "Antofagasta"),
    "DE ATACAMA": ("03", "Atacama"), "DE COQUIMBO": ("04", "Coquimbo"),
    "DE VALPARAISO": ("05", "Valparaíso"),
    "DEL LIBERTADOR GENERAL BERNARDO O'HIGGINS": ("06", "O'Higgins"),
    "DEL MAULE": ("07", "Maule"), "DEL BIOBIO": ("08", "Biobío"),
    "DE LA ARAUCANIA": ("09", "La Araucanía"), "DE LOS LAGOS": ("10", "Los Lagos"),
    "DE AYSEN DEL GENERAL CARLOS IBANEZ DEL CAMPO": ("11", "Aysén"),
    "DE MAGALLANES Y DE LA ANTARTICA CHILENA": ("12", "Magallanes"),
    "METROPOLITANA DE SANTIAGO": ("13", "Metropolitana de Santiago"),
    "DE LOS RIOS": ("14", "Los Ríos"), "DE ARICA Y PARINACOTA": ("15", "Arica y Parinacota"),
    "DE NUBLE": ("16", "Ñuble"),
}
CANDIDATES = [("boric", "Gabriel Boric Font", "C1"), ("kast", "José Antonio Kast Rist", "C2"),
              ("provoste", "Yasna Provoste Campillay", "C3"),
              ("sichel", "Sebastián Sichel Ramírez", "C4"),
              ("artes", "Eduardo Artés Brichetti", "C5"),
              ("meo", "Marco Enríquez-Ominami Gumucio", "C6"),
              ("parisi", "Franco Parisi Fernández", "C7")]
VOTES = [f"v_{c}" for c, _, _ in CANDIDATES]
FIGURES = ["cast", "blank", "null", *VOTES]


def read_mesas(src: str | Path) -> pl.DataFrame:
    """One row per mesa with its región code, arrival rank and figures."""
    raw = pl.read_csv(src)
    unknown = set(raw["REGION"].unique().to_list()) - set(REGIONS)
    if unknown:
        raise ValueError(f"unknown regions in {src}: {sorted(unknown)}")
    df = raw.select(
        pl.col("REGION").replace_strict({k: v[0] for k, v in REGIONS.items()}).alias("code"),
        pl.col("ELECTORAL.DISTRICT").alias("district"),
        pl.col("BALLOT.BOX").cast(pl.String).alias("box"),
        *[pl.col(src_col).alias(f"v_{c}") for c, _, src_col in CANDIDATES],
        pl.col("BLANK.VOTES").alias("blank"), pl.col("NULL.VOTES").alias("null"),
    ).with_columns(pl.sum_horizontal([*VOTES, "blank", "null"]).alias("cast"))
    size = df.group_by("district").agg(pl.len().alias("n"),
                                       ((pl.col("v_kast").sum() - pl.col("v_boric").sum())
                                        / pl.col("cast").sum()).alias("kast_lead"))
    rural = size.filter(pl.col("n") < URBAN_MESAS).sort("kast_lead", descending=True)
    late, acc = set(), 0
    for row in rural.iter_rows(named=True):
        if acc >= LATE_SHARE * df.height:
            break
        late.add(row["district"])
        acc += row["n"]
    key = [hashlib.sha256(f"{d}:{b}".encode()).hexdigest()[:12]
           for d, b in zip(df["district"], df["box"], strict=True)]
    df = df.join(size.select("district", "n"), on="district").with_columns(
        pl.Series("h", key),
        pl.when(pl.col("district").is_in(sorted(late))).then(2)
        .when(pl.col("n") >= URBAN_MESAS).then(0).otherwise(1).alias("phase"))
    return df.sort("phase", "h").with_row_index("rank")


def _cut_rows(df: pl.DataFrame, counted_n: int, totals: pl.DataFrame) -> pl.DataFrame:
    done = df.filter(pl.col("rank") < counted_n)
    agg = done.group_by("code").agg(pl.len().alias("actas_counted"),
                                    *[pl.col(c).sum() for c in FIGURES])
    reg = totals.join(agg, on="code", how="left").with_columns(
        pl.col("actas_counted").fill_null(0), *[pl.col(c).fill_null(0) for c in FIGURES])
    reg = reg.with_columns(pl.lit("area1").alias("level"), pl.col("code").alias("unit_code"),
                           pl.lit(False).alias("abroad"))
    nat = reg.select(pl.lit("national").alias("level"), pl.lit("").alias("unit_code"),
                     pl.lit("Chile").alias("unit_name"), pl.lit(None, pl.Boolean).alias("abroad"),
                     pl.col("actas_total").sum(), pl.col("actas_counted").sum(),
                     *[pl.col(c).sum() for c in FIGURES])
    cols = ["level", "unit_code", "unit_name", "abroad", "actas_total", "actas_counted",
            *FIGURES]
    out = pl.concat([nat.select(cols), reg.select(cols).sort("unit_code")])
    return out.with_columns(pl.col("actas_counted").alias("actas_processed"),
                            (pl.col("actas_total") - pl.col("actas_counted"))
                            .alias("actas_pending"))


def _contest(cid: str, name: str) -> dict[str, object]:
    return {"id": cid, "name": name, "kind": "first_round", "country": "CL",
            "date": "2021-11-21", "majority_threshold": 0.5,
            "candidates": [{"code": c, "name": n, "authority_code": a}
                           for c, n, a in CANDIDATES]}


NOTES = [
    {"es": "orden de llegada inventado (urbanas primero, un bloque rural tardío que favorece "
           "a Kast); las cifras de cada mesa son las finales del SERVEL",
     "en": "invented arrival order (urban first, a late rural block leaning to Kast); each "
           "mesa's figures are SERVEL's final ones"},
    {"es": "sin padrón en la fuente: electores desconocidos; sin mesas en el extranjero",
     "en": "no roll in the source: electors unknown; no mesas abroad in the source"},
]


def _sidecar(contest: dict[str, object], label: str, as_of: str | None) -> dict[str, object]:
    side: dict[str, object] = {
        "format": "escrutinio-tabular", "format_version": 2, "kind": "units",
        "contest": contest, "timezone": "America/Santiago",
        "source_uri": "SERVEL (vía fastei), orden de llegada simulado", "label": label,
        "area_labels": {"area1": {"es": "región", "en": "region"},
                        "area3": {"es": "circunscripción electoral",
                                  "en": "electoral district"}},
        "court_name": {"es": "Tribunal Calificador de Elecciones",
                       "en": "Election Qualifying Court"},
        "notes": NOTES}
    if as_of is not None:
        side["as_of"] = as_of
    return side


def _write(path: Path, rows: pl.DataFrame, sidecar: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.write_csv(path)
    path.with_name(path.name + ".contest.json").write_text(
        json.dumps(sidecar, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def convert(src: str | Path, out_dir: str | Path, *, broken: bool = False) -> list[Path]:
    """Write the cuts, the national series and (``broken``) the broken variants."""
    src = Path(src)
    if src.is_dir():
        src = src / SOURCE
    out = Path(out_dir)
    df = read_mesas(src)
    totals = df.group_by("code").agg(pl.len().alias("actas_total")).with_columns(
        pl.col("code").replace_strict({v[0]: v[1] for v in REGIONS.values()})
        .alias("unit_name"))
    final_cast = int(df["cast"].sum())
    contest = _contest("cl-2021-1v-cortes", "Chile 2021, primera vuelta: cortes simulados")
    paths, series = [], []
    cuts: list[tuple[str, pl.DataFrame]] = []
    for i, frac in enumerate(CUT_FRACTIONS, start=1):
        rows = _cut_rows(df, round(frac * df.height), totals)
        as_of = (FIRST_CUT + (i - 1) * CUT_STEP).isoformat()
        cuts.append((as_of, rows))
        paths.append(_write(out / "units" / f"cl-2021-cut-{i:02d}.csv", rows,
                            _sidecar(contest, f"corte {i}", as_of)))
        nat = rows.filter(pl.col("level") == "national").drop("actas_total", "actas_counted",
                                                              "actas_processed",
                                                              "actas_pending")
        series.append(nat.with_columns(pl.lit(as_of).alias("as_of"),
                                       (pl.col("cast") / final_cast).round(6)
                                       .alias("pct_votes_counted")))
    scontest = _contest("cl-2021-1v-serie", "Chile 2021, primera vuelta: serie nacional")
    paths.append(_write(out / "series" / "cl-2021-national-series.csv", pl.concat(series),
                        _sidecar(scontest, "serie nacional", None)))
    if broken:
        paths += _broken(out, cuts, contest)
    return paths


def _broken(out: Path, cuts: list[tuple[str, pl.DataFrame]],
            contest: dict[str, object]) -> list[Path]:
    k = 8  # the cut that breaks (1-based)
    cases = {
        # Ñuble and Los Ríos left out of cut k; the national row still counts them
        "missing_regions": lambda r: r.filter(~pl.col("unit_code").is_in(["14", "16"])),
        # Valparaíso and the nation go back to cut k-2's figures
        "totals_down": lambda r: _back(r, cuts[k - 3][1], ["", "05"]),
        # Biobío's acta total grows by 25 (and the nation's)
        "actas_total_changes": lambda r: r.with_columns(
            pl.when(pl.col("unit_code").is_in(["", "08"])).then(pl.col("actas_total") + 25)
            .otherwise(pl.col("actas_total")).alias("actas_total")).with_columns(
            (pl.col("actas_total") - pl.col("actas_counted")).alias("actas_pending")),
        # Maule reports more counted mesas than it has
        "acta_rule": lambda r: r.with_columns(
            pl.when(pl.col("unit_code") == "07").then(pl.col("actas_total") + 5)
            .otherwise(pl.col("actas_counted")).alias("actas_counted")),
    }
    paths = []
    for case, fix in cases.items():
        for i, (as_of, rows) in enumerate(cuts, start=1):
            rows = fix(rows) if i == k else rows
            paths.append(_write(out / "broken" / case / f"cl-2021-cut-{i:02d}.csv", rows,
                                _sidecar(contest | {"id": f"cl-2021-1v-{case}".replace("_", "-")},
                                         f"corte {i}", as_of)))
    return paths


def _back(rows: pl.DataFrame, older: pl.DataFrame, codes: list[str]) -> pl.DataFrame:
    keep = rows.filter(~pl.col("unit_code").is_in(codes))
    old = older.filter(pl.col("unit_code").is_in(codes))
    return pl.concat([old, keep]).sort(pl.col("level") != "national", "unit_code")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help=f"the source file or the data folder (holding {SOURCE})")
    ap.add_argument("out_dir")
    ap.add_argument("--broken", action="store_true", help="also write the broken variants")
    a = ap.parse_args(argv)
    try:
        if Path(a.out_dir).exists():
            shutil.rmtree(Path(a.out_dir) / "broken", ignore_errors=True)
        paths = convert(a.src, a.out_dir, broken=a.broken)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
