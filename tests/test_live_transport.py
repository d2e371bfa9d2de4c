"""TLS impersonation (``transport.impersonate = "chrome"``, curl_cffi) against the fake
ONPE on 127.0.0.1, over real HTTP: the same failure classes as the default transport,
cookies primed past the WAF, bodies logged byte for byte, proxies decided by the
configuration (never for loopback), and a watcher that follows the count with it.

curl_cffi is the ``live`` extra (``make setup`` installs it). Without it these tests are
skipped on a developer machine and fail under CI.
"""

from __future__ import annotations

import os

import pytest

from escrutinio.live.classify import Outcome
from escrutinio.live.config import Stack, TransportConfig
from escrutinio.live.fake_onpe import FakeOnpe, Synthetic2026
from escrutinio.live.transport import FakeClock, Transport
from escrutinio.live.watcher import Watcher
from escrutinio.store.duckdb_store import DuckDBStore
from live_support import UNITS4, assert_no_bad_snapshots, live_config

try:
    import curl_cffi  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI"):
        raise
    pytest.skip("curl_cffi is not installed (pip install '.[live]')", allow_module_level=True)

NATIONAL = "/resumen-general/totales?idEleccion=10&tipoFiltro=eleccion"

#: fault -> (class, reason) through the impersonating transport
TABLE = {
    "html200": ("blocked", "html_shell"),
    "unauthorized401": ("hard_blocked", "http_401"),
    "forbidden403": ("hard_blocked", "http_403"),
    "too_many429": ("transient", "http_429"),
    "error500": ("transient", "http_500"),
    "error502": ("transient", "http_502"),
    "error503": ("transient", "http_503"),
    "lambda_timeout": ("transient", "lambda_timeout"),
    "gateway_400_repr": ("transient", "gateway_repr"),
    "truncated": ("transient", "truncated_json"),
    "slow": ("transient", "timeout"),
    "success_false": ("api_error", "success_false"),
    "spring_error": ("api_error", "spring_error"),
    "no_content204": ("no_data", "no_content"),
    "empty200": ("no_data", "empty_body"),
    "null_data": ("no_data", "null_data"),
}


@pytest.fixture(scope="module")
def fake():
    tl = Synthetic2026(seed=4, n_states=8, step_s=300.0, units=UNITS4, n_actas=3000,
                       n_watch_actas=2)
    f = FakeOnpe(tl, require_browser=True, slow_s=1.2).start()
    yield f
    f.stop()


def chrome(fake: FakeOnpe, **kw) -> Transport:
    cfg = TransportConfig(impersonate="chrome", timeout_s=0.6, max_attempts=1,
                          rate_per_s=500.0, jitter_s=0.0, **kw)
    t = Transport(cfg, site_url=fake.url, stack=Stack.ONPE2026)
    assert t._curl is not None  # really curl_cffi, not the urllib fallback
    return t


def test_failure_classes_through_the_impersonating_transport(fake: FakeOnpe):
    t = chrome(fake)
    url = fake.backend_url + NATIONAL
    try:
        assert t.get(url).classification.outcome is Outcome.BLOCKED  # the WAF: no cookie
        assert t.prime().status == 200 and t.primed
        ok = t.get(url)
        assert ok.classification.outcome is Outcome.OK
        assert ok.response.sha256 == fake.log[-1].sha256  # the bytes, exactly
        assert ok.classification.payload["contabilizadas"] >= 0
        for kind, (outcome, reason) in TABLE.items():
            fake.inject(kind, 1, match=NATIONAL)
            got = t.get(url).classification
            assert (got.outcome.value, got.reason) == (outcome, reason), kind
            if kind == "too_many429":
                assert got.retry_after_s == 2.0
        fake.inject("drop", 2, match=NATIONAL)  # curl retries a dead connection once
        dropped = t.get(url)
        assert dropped.classification.outcome is Outcome.TRANSIENT
        assert dropped.classification.reason == "network_error" and dropped.response.error
        assert t.get(url).classification.outcome is Outcome.OK  # and it recovers
    finally:
        t.close()


def test_blocked_is_retried_after_priming_again(fake: FakeOnpe):
    cfg = TransportConfig(impersonate="chrome", timeout_s=1.0, max_attempts=3,
                          rate_per_s=500.0, jitter_s=0.0, backoff_base_s=0.01,
                          backoff_max_s=0.02)
    seen = []
    t = Transport(cfg, site_url=fake.url, stack=Stack.ONPE2026,
                  on_response=lambda r, c: seen.append((r.endpoint, c.outcome)))
    try:
        t.prime()
        fake.inject("html200", 1, match=NATIONAL)
        res = t.get(fake.backend_url + NATIONAL)
        assert res.classification.outcome is Outcome.OK and res.attempts == 2
        assert [e for e, _ in seen] == ["prime", "", "prime", ""]
    finally:
        t.close()


def test_loopback_never_goes_through_a_proxy(fake: FakeOnpe, monkeypatch):
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    for proxy in ("env", "http://127.0.0.1:9"):
        t = chrome(fake, proxy=proxy)
        try:
            t.prime()
            assert t.get(fake.backend_url + NATIONAL).classification.outcome is Outcome.OK
        finally:
            t.close()


def test_a_watcher_follows_the_count_with_a_chrome_fingerprint():
    tl = Synthetic2026(seed=6, n_states=8, step_s=300.0, units=UNITS4, n_actas=3000,
                       n_watch_actas=2)
    clock = FakeClock()
    fake = FakeOnpe(tl, clock=clock, require_browser=True).start()
    store = DuckDBStore(":memory:")
    cfg = live_config(fake, area1=UNITS4[:2], actas=tl.acta_ids()[:2],
                      transport={"impersonate": "chrome"})
    w = Watcher(cfg, store, clock=clock, seed=2)
    try:
        assert w.transport._curl is not None
        w.run(duration_s=tl.offset_s(7) + 600, install_signals=False)
        served = w.served()
        assert served is not None and not served["stale"]
        counts = assert_no_bad_snapshots(store, cfg, tl)
        assert counts["national"] >= 6 and counts["area1"] >= 1 and counts["actas"] >= 1
        assert not [s for s in fake.log if s.fault == "waf"]  # past the WAF throughout
        assert fake.log[0].route == "site"
    finally:
        w.close()
        fake.stop()
        store.close()
