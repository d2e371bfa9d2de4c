"""The cold path over real HTTP on 127.0.0.1 (virtual time): the geography from
ONPE's /ubigeos endpoints, the acta lists of each district (first page 0 or 1), and the
actas themselves — real 2021 actas (Madre de Dios, Oceania, Africa) served as a 2026
count by the fake ONPE.

What is proven: a crawl ends with exactly the actas the fake has in the crawled areas
(and none outside them), each equal to the truth; actas that were pending or at the JEE
are fetched again when they move, counted ones never; the hot path keeps its pace while
the crawl runs; a restart resumes the frontier without fetching again what it has;
faults of every kind never corrupt an acta snapshot; every snapshot is in the ledger
(``verify-log`` passes); the store's geography has the names ONPE publishes.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest

from escrutinio import service
from escrutinio.domain import Level, SnapshotKind
from escrutinio.live.config import config_from_dict
from escrutinio.live.fake_onpe import SOFT_FAULTS, ActaUniverse, FakeOnpe, Fixtures, Synthetic2026
from escrutinio.live.replay import ReplayClock, replay
from escrutinio.live.soak import audit_against_truth
from escrutinio.live.transport import FakeClock
from escrutinio.live.watcher import Watcher
from escrutinio.store.duckdb_store import DuckDBStore
from escrutinio.store.ledger import verify_log
from live_support import CANDS, config_dict, live_config, live_snapshots

#: the fake's actas: two provinces of Madre de Dios (72), Oceania (24) and Africa (5)
REGIONS = ("160200", "160300", "950000", "910000")
CRAWL = ["160000", "950000"]  # a whole department (as the fake has it) and a continent


@pytest.fixture(scope="module")
def universe(data_dir: Path) -> ActaUniverse:
    return ActaUniverse.from_2021(data_dir / "peru-2021-runoff", REGIONS)


def timeline(universe: ActaUniverse, **kw) -> Synthetic2026:
    return Synthetic2026(seed=7, n_states=10, step_s=600.0, universe=universe,
                         n_watch_actas=2, extra_jee=0.15, **kw)


class Env:
    def __init__(self, tl: Synthetic2026, store: DuckDBStore, *, cold: dict | None = None,
                 clock: FakeClock | None = None, fake: FakeOnpe | None = None,
                 **kw) -> None:
        self.tl = tl
        self.clock = clock or FakeClock()
        self.fake = fake or FakeOnpe(tl, clock=self.clock).start()
        self.cfg = live_config(self.fake, area1=kw.pop("area1", ("160000",)),
                               cold={"areas": CRAWL, "page_size": 10} | (cold or {}), **kw)
        self.store = store
        self.reports: list[dict] = []
        self.w = Watcher(self.cfg, store, clock=self.clock, seed=5)

    def run(self, seconds: float) -> None:
        self.w.run(duration_s=seconds, install_signals=False, on_cycle=self.reports.append)

    def to_the_end(self, extra: float = 3600.0) -> None:
        left = self.tl.offset_s(self.tl.n_states - 1) + extra
        left -= (self.clock.now() - self.fake.start_at).total_seconds()
        self.run(max(left, 60.0))

    def close(self) -> None:
        self.w.close()
        self.fake.stop()


def acta_requests(fake: FakeOnpe, tl: Synthetic2026) -> dict[int, list[tuple[int, str]]]:
    """Per acta: (state served, status it had then) for each clean answer."""
    by_id = {tl.acta_id_of(i): i for i in range(len(tl.mesa))}
    out: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for s in fake.log:
        if s.route.startswith("acta|") and s.fault is None and s.state is not None:
            i = by_id[s.route.split("|", 1)[1]]
            out[i].append((s.state, tl.acta_status(s.state, i)))
    return out


def last_acta_frame(store: DuckDBStore, cfg) -> pl.DataFrame:
    return [s for s in live_snapshots(store, cfg) if s.kind is SnapshotKind.ACTAS][-1].frame


def assert_final_actas_are_the_truth(store: DuckDBStore, cfg, tl: Synthetic2026) -> None:
    frame = last_acta_frame(store, cfg)
    want = sorted(tl.mesa[i] for i in tl.region_actas(*CRAWL))
    assert frame["acta_id"].to_list() == want  # exactly the crawled areas' actas
    last = tl.n_states - 1
    for row in frame.iter_rows(named=True):
        i = tl.index_of_mesa(row["acta_id"])
        truth = tl.acta_truth(last, i, list(CANDS))
        assert {k: row[k] for k in truth} == truth, row["acta_id"]
        assert row["polling_place"] == tl.place[i]
        assert row["area1_code"] == tl.area3[i][:2] + "0000"


def test_crawl_ends_with_exactly_the_actas_of_the_region(universe):
    tl = timeline(universe, first_page=1)  # a backend whose pages count from 1
    store = DuckDBStore(":memory:")
    e = Env(tl, store)
    try:
        e.to_the_end()
        assert_final_actas_are_the_truth(store, e.cfg, tl)
        audit = audit_against_truth(store, e.cfg, tl)
        assert audit.bad == [] and audit.actas >= 3
        # nothing outside the crawled areas was requested (Africa is in the fake)
        africa = {tl.acta_id_of(i) for i in tl.region_actas("910000")}
        assert africa and not [s for s in e.fake.log if s.route.split("|")[-1] in africa
                               or s.route.startswith("list|91")]
        # pending actas come from the lists (nothing to fetch); an acta is fetched when
        # its list entry moves (P -> E, P -> C, E -> C) and never again once counted
        region = tl.region_actas(*CRAWL)
        last = tl.n_states - 1
        reqs = acta_requests(e.fake, tl)
        assert set(reqs) == {i for i in region if tl.acta_status(last, i) != "pending"}
        for i, seen in reqs.items():
            first_final = next((n for n, (_, st) in enumerate(seen)
                                if st in ("counted", "annulled", "not_installed")), None)
            assert first_final is None or first_final == len(seen) - 1, (i, seen)
        moves = [ev["message_en"].split(": ", 1)[1] for ev in e.w.rawlog.events(
            kind="acta_changed")]
        assert moves.count("- → pending") == len(region)  # every acta listed first
        assert moves.count("pending → counted") >= 40  # the count advanced under the crawl
        assert moves.count("pending → jee") >= 5 and moves.count("jee → counted") >= 5
        assert [i for i, seen in reqs.items() if [s for _, s in seen] == ["jee", "counted"]]
        st = e.w.status()
        crawl = st["crawl"]
        assert crawl["first_page"] == 1 and crawl["complete_at"] is not None
        assert crawl["actas"] == len(region) and crawl["actas_fetched"] == len(reqs)
        assert crawl["geography"]["method"] == "flat"
        # bounded cold work, and the hot path kept its pace during the crawl
        assert max(r.get("cold_requests", 0) for r in e.reports) <= e.cfg.cold.max_requests
        nat = [s.t for s in e.fake.log if s.route == "totales|national"]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(nat)]
        assert max(gaps) <= 1.1 * e.cfg.intervals.hot_s + 5, max(gaps)
        # the geography ONPE publishes is the store's, home and abroad
        geo = store.geography(e.cfg.contest.id)
        names = {(r["level"], r["code"]): (r["name"], r["abroad"], r["parent"])
                 for r in geo.iter_rows(named=True)}
        assert names[("area1", "160000")] == ("MADRE DE DIOS", False, None)
        assert names[("area2", "160200")] == ("MANU", False, "160000")
        assert names[("area3", "160301")][0] == "IÑAPARI"
        assert names[("area1", "950000")] == ("OCEANIA", True, None)
        assert names[("area2", "950100")] == ("AUSTRALIA", True, "950000")
        # and the usual count views work on the live acta snapshot, down to districts
        info = store.list_snapshots(e.cfg.contest.id, SnapshotKind.ACTAS)[-1]
        state = service.state_of(store, info, level=Level.AREA3)
        by_code = {u.code: u for u in state.units}
        assert by_code["160301"].name == "IÑAPARI"
        assert state.national.actas_total == len(reqs)
        assert verify_log(store).ok  # every snapshot is in the ledger
    finally:
        e.close()
        store.close()


def test_restart_resumes_the_frontier_without_refetching(universe, tmp_path: Path):
    tl = timeline(universe, first_page=0)
    db = tmp_path / "cold.duckdb"
    store = DuckDBStore(db)
    e = Env(tl, store, cold={"max_requests": 12}, area1=())
    e.clock.advance(2700)  # the watcher starts late in the night: some actas are counted
    e.run(60)  # part of the crawl
    done = e.w.crawler.summary()
    assert 0 < done["actas_fetched"] < done["actas"]
    assert done["first_page"] == 0
    n_before = len(e.fake.log)
    e.w.close()
    store.close()
    store = DuckDBStore(db)
    w2 = Watcher(e.cfg, store, clock=e.clock, seed=6)
    try:
        again = w2.crawler.summary()
        assert again["actas_fetched"] == done["actas_fetched"]  # the frontier is back
        assert again["districts_listed"] == done["districts_listed"]
        assert w2.rawlog.events(kind="resumed")
        listed = {c for c, d in w2.crawler.f.districts.items() if d.listed_at is not None}
        restart = e.clock.now()
        e.w = w2
        e.to_the_end()
        assert_final_actas_are_the_truth(store, e.cfg, tl)
        assert audit_against_truth(store, e.cfg, tl).bad == []
        # the geography was fetched once; lists of districts already listed were not
        # asked again before their refresh was due; no acta served final before the
        # restart was requested after it
        assert sum(s.route == "geo|flat" for s in e.fake.log) == 1
        soon = [s.route.split("|")[1] for s in e.fake.log[n_before:]
                if s.route.startswith("list|")
                and (s.t - restart).total_seconds() < 0.9 * e.cfg.intervals.cold_s]
        assert listed and soon and not set(soon) & listed
        final_before = set()
        for s in e.fake.log[:n_before]:
            if s.route.startswith("acta|") and s.fault is None and s.state is not None:
                i = next(j for j in range(len(tl.mesa)) if tl.acta_id_of(j) == s.route[5:])
                if tl.acta_status(s.state, i) in ("counted", "annulled"):
                    final_before.add(s.route)
        assert final_before
        assert not [s for s in e.fake.log[n_before:] if s.route in final_before]
        assert verify_log(store).ok
    finally:
        e.close()
        store.close()


def test_faults_never_corrupt_the_acta_snapshot(universe):
    tl = timeline(universe)
    store = DuckDBStore(":memory:")
    e = Env(tl, store, cold={"max_requests": 40}, intervals={"hot_s": 90, "warm_s": 600})
    kinds = tuple(k for k in SOFT_FAULTS if k != "slow")
    e.fake.random_faults(0.12, kinds=kinds, max_burst=3, seed=4)
    try:
        e.run(1500)
        # and, for sure, every kind of bad answer on the cold routes
        for kind in ("drift", "wrong_election", "backwards", "truncated", "null_data",
                     "html200", "error503"):
            e.fake.inject(kind, 2, match="/actas/")  # actas
            e.fake.inject(kind, 1, match="/actas?")  # acta lists
        e.fake.inject("forbidden403", 1, match="/actas/")  # a WAF block mid-crawl
        e.to_the_end(extra=5400)
        assert e.w.stats.hard_blocks >= 1
        # retries and re-priming included, a cold step stays within its budget
        assert max(r.get("cold_requests", 0) for r in e.reports) <= 40
        faults = e.fake.fault_counts()
        cold_faults = {s.fault for s in e.fake.log if s.fault
                       and s.route.startswith(("acta|", "list|", "geo|"))}
        assert {"backwards", "drift", "wrong_election", "truncated", "null_data",
                "html200", "error503", "forbidden403"} <= cold_faults
        rej = e.w.stats.rejections
        assert {"schema_drift", "unknown_candidate"} <= set(rej), rej
        assert sum(faults.values()) > 100
        audit = audit_against_truth(store, e.cfg, tl)
        assert audit.bad == [], audit.bad[:5]
        assert_final_actas_are_the_truth(store, e.cfg, tl)
        # every accepted snapshot, hot, warm and cold, is in the tamper-evident ledger
        report = verify_log(store)
        assert report.ok, report.problems[:3]
        snaps = live_snapshots(store, e.cfg)
        assert report.n_entries == len(snaps)
        assert {s.level for s in snaps if s.kind is SnapshotKind.UNITS} == {"national",
                                                                           "area1"}
        assert any(s.kind is SnapshotKind.ACTAS for s in snaps)
    finally:
        e.close()
        store.close()


def test_geography_falls_back_to_the_tree(universe, tmp_path: Path):
    tl = timeline(universe)
    store = DuckDBStore(":memory:")
    clock = FakeClock()
    fake = FakeOnpe(tl, clock=clock).start()
    fake.inject("spring_error", 10, match="dep-prov-distritos")
    e = Env(tl, store, clock=clock, fake=fake, cold={"areas": ["160300"]}, area1=())
    try:
        e.run(600)
        assert e.w.rawlog.events(kind="geography_tree")
        routes = [s.route for s in fake.log if s.route.startswith("geo|")]
        # home and abroad first-level areas; then only what the crawl needs
        assert sorted(routes) == ["geo|area1|1", "geo|area1|2", "geo|area2|160000",
                                  "geo|area3|160300", "geo|flat"]
        crawl = e.w.crawler.summary()
        assert crawl["geography"]["method"] == "tree" and crawl["districts"] == 3
        assert crawl["actas"] == len(tl.region_actas("160300"))
        assert last_acta_frame(store, e.cfg).height == crawl["actas"]
        geo = store.geography(e.cfg.contest.id)
        codes = set(geo["code"])
        assert {"160000", "910000", "950000", "160300", "160301"} <= codes
        # the provinces of the department are listed to find 160300; nothing else is
        # expanded (no district of 160200, no country of Oceania)
        assert "160200" in codes and "160201" not in codes and "950100" not in codes
        # the raw log of a crawl replays to the same actas (lists and actas recorded)
        e.w.rawlog.export(tmp_path / "export")
        store2 = DuckDBStore(":memory:")
        clock2 = ReplayClock()
        w2 = Watcher(e.cfg, store2, clock=clock2, seed=1)
        rep = replay(tmp_path / "export", w2, clock2)
        assert rep.kind == "export"
        assert last_acta_frame(store2, e.cfg).equals(last_acta_frame(store, e.cfg))
        store2.close()
    finally:
        e.close()
        store.close()


def test_crawl_of_the_2021_api_against_recorded_answers(data_dir: Path):
    """The 2021 API: districts given, polling places and mesas listed, each mesa's
    detalle fetched; the names of the places come from the actas."""
    fx = Fixtures(data_dir / "onpe-api-fixtures")
    clock = FakeClock()
    fake = FakeOnpe(fx, clock=clock).start()
    d = config_dict("onpe2021-runoff")
    d["base_url"], d["site_url"] = fake.url, fake.url
    d["scopes"] = {"national": False, "ambitos": False, "area1": []}
    d["cold"] = {"areas": ["010101"]}
    cfg = config_from_dict(d, source="test:2021-crawl")
    store = DuckDBStore(":memory:")
    w = Watcher(cfg, store, clock=clock, seed=1)
    try:
        w.run(duration_s=300, install_signals=False)
        routes = [s.route for s in fake.log]
        assert "locales" in routes and "mesas-actas" in routes
        crawl = w.crawler.summary()
        assert crawl["districts_listed"] == 1 and crawl["actas"] == 15  # local 0001
        frame = last_acta_frame(store, cfg)
        assert frame["acta_id"].to_list() == ["000001"]  # the one with a recorded detalle
        row = frame.row(0, named=True)
        assert (row["status"], row["v_castillo"], row["v_fujimori"]) == ("counted", 118, 81)
        geo = store.geography(cfg.contest.id)
        assert dict(zip(geo["code"], geo["name"], strict=True)) == {
            "010000": "AMAZONAS", "010100": "CHACHAPOYAS", "010101": "CHACHAPOYAS"}
        assert verify_log(store).ok
        w.run(duration_s=4000, install_signals=False)  # counted: never asked again
        assert sum(r == "detalle|000001" for r in (s.route for s in fake.log)) == 1
    finally:
        w.close()
        fake.stop()
        store.close()


def test_status_reports_the_crawl(universe, tmp_path: Path):
    tl = timeline(universe)
    store = DuckDBStore(":memory:")
    e = Env(tl, store, area1=())
    try:
        e.run(120)
        st = json.loads(json.dumps(e.w.status(), default=str))
        crawl = st["crawl"]
        assert crawl["areas"] == CRAWL and crawl["districts"] == 4 + 3 + 5 + 2
        assert crawl["geography"]["nodes"] == len(tl.geography())  # Africa too
    finally:
        e.close()
        store.close()
