"""Domain model: contests, candidates, actas and their status lifecycle, geography.

Nothing here knows a file format or a country. Sources (``escrutinio.sources``) turn
outside formats into these types and into the canonical frames described below.

Canonical frames
----------------
Analyses work on whole columns (polars), never on Python objects per acta. Two kinds
of snapshot exist, each with a canonical column set:

* **acta snapshot** (``SnapshotKind.ACTAS``) — one row per acta (tally sheet, *acta
  electoral*), columns :data:`ACTA_COLUMNS` plus one ``Int64`` column per candidate,
  named ``v_<candidate code>``.
* **unit snapshot** (``SnapshotKind.UNITS``) — one row per reporting unit (district,
  province, department, nation...) with counts of actas by status, columns
  :data:`UNIT_COLUMNS` plus the same candidate columns — and a last :data:`VOTE_TYPE`
  column when the source publishes a unit in one row per vote type.

Geography is generic: three nested areas (``area1`` ⊃ ``area2`` ⊃ ``area3``) and an
``abroad`` flag. In Peru, at home area1/2/3 = departamento / provincia / distrito; abroad
they are continente / país / ciudad; codes are RENIEC ubigeos (6 digits; ``9xxxxx``
abroad). Chile would use región / comuna / circunscripción, Mexico estado / distrito /
sección, and so on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import polars as pl


class ActaStatus(StrEnum):
    """Where an acta is in its lifecycle (*estado del acta*).

    pending -> counted is the normal path (*pendiente / por procesar* -> *contabilizada*).
    An observed acta (*observada*) is sent to the JEE (*enviada al JEE*) and resolved
    as counted (``resolved=True``) or annulled (*anulada*). A mesa that never opened has
    no acta (*mesa no instalada*); an acta can be lost (*extraviada*) or destroyed
    (*siniestrada*).
    """

    PENDING = "pending"  # pendiente / por procesar / en digitación
    COUNTED = "counted"  # contabilizada (normal, or resuelta by the JEE)
    OBSERVED = "observed"  # observada, not yet sent to the JEE
    JEE = "jee"  # para envío al JEE / en el JEE
    ANNULLED = "annulled"  # contabilizada anulada
    NOT_INSTALLED = "not_installed"  # mesa no instalada
    LOST = "lost"  # extraviada
    DESTROYED = "destroyed"  # siniestrada


#: Statuses whose acta is in the published totals: ONPE's "actas contabilizadas"
#: (CONTABILIZA = CONT_NORMAL + CONT_ANULADA + MESAS_NO_INST in its resumen tables).
CONTABILIZADA: Final = frozenset(
    {ActaStatus.COUNTED, ActaStatus.ANNULLED, ActaStatus.NOT_INSTALLED}
)
#: Statuses that were received and digitised: ONPE's "actas procesadas"
#: (ACTAS_PROCESADAS = CONTABILIZA + TOTAL_JEE).
PROCESADA: Final = CONTABILIZADA | {
    ActaStatus.OBSERVED,
    ActaStatus.JEE,
    ActaStatus.LOST,
    ActaStatus.DESTROYED,
}
#: Statuses at or bound for the electoral court (the "JEE queue").
AT_JEE: Final = frozenset(
    {ActaStatus.OBSERVED, ActaStatus.JEE, ActaStatus.LOST, ActaStatus.DESTROYED}
)
#: Statuses that are final: the acta will not change again except by a correction.
FINAL: Final = CONTABILIZADA

#: Allowed transitions between two snapshots. Anything else (for instance a counted acta
#: going back to pending) is reported by the snapshot diff as an irregular transition.
ALLOWED_TRANSITIONS: Final[dict[ActaStatus, frozenset[ActaStatus]]] = {
    ActaStatus.PENDING: frozenset(ActaStatus),
    ActaStatus.OBSERVED: frozenset(
        {ActaStatus.OBSERVED, ActaStatus.JEE, ActaStatus.COUNTED, ActaStatus.ANNULLED,
         ActaStatus.LOST, ActaStatus.DESTROYED}
    ),
    ActaStatus.JEE: frozenset(
        {ActaStatus.JEE, ActaStatus.COUNTED, ActaStatus.ANNULLED, ActaStatus.LOST,
         ActaStatus.DESTROYED}
    ),
    ActaStatus.LOST: frozenset({ActaStatus.LOST, ActaStatus.COUNTED, ActaStatus.ANNULLED,
                                ActaStatus.JEE}),
    ActaStatus.DESTROYED: frozenset({ActaStatus.DESTROYED, ActaStatus.COUNTED,
                                     ActaStatus.ANNULLED, ActaStatus.JEE}),
    ActaStatus.COUNTED: frozenset({ActaStatus.COUNTED}),
    ActaStatus.ANNULLED: frozenset({ActaStatus.ANNULLED}),
    ActaStatus.NOT_INSTALLED: frozenset({ActaStatus.NOT_INSTALLED}),
}

STATUS_LABELS: Final[dict[ActaStatus, tuple[str, str]]] = {
    ActaStatus.PENDING: ("pendiente", "pending"),
    ActaStatus.COUNTED: ("contabilizada", "counted"),
    ActaStatus.OBSERVED: ("observada", "observed"),
    ActaStatus.JEE: ("en el JEE", "at the JEE"),
    ActaStatus.ANNULLED: ("anulada", "annulled"),
    ActaStatus.NOT_INSTALLED: ("mesa no instalada", "polling station not installed"),
    ActaStatus.LOST: ("extraviada", "lost"),
    ActaStatus.DESTROYED: ("siniestrada", "destroyed"),
}


class ContestKind(StrEnum):
    """Runoff (*segunda vuelta*) or first round (*primera vuelta*)."""

    RUNOFF = "runoff"
    FIRST_ROUND = "first_round"


class SnapshotKind(StrEnum):
    ACTAS = "actas"  # one row per acta
    UNITS = "units"  # one row per reporting unit, with counts of actas by status


class Level(StrEnum):
    """Aggregation levels, generic names; labels per country come from the Geography."""

    NATIONAL = "national"
    AREA1 = "area1"
    AREA2 = "area2"
    AREA3 = "area3"


#: what the three nested areas are called when nothing says otherwise; a country's source
#: module (``escrutinio.sources.labels``) or a generic file's sidecar (``area_labels``)
#: gives the real names, e.g. departamento / provincia / distrito
GENERIC_AREA_LABELS: Final[dict[str, tuple[str, str]]] = {
    "area1": ("nivel 1", "level 1"),
    "area2": ("nivel 2", "level 2"),
    "area3": ("nivel 3", "level 3"),
}


def level_label(labels: Mapping[str, tuple[str, str]], level: Level | str, lang: str) -> str:
    """The singular name of ``level`` in ``lang`` ('es' or 'en'); 'nacional' / 'national'
    for the whole country."""
    key = level.value if isinstance(level, Level) else str(level)
    es, en = ("nacional", "national") if key == Level.NATIONAL.value else \
        labels.get(key, GENERIC_AREA_LABELS.get(key, (key, key)))
    return es if lang == "es" else en


@dataclass(frozen=True, slots=True)
class Candidate:
    """A candidate (or list/party) on the ballot. ``code`` is short, stable, ASCII."""

    code: str
    name: str
    party: str = ""
    authority_code: str = ""  # the authority's own code (ONPE: C_CODI_AGRUPOL)

    @property
    def column(self) -> str:
        return f"v_{self.code}"


def short_name(name: str) -> str:
    """A candidate's short label for charts and narrow columns, the one rule every
    presenter uses: the paternal surname under the Spanish naming convention ("José Pedro
    Castillo Terrones" -> "Castillo", "José Antonio Kast Rist" -> "Kast"), else the last
    word."""
    words = name.split()
    if len(words) >= 3:
        return words[-2]
    return words[-1] if words else name


@dataclass(frozen=True, slots=True)
class Contest:
    """An election contest: a runoff or first round with any number of candidates."""

    id: str
    name: str
    kind: ContestKind
    country: str  # ISO 3166-1 alpha-2
    date: str  # ISO date of the vote
    candidates: tuple[Candidate, ...]
    #: share of valid votes needed to win outright (first rounds); None for runoffs
    majority_threshold: float | None = None

    def __post_init__(self) -> None:
        codes = [c.code for c in self.candidates]
        if len(codes) != len(set(codes)):
            raise ValueError(f"duplicate candidate codes in contest {self.id}: {codes}")
        if self.kind is ContestKind.RUNOFF and len(codes) != 2:
            raise ValueError(f"a runoff has two candidates, {self.id} has {len(codes)}")

    @property
    def candidate_columns(self) -> list[str]:
        return [c.column for c in self.candidates]

    def candidate(self, code: str) -> Candidate:
        for c in self.candidates:
            if c.code == code:
                return c
        raise KeyError(code)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind.value,
            "country": self.country,
            "date": self.date,
            "majority_threshold": self.majority_threshold,
            "candidates": [
                {"code": c.code, "name": c.name, "party": c.party,
                 "authority_code": c.authority_code}
                for c in self.candidates
            ],
        }

    @staticmethod
    def from_dict(d: dict[str, object]) -> Contest:
        cands = d["candidates"]
        assert isinstance(cands, list)
        return Contest(
            id=str(d["id"]),
            name=str(d["name"]),
            kind=ContestKind(str(d["kind"])),
            country=str(d["country"]),
            date=str(d["date"]),
            majority_threshold=(
                None if d.get("majority_threshold") is None
                else float(d["majority_threshold"])  # type: ignore[arg-type]
            ),
            candidates=tuple(
                Candidate(code=c["code"], name=c["name"], party=c.get("party", ""),
                          authority_code=c.get("authority_code", ""))
                for c in cands
            ),
        )


# --- canonical columns -------------------------------------------------------------

#: Columns of an acta snapshot frame, with their polars dtypes (candidate columns follow).
ACTA_COLUMNS: Final[dict[str, pl.DataType]] = {
    "acta_id": pl.String(),  # canonical ID string of the acta (Peru: 6-digit mesa)
    "area1_code": pl.String(),
    "area2_code": pl.String(),
    "area3_code": pl.String(),
    "abroad": pl.Boolean(),
    "polling_place": pl.String(),  # local de votación
    "status": pl.String(),  # ActaStatus value
    "observation": pl.String(),  # why observed (error_material, ilegibilidad...) or null
    "resolved": pl.Boolean(),  # went through the JEE
    "electors": pl.Int64(),  # electores hábiles
    "cast": pl.Int64(),  # votos emitidos
    "blank": pl.Int64(),  # votos en blanco
    "null": pl.Int64(),  # votos nulos
    "challenged": pl.Int64(),  # votos impugnados
}

#: Columns of a unit snapshot frame (aggregate per reporting unit).
UNIT_COLUMNS: Final[dict[str, pl.DataType]] = {
    "level": pl.String(),  # Level value
    "unit_code": pl.String(),  # code at that level ("" for national)
    "abroad": pl.Boolean(),  # null when the unit mixes home and abroad (national)
    "actas_total": pl.Int64(),
    "actas_counted": pl.Int64(),  # contabilizadas (incl. annulled and not installed)
    "actas_processed": pl.Int64(),  # procesadas
    "actas_jee": pl.Int64(),
    "actas_pending": pl.Int64(),
    "actas_annulled": pl.Int64(),
    "actas_not_installed": pl.Int64(),
    "electors": pl.Int64(),  # electors of the counted actas (ONPE ELECTORES_HABIL)
    "electors_total": pl.Int64(),  # electors of all actas, when known
    "cast": pl.Int64(),
    "blank": pl.Int64(),
    "null": pl.Int64(),
    "challenged": pl.Int64(),
}

#: Vote-count columns that must never be negative.
COUNT_COLUMNS: Final = ("electors", "cast", "blank", "null", "challenged")

#: The optional last column of a unit frame: the vote type (batch) of the row — election
#: day, mail, early... — when the source publishes a unit in several rows, one per type
#: (docs/formats.md). A unit frame has it only when some row has a type; null (or '') is
#: "not given". Aggregates add a unit's types up (:func:`sum_vote_types`); the per-unit
#: projection treats each type apart.
VOTE_TYPE: Final = "vote_type"


def sum_vote_types(units: pl.DataFrame) -> pl.DataFrame:
    """A unit frame with one row per ``level`` + ``unit_code``: the rows of a unit's vote
    types added up (a figure is the sum of the types that give it; null only when none
    does), the ``vote_type`` column dropped. A frame without types is returned as it is.
    Everything that counts per area (status, history, diff, reconciliation) reads units
    through this; only the projection keeps the types apart."""
    if VOTE_TYPE not in units.columns:
        return units
    keys = ("level", "unit_code")
    other = [c for c in units.columns if c not in (*keys, VOTE_TYPE)]
    agg = [pl.col(c).first() if not units.schema[c].is_numeric()
           else pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum()).otherwise(None)
           .cast(units.schema[c]).alias(c) for c in other]
    return (units.group_by(*keys, maintain_order=True).agg(agg)
            .select([c for c in units.columns if c != VOTE_TYPE]))


#: Columns of the rows a source rejected or flagged (one per row and rule), as the store keeps
#: them beside each snapshot. Here, below sources and verify, because both write them.
REJECTED_SCHEMA: Final[dict[str, pl.DataType]] = {
    "line": pl.Int64(),
    "acta_id": pl.String(),
    "field": pl.String(),
    "rule": pl.String(),
    "message_es": pl.String(),
    "message_en": pl.String(),
    "raw": pl.String(),
}

#: An acta ID a public audit can use (``escrutinio.audit.ids``: ASCII letters, digits and
#: ``. _ - / :``, no blanks or commas). Here because sources warn about IDs that break it at
#: ingest, before the audit refuses them.
ACTA_ID_PATTERN: Final = r"^[0-9A-Za-z][0-9A-Za-z._/:\-]*$"

#: Columns of a geography frame: every area of a contest with its parent.
GEOGRAPHY_COLUMNS: Final[dict[str, pl.DataType]] = {
    "code": pl.String(),
    "name": pl.String(),
    "level": pl.String(),  # Level value
    "parent": pl.String(),  # code of the enclosing area (null for area1)
    "abroad": pl.Boolean(),
    "alt_code": pl.String(),  # Peru: INEI ubigeo, for maps
}


def empty_acta_frame(contest: Contest) -> pl.DataFrame:
    schema = dict(ACTA_COLUMNS) | {c: pl.Int64() for c in contest.candidate_columns}
    return pl.DataFrame(schema=schema)


def status_label(status: ActaStatus | str, lang: str = "es") -> str:
    es, en = STATUS_LABELS[ActaStatus(status)]
    return es if lang == "es" else en
