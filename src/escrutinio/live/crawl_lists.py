"""The crawl's districts and their acta lists (docs/live.md, "The cold path", step 2):
``/actas?pagina=&tamanio=&idEleccion=&idAmbitoGeografico=&idUbigeo=`` per district
(2021: ``/mesas/locales/{ubigeo}`` then ``/mesas/actas/11/{ubigeo}/{local}``), every page
up to ``totalPaginas``; whether the first page is 0 or 1 is found out once and
remembered. A list is fetched again every ``lists_s`` while its district has actas that
are not final: the list says which actas moved.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from escrutinio.live.classify import Outcome
from escrutinio.live.config import Stack
from escrutinio.live.crawl_geo import backoff
from escrutinio.live.frontier import LIST_2021, NO_DATA_BELIEVED, Acta, District, moved
from escrutinio.live.parse import (
    ActaPage,
    ListedActa,
    ParseDrift,
    parse_acta_list_2026,
    parse_locales_2021,
    parse_mesas_2021,
)

if TYPE_CHECKING:
    from escrutinio.live.classify import RawResponse
    from escrutinio.live.crawl import Crawler


class ListCrawl:
    def __init__(self, crawler: Crawler) -> None:
        self.c = crawler
        self.w = crawler.w
        self.cfg = crawler.cfg
        self.cold = crawler.cold
        self.f = crawler.f
        self.stats = crawler.stats

    def district(self, code: str) -> District:
        d = self.f.districts.get(code)
        if d is None:
            d = self.f.districts[code] = District(code)
            self.f.touch("district", code)
            self.c.dqueue.append(code)
        return d

    def sync_districts(self) -> None:
        if not self.cold.crawl:
            return
        for g in self.f.geo.values():
            if g.level == "area3" and self.cold.wants(g.code):
                self.district(g.code)

    def due(self, d: District, now: datetime) -> bool:
        if d.not_before is not None and d.not_before > now:
            return False
        if d.listed_at is None or d.next_page > 0 or d.locales:
            return True
        if (now - d.listed_at).total_seconds() < self.c.lists_s:
            return False
        return not d.keys or any(not (a := self.f.actas.get(k)) or not a.final
                                 for k in d.keys)

    def next_at(self, d: District, now: datetime) -> datetime | None:
        if d.listed_at is None or d.next_page > 0 or d.locales:
            return d.not_before or now
        if d.keys and all((a := self.f.actas.get(k)) is not None and a.final
                          for k in d.keys):
            return None  # every acta final: never listed again
        t = d.listed_at + timedelta(seconds=self.c.lists_s)
        return max(t, d.not_before) if d.not_before else t

    def base(self) -> int | None:
        if self.cold.first_page in ("0", "1"):
            return int(self.cold.first_page)
        base = self.f.meta.get("list_base")
        return None if base is None else int(base)

    def _url(self, d: District, pagina: int) -> str:
        amb = 2 if d.code.startswith("9") else 1
        return (f"{self.cfg.base_url}/actas?pagina={pagina}&tamanio={self.cold.page_size}"
                f"&idEleccion={self.w.election_id}&idAmbitoGeografico={amb}"
                f"&idUbigeo={int(d.code)}")

    def _failed(self, d: District, now: datetime) -> None:
        d.failures += 1
        d.not_before = now + timedelta(seconds=backoff(self.cfg, d.failures))
        self.f.touch("district", d.code)

    def do(self, d: District, now: datetime) -> str:
        if self.cfg.stack is Stack.ONPE2021:
            return self._do_2021(d, now)
        w = self.w
        scope = f"list:{d.code}"
        base = self.base()
        pagina = (base if base is not None else (1 if d.probe_one else 0)) + d.next_page
        url = self._url(d, pagina)
        res = w.fetch.get(url, scope, "list")
        cls = res.classification
        if cls.outcome is Outcome.NO_DATA:
            w.accept.failure(scope, res)
            if base is None and d.next_page == 0 and not d.probe_one:
                d.probe_one = True  # maybe a 1-based backend: ask for page 1
                self.f.touch("district", d.code)
                return "no_data"
            # a district of the geography has actas: an empty answer is more likely a
            # glitch than the truth; believed only when it repeats
            if d.failures + 1 < NO_DATA_BELIEVED:
                d.probe_one = False
                self._failed(d, now)
                return "no_data"
            self._finish_pass(d, now)
            return "no_data"
        if cls.outcome is not Outcome.OK:
            w.accept.failure(scope, res)
            self._failed(d, now)
            return cls.outcome.value
        try:
            page = parse_acta_list_2026(cls.payload, url=url, district=d.code,
                                        election_id=w.election_id)
        except ParseDrift as exc:
            w.stats.results["rejected"] += 1
            w.accept.reject(scope, "schema_drift", exc.detail_en, [res.response])
            self._failed(d, now)
            return "rejected"
        w.accept.ok()
        if base is None:
            learned: int | None = None
            if pagina == 0 and page.page == 1:
                learned = 1  # the backend counts from 1 and answers page 0 with page 1
            elif page.items:
                learned = pagina
            elif pagina == 0 and page.total_records:
                d.probe_one = True  # page 0 empty, yet the district has actas: page 1?
                self.f.touch("district", d.code)
                return "probe"
            else:  # an empty district says nothing about the first page
                self._finish_pass(d, now)
                return "accepted"
            self.f.set_meta("list_base", learned)
            w.emit("list_first_page", "info", scope,
                   f"las listas de actas empiezan en la página {learned}",
                   f"acta lists start at page {learned}", first_page=learned)
        self._take_page(d, page, now, res.response)
        return "accepted"

    def _take_page(self, d: District, page: ActaPage, now: datetime,
                   resp: RawResponse) -> None:
        d.failures, d.not_before, d.probe_one = 0, None, False
        d.pages, d.total = page.total_pages, page.total_records
        for it in page.items:
            self._listed(it, d.code, resp)
        d.seen += [it.key for it in page.items]
        d.next_page += 1
        self.f.touch("district", d.code)
        if not page.items or d.next_page >= (page.total_pages or 0):
            self._finish_pass(d, now)
        else:
            self.c.dqueue.appendleft(d.code)  # finish this district's pass first

    def _finish_pass(self, d: District, now: datetime) -> None:
        keys = list(dict.fromkeys(d.seen))
        if d.total is not None and len(keys) < d.total:
            self.w.emit("acta_list_incomplete", "warning", f"list:{d.code}",
                        f"{d.code}: la lista dio {len(keys)} de {d.total} actas",
                        f"{d.code}: the list gave {len(keys)} of {d.total} actas",
                        listed=len(keys), total=d.total)
        d.keys = list(dict.fromkeys([*keys, *(k for k in d.keys if k not in keys)]))
        d.seen, d.next_page, d.pages, d.total, d.locales = [], 0, None, None, None
        d.probe_one, d.failures, d.not_before = False, 0, None
        d.listed_at = now
        self.stats["lists"] += 1
        self.f.touch("district", d.code)

    def _do_2021(self, d: District, now: datetime) -> str:
        w = self.w
        scope = f"list:{d.code}"
        if d.locales is None:
            url = f"{self.cfg.base_url}/mesas/locales/{d.code}?name=param"
        else:
            url = (f"{self.cfg.base_url}/mesas/actas/{LIST_2021}/{d.code}/{d.locales[0]}"
                   "?name=param")
        res = w.fetch.get(url, scope, "list")
        cls = res.classification
        if cls.outcome not in (Outcome.OK, Outcome.NO_DATA):
            w.accept.failure(scope, res)
            self._failed(d, now)
            return cls.outcome.value
        try:
            if d.locales is None:
                locales = ([] if cls.outcome is Outcome.NO_DATA
                           else parse_locales_2021(cls.payload, url=url, district=d.code))
                d.locales = locales
                if not locales:
                    self._finish_pass(d, now)
                else:
                    self.c.dqueue.appendleft(d.code)
                self.f.touch("district", d.code)
                w.accept.ok()
                return "accepted"
            page = (ActaPage((), 1, 0, None) if cls.outcome is Outcome.NO_DATA
                    else parse_mesas_2021(cls.payload, url=url, district=d.code))
        except ParseDrift as exc:
            w.stats.results["rejected"] += 1
            w.accept.reject(scope, "schema_drift", exc.detail_en, [res.response])
            self._failed(d, now)
            return "rejected"
        w.accept.ok()
        for it in page.items:
            self._listed(it, d.code, res.response)
        d.seen += [it.key for it in page.items]
        d.locales = d.locales[1:]
        d.failures, d.not_before = 0, None
        self.f.touch("district", d.code)
        if not d.locales:
            self._finish_pass(d, now)
        else:
            self.c.dqueue.appendleft(d.code)
        return "accepted"

    def _listed(self, it: ListedActa, district: str, resp: RawResponse) -> None:
        a = self.f.actas.get(it.key)
        if a is None:
            a = self.f.actas[it.key] = Acta(it.key, it.mesa, it.district or district,
                                            listed=it.state)
            if it.state == "P" and self.w.accept.ingest_listed(
                    ListedActa(it.key, it.mesa, it.state, it.district or district,
                               it.electors, it.polling_place), resp) == "accepted":
                # pending: nothing to fetch yet; its list entry will say when it moves
                reading = self.w.actas[it.key]
                a.due, a.status, a.reading = False, reading.status, reading.to_json()
                self.stats["listed_pending"] += 1
            else:
                self.c.enqueue(a)
        else:
            a.listed = it.state
            # moved; or a list without states: re-poll what is not final at each pass
            if not a.due and (moved(it.state, a.status, self.cfg.stack)
                              or (it.state is None and not a.final)):
                a.due = True
                self.stats["moved"] += 1
                self.c.enqueue(a)
        self.f.touch("acta", it.key)


__all__ = ["ListCrawl"]
