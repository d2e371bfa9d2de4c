"""US 2020 presidential count progressions -> escrutinio's generic format (a series file).

Source: ``us-2020-president-progress/state-changes-excerpt.csv.gz`` (rows of
``all-state-changes.csv`` from alex/nyt-2020-election-scraper, built from the NYT
"votes remaining" feed): one row per change of a state's count, newest first, with the
leading and trailing candidate, their votes, ``total_votes_count`` and ``votes_remaining``.

Output (docs/examples/README.md explains the choices):

* default — **one contest, two long series files**: ``...-states.csv``, one row per cut
  and state (``level=area1``), and ``...-national.csv``, one ``national`` row per cut (the
  sum of the jurisdictions of the excerpt, which is *not* the whole country: PA, GA, AZ,
  WI, MI, NV and NC are not in it; its ``votes_remaining`` is the sum of the states'
  estimates). Two files because ``history`` and the series projection follow the
  national cuts, and ``status --level state`` the state cuts. A cut is the last feed
  moment of each ``freq`` bucket (default one hour) in which some state changed, plus the
  feed's first moment; each state's figures are its latest row at or before
  the cut (the feed's state at that moment).
* ``by_state=True`` — **one contest per state** (``us-2020-president-ny``...), each a
  series of national rows, one per feed moment that changed the count: the shape the
  projection's series replay reads.

Candidates: ``biden`` and ``trump`` (from the leading/trailing columns, whichever leads)
and ``other`` = total_votes_count − Biden − Trump (third parties and write-ins).
``cast`` = total_votes_count. The feed has no blank or null votes and no electors: the
columns are absent, so they are unknown (null), never 0. ``votes_remaining`` is the feed's
*estimate*; it goes negative in some rows (more votes were counted than it expected):
clipped to 0, and the number of clipped rows is written in the sidecar's ``notes``.
Precincts reporting are not used as acta counts: precincts report long before their mail
ballots are counted, so "all precincts in" would claim that nothing remains.

    python docs/examples/us_2020_progress.py SRC OUT_DIR [--by-state] [--freq 1h]
        [--state "New York"]...
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import polars as pl

SOURCE = "us-2020-president-progress/state-changes-excerpt.csv.gz"
SOURCE_URI = ("https://github.com/alex/nyt-2020-election-scraper/blob/ba249bc6/"
              "all-state-changes.csv")
USPS = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL",
    "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA",
    "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI",
    "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT",
    "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ",
    "New Mexico": "NM", "New York": "NY", "North Carolina": "NC", "North Dakota": "ND",
    "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
}
CANDIDATES = [
    {"code": "biden", "name": "Joe Biden", "party": "Democratic"},
    {"code": "trump", "name": "Donald Trump", "party": "Republican"},
    {"code": "other", "name": "Otros / Others", "party": "terceros y por escrito / third "
                                                          "parties and write-ins"},
]
AREA_LABELS = {"area1": {"es": "estado", "en": "state"},
               "area2": {"es": "condado", "en": "county"},
               "area3": {"es": "distrito", "en": "precinct"}}
COLUMNS = ["as_of", "level", "unit_code", "unit_name", "cast", "v_biden", "v_trump",
           "v_other", "votes_remaining"]


def read_changes(src: str | Path, states: Sequence[str] | None = None) -> pl.DataFrame:
    """The feed's rows, one per (state, moment), oldest first, in the generic columns."""
    raw = pl.read_csv(src, infer_schema_length=0)
    name = pl.col("state").str.replace(r"\s*\(EV: \d+\)\s*$", "")
    ints = ["leading_candidate_votes", "trailing_candidate_votes", "votes_remaining",
            "total_votes_count"]
    df = raw.with_columns(name.alias("unit_name"), *[pl.col(c).cast(pl.Int64) for c in ints],
                          pl.col("timestamp").str.to_datetime(time_unit="us", time_zone="UTC")
                          .alias("ts"))
    unknown = sorted(set(df["unit_name"].to_list()) - set(USPS))
    if unknown:
        raise ValueError(f"unknown states in {src}: {unknown}")
    if states:
        wanted = {s.strip() for s in states}
        missing = wanted - set(df["unit_name"].to_list())
        if missing:
            raise ValueError(f"states not in the excerpt: {sorted(missing)}")
        df = df.filter(pl.col("unit_name").is_in(wanted))
    lead, trail = pl.col("leading_candidate_name"), pl.col("trailing_candidate_name")
    lv, tv = pl.col("leading_candidate_votes"), pl.col("trailing_candidate_votes")
    biden = pl.when(lead == "Biden").then(lv).when(trail == "Biden").then(tv)
    trump = pl.when(lead == "Trump").then(lv).when(trail == "Trump").then(tv)
    out = df.select(
        "ts", pl.col("unit_name").replace_strict(USPS).alias("unit_code"), "unit_name",
        pl.col("total_votes_count").alias("cast"), biden.alias("v_biden"),
        trump.alias("v_trump"), pl.col("votes_remaining").alias("raw_remaining"),
    ).with_columns((pl.col("cast") - pl.col("v_biden") - pl.col("v_trump")).alias("v_other"))
    bad = out.filter(pl.col("v_biden").is_null() | pl.col("v_trump").is_null()
                     | (pl.col("v_other") < 0))
    if bad.height:
        raise ValueError(f"{bad.height} rows without both candidates or with more candidate "
                         f"votes than the total, e.g. {bad.row(0, named=True)}")
    return (out.with_columns(pl.col("raw_remaining").clip(lower_bound=0)
                             .alias("votes_remaining"))
            .unique(subset=["unit_code", "ts"], keep="first")
            .sort("unit_code", "ts"))


def _changes_only(df: pl.DataFrame) -> pl.DataFrame:
    """Drop rows that repeat the previous figures of their state (the feed re-polls)."""
    figs = ["cast", "v_biden", "v_trump", "v_other", "votes_remaining"]
    same = pl.all_horizontal([pl.col(c) == pl.col(c).shift(1).over("unit_code") for c in figs])
    return df.filter(~same.fill_null(False))


def _iso(col: str) -> pl.Expr:
    return pl.col(col).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")


def _contest(cid: str, name: str) -> dict[str, object]:
    return {"id": cid, "name": name, "kind": "first_round", "country": "US",
            "date": "2020-11-03", "majority_threshold": None, "candidates": CANDIDATES}


def _notes(clipped: int, extra: Sequence[dict[str, str]] = ()) -> list[dict[str, str]]:
    return [
        {"es": "votes_remaining es una estimación del feed del NYT, no un conteo oficial; "
               f"{clipped} filas con estimación negativa se llevaron a 0",
         "en": "votes_remaining is the NYT feed's estimate, not an official count; "
               f"{clipped} rows with a negative estimate were clipped to 0"},
        {"es": "sin votos en blanco, nulos ni electores en la fuente: desconocidos, no 0",
         "en": "no blank or null votes and no electors in the source: unknown, not 0"},
        {"es": "la serie empieza el 4 nov 2020 13:28 UTC: la noche electoral no está",
         "en": "the series starts on 4 Nov 2020 13:28 UTC: election night is not in it"},
        *extra,
    ]


def _write(out: Path, rows: pl.DataFrame, sidecar: dict[str, object]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    rows.select(COLUMNS).write_csv(out)
    side = out.with_name(out.name + ".contest.json")
    side.write_text(json.dumps(sidecar, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return out


def _sidecar(contest: dict[str, object], label: str, notes: list[dict[str, str]]
             ) -> dict[str, object]:
    return {"format": "escrutinio-tabular", "format_version": 2, "kind": "units",
            "contest": contest, "timezone": "America/New_York", "source_uri": SOURCE_URI,
            "label": label, "area_labels": AREA_LABELS,
            "vote_types": {"election_day": {"es": "día de la elección", "en": "election day"},
                           "early": {"es": "anticipado", "en": "early"},
                           "mail": {"es": "por correo", "en": "mail"}},
            "notes": notes}


def convert(src: str | Path, out_dir: str | Path, *, by_state: bool = False,
            freq: str = "1h", states: Sequence[str] | None = None) -> list[Path]:
    """Convert the excerpt; returns the data files written (each with its sidecar).

    ``src``: the source CSV(.gz), or the data folder that holds it. ``states``: full
    names ("New York") to keep (default: every state of the excerpt).
    """
    src = Path(src)
    if src.is_dir():
        src = src / SOURCE
    out_dir = Path(out_dir)
    df = read_changes(src, states)
    clipped = int((df["raw_remaining"] < 0).sum())
    if by_state:
        paths = []
        for (code,), part in df.partition_by("unit_code", as_dict=True,
                                             maintain_order=True).items():
            part = _changes_only(part)
            name = part["unit_name"][0]
            n_clip = int((part["raw_remaining"] < 0).sum())
            rows = part.with_columns(_iso("ts").alias("as_of"), pl.lit("national").alias("level"),
                                     pl.lit("").alias("unit_code"))
            contest = _contest(f"us-2020-president-{str(code).lower()}",
                               f"EE. UU. 2020, presidencial: {name} / US 2020 presidential: "
                               f"{name}")
            paths.append(_write(out_dir / f"us-2020-president-{str(code).lower()}.csv", rows,
                                _sidecar(contest, f"{name} (NYT feed)", _notes(n_clip))))
        return paths
    # one contest: cuts on a grid, every state carried to its latest row at each cut
    changed = _changes_only(df)
    last = (changed.group_by(pl.col("ts").dt.truncate(freq).alias("bucket"))
            .agg(pl.col("ts").max().alias("cut")).select("cut"))
    first = changed.select(pl.col("ts").min().alias("cut"))  # the feed's first moment
    cuts = pl.concat([first, last]).unique().sort("cut")
    grid = cuts.join(df.select("unit_code").unique(), how="cross").sort("unit_code", "cut")
    rows = grid.join_asof(df.sort("unit_code", "ts"), left_on="cut", right_on="ts",
                          by="unit_code", strategy="backward",
                          check_sortedness=False).drop_nulls("ts")
    figs = ["cast", "v_biden", "v_trump", "v_other", "votes_remaining"]
    nat = (rows.group_by("cut").agg(*[pl.col(c).sum() for c in figs],
                                    pl.len().alias("n"))
           .with_columns(pl.lit("").alias("unit_code"),
                         pl.lit(f"{df['unit_code'].n_unique()} jurisdicciones del extracto / "
                                f"{df['unit_code'].n_unique()} jurisdictions of the excerpt")
                         .alias("unit_name"), pl.lit("national").alias("level")))
    rows = rows.with_columns(pl.lit("area1").alias("level"))
    cols = ["cut", "level", "unit_code", "unit_name", *figs]
    nat = nat.select(cols).with_columns(_iso("cut").alias("as_of")).sort("cut")
    rows = rows.select(cols).with_columns(_iso("cut").alias("as_of")).sort("cut", "unit_code")
    n = df["unit_code"].n_unique()
    missing = sorted(set(USPS.values()) - set(df["unit_code"].to_list()))
    contest = _contest(
        "us-2020-president-progress",
        f"EE. UU. 2020, presidencial: {n} jurisdicciones del extracto del NYT (faltan "
        f"{', '.join(missing)}) / US 2020 presidential: {n} jurisdictions of the NYT "
        f"excerpt (missing {', '.join(missing)})")
    extra = [{"es": f"'national' es la suma de las {n} jurisdicciones del extracto, no el "
                    "total del país",
              "en": f"'national' is the sum of the {n} jurisdictions of the excerpt, not the "
                    "country's total"}]
    notes = _notes(clipped, extra)
    return [_write(out_dir / "us-2020-president-progress-national.csv", nat,
                   _sidecar(contest, "NYT feed, total", notes)),
            _write(out_dir / "us-2020-president-progress-states.csv", rows,
                   _sidecar(contest, "NYT feed, states", notes))]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help=f"the source file or the data folder (holding {SOURCE})")
    ap.add_argument("out_dir")
    ap.add_argument("--by-state", action="store_true", help="one contest per state")
    ap.add_argument("--freq", default="1h", help="cut grid of the combined file (1h, 6h, 1d)")
    ap.add_argument("--state", action="append", help="keep only this state (repeatable)")
    a = ap.parse_args(argv)
    if not re.fullmatch(r"\d+[mhd]", a.freq):
        ap.error("--freq: a number and m, h or d (e.g. 1h)")
    try:
        paths = convert(a.src, a.out_dir, by_state=a.by_state, freq=a.freq, states=a.state)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
