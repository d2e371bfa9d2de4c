"""Twelve hours of count night in seconds: real HTTP on 127.0.0.1, virtual time, random
fault bursts of every kind, two WAF blocks and slow answers, while the cold path crawls
one district abroad (geography, acta list, actas). It must end with zero bad snapshots
(unit and acta), no good state lost, and the final state exactly right.

The longer version (more seeds, 48 virtual hours, a whole continent or everything
crawled, the ledger verified) is ``validation/live_soak.py``.
"""

from __future__ import annotations

from escrutinio.live.fake_onpe import SOFT_FAULTS
from escrutinio.live.soak import run_soak


def test_twelve_hour_soak_with_random_faults():
    r = run_soak(seed=12, hours=12.0, fault_rate=0.04, max_burst=10, crawl=("920101",),
                 verify_ledger=False)
    assert r.virtual_hours >= 12.0
    # every soft fault kind happened, and the two blocks
    assert set(r.faults_injected) >= set(SOFT_FAULTS)
    assert r.hard_blocks == 2 and r.outcomes["hard_blocked"] == 2
    assert r.outcomes["transient"] > 100 and r.outcomes["blocked"] > 10
    assert {"stale_response", "schema_drift", "unknown_candidate"} <= set(r.rejections)
    # the verdict
    assert r.bad_snapshots == []
    assert r.lost_states == [] and r.clean_states >= r.truth_states - 5
    assert r.final_national_ok and r.final_area1_ok and r.final_actas_ok
    assert r.final_state == "ok"
    assert r.corrections >= 2  # the two real corrections of the synthetic count
    assert r.snapshots["national"] == r.accepted_states
    assert r.accepted_states >= r.distinct_truth_states - 3
    # stale only around blocks and storms, never for most of the night
    assert 0.0 < r.stale_fraction < 0.15
    # the cold path: the district's every acta, in bounded steps, the hot path on time
    c = r.crawl
    assert c["actas"] > 50 and c["actas_fetched"] >= c["actas"] - 5  # some stay pending
    assert c["complete_at"] is not None and c["geo_requests"] == 1
    assert 0 < c["max_cold_requests_per_cycle"] <= 60
    assert c["hot_gap_p50_s"] < 50
