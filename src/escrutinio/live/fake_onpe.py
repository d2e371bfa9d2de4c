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
from functools import lru_cache
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


@dataclass(frozen=True)
class ActaUniverse:
    """The actas a fake count is made of, with their real figures and places.

    :meth:`from_2021` takes them from the 2021 runoff's per-acta file (86,488 actas, real
    RENIEC ubigeos, polling places and names, home and abroad), so that a whole district,
    department or continent can be crawled; the 2021 parties are re-labelled as the 2026
    runoff's (Fuerza Popular keeps Fujimori's figures, Juntos por el Perú gets Castillo's).
    Actas that went through the JEE in 2021 (at the JEE on 15 June, or annulled) go
    through the JEE in the fake count too.
    """

    mesa: tuple[str, ...]
    area3: tuple[str, ...]
    electors: np.ndarray
    cast: np.ndarray
    blank: np.ndarray
    null: np.ndarray
    challenged: np.ndarray
    votes: np.ndarray  # (n, candidates), in the timeline's candidate order
    observed: np.ndarray  # bool: goes through the JEE
    final: np.ndarray  # int8: 0 counted, 1 annulled, 2 mesa not installed
    place: tuple[str | None, ...]
    names: Mapping[str, str]  # ubigeo -> name (area1, area2, area3)

    def __len__(self) -> int:
        return len(self.mesa)

    @staticmethod
    def from_2021(runoff_dir: str | Path, regions: tuple[str, ...] = ()) -> ActaUniverse:
        """``peru-2021-runoff/`` -> the actas whose ubigeo is inside one of ``regions``
        (area1 ``DD0000``, area2 ``DDPP00`` or area3 codes; empty = all 86,488)."""
        return _universe_2021(str(Path(runoff_dir).resolve()), tuple(sorted(regions)))

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame({"mesa": list(self.mesa), "area3": list(self.area3)})


@lru_cache(maxsize=2)
def _actas_2021(root: str) -> tuple[pl.DataFrame, dict[str, str]]:
    """The 2021 runoff's final per-acta file joined with the JEE states of 15 June, and
    the place names (parsed once per process: about a second)."""
    from escrutinio.sources.onpe_files import parse_provisional, parse_ronderos

    actas = Path(root) / "actas"
    final = parse_ronderos(actas / "actas_electorales_ronderos.pe.csv.gz",
                           as_of="2021-06-20T00:00:00Z")
    prov = parse_provisional(actas / "actas_electorales.csv.gz").frame.select(
        "acta_id", pl.col("status").alias("st15"))
    f = (final.frame.filter(pl.col("area3_code").is_not_null()).sort("acta_id")
         .join(prov, on="acta_id", how="left"))
    assert final.geography is not None  # parse_ronderos always reads the place names
    names = dict(zip(final.geography["code"], final.geography["name"], strict=True))
    return f, names


def _universe_2021(root: str, regions: tuple[str, ...]) -> ActaUniverse:
    f, names = _actas_2021(root)
    if regions:
        c = pl.col("area3_code")
        keep = pl.lit(False)
        for r in (x.zfill(6) for x in regions):
            keep = keep | (c.str.slice(0, 2) == r[:2] if r.endswith("0000")
                           else c.str.slice(0, 4) == r[:4] if r.endswith("00") else c == r)
        f = f.filter(keep)
    observed = (f["st15"].is_in(["jee", "observed", "annulled"]).fill_null(False)
                | (f["status"] == "annulled")).to_numpy()
    kind = {"counted": 0, "annulled": 1, "not_installed": 2}
    ints = {c: f[c].fill_null(0).to_numpy().astype(np.int64)
            for c in ("electors", "cast", "blank", "null", "challenged", "v_fujimori",
                      "v_castillo")}
    return ActaUniverse(
        mesa=tuple(f["acta_id"].to_list()), area3=tuple(f["area3_code"].to_list()),
        electors=ints["electors"], cast=ints["cast"], blank=ints["blank"],
        null=ints["null"], challenged=ints["challenged"],
        votes=np.stack([ints["v_fujimori"], ints["v_castillo"]], axis=1),
        observed=observed,
        final=np.array([kind.get(s, 0) for s in f["status"].to_list()], dtype=np.int8),
        place=tuple(f["polling_place"].to_list()), names=names)


class Synthetic2026:
    """A consistent synthetic count in ``presentacion-backend`` format.

    Actas (92,766 by default) are drawn once (seeded): unit, electors, votes, the time
    each is counted, and for ~4% a detour through the JEE — or taken from an
    :class:`ActaUniverse` (real 2021 actas), only their timing drawn. State ``k`` counts
    the actas whose time is ≤ k; every invariant holds exactly (counted + JEE + pending
    = total; candidates add up to the valid votes; national = Σ units = Σ actas).
    ``corrections`` are states where one counted acta goes back to the JEE (for
    ``correction_len`` states) and nothing else is counted, so the national counts go
    down: a real correction. ``freezes`` are states where nothing changes but
    ``fechaActualizacion``.

    The cold path is served too: the geography (``/ubigeos/dep-prov-distritos`` and the
    ``departamentos`` / ``provincias`` / ``distritos`` tree), the paginated acta lists
    of each district (``/actas``; first page ``first_page``, 0 or 1) and every acta
    (``/actas/{id}``, ``/actas/buscar/mesa``). Synthetic actas sit in
    ``districts_per_unit`` districts of province ``01`` of their first-level area;
    ``extra_jee`` sends that share of the actas through the JEE as well.
    """

    def __init__(self, *, seed: int = 2026, n_states: int = 48, step_s: float = 300.0,
                 onpe_step_s: float | None = None, election_id: int = 10,
                 candidates: tuple[SynthCandidate, ...] = RUNOFF_2026,
                 units: tuple[str, ...] = tuple(PERU_AREA1), n_actas: int = 92_766,
                 corrections: tuple[int, ...] = (), correction_len: int = 3,
                 freezes: tuple[int, ...] = (), n_watch_actas: int = 12,
                 start_as_of: datetime | None = None, pending_at_end: float = 0.01,
                 universe: ActaUniverse | None = None, first_page: int = 0,
                 districts_per_unit: int = 4, extra_jee: float = 0.0) -> None:
        self.n_states = n_states
        self.step_s = step_s
        self.onpe_step_s = onpe_step_s if onpe_step_s is not None else step_s
        self.election_id = election_id
        self.candidates = candidates
        self.first_page = first_page
        self.start_as_of = start_as_of or datetime(2026, 6, 7, 18, 0, tzinfo=LIMA)
        rng = np.random.Generator(np.random.PCG64(seed))
        k = len(candidates)
        if universe is None:
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
            base = rng.dirichlet(np.full(k, 4.0), n_u)  # each unit's leaning
            votes = rng.multinomial(valid, base[unit])
            challenged = np.zeros(n_actas, dtype=np.int64)
            final = np.zeros(n_actas, dtype=np.int8)
            dpu = max(1, districts_per_unit)
            self.mesa = [f"{i:06d}" for i in range(n_actas)]
            self.area3 = [f"{units[u][:2]}01{1 + i % dpu:02d}" for i, u in enumerate(unit)]
            self.place: list[str | None] = [None] * n_actas
            self.names = {u: PERU_AREA1.get(u, f"AREA {u}") for u in units}
        else:
            if universe.votes.shape[1] != k:
                raise ValueError(f"the universe has {universe.votes.shape[1]} candidates, "
                                 f"the timeline {k}")
            units = tuple(sorted({a[:2] + "0000" for a in universe.area3}))
            n_u, n_actas = len(units), len(universe)
            abroad = np.array([u.startswith("9") for u in units])
            pos = {u: i for i, u in enumerate(units)}
            unit = np.array([pos[a[:2] + "0000"] for a in universe.area3], dtype=np.int64)
            electors, cast = universe.electors, universe.cast
            blank, null, challenged = universe.blank, universe.null, universe.challenged
            votes = universe.votes
            valid = votes.sum(axis=1)
            final = universe.final
            self.mesa, self.area3 = list(universe.mesa), list(universe.area3)
            self.place, self.names = list(universe.place), dict(universe.names)
        self.units = units
        # time each acta is counted (in state units): abroad later, a skewed arrival curve
        last = n_states - 1
        shape_b = np.where(abroad[unit], 1.2, 2.6)
        t_count = 0.05 + (last - 0.05) * rng.beta(1.3, shape_b)
        drawn = rng.random(n_actas) < 0.04
        observed = drawn if universe is None else universe.observed.copy()
        if extra_jee > 0:  # more detours through the JEE than the real actas had
            observed |= (rng.random(n_actas) < extra_jee) & (final == 0)
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
            cand = np.flatnonzero((t_count < s - 1) & ~observed & (final == 0))
            if cand.size == 0:  # nothing counted yet: no correction possible
                continue
            idx = int(cand[rng.integers(0, cand.size)])
            self.uncount[idx] = (s, s + correction_len)
        self.unit, self.electors, self.cast = unit, electors, cast
        self.blank, self.null, self.valid, self.votes = blank, null, valid, votes
        self.challenged, self.final = challenged, final
        self.t_count, self.t_jee, self.observed = t_count, t_jee, observed
        # a few actas to follow on the cold path (one per status path, and the corrected)
        watch = list(self.uncount)
        jee_path = np.flatnonzero(observed & np.isfinite(t_count))
        watch += list(rng.choice(jee_path, min(4, jee_path.size), replace=False))
        plain = np.flatnonzero(~observed)
        watch += list(rng.choice(plain, min(plain.size, max(0, n_watch_actas - len(watch))),
                                 replace=False))
        self.watch_actas = [int(i) for i in dict.fromkeys(watch)][:max(n_watch_actas, 1)]
        self._by_id = {self.acta_id_of(i): i for i in range(n_actas)}
        self._by_mesa = {m: i for i, m in enumerate(self.mesa)}
        order = sorted(range(n_actas), key=lambda i: (self.area3[i], self.mesa[i]))
        self._by_district: dict[str, list[int]] = {}
        for i in order:
            self._by_district.setdefault(self.area3[i], []).append(i)
        self._cache: dict[int, dict[str, Any]] = {}
        self._status_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    # -- truth ---------------------------------------------------------------------------
    def offset_s(self, k: int) -> float:
        return k * self.step_s

    def as_of(self, k: int) -> datetime:
        return self.start_as_of + timedelta(seconds=k * self.onpe_step_s)

    def status_at(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(counted, at the JEE) per acta in state ``k`` (read-only arrays)."""
        with self._lock:
            hit = self._status_cache.get(k)
        if hit is not None:
            return hit
        counted = self.t_count <= k
        for idx, (a, b) in self.uncount.items():
            if a <= k < b:
                counted[idx] = False
        jee = ~counted & (self.t_jee <= k)
        for idx, (a, b) in self.uncount.items():
            if a <= k < b:
                jee[idx] = True
        counted.flags.writeable = False
        jee.flags.writeable = False
        with self._lock:
            if len(self._status_cache) > 64:
                self._status_cache.clear()
            self._status_cache[k] = (counted, jee)
        return counted, jee

    def acta_status(self, k: int, i: int) -> str:
        """The acta's :class:`~escrutinio.domain.ActaStatus` value in state ``k``."""
        counted, jee = self.status_at(k)
        if counted[i]:
            return ("counted", "annulled", "not_installed")[int(self.final[i])]
        return "jee" if jee[i] else "pending"

    def acta_truth(self, k: int, i: int, codes: list[str]) -> dict[str, Any]:
        """What a correct acta snapshot holds for acta ``i`` in state ``k`` (status and,
        once digitised, figures; the canonical column names)."""
        status = self.acta_status(k, i)
        out: dict[str, Any] = {"status": status, "area3_code": self.area3[i]}
        if status in ("counted", "annulled", "jee"):
            out |= {"cast": int(self.cast[i]), "blank": int(self.blank[i]),
                    "null": int(self.null[i]),
                    **{f"v_{c}": int(self.votes[i, n]) for n, c in enumerate(codes)}}
        return out

    def index_of_mesa(self, mesa: str) -> int:
        return self._by_mesa[mesa]

    def region_actas(self, *areas: str) -> list[int]:
        """Indices of the actas inside ``areas`` (see :func:`~escrutinio.live.config.
        area_matches`)."""
        from escrutinio.live.config import area_matches

        return [i for d, idx in self._by_district.items()
                if any(area_matches(d, a) for a in areas) for i in idx]

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

    def acta_id_of(self, i: int) -> str:
        """The backend's ``idActa``: the mesa code and the election id (unique)."""
        return str(int(self.mesa[i]) * 100 + self.election_id)

    def _acta_id(self, i: int) -> str:  # kept for older callers
        return self.acta_id_of(i)

    def mesa_code(self, i: int) -> str:
        return self.mesa[i]

    def _ms(self, k: int) -> int:
        return int(self.as_of(k).timestamp() * 1000)

    def acta_data(self, k: int, i: int, *, ad_keys: bool = False, variant: str = ""
                  ) -> dict[str, Any]:
        counted, jee = self.status_at(k)
        code = "C" if counted[i] else "E" if jee[i] else "P"
        u = self.area3[i]
        # the state history: each change at the ONPE time of the state it happened in
        line = [{"codigoEstadoActa": "P", "fechaRegistro": self._ms(0)}]
        if np.isfinite(self.t_jee[i]) and self.t_jee[i] <= k:
            line.append({"codigoEstadoActa": "E",
                         "fechaRegistro": self._ms(int(np.ceil(self.t_jee[i])))})
        if self.t_count[i] <= k:
            line.append({"codigoEstadoActa": "C",
                         "fechaRegistro": self._ms(int(np.ceil(self.t_count[i])))})
        a, b = self.uncount.get(i, (None, None))
        if a is not None and b is not None and a <= k:
            line.append({"codigoEstadoActa": "E", "fechaRegistro": self._ms(a)})
            if b <= k:
                line.append({"codigoEstadoActa": "C", "fechaRegistro": self._ms(b)})
        fin = int(self.final[i])
        detalle = None
        if code in ("C", "E") and not (code == "C" and fin == 2):
            vk, dk, ck = ("adVotos", "adDescripcion", "adCodigo") if ad_keys else (
                "nvotos", "descripcion", "ccodigo")
            wrong = variant == "wrong_election"
            detalle = [{ck: f"{(900 + n) if wrong else int(c.authority_code):08d}",
                        dk: c.party, "nposicion": n + 1, vk: int(self.votes[i, n])}
                       for n, c in enumerate(self.candidates)]
            detalle += [{ck: "80", dk: "VOTOS EN BLANCO", vk: int(self.blank[i])},
                        {ck: "81", dk: "VOTOS NULOS", vk: int(self.null[i])}]
            if int(self.challenged[i]):
                detalle.append({ck: "82", dk: "VOTOS IMPUGNADOS",
                                vk: int(self.challenged[i])})
        header = code == "C"
        desc = {"C": ("CONTABILIZADA", "ACTA ELECTORAL ANULADA", "MESA NO INSTALADA")[fin],
                "E": "PARA ENVIO AL JEE", "P": "PENDIENTE"}[code]
        electors: Any = int(self.electors[i])
        if variant == "drift":  # a percentage where a count belongs
            electors = round(100.0 * int(self.cast[i]) / max(1, electors), 3) + 0.001
        return {
            "id": int(self.acta_id_of(i)), "idMesa": None, "codigoMesa": self.mesa[i],
            "idEleccion": self.election_id, "ubigeoDistrito": u,
            "codigoEstadoActa": code, "estadoActa": "N" if header and fin == 2 else code,
            "descripcionEstadoActa": desc, "nombreLocalVotacion": self.place[i],
            "totalElectoresHabiles": electors,
            "totalVotosEmitidos": int(self.cast[i]) if header else None,
            "totalVotosValidos": int(self.valid[i]) if header else None,
            "detalle": detalle, "lineaTiempo": line, "archivos": [],
        }

    # -- geography and acta lists (the cold path) ------------------------------------------
    def district_codes(self) -> list[str]:
        return sorted(self._by_district)

    def geo_name(self, code: str) -> str:
        if code in self.names:
            return self.names[code]
        if code.endswith("0000"):
            return PERU_AREA1.get(code, f"AREA {code}")
        return (f"PROVINCIA {code}" if code.endswith("00") else f"DISTRITO {code}")

    def geography(self) -> list[tuple[str, str, str, str | None]]:
        """(code, name, level, parent) of every area that has actas."""
        out: dict[str, tuple[str, str, str, str | None]] = {}
        for d in self.district_codes():
            a1, a2 = d[:2] + "0000", d[:4] + "00"
            out.setdefault(a1, (a1, self.geo_name(a1), "area1", None))
            out.setdefault(a2, (a2, self.geo_name(a2), "area2", a1))
            out.setdefault(d, (d, self.geo_name(d), "area3", a2))
        return sorted(out.values(), key=lambda g: (g[2], g[0]))

    def _geo_answer(self, sub: str, query: Mapping[str, str], variant: str) -> Answer:
        amb = query.get("idAmbitoGeografico", "")

        def in_ambito(code: str) -> bool:
            return amb not in ("1", "2") or code.startswith("9") == (amb == "2")

        if sub.endswith("dep-prov-distritos"):
            rows = [{"ubigeo": d, "nombre": f"{self.geo_name(d[:2] + '0000')} \\ "
                                            f"{self.geo_name(d[:4] + '00')} \\ "
                                            f"{self.geo_name(d)}",
                     "idAmbitoGeografico": 2 if d.startswith("9") else 1}
                    for d in self.district_codes()]
            if variant == "drift":
                rows[0]["ubigeo"] = "LIMA"
            return Answer(200, _envelope(rows, ""), "geo|flat", None)
        level, parent_key = {"departamentos": ("area1", None),
                             "provincias": ("area2", "idUbigeoDepartamento"),
                             "distritos": ("area3", "idUbigeoProvincia")}[sub.rsplit("/", 1)[-1]]
        parent = (query.get(parent_key) or "").zfill(6) if parent_key else None
        nodes = [g for g in self.geography() if g[2] == level and in_ambito(g[0])
                 and (parent is None or g[3] == parent)]
        rows = [{"ubigeo": int(c), "nombre": n} for c, n, _l, _p in nodes]
        return Answer(200, _envelope(rows, ""), f"geo|{level}|{parent or amb}", None)

    def list_item(self, k: int, i: int, *, variant: str = "") -> dict[str, Any]:
        counted, jee = self.status_at(k)
        code = "C" if counted[i] else "E" if jee[i] else "P"
        d = self.area3[i]
        return {"id": int(self.acta_id_of(i)), "codigoMesa": self.mesa[i],
                "idEleccion": 99 if variant == "wrong_election" else self.election_id,
                "codigoEstadoActa": "X" if variant == "drift" else code,
                "estadoActa": "N" if code == "C" and self.final[i] == 2 else code,
                "descripcionEstadoActa": {"C": "CONTABILIZADA", "E": "PARA ENVIO AL JEE",
                                          "P": "PENDIENTE"}[code],
                "idAmbitoGeografico": 2 if d.startswith("9") else 1,
                "ubigeoNivel01": int(d[:2] + "0000"), "ubigeoNivel02": int(d[:4] + "00"),
                "ubigeoNivel03": int(d), "nombreLocalVotacion": self.place[i],
                "totalElectoresHabiles": int(self.electors[i]),
                "totalVotosEmitidos": int(self.cast[i]) if code == "C" else None,
                "archivos": []}

    def _list_answer(self, k: int, query: Mapping[str, str], variant: str) -> Answer:
        raw = query.get("idUbigeo", "")
        try:
            pagina, size = int(query.get("pagina", "0")), int(query.get("tamanio", "100"))
        except ValueError:
            pagina, size = -1, 0
        if not raw.isdigit() or size < 1 or pagina < 0:
            return Answer(500, _dumps({"status": 500, "error": "Internal Server Error",
                                       "message": "parámetros inválidos"}), "list|bad", None)
        d = raw.zfill(6)
        amb = query.get("idAmbitoGeografico")
        idx = self._by_district.get(d, [])
        if amb in ("1", "2") and d.startswith("9") != (amb == "2"):
            idx = []
        page = pagina - self.first_page
        rows = idx[page * size:(page + 1) * size] if page >= 0 else []
        counted, jee = self.status_at(k)
        sel = np.array(idx, dtype=np.int64)
        c = int(counted[sel].sum()) if sel.size else 0
        j = int(jee[sel].sum()) if sel.size else 0
        data = {"content": [self.list_item(k, i, variant=variant) for i in rows],
                "totalPaginas": -(-len(idx) // size), "totalRegistros": len(idx),
                "paginaActual": pagina, "tamanio": size, "contabilizada": c,
                "observada": j, "pendiente": len(idx) - c - j}
        return Answer(200, _envelope(data, ""), f"list|{d}|{pagina}", k)

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
        eid_ok = query.get("idEleccion") == str(self.election_id)
        if sub in ("/resumen-general/totales", "/resumen-general/participantes",
                   "/eleccion-presidencial/participantes-ubicacion-geografica-nombre"):
            if not eid_ok:
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
        if sub in ("/ubigeos/dep-prov-distritos", "/ubigeos/departamentos",
                   "/ubigeos/provincias", "/ubigeos/distritos"):
            if not eid_ok:
                return Answer(204, b"", "wrong_election", None)
            return self._geo_answer(sub, query, variant)
        if sub == "/actas":
            if not eid_ok:
                return Answer(204, b"", "wrong_election", None)
            return self._list_answer(k, query, variant)
        if sub.startswith("/actas/buscar/mesa"):
            mesa = query.get("codigoMesa", "")
            idx = self._by_mesa.get(mesa)
            if idx is None or not eid_ok:
                return Answer(204, b"", f"mesa|{mesa}", k)
            return Answer(200, _envelope([self.acta_data(k, idx, ad_keys=True,
                                                         variant=variant)], ""),
                          f"mesa|{mesa}", k)
        if sub.startswith("/actas/") and sub.count("/") == 2:
            aid = sub.rsplit("/", 1)[-1]
            idx = self._by_id.get(aid)
            if idx is None:  # the documented answer for an id that does not exist
                return Answer(200, _envelope({"id": None, "idMesa": None, "codigoMesa": None,
                                              "descripcionMesa": None, "idEleccion": None,
                                              "detalle": None, "lineaTiempo": None,
                                              "archivos": None}, ""), f"acta|{aid}", k)
            return Answer(200, _envelope(self.acta_data(k, idx, variant=variant), ""),
                          f"acta|{aid}", k)
        return Answer(404, SPRING_404, "spring404", None)

    def acta_ids(self) -> list[str]:
        return [self.acta_id_of(i) for i in self.watch_actas]


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
                timeout = self.lambda_body if u == "050000" else self.lambda_body2
                return Answer(200, timeout, f"results|{u}", None)
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
