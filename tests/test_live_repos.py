"""The live follower's tables behind the store (store/rawlog_repo.py,
store/frontier_repo.py): the same behaviour on DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from escrutinio.live.classify import Classification, Outcome, RawResponse
from escrutinio.live.crawl import Acta, Frontier
from escrutinio.live.rawlog import RawLog
from escrutinio.store.base import Store

T0 = datetime(2026, 4, 12, 20, 0, tzinfo=UTC)


def _resp(i: int, body: bytes, scope: str = "national") -> RawResponse:
    return RawResponse(url=f"http://127.0.0.1/x?{i}", status=200 if i % 3 else 503,
                       headers=(("content-type", "application/json"),), body=body,
                       fetched_at=T0 + timedelta(seconds=i), elapsed_s=0.012, error=None,
                       scope=scope, endpoint="totales", attempt=1 + i % 2)


def test_raw_log_round_trip(any_store_opener: Callable[..., Store]) -> None:
    store = any_store_opener()
    try:
        log = RawLog(store.live_rawlog, "run-a")
        bodies = [b'{"a": 1}', b"\x00\xff binary \x01", b'{"a": 1}']
        for i, body in enumerate(bodies):
            outcome = Outcome.OK if i % 3 else Outcome.TRANSIENT
            log.record(_resp(i, body, "national" if i < 2 else "ambito:1"),
                       Classification(outcome, f"r{i}"), cycle=1 + i)
        log.event(T0, "warning", "rejected", "national", "rechazada: ñ", "rejected",
                  {"rules": ["x"]})
        log.flush()  # one transaction
        assert log.pending == 0
    finally:
        store.close()
    store = any_store_opener(read_only=True)  # a reader in another process, reopened
    try:
        log = RawLog(store.live_rawlog, read_only=True)
        assert log.has_log() and log.run_ids() == ["run-a"]
        got = log.responses()
        assert [r.seq for r in got] == [1, 2, 3]
        assert [r.status for r in got] == [503, 200, 200]
        assert got[0].fetched_at == T0 and got[0].headers == (("content-type",
                                                               "application/json"),)
        assert abs(got[1].elapsed_ms - 12.0) < 1e-9 and got[1].attempt == 2
        assert [r.scope for r in log.responses(scope="ambito:1")] == ["ambito:1"]
        assert len(log.responses(limit=2)) == 2 and log.responses(run_id="other") == []
        assert log.body(got[1].sha256) == bodies[1] and log.body("0" * 64) is None
        assert log.outcome_counts() == {"transient": 1, "ok": 2}
        (ev,) = log.events(kind="rejected")
        assert ev["message_es"] == "rechazada: ñ" and ev["detail"] == {"rules": ["x"]}
    finally:
        store.close()
    store = any_store_opener()
    try:  # a second run continues the sequence; a body already stored is kept once
        log = RawLog(store.live_rawlog, "run-b")
        log.record(_resp(7, bodies[0]), Classification(Outcome.OK, ""), cycle=1)
        log.flush()
        assert [r.seq for r in log.responses(run_id="run-b")] == [4]
        assert log.run_ids() == ["run-a", "run-b"]
    finally:
        store.close()


def test_frontier_saves_only_changes_and_reloads(any_store_opener: Callable[..., Store]
                                                 ) -> None:
    store = any_store_opener()
    try:
        f = Frontier(store.live_frontier, "c1")
        assert not f.loaded
        f.actas["acta:1"] = Acta("acta:1", "000001", "010101", listed="P", status="pending")
        f.touch("acta", "acta:1")
        f.set_meta("first_page", 1)
        assert f.flush(T0) == 2 and f.flush(T0) == 0  # nothing changed since
        f.actas["acta:1"].status = "counted"
        f.touch("acta", "acta:1")
        assert f.flush(T0 + timedelta(seconds=5)) == 1  # the row is replaced, not added
        other = Frontier(store.live_frontier, "c2")  # another contest: its own rows
        assert not other.loaded
    finally:
        store.close()
    store = any_store_opener()
    try:
        f = Frontier(store.live_frontier, "c1")
        assert f.loaded and f.meta == {"first_page": 1}
        assert f.actas["acta:1"].status == "counted" and f.actas["acta:1"].district == "010101"
        assert len(store.live_frontier.load("c1")) == 2
    finally:
        store.close()
