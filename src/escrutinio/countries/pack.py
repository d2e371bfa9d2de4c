"""What a country pack is: everything one country adds to the generic toolkit.

A :class:`CountryPack` holds, for one country (or for none: :data:`GENERIC`):

* its **vocabulary** (:class:`Vocabulary`): the electoral authority, the electoral court
  that resolves observed actas (Peru's JEE, Chile's TRICEL), what a polling station is
  called, and the names of the acta states that depend on the court;
* the names of its three nested **levels** (area1 ⊃ area2 ⊃ area3);
* its **time zone** (IANA name), for times written without one and for display;
* its **default rates** where the country has measured ones (Peru: what the JEE did to
  the 2021 runoff's observed actas), and the **stated generic defaults** otherwise;
* the **datasets** of ``escrutinio datasets`` that belong to it, its **maps** and the
  modules of its **source parsers** (named, imported only when used).

Presenters and analyses never hard-wire a country's word: they ask
:func:`escrutinio.countries.pack_for` for the contest's pack and read it from there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from escrutinio.domain import STATUS_LABELS, ActaStatus

Pair = tuple[str, str]  # (Spanish, English)

_JEE: Final = re.compile(r"\bJEE\b(?: \(Jurado Electoral Especial\))?")
_ONPE: Final = re.compile(r"\bONPE\b")
#: "mesa(s)" not already followed by another country's qualifier
_MESA: Final = re.compile(r"\b[Mm]esas?\b(?! receptoras?\b| de votación\b)")


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The words a country uses, each as a (Spanish, English) pair."""

    country: Pair  # the country's name ("" for the generic pack)
    authority: Pair  # who publishes the results (ONPE, SERVEL...)
    court: Pair  # short name of the electoral court (JEE, TRICEL...), fits a column header
    court_long: Pair  # its full name
    polling_station: Pair  # singular (mesa, mesa receptora, polling station)
    polling_stations: Pair  # plural
    #: acta-state names that differ from the generic ones (``domain.STATUS_LABELS``)
    status_overrides: Mapping[ActaStatus, Pair] = field(default_factory=dict)
    #: what the count counts, one per polling station, plural (the generic format's
    #: ``actas_*`` columns): Peru "actas", Chile "mesas"; "actas" when unknown
    actas: Pair = ("actas", "actas")

    def status_label(self, status: ActaStatus | str, lang: str = "es") -> str:
        st = ActaStatus(status)
        es, en = self.status_overrides.get(st, STATUS_LABELS[st])
        return es if lang == "es" else en

    @property
    def is_reference(self) -> bool:
        """Peru's words are the analyses' own: nothing to translate."""
        return self.court == ("JEE", "JEE") and self.authority == ("ONPE", "ONPE")

    def localize(self, text: str, lang: str = "es") -> str:
        """Prose written with Peru's words (the analyses' reference vocabulary: "JEE",
        "ONPE", "mesa(s)") in this country's words. Identity for Peru."""
        if self.is_reference:
            return text
        i = 0 if lang == "es" else 1
        subs = ((_JEE, self.court[i]), (_ONPE, self.authority[i]))
        for rx, word in subs:
            text = rx.sub(word, text)
        one, many = self.polling_station[i], self.polling_stations[i]
        if one in ("mesa", "Mesa"):
            return text

        def station(m: re.Match[str]) -> str:
            word = many if m.group(0).lower().endswith("s") else one
            return word[:1].upper() + word[1:] if m.group(0)[0] == "M" else word

        return _MESA.sub(station, text)

    def with_court(self, short: Pair, long: Pair | None = None) -> Vocabulary:
        """The same vocabulary with another court name (a sidecar's ``court_name``);
        the state 'at the court' follows it."""
        return replace(self, court=short, court_long=long or short, status_overrides={
            **self.status_overrides,
            # a name's article is unknown in Spanish ("el Tribunal", "la Justicia"): "en: X"
            ActaStatus.JEE: (f"en {short[0]}", f"at the {short[1]}"),
        })


@dataclass(frozen=True, slots=True)
class StatedRate:
    """A default rate and where it comes from, in both languages."""

    value: float
    source: Pair


@dataclass(frozen=True, slots=True)
class CourtOutcomes:
    """What becomes of an acta sent to the electoral court, as probabilities (the
    defaults of :class:`escrutinio.projection.model.JeeOutcomes`)."""

    p_annulled: float
    p_corrected: float
    correction_sd: float  # votes, per candidate, of a corrected acta
    rate_prior_n: float  # weight in actas of the annulment rate
    source: Pair
    #: how far the sheets held for review may lean from their unit's counted ones (SD of
    #: the margin's share); None: not measured (the projection then gives a unit's part
    #: under review the unit's own drift term)
    lean_margin_sd: float | None = None


@dataclass(frozen=True, slots=True)
class CountryPack:
    """Everything one country adds; see the module docstring."""

    code: str  # ISO 3166-1 alpha-2, "" for the generic pack
    vocabulary: Vocabulary
    area_labels: Mapping[str, Mapping[str, str]]  # {"area1": {"es": ..., "en": ...}, ...}
    timezone: str  # IANA name; "UTC" when the country is unknown
    #: share of actas with a discrepancy assumed by ``audit plan`` when none is given
    audit_error_rate: StatedRate
    court_outcomes: CourtOutcomes
    datasets: tuple[str, ...] = ()  # names in escrutinio.datasets' registry
    maps: tuple[str, ...] = ()  # dataset-relative paths of its boundary files
    parsers: tuple[str, ...] = ()  # modules that read the authority's own formats
    contests: tuple[str, ...] = ()  # ids of the contests the pack defines
    #: the authority's subnational tables leave abroad out (ONPE's department / province /
    #: district tables): what the national row holds beyond them is abroad. When False,
    #: such a remainder is abroad only if the units missing from a cut are abroad ones
    unit_tables_exclude_abroad: bool = False

    @property
    def is_generic(self) -> bool:
        return not self.code

    def word(self, key: str, lang: str = "es") -> str:
        """One vocabulary word by field name (``court``, ``polling_stations``...)."""
        es, en = getattr(self.vocabulary, key)
        return es if lang == "es" else en


#: the generic words, for a country no pack knows
GENERIC_VOCABULARY: Final = Vocabulary(
    country=("", ""),
    authority=("la autoridad electoral", "the electoral authority"),
    court=("tribunal electoral", "electoral court"),
    court_long=("tribunal electoral", "electoral court"),
    polling_station=("mesa de votación", "polling station"),
    polling_stations=("mesas de votación", "polling stations"),
    status_overrides={ActaStatus.JEE: ("en el tribunal electoral", "at the electoral court"),
                      ActaStatus.NOT_INSTALLED: ("mesa de votación no instalada",
                                                 "polling station not installed")},
)

#: ``audit plan``'s assumption when the country has measured none
GENERIC_AUDIT_ERROR_RATE: Final = StatedRate(0.003, (
    "supuesto genérico: 0,3% de las actas con alguna discrepancia (indique la tasa de su "
    "país con --error-rate)",
    "generic assumption: 0.3% of actas with some discrepancy (give your country's rate "
    "with --error-rate)"))

#: what ``contested`` assumes of actas at the court when the country has measured nothing:
#: nothing — a flat prior over annulled / corrected / kept (Dirichlet 1, 1, 1), which the
#: actas the court resolves during the count then inform (``contested --history``)
GENERIC_COURT_OUTCOMES: Final = CourtOutcomes(
    p_annulled=1 / 3, p_corrected=1 / 3, correction_sd=30.0, rate_prior_n=3.0,
    source=("desconocido: no hay tasas medidas del tribunal electoral de este país; prior "
            "plano (anulada, corregida o sin cambios, igual de posibles)",
            "unknown: no measured rates of this country's electoral court; flat prior "
            "(annulled, corrected or unchanged, equally likely)"))

GENERIC_AREA_LABELS_PACK: Final = {
    "area1": {"es": "nivel 1", "en": "level 1"},
    "area2": {"es": "nivel 2", "en": "level 2"},
    "area3": {"es": "nivel 3", "en": "level 3"},
}

GENERIC: Final = CountryPack(
    code="",
    vocabulary=GENERIC_VOCABULARY,
    area_labels=GENERIC_AREA_LABELS_PACK,
    timezone="UTC",
    audit_error_rate=GENERIC_AUDIT_ERROR_RATE,
    court_outcomes=GENERIC_COURT_OUTCOMES,
)
