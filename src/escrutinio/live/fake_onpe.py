"""A fake ONPE results backend on 127.0.0.1, for tests and for rehearsing count night.

It serves, over real HTTP:

* **timelines** — what the backend says as the count advances:
  :class:`Synthetic2026` (a consistent synthetic count in ``presentacion-backend``
  format: national, home/abroad, 30 first-level areas, and a few actas that go P → E → C;
  optional real corrections, where one counted acta returns to the JEE and the national
  counts go down, and freezes, where nothing changes but the update time),
  :class:`Replay2021` (the 48 national ONPE snapshots of the 2021 runoff, and the 7
  department cuts, re-served as 2021-format ``/results/10/{ubigeo}`` answers with
  thousands separators and stray spaces) and :class:`Fixtures` (the recorded bodies of
  ``onpe-api-fixtures/`` byte for byte);
* **faults** — injected on demand (:meth:`FakeOnpe.inject`) or at random
  (:meth:`FakeOnpe.random_faults`): HTML with 200, 204, empty 200, 401/403 blocks,
  429/5xx storms, Lambda timeout text, the 2021 ``{'statusCode': '[400]'}`` body,
  ``success: false``, Spring error bodies, all-null data, slow answers, truncated JSON,
  dropped connections, counts going backwards (an older state served again), schema
  drift (a percent where a count belongs) and another election's candidates.

Time comes from a :class:`~escrutinio.live.transport.Clock`; with a
:class:`~escrutinio.live.transport.FakeClock` shared with the watcher, twelve hours of
count night run in seconds. The server records every answer (:attr:`FakeOnpe.log`) with
the state it came from, so a test can tell good states from bad ones.

Run by hand: ``escrutinio fake-onpe --scenario synthetic-2026`` (see docs/live.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import polars as pl

from escrutinio.live.config import PERU_AREA1
from escrutinio.live.parse import LIMA
from escrutinio.live.transport import Clock, SystemClock

BACKEND: Final = "/presentacion-backend"

HTML_SHELL: Final = (b"<!doctype html><html lang=\"es\"><head><meta charset=\"utf-8\">"
                     b"<title>ONPE - Resultados</title><base href=\"/\"></head><body>"
                     b"<app-root></app-root><script src=\"main.js\" type=\"module\"></script>"
                     b"</body></html>")
CLOUDFRONT_403: Final = (b"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\">"
                         b"<HTML><HEAD><TITLE>ERROR: The request could not be satisfied"
                         b"</TITLE></HEAD><BODY><H1>403 ERROR</H1></BODY></HTML>")
LAMBDA_TIMEOUT: Final = (b"{errorMessage=2021-04-12T14:22:30.003Z 22481cde-3e49-4d0f-a9e9-"
                         b"10a7a5a66ac1 Task timed out after 7.51 seconds}")
GATEWAY_REPR: Final = b"          {'statusCode': '[400]'}\r\n    "
SPRING_404: Final = (b'{"status":404,"error":"Recurso no encontrado","message":"La ruta '
                     b'solicitada no existe o es incorrecta."}')

FAULT_KINDS: Final = (
    "html200", "no_content204", "empty200", "unauthorized401", "forbidden403",
    "too_many429", "error500", "error502", "error503", "lambda_timeout", "gateway_400_repr",
    "success_false", "spring_error", "null_data", "slow", "truncated", "drop", "backwards",
    "drift", "wrong_election",
)
#: faults that can appear at random without stopping the watcher for long
SOFT_FAULTS: Final = tuple(k for k in FAULT_KINDS if k not in ("unauthorized401",
                                                               "forbidden403"))


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _envelope(data: Any, message: str = "Se ejecutó correctamente la operación") -> bytes:
    return _dumps({"success": True, "message": message, "data": data})


def _thousands(v: Any) -> str:
    return "" if v is None else f"{int(v):,}"


def _pct(num: float, den: float) -> float:
    return round(100.0 * num / den, 3) if den else 0.0


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    route: str  # route key: "totales|national", "results|800000" ...
    state: int | None  # truth state the body came from
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class Timeline(Protocol):
    """What the backend says at each state of the count."""

    n_states: int

    def offset_s(self, k: int) -> float:
        """Seconds after the server's start at which state ``k`` becomes current."""
        ...

    def answer(self, k: int, path: str, query: Mapping[str, str]) -> Answer | None:
        """The answer for ``path`` in state ``k``; None when the route is unknown."""
        ...


# --- synthetic 2026 count -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SynthCandidate:
    authority_code: int | str  # ints and strings both occur in the real backend
    party: str
    name: str


RUNOFF_2026: Final = (
    SynthCandidate(8, "FUERZA POPULAR", "KEIKO SOFIA FUJIMORI HIGUCHI"),
    SynthCandidate("10", "JUNTOS POR EL PERÚ", "ROBERTO HELBERT SANCHEZ PALOMINO"),
)


class Synthetic2026:
    """A consistent synthetic count in ``presentacion-backend`` format.

    Actas (92,766 by default) are drawn once (seeded): unit, electors, votes, the time
    each is counted, and for ~4% a detour through the JEE. State ``k`` counts the actas
    whose time is ≤ k; every invariant holds exactly (counted + JEE + pending = total;
    candidates add up to the valid votes; national = Σ units). ``corrections`` are states
    where one counted acta goes back to the JEE (for ``correction_len`` states) and
    nothing else is counted, so the national counts go down: a real correction.
    ``freezes`` are states where nothing changes but ``fechaActualizacion``.
    """

    def __init__(self, *, seed: int = 2026, n_states: int = 48, step_s: float = 300.0,
                 onpe_step_s: float | None = None, election_id: int = 10,
                 candidates: tuple[SynthCandidate, ...] = RUNOFF_2026,
                 units: tuple[str, ...] = tuple(PERU_AREA1), n_actas: int = 92_766,
                 corrections: tuple[int, ...] = (), correction_len: int = 3,
                 freezes: tuple[int, ...] = (), n_watch_actas: int = 12,
                 start_as_of: datetime | None = None, pending_at_end: float = 0.01) -> None:
        self.n_states = n_states
        self.step_s = step_s
        self.onpe_step_s = onpe_step_s if onpe_step_s is not None else step_s
        self.election_id = election_id
        self.candidates = candidates
        self.units = units
        self.start_as_of = start_as_of or datetime(2026, 6, 7, 18, 0, tzinfo=LIMA)
        rng = np.random.Generator(np.random.PCG64(seed))
        n_u = len(units)
        abroad = np.array([u.startswith("9") for u in units])
        weight = rng.gamma(2.0, 1.0, n_u) * np.where(abroad, 0.15, 1.0)
        unit = rng.choice(n_u, size=n_actas, p=weight / weight.sum())
        electors = rng.integers(180, 301, n_actas)
        turnout = np.where(abroad, 0.35, 0.78)[unit] + rng.normal(0, 0.04, n_actas)
        cast = rng.binomial(electors, np.clip(turnout, 0.05, 0.98))
        blank = rng.binomial(cast, 0.02)
        null = rng.binomial(cast - blank, 0.06)
        valid = cast - blank - null
        k = len(candidates)
        base = rng.dirichlet(np.full(k, 4.0), n_u)  # each unit's leaning
        votes = rng.multinomial(valid, base[unit])
        # time each acta is counted (in state units): abroad later, a skewed arrival curve
        last = n_states - 1
        shape_b = np.where(abroad[unit], 1.2, 2.6)
        t_count = 0.05 + (last - 0.05) * rng.beta(1.3, shape_b)
        observed = rng.random(n_actas) < 0.04
        t_jee = np.where(observed, t_count, np.inf)
        t_count = np.where(observed, t_count + rng.uniform(2.0, 0.6 * n_states, n_actas),
                           t_count)
        never = rng.random(n_actas) < pending_at_end
        t_count = np.where(never, np.inf, t_count)
        t_jee = np.where(never, np.inf, t_jee)
        t_count = np.where(t_count > last, np.inf, t_count)  # still at the JEE at the end
        # freezes and corrections: nothing new is counted in (s-1, s]
        for s in sorted({*freezes, *corrections}):
            for t in (t_count, t_jee):
                hit = (t > s - 1) & (t <= s)
                t[hit] += 1.0
        self.uncount: dict[int, tuple[int, int]] = {}  # acta index -> [from, to)
        for s in corrections:
            cand = np.flatnonzero((t_count < s - 1) & ~observed)
            if cand.size == 0:  # nothing counted yet: no correction possible
                continue
            idx = int(cand[rng.integers(0, cand.size)])
            self.uncount[idx] = (s, s + correction_len)
        self.unit, self.electors, self.cast = unit, electors, cast
        self.blank, self.null, self.valid, self.votes = blank, null, valid, votes
        self.t_count, self.t_jee, self.observed = t_count, t_jee, observed
        # a few actas to follow on the cold path (one per status path, and the corrected)
        watch = list(self.uncount)
        watch += list(rng.choice(np.flatnonzero(observed & np.isfinite(t_count)), 4,
                                 replace=False))
        watch += list(rng.choice(np.flatnonzero(~observed), max(0, n_watch_actas - len(watch)),
                                 replace=False))
        self.watch_actas = [int(i) for i in dict.fromkeys(watch)][:max(n_watch_actas, 1)]
        self._cache: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # -- truth ---------------------------------------------------------------------------
    def offset_s(self, k: int) -> float:
        return k * self.step_s

    def as_of(self, k: int) -> datetime:
        return self.start_as_of + timedelta(seconds=k * self.onpe_step_s)

    def status_at(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        counted = self.t_count <= k
        for idx, (a, b) in self.uncount.items():
            if a <= k < b:
                counted[idx] = False
        jee = ~counted & (self.t_jee <= k)
        for idx, (a, b) in self.uncount.items():
            if a <= k < b:
                jee[idx] = True
        return counted, jee

    def state(self, k: int) -> dict[str, Any]:
        """Aggregates of state ``k``: ``{scope key: {counts..., votes: [...]}}``."""
        k = max(0, min(k, self.n_states - 1))
        with self._lock:
            hit = self._cache.get(k)
            if hit is not None:
                return hit
        counted, jee = self.status_at(k)
        n_u = len(self.units)
        w = counted.astype(np.int64)

        def per_unit(x: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
            vals = mask.astype(np.int64) if x is None else x * mask
            return np.bincount(self.unit, weights=vals, minlength=n_u).astype(np.int64)

        total = np.bincount(self.unit, minlength=n_u).astype(np.int64)
        c = per_unit(None, counted)
        j = per_unit(None, jee)
        el = per_unit(self.electors, counted)
        ca = per_unit(self.cast, counted)
        va = per_unit(self.valid, counted)
        bl = per_unit(self.blank, counted)
        nu = per_unit(self.null, counted)
        vv = np.stack([np.bincount(self.unit, weights=self.votes[:, i] * w,
                                   minlength=n_u).astype(np.int64)
                       for i in range(len(self.candidates))], axis=1)
        out: dict[str, Any] = {}

        def put(key: str, sel: np.ndarray, ubigeo: str | None) -> None:
            out[key] = {"total": int(total[sel].sum()), "counted": int(c[sel].sum()),
                        "jee": int(j[sel].sum()),
                        "pending": int(total[sel].sum() - c[sel].sum() - j[sel].sum()),
                        "electors": int(el[sel].sum()), "cast": int(ca[sel].sum()),
                        "valid": int(va[sel].sum()), "blank": int(bl[sel].sum()),
                        "null": int(nu[sel].sum()),
                        "votes": [int(x) for x in vv[sel].sum(axis=0)], "ubigeo": ubigeo}

        allu = np.ones(n_u, dtype=bool)
        abroad = np.array([u.startswith("9") for u in self.units])
        put("national", allu, None)
        put("ambito:1", ~abroad, None)
        put("ambito:2", abroad, None)
        for i, u in enumerate(self.units):
            sel = np.zeros(n_u, dtype=bool)
            sel[i] = True
            put(f"area1:{u}", sel, u)
        with self._lock:
            self._cache[k] = out
        return out

    def truth(self, k: int, scope: str = "national") -> dict[str, Any]:
        return self.state(k)[scope]

    # -- rendering ---------------------------------------------------------------------
    def _scope_of(self, query: Mapping[str, str]) -> str | None:
        tipo = query.get("tipoFiltro", "eleccion")
        if tipo == "eleccion":
            return "national"
        if tipo == "ambito_geografico":
            return f"ambito:{query.get('idAmbitoGeografico', '')}"
        if tipo == "ubigeo_nivel_01":
            u = query.get("idUbigeoDepartamento", "")
            return f"area1:{u.zfill(6)}" if u.isdigit() else None
        return None

    def totales(self, k: int, scope: str, *, drift: bool = False) -> bytes:
        s = self.state(k)[scope]
        ms = int(self.as_of(k).timestamp() * 1000)
        data: dict[str, Any] = {
            "actasContabilizadas": _pct(s["counted"], s["total"]),
            "contabilizadas": s["counted"], "totalActas": s["total"],
            "participacionCiudadana": _pct(s["cast"], s["electors"]),
            "actasEnviadasJee": _pct(s["jee"], s["total"]), "enviadasJee": s["jee"],
            "actasPendientesJee": _pct(s["pending"], s["total"]),
            "pendientesJee": s["pending"], "fechaActualizacion": ms,
            "idUbigeoDepartamento": int(s["ubigeo"]) if s["ubigeo"] else None,
            "idUbigeoProvincia": None, "idUbigeoDistrito": None,
            "idUbigeoDistritoElectoral": None,
            "totalVotosEmitidos": s["cast"], "totalVotosValidos": s["valid"],
            "porcentajeVotosEmitidos": 100, "porcentajeVotosValidos": 100,
        }
        if drift:  # a percent where the count belongs
            data["contabilizadas"] = data["actasContabilizadas"] + 0.5
        return _envelope(data)

    def participantes(self, k: int, scope: str, *, wrong: bool = False) -> bytes:
        s = self.state(k)[scope]
        rows = []
        for i, cand in enumerate(self.candidates):
            v = s["votes"][i]
            code = cand.authority_code
            if wrong:
                code = 900 + i if isinstance(code, int) else str(900 + i)
            rows.append({"nombreAgrupacionPolitica": cand.party,
                         "codigoAgrupacionPolitica": code, "nombreCandidato": cand.name,
                         "dniCandidato": "", "totalVotosValidos": v,
                         "porcentajeVotosValidos": _pct(v, s["valid"]),
                         "porcentajeVotosEmitidos": _pct(v, s["cast"])})
        random.Random(k * 7919 + len(scope)).shuffle(rows)  # unordered, as the backend
        return _envelope(rows, "")

    def _acta_id(self, i: int) -> str:
        u = self.units[int(self.unit[i])]
        return f"{i % 10000:04d}{u[:2]}0101{self.election_id:02d}"

    def mesa_code(self, i: int) -> str:
        return f"{i:06d}"

    def acta_data(self, k: int, i: int, *, ad_keys: bool = False) -> dict[str, Any]:
        counted, jee = self.status_at(k)
        code = "C" if counted[i] else "E" if jee[i] else "P"
        u = self.units[int(self.unit[i])]
        t0 = self.as_of(0)
        line = [{"codigoEstadoActa": "P", "fechaRegistro": int(t0.timestamp() * 1000)}]
        if code in ("E", "C") and np.isfinite(self.t_jee[i]):
            line.append({"codigoEstadoActa": "E",
                         "fechaRegistro": int(self.as_of(int(np.ceil(self.t_jee[i])))
                                              .timestamp() * 1000)})
        if code == "C":
            line.append({"codigoEstadoActa": "C",
                         "fechaRegistro": int(self.as_of(k).timestamp() * 1000)})
        detalle = None
        if code in ("C", "E"):
            vk, dk, ck = ("adVotos", "adDescripcion", "adCodigo") if ad_keys else (
                "nvotos", "descripcion", "ccodigo")
            detalle = [{ck: f"{int(c.authority_code):08d}", dk: c.party, "nposicion": n + 1,
                        vk: int(self.votes[i, n])} for n, c in enumerate(self.candidates)]
            detalle += [{ck: "80", dk: "VOTOS EN BLANCO", vk: int(self.blank[i])},
                        {ck: "81", dk: "VOTOS NULOS", vk: int(self.null[i])}]
        header = code == "C"
        return {
            "id": int(self._acta_id(i)), "idMesa": None, "codigoMesa": self.mesa_code(i),
            "idEleccion": self.election_id, "ubigeoDistrito": f"{u[:2]}0101",
            "codigoEstadoActa": code, "estadoActa": code,
            "descripcionEstadoActa": {"C": "CONTABILIZADA", "E": "PARA ENVIO AL JEE",
                                      "P": "PENDIENTE"}[code],
            "totalElectoresHabiles": int(self.electors[i]),
            "totalVotosEmitidos": int(self.cast[i]) if header else None,
            "totalVotosValidos": int(self.valid[i]) if header else None,
            "detalle": detalle, "lineaTiempo": line, "archivos": [],
        }

    def answer(self, k: int, path: str, query: Mapping[str, str], *, variant: str = ""
               ) -> Answer | None:
        if not path.startswith(BACKEND):
            return None
        sub = path[len(BACKEND):].rstrip("/")
        if sub == "/proceso/proceso-electoral-activo":
            return Answer(200, _envelope({
                "id": 2, "nombre": "ELECCIONES GENERALES 2026 - SEGUNDA VUELTA",
                "acronimo": "SEP2026", "fechaProceso": 1780808400000,
                "idEleccionPrincipal": self.election_id, "tipoProcesoElectoral": "presidencial",
                "activoFechaProceso": True}, ""), "proceso", None)
        if sub in ("/resumen-general/totales", "/resumen-general/participantes",
                   "/eleccion-presidencial/participantes-ubicacion-geografica-nombre"):
            if query.get("idEleccion") != str(self.election_id):
                return Answer(204, b"", "wrong_election", None)
            scope = self._scope_of(query)
            if scope is None or scope not in self.state(k):
                return Answer(500, _dumps({"status": 500, "error": "Internal Server Error",
                                           "message": "parámetros inválidos"}), "bad", None)
            if sub.endswith("totales"):
                return Answer(200, self.totales(k, scope, drift=variant == "drift"),
                              f"totales|{scope}", k)
            return Answer(200, self.participantes(k, scope, wrong=variant == "wrong_election"),
                          f"participantes|{scope}", k)
        if sub.startswith("/actas/buscar/mesa"):
            mesa = query.get("codigoMesa", "")
            idx = next((i for i in self.watch_actas if self.mesa_code(i) == mesa), None)
            if idx is None:
                return Answer(204, b"", f"mesa|{mesa}", k)
            return Answer(200, _envelope([self.acta_data(k, idx, ad_keys=True)], ""),
                          f"mesa|{mesa}", k)
        if sub.startswith("/actas/"):
            aid = sub.rsplit("/", 1)[-1]
            idx = next((i for i in self.watch_actas if self._acta_id(i) == aid), None)
            if idx is None:  # the documented answer for an id that does not exist
                return Answer(200, _envelope({"id": None, "idMesa": None, "codigoMesa": None,
                                              "descripcionMesa": None, "idEleccion": None,
                                              "detalle": None, "lineaTiempo": None,
                                              "archivos": None}, ""), f"acta|{aid}", k)
            return Answer(200, _envelope(self.acta_data(k, idx), ""), f"acta|{aid}", k)
        return Answer(404, SPRING_404, "spring404", None)

    def acta_ids(self) -> list[str]:
        return [self._acta_id(i) for i in self.watch_actas]


# --- 2021 replay of the 48 national snapshots -------------------------------------------

class Replay2021:
    """The 2021 runoff's ONPE progress tables re-served as ``/results/10/{ubigeo}``.

    National (``800000``): the 48 cuts of ``progress_national/``. Departments: the 7
    cuts of ``progress_subnational/departamentos/``, each served from the latest cut not
    after the current national cut (204 before the first). ``spacing="uniform"`` makes
    state k current at ``k·step_s``; ``"real"`` keeps the real gaps divided by ``speed``.
    """

    RESUMEN_INTS: Final = ("CONTABILIZA", "CONT_NORMAL", "IMPUGNADA", "ERROR_MAT",
                           "MESAS_INSTALADAS", "ACTAS_PROCESADAS", "SOL_NULIDAD", "ILEGIBLE",
                           "PENDIENTE", "OTRAS_OBS", "SIN_DATOS", "CONT_ANULADA",
                           "POR_PROCESAR", "EXTRAVIADA", "SINIESTRADA", "INCOMPLETA",
                           "SIN_FIRMA", "A_INSTALAR", "MESAS_NO_INST", "FUSIONADAS",
                           "NTOTAL_AUTO", "MESAS_HABILES", "TOT_CIUDADANOS_VOTARON",
                           "ELECTORES_HABIL", "ELECTORES_HABIL_50", "TOTAL_JEE")

    def __init__(self, runoff_dir: str | Path, *, step_s: float = 60.0,
                 spacing: str = "uniform", speed: float = 60.0, election_id: int = 10,
                 national_ubigeo: str = "800000") -> None:
        root = Path(runoff_dir)
        nat = root / "progress_national"
        self.election_id = election_id
        self.national_ubigeo = national_ubigeo
        self.national = self._load(nat, "general", None)
        self.times = sorted(self.national)
        self.n_states = len(self.times)
        self.step_s, self.spacing, self.speed = step_s, spacing, speed
        dep_dir = root / "progress_subnational" / "departamentos"
        self.departments: dict[datetime, dict[str, Any]] = {}
        if dep_dir.is_dir():
            stamps = sorted({p.name.split(".")[1] for p in dep_dir.glob("votacion-*.csv")})
            for st in stamps:
                self.departments.update(self._load(dep_dir, "departamento", st))
        self.dep_times = sorted(self.departments)

    @staticmethod
    def _load(folder: Path, level: str, stamp: str | None) -> dict[datetime, dict[str, Any]]:
        suffix = f".{stamp}" if stamp else ""
        tables = {t: pl.read_csv(folder / f"votacion-{level}-{t}{suffix}.csv",
                                 infer_schema=False)
                  for t in ("participacion", "resultados", "resumen", "totales")}
        out: dict[datetime, dict[str, Any]] = {}
        key = "CCODI_UBIGEO"
        for row in tables["resumen"].iter_rows(named=True):
            t = datetime.strptime(row["updated"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            u = "000000" if level == "general" else row[key].zfill(6)
            name = row.get("departamento")

            def same(df: pl.DataFrame, row: dict[str, Any] = row, name: Any = name
                     ) -> pl.DataFrame:
                f = df.filter(pl.col("updated") == row["updated"])
                return f.filter(pl.col("departamento") == name) if name is not None else f

            out.setdefault(t, {})[u] = {
                "resumen": row,
                "participacion": same(tables["participacion"]).row(0, named=True),
                "resultados": same(tables["resultados"]).to_dicts(),
                "totales": same(tables["totales"]).to_dicts(),
                "time": t,
            }
        if level == "general":
            return {t: v["000000"] for t, v in out.items()}
        return out

    def offset_s(self, k: int) -> float:
        if self.spacing == "uniform":
            return k * self.step_s
        return (self.times[k] - self.times[0]).total_seconds() / self.speed

    @staticmethod
    def _fmt_pct(v: Any, spaces: int = 0) -> str:
        return " " * spaces + f"{float(v):.3f}"

    def render(self, cut: dict[str, Any], ubigeo: str) -> bytes:
        res, par = cut["resumen"], cut["participacion"]
        lima = cut["time"].astimezone(LIMA)
        results = []
        for r in cut["resultados"]:
            results.append({"C_CODI_AGRUPOL": r["C_CODI_AGRUPOL"], "AGRUPACION": r["AGRUPACION"],
                            "TOTAL_VOTOS": _thousands(r["TOTAL_VOTOS"]),
                            "NLISTA": r.get("NLISTA"),
                            "POR_VALIDOS": self._fmt_pct(r["POR_VALIDOS"]),
                            "POR_EMITIDOS": self._fmt_pct(r["POR_EMITIDOS"]),
                            "NOMBREe_CANDIDATO": r.get("NOMBREe_CANDIDATO")})
        codes = {"VOTOS EN BLANCO": "80", "VOTOS NULOS": "81", "VOTOS IMPUGNADOS": "82"}
        for r in cut["totales"]:
            results.append({"C_CODI_AGRUPOL": codes.get(r["AGRUPACION"]),
                            "AGRUPACION": r["AGRUPACION"],
                            "TOTAL_VOTOS": _thousands(r["TOTAL_VOTOS"]),
                            "POR_EMITIDOS": self._fmt_pct(r["POR_EMITIDOS"])})
        summary = {"CCODI_UBIGEO": ubigeo,
                   **{k: _thousands(res[k]) for k in self.RESUMEN_INTS if k in res}}
        doc = {
            "generals": {
                "generalData": {
                    "ELECTORES_HABIL": _thousands(par["ELECTORES_HABIL"]),
                    "TOT_CIUDADANOS_VOTARON": _thousands(par["TOT_CIUDADANOS_VOTARON"]),
                    "POR_CIUDADANOS_VOTARON": self._fmt_pct(par["POR_CIUDADANOS_VOTARON"]),
                    "POR_ACTAS_CONTABILIZADAS": self._fmt_pct(par["POR_ACTAS_CONTABILIZADAS"]),
                    "POR_ACTAS_PROCESADAS": self._fmt_pct(par["POR_ACTAS_PROCESADAS"]),
                    "ACTAS_PROCESADAS": _thousands(par["ACTAS_PROCESADAS"]),
                    "POR_PROCESAR": _thousands(par["POR_PROCESAR"]),
                    "CONTABILIZA": _thousands(par["CONTABILIZA"]),
                    "POR_POR_PROCESAR": self._fmt_pct(par["POR_POR_PROCESAR"]),
                    "N_CANDIDATOS": "0"},
                "actData": {"FECHA": lima.strftime("%d/%m/%Y"),
                            "HORA": lima.strftime("%H:%M h"),
                            "POR_AVANCE": f"  {float(res['avance']):.4f}"},
                "realImages": "1"},
            "results": results,
            "summary": summary,
        }
        return json.dumps(doc, ensure_ascii=False).encode("utf-8")

    def answer(self, k: int, path: str, query: Mapping[str, str], *, variant: str = ""
               ) -> Answer | None:
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "results":
            return None
        if parts[1] != str(self.election_id):
            return Answer(204, b"", "wrong_election", None)
        ubigeo = parts[2]
        t = self.times[max(0, min(k, self.n_states - 1))]
        if variant == "backwards":
            t = self.times[max(0, k - 3)]
        if ubigeo in (self.national_ubigeo, "000000"):
            return Answer(200, self.render(self.national[t], ubigeo), f"results|{ubigeo}", k)
        cuts = [d for d in self.dep_times if d <= t]
        if not cuts or ubigeo not in self.departments[cuts[-1]]:
            return Answer(204, b"", f"results|{ubigeo}", k)
        return Answer(200, self.render(self.departments[cuts[-1]][ubigeo], ubigeo),
                      f"results|{ubigeo}", k)


# --- the recorded fixtures, byte for byte -------------------------------------------------

class Fixtures:
    """``onpe-api-fixtures/`` served at their endpoints, byte for byte.

    2021 (``/results/10/{ubigeo}``): three states (00:48, 03:15, 08:46 on 12 Apr 2021),
    each ubigeo answered with its latest recording not after the state (204 before);
    ``/results/10/050000`` and ``/results/10/140100`` at 08:46 answer the recorded Lambda
    timeout text, ``/results/10/cod`` the ``{'statusCode': '[400]'}`` body (HTTP 400).
    ``/mesas/detalle/{mesa}``, ``/mesas/locales/010101``, ``/mesas/actas/11/010101/0001``.
    2026 (under ``/presentacion-backend``): the ERM totales/participantes, the EG2026
    ``elecciones`` and ``participacion-ciudadana/totales`` (recorder's keys removed),
    ``proceso-electoral-activo`` (transcribed), the all-null answer of ``/actas/{id}``, and
    the Spring 404 body for any other backend route.
    """

    TIMES: Final = ("0048", "0315", "0846")

    def __init__(self, fixtures_dir: str | Path, *, step_s: float = 60.0) -> None:
        self.root = Path(fixtures_dir)
        self.step_s = step_s
        self.n_states = len(self.TIMES)
        self.results: dict[str, dict[int, bytes]] = {}
        for p in sorted((self.root / "2021" / "results-ubigeo").glob("*.json")):
            u, stamp = p.stem.split("__")
            k = self.TIMES.index(stamp.rsplit("_", 1)[-1])
            self.results.setdefault(u, {})[k] = p.read_bytes()
        self.detalle: dict[str, bytes] = {}
        for p in sorted((self.root / "2021" / "mesas-detalle").glob("*.json")):
            self.detalle[p.stem.split("__")[1]] = p.read_bytes()  # the latest wins (sorted)
        err = self.root / "2021" / "errors"
        self.lambda_body = (err / "results-10-050000__lambda-timeout-400.txt").read_bytes()
        self.lambda_body2 = (err / "results-10-140100__lambda-timeout-400.txt").read_bytes()
        self.repr_body = (err / "results-10-cod__invalid-ubigeo-400.txt").read_bytes()
        f26 = self.root / "2026"
        self.erm: dict[tuple[str, str, str, str], bytes] = {}
        for kind in ("totales", "participantes"):
            for p in sorted((f26 / f"resumen-general-{kind}").glob("erm2026__*.json")):
                _, el, lvl, ub = p.stem.split("__")
                self.erm[(kind, el.removeprefix("idEleccion"), lvl, ub)] = p.read_bytes()

        def unwrap(p: Path) -> bytes:
            d = json.loads(p.read_text("utf-8"))
            return _dumps({k: d[k] for k in ("success", "message", "data")})

        self.elecciones = unwrap(next((f26 / "resumen-general-elecciones").glob("*.json")))
        self.participacion = unwrap(next((f26 / "participacion-ciudadana-totales")
                                         .glob("*.json")))
        doc = f26 / "documented-examples"
        self.proceso = (doc / "proceso-electoral-activo__eg2026-r1__transcribed.json").read_bytes()
        null_acta = (doc / "actas-id__inexistente__data-only__transcribed.json").read_text()
        self.null_acta = _envelope(json.loads(null_acta), "")
        self.spring = (doc / "spring-error-envelope__backend-source__transcribed.json").read_bytes()

    def offset_s(self, k: int) -> float:
        return k * self.step_s

    def answer(self, k: int, path: str, query: Mapping[str, str], *, variant: str = ""
               ) -> Answer | None:
        parts = path.strip("/").split("/")
        if parts[:2] == ["results", "10"] and len(parts) == 3:
            u = parts[2]
            if u == "cod":
                return Answer(400, self.repr_body, "results|cod", None, "application/json")
            if u in ("050000", "140100") and k == 2:
                body = self.lambda_body if u == "050000" else self.lambda_body2
                return Answer(200, body, f"results|{u}", None)
            rec = self.results.get(u, {})
            ks = [x for x in rec if x <= k]
            if not ks:
                return Answer(204, b"", f"results|{u}", k)
            return Answer(200, rec[max(ks)], f"results|{u}", max(ks))
        if parts[:2] == ["mesas", "detalle"] and len(parts) == 3:
            body = self.detalle.get(parts[2])
            return Answer(200, body, f"detalle|{parts[2]}", None) if body else Answer(
                204, b"", f"detalle|{parts[2]}", None)
        if parts[:2] == ["mesas", "locales"]:
            p = self.root / "2021" / "mesas-locales" / f"sep2021__{parts[-1]}.json"
            return Answer(200, p.read_bytes(), "locales", None) if p.is_file() else Answer(
                204, b"", "locales", None)
        if parts[:2] == ["mesas", "actas"]:
            name = "sep2021__" + "__".join(parts[2:]) + ".json"
            p = self.root / "2021" / "mesas-actas-local" / name
            return Answer(200, p.read_bytes(), "mesas-actas", None) if p.is_file() else Answer(
                204, b"", "mesas-actas", None)
        if not path.startswith(BACKEND):
            return None
        sub = path[len(BACKEND):].rstrip("/")
        if sub == "/proceso/proceso-electoral-activo":
            return Answer(200, self.proceso, "proceso", None)
        if sub == "/resumen-general/elecciones":
            return Answer(200, self.elecciones, "elecciones", None)
        if sub == "/participacion-ciudadana/totales":
            return Answer(200, self.participacion, "participacion", None)
        if sub in ("/resumen-general/totales", "/resumen-general/participantes"):
            kind = sub.rsplit("/", 1)[-1]
            lvl = query.get("tipoFiltro", "")
            ub = (query.get("idUbigeoProvincia") if lvl == "ubigeo_nivel_02"
                  else query.get("idUbigeoDepartamento")) or ""
            body = self.erm.get((kind, query.get("idEleccion", ""), lvl, ub.zfill(6)))
            if body is None:
                return Answer(204, b"", f"{kind}|none", None)
            return Answer(200, body, f"{kind}|{lvl}|{ub}", None)
        if sub.startswith("/actas/") and sub.count("/") == 2:
            return Answer(200, self.null_acta, "acta|null", None)
        return Answer(404, self.spring, "spring404", None)


# --- the server ---------------------------------------------------------------------------

@dataclass(slots=True)
class Served:
    """One answer the fake gave (the test's view of the truth)."""

    t: datetime
    path: str
    route: str
    status: int
    state: int | None
    fault: str | None
    sha256: str


@dataclass(slots=True)
class _Burst:
    kind: str
    remaining: int
    match: str = ""
    delay_s: float = 0.0


@dataclass(slots=True)
class _Random:
    rate: float
    kinds: tuple[str, ...]
    max_burst: int
    rng: random.Random
    match: str = ""
    current: _Burst | None = None
    counts: dict[str, int] = field(default_factory=dict)


class FakeOnpe:
    """The fake backend. ``start()`` binds 127.0.0.1 (an ephemeral port by default);
    ``url`` is the root (2021 routes at ``/results``, 2026 under
    ``/presentacion-backend``); ``/`` is the web app's HTML shell and sets a cookie.

    ``require_browser=True`` behaves like ONPE's WAF: API calls without the primed
    cookie or without a Chrome User-Agent get the HTML shell with status 200.
    """

    def __init__(self, timeline: Timeline, *, clock: Clock | None = None,
                 host: str = "127.0.0.1", port: int = 0, require_browser: bool = False,
                 slow_s: float = 1.0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fake ONPE binds loopback only")
        self.timeline = timeline
        self.clock: Clock = clock or SystemClock()
        self.host, self.port = host, port
        self.require_browser = require_browser
        self.slow_s = slow_s
        self.log: list[Served] = []
        self.requests = 0
        self._bursts: list[_Burst] = []
        self._random: _Random | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.start_at: datetime | None = None
        self.frozen_state: int | None = None

    # -- control ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def backend_url(self) -> str:
        return self.url + BACKEND

    def start(self) -> FakeOnpe:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.start_at = self.clock.now()
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOnpe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, kind: str, count: int = 1, *, match: str = "",
               delay_s: float | None = None) -> None:
        """The next ``count`` API answers whose path and query contain ``match`` get
        ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._bursts.append(_Burst(kind, count, match,
                                       self.slow_s if delay_s is None else delay_s))

    def clear_faults(self) -> None:
        with self._lock:
            self._bursts.clear()
            self._random = None

    def random_faults(self, rate: float, *, kinds: tuple[str, ...] = SOFT_FAULTS,
                      max_burst: int = 4, seed: int = 0, match: str = "") -> None:
        """Each API answer starts a fault burst with probability ``rate``: a kind drawn
        from ``kinds`` repeated for 1..``max_burst`` answers (storms)."""
        with self._lock:
            self._random = _Random(rate, kinds, max_burst, random.Random(seed), match)

    def fault_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.log:
            if s.fault:
                out[s.fault] = out.get(s.fault, 0) + 1
        return out

    def state_index(self) -> int:
        if self.frozen_state is not None:
            return self.frozen_state
        assert self.start_at is not None
        el = (self.clock.now() - self.start_at).total_seconds()
        k = 0
        for i in range(self.timeline.n_states):
            if self.timeline.offset_s(i) <= el:
                k = i
            else:
                break
        return k

    def _next_fault(self, path: str) -> _Burst | None:
        with self._lock:
            for b in self._bursts:
                if b.remaining > 0 and b.match in path:
                    b.remaining -= 1
                    if b.remaining == 0:
                        self._bursts.remove(b)
                    return b
            r = self._random
            if r is None or r.match not in path:
                return None
            if r.current is not None and r.current.remaining > 0:
                r.current.remaining -= 1
                return r.current
            if r.rng.random() < r.rate:
                kind = r.rng.choice(r.kinds)
                n = r.rng.randint(1, r.max_burst)
                r.current = _Burst(kind, n - 1, "", self.slow_s)
                return r.current
            return None

    def _record(self, path: str, ans: Answer, fault: str | None, body: bytes) -> None:
        with self._lock:
            self.log.append(Served(self.clock.now(), path, ans.route, ans.status, ans.state,
                                   fault, hashlib.sha256(body).hexdigest()))

    # -- answering -------------------------------------------------------------------
    def respond(self, path: str, query: dict[str, str], headers: Mapping[str, str],
                raw: str = "") -> tuple[Answer, str | None, float, bool]:
        """(answer, fault kind, delay before answering, drop the connection). Faults
        match on ``raw`` (path and query string)."""
        self.requests += 1
        if path in ("/", "/index.html", "/main.js"):
            return Answer(200, HTML_SHELL, "site", None, "text/html; charset=utf-8",
                          (("Set-Cookie", "aws-waf-token=primed; Path=/"),)), None, 0.0, False
        if self.require_browser and ("aws-waf-token=primed" not in headers.get("cookie", "")
                                     or "Chrome/" not in headers.get("user-agent", "")):
            return Answer(200, HTML_SHELL, "waf", None, "text/html; charset=utf-8"), \
                "waf", 0.0, False
        k = self.state_index()
        fault = self._next_fault(raw or path)
        kind = fault.kind if fault else None
        variant = kind if kind in ("drift", "wrong_election", "backwards") else ""
        if kind == "backwards":
            k = max(0, k - 3)
        ans = self.timeline.answer(k, path, query, variant=variant)  # type: ignore[call-arg]
        if ans is None:
            ans = Answer(200, HTML_SHELL, "unknown", None, "text/html; charset=utf-8")
        if kind is None or kind in ("backwards", "drift", "wrong_election"):
            return ans, kind, 0.0, False
        state, route = ans.state, ans.route
        html = "text/html; charset=utf-8"
        faulty: dict[str, Answer] = {
            "html200": Answer(200, HTML_SHELL, route, state, html),
            "no_content204": Answer(204, b"", route, state),
            "empty200": Answer(200, b"", route, state),
            "unauthorized401": Answer(401, CLOUDFRONT_403, route, state, html),
            "forbidden403": Answer(403, CLOUDFRONT_403, route, state, html),
            "too_many429": Answer(429, b'{"message":"Too Many Requests"}', route, state,
                                  headers=(("Retry-After", "2"),)),
            "error500": Answer(500, _dumps({"status": 500, "error": "Internal Server Error",
                                            "message": ""}), route, state),
            "error502": Answer(502, b"<html><body>502 Bad Gateway</body></html>", route,
                               state, html),
            "error503": Answer(503, b"", route, state),
            "lambda_timeout": Answer(200, LAMBDA_TIMEOUT, route, state, "text/plain"),
            "gateway_400_repr": Answer(400, GATEWAY_REPR, route, state),
            "success_false": Answer(200, _dumps({"success": False, "message":
                                                 "Ocurrió un error", "data": None}),
                                    route, state),
            "spring_error": Answer(404, SPRING_404, route, state),
            "null_data": Answer(200, _envelope({"contabilizadas": None, "totalActas": None,
                                                "fechaActualizacion": None}, "")
                                if path.startswith(BACKEND) else b"{}", route, state),
            "truncated": Answer(ans.status, ans.body[: max(1, len(ans.body) // 2)], route,
                                state),
        }
        if kind == "slow":
            return ans, kind, fault.delay_s if fault else self.slow_s, False
        if kind == "drop":
            return ans, kind, 0.0, True
        return faulty[kind], kind, 0.0, False


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOnpe
    protocol_version = "HTTP/1.1"  # keep-alive, as CloudFront
    disable_nagle_algorithm = True  # headers and body are separate writes
    server_version = "CloudFront"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query))
        headers = {k.lower(): v for k, v in self.headers.items()}
        ans, fault, delay, drop = self.owner.respond(split.path, query, headers, self.path)
        if delay > 0:
            time.sleep(delay)
        if drop:
            self.owner._record(split.path, ans, fault, b"")
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.owner._record(split.path, ans, fault, ans.body)
        try:
            self.send_response(ans.status)
            self.send_header("Content-Type", ans.content_type)
            for k, v in ans.headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(ans.body)))
            self.end_headers()
            if ans.body:
                self.wfile.write(ans.body)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client gave up (its timeout), as real clients do
