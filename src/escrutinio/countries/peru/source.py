"""Peru: contests, ONPE acta states and RENIEC ubigeo geography.

Part of Peru's country pack (:mod:`escrutinio.countries.peru`); the old import path
``escrutinio.sources.peru`` forwards here. This is the only place (with the ONPE parsers)
that knows Peruvian codes. Everything
below the sources layer sees generic contests, statuses and areas.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from escrutinio.countries.peru import AREA_LABELS
from escrutinio.domain import ActaStatus, Candidate, Contest, ContestKind
from escrutinio.verify.reconcile import Reference

PERU_2021_RUNOFF: Final = Contest(
    id="pe-2021-presidencial-2v",
    name="Perú 2021, elección presidencial, segunda vuelta",
    kind=ContestKind.RUNOFF,
    country="PE",
    date="2021-06-06",
    candidates=(
        Candidate("castillo", "José Pedro Castillo Terrones",
                  "Partido Político Nacional Perú Libre", "00000014"),
        Candidate("fujimori", "Keiko Sofía Fujimori Higuchi", "Fuerza Popular", "00000007"),
    ),
)

#: 2021 first round: the column suffixes of the ronderos.pe per-acta file (``v1_<code>``).
_FIRST_ROUND_2021: Final = [
    ("perulibre", "José Pedro Castillo Terrones", "Partido Político Nacional Perú Libre"),
    ("fp", "Keiko Sofía Fujimori Higuchi", "Fuerza Popular"),
    ("rp", "Rafael López Aliaga Cazorla", "Renovación Popular"),
    ("avpais", "Hernando de Soto Polar", "Avanza País - Partido de Integración Social"),
    ("jpp", "Verónika Mendoza Frisch", "Juntos por el Perú"),
    ("pp", "Daniel Urresti Elera", "Podemos Perú"),
    ("vn", "George Forsyth Sommer", "Victoria Nacional"),
    ("ap", "Yonhy Lescano Ancieta", "Acción Popular"),
    ("app", "César Acuña Peralta", "Alianza para el Progreso"),
    ("morado", "Julio Guzmán Cáceres", "Partido Morado"),
    ("pnp", "Ollanta Humala Tasso", "Partido Nacionalista Peruano"),
    ("ppc", "Alberto Beingolea Delgado", "Partido Popular Cristiano"),
    ("dd", "Andrés Alcántara Paredes", "Democracia Directa"),
    ("upp", "José Vega Antonio", "Unión por el Perú"),
    ("runa", "Ciro Gálvez Herrera", "Renacimiento Unido Nacional"),
    ("sp", "Daniel Salaverry Villa", "Partido Democrático Somos Perú"),
    ("fa", "Marco Arana Zegarra", "Frente Amplio por Justicia, Vida y Libertad"),
    ("pps", "Rafael Santos Normand", "Partido Político Perú Patria Segura"),
]

PERU_2021_FIRST_ROUND: Final = Contest(
    id="pe-2021-presidencial-1v",
    name="Perú 2021, elección presidencial, primera vuelta",
    kind=ContestKind.FIRST_ROUND,
    country="PE",
    date="2021-04-11",
    majority_threshold=0.5,
    candidates=tuple(Candidate(code, name, party) for code, name, party in _FIRST_ROUND_2021),
)

__all__ = ["AREA_LABELS", "CONTESTS", "ONPE_OBSERVACION", "PERU_2021_FIRST_ROUND",
           "PERU_2021_PROCLAMATION", "PERU_2021_RUNOFF", "PERU_2026_FIRST_ROUND",
           "geography_from_names", "status_exprs", "ubigeo_area_exprs"]

CONTESTS: Final = {c.id: c for c in (PERU_2021_RUNOFF, PERU_2021_FIRST_ROUND)}


#: ONPE ``observacion`` value -> (status, observation code). Observed actas that ONPE
#: marks "PARA ENVÍO AL JEE" are at the JEE (ONPE counts them in TOTAL_JEE).
ONPE_OBSERVACION: Final[dict[str, tuple[ActaStatus, str | None]]] = {
    "CONTABILIZADAS NORMALES": (ActaStatus.COUNTED, None),
    "ACTA ELECTORAL ANULADA": (ActaStatus.ANNULLED, None),
    "MESA NO INSTALADA": (ActaStatus.NOT_INSTALLED, None),
    "ACTA ELECTORAL PENDIENTE": (ActaStatus.PENDING, None),
    "EN PROCESO DE DIGITACION": (ActaStatus.PENDING, "en_digitacion"),
    "ERROR MATERIAL": (ActaStatus.JEE, "error_material"),
    "VOTOS IMPUGNADOS": (ActaStatus.JEE, "votos_impugnados"),
    "ILEGIBILIDAD": (ActaStatus.JEE, "ilegibilidad"),
    "INCOMPLETA": (ActaStatus.JEE, "incompleta"),
    "ACTA SIN FIRMAS": (ActaStatus.JEE, "sin_firmas"),
    "OTRAS OBSERVACIONES": (ActaStatus.JEE, "otras_observaciones"),
    "SOLICITUD DE NULIDAD": (ActaStatus.JEE, "solicitud_nulidad"),
    "ACTA EXTRAVIADA": (ActaStatus.LOST, "extraviada"),
    "ACTA SINIESTRADA": (ActaStatus.DESTROYED, "siniestrada"),
}


def status_exprs(observacion: str, detalle: str | None) -> list[pl.Expr]:
    """Polars expressions mapping ONPE's state columns to status/observation/resolved."""
    obs = pl.col(observacion).str.strip_chars().str.to_uppercase()
    status = obs.replace_strict(
        {k: v[0].value for k, v in ONPE_OBSERVACION.items()}, default=None,
        return_dtype=pl.String,
    )
    # an unknown ONPE state is kept verbatim so the rejected row says what it was
    status = pl.when(obs.is_null()).then(None).otherwise(
        pl.coalesce(status, pl.lit("?") + obs)).alias("status")
    observation = obs.replace_strict(
        {k: v[1] for k, v in ONPE_OBSERVACION.items()}, default=None, return_dtype=pl.String
    ).alias("observation")
    if detalle is None:
        resolved = pl.lit(False).alias("resolved")
    else:
        resolved = (pl.col(detalle).fill_null("").str.to_uppercase()
                    .str.contains("RESUELTA")).alias("resolved")
    return [status, observation, resolved]


def ubigeo_area_exprs(ubigeo: str) -> list[pl.Expr]:
    """RENIEC ubigeo -> area codes (department/continent, province/country, district/city)."""
    u = pl.col(ubigeo).str.strip_chars().str.zfill(6)
    return [
        (u.str.slice(0, 2) + pl.lit("0000")).alias("area1_code"),
        (u.str.slice(0, 4) + pl.lit("00")).alias("area2_code"),
        u.alias("area3_code"),
        u.str.starts_with("9").alias("abroad"),
    ]


def geography_from_names(
    df: pl.DataFrame, ubigeo: str, dep: str, prov: str, dist: str, *,
    with_areas: bool = False,
) -> pl.DataFrame:
    """Build geography rows (code, name, level, parent, abroad, alt_code) from the place
    names that ONPE files carry beside each ubigeo. ``with_areas``: ``df`` already holds
    the columns of ``ubigeo_area_exprs(ubigeo)`` (the parsers add them), which are then
    used instead of being derived from the ubigeo again."""
    areas = ([pl.col(e.meta.output_name()) for e in ubigeo_area_exprs(ubigeo)]
             if with_areas else ubigeo_area_exprs(ubigeo))
    base = df.select(*areas, pl.col(dep).alias("n1"),
                     pl.col(prov).alias("n2"), pl.col(dist).alias("n3")).filter(
        pl.col("area3_code").is_not_null() & (pl.col("area3_code") != "00000N")
    ).unique(subset=["area3_code"])
    parts = [
        base.select(pl.col("area1_code").alias("code"), pl.col("n1").alias("name"),
                    pl.lit("area1").alias("level"), pl.lit(None, pl.String).alias("parent"),
                    "abroad"),
        base.select(pl.col("area2_code").alias("code"), pl.col("n2").alias("name"),
                    pl.lit("area2").alias("level"), pl.col("area1_code").alias("parent"),
                    "abroad"),
        base.select(pl.col("area3_code").alias("code"), pl.col("n3").alias("name"),
                    pl.lit("area3").alias("level"), pl.col("area2_code").alias("parent"),
                    "abroad"),
    ]
    return (pl.concat(parts).unique(subset=["code", "level"], keep="first")
            .with_columns(pl.lit(None, pl.String).alias("alt_code")).sort("level", "code"))


# --- 2026 first round (appended) -----------------------------------------------------

#: 2026 first round: (code, name as ONPE publishes it, party). Codes are short ASCII slugs
#: of the surname(s), fixed here so that they stay stable across sources; the names are
#: ONPE's own spelling (``nombreCandidato`` in its 2026 results backend), which is what
#: the republished files carry. Parties as in antoniocuga/2026-peru-elecciones.
_FIRST_ROUND_2026: Final = [
    ("fujimori", "KEIKO SOFIA FUJIMORI HIGUCHI", "Fuerza Popular"),
    ("sanchez", "ROBERTO HELBERT SANCHEZ PALOMINO", "Juntos por el Perú"),
    ("lopez_aliaga", "RAFAEL BERNARDO LÓPEZ ALIAGA CAZORLA", "Renovación Popular"),
    ("nieto", "JORGE NIETO MONTESINOS", "Partido del Buen Gobierno"),
    ("belmont", "RICARDO PABLO BELMONT CASSINELLI", "Partido Obras"),
    ("alvarez", "CARLOS GONSALO ALVAREZ LOAYZA", "País para Todos"),
    ("lopez_chau", "PABLO ALFONSO LOPEZ CHAU NAVA", "Ahora Nación"),
    ("perez_tello", "MARIA SOLEDAD PEREZ TELLO", "Primero la Gente"),
    ("espa", "ALFONSO CARLOS ESPA Y GARCES-ALVEAR", "Partido Sí Creo"),
    ("olivera", "LUIS FERNANDO OLIVERA VEGA", "Frente de la Esperanza 2021"),
    ("luna", "JOSE LEON LUNA GALVEZ", "Podemos Perú"),
    ("lescano", "YONHY LESCANO ANCIETA", "Cooperación Popular"),
    ("acuna", "CESAR ACUÑA PERALTA", "Alianza para el Progreso"),
    ("valderrama", "PITTER ENRIQUE VALDERRAMA PEÑA", "Partido Aprista Peruano"),
    ("forsyth", "GEORGE PATRICK FORSYTH SOMMER", "Somos Perú"),
    ("caller", "HERBERT CALLER GUTIERREZ", "Partido Patriótico del Perú"),
    ("vizcarra", "MARIO ENRIQUE VIZCARRA CORNEJO", "Perú Primero"),
    ("atencio", "RONALD DARWIN ATENCIO SOTOMAYOR", "Alianza Venceremos"),
    ("fernandez", "ROSARIO DEL PILAR FERNANDEZ BAZAN", "Un Camino Diferente"),
    ("carrasco", "CHARLIE CARRASCO SALAZAR", "Partido Demócrata Unido Perú"),
    ("cerron", "VLADIMIR ROY CERRON ROJAS", "Perú Libre"),
    ("guevara", "MESIAS ANTONIO GUEVARA AMASIFUEN", "Partido Morado"),
    ("chiabra", "ROBERTO ENRIQUE CHIABRA LEON", "Alianza Unidad Nacional"),
    ("jaimes", "PAUL DAVIS JAIMES BLANCO", "Progresemos"),
    ("grozo", "WOLFGANG MARIO GROZO COSTA", "Integridad Democrática"),
    ("gonzales", "ALEX GONZALES CASTILLO", "Partido Demócrata Verde"),
    ("belaunde", "RAFAEL JORGE BELAUNDE LLOSA", "Libertad Popular"),
    ("williams", "JOSE DANIEL WILLIAMS ZAPATA", "Avanza País"),
    ("diez_canseco", "FRANCISCO ERNESTO DIEZ-CANSECO TÁVARA", "Perú Acción"),
    ("molinelli", "FIORELLA GIANNINA MOLINELLI ARISTONDO", "Alianza Fuerza y Libertad"),
    ("paz_de_la_barra", "ALVARO GONZALO PAZ DE LA BARRA FREIGEIRO", "Partido Fe en el Perú"),
    ("masse", "ARMANDO JOAQUIN MASSE FERNANDEZ", "Partido Democrático Federal"),
    ("ortiz", "ANTONIO ORTIZ VILLANO", "Salvemos al Perú"),
    ("chirinos", "WALTER GILMER CHIRINOS PURIZAGA",
     "Partido Regionalista de Integración Nacional - PRIN"),
    ("becerra", "NAPOLEON BECERRA GARCIA", "Partido de los Trabajadores y Emprendedores"),
    ("jaico", "CARLOS ERNESTO JAICO CARRANZA", "Partido Perú Moderno"),
]

PERU_2026_FIRST_ROUND: Final = Contest(
    id="pe-2026-presidencial-1v",
    name="Perú 2026, elección presidencial, primera vuelta",
    kind=ContestKind.FIRST_ROUND,
    country="PE",
    date="2026-04-12",
    majority_threshold=0.5,
    candidates=tuple(Candidate(code, name, party) for code, name, party in _FIRST_ROUND_2026),
)

CONTESTS[PERU_2026_FIRST_ROUND.id] = PERU_2026_FIRST_ROUND


#: The official result the final file is reconciled against (see docs/count.md).
PERU_2021_PROCLAMATION: Final = Reference(
    name="JNE proclamation, 19 July 2021",
    votes={"castillo": 8_836_380, "fujimori": 8_792_117},
    source="Jurado Nacional de Elecciones, proclamación de resultados de la segunda elección "
           "presidencial 2021 (margin 44,263)",
)
