"""Named bundles of real data: what ``escrutinio ingest peru-2021-runoff`` reads.

A bundle lists files of a registered dataset (see ``escrutinio.datasets``) and the parser
for each. Files are found through the data-directory lookup, never by a fixed path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from escrutinio.sources.base import ParsedSnapshot


@dataclass(frozen=True, slots=True)
class BundleItem:
    dataset: str
    relpath: str  # inside the dataset folder; a folder for multi-file sources
    parse: Callable[[Path], list[ParsedSnapshot]]
    description: str


def _ronderos_final(p: Path) -> list[ParsedSnapshot]:
    from escrutinio.sources.onpe_files import parse_ronderos

    # The file has no timestamp; the upstream scrape was taken 15-17 June 2021, after the
    # 15 June provisional state. 17 June is used so that it sorts last.
    return [parse_ronderos(p, as_of="2021-06-17T00:00:00Z",
                           label="final (ronderos.pe, ~15-17 Jun 2021)")]


def _provisional(p: Path) -> list[ParsedSnapshot]:
    from escrutinio.sources.onpe_files import parse_provisional

    return [parse_provisional(p)]


def _progress(p: Path) -> list[ParsedSnapshot]:
    from escrutinio.sources.onpe_aggregates import parse_progress_tables

    return parse_progress_tables(p)


def _first_round_2021(p: Path) -> list[ParsedSnapshot]:
    from escrutinio.sources.onpe_files import parse_ronderos

    return [parse_ronderos(p, as_of="2021-05-11T09:15:00Z",
                           label="primera vuelta 2021 por acta (ronderos.pe)")]


def _bundle_2026(p: Path) -> list[ParsedSnapshot]:
    from escrutinio.sources.onpe_aggregates import parse_2026_district_bundle

    return [parse_2026_district_bundle(p)]


def _series_2026(p: Path) -> list[ParsedSnapshot]:
    from escrutinio.sources.onpe_aggregates import parse_2026_national_timeseries

    return parse_2026_national_timeseries(p)


def _chile_2021(p: Path) -> list[ParsedSnapshot]:
    """SERVEL's per-mesa file through Chile's converter and the generic reader: the same
    path a user takes by hand (docs/formats.md), in a temporary folder."""
    import tempfile

    from escrutinio.sources.chile import convert_chile_2021
    from escrutinio.sources.tabular import parse_tabular

    with tempfile.TemporaryDirectory(prefix="escrutinio-cl-") as tmp:
        # the file has no time: the morning after the election (21 Nov 2021), in UTC
        data, _ = convert_chile_2021(p, Path(tmp) / "chile_2021_mesas.parquet",
                                     as_of="2021-11-22T03:00:00Z", source_uri=str(p))
        return [parse_tabular(data, label="SERVEL, por mesa / per mesa")]


BUNDLES: dict[str, list[BundleItem]] = {
    "peru-2021-runoff": [
        BundleItem("peru-2021-runoff", "progress_national", _progress,
                   "48 national ONPE snapshots, 7-8 June 2021"),
        BundleItem("peru-2021-runoff", "progress_subnational/departamentos", _progress,
                   "department snapshots"),
        BundleItem("peru-2021-runoff", "progress_subnational/provincias", _progress,
                   "province snapshots"),
        BundleItem("peru-2021-runoff", "progress_subnational/distritos", _progress,
                   "district snapshots"),
        BundleItem("peru-2021-runoff",
                   "actas/hist_actas_electorales_20210608T1121_cadd76f.csv.gz", _provisional,
                   "per-acta state downloaded 8 June 16:15Z"),
        BundleItem("peru-2021-runoff",
                   "actas/hist_actas_electorales_20210608T2023_78f03ce.csv.gz", _provisional,
                   "per-acta state downloaded 9 June 01:12Z"),
        BundleItem("peru-2021-runoff", "actas/actas_electorales.csv.gz", _provisional,
                   "per-acta state downloaded 15 June"),
        BundleItem("peru-2021-runoff", "actas/actas_electorales_ronderos.pe.csv.gz",
                   _ronderos_final, "final per-acta state (86,488 actas)"),
    ],
    "peru-2021-first-round": [
        BundleItem("peru-2021-first-round", "presidencial-actas_ronderos.pe.csv.gz",
                   _first_round_2021, "first round per acta (partial: 9,335 mesas without data)"),
    ],
    "peru-2026-first-round": [
        BundleItem("peru-2026-first-round",
                   "ikusij_first_round_district_bundle_20260504.json.gz", _bundle_2026,
                   "2,102 districts and cities abroad at 97.9% counted"),
        BundleItem("peru-2026-first-round",
                   "ikusij_first_round_national_timeseries.csv.gz", _series_2026,
                   "230 national cuts, 14 Apr (78%) to 4 May 2026 (97.9%)"),
    ],
    "chile-2021-first-round": [
        BundleItem("chile-2021-first-round", "chile_election_2021.csv.gz", _chile_2021,
                   "SERVEL per mesa, 21 Nov 2021 (46,606 mesas; Chile's converter)"),
    ],
}


def bundle_paths(name: str) -> list[tuple[BundleItem, Path]]:
    from escrutinio.datasets import locate_path

    return [(item, locate_path(item.dataset, item.relpath)) for item in BUNDLES[name]]
