"""The cheap checks ``read_csv_strict`` runs before its slower ones (issue #15 item 6):
``_one_record_per_line`` (polars line counts, no numpy) may only answer True where the
numpy/csv-module scan ``_record_lines`` finds every record on its own line with the
header's field count, and ``_no_control_characters`` only where no field holds a
character ``refuse_hostile_text`` refuses. Real files, hand-made traps and seeded random
CSV text."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest

from escrutinio.errors import IngestError
from escrutinio.sources import base

RUNOFF = "peru-2021-runoff/actas"


def _polars(text: bytes, sep: str) -> pl.DataFrame | None:
    try:
        return pl.read_csv(text, separator=sep, infer_schema=False, null_values=base.NULL_TOKENS,
                           truncate_ragged_lines=False, raise_if_empty=False)
    except pl.exceptions.PolarsError:
        return None


def _slow_says_one_per_line(text: bytes, n: int, sep: str, rows: int) -> bool:
    """What the numpy/csv-module scan finds: every record on its own line, n fields."""
    try:
        lines = base._record_lines(base.SourceBytes("t.csv", text, "", text), n, sep)
    except IngestError:
        return False
    return lines is None or lines == list(range(2, 2 + rows))


def _hostile(text: bytes, sep: str) -> bool:
    df = _polars(text, sep)
    assert df is not None
    try:
        base.refuse_hostile_text(df.with_row_index("__line"), "t.csv")
    except IngestError as exc:
        return exc.rule == "control_character"
    return False


@pytest.mark.parametrize(("name", "one_line"), [
    ("actas_electorales.csv.gz", True),  # quoted commas: the lines holding quotes are checked
    ("hist_actas_electorales_20210608T1121_cadd76f.csv.gz", True),
    ("actas_electorales_ronderos.pe.csv.gz", False),  # a quoted line break: the slow scan
])
def test_real_files(data_dir: Path, name: str, one_line: bool) -> None:
    src = base.read_source(data_dir / RUNOFF / name)
    n = len(base.header_fields(base.first_line(src.text), src.path))
    df = _polars(src.text, ",")
    assert df is not None
    fast = base._one_record_per_line(src.text, df.height, n, ",")
    assert fast is one_line
    assert _slow_says_one_per_line(src.text, n, ",", df.height) is one_line
    if fast:  # and no control character: the per-column regex pass is skipped, rightly
        assert base._no_control_characters(src.text)
        assert not _hostile(src.text, ",")


@pytest.mark.parametrize("text", [
    b"a,b\n1\n3,4\n",                   # a short line (polars pads it with a null)
    b"a;b\n1\n;b;",                     # polars accepts a last line with one field too many
    b"a,b\n1,\"x\ny\"\n3,4\n",          # a quoted line break: two lines, one record
    b"a,b\n1,x\"y\n3,4\n",              # a quote inside an unquoted field
    b"a,b\n1,\"x\"y\n3,4\n",            # text after a closing quote
    b"a,b\n1,2\r3\n4,5\n",              # a carriage return that does not end a line
    b"a\tb\n1\t2\n",                    # not the separator given below
    b"a,b\n1,2\n\n3,4\n",               # a blank line (fine for both; polars reads a null row)
])
def test_traps_never_pass_the_fast_check_wrongly(text: bytes) -> None:
    df = _polars(text, ",")
    if df is None:
        return  # polars refuses it: read_csv_strict reports csv_syntax, no fast path
    if base._one_record_per_line(text, df.height, 2, ","):
        assert _slow_says_one_per_line(text, 2, ",", df.height)


@pytest.mark.parametrize(("text", "clean"), [
    (b"acta_id,name\n1,Ana\r\n2,\"B, C\"\r\n", True),
    (b"acta_id,name\n1,A\tna\n", False),                        # a tab in a name
    (b"acta_id,name\n1,A\x00na\n", False),                      # NUL
    ("acta_id,name\n1,A\u0085na\n".encode(), False),            # a C1 control
    ("acta_id,name\n1,A\u202ena\n".encode(), False),            # a bidi override
    ("acta_id,name\n1,A\u2067na\n".encode(), False),            # a bidi isolate
    ("acta_id,name\n1,Año Nº 5 – “x”\n".encode(), True),        # other non-ASCII text
    (b"acta_id,name\n1,A\rna\n", False),                        # a carriage return inside
])
def test_control_characters(text: bytes, clean: bool) -> None:
    assert base._no_control_characters(text) is clean
    assert _hostile(text, ",") is not clean


@pytest.mark.slow  # seconds of Monte-Carlo / random inputs: make test runs it
def test_random_csv_text() -> None:
    """Seeded random CSV text full of quotes, separators, line breaks, carriage returns,
    tabs and null tokens: the fast answers are never more lenient than the slow ones, and
    each is True often enough to be tested."""
    rng = random.Random(15_6)
    alphabet = ["a", "b", ",", '"', "\n", "\r\n", "\r", " ", "NA", "", ";", "\t", "é",
                "\x01", "\u202e", "\u0085"]
    fast_true = clean_true = 0
    for _ in range(4000):
        ncol = rng.randint(1, 4)
        sep = rng.choice([",", ";", "\t"])
        rows = []
        for _ in range(rng.randint(1, 5)):
            if rng.random() < 0.7:
                fields = []
                for _ in range(ncol + rng.choice([0, 0, 0, 0, -1, 1])):
                    f = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 3)))
                    if rng.random() < 0.3:
                        f = '"' + f.replace('"', '""') + '"'
                    fields.append(f)
                rows.append(sep.join(fields))
            else:
                rows.append("".join(rng.choice([*alphabet, sep])
                                    for _ in range(rng.randint(0, 8))))
        text = (sep.join(f"c{i}" for i in range(ncol)) + "\n" + "\n".join(rows)
                + rng.choice(["", "\n", "\r\n", "\n\n"])).encode()
        df = _polars(text, sep)
        if df is None or df.height == 0:
            continue
        if not base._one_record_per_line(text, df.height, ncol, sep):
            continue
        fast_true += 1
        assert _slow_says_one_per_line(text, ncol, sep, df.height), text
        if base._no_control_characters(text):
            clean_true += 1
            assert not _hostile(text, sep), text
    assert fast_true > 300 and clean_true > 100, (fast_true, clean_true)


def test_geography_from_the_parsers_area_columns(data_dir: Path) -> None:
    """The ONPE parsers build the geography from the area columns they already derived
    (``with_areas=True``): the same rows as deriving them from the ubigeo again, for
    districts at home and abroad and the rows without a district."""
    from escrutinio.countries.peru.source import geography_from_names, ubigeo_area_exprs

    src = base.read_source(data_dir / RUNOFF / "actas_electorales.csv.gz")
    df = pl.read_csv(src.text, infer_schema=False).with_columns(*ubigeo_area_exprs("ubigeo"))
    df = pl.concat([df, df.head(3).with_columns(pl.lit(None, pl.String).alias("ubigeo"),
                                                pl.lit(None, pl.String).alias("area3_code"))],
                   how="vertical_relaxed")
    names = ("ubigeo", "departamento", "provincia", "distrito")
    again = geography_from_names(df, *names)
    reused = geography_from_names(df, *names, with_areas=True)
    assert reused.equals(again)
    assert again.height > 2_000 and again["abroad"].any() and not again["abroad"].all()
