"""Chile's pack: SERVEL, the TRICEL, mesas receptoras, región / comuna / circunscripción
electoral, America/Santiago. The 2021 first-round converter is
:mod:`escrutinio.sources.chile` (a source: packs import no source)."""

from __future__ import annotations

from typing import Final

from escrutinio.countries.pack import (
    GENERIC_AUDIT_ERROR_RATE,
    GENERIC_COURT_OUTCOMES,
    CountryPack,
    CourtOutcomes,
    Vocabulary,
)
from escrutinio.domain import ActaStatus

AREA_LABELS: Final = {
    "area1": {"es": "región", "en": "region"},
    "area2": {"es": "comuna", "en": "commune"},
    "area3": {"es": "circunscripción electoral", "en": "electoral district"},
}

VOCABULARY: Final = Vocabulary(
    country=("Chile", "Chile"),
    authority=("SERVEL", "SERVEL"),
    court=("TRICEL", "TRICEL"),
    court_long=("Tribunal Calificador de Elecciones (TRICEL)",
                "Election Qualifying Court (TRICEL)"),
    polling_station=("mesa receptora", "polling station"),
    polling_stations=("mesas receptoras", "polling stations"),
    # SERVEL counts mesas ("mesas escrutadas"): one count per mesa, no separate acta word
    actas=("mesas receptoras", "polling stations"),
    status_overrides={ActaStatus.JEE: ("en el TRICEL", "at the TRICEL"),
                      ActaStatus.NOT_INSTALLED: ("mesa receptora no constituida",
                                                 "polling station not set up")},
)

#: nothing measured for Chile: the generic flat prior, said with Chile's court
COURT_OUTCOMES: Final = CourtOutcomes(
    p_annulled=GENERIC_COURT_OUTCOMES.p_annulled, p_corrected=GENERIC_COURT_OUTCOMES.p_corrected,
    correction_sd=GENERIC_COURT_OUTCOMES.correction_sd,
    rate_prior_n=GENERIC_COURT_OUTCOMES.rate_prior_n,
    source=("desconocido: no hay tasas medidas del TRICEL; prior plano (anulada, corregida o "
            "sin cambios, igual de posibles)",
            "unknown: no measured TRICEL rates; flat prior (annulled, corrected or "
            "unchanged, equally likely)"))

PACK: Final = CountryPack(
    code="CL",
    vocabulary=VOCABULARY,
    area_labels=AREA_LABELS,
    timezone="America/Santiago",
    # nothing measured for Chile: the generic, stated assumptions
    audit_error_rate=GENERIC_AUDIT_ERROR_RATE,
    court_outcomes=COURT_OUTCOMES,
    datasets=("chile-2021-first-round",),
    parsers=("escrutinio.sources.chile",),
    contests=("cl-2021-presidencial-1v",),
)
