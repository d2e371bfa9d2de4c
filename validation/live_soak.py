"""Count night, time-compressed: long soaks of `escrutinio watch` against the fake ONPE.

Run: .venv/bin/python validation/live_soak.py  (prints Markdown for RESULTS-live_soak.md)

Each run polls a synthetic 2026-format count over real HTTP on 127.0.0.1 with virtual
time (states every 10 minutes; two real corrections; three freezes), while the fake
injects random fault bursts of every soft kind (HTML with 200, 204, empty, 429/5xx
storms, Lambda timeout text, success:false, Spring errors, all-null data, truncated JSON,
dropped connections, older states served again, schema drift, another election's
candidates), two WAF blocks (403, 401) and a few slow answers. Meanwhile the cold path
crawls (the geography from /ubigeos, the acta lists of each district, the actas) under
the same faults: the synthetic abroad continent, or every acta of the count. The verdict
per run: bad snapshots (unit and acta; must be 0), good states lost (must be 0), final
national / area / acta state exactly the truth (every crawled acta), the hash chain
verified (`verify-log`).

Run a subset: `.venv/bin/python validation/live_soak.py 12 5` (seeds).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

from escrutinio.live.soak import run_soak

RUNS = [
    # (seed, virtual hours, fault rate, max burst, areas crawled)
    (12, 12.0, 0.04, 10, ("abroad",)),
    (1, 48.0, 0.04, 10, ("abroad",)),
    (2, 24.0, 0.10, 12, ("abroad",)),
    (3, 24.0, 0.20, 6, ("abroad",)),
    (4, 12.0, 0.02, 30, ("abroad",)),
    (5, 24.0, 0.04, 10, ("all",)),
]


def main() -> int:
    t0 = time.time()
    rows = []
    ok = True
    only = {int(x) for x in sys.argv[1:]}  # seeds to run (default: all)
    for seed, hours, rate, burst, crawl in RUNS:
        if only and seed not in only:
            continue
        r = run_soak(seed=seed, hours=hours, fault_rate=rate, max_burst=burst, crawl=crawl)
        good = (not r.bad_snapshots and not r.lost_states and r.final_national_ok
                and r.final_area1_ok and r.final_actas_ok and bool(r.crawl["ledger_ok"]))
        ok = ok and good
        rows.append((seed, hours, rate, burst, r))
        print(json.dumps(r.to_dict(), default=str), file=sys.stderr)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; {time.strftime('%Y-%m-%d')}; total "
          f"{time.time() - t0:.0f} s\n")
    print("| seed | virtual h | fault rate | max burst | requests | faults | transient | "
          "blocked | api err | no data | rejected | corrections | storms | blocks | "
          "snapshots (nat/area/actas) | states truth/distinct/clean/accepted | lost | bad | "
          "final ok | stale % | max age s | wall s |")
    print("|" + "---|" * 22)
    for seed, _hours, rate, burst, r in rows:
        o = r.outcomes
        print(f"| {seed} | {r.virtual_hours:.0f} | {rate} | {burst} | {r.requests} | "
              f"{sum(r.faults_injected.values())} | {o.get('transient', 0)} | "
              f"{o.get('blocked', 0)} | {o.get('api_error', 0)} | {o.get('no_data', 0)} | "
              f"{sum(r.rejections.values())} | {r.corrections} | {r.storms} | "
              f"{r.hard_blocks} | {r.snapshots['national']}/{r.snapshots['area1']}/"
              f"{r.snapshots['actas']} | {r.truth_states}/{r.distinct_truth_states}/"
              f"{r.clean_states}/{r.accepted_states} | {len(r.lost_states)} | "
              f"{len(r.bad_snapshots)} | "
              f"{r.final_national_ok and r.final_area1_ok and r.final_actas_ok} | "
              f"{100 * r.stale_fraction:.1f} | {r.max_age_s:.0f} | {r.wall_seconds:.1f} |")
    print("\nThe cold path (same runs):\n")
    print("| seed | crawled | actas | acta requests | list requests | geography requests | "
          "max cold requests / cycle | national interval p50 / p99 s | acta snapshots | "
          "crawl complete | ledger verified |")
    print("|" + "---|" * 11)
    for seed, _hours, _rate, _burst, r in rows:
        c = r.crawl
        print(f"| {seed} | {', '.join(c['areas'])} | {c['actas']} | {c['acta_requests']} | "
              f"{c['list_requests']} | {c['geo_requests']} | "
              f"{c['max_cold_requests_per_cycle']} | {c['hot_gap_p50_s']:.0f} / "
              f"{c['hot_gap_p99_s']:.0f} | {r.snapshots['actas']} | "
              f"{c.get('complete_at') is not None} | {c['ledger_ok']} |")
    print("\nRejections by rule (all runs): " + json.dumps(
        _sum([r.rejections for *_, r in rows])))
    print("Faults injected (all runs): " + json.dumps(_sum([r.faults_injected
                                                           for *_, r in rows])))
    return 0 if ok else 1


def _sum(dicts: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))


if __name__ == "__main__":
    sys.exit(main())
