"""Fetching: the URLs of each scope, the election id, and one poll of a unit scope.

Every request goes through the watcher's :class:`~escrutinio.live.transport.Transport`
(global rate limit, backoff, raw log); what comes back is handed to the
:class:`~escrutinio.live.accept.Acceptor`. A 401/403 (``hard_blocked``) raises
:class:`HardBlocked`, which stops the cycle.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from escrutinio.live.accept import Acceptor
from escrutinio.live.classify import Outcome
from escrutinio.live.config import LiveConfig, Scope, Stack
from escrutinio.live.parse import election_from_proceso, ubigeo_2021
from escrutinio.live.state import EventLog, LiveState
from escrutinio.live.transport import FetchResult, Transport


class HardBlocked(Exception):
    pass


def query(**params: Any) -> str:
    """A query string of the parameters that are set."""
    return urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})


class Fetcher:
    def __init__(self, cfg: LiveConfig, transport: Transport, live: LiveState,
                 emit: EventLog, accept: Acceptor) -> None:
        self.cfg = cfg
        self.transport = transport
        self.live = live
        self.emit = emit
        self.accept = accept

    # -- URLs ------------------------------------------------------------------------------
    def unit_urls(self, scope: Scope) -> dict[str, str | list[str]]:
        base, eid = self.cfg.base_url, self.live.election_id
        if self.cfg.stack is Stack.ONPE2021:
            return {"results": f"{base}/results/{eid}/{ubigeo_2021(scope, self.cfg)}"
                               "?name=param"}
        if scope.kind == "national":
            q = query(idEleccion=eid, tipoFiltro="eleccion")
        elif scope.kind == "ambito":
            q = query(idEleccion=eid, tipoFiltro="ambito_geografico",
                      idAmbitoGeografico=scope.code)
        else:
            q = query(idEleccion=eid, tipoFiltro="ubigeo_nivel_01",
                      idAmbitoGeografico=2 if scope.abroad else 1,
                      idUbigeoDepartamento=scope.code)
        return {"totales": f"{base}/resumen-general/totales?{q}",
                "participantes": [f"{base}/{p}?{q}" for p in self.live.participants_order]}

    def acta_url(self, scope: Scope) -> str:
        base = self.cfg.base_url
        if self.cfg.stack is Stack.ONPE2021:
            return f"{base}/mesas/detalle/{scope.code}?name=param"
        if scope.kind == "acta":
            return f"{base}/actas/{scope.code}"
        q = query(codigoMesa=scope.code, idEleccion=self.live.election_id)
        return f"{base}/actas/buscar/mesa?{q}"

    # -- requests --------------------------------------------------------------------------
    def get(self, url: str, scope: str, endpoint: str) -> FetchResult:
        res = self.transport.get(url, scope=scope, endpoint=endpoint)
        if res.classification.outcome is Outcome.HARD_BLOCKED:
            raise HardBlocked(f"{res.classification.reason} at {url}")
        return res

    def discover(self) -> bool:
        """Election id from ``proceso-electoral-activo``; else the configured fallback,
        after a probe shows the backend answers for it."""
        url = f"{self.cfg.base_url}/proceso/proceso-electoral-activo"
        res = self.get(url, "proceso", "proceso")
        eid = (election_from_proceso(res.classification.payload, url=url)
               if res.classification.outcome is Outcome.OK else None)
        if eid is None:
            return self._fallback(res.classification.reason)
        if self.cfg.election_id is not None and eid != self.cfg.election_id:
            self.emit("election_id_differs", "warning", None,
                      f"el backend anuncia la elección {eid}, la configuración dice "
                      f"{self.cfg.election_id}; se usa {eid}",
                      f"the backend announces election {eid}, the configuration says "
                      f"{self.cfg.election_id}; using {eid}")
        self.live.election_id = eid
        self.emit("election_discovered", "info", None,
                  f"elección {eid} (proceso-electoral-activo)",
                  f"election {eid} (proceso-electoral-activo)", election_id=eid)
        return True

    def _fallback(self, why: str) -> bool:
        fb = self.cfg.election_id
        if fb is None:
            self.emit("election_unknown", "error", None,
                      "no se pudo descubrir la elección y no hay fallback_id",
                      "the election could not be discovered and there is no fallback_id")
            return False
        q = query(idEleccion=fb, tipoFiltro="eleccion")
        probe = self.get(f"{self.cfg.base_url}/resumen-general/totales?{q}", "proceso",
                         "probe")
        if probe.classification.outcome is Outcome.OK:
            self.live.election_id = fb
            self.emit("election_fallback", "warning", None,
                      f"descubrimiento falló ({why}); se usa el id de respaldo {fb}, validado",
                      f"discovery failed ({why}); using the validated fallback id {fb}",
                      election_id=fb)
            return True
        self.emit("election_fallback_invalid", "error", None,
                  f"el id de respaldo {fb} no responde ({probe.classification.reason})",
                  f"the fallback id {fb} does not answer ({probe.classification.reason})")
        return False

    def participants(self, urls: list[str], scope: str) -> FetchResult:
        """The first variant of the candidates' endpoint that answers (remembered)."""
        res: FetchResult | None = None
        order = self.live.participants_order
        for i, url in enumerate(urls):
            res = self.get(url, scope, "participantes")
            if res.classification.outcome in (Outcome.OK, Outcome.NO_DATA):
                if i > 0:  # remember the variant that answers
                    variant = order.pop(i)
                    order.insert(0, variant)
                    self.emit("participants_variant", "warning", scope,
                              f"se usa la variante {variant}", f"using variant {variant}")
                return res
        assert res is not None
        return res

    # -- one unit scope --------------------------------------------------------------------
    def poll_unit(self, scope: Scope) -> str:
        """Fetch one unit scope and run it through acceptance (one torn-read refetch)."""
        result = ""
        for _ in range(2 if self.cfg.validation.refetch_torn else 1):
            result = self._poll_once(scope)
            if result != "torn":
                return result
        return result

    def _poll_once(self, scope: Scope) -> str:
        urls = self.unit_urls(scope)
        if self.cfg.stack is Stack.ONPE2021:
            r = self.get(str(urls["results"]), scope.key, "results")
            if r.classification.outcome is not Outcome.OK:
                return self.accept.failure(scope.key, r)
            return self.accept.ingest_unit(scope, {"results": (r.response, r.classification)})
        t = self.get(str(urls["totales"]), scope.key, "totales")
        if t.classification.outcome is not Outcome.OK:
            return self.accept.failure(scope.key, t)
        plist = urls["participantes"]
        assert isinstance(plist, list)
        p = self.participants(plist, scope.key)
        if p.classification.outcome is not Outcome.OK:
            return self.accept.failure(scope.key, p)
        return self.accept.ingest_unit(scope, {
            "totales": (t.response, t.classification),
            "participantes": (p.response, p.classification)})


__all__ = ["Fetcher", "HardBlocked", "query"]
