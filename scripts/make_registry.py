#!/usr/bin/env python3
"""Build ``src/escrutinio/data/registry.json``, the dataset registry shipped with escrutinio.

The registry tells escrutinio, for each dataset it knows, what every file must be (size and
SHA-256), where the byte-identical upstream copy lives (a raw address pinned to a commit) or
how the file was derived, and under which licence the upstream published it.

Inputs
------
* ``<data-dir>/UPSTREAM.csv`` (columns ``path, bytes, sha256, relation, upstream_url,
  how_derived``): every data file of the shared data folder, grouped here into datasets by
  its top folder.
* ``<data-dir>/onpe-api-fixtures/``: not listed in UPSTREAM.csv; its files are hashed from
  disk and described from its ``PROVENANCE.md`` files (the rules are in ``FIXTURE_RULES``).
* The curated metadata below (``DATASETS``): titles, descriptions, licences and upstream
  repositories, taken from ``<data-dir>/README.md`` and the ``PROVENANCE.md`` files.

Regenerate (from the repository root; the data folder defaults to ``$ESCRUTINIO_DATA_DIR``,
else the sibling ``../shared/data``)::

    .venv/bin/python scripts/make_registry.py
    .venv/bin/python scripts/make_registry.py --data-dir /path/to/shared/data
    .venv/bin/python scripts/make_registry.py --check   # exit 1 if the committed file is stale

The output is deterministic (sorted, no timestamps), so ``--check`` can run in CI and the
committed JSON changes only when the data or the metadata change. Files of UPSTREAM.csv that
exist on disk are checked against their recorded size and SHA-256; a mismatch stops the build.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT = REPO_ROOT / "src" / "escrutinio" / "data" / "registry.json"
FORMAT_VERSION = 1

RAW_PINNED = re.compile(
    r"^https://raw\.githubusercontent\.com/(?P<owner>[^/]+)/(?P<repo>[^/]+)/"
    r"(?P<commit>[0-9a-f]{40})/(?P<path>.+)$"
)

GH = "https://github.com/"
JMC_RUNOFF = GH + "jmcastagnetto/2021-segunda-vuelta-eleccion-presidencial-peru"
JMC_FIRST = GH + "jmcastagnetto/2021-elecciones-generales-peru-datos-de-onpe"
JMC_UBIGEO = GH + "jmcastagnetto/ubigeo-peru-aumentado"
JUANELADIO = GH + "juaneladio/peru-geojson"
ANTONIOCUGA = GH + "antoniocuga/2026-peru-elecciones"
IKUSIJ = GH + "ikusij/ONPE-Monte-Carlo"
MAGALLANES = GH + "MAGALLANESJoseManuel/Midis_Bono600"
FASTEI = GH + "cran/fastei"
TABO = GH + "tabo/elecciones_peru_2021"
CMUCCHING = GH + "cmucching/dashboard-erm-2026"
F3R21 = GH + "f3r21/onpe-eg2026"

NO_LICENCE = "no licence stated (ONPE public results)"


def _up(repository: str, commit: str | None, licence: str, note_es: str = "",
        note_en: str = "") -> dict[str, Any]:
    return {"repository": repository, "commit": commit, "licence": licence,
            "note": {"es": note_es, "en": note_en}}


# Curated metadata, in the order the registry lists the datasets. Sources: the shared data
# README.md and the PROVENANCE.md files next to the data.
DATASETS: list[dict[str, Any]] = [
    {
        "name": "peru-2021-runoff",
        "title": {"es": "Perú 2021, segunda vuelta presidencial (6 jun 2021)",
                  "en": "Peru 2021 presidential runoff (6 June 2021)"},
        "description": {
            "es": "Castillo vs Fujimori. Estado final por mesa (86 488 mesas, raspado del "
                  "15-17 jun 2021, antes de resolverse todas las apelaciones), tres estados "
                  "provisionales por mesa (8, 9 y 15 jun), 48 cortes nacionales del avance "
                  "ONPE (67,2 % a 96,7 % de actas contabilizadas) y cortes por departamento, "
                  "provincia y distrito. Ubigeo RENIEC.",
            "en": "Castillo vs Fujimori. Final per-mesa state (86,488 mesas, scraped 15-17 "
                  "June 2021, before every appeal settled), three provisional per-mesa "
                  "states (8, 9 and 15 June), 48 national ONPE progress snapshots (67.2% to "
                  "96.7% of actas counted) and department, province and district snapshots. "
                  "RENIEC ubigeo codes.",
        },
        "licence": "MIT",
        "upstream": [_up(JMC_RUNOFF, "7cb418a1ab893d9302751aaf2307ca3a99bef60e", "MIT",
                         "licencia en LICENSE_source.txt; los cortes previos están fijados "
                         "a commits anteriores del mismo repositorio",
                         "licence in LICENSE_source.txt; earlier snapshots are pinned to "
                         "older commits of the same repository")],
    },
    {
        "name": "peru-2021-first-round",
        "title": {"es": "Perú 2021, primera vuelta presidencial (11 abr 2021)",
                  "en": "Peru 2021 presidential first round (11 April 2021)"},
        "description": {
            "es": "Actas por mesa con 18 partidos (parcial: 9 335 mesas sin datos), "
                  "resultados por distrito en 9 fechas (13 abr 91 % a 11 may 100 %) y "
                  "participación final por distrito.",
            "en": "Per-mesa actas with 18 parties (partial: 9,335 mesas have no data), "
                  "district results at 9 dates (13 Apr 91% to 11 May 100%) and final "
                  "turnout by district.",
        },
        "licence": "MIT",
        "upstream": [_up(JMC_FIRST, "6608440168dde1ca297894983f932614680b9377", "MIT",
                         "los cortes por distrito se reconstruyeron del historial del "
                         "repositorio; LICENSE_source.txt es la licencia MIT del mismo "
                         "autor (repositorio de la segunda vuelta)",
                         "district snapshots were rebuilt from the repository history; "
                         "LICENSE_source.txt is the same author's MIT licence (runoff "
                         "repository)")],
    },
    {
        "name": "peru-2026-first-round",
        "title": {"es": "Perú 2026, primera vuelta presidencial (12 abr 2026)",
                  "en": "Peru 2026 presidential first round (12 April 2026)"},
        "description": {
            "es": "2 102 ubigeos al 97,9 % contado (36 candidatos, votos restantes, "
                  "pendientes JEE), 230 cortes nacionales (14 abr a 4 may) y 4 cortes por "
                  "distrito (13, 16, 21 y 27 abr) con ubigeo RENIEC e INEI. El segundo "
                  "lugar se decidió por unos 26 000 votos.",
            "en": "2,102 ubigeos at 97.9% counted (36 candidates, remaining votes, pending "
                  "at the JEE), 230 national cuts (14 Apr to 4 May) and 4 district "
                  "snapshots (13, 16, 21 and 27 Apr) with RENIEC and INEI ubigeo codes. "
                  "Second place was decided by about 26,000 votes.",
        },
        "licence": NO_LICENCE,
        "upstream": [
            _up(IKUSIJ, "71fb99d039a350b46bd3031ae012acd67d253072", NO_LICENCE,
                "archivos ikusij_*; projected_votes es el modelo de ese autor",
                "ikusij_* files; projected_votes is that author's model"),
            _up(ANTONIOCUGA, None, NO_LICENCE,
                "antoniocuga_district_snapshots/: varios commits del historial, cada "
                "archivo fija el suyo; 'conteo' no es fiable",
                "antoniocuga_district_snapshots/: several commits of its history, each "
                "file pins its own; 'conteo' is unreliable"),
        ],
    },
    {
        "name": "peru-geography",
        "title": {"es": "Geografía del Perú: ubigeos INEI/RENIEC y mapas GeoJSON",
                  "en": "Peru geography: INEI/RENIEC ubigeo tables and GeoJSON maps"},
        "description": {
            "es": "Polígonos simplificados de departamentos, provincias y distritos "
                  "(25 / 197 / 1 834; clave IDDIST = INEI; de 2016, 59 distritos nuevos sin "
                  "polígono) y tablas ubigeo inei <-> reniec con nombres, región, altitud, "
                  "coordenadas, pobreza e IDH.",
            "en": "Simplified department, province and district polygons (25 / 197 / 1,834; "
                  "key IDDIST = INEI; from 2016, 59 newer districts have no polygon) and "
                  "inei <-> reniec ubigeo tables with names, region, altitude, coordinates, "
                  "poverty and HDI.",
        },
        "licence": "MPL-2.0 (GeoJSON); MIT (ubigeo tables)",
        "upstream": [
            _up(JUANELADIO, "3213eeb1bbe537f88dead45a2aadaa276fa9451d", "MPL-2.0",
                "peru_*_simple.geojson", "peru_*_simple.geojson"),
            _up(JMC_UBIGEO, "a783fa66effb16fa8f3321b49a3d5e71cab15a5c", "MIT",
                "ubigeo_*.csv", "ubigeo_*.csv"),
            _up(ANTONIOCUGA, "3cb6adc2bfd55ebf8cf67c0c04f8f7fc1f8dbc7f", "MPL-2.0",
                "copia idéntica de peru_distrital_simple.geojson usada como dirección de "
                "descarga", "byte-identical copy of peru_distrital_simple.geojson used as "
                "its download address"),
        ],
    },
    {
        "name": "onpe-dictionaries",
        "title": {"es": "Diccionarios de datos abiertos de la ONPE (2021)",
                  "en": "ONPE open-data dictionaries (2021)"},
        "description": {
            "es": "Variables y códigos TIPO_OBSERVACION (B, C, E, F, G, H, I, L, M, N, R, "
                  "S, X, Y, V) de los datos abiertos de la ONPE para ambas vueltas de 2021, "
                  "convertidos de xlsx a CSV.",
            "en": "Variables and TIPO_OBSERVACION codes (B, C, E, F, G, H, I, L, M, N, R, "
                  "S, X, Y, V) of ONPE's open data for both 2021 rounds, converted from "
                  "xlsx to CSV.",
        },
        "licence": "CC BY-SA 4.0",
        "upstream": [_up(MAGALLANES, None, "CC BY-SA 4.0",
                         "convertidos de los diccionarios xlsx de la ONPE de ese repositorio",
                         "converted from the ONPE xlsx dictionaries in that repository")],
    },
    {
        "name": "chile-2021-first-round",
        "title": {"es": "Chile 2021, primera vuelta presidencial por mesa (control limpio)",
                  "en": "Chile 2021 presidential first round per mesa (clean control)"},
        "description": {
            "es": "46 606 mesas (media 152 votos, máx. 315): C1..C7 (Boric, Kast, Provoste, "
                  "Sichel, Artés, Enríquez-Ominami, Parisi), blancos y nulos; sin padrón, "
                  "así que sin participación. Fuente SERVEL vía el paquete CRAN fastei. "
                  "Control para comprobar que un test estadístico no grita fraude en una "
                  "elección limpia.",
            "en": "46,606 mesas (mean 152 votes, max 315): C1..C7 (Boric, Kast, Provoste, "
                  "Sichel, Artés, Enríquez-Ominami, Parisi), blank and null votes; no "
                  "registered-elector column, so no turnout. Source SERVEL via the CRAN "
                  "package fastei. A control to check that a statistical screen does not "
                  "cry fraud on a clean election.",
        },
        "licence": "MIT",
        "upstream": [_up(FASTEI, "743d35d323e556fc8481eb82ed955b992a9c9e63", "MIT",
                         "paquete fastei 0.0.16; data/chile_election_2021.rda exportado a "
                         "CSV con pyreadr", "package fastei 0.0.16; "
                         "data/chile_election_2021.rda exported to CSV with pyreadr")],
    },
    {
        "name": "onpe-api-fixtures",
        "title": {"es": "Respuestas reales del backend de resultados de la ONPE (fixtures)",
                  "en": "Real ONPE results-backend responses (fixtures)"},
        "description": {
            "es": "Cuerpos de respuesta grabados por proyectos públicos: 2021 "
                  "/results/10/{ubigeo} (nacional, extranjero, Lima a tres horas del "
                  "12 abr 2021), segunda vuelta 2021 /mesas/detalle/{mesa}, cuerpos de error "
                  "2021, sobres presentacion-backend de 2026 (EG y ERM) y unos ejemplos "
                  "2026 transcritos (marcados como tales). Procedencia en PROVENANCE.md.",
            "en": "Response bodies recorded by public projects: 2021 /results/10/{ubigeo} "
                  "(national, abroad, Lima at three times on 12 Apr 2021), 2021 runoff "
                  "/mesas/detalle/{mesa}, 2021 error bodies, 2026 presentacion-backend "
                  "envelopes (EG and ERM) and a few transcribed 2026 examples (marked as "
                  "such). Provenance in PROVENANCE.md.",
        },
        "licence": NO_LICENCE,
        "upstream": [
            _up(ANTONIOCUGA, None, NO_LICENCE,
                "2021/results-ubigeo y 2021/errors (commits 1e823fd, c32dcec, a11dded); "
                "2026 EG envueltos (3cb6adc2)",
                "2021/results-ubigeo and 2021/errors (commits 1e823fd, c32dcec, a11dded); "
                "2026 EG wrapped bodies (3cb6adc2)"),
            _up(TABO, None, NO_LICENCE,
                "2021/mesas-*: _cache/20210606/ (commits 224fa191, 330ac448, 563d37f5)",
                "2021/mesas-*: _cache/20210606/ (commits 224fa191, 330ac448, 563d37f5)"),
            _up(CMUCCHING, "f163bbe34d56152b3e727ff48fe8cbf0fb6a7f6b", NO_LICENCE,
                "2026 ERM, copiados byte a byte", "2026 ERM, copied byte for byte"),
            _up(F3R21, None, NO_LICENCE,
                "2026/documented-examples: transcritos de su documentación (5028c03), no "
                "son capturas exactas", "2026/documented-examples: transcribed from its "
                "docs (5028c03), not byte-exact captures"),
        ],
    },
    {
        "name": "argentina-2015-runoff",
        "title": {"es": "Argentina 2015, segunda vuelta presidencial por escuela (fuente rota)",
                  "en": "Argentina 2015 presidential runoff by school (a broken source)"},
        "description": {
            "es": "13 706 escuelas (establecimientos), no mesas: distrito / sección / circuito, "
                  "electores, votantes, válidos, positivos, blancos, nulos; votos por partido "
                  "(FPV: Scioli; Cambiemos: Macri). Totales parciales, y «votantes» menor que "
                  "válidos + nulos en la mayoría de las escuelas: una fuente rota a propósito "
                  "(docs/examples/argentina_2015_runoff.py).",
            "en": "13,706 schools (establecimientos), not mesas: district / section / circuit, "
                  "electors, voters, valid, positive, blank, null; votes per party (FPV: "
                  "Scioli; Cambiemos: Macri). Partial totals, and 'votantes' below valid + "
                  "null in most schools: a broken source on purpose "
                  "(docs/examples/argentina_2015_runoff.py).",
        },
        "licence": "none stated",
        "upstream": [_up(GH + "lanacioncom/elecciones_2015_arg_ballo_escuelas", "7404bc9",
                         "none stated",
                         "archivos retirados en commits posteriores; sin archivo de licencia",
                         "files removed in later commits; no licence file")],
    },
    {
        "name": "us-2020-president-progress",
        "title": {"es": "EE. UU. 2020, progresión del conteo presidencial por estado",
                  "en": "US 2020 presidential count progressions by state"},
        "description": {
            "es": "2 541 filas de all-state-changes.csv (44 estados + DC; sin PA, GA, AZ, WI, "
                  "MI, NV, NC): votos del que lidera y del que sigue, votos restantes "
                  "(estimación del feed del NYT) desde el 4 nov 2020 13:28 UTC. Voto por "
                  "correo tardío (docs/examples/us_2020_progress.py).",
            "en": "2,541 rows of all-state-changes.csv (44 states + DC; without PA, GA, AZ, "
                  "WI, MI, NV, NC): leading and trailing candidates' votes, votes remaining "
                  "(the NYT feed's estimate) from 4 Nov 2020 13:28 UTC. Late mail ballots "
                  "(docs/examples/us_2020_progress.py).",
        },
        "licence": "MIT",
        "upstream": [_up(GH + "alex/nyt-2020-election-scraper",
                         "ba249bc68b533b160398dcf1d21641c2f80920ca", "MIT",
                         "filas de all-state-changes.csv, sin siete estados, gzip",
                         "rows of all-state-changes.csv without seven states, gzipped")],
    },
]

# onpe-api-fixtures is not in UPSTREAM.csv: each of its files gets (relation, how_derived,
# upstream_url) from the first rule whose prefix matches its path (inside the dataset).
CMUC_RAW = ("https://raw.githubusercontent.com/cmucching/dashboard-erm-2026/"
            "f163bbe34d56152b3e727ff48fe8cbf0fb6a7f6b/tests/fixtures/")
ERM_UPSTREAM = {
    "2026/resumen-general-totales/erm2026__idEleccion1__ubigeo_nivel_01__010000.json":
        CMUC_RAW + "e1_dep_amazonas_totales.json",
    "2026/resumen-general-totales/erm2026__idEleccion3__ubigeo_nivel_02__010100.json":
        CMUC_RAW + "e3_prov_chachapoyas_totales.json",
    "2026/resumen-general-participantes/erm2026__idEleccion1__ubigeo_nivel_01__010000.json":
        CMUC_RAW + "e1_dep_amazonas_participantes.json",
    "2026/resumen-general-participantes/erm2026__idEleccion3__ubigeo_nivel_02__010100.json":
        CMUC_RAW + "e3_prov_chachapoyas_participantes.json",
}
FIXTURE_RULES: list[tuple[str, str, str]] = [
    ("2021/PROVENANCE.md", "curated", "provenance notes written when the fixtures were collected"),
    ("2026/PROVENANCE.md", "curated", "provenance notes written when the fixtures were collected"),
    ("2021/results-ubigeo/", "recorded",
     "response body saved by curl in antoniocuga/2026-peru-elecciones "
     "crawler/onpe/regiones/{ubigeo}.json (commits 1e823fd, c32dcec, a11dded), renamed with "
     "its data time"),
    ("2021/errors/", "recorded",
     "error body stored as antoniocuga/2026-peru-elecciones crawler/onpe/regiones/{ubigeo}.json "
     "(commits 1e823fd, a11dded), renamed .txt (not valid JSON)"),
    ("2021/mesas-detalle/", "derived",
     "tabo/elecciones_peru_2021 _cache/20210606/mesas/detalle/{mesa}.json (commits 224fa191, "
     "330ac448), re-serialised as json.dumps(sort_keys=True, indent=4)"),
    ("2021/mesas-locales/", "derived",
     "tabo/elecciones_peru_2021 _cache/20210606/mesas/locales/010101.json @ 563d37f5, CRLF "
     "line endings turned into LF"),
    ("2021/mesas-actas-local/", "recorded",
     "tabo/elecciones_peru_2021 _cache/20210606/mesas/actas/11/010101/0001.json @ 224fa191"),
    ("2026/resumen-general-elecciones/", "recorded",
     "antoniocuga/2026-peru-elecciones public/data-primera-vuelta/genera_elecciones.json @ "
     "3cb6adc2 (the recorder added 'source' and 'fetched_at')"),
    ("2026/participacion-ciudadana-totales/", "recorded",
     "antoniocuga/2026-peru-elecciones public/data-primera-vuelta/"
     "participacion_ciudadana_totales.json @ 3cb6adc2 (the recorder added 'source' and "
     "'fetched_at')"),
    ("2026/resumen-general-", "identical",
     "cmucching/dashboard-erm-2026 tests/fixtures @ f163bbe3"),
    ("2026/documented-examples/", "transcribed",
     "transcribed from peers' documentation (see 2026/PROVENANCE.md); not a byte-exact capture"),
]


def default_data_dir() -> Path:
    env = os.environ.get("ESCRUTINIO_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _fixture_entry(relpath: str, path: Path) -> dict[str, Any]:
    rule = next((r for r in FIXTURE_RULES if relpath.startswith(r[0])), None)
    if rule is None:
        raise SystemExit(f"onpe-api-fixtures/{relpath}: no rule in FIXTURE_RULES describes it")
    _, relation, how = rule
    url = ERM_UPSTREAM.get(relpath) if relation == "identical" else None
    if relation == "identical" and url is None:
        raise SystemExit(f"onpe-api-fixtures/{relpath}: identical but no upstream address")
    return {"path": relpath, "bytes": path.stat().st_size, "sha256": sha256_file(path),
            "relation": relation, "upstream_url": url,
            "how_derived": None if url else how}


def build_registry(data_dir: Path, *, check_disk: bool = True) -> dict[str, Any]:
    """The registry as a JSON-ready dict (deterministic)."""
    by_name = {d["name"]: d for d in DATASETS}
    files: dict[str, list[dict[str, Any]]] = {name: [] for name in by_name}
    problems: list[str] = []
    with (data_dir / "UPSTREAM.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            top, _, rel = row["path"].partition("/")
            if top not in by_name or not rel:
                problems.append(f"{row['path']}: no dataset named {top!r} in DATASETS")
                continue
            relation = row["relation"].strip()
            url = row["upstream_url"].strip() or None
            how = row["how_derived"].strip() or None
            if relation == "identical" and (url is None or not RAW_PINNED.match(url)):
                problems.append(f"{row['path']}: identical but its address is not a raw "
                                f"address pinned to a commit: {url!r}")
            if relation != "identical" and how is None:
                problems.append(f"{row['path']}: derived but how_derived is empty")
            entry = {"path": rel, "bytes": int(row["bytes"]), "sha256": row["sha256"].lower(),
                     "relation": relation, "upstream_url": url if relation == "identical" else None,
                     "how_derived": None if relation == "identical" else how}
            disk = data_dir / row["path"]
            if check_disk and disk.is_file():
                size = disk.stat().st_size
                if size != entry["bytes"] or sha256_file(disk) != entry["sha256"]:
                    problems.append(f"{row['path']}: the file on disk does not match "
                                    "UPSTREAM.csv (size or SHA-256)")
            files[top].append(entry)
    fixtures = data_dir / "onpe-api-fixtures"
    if fixtures.is_dir():
        for path in sorted(p for p in fixtures.rglob("*") if p.is_file()):
            files["onpe-api-fixtures"].append(
                _fixture_entry(path.relative_to(fixtures).as_posix(), path))
    for name, entries in files.items():
        if not entries:
            problems.append(f"{name}: no files")
    if problems:
        raise SystemExit("make_registry: cannot build the registry:\n  " + "\n  ".join(problems))
    datasets = []
    for meta in DATASETS:
        entries = sorted(files[meta["name"]], key=lambda e: e["path"])
        datasets.append(meta | {"files": entries})
    return {
        "format": FORMAT_VERSION,
        "generated_by": "scripts/make_registry.py",
        "note": "Generated file: edit scripts/make_registry.py and regenerate it.",
        "datasets": datasets,
    }


def render(registry: dict[str, Any]) -> str:
    return json.dumps(registry, ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="the shared data folder (default: $ESCRUTINIO_DATA_DIR or "
                             "../shared/data beside the repository)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the output file is not up to date")
    args = parser.parse_args(argv)
    text = render(build_registry(args.data_dir))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run scripts/make_registry.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    n = sum(len(d["files"]) for d in json.loads(text)["datasets"])
    print(f"wrote {args.output} ({n} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
