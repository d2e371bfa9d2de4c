"""Frozen, typed results of a projection (serialise with ``provenance.to_jsonable``).

Definitions
-----------
* **Interval at level q** — the central interval between the (1 − q)/2 and (1 + q)/2
  quantiles of the simulated final values. Intervals of one projection come from the
  same simulations, so they are nested (50% ⊂ 80% ⊂ 90% ⊂ 95% ⊂ 99%), and every
  simulation keeps each candidate at or above its counted votes, so no interval
  excludes what is already counted.
* **Margin** — final votes of ``leader`` minus final votes of ``trailer`` (the leader is
  the candidate with the larger projected median; positive = the leader wins).
* **P(win)** — share of simulations in which the candidate has the most votes (ties
  split); for first rounds also P(top two) and P(someone passes the majority threshold).
* **Call rule** (declared in advance, :data:`DEFAULT_CALL_RULE`): call a winner only if
  P(win) ≥ ``min_probability`` **and** the ``interval_level`` interval of the margin
  excludes 0; otherwise "too close to call" (*empate técnico / demasiado ajustado*).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from escrutinio.count import Hurdle
from escrutinio.provenance import Provenance

#: interval levels reported by default (the 99% one is the call rule's)
LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class Interval:
    level: float
    lower: float
    upper: float

    def contains(self, x: float) -> bool:
        return self.lower <= x <= self.upper


@dataclass(frozen=True, slots=True)
class CallRule:
    """When a result may be called. Declared before the count, never tuned during it."""

    min_probability: float = 0.99
    interval_level: float = 0.99

    @property
    def description_es(self) -> str:
        return (f"Se proyecta un ganador solo si su probabilidad es ≥ "
                f"{100 * self.min_probability:g}% y el intervalo de "
                f"{100 * self.interval_level:g}% del margen excluye el empate; si no, "
                "«demasiado ajustado para proyectar».")

    @property
    def description_en(self) -> str:
        return (f"A winner is projected only if their probability is ≥ "
                f"{100 * self.min_probability:g}% and the {100 * self.interval_level:g}% "
                "interval of the margin excludes a tie; otherwise \"too close to call\".")


DEFAULT_CALL_RULE = CallRule()


class CallStatus(StrEnum):
    CALLED = "called"
    TOO_CLOSE = "too_close"  # demasiado ajustado / empate técnico


@dataclass(frozen=True, slots=True)
class Call:
    status: CallStatus
    winner: str | None  # candidate code when called
    probability: float  # P(win) of the projected leader
    rule: CallRule
    label_es: str
    label_en: str


@dataclass(frozen=True, slots=True)
class CandidateProjection:
    code: str
    name: str
    counted: int  # votes already in the count
    expected_remaining: float  # mean of votes still to come (all components)
    mean: float
    median: float
    intervals: tuple[Interval, ...]
    p_win: float
    p_top_two: float | None = None  # first rounds


@dataclass(frozen=True, slots=True)
class MarginProjection:
    """Final margin between two candidates (leader − trailer)."""

    leader: str
    trailer: str
    counted_margin: int  # leader − trailer in the count so far (may be negative)
    mean: float
    median: float
    intervals: tuple[Interval, ...]
    p_leader_ahead: float  # P(final margin > 0), ties split
    call: Call

    def interval(self, level: float) -> Interval:
        for iv in self.intervals:
            if abs(iv.level - level) < 1e-9:
                return iv
        raise KeyError(level)


class Component(StrEnum):
    PENDING_HOME = "pending_home"  # pendientes en el país
    JEE = "jee"  # observadas / en el JEE
    ABROAD = "abroad"  # pendientes en el extranjero
    REMAINDER = "remainder"  # a national series: all that is still to count, one block
    #: per-unit cuts: what the national row holds beyond the listed units, when nothing
    #: says it is abroad (missing units of unknown kind): modelled apart like abroad
    OUTSIDE_UNITS = "outside_units"  # fuera de las unidades listadas
    #: the votes already counted may still be corrected, as this count has corrected
    #: itself before (cuts that took votes away: drift.fit_corrections)
    REVISION = "revision"  # correcciones de lo ya contado


COMPONENT_LABELS: dict[Component, tuple[str, str]] = {
    Component.PENDING_HOME: ("actas pendientes en el país", "pending actas at home"),
    Component.JEE: ("actas observadas / en el JEE", "observed actas / at the JEE"),
    Component.ABROAD: ("actas pendientes en el extranjero", "pending actas abroad"),
    Component.REMAINDER: ("bloques por contar (serie nacional, sin actas)",
                          "blocks still to count (national series, no actas)"),
    Component.OUTSIDE_UNITS: ("actas fuera de las unidades listadas",
                              "actas not in the listed units"),
    Component.REVISION: ("correcciones de lo ya contado (como las que este conteo ya tuvo)",
                         "corrections of votes already counted (like those this count "
                         "has had)"),
}

#: per-unit projections: the items are units, never actas; ``{w}`` is the country's word
#: for what the units hold (actas, mesas...)
UNIT_COMPONENT_LABELS: dict[Component, tuple[str, str]] = {
    Component.PENDING_HOME: ("unidades con {w} pendientes en el país",
                             "units with {w} pending at home"),
    Component.JEE: ("unidades con {w} observadas / en el JEE",
                    "units with {w} observed / at the JEE"),
    Component.ABROAD: ("unidades con {w} pendientes en el extranjero",
                       "units with {w} pending abroad"),
    Component.REMAINDER: COMPONENT_LABELS[Component.REMAINDER],
    Component.OUTSIDE_UNITS: ("fuera de las unidades listadas (el resto de la fila "
                              "nacional, como una unidad)",
                              "not in the listed units (the rest of the national row, as "
                              "one unit)"),
    Component.REVISION: COMPONENT_LABELS[Component.REVISION],
}


@dataclass(frozen=True, slots=True)
class ComponentChange:
    """Expected votes still to come from one component, and their effect on the margin."""

    component: Component
    label_es: str
    label_en: str
    n_items: int  # actas (or units with actas still to come)
    expected_votes: dict[str, float]
    expected_margin_change: float  # for the main margin (leader − trailer)
    sd_margin_change: float
    #: per-unit projections (``n_items`` are units): the actas still to come in them when
    #: the source gives acta counts, else None; per-acta projections: None
    n_actas: int | None = None
    #: the country's word for the actas of ``n_actas`` (Spanish, English)
    actas_word: tuple[str, str] = ("actas", "actas")

    def count_text(self, lang: str = "es") -> str:
        """``n_items``, plus the actas they hold when the items are units and it is known
        ("16 (30,294 mesas)"); for corrections, how many the count has shown."""
        if self.component is Component.REVISION:
            return ("correcciones vistas" if lang == "es" else "corrections seen") \
                + f": {self.n_items:,}"
        if self.n_actas is None:
            return f"{self.n_items:,}"
        return f"{self.n_items:,} ({self.n_actas:,} {self.actas_word[0 if lang == 'es' else 1]})"


@dataclass(frozen=True, slots=True)
class ShockScales:
    """The error scales used (standard deviations on the log-odds scale)."""

    national_share: float
    national_turnout: float
    abroad_share: float
    area1_share: float  # between-area1 SD of swing among counted (before shrinkage)
    area2_share: float
    area3_share: float
    acta_share: float
    counted_fraction: float  # share of expected valid votes already counted
    inflation: float  # multiplier applied to the national scale for a young count
    notes: str = ""


@dataclass(frozen=True, slots=True)
class Projection:
    contest_id: str
    kind: str  # runoff | first_round
    basis: str  # actas | units
    snapshot_id: str
    as_of: datetime | None
    n_simulations: int
    candidates: tuple[CandidateProjection, ...]
    margin: MarginProjection  # main race: projected first vs second
    races: tuple[MarginProjection, ...]  # first rounds: 1st v 2nd and 2nd v 3rd
    components: tuple[ComponentChange, ...]
    hurdle: Hurdle
    p_outright: float | None  # first rounds: P(someone passes the majority threshold)
    shocks: ShockScales
    call: Call
    diagnostics: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=lambda: Provenance((), "projection"))

    def candidate(self, code: str) -> CandidateProjection:
        for c in self.candidates:
            if c.code == code:
                return c
        raise KeyError(code)

    def p_win(self, code: str) -> float:
        return self.candidate(code).p_win
