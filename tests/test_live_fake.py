"""Live count over real HTTP on 127.0.0.1 against the fake ONPE, with virtual time.

What is proven: no bad snapshot is ever stored, no good state is lost, every fault is
survived and recovered from, staleness is reported correctly, blocks stop the cycle,
restarts resume from the store, and a recorded run replays to the same snapshots.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from escrutinio.live.classify import Outcome
from escrutinio.live.fake_onpe import SOFT_FAULTS, FakeOnpe, Replay2021, Synthetic2026
from escrutinio.live.rawlog import RawLog
from escrutinio.live.replay import ReplayClock, replay
from escrutinio.live.transport import FakeClock, Transport
from escrutinio.live.watcher import Watcher
from escrutinio.sources.onpe_aggregates import parse_progress_tables
from escrutinio.store.duckdb_store import DuckDBStore
from live_support import (
    UNITS4,
    assert_no_bad_snapshots,
    clean_national_states,
    live_config,
    live_snapshots,
    pick,
    truth_row,
)

NATIONAL = "tipoFiltro=eleccion"


@pytest.fixture(scope="module")
def tl() -> Synthetic2026:
    return Synthetic2026(seed=11, n_states=14, step_s=300.0, units=UNITS4, n_actas=8000,
                         corrections=(8,), freezes=(5,), n_watch_actas=6)


class Env:
    def __init__(self, tl: Synthetic2026, store: DuckDBStore, *, require_browser: bool = False,
                 **cfg_kw) -> None:
        self.tl = tl
        self.clock = FakeClock()
        self.fake = FakeOnpe(tl, clock=self.clock, require_browser=require_browser,
                             slow_s=0.5).start()
        self.cfg = live_config(self.fake, **cfg_kw)
        self.store = store
        self.w = Watcher(self.cfg, store, clock=self.clock, seed=3)

    def run(self, seconds: float) -> None:
        self.w.run(duration_s=seconds, install_signals=False)

    def close(self) -> None:
        self.w.transport.close()
        self.fake.stop()

    def served_k(self) -> int:
        s = self.w.served()
        assert s is not None
        when = datetime.fromisoformat(s["as_of"]).astimezone(UTC)
        return next(k for k in range(self.tl.n_states)
                    if self.tl.as_of(k).astimezone(UTC) == when)


@pytest.fixture
def mem_store():
    s = DuckDBStore(":memory:")
    yield s
    s.close()


@pytest.fixture
def env(tl, mem_store):
    e = Env(tl, mem_store, actas=tl.acta_ids()[:4], area1_complete=True)
    yield e
    e.close()


def test_follows_the_count_and_stores_only_truth(env: Env):
    tl, w = env.tl, env.w
    env.run(tl.offset_s(tl.n_states - 1) + 1200)
    counts = assert_no_bad_snapshots(env.store, env.cfg, tl)
    truths = [truth_row(tl, k) for k in range(tl.n_states)]
    distinct = 1 + sum(truths[k] != truths[k - 1] for k in range(1, tl.n_states))
    assert truths[5] == truths[4]  # the freeze: same numbers, newer ONPE time
    assert counts["national"] == distinct  # every state once, the duplicate never
    assert w.stats.results["duplicate"] > 0
    served = w.served()
    assert served is not None and not served["stale"]
    last = truth_row(tl, tl.n_states - 1)
    assert served["actas_counted"] == last["actas_counted"]
    assert served["votes"] == {"fujimori": last["v_fujimori"], "sanchez": last["v_sanchez"]}
    area = [s for s in live_snapshots(env.store, env.cfg) if s.level == "area1"][-1]
    for row in area.frame.filter(pl.col("level") == "area1").iter_rows(named=True):
        assert pick(row) == truth_row(tl, tl.n_states - 1, f"area1:{row['unit_code']}")
    assert area.frame.height == 1 + len(UNITS4)
    assert json.loads(area.metadata["ambitos"]).keys() == {"ambito:1", "ambito:2"}
    # the four areas are the whole (fake) nation: compared when at the same ONPE time
    drifts = [json.loads(s.metadata["aggregate_drift"]) for s in live_snapshots(
        env.store, env.cfg) if "aggregate_drift" in s.metadata]
    assert drifts and all(d == {} for d in drifts)
    geo = env.store.geography(env.cfg.contest.id)
    assert dict(zip(geo["code"], geo["name"], strict=True))["140000"] == "LIMA"
    acta = [s for s in live_snapshots(env.store, env.cfg) if s.kind.value == "actas"][-1]
    counted, jee = tl.status_at(tl.n_states - 1)
    want = {f"{i:06d}": ("counted" if counted[i] else "jee" if jee[i] else "pending")
            for i in tl.watch_actas[:4]}
    assert dict(zip(acta.frame["acta_id"], acta.frame["status"], strict=True)) == want
    # the real correction (one counted acta back to the JEE) was held, then accepted
    ev = [e["kind"] for e in w.rawlog.events()]
    assert "decrease_unconfirmed" in ev and "correction" in ev
    assert ev.index("decrease_unconfirmed") < ev.index("correction")
    assert w.stats.corrections >= 1
    # nothing the fake served cleanly twice was lost
    stored = [pick(s.frame.row(0, named=True)) for s in live_snapshots(env.store, env.cfg)
              if s.level == "national"]
    seen = clean_national_states(env.fake, 2)
    assert len(seen) == tl.n_states
    for k in seen:
        assert truth_row(tl, k) in stored


EXPECT = {
    "html200": ("outcome", "blocked"), "no_content204": ("outcome", "no_data"),
    "empty200": ("outcome", "no_data"), "null_data": ("outcome", "no_data"),
    "too_many429": ("outcome", "transient"), "error500": ("outcome", "transient"),
    "error502": ("outcome", "transient"), "error503": ("outcome", "transient"),
    "lambda_timeout": ("outcome", "transient"), "gateway_400_repr": ("outcome", "transient"),
    "truncated": ("outcome", "transient"), "drop": ("outcome", "any"),
    "slow": ("outcome", "transient"), "success_false": ("outcome", "api_error"),
    "spring_error": ("outcome", "api_error"), "backwards": ("rejection", "stale_response"),
    "drift": ("rejection", "schema_drift"), "wrong_election": ("rejection", "unknown_candidate"),
}


@pytest.mark.parametrize("kind", SOFT_FAULTS)
def test_every_fault_is_survived_and_recovered(kind: str, tl, mem_store):
    e = Env(tl, mem_store, area1=UNITS4[:1])
    try:
        e.run(4 * 300 + 10)  # states 0..4 accepted
        before = e.w.served()
        assert before is not None and not before["stale"]
        k0 = e.served_k()
        if kind == "backwards":  # an older state on both endpoints (a stale cache)
            e.fake.inject(kind, count=6, match=f"idEleccion=10&{NATIONAL}")
        else:
            endpoint = "participantes" if kind == "wrong_election" else "totales"
            e.fake.inject(kind, count=3, match=f"{endpoint}?idEleccion=10&{NATIONAL}")
        e.run(3 * 45)
        after = e.w.served()
        assert after is not None and e.served_k() >= k0  # never went back
        what, name = EXPECT[kind]
        if what == "outcome" and name != "any":
            assert e.w.stats.outcomes[name] >= 1, e.w.stats.outcomes
        elif what == "rejection":
            assert e.w.stats.rejections[name] >= 1, e.w.stats.rejections
        if kind == "html200":  # blocked: cookies re-primed
            assert sum(1 for s in e.fake.log if s.route == "site") >= 2
        e.run(900)  # recovery
        assert e.served_k() == e.fake.state_index()
        assert not e.w.served()["stale"]
        assert_no_bad_snapshots(e.store, e.cfg, tl)
    finally:
        e.close()


def test_hard_block_stops_the_cycle_alerts_and_pauses(env: Env):
    w, fake, clock = env.w, env.fake, env.clock
    env.run(200)
    n0 = fake.requests
    fake.inject("forbidden403", 1, match=NATIONAL)
    clock.advance(60)
    rep = w.cycle()
    assert "hard_blocked" in rep
    assert fake.requests - n0 == 1  # the cycle stopped at the block
    st = w.status()
    assert st["state"] == "hard_blocked" and st["hard_blocks"] == 1
    assert st["served"] is not None  # the last good state is still served
    w.rawlog.flush()
    assert [e for e in w.rawlog.events(kind="hard_blocked") if e["level"] == "critical"]
    clock.advance(300)
    assert w.cycle().get("skipped") == "paused" and fake.requests - n0 == 1
    clock.advance(301)
    rep = w.cycle()
    assert rep["results"].get("national") in ("accepted", "duplicate")
    assert next(s.route for s in fake.log[n0 + 1:]) == "site"  # re-primed after the pause
    assert w.status()["state"] == "ok"


def test_staleness_is_reported_and_cleared(env: Env):
    w, fake, clock = env.w, env.fake, env.clock
    env.run(300)
    st = w.status()["served"]
    assert st["stale"] is False and st["age_s"] < 60
    confirmed = datetime.fromisoformat(st["confirmed_at"].replace("Z", "+00:00"))
    snap = st["snapshot_id"]
    fake.inject("error503", 100_000)
    env.run(700)
    st = w.status()
    assert st["state"] == "stale" and st["served"]["stale"] is True
    assert st["served"]["age_s"] == pytest.approx((clock.now() - confirmed).total_seconds())
    assert st["served"]["snapshot_id"] == snap  # nothing replaced it
    assert st["counts"]["transient"] > 0 and st["last_error"]["outcome"] == "transient"
    assert st["storms"] >= 1
    fake.clear_faults()
    env.run(900)
    st = w.status()
    assert st["state"] == "ok" and st["served"]["age_s"] < 120
    assert_no_bad_snapshots(env.store, env.cfg, env.tl)


def test_storm_cuts_the_cycle_and_backs_off(env: Env):
    w, fake, clock = env.w, env.fake, env.clock
    env.run(100)
    fake.inject("error500", 100_000)
    clock.advance(400)  # hot and warm due
    n0 = fake.requests
    rep = w.cycle()
    assert "storm" in rep
    cfg = env.cfg
    # threshold scopes × attempts, not the 7 scopes of the sweep
    assert fake.requests - n0 == cfg.intervals.storm_threshold * cfg.transport.max_attempts
    first = rep["storm"]
    clock.advance(first + 1)
    second = w.cycle()["storm"]
    assert second > first  # the cycle-level backoff grows
    assert w.served() is not None


def test_waf_wants_a_browser_with_cookies(tl, mem_store):
    e = Env(tl, mem_store, require_browser=True, area1=UNITS4[:1])
    try:
        e.run(200)
        assert e.w.served() is not None
        assert e.fake.log[0].route == "site"  # cookies primed first
        assert not [s for s in e.fake.log if s.fault == "waf"]
        bare = Transport(e.cfg.transport.__class__(user_agent="python-urllib/3.11",
                                                   timeout_s=1.0),
                         site_url=e.fake.url, stack=e.cfg.stack)
        res = bare.get(f"{e.fake.backend_url}/resumen-general/totales?idEleccion=10&"
                       f"{NATIONAL}", max_attempts=1)
        assert res.classification.outcome is Outcome.BLOCKED
        bare.close()
    finally:
        e.close()


def test_restart_resumes_from_the_store(tl, tmp_path: Path):
    db = tmp_path / "live.duckdb"
    store = DuckDBStore(db)
    e = Env(tl, store, area1=UNITS4[:2])
    e.run(1500)
    before = e.w.served()
    n_before = len(live_snapshots(store, e.cfg))
    e.w.transport.close()
    store.close()
    store2 = DuckDBStore(db)
    w2 = Watcher(e.cfg, store2, clock=e.clock, seed=4)
    try:
        resumed = w2.served()
        assert resumed is not None and resumed["stale"]  # known, but not yet confirmed
        assert resumed["votes"] == before["votes"]
        assert resumed["snapshot_id"] == before["snapshot_id"]
        assert w2.rawlog.events(kind="resumed")
        w2.run(duration_s=30, install_signals=False)  # same ONPE state: no new snapshot
        assert len(live_snapshots(store2, e.cfg)) == n_before
        assert w2.served()["stale"] is False
        w2.run(duration_s=3000, install_signals=False)
        assert_no_bad_snapshots(store2, e.cfg, tl)
        runs = {r for (r,) in store2.con.execute(
            "SELECT DISTINCT run_id FROM live_responses").fetchall()}
        assert len(runs) == 2
    finally:
        w2.transport.close()
        e.fake.stop()
        store2.close()


def test_election_discovery_and_validated_fallback(tl, mem_store):
    e = Env(tl, mem_store, area1=())
    try:
        e.fake.inject("success_false", 3, match="proceso-electoral-activo")
        e.run(100)
        assert e.w.election_id == 10
        assert e.w.rawlog.events(kind="election_fallback")
        assert e.w.served() is not None
    finally:
        e.close()
    store = DuckDBStore(":memory:")
    bad = Env(tl, store, area1=(), election={"fallback_id": 99})
    try:
        bad.fake.inject("error500", 6, match="proceso-electoral-activo")
        rep = bad.w.cycle()
        assert rep["skipped"] == "no election id" and bad.w.served() is None
        bad.w.rawlog.flush()
        assert bad.w.rawlog.events(kind="election_fallback_invalid")
        bad.run(200)  # discovery answers again: the announced id is used
        assert bad.w.election_id == 10 and bad.w.served() is not None
        assert bad.w.rawlog.events(kind="election_id_differs")
    finally:
        bad.close()
        store.close()


def test_participants_endpoint_variant_fallback(tl, mem_store):
    e = Env(tl, mem_store, area1=())
    try:
        e.fake.inject("error500", 1000, match="/resumen-general/participantes")
        e.run(200)
        assert e.w.served() is not None
        assert e.w.live.participants_order[0].startswith("eleccion-presidencial")
        assert e.w.rawlog.events(kind="participants_variant")
        assert_no_bad_snapshots(e.store, e.cfg, tl)
    finally:
        e.close()


def test_replays_the_48_national_snapshots_of_2021(data_dir: Path, mem_store):
    root = data_dir / "peru-2021-runoff"
    rtl = Replay2021(root, step_s=150.0)
    clock = FakeClock()
    fake = FakeOnpe(rtl, clock=clock).start()
    cfg = live_config(fake, name="onpe2021-runoff", area1=("140000", "010000"))
    w = Watcher(cfg, mem_store, clock=clock, seed=5)
    try:
        w.run(duration_s=rtl.offset_s(rtl.n_states - 1) + 900, install_signals=False)
        nat = [s for s in live_snapshots(mem_store, cfg) if s.level == "national"]
        truth = parse_progress_tables(root / "progress_national")
        cols = ["actas_total", "actas_counted", "actas_processed", "actas_jee",
                "actas_pending", "actas_annulled", "actas_not_installed", "electors", "cast",
                "blank", "null", "v_castillo", "v_fujimori"]
        want = []
        for t in truth:
            row = t.frame.select(cols).row(0, named=True)
            if not want or want[-1][1] != row:
                want.append((t.as_of, row))
        got = [(s.as_of, s.frame.select(cols).row(0, named=True)) for s in nat]
        assert got == want  # every distinct cut, in order, numbers identical
        assert len(got) == 44 and w.stats.corrections >= 1
        dep = parse_progress_tables(root / "progress_subnational" / "departamentos")[-1]
        area = [s for s in live_snapshots(mem_store, cfg) if s.level == "area1"][-1]
        for code in ("140000", "010000"):
            a = area.frame.filter(pl.col("unit_code") == code).select(cols).row(0, named=True)
            b = dep.frame.filter(pl.col("unit_code") == code).select(cols).row(0, named=True)
            assert a == b
        assert w.stats.outcomes["no_data"] > 0  # 900000 and early departments: 204
    finally:
        w.transport.close()
        fake.stop()


def test_raw_log_is_complete_and_replays_to_the_same_snapshots(tl, tmp_path: Path):
    store = DuckDBStore(":memory:")
    e = Env(tl, store, area1=UNITS4[:2], actas=tl.acta_ids()[:3])
    kinds = tuple(k for k in SOFT_FAULTS if k not in ("slow", "drop"))
    e.fake.random_faults(0.08, kinds=kinds, max_burst=3, seed=9)
    try:
        e.run(tl.offset_s(tl.n_states - 1) + 900)
        e.w.rawlog.flush()
        log = RawLog(store.live_rawlog)
        responses = log.responses()
        assert len(responses) == e.fake.requests  # every exchange, failures included
        served = {s.sha256 for s in e.fake.log}
        assert {r.sha256 for r in responses} <= served
        for r in responses[:200]:
            assert log.body(r.sha256) is not None
        assert set(log.outcome_counts()) >= {"ok", "transient", "api_error", "no_data",
                                             "blocked"}
        snaps = live_snapshots(store, e.cfg)
        for s in snaps:  # each snapshot names raw bodies that are in the log
            if s.kind.value == "units":
                for u in json.loads(s.metadata["units"]).values():
                    assert all(log.body(h) is not None for h in u["raw"])
        assert_no_bad_snapshots(store, e.cfg, tl)
        n = log.export(tmp_path / "export")
        assert n == len(responses)
        store2 = DuckDBStore(":memory:")
        clock = ReplayClock()
        w2 = Watcher(e.cfg, store2, clock=clock, seed=1)
        rep = replay(tmp_path / "export", w2, clock)
        assert rep.kind == "export"
        ids1 = {(s.level, s.snapshot_id) for s in snaps}
        ids2 = {(s.level, s.snapshot_id) for s in live_snapshots(store2, e.cfg)}
        assert ids1 == ids2
        store2.close()
    finally:
        e.close()
        store.close()
