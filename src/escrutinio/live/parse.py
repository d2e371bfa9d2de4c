"""Tolerant parsing of ONPE's live answers into readings of one scope.

Only responses classified ``ok`` (:mod:`escrutinio.live.classify`) reach this module.
What it tolerates, because both stacks did it (ONPE_API.md):

* numbers as strings with thousands separators and stray spaces (2021: ``"14,983,462"``,
  ``"  65.1485"``);
* times as epoch milliseconds (EG2026) or ISO strings (ERM 2026), and the 2021
  ``FECHA``/``HORA`` pair; all converted to America/Lima;
* ids as ints or strings (``8`` / ``"8"`` / ``"00000008"`` are the same party code);
* ubigeos as ints or strings, zero-padded to six digits (``10000`` -> ``"010000"``);
* acta detail keys prefixed ``n*`` (``/actas/{id}``: ``nvotos``) or ``ad*``
  (``/actas/buscar/mesa``: ``adVotos``);
* percentages and counts with confusable names kept apart: in ``/resumen-general/totales``
  ``actasContabilizadas`` is a **percent** and ``contabilizadas`` the count.

What it does not tolerate (type drift): a count that is not an integer (a percent in a
count field), a percent above 100, text where a number belongs, an answer for another
scope than the one asked. Those raise :class:`ParseDrift`, and the response is rejected.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Final

from escrutinio.domain import ActaStatus
from escrutinio.errors import IngestError, Location
from escrutinio.live.config import LiveConfig, Scope


def _lima_tz() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("America/Lima")
    except Exception:  # no tz database: Peru has kept UTC-5 without DST since 1994
        return timezone(timedelta(hours=-5), "America/Lima")


LIMA: Final = _lima_tz()

#: unit count columns a reading carries (canonical names of domain.UNIT_COLUMNS)
COUNT_KEYS: Final = ("actas_total", "actas_counted", "actas_processed", "actas_jee",
                     "actas_pending", "actas_annulled", "actas_not_installed", "electors",
                     "electors_total", "cast", "blank", "null", "challenged")

#: ONPE's pseudo-party codes for blank / null / challenged votes
SPECIAL_CODES: Final = {"80": "blank", "81": "null", "82": "challenged"}


class ParseDrift(IngestError):
    """The answer is JSON but not of the expected types: reject it, never guess."""

    def __init__(self, url: str, field_name: str, es: str, en: str) -> None:
        super().__init__(Location(url, None, field_name), "schema_drift", es, en)


# --- scalar helpers ------------------------------------------------------------------

_INT_RE: Final = re.compile(r"^[+-]?\d+$")
_FLOAT_RE: Final = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _clean_number_text(v: str) -> str:
    # thousands separators and any whitespace (including non-breaking spaces)
    return re.sub(r"[\s,\u00a0\u202f]", "", v)


def to_int(v: Any, *, url: str = "", name: str = "") -> int | None:
    """An integer count: ``1234``, ``"1,234"``, ``" 1234 "``, ``1234.0``; None stays None.

    A non-integral number (``93.414``) is a percent where a count belongs: drift.
    """
    if v is None:
        return None
    if isinstance(v, bool):
        raise ParseDrift(url, name, f"{name}: se esperaba un número y llegó un booleano",
                         f"{name}: expected a number, got a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if v.is_integer():
            return int(v)
        raise ParseDrift(url, name, f"{name}: {v!r} no es un conteo entero (¿un porcentaje?)",
                         f"{name}: {v!r} is not an integer count (a percentage?)")
    if isinstance(v, str):
        s = _clean_number_text(v)
        if s == "":
            return None
        if _INT_RE.match(s):
            return int(s)
        if _FLOAT_RE.match(s) and float(s).is_integer():
            return int(float(s))
        raise ParseDrift(url, name, f"{name}: {v!r} no es un conteo entero",
                         f"{name}: {v!r} is not an integer count")
    raise ParseDrift(url, name, f"{name}: tipo inesperado {type(v).__name__}",
                     f"{name}: unexpected type {type(v).__name__}")


def to_float(v: Any, *, url: str = "", name: str = "") -> float | None:
    """A number such as a percentage: ``65.1485``, ``"  65.1485"``, ``"1,234.5"``."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise ParseDrift(url, name, f"{name}: booleano donde va un número",
                         f"{name}: boolean where a number belongs")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        s = _clean_number_text(v)
        if s == "":
            return None
        if _FLOAT_RE.match(s):
            return float(s)
    raise ParseDrift(url, name, f"{name}: {v!r} no es un número", f"{name}: {v!r} is not a number")


def to_percent(v: Any, *, url: str = "", name: str = "") -> float | None:
    """A percentage in [0, 100]; above 100 it is a count in a percent field: drift."""
    x = to_float(v, url=url, name=name)
    if x is not None and not (0.0 <= x <= 100.0 + 1e-9):
        raise ParseDrift(url, name, f"{name}: {x} no es un porcentaje (¿un conteo?)",
                         f"{name}: {x} is not a percentage (a count?)")
    return x


def to_lima(v: Any, *, url: str = "", name: str = "") -> datetime | None:
    """Epoch seconds/milliseconds (number or digit string) or ISO-8601 -> America/Lima.

    ISO strings without a zone are read as Lima time (ONPE's own clock)."""
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise ParseDrift(url, name, f"{name}: booleano donde va una fecha",
                         f"{name}: boolean where a time belongs")
    if isinstance(v, str) and _FLOAT_RE.match(v.strip()):
        v = float(v.strip())
    if isinstance(v, (int, float)):
        secs = float(v) / 1000.0 if abs(v) >= 1e11 else float(v)
        return datetime.fromtimestamp(secs, tz=UTC).astimezone(LIMA)
    if isinstance(v, str):
        s = v.strip().replace("Z", "+00:00")
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            raise ParseDrift(url, name, f"{name}: fecha ilegible {v!r}",
                             f"{name}: unreadable time {v!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=LIMA)
        return dt.astimezone(LIMA)
    raise ParseDrift(url, name, f"{name}: tipo de fecha inesperado {type(v).__name__}",
                     f"{name}: unexpected time type {type(v).__name__}")


def lima_from_2021(fecha: Any, hora: Any, *, url: str = "") -> datetime | None:
    """The 2021 API's ``actData``: ``FECHA`` "12/04/2021" and ``HORA`` "08:46 h" (Lima)."""
    if not fecha or not hora:
        return None
    h = re.sub(r"[^\d:]", "", str(hora))
    try:
        dt = datetime.strptime(f"{str(fecha).strip()} {h}", "%d/%m/%Y %H:%M")
    except ValueError:
        raise ParseDrift(url, "actData.FECHA/HORA", f"fecha/hora ilegible {fecha!r} {hora!r}",
                         f"unreadable date/time {fecha!r} {hora!r}") from None
    return dt.replace(tzinfo=LIMA)


def norm_code(v: Any) -> str:
    """int-or-string ids compared as integers when they are digits (``"00000014"`` = 14)."""
    if v is None:
        return ""
    s = str(v).strip()
    if isinstance(v, float) and v.is_integer():
        s = str(int(v))
    return str(int(s)) if s.isdigit() else s.upper()


def ubigeo6(v: Any, *, url: str = "", name: str = "ubigeo") -> str | None:
    """A RENIEC ubigeo zero-padded to six digits (``10000`` -> ``"010000"``)."""
    if v is None or v == "":
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = str(v).strip()
    if not s.isdigit() or len(s) > 6:
        raise ParseDrift(url, name, f"{name}: {v!r} no es un ubigeo",
                         f"{name}: {v!r} is not a ubigeo")
    return s.zfill(6)


def fix_mojibake(s: str) -> str:
    """UTF-8 read as Latin-1 (the 2021 API's ``"VÃ\\x81LIDOS"``) back to text."""
    if "Ã" not in s and "Â" not in s:
        return s
    try:
        return s.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return s


def label(s: Any) -> str:
    """Upper case ASCII, accents stripped, spaces collapsed: for matching labels/names."""
    if s is None:
        return ""
    text = unicodedata.normalize("NFKD", fix_mojibake(str(s)))
    return " ".join(text.encode("ascii", "ignore").decode().upper().split())


def pick(obj: Mapping[str, Any], *names: str) -> Any:
    """First present key among ``names`` and their ``n*`` / ``ad*`` / ``c*`` variants,
    case-insensitively (``votos`` finds ``nvotos``, ``nVotos``, ``adVotos``)."""
    lower = {k.lower(): k for k in obj}
    for n in names:
        for cand in (n, f"n{n}", f"ad{n}", f"c{n}"):
            k = lower.get(cand.lower())
            if k is not None and obj[k] is not None:
                return obj[k]
    return None


def _special(desc: Any, code: Any) -> str | None:
    """blank / null / challenged / valid / cast for pseudo-rows, else None."""
    lab = label(desc)
    if lab.startswith("TOTAL DE VOTOS EMITIDOS") or lab == "TOTAL VOTOS EMITIDOS":
        return "cast"
    if lab.startswith(("TOTAL DE VOTOS V", "TOTAL VOTOS V")):
        return "valid"
    if lab.startswith("VOTOS EN BLANCO"):
        return "blank"
    if lab.startswith("VOTOS NULOS"):
        return "null"
    if lab.startswith("VOTOS IMPUGNADOS"):
        return "challenged"
    return SPECIAL_CODES.get(norm_code(code)) if not lab else None


# --- readings ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class UnitReading:
    """What one scope (nation, home/abroad, first-level area) said at one moment."""

    scope: str
    level: str | None  # Level value; None for home/abroad totals (not a unit level)
    unit_code: str
    abroad: bool | None
    as_of: datetime | None  # ONPE's own update time, America/Lima
    counts: Mapping[str, int | None]
    votes: Mapping[str, int | None]  # candidate code -> votes
    valid: int | None = None  # valid votes as published
    extra: Mapping[str, int] = field(default_factory=dict)  # unknown authority codes
    percents: Mapping[str, float | None] = field(default_factory=dict)
    raw_sha256: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    fetched_at: datetime | None = None

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(c for c, v in self.votes.items() if v is None)

    def fingerprint(self) -> str:
        """SHA-256 of the numbers only (not the times): equal states, equal print."""
        doc = {"scope": self.scope, "counts": dict(self.counts), "votes": dict(self.votes),
               "valid": self.valid, "extra": dict(self.extra)}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def row(self) -> dict[str, Any]:
        """A canonical unit row (UNIT_COLUMNS + ``v_<code>``)."""
        return {"level": self.level, "unit_code": self.unit_code, "abroad": self.abroad,
                **dict(self.counts), **{f"v_{c}": v for c, v in self.votes.items()}}


@dataclass(frozen=True, slots=True)
class ActaReading:
    """One acta as the backend showed it."""

    scope: str
    acta_id: str  # canonical: the mesa code, six digits
    status: str  # ActaStatus value
    area3_code: str | None
    figures: Mapping[str, int | None]  # electors, cast, blank, null, challenged
    votes: Mapping[str, int | None]
    observation: str | None = None
    resolved: bool = False
    authority_id: str = ""  # the backend's own id (idActa)
    as_of: datetime | None = None
    raw_sha256: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    fetched_at: datetime | None = None
    polling_place: str | None = None
    extra: Mapping[str, int] = field(default_factory=dict)  # unknown party codes
    #: (area1, area2, area3) names when the answer carries them (2021 ``detalle``)
    place: tuple[str, str, str] | None = None

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(c for c, v in self.votes.items() if v is None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy (the crawl frontier keeps accepted actas this way)."""
        return {"scope": self.scope, "acta_id": self.acta_id, "status": self.status,
                "area3_code": self.area3_code, "figures": dict(self.figures),
                "votes": dict(self.votes), "observation": self.observation,
                "resolved": self.resolved, "authority_id": self.authority_id,
                "as_of": None if self.as_of is None else self.as_of.isoformat(),
                "raw": list(self.raw_sha256), "urls": list(self.urls),
                "fetched_at": None if self.fetched_at is None else self.fetched_at.isoformat(),
                "polling_place": self.polling_place, "extra": dict(self.extra),
                "place": None if self.place is None else list(self.place)}

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> ActaReading:
        def dt(v: Any) -> datetime | None:
            return None if not v else datetime.fromisoformat(v)

        return ActaReading(
            scope=d["scope"], acta_id=d["acta_id"], status=d["status"],
            area3_code=d.get("area3_code"), figures=dict(d.get("figures", {})),
            votes=dict(d.get("votes", {})), observation=d.get("observation"),
            resolved=bool(d.get("resolved")), authority_id=str(d.get("authority_id", "")),
            as_of=dt(d.get("as_of")), raw_sha256=tuple(d.get("raw", ())),
            urls=tuple(d.get("urls", ())), fetched_at=dt(d.get("fetched_at")),
            polling_place=d.get("polling_place"), extra=dict(d.get("extra") or {}),
            place=None if not d.get("place") else tuple(d["place"]))  # type: ignore[arg-type]

    def fingerprint(self) -> str:
        doc = {"acta": self.acta_id, "status": self.status, "figures": dict(self.figures),
               "votes": dict(self.votes), "obs": self.observation, "res": self.resolved}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def row(self) -> dict[str, Any]:
        u = self.area3_code
        return {
            "acta_id": self.acta_id,
            "area1_code": None if u is None else u[:2] + "0000",
            "area2_code": None if u is None else u[:4] + "00",
            "area3_code": u,
            "abroad": None if u is None else u.startswith("9"),
            "polling_place": self.polling_place,
            "status": self.status,
            "observation": self.observation,
            "resolved": self.resolved,
            **dict(self.figures),
            **{f"v_{c}": v for c, v in self.votes.items()},
        }


class CandidateMatcher:
    """Maps the backend's party rows to the contest's candidates (by code or by name)."""

    def __init__(self, cfg: LiveConfig) -> None:
        self.by = cfg.match_by
        self.codes = {norm_code(v): k for k, v in cfg.authority_codes.items()}
        self.names = {label(c.name): c.code for c in cfg.contest.candidates}
        self.parties = {label(c.party): c.code for c in cfg.contest.candidates if c.party}
        self.order = [c.code for c in cfg.contest.candidates]

    def match(self, code: Any, name: Any, party: Any) -> str | None:
        if self.by == "code":
            return self.codes.get(norm_code(code))
        return self.names.get(label(name)) or self.parties.get(label(party))

    def collect(self, rows: list[tuple[Any, Any, Any, int | None]], url: str
                ) -> tuple[dict[str, int | None], dict[str, int]]:
        """(code, name, party, votes) rows -> (votes per candidate, unknown codes)."""
        votes: dict[str, int | None] = dict.fromkeys(self.order)
        extra: dict[str, int] = {}
        for code, name, party, v in rows:
            cand = self.match(code, name, party)
            if cand is None:
                key = norm_code(code) or label(name)
                extra[key] = extra.get(key, 0) + (v or 0)
                continue
            if votes[cand] is not None:
                raise ParseDrift(url, "codigoAgrupacionPolitica",
                                 f"el candidato {cand} aparece dos veces",
                                 f"candidate {cand} appears twice")
            votes[cand] = v
        return votes, extra


# --- 2026 presentacion-backend -----------------------------------------------------

def _expect_dict(data: Any, url: str, what: str) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise ParseDrift(url, what, f"{what}: se esperaba un objeto",
                         f"{what}: expected an object")
    return data


def _expect_list(data: Any, url: str, what: str) -> list[Any]:
    if not isinstance(data, list):
        raise ParseDrift(url, what, f"{what}: se esperaba una lista", f"{what}: expected a list")
    return data


_SCOPE_UBIGEO_KEYS: Final = {"area1": "idUbigeoDepartamento"}


def parse_unit_2026(totales: Any, participantes: Any, scope: Scope, cfg: LiveConfig, *,
                    urls: tuple[str, str] = ("", ""), raw_sha256: tuple[str, ...] = (),
                    fetched_at: datetime | None = None) -> UnitReading:
    """``/resumen-general/totales`` + a participants endpoint -> one reading.

    Counts: ``totalActas``, ``contabilizadas``, ``enviadasJee``, ``pendientesJee`` (actas
    neither counted nor at the JEE), ``totalVotosEmitidos``, ``totalVotosValidos``. The
    percent fields (``actasContabilizadas``, ``actasEnviadasJee``, ``actasPendientesJee``,
    ``participacionCiudadana``) are kept apart in ``percents``. Blank and null votes are
    not published by these endpoints: they stay null.
    """
    t_url, p_url = urls
    t = _expect_dict(totales, t_url, "data")
    if "contabilizadas" not in t and "actasContabilizadas" in t:
        raise ParseDrift(t_url, "contabilizadas",
                         "falta el conteo 'contabilizadas'; 'actasContabilizadas' es un "
                         "porcentaje y no se usa como conteo",
                         "the count 'contabilizadas' is missing; 'actasContabilizadas' is a "
                         "percentage and is not used as a count")
    total = to_int(t.get("totalActas"), url=t_url, name="totalActas")
    counted = to_int(t.get("contabilizadas"), url=t_url, name="contabilizadas")
    jee = to_int(pick(t, "enviadasJee"), url=t_url, name="enviadasJee")
    pending = to_int(pick(t, "pendientesJee"), url=t_url, name="pendientesJee")
    cast = to_int(t.get("totalVotosEmitidos"), url=t_url, name="totalVotosEmitidos")
    valid = to_int(t.get("totalVotosValidos"), url=t_url, name="totalVotosValidos")
    percents = {
        "actas_counted": to_percent(t.get("actasContabilizadas"), url=t_url,
                                    name="actasContabilizadas"),
        "actas_jee": to_percent(t.get("actasEnviadasJee"), url=t_url, name="actasEnviadasJee"),
        "actas_pending": to_percent(t.get("actasPendientesJee"), url=t_url,
                                    name="actasPendientesJee"),
        "turnout": to_percent(t.get("participacionCiudadana"), url=t_url,
                              name="participacionCiudadana"),
    }
    key = _SCOPE_UBIGEO_KEYS.get(scope.kind)
    if key is not None and t.get(key) is not None:
        got = ubigeo6(t.get(key), url=t_url, name=key)
        if got != scope.code:
            raise ParseDrift(t_url, key, f"se pidió {scope.code} y la respuesta es de {got}",
                             f"asked for {scope.code}, the answer is for {got}")
    rows: list[tuple[Any, Any, Any, int | None]] = []
    special: dict[str, int | None] = {}
    for i, item in enumerate(_expect_list(participantes, p_url, "data")):
        r = _expect_dict(item, p_url, f"data[{i}]")
        code = r.get("codigoAgrupacionPolitica")
        party = r.get("nombreAgrupacionPolitica")
        v = to_int(r.get("totalVotosValidos", pick(r, "votos")), url=p_url,
                   name=f"data[{i}].totalVotosValidos")
        sp = _special(party, code)
        if sp is not None:
            special[sp] = v
            continue
        rows.append((code, r.get("nombreCandidato"), party, v))
    votes, extra = CandidateMatcher(cfg).collect(rows, p_url)
    processed = None if counted is None or jee is None else counted + jee
    counts = dict.fromkeys(COUNT_KEYS) | {
        "actas_total": total, "actas_counted": counted, "actas_processed": processed,
        "actas_jee": jee, "actas_pending": pending, "cast": cast,
        "blank": special.get("blank"), "null": special.get("null"),
        "challenged": special.get("challenged"),
    }
    return UnitReading(
        scope=scope.key, level=scope.level, unit_code=scope.unit_code, abroad=scope.abroad,
        as_of=to_lima(t.get("fechaActualizacion"), url=t_url, name="fechaActualizacion"),
        counts=counts, votes=votes, valid=valid, extra=extra, percents=percents,
        raw_sha256=raw_sha256, urls=tuple(u for u in urls if u), fetched_at=fetched_at,
    )


_STATE_2026: Final = {"C": ActaStatus.COUNTED, "E": ActaStatus.JEE, "P": ActaStatus.PENDING,
                      "N": ActaStatus.NOT_INSTALLED}


def parse_acta_2026(data: Any, scope: Scope, cfg: LiveConfig, *, url: str = "",
                    raw_sha256: tuple[str, ...] = (), fetched_at: datetime | None = None
                    ) -> ActaReading:
    """``/actas/{idActa}`` (``n*`` detail keys) or ``/actas/buscar/mesa`` (a list, ``ad*``
    keys) -> one acta. ``codigoEstadoActa``: C counted, E at the JEE, P pending, N not
    installed; a counted acta whose ``estadoActa`` is N is a mesa that never opened."""
    if isinstance(data, list):
        found = [r for r in data if isinstance(r, dict)
                 and norm_code(r.get("idEleccion")) in ("", norm_code(cfg.election_id))]
        if len(found) != 1:
            raise ParseDrift(url, "data", f"se esperaba un acta y llegaron {len(found)}",
                             f"expected one acta, got {len(found)}")
        data = found[0]
    d = _expect_dict(data, url, "data")
    mesa = pick(d, "codigoMesa")
    if mesa is None:
        raise ParseDrift(url, "codigoMesa", "acta sin codigoMesa", "acta without codigoMesa")
    got_id = norm_code(pick(d, "id", "idActa"))
    if scope.kind == "acta" and got_id and got_id != norm_code(scope.code):
        raise ParseDrift(url, "id", f"se pidió el acta {scope.code} y la respuesta es de {got_id}",
                         f"asked for acta {scope.code}, the answer is for {got_id}")
    if scope.kind == "mesa" and str(mesa).strip().zfill(6) != scope.code.zfill(6):
        raise ParseDrift(url, "codigoMesa",
                         f"se pidió la mesa {scope.code} y la respuesta es de {mesa}",
                         f"asked for mesa {scope.code}, the answer is for {mesa}")
    code = str(pick(d, "codigoEstadoActa") or "").strip().upper()
    if code not in _STATE_2026:
        raise ParseDrift(url, "codigoEstadoActa", f"estado de acta desconocido {code!r}",
                         f"unknown acta state {code!r}")
    status = _STATE_2026[code]
    sub = str(pick(d, "estadoActa") or "").strip().upper()
    desc = label(pick(d, "descripcionEstadoActa"))
    if status is ActaStatus.COUNTED and sub == "N":
        status = ActaStatus.NOT_INSTALLED
    elif status is ActaStatus.COUNTED and "ANULAD" in desc:
        status = ActaStatus.ANNULLED
    rows: list[tuple[Any, Any, Any, int | None]] = []
    figures: dict[str, int | None] = {"electors": None, "cast": None, "blank": None,
                                      "null": None, "challenged": None}
    detalle = pick(d, "detalle") or []
    for i, item in enumerate(_expect_list(detalle, url, "detalle")):
        r = _expect_dict(item, url, f"detalle[{i}]")
        v = to_int(pick(r, "votos"), url=url, name=f"detalle[{i}].votos")
        desc_i = pick(r, "descripcion")
        cod = pick(r, "codigo", "codigoAgrupacionPolitica")
        sp = _special(desc_i, cod)
        if sp in ("blank", "null", "challenged"):
            figures[sp] = v
        elif sp is None:
            rows.append((cod, pick(r, "nombreCandidato"), desc_i, v))
    votes, extra = CandidateMatcher(cfg).collect(rows, url) if rows else (
        dict.fromkeys(c.code for c in cfg.contest.candidates), {})
    figures["electors"] = to_int(pick(d, "totalElectoresHabiles"), url=url,
                                 name="totalElectoresHabiles")
    figures["cast"] = to_int(pick(d, "totalVotosEmitidos"), url=url, name="totalVotosEmitidos")
    if figures["cast"] is None and rows and status is not ActaStatus.PENDING:
        # actas bound for the JEE carry the digitised detail but null header totals
        parts = [*votes.values(), figures["blank"], figures["null"], figures["challenged"]]
        figures["cast"] = sum(x or 0 for x in parts)
    ubigeo = ubigeo6(pick(d, "ubigeoDistrito", "ubigeoNivel03", "idUbigeo"), url=url)
    stamps = [to_lima(pick(x, "fechaRegistro"), url=url, name="lineaTiempo.fechaRegistro")
              for x in (pick(d, "lineaTiempo") or []) if isinstance(x, dict)]
    times = [t for t in stamps if t is not None]
    return ActaReading(
        scope=scope.key, acta_id=str(mesa).strip().zfill(6), status=status.value,
        area3_code=ubigeo, figures=figures, votes=votes,
        observation=None if status is not ActaStatus.JEE else (desc.lower() or None),
        resolved=bool(times) and status is ActaStatus.COUNTED and any(
            str(pick(x, "codigoEstadoActa") or "").upper() == "E"
            for x in (pick(d, "lineaTiempo") or []) if isinstance(x, dict)),
        authority_id=got_id,
        as_of=max(times) if times else None, raw_sha256=raw_sha256, urls=(url,),
        fetched_at=fetched_at, polling_place=_text(pick(d, "nombreLocalVotacion")),
        extra=extra,
    )


def _text(v: Any) -> str | None:
    if v is None:
        return None
    t = " ".join(fix_mojibake(str(v)).split())
    return t or None


# --- 2021 stack ----------------------------------------------------------------------

_SCOPE_2021: Final = {"national": "national_ubigeo", "ambito": "abroad_ubigeo"}


def ubigeo_2021(scope: Scope, cfg: LiveConfig) -> str:
    """The ubigeo the 2021 API uses for a scope (800000 total, 900000 abroad)."""
    if scope.kind == "national":
        return cfg.national_ubigeo
    if scope.kind == "ambito":
        return cfg.abroad_ubigeo
    return scope.code


def parse_unit_2021(doc: Any, scope: Scope, cfg: LiveConfig, *, url: str = "",
                    raw_sha256: tuple[str, ...] = (), fetched_at: datetime | None = None
                    ) -> UnitReading:
    """``/results/{id}/{ubigeo}`` -> one reading.

    Acta counters from ``summary`` (as in ONPE's resumen tables): actas_total =
    MESAS_HABILES, counted = CONTABILIZA, processed = ACTAS_PROCESADAS, jee = TOTAL_JEE,
    pending = POR_PROCESAR, annulled = CONT_ANULADA, not installed = MESAS_NO_INST,
    electors = ELECTORES_HABIL. Votes from ``results``: parties by ``C_CODI_AGRUPOL``,
    pseudo-rows for blank (80), null (81), the valid and the emitted totals.
    """
    d = _expect_dict(doc, url, "body")
    summary = _expect_dict(d.get("summary"), url, "summary")
    generals = _expect_dict(d.get("generals"), url, "generals")
    gdata = _expect_dict(generals.get("generalData") or {}, url, "generals.generalData")
    act = _expect_dict(generals.get("actData") or {}, url, "generals.actData")
    want = ubigeo_2021(scope, cfg)
    got = ubigeo6(summary.get("CCODI_UBIGEO"), url=url, name="summary.CCODI_UBIGEO")
    if got is not None and got != want and not (want == "800000" and got == "000000"):
        raise ParseDrift(url, "summary.CCODI_UBIGEO",
                         f"se pidió {want} y la respuesta es de {got}",
                         f"asked for {want}, the answer is for {got}")

    def si(key: str) -> int | None:
        return to_int(summary.get(key), url=url, name=f"summary.{key}")

    rows: list[tuple[Any, Any, Any, int | None]] = []
    special: dict[str, int | None] = {}
    for i, item in enumerate(_expect_list(d.get("results"), url, "results")):
        r = _expect_dict(item, url, f"results[{i}]")
        v = to_int(r.get("TOTAL_VOTOS"), url=url, name=f"results[{i}].TOTAL_VOTOS")
        code = r.get("C_CODI_AGRUPOL")
        sp = _special(r.get("AGRUPACION"), code)
        if sp is None and code is None:
            raise ParseDrift(url, f"results[{i}].AGRUPACION",
                             f"fila sin código ni etiqueta conocida: {r.get('AGRUPACION')!r}",
                             f"row without a code or a known label: {r.get('AGRUPACION')!r}")
        if sp is not None:
            special[sp] = v
            continue
        rows.append((code, r.get("NOMBREe_CANDIDATO", r.get("NOMBRE_CANDIDATO")),
                     r.get("AGRUPACION"), v))
    votes, extra = CandidateMatcher(cfg).collect(rows, url)
    cast = special.get("cast")
    if cast is None:
        cast = si("TOT_CIUDADANOS_VOTARON")
    counts = dict.fromkeys(COUNT_KEYS) | {
        "actas_total": si("MESAS_HABILES"), "actas_counted": si("CONTABILIZA"),
        "actas_processed": si("ACTAS_PROCESADAS"), "actas_jee": si("TOTAL_JEE"),
        "actas_pending": si("POR_PROCESAR"), "actas_annulled": si("CONT_ANULADA"),
        "actas_not_installed": si("MESAS_NO_INST"), "electors": si("ELECTORES_HABIL"),
        "cast": cast, "blank": special.get("blank"), "null": special.get("null"),
        "challenged": special.get("challenged"),
    }
    percents = {
        "actas_counted": to_percent(gdata.get("POR_ACTAS_CONTABILIZADAS"), url=url,
                                    name="POR_ACTAS_CONTABILIZADAS"),
        "actas_processed": to_percent(gdata.get("POR_ACTAS_PROCESADAS"), url=url,
                                      name="POR_ACTAS_PROCESADAS"),
        "turnout": to_percent(gdata.get("POR_CIUDADANOS_VOTARON"), url=url,
                              name="POR_CIUDADANOS_VOTARON"),
        "avance": to_percent(act.get("POR_AVANCE"), url=url, name="POR_AVANCE"),
    }
    return UnitReading(
        scope=scope.key, level=scope.level, unit_code=scope.unit_code, abroad=scope.abroad,
        as_of=lima_from_2021(act.get("FECHA"), act.get("HORA"), url=url),
        counts=counts, votes=votes, valid=special.get("valid"), extra=extra,
        percents=percents, raw_sha256=raw_sha256, urls=(url,), fetched_at=fetched_at,
    )


def parse_acta_2021(doc: Any, scope: Scope, cfg: LiveConfig, *, url: str = "",
                    raw_sha256: tuple[str, ...] = (), fetched_at: datetime | None = None
                    ) -> ActaReading:
    """``/mesas/detalle/{NNNNNN}`` -> one acta (state from ``OBSERVACION``; votes from
    ``votos[].congresal``; blank/null/challenged told apart by ``AUTORIDAD``, since all
    three carry code 80)."""
    from escrutinio.sources.peru import ONPE_OBSERVACION

    d = _expect_dict(doc, url, "body")
    gp = _expect_dict(_expect_dict(d.get("procesos"), url, "procesos").get("generalPre"),
                      url, "procesos.generalPre")
    pres = _expect_dict(gp.get("presidencial"), url, "generalPre.presidencial")
    obs = label(pres.get("OBSERVACION"))
    if obs not in ONPE_OBSERVACION:
        raise ParseDrift(url, "OBSERVACION", f"estado de acta desconocido {obs!r}",
                         f"unknown acta state {obs!r}")
    status, observation = ONPE_OBSERVACION[obs]
    rows: list[tuple[Any, Any, Any, int | None]] = []
    figures: dict[str, int | None] = {"electors": None, "cast": None, "blank": None,
                                      "null": None, "challenged": None}
    for i, item in enumerate(_expect_list(gp.get("votos") or [], url, "votos")):
        r = _expect_dict(item, url, f"votos[{i}]")
        v = to_int(r.get("congresal"), url=url, name=f"votos[{i}].congresal")
        sp = _special(r.get("AUTORIDAD"), None)
        if sp in ("blank", "null", "challenged"):
            figures[sp] = v
        elif sp == "cast":
            figures["cast"] = v
        elif sp is None:
            rows.append((r.get("CCODI_AUTO"), None, r.get("AUTORIDAD"), v))
    votes, extra = CandidateMatcher(cfg).collect(rows, url) if rows else (
        dict.fromkeys(c.code for c in cfg.contest.candidates), {})
    figures["electors"] = to_int(pres.get("NNUME_HABILM"), url=url, name="NNUME_HABILM")
    if figures["cast"] is None:
        figures["cast"] = to_int(pres.get("TOT_CIUDADANOS_VOTARON"), url=url,
                                 name="TOT_CIUDADANOS_VOTARON")
    return ActaReading(
        scope=scope.key, acta_id=scope.code.zfill(6), status=status.value,
        area3_code=ubigeo6(pres.get("CCODI_UBIGEO"), url=url, name="CCODI_UBIGEO"),
        figures=figures, votes=votes, observation=observation,
        resolved="RESUELTA" in label(pres.get("OBSERVACION_TXT")),
        raw_sha256=raw_sha256, urls=(url,), fetched_at=fetched_at,
        polling_place=_text(pres.get("TNOMB_LOCAL")), extra=extra,
        place=(None if pres.get("DEPARTAMENTO") is None else
               (_text(pres.get("DEPARTAMENTO")) or "", _text(pres.get("PROVINCIA")) or "",
                _text(pres.get("DISTRITO")) or "")),
    )


def election_from_proceso(data: Any, *, url: str = "") -> int | None:
    """``idEleccionPrincipal`` of ``/proceso/proceso-electoral-activo``, or None."""
    if not isinstance(data, dict):
        return None
    v = data.get("idEleccionPrincipal")
    try:
        n = to_int(v, url=url, name="idEleccionPrincipal")
    except ParseDrift:
        return None
    return n if n is not None and n > 0 else None


# --- the cold path: geography and acta lists -------------------------------------------

@dataclass(frozen=True, slots=True)
class GeoNode:
    """One area of the geography as the backend publishes it (RENIEC ubigeos)."""

    code: str  # six digits
    name: str
    level: str  # area1 | area2 | area3
    parent: str | None

    @property
    def abroad(self) -> bool:
        return self.code.startswith("9")


def level_of(code: str) -> str:
    """area1 (DD0000), area2 (DDPP00) or area3 (DDPPDD) of a six-digit ubigeo."""
    if code.endswith("0000"):
        return "area1"
    if code.endswith("00"):
        return "area2"
    return "area3"


def parent_of(code: str) -> str | None:
    lvl = level_of(code)
    if lvl == "area1":
        return None
    return code[:2] + "0000" if lvl == "area2" else code[:4] + "00"


def _split_path(name: str) -> list[str]:
    return [p.strip() for p in name.replace("/", "\\").split("\\") if p.strip()]


def parse_geography_flat(data: Any, *, url: str = "") -> list[GeoNode]:
    """``/ubigeos/dep-prov-distritos``: one row per district (city abroad) with its
    ``ubigeo`` and a ``nombre`` path ``DEPARTAMENTO \\\\ PROVINCIA \\\\ DISTRITO``
    (abroad: continent, country, city). Returns every area1/area2/area3 node; the
    national placeholder ``000000`` is skipped. Rows with separate ``departamento`` /
    ``provincia`` / ``distrito`` names are read too."""
    out: dict[tuple[str, str], GeoNode] = {}
    for i, item in enumerate(_expect_list(data, url, "data")):
        r = _expect_dict(item, url, f"data[{i}]")
        code = ubigeo6(pick(r, "ubigeo", "idUbigeo", "codigo"), url=url,
                       name=f"data[{i}].ubigeo")
        if code is None or code == "000000":
            continue
        if level_of(code) != "area3":
            raise ParseDrift(url, f"data[{i}].ubigeo",
                             f"se esperaba un distrito y llegó {code}",
                             f"expected a district, got {code}")
        names: Sequence[str | None] = [
            _text(pick(r, k)) for k in ("departamento", "provincia", "distrito")]
        if None in names:
            names = _split_path(str(pick(r, "nombre", "descripcion") or ""))
        if len(names) != 3 or not all(names):
            raise ParseDrift(url, f"data[{i}].nombre",
                             f"{code}: el nombre no es 'DEP \\\\ PROV \\\\ DIST': "
                             f"{pick(r, 'nombre')!r}",
                             f"{code}: the name is not 'DEP \\\\ PROV \\\\ DIST': "
                             f"{pick(r, 'nombre')!r}")
        a1, a2 = code[:2] + "0000", code[:4] + "00"
        for c, n, lvl, par in ((a1, names[0], "area1", None), (a2, names[1], "area2", a1),
                               (code, names[2], "area3", a2)):
            out.setdefault((lvl, c), GeoNode(c, str(n), lvl, par))
    return sorted(out.values(), key=lambda g: (g.level, g.code))


def parse_geography_level(data: Any, level: str, *, url: str = "",
                          parent: str | None = None) -> list[GeoNode]:
    """``/ubigeos/departamentos`` (area1), ``/provincias`` (area2) or ``/distritos``
    (area3): ``[{ubigeo, nombre}]``. Each code must be of the level asked and inside
    ``parent`` (an answer for another scope is drift)."""
    out: list[GeoNode] = []
    for i, item in enumerate(_expect_list(data, url, "data")):
        r = _expect_dict(item, url, f"data[{i}]")
        code = ubigeo6(pick(r, "ubigeo", "idUbigeo", "codigo"), url=url,
                       name=f"data[{i}].ubigeo")
        name = _text(pick(r, "nombre", "descripcion"))
        if code is None or code == "000000":
            continue
        if level_of(code) != level or (parent is not None and parent_of(code) != parent):
            raise ParseDrift(url, f"data[{i}].ubigeo",
                             f"{code} no es un {level} de {parent or 'la raíz'}",
                             f"{code} is not an {level} of {parent or 'the root'}")
        if not name:
            raise ParseDrift(url, f"data[{i}].nombre", f"{code} sin nombre",
                             f"{code} without a name")
        out.append(GeoNode(code, name, level, parent_of(code)))
    return out


@dataclass(frozen=True, slots=True)
class ListedActa:
    """One row of an acta list: enough to fetch the acta and to see that it moved."""

    key: str  # the scope key it is fetched with: acta:<idActa> (2026), mesa:<NNNNNN> (2021)
    mesa: str
    state: str | None  # ONPE's state code in the list (C/E/P/N), or None
    district: str | None
    electors: int | None = None
    polling_place: str | None = None


@dataclass(frozen=True, slots=True)
class ActaPage:
    items: tuple[ListedActa, ...]
    total_pages: int | None
    total_records: int | None
    page: int | None  # ``paginaActual`` when the backend says it


def parse_acta_list_2026(data: Any, *, url: str = "", district: str | None = None,
                         election_id: int | None = None) -> ActaPage:
    """``/actas?pagina=&tamanio=&idEleccion=&idAmbitoGeografico=&idUbigeo=``:
    ``{content: [...], totalPaginas, totalRegistros, paginaActual}``. Rows of another
    election or another district than asked are drift."""
    d = _expect_dict(data, url, "data")
    content = d.get("content")
    items: list[ListedActa] = []
    for i, item in enumerate(_expect_list(content if content is not None else [], url,
                                          "content")):
        r = _expect_dict(item, url, f"content[{i}]")
        aid = norm_code(pick(r, "id", "idActa"))
        mesa = pick(r, "codigoMesa")
        if not aid or mesa is None:
            raise ParseDrift(url, f"content[{i}].id", "fila sin id o codigoMesa",
                             "row without id or codigoMesa")
        eid = norm_code(pick(r, "idEleccion"))
        if election_id is not None and eid and eid != norm_code(election_id):
            raise ParseDrift(url, f"content[{i}].idEleccion",
                             f"acta de la elección {eid}, se pidió {election_id}",
                             f"acta of election {eid}, asked for {election_id}")
        where = ubigeo6(pick(r, "ubigeoNivel03", "ubigeoDistrito", "idUbigeo"), url=url,
                        name=f"content[{i}].ubigeoNivel03")
        if district is not None and where is not None and where != district:
            raise ParseDrift(url, f"content[{i}].ubigeoNivel03",
                             f"acta de {where}, se pidió {district}",
                             f"acta of {where}, asked for {district}")
        state = str(pick(r, "codigoEstadoActa") or "").strip().upper() or None
        if state is not None and state not in _STATE_2026:
            raise ParseDrift(url, f"content[{i}].codigoEstadoActa",
                             f"estado de acta desconocido {state!r}",
                             f"unknown acta state {state!r}")
        items.append(ListedActa(
            f"acta:{aid}", str(mesa).strip().zfill(6), state, where or district,
            to_int(pick(r, "totalElectoresHabiles"), url=url,
                   name=f"content[{i}].totalElectoresHabiles"),
            _text(pick(r, "nombreLocalVotacion"))))
    return ActaPage(tuple(items),
                    to_int(d.get("totalPaginas"), url=url, name="totalPaginas"),
                    to_int(d.get("totalRegistros"), url=url, name="totalRegistros"),
                    to_int(d.get("paginaActual"), url=url, name="paginaActual"))


def parse_locales_2021(doc: Any, *, url: str = "", district: str | None = None
                       ) -> list[str]:
    """``/mesas/locales/{ubigeo}``: the polling places of a district (``CCODI_LOCAL``)."""
    d = _expect_dict(doc, url, "body")
    out = []
    for i, item in enumerate(_expect_list(d.get("locales") or [], url, "locales")):
        r = _expect_dict(item, url, f"locales[{i}]")
        where = ubigeo6(r.get("CCODI_UBIGEO"), url=url, name=f"locales[{i}].CCODI_UBIGEO")
        if district is not None and where is not None and where != district:
            raise ParseDrift(url, f"locales[{i}].CCODI_UBIGEO",
                             f"local de {where}, se pidió {district}",
                             f"polling place of {where}, asked for {district}")
        code = str(r.get("CCODI_LOCAL") or "").strip()
        if not code:
            raise ParseDrift(url, f"locales[{i}].CCODI_LOCAL", "local sin código",
                             "polling place without a code")
        out.append(code)
    return out


def parse_mesas_2021(doc: Any, *, url: str = "", district: str | None = None) -> ActaPage:
    """``/mesas/actas/11/{ubigeo}/{local}``: the mesas of one polling place. ``PROCESADO``
    (1 = the acta was processed) is the only state the list gives: ``C`` / ``P``."""
    d = _expect_dict(doc, url, "body")
    items = []
    for i, item in enumerate(_expect_list(d.get("mesasVotacion") or [], url,
                                          "mesasVotacion")):
        r = _expect_dict(item, url, f"mesasVotacion[{i}]")
        mesa = str(r.get("NUMMESA") or "").strip()
        if not mesa.isdigit():
            raise ParseDrift(url, f"mesasVotacion[{i}].NUMMESA", f"mesa inválida {mesa!r}",
                             f"invalid mesa {mesa!r}")
        done = to_int(r.get("PROCESADO"), url=url, name=f"mesasVotacion[{i}].PROCESADO")
        items.append(ListedActa(f"mesa:{mesa.zfill(6)}", mesa.zfill(6),
                                None if done is None else ("C" if done else "P"), district))
    return ActaPage(tuple(items), 1, len(items), None)
