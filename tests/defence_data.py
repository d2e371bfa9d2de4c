"""Real 2021 runoff frames shared by the tests/test_defence_*.py modules, parsed once per
test session (each parse takes ~1.5 s). Not a test module."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from escrutinio.sources.base import ParsedSnapshot

ACTAS = "peru-2021-runoff/actas"


def data_dir() -> Path:
    env = os.environ.get("ESCRUTINIO_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@functools.cache
def final() -> ParsedSnapshot:
    from escrutinio.sources.onpe_files import parse_ronderos

    return parse_ronderos(data_dir() / ACTAS / "actas_electorales_ronderos.pe.csv.gz",
                          as_of="2021-06-17T00:00:00Z")


@functools.cache
def june15() -> ParsedSnapshot:
    from escrutinio.sources.onpe_files import parse_provisional

    return parse_provisional(data_dir() / ACTAS / "actas_electorales.csv.gz")


@functools.cache
def june8() -> ParsedSnapshot:
    from escrutinio.sources.onpe_files import parse_provisional

    return parse_provisional(data_dir() / ACTAS /
                             "hist_actas_electorales_20210608T1121_cadd76f.csv.gz")


def urban_table() -> Path:
    return data_dir() / "peru-geography" / "ubigeo_distrito.csv"
