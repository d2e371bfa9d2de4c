"""Peru's pack: ONPE, the JEE, mesas, departamento / provincia / distrito, America/Lima.

Contests, ONPE acta states and RENIEC ubigeo geography are in :mod:`.source`; ONPE's own
file formats are read by :mod:`escrutinio.sources.onpe_files` and
:mod:`escrutinio.sources.onpe_aggregates` (named in :data:`PACK`), its live API by
:mod:`escrutinio.live`.
"""

from __future__ import annotations

from typing import Final

from escrutinio.countries.pack import CountryPack, CourtOutcomes, StatedRate, Vocabulary
from escrutinio.domain import ActaStatus

#: ONPE's three levels at home; abroad the same columns hold continente / país / ciudad
AREA_LABELS: Final = {
    "area1": {"es": "departamento", "en": "department"},
    "area2": {"es": "provincia", "en": "province"},
    "area3": {"es": "distrito", "en": "district"},
}

VOCABULARY: Final = Vocabulary(
    country=("Perú", "Peru"),
    authority=("ONPE", "ONPE"),
    court=("JEE", "JEE"),
    court_long=("Jurado Electoral Especial (JEE)", "Special Electoral Jury (JEE)"),
    polling_station=("mesa", "mesa"),
    polling_stations=("mesas", "mesas"),
    status_overrides={ActaStatus.JEE: ("en el JEE", "at the JEE")},
)

#: the 1,354 actas at the JEE in ONPE's per-acta state of 8 June 2021 20:23 (Lima) against
#: the final per-acta file (15-17 June): 187 annulled, 910 counted unchanged, 223 counted
#: with corrected figures (per-candidate change ~ N(0, 21²) votes), 34 without figures
#: (docs/projection.md, docs/methods.md §2)
COURT_OUTCOMES_2021: Final = CourtOutcomes(
    p_annulled=187 / 1354, p_corrected=223 / 1354, correction_sd=21.0, rate_prior_n=100.0,
    source=("Perú 2021 segunda vuelta: 1,354 actas en el JEE (estado ONPE del 8-jun 20:23) "
            "frente al archivo final; 187 anuladas, 910 sin cambios, 223 corregidas; las "
            "1,167 contabilizadas al final difieren de las demás actas de su unidad en 0.07 "
            "del margen (RMS)",
            "Peru 2021 runoff: 1,354 actas at the JEE (ONPE state of 8 Jun 20:23) against "
            "the final file; 187 annulled, 910 unchanged, 223 corrected; the 1,167 counted "
            "in the end differ from the other actas of their unit by 0.07 of the margin "
            "(RMS)"),
    # validation/review_lean_peru.py: RMS (vote-weighted) of the margin's share of those
    # 1,167 actas against the rest of their department 0.070, province 0.066, district
    # 0.064 — the largest is kept
    lean_margin_sd=0.07)

#: first digitised vs final figures of the same actas in the 2021 runoff: 235 of 83,960
#: actas changed (validation/audit_peru.py)
AUDIT_ERROR_RATE_2021: Final = StatedRate(0.003, (
    "modelo Perú 2021: 0,3% de las actas con discrepancia (235 de 83,960 cambiaron entre la "
    "primera digitación y el resultado final)",
    "Peru 2021 model: 0.3% of actas with a discrepancy (235 of 83,960 changed between the "
    "first digitisation and the final result)"))

PACK: Final = CountryPack(
    code="PE",
    vocabulary=VOCABULARY,
    area_labels=AREA_LABELS,
    timezone="America/Lima",
    audit_error_rate=AUDIT_ERROR_RATE_2021,
    court_outcomes=COURT_OUTCOMES_2021,
    datasets=("peru-2021-runoff", "peru-2021-first-round", "peru-2026-first-round",
              "peru-geography", "onpe-dictionaries", "onpe-api-fixtures"),
    maps=("peru-geography/peru_departamental_simple.geojson",
          "peru-geography/peru_provincial_simple.geojson",
          "peru-geography/peru_distrital_simple.geojson",
          "peru-geography/ubigeo_distrito.csv"),
    parsers=("escrutinio.countries.peru.source", "escrutinio.sources.onpe_files",
             "escrutinio.sources.onpe_aggregates", "escrutinio.live.parse"),
    contests=("pe-2021-presidencial-2v", "pe-2021-presidencial-1v", "pe-2026-presidencial-1v"),
    # ONPE's department / province / district tables are the home country only; abroad
    # is only in the national total
    unit_tables_exclude_abroad=True,
)
