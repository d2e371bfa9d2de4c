"""An election to follow, described by configuration (TOML or JSON), not by code.

A configuration names the results backend (host, path prefix, which ONPE stack), the
contest and how its candidates are identified in the backend (by authority code, or by
name), the reporting scopes to poll and how often, the transport's manners (rate limit,
timeouts, backoff) and the validation policy. ``docs/live.md`` documents every key;
``src/escrutinio/live/examples/`` holds complete examples for the 2021 stack and for the
2026 ``presentacion-backend``.

Nothing here performs I/O except :func:`load_config`, which reads one file.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, cast

from escrutinio.domain import Candidate, Contest, ContestKind
from escrutinio.errors import IngestError, Location

EXAMPLES_DIR: Final = Path(__file__).resolve().parent / "examples"

#: A current desktop Chrome. ONPE's WAF served the HTML shell to clients that did not
#: look like a browser (ONPE_API.md); keep this close to a real, recent Chrome.
CHROME_UA: Final = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36")

#: Peru's first-level areas as ONPE numbers them (RENIEC ubigeos): 25 departments at
#: home (Lima 140000, Callao 240000) and 5 continents abroad (910000-950000).
PERU_AREA1: Final[dict[str, str]] = {
    "010000": "AMAZONAS", "020000": "ANCASH", "030000": "APURIMAC", "040000": "AREQUIPA",
    "050000": "AYACUCHO", "060000": "CAJAMARCA", "070000": "CUSCO", "080000": "HUANCAVELICA",
    "090000": "HUANUCO", "100000": "ICA", "110000": "JUNIN", "120000": "LA LIBERTAD",
    "130000": "LAMBAYEQUE", "140000": "LIMA", "150000": "LORETO", "160000": "MADRE DE DIOS",
    "170000": "MOQUEGUA", "180000": "PASCO", "190000": "PIURA", "200000": "PUNO",
    "210000": "SAN MARTIN", "220000": "TACNA", "230000": "TUMBES", "240000": "CALLAO",
    "250000": "UCAYALI",
    "910000": "AFRICA", "920000": "AMERICA", "930000": "ASIA", "940000": "EUROPA",
    "950000": "OCEANIA",
}
PERU_AREA1_HOME: Final = tuple(c for c in PERU_AREA1 if not c.startswith("9"))


class Stack(StrEnum):
    """Which ONPE results backend: the 2021 API or the 2026 ``presentacion-backend``."""

    ONPE2021 = "onpe2021"
    ONPE2026 = "onpe2026"


class Tier(StrEnum):
    HOT = "hot"  # national totals and candidates
    WARM = "warm"  # home/abroad and first-level areas
    COLD = "cold"  # actas (only those not yet counted are re-polled)


@dataclass(frozen=True, slots=True)
class Scope:
    """One reporting scope the watcher polls, with the tier that sets how often.

    Keys are stable strings (they name rows of the raw log and of the replay folder):
    ``national``, ``ambito:1`` (home) / ``ambito:2`` (abroad), ``area1:<ubigeo>``,
    ``acta:<idActa>``, ``mesa:<codigoMesa>``.
    """

    key: str
    tier: Tier
    kind: str  # national | ambito | area1 | acta | mesa
    code: str = ""  # ubigeo, ambito id, acta id or mesa code

    @property
    def level(self) -> str | None:
        return {"national": "national", "area1": "area1"}.get(self.kind)

    @property
    def unit_code(self) -> str:
        return "" if self.kind in ("national", "ambito") else self.code

    @property
    def abroad(self) -> bool | None:
        if self.kind == "area1":
            return self.code.startswith("9")
        if self.kind == "ambito":
            return self.code == "2"
        return None

    @staticmethod
    def from_key(key: str) -> Scope:
        kind, _, code = key.partition(":")
        tier = {"national": Tier.HOT, "ambito": Tier.WARM, "area1": Tier.WARM,
                "acta": Tier.COLD, "mesa": Tier.COLD}.get(kind)
        if tier is None:
            raise ValueError(f"unknown scope key {key!r}")
        return Scope(key, tier, kind, code)


@dataclass(frozen=True, slots=True)
class TransportConfig:
    timeout_s: float = 15.0  # connect + each read (socket timeout)
    rate_per_s: float = 2.0  # global cap on request starts per second
    jitter_s: float = 0.4  # uniform extra delay before each request, [0, jitter_s]
    max_attempts: int = 4  # per request, retries included
    backoff_base_s: float = 2.0  # first retry waits base, then 2x, 4x ... (+ jitter)
    backoff_max_s: float = 60.0
    user_agent: str = CHROME_UA
    impersonate: str | None = None  # e.g. "chrome": use curl_cffi when installed
    proxy: str = "env"  # "env" (HTTPS_PROXY...), "none", or a proxy URL
    prime_path: str = "/"  # page of the site loaded once to get cookies
    max_body_bytes: int = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Intervals:
    hot_s: float = 45.0
    warm_s: float = 300.0
    cold_s: float = 1800.0
    #: the served state is stale when ONPE has not confirmed it for this long
    stale_after_s: float = 180.0
    #: after a 401/403 (WAF block) the watcher stops polling for this long
    hard_block_pause_s: float = 900.0
    #: after this many scopes in a row fail, the rest of the cycle is skipped (storm)
    storm_threshold: int = 3
    #: cycle-level backoff while a storm lasts: doubles up to this cap
    storm_backoff_max_s: float = 600.0


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    #: a decrease (counted actas, votes, cast) is accepted only when this many readings
    #: in a row stay below the accepted state; it is then logged as a correction event
    confirm_decreases: int = 2
    #: candidates present in the backend but not in the contest: reject the response
    allow_extra_candidates: bool = False
    #: tolerance (percentage points) between a published percentage and count/total
    pct_tolerance_pp: float = 0.05
    #: refetch a scope once in the same cycle when candidates do not add up to the valid
    #: total (a torn read: the two endpoints answered from different states)
    refetch_torn: bool = True


@dataclass(frozen=True, slots=True)
class ActaTargets:
    """The cold path: which actas to follow (all others are never requested)."""

    ids: tuple[str, ...] = ()  # 2026: idActa, polled at /actas/{id}
    mesas: tuple[str, ...] = ()  # 2026: /actas/buscar/mesa; 2021: /mesas/detalle/{mesa}


def area_matches(district: str, area: str) -> bool:
    """Is ``district`` (a 6-digit area3 ubigeo) inside ``area`` (DD0000 area1, DDPP00
    area2, DDPPDD area3, or ``all`` / ``home`` / ``abroad``)?"""
    if area == "all":
        return True
    if area in ("home", "abroad"):
        return district.startswith("9") == (area == "abroad")
    if area.endswith("0000"):
        return district[:2] == area[:2]
    if area.endswith("00"):
        return district[:4] == area[:4]
    return district == area


@dataclass(frozen=True, slots=True)
class ColdConfig:
    """The cold path's crawl: geography, acta lists per district, and the actas.

    ``areas`` names what is crawled (first-, second- or third-level ubigeos, or ``all`` /
    ``home`` / ``abroad``); empty = no crawl (only ``[actas]`` are followed). The work of
    each cycle is bounded (``max_requests`` requests and ``max_seconds``, and it yields
    as soon as the hot path is due), so the national totals are never starved.
    """

    areas: tuple[str, ...] = ()
    #: fetch the geography from /ubigeos (2026 stack) and put it in the store
    geography: bool | None = None  # None: true for the 2026 stack
    geography_refresh_s: float = 86_400.0
    page_size: int = 100  # ``tamanio`` of /actas pages
    first_page: str = "auto"  # "0", "1" or "auto" (ONPE's first page: test both)
    max_requests: int = 100  # per cycle, retries and cookie priming included
    max_seconds: float = 0.0  # per cycle; 0 = 80% of hot_s
    step_s: float = 10.0  # pause between two cold steps while the crawl has work
    lists_s: float = 0.0  # list refresh of districts with actas not final; 0 = cold_s
    #: also re-poll a non-final acta whose list entry did not move after this long (a
    #: safety net for lists that lag; the lists already say when an acta moves); 0 = no
    repoll_s: float = 0.0
    #: acta snapshots of a crawl at most this often (always one at shutdown)
    snapshot_s: float = 300.0

    @property
    def crawl(self) -> bool:
        return bool(self.areas)

    def wants(self, district: str) -> bool:
        return any(area_matches(district, a) for a in self.areas)


@dataclass(frozen=True, slots=True)
class LiveConfig:
    name: str
    stack: Stack
    base_url: str  # scheme://host/prefix of the API (no trailing slash)
    site_url: str  # the public web app: Referer/Origin and cookie priming
    contest: Contest
    #: candidate code -> the backend's code for it (ONPE: C_CODI_AGRUPOL /
    #: codigoAgrupacionPolitica); compared as integers when both are digits
    authority_codes: Mapping[str, str]
    match_by: str = "code"  # "code" or "name" (nombreCandidato / NOMBREe_CANDIDATO)
    election_id: int | None = None  # 2026: fallback when discovery fails; 2021: path
    discover_election: bool = True
    participants: tuple[str, ...] = (
        "resumen-general/participantes",
        "eleccion-presidencial/participantes-ubicacion-geografica-nombre",
    )
    national: bool = True
    ambitos: bool = True  # home (1) and abroad (2) totals (2026) / 900000 (2021)
    area1: tuple[str, ...] = ()
    area1_names: Mapping[str, str] = field(default_factory=dict)
    #: the first-level areas (plus the abroad total when they are all at home) add up
    #: to the nation: compare them with the national totals and report any drift
    area1_complete: bool = False
    national_ubigeo: str = "800000"  # 2021 stack
    abroad_ubigeo: str = "900000"  # 2021 stack
    actas: ActaTargets = field(default_factory=ActaTargets)
    cold: ColdConfig = field(default_factory=ColdConfig)
    intervals: Intervals = field(default_factory=Intervals)
    transport: TransportConfig = field(default_factory=TransportConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    source: str = "<inline>"  # file it was read from
    sha256: str = ""  # of the file's bytes (provenance of every snapshot)

    @property
    def parser_name(self) -> str:
        return f"onpe.live.{self.stack.value}"

    @property
    def fetch_geography(self) -> bool:
        if self.cold.geography is None:
            return self.stack is Stack.ONPE2026
        return self.cold.geography

    def scopes(self) -> list[Scope]:
        """Every scope of this configuration, hot first."""
        out: list[Scope] = []
        if self.national:
            out.append(Scope("national", Tier.HOT, "national"))
        if self.ambitos:  # the 2021 API has a total abroad (900000), not one at home
            if self.stack is Stack.ONPE2026:
                out.append(Scope("ambito:1", Tier.WARM, "ambito", "1"))
            out.append(Scope("ambito:2", Tier.WARM, "ambito", "2"))
        out += [Scope(f"area1:{c}", Tier.WARM, "area1", c) for c in self.area1]
        out += [Scope(f"acta:{i}", Tier.COLD, "acta", i) for i in self.actas.ids]
        out += [Scope(f"mesa:{m}", Tier.COLD, "mesa", m) for m in self.actas.mesas]
        return out

    def with_crawl(self, areas: list[str] | tuple[str, ...]) -> LiveConfig:
        """The same election, crawling ``areas`` on the cold path (``--crawl``)."""
        from dataclasses import replace

        norm = _cold({"areas": list(areas)}, self.stack, self.source).areas
        return replace(self, cold=replace(self.cold, areas=norm))

    def with_base(self, base_url: str, site_url: str | None = None) -> LiveConfig:
        """The same election against another host (a fake server, a mirror)."""
        from dataclasses import replace

        return replace(self, base_url=base_url.rstrip("/"),
                       site_url=(site_url or base_url).rstrip("/"))


def _err(source: str, key: str, es: str, en: str) -> IngestError:
    return IngestError(Location(source, None, key), "bad_config", es, en)


def _sub(d: Mapping[str, Any], key: str, source: str) -> dict[str, Any]:
    v = d.get(key, {})
    if not isinstance(v, dict):
        raise _err(source, key, f"'{key}' debe ser una tabla", f"'{key}' must be a table")
    return v


def _typed(cls: type, raw: Mapping[str, Any], source: str, section: str) -> Any:
    known = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    extra = sorted(set(raw) - known)
    if extra:
        raise _err(source, f"{section}.{extra[0]}",
                   f"clave desconocida en [{section}]: {', '.join(extra)} "
                   f"(válidas: {', '.join(sorted(known))})",
                   f"unknown key in [{section}]: {', '.join(extra)} "
                   f"(valid: {', '.join(sorted(known))})")
    try:
        return cls(**raw)
    except TypeError as exc:
        raise _err(source, section, f"[{section}] inválida: {exc}",
                   f"invalid [{section}]: {exc}") from None


def _contest(raw: Any, source: str) -> Contest:
    from escrutinio.sources.peru import CONTESTS

    if isinstance(raw, str):
        if raw not in CONTESTS:
            raise _err(source, "contest",
                       f"contienda desconocida {raw!r}; conocidas: {', '.join(CONTESTS)}, o "
                       "defina [contest] completa",
                       f"unknown contest {raw!r}; known: {', '.join(CONTESTS)}, or define "
                       "a full [contest] table")
        return CONTESTS[raw]
    if not isinstance(raw, dict):
        raise _err(source, "contest", "falta 'contest' (id conocido o tabla [contest])",
                   "'contest' is missing (a known id or a [contest] table)")
    try:
        cands = tuple(
            Candidate(code=str(c["code"]), name=str(c["name"]), party=str(c.get("party", "")),
                      authority_code=str(c.get("authority_code", "")))
            for c in raw["candidates"])
        return Contest(
            id=str(raw["id"]), name=str(raw["name"]), kind=ContestKind(str(raw["kind"])),
            country=str(raw["country"]), date=str(raw["date"]), candidates=cands,
            majority_threshold=(None if raw.get("majority_threshold") is None
                                else float(raw["majority_threshold"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _err(source, "contest", f"[contest] inválida: {exc}",
                   f"invalid [contest]: {exc}") from None


def _cold(raw: dict[str, Any], stack: Stack, source: str) -> ColdConfig:
    raw = dict(raw)
    areas = raw.pop("areas", [])
    if isinstance(areas, str):
        areas = [areas]
    if not isinstance(areas, list):
        raise _err(source, "cold.areas", "cold.areas: lista de ubigeos, 'all', 'home' o "
                   "'abroad'", "cold.areas: a list of ubigeos, 'all', 'home' or 'abroad'")
    norm: list[str] = []
    for a in areas:
        t = str(a).strip().lower()
        if t in ("all", "home", "abroad"):
            norm.append(t)
        elif t.isdigit() and len(t) <= 6:
            norm.append(t.zfill(6))
        else:
            raise _err(source, "cold.areas", f"cold.areas: {a!r} no es un ubigeo",
                       f"cold.areas: {a!r} is not a ubigeo")
    if stack is Stack.ONPE2021 and any(len(a) != 6 or a.endswith("00") for a in norm):
        raise _err(source, "cold.areas",
                   "la API de 2021 no publica la geografía: cold.areas debe listar distritos "
                   "(ubigeos de 6 dígitos que no terminan en 00)",
                   "the 2021 API publishes no geography: cold.areas must list districts "
                   "(6-digit ubigeos not ending in 00)")
    if "first_page" in raw:
        raw["first_page"] = str(raw["first_page"]).lower()
        if raw["first_page"] not in ("0", "1", "auto"):
            raise _err(source, "cold.first_page", "cold.first_page: 0, 1 o 'auto'",
                       "cold.first_page: 0, 1 or 'auto'")
    cfg = _typed(ColdConfig, raw, source, "cold")
    if cfg.page_size < 1 or cfg.max_requests < 1:
        raise _err(source, "cold", "cold.page_size y cold.max_requests deben ser ≥ 1",
                   "cold.page_size and cold.max_requests must be ≥ 1")
    from dataclasses import replace

    return replace(cfg, areas=tuple(dict.fromkeys(norm)))


def config_from_dict(d: Mapping[str, Any], *, source: str = "<inline>",
                     sha256: str = "") -> LiveConfig:
    """Build a :class:`LiveConfig` from the parsed TOML/JSON document."""
    allowed = {"name", "stack", "base_url", "site_url", "contest", "authority_codes",
               "match_by", "election", "scopes", "actas", "cold", "intervals",
               "transport", "validation"}
    extra = sorted(set(d) - allowed)
    if extra:
        raise _err(source, extra[0], f"clave desconocida: {', '.join(extra)}",
                   f"unknown key: {', '.join(extra)}")
    for key in ("stack", "base_url", "contest"):
        if key not in d:
            raise _err(source, key, f"falta la clave obligatoria '{key}'",
                       f"required key '{key}' is missing")
    try:
        stack = Stack(str(d["stack"]))
    except ValueError:
        raise _err(source, "stack", f"stack debe ser onpe2021 u onpe2026, no {d['stack']!r}",
                   f"stack must be onpe2021 or onpe2026, not {d['stack']!r}") from None
    contest = _contest(d["contest"], source)
    codes = {c.code: c.authority_code for c in contest.candidates if c.authority_code}
    raw_codes = d.get("authority_codes", {})
    if not isinstance(raw_codes, dict):
        raise _err(source, "authority_codes", "authority_codes debe ser una tabla",
                   "authority_codes must be a table")
    unknown = sorted(set(raw_codes) - {c.code for c in contest.candidates})
    if unknown:
        raise _err(source, "authority_codes",
                   f"candidatos desconocidos en authority_codes: {', '.join(unknown)}",
                   f"unknown candidates in authority_codes: {', '.join(unknown)}")
    codes |= {str(k): str(v) for k, v in raw_codes.items()}
    match_by = str(d.get("match_by", "code"))
    if match_by not in ("code", "name"):
        raise _err(source, "match_by", "match_by debe ser 'code' o 'name'",
                   "match_by must be 'code' or 'name'")
    if match_by == "code":
        lacking = [c.code for c in contest.candidates if c.code not in codes]
        if lacking:
            raise _err(source, "authority_codes",
                       f"sin código de la autoridad para: {', '.join(lacking)} (use "
                       "[authority_codes] o match_by = \"name\")",
                       f"no authority code for: {', '.join(lacking)} (use "
                       "[authority_codes] or match_by = \"name\")")

    election = _sub(d, "election", source)
    scopes = _sub(d, "scopes", source)
    area1_raw = scopes.get("area1", [])
    complete = scopes.get("area1_complete")
    if area1_raw == "all":
        area1: tuple[str, ...] = tuple(PERU_AREA1)
        complete = True if complete is None else complete
    elif area1_raw == "home":
        area1 = PERU_AREA1_HOME
        complete = True if complete is None else complete
    elif isinstance(area1_raw, list):
        area1 = tuple(str(x).zfill(6) for x in area1_raw)
    else:
        raise _err(source, "scopes.area1", "scopes.area1: lista de ubigeos, 'all' o 'home'",
                   "scopes.area1: a list of ubigeos, 'all' or 'home'")
    names = {str(k).zfill(6): str(v) for k, v in scopes.get("area1_names", {}).items()}
    names = {c: names.get(c, PERU_AREA1.get(c, c)) for c in area1}
    actas = _sub(d, "actas", source)
    cold = _cold(_sub(d, "cold", source), stack, source)
    base_url = str(d["base_url"]).rstrip("/")
    participants = election.get("participants")
    extra_scope = sorted(set(scopes) - {"national", "ambitos", "area1", "area1_names",
                                        "area1_complete",
                                        "national_ubigeo", "abroad_ubigeo"})
    extra_election = sorted(set(election) - {"id", "fallback_id", "discover", "participants"})
    if extra_scope or extra_election:
        bad = (extra_scope or extra_election)[0]
        raise _err(source, bad, f"clave desconocida: {bad}", f"unknown key: {bad}")
    fallback = election.get("fallback_id", election.get("id"))
    if stack is Stack.ONPE2021 and fallback is None:
        fallback = 10
    return LiveConfig(
        name=str(d.get("name", contest.name)),
        stack=stack,
        base_url=base_url,
        site_url=str(d.get("site_url", base_url)).rstrip("/"),
        contest=contest,
        authority_codes=codes,
        match_by=match_by,
        election_id=None if fallback is None else int(fallback),
        discover_election=bool(election.get("discover", stack is Stack.ONPE2026)),
        participants=(tuple(str(p).strip("/") for p in participants) if participants
                      else cast("tuple[str, ...]",
                                LiveConfig.__dataclass_fields__["participants"].default)),
        national=bool(scopes.get("national", True)),
        ambitos=bool(scopes.get("ambitos", True)),
        area1=area1,
        area1_names=names,
        area1_complete=bool(complete),
        national_ubigeo=str(scopes.get("national_ubigeo", "800000")).zfill(6),
        abroad_ubigeo=str(scopes.get("abroad_ubigeo", "900000")).zfill(6),
        actas=ActaTargets(ids=tuple(str(x) for x in actas.get("ids", [])),
                          mesas=tuple(str(x).zfill(6) for x in actas.get("mesas", []))),
        cold=cold,
        intervals=_typed(Intervals, _sub(d, "intervals", source), source, "intervals"),
        transport=_typed(TransportConfig, _sub(d, "transport", source), source, "transport"),
        validation=_typed(ValidationConfig, _sub(d, "validation", source), source,
                          "validation"),
        source=source,
        sha256=sha256,
    )


def load_config(path: str | Path) -> LiveConfig:
    """Read a TOML (``.toml``) or JSON (``.json``) configuration file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise IngestError(Location(str(p)), "file_not_found", "el archivo no existe",
                          "the file does not exist") from None
    sha = hashlib.sha256(raw).hexdigest()
    try:
        if p.suffix.lower() == ".json":
            doc = json.loads(raw.decode("utf-8"))
        else:
            doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IngestError(Location(str(p)), "bad_config",
                          f"configuración ilegible: {exc}",
                          f"unreadable configuration: {exc}") from None
    if not isinstance(doc, dict):
        raise IngestError(Location(str(p)), "bad_config", "se esperaba un objeto",
                          "expected an object")
    return config_from_dict(doc, source=str(p), sha256=sha)


def example(name: str) -> Path:
    """Path of a bundled example configuration (``onpe2026-runoff`` ...)."""
    p = EXAMPLES_DIR / (name if name.endswith((".toml", ".json")) else f"{name}.toml")
    if not p.is_file():
        known = sorted(x.stem for x in EXAMPLES_DIR.glob("*.toml"))
        raise _err(str(p), "example", f"ejemplo desconocido; hay: {', '.join(known)}",
                   f"unknown example; available: {', '.join(known)}")
    return p
