"""A time-compressed count night: hours of polling against the fake ONPE, with random
faults, in seconds of wall time. Used by the test suite (12 virtual hours) and by
``validation/live_soak.py`` (longer, several seeds).

Everything runs over real HTTP on 127.0.0.1; only time is virtual (a
:class:`~escrutinio.live.transport.FakeClock` shared by the watcher and the fake).
:func:`audit_against_truth` compares every stored live snapshot with the synthetic
count's truth: a snapshot is **bad** if its numbers are not exactly those of the state
whose ONPE time it claims, or if national ONPE times ever go back.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from escrutinio.domain import SnapshotKind
from escrutinio.live.config import LiveConfig, config_from_dict, example
from escrutinio.live.fake_onpe import SOFT_FAULTS, FakeOnpe, Synthetic2026
from escrutinio.live.transport import FakeClock
from escrutinio.live.watcher import Watcher
from escrutinio.store.base import Store
from escrutinio.store.duckdb_store import DuckDBStore
from escrutinio.store.ledger import verify_log

COMPARED = ("actas_total", "actas_counted", "actas_processed", "actas_jee", "actas_pending",
            "cast")


def truth_row(tl: Synthetic2026, k: int, scope: str, codes: list[str]) -> dict[str, Any]:
    s = tl.truth(k, scope)
    return {"actas_total": s["total"], "actas_counted": s["counted"],
            "actas_processed": s["counted"] + s["jee"], "actas_jee": s["jee"],
            "actas_pending": s["pending"], "cast": s["cast"],
            **{f"v_{c}": v for c, v in zip(codes, s["votes"], strict=True)}}


def _pick(row: dict[str, Any], codes: list[str]) -> dict[str, Any]:
    return {k: row[k] for k in (*COMPARED, *(f"v_{c}" for c in codes))}


@dataclass
class Audit:
    national: int = 0
    area1: int = 0
    actas: int = 0
    bad: list[str] = field(default_factory=list)
    accepted_states: set[int] = field(default_factory=set)


def audit_against_truth(store: Store, cfg: LiveConfig, tl: Synthetic2026) -> Audit:
    """Check every live snapshot of ``cfg``'s contest against the synthetic truth."""
    codes = [c.code for c in cfg.contest.candidates]
    k_of = {tl.as_of(k).astimezone(UTC): k for k in range(tl.n_states)}
    out = Audit()
    last: datetime | None = None
    ever = _statuses_ever(tl)
    held: dict[int, str] = {}  # acta -> status in the previous acta snapshot
    metadata = store.snapshot_metadata(cfg.contest.id)  # one query, not one per snapshot
    for info in store.list_snapshots(cfg.contest.id):
        if info.parser != cfg.parser_name:
            continue
        sid = info.snapshot_id[:12]
        if info.kind is SnapshotKind.ACTAS:
            out.actas += 1
            frame = store.load_actas(info.snapshot_id)
            for row in frame.iter_rows(named=True):
                out.bad.extend(_audit_acta(tl, row, codes, ever, held, sid))
            continue
        frame = store.load_units(info.snapshot_id)
        meta = metadata.get(info.snapshot_id, {})
        units = json.loads(meta.get("units", "{}"))
        if info.level == "national":
            out.national += 1
            if last is not None and info.as_of <= last:
                out.bad.append(f"{sid}: national ONPE time went back")
            last = info.as_of
        else:
            out.area1 += 1
        for row in frame.iter_rows(named=True):
            key = "national" if row["level"] == "national" else f"area1:{row['unit_code']}"
            when = datetime.fromisoformat(units[key]["as_of"].replace("Z", "+00:00"))
            k = k_of.get(when)
            if k is None:
                out.bad.append(f"{sid}: {key} claims an ONPE time no state has ({when})")
                continue
            if _pick(row, codes) != truth_row(tl, k, key, codes):
                out.bad.append(f"{sid}: {key} differs from the truth of state {k}")
            elif key == "national" and info.level == "national":
                out.accepted_states.add(k)
    return out


_STATUS_CODES = ("pending", "jee", "counted", "annulled", "not_installed")


def _statuses_ever(tl: Synthetic2026) -> np.ndarray:
    """(states × actas) codes of ``_STATUS_CODES``: every status each acta ever had."""
    out = np.zeros((tl.n_states, len(tl.mesa)), dtype=np.int8)
    for k in range(tl.n_states):
        counted, jee = tl.status_at(k)
        out[k] = np.where(counted, 2 + tl.final, np.where(jee, 1, 0))
    return out


def _audit_acta(tl: Synthetic2026, row: dict[str, Any], codes: list[str], ever: np.ndarray,
                held: dict[int, str], sid: str) -> list[str]:
    """An acta row is bad if its status is one the acta never had, if its figures are
    not the acta's, or if a counted acta went back (unless the count really moved it)."""
    bad = []
    aid = row["acta_id"]
    try:
        idx = tl.index_of_mesa(aid)
    except KeyError:
        return [f"{sid}: acta {aid} does not exist"]
    had = {_STATUS_CODES[c] for c in np.unique(ever[:, idx])}
    status = row["status"]
    if status not in had:
        bad.append(f"{sid}: acta {aid} status {status} (it was only {sorted(had)})")
    if status in ("counted", "annulled", "jee"):
        want = tl.acta_truth(tl.n_states - 1, idx, codes)
        got = {k: row[k] for k in ("cast", "blank", "null", *(f"v_{c}" for c in codes))}
        if got != {k: want[k] for k in got}:
            bad.append(f"{sid}: acta {aid} figures {got} != {want}")
    if row["area3_code"] != tl.area3[idx]:
        bad.append(f"{sid}: acta {aid} area {row['area3_code']} != {tl.area3[idx]}")
    prev = held.get(idx)
    if prev in ("counted", "annulled", "not_installed") and status != prev \
            and idx not in tl.uncount:
        bad.append(f"{sid}: acta {aid} went back {prev} -> {status}")
    held[idx] = status
    return bad


def clean_national_states(fake: FakeOnpe, min_pairs: int = 2) -> set[int]:
    """States served cleanly (totales + participantes of one state, no fault) at least
    ``min_pairs`` times: a correct watcher cannot have missed them."""
    pairs: dict[int, int] = {}
    last_tot: int | None = None
    for s in fake.log:
        if s.route == "totales|national":
            last_tot = s.state if s.fault is None and s.status == 200 else None
        elif (s.route == "participantes|national" and s.fault is None
              and s.status == 200 and last_tot is not None and s.state == last_tot):
            pairs[last_tot] = pairs.get(last_tot, 0) + 1
            last_tot = None
    return {k for k, n in pairs.items() if n >= min_pairs}


@dataclass
class SoakReport:
    seed: int
    virtual_hours: float
    wall_seconds: float
    requests: int
    faults_injected: dict[str, int]
    outcomes: dict[str, int]
    results: dict[str, int]
    rejections: dict[str, int]
    snapshots: dict[str, int]
    truth_states: int
    distinct_truth_states: int
    accepted_states: int
    clean_states: int
    lost_states: list[int]
    bad_snapshots: list[str]
    final_national_ok: bool
    final_area1_ok: bool
    final_actas_ok: bool
    crawl: dict[str, Any]  # the cold path: areas, actas crawled, requests, bounds
    hard_blocks: int
    storms: int
    corrections: int
    stale_fraction: float  # of the time after the first acceptance
    max_age_s: float
    final_state: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def soak_config(fake: FakeOnpe, tl: Synthetic2026, *, units: tuple[str, ...],
                n_actas: int, crawl: tuple[str, ...] = ()) -> LiveConfig:
    import tomllib

    d = tomllib.loads(example("onpe2026-runoff").read_text("utf-8"))
    d["base_url"], d["site_url"] = fake.backend_url, fake.url
    d["scopes"]["area1"] = list(units)
    d["actas"] = {"ids": tl.acta_ids()[:n_actas]}
    d["cold"] = d.get("cold", {}) | {"areas": list(crawl), "max_requests": 60,
                                     "page_size": 100}
    d["intervals"] = {"hot_s": 45, "warm_s": 300, "cold_s": 900, "stale_after_s": 180,
                      "hard_block_pause_s": 600, "storm_threshold": 3,
                      "storm_backoff_max_s": 600}
    d["transport"] = {"timeout_s": 0.25, "rate_per_s": 4.0, "jitter_s": 0.3,
                      "max_attempts": 3, "backoff_base_s": 2.0, "backoff_max_s": 60.0}
    return config_from_dict(d, source="soak")


def _final_states(w: Watcher, store: Store, tl: Synthetic2026, crawl: tuple[str, ...],
                  n_actas: int) -> tuple[bool, bool, bool]:
    """Does the watcher end on the truth's last state: national, areas, actas?"""
    last = tl.n_states - 1
    codes = [c.code for c in w.cfg.contest.candidates]
    served = w.served()
    final_nat = served is not None and {
        "actas_counted": served["actas_counted"], **{f"v_{c}": served["votes"][c]
                                                     for c in codes}
    } == {k: v for k, v in truth_row(tl, last, "national", codes).items()
          if k == "actas_counted" or k.startswith("v_")}
    final_area = all(
        st.accepted is not None
        and _pick(st.accepted.row(), codes) == truth_row(tl, last, key, codes)
        for key, st in w.state.items() if key.startswith("area1:"))
    want = {tl.mesa[i] for i in tl.region_actas(*crawl)} | {
        tl.mesa[i] for i in tl.watch_actas[:n_actas]}
    final_frame = store.load_actas(w.actas_snapshot) if w.actas_snapshot else None
    final_actas = final_frame is not None and set(final_frame["acta_id"]) == want and all(
        {k: row[k] for k in truth} == truth
        for row in final_frame.iter_rows(named=True)
        for truth in [tl.acta_truth(last, tl.index_of_mesa(row["acta_id"]), codes)])
    return final_nat, final_area, final_actas


def _crawl_info(w: Watcher, store: Store, fake: FakeOnpe, tl: Synthetic2026,
                crawl: tuple[str, ...], cold_requests: list[int],
                verify_ledger: bool) -> dict[str, Any]:
    nat_t = [s.t for s in fake.log if s.route == "totales|national"]
    gaps = sorted((b - a).total_seconds() for a, b in itertools.pairwise(nat_t))
    return {
        "areas": list(crawl), "actas": len(tl.region_actas(*crawl)) if crawl else 0,
        "acta_requests": sum(1 for s in fake.log if s.route.startswith("acta|")),
        "list_requests": sum(1 for s in fake.log if s.route.startswith("list|")),
        "geo_requests": sum(1 for s in fake.log if s.route.startswith("geo|")),
        "max_cold_requests_per_cycle": max(cold_requests, default=0),
        "hot_gap_p50_s": gaps[len(gaps) // 2] if gaps else None,
        "hot_gap_p99_s": gaps[int(len(gaps) * 0.99)] if gaps else None,
        "ledger_ok": verify_log(store).ok if verify_ledger else None,
        **{k: v for k, v in (w.crawler.summary() if w.crawler else {}).items()
           if k in ("actas_fetched", "complete_at", "first_page")},
    }


def _state_counts(fake: FakeOnpe, tl: Synthetic2026, audit: Audit, codes: list[str]
                  ) -> tuple[set[str], set[str], list[int], list[int]]:
    """(distinct truth states, accepted ones, clean ones, clean ones lost)."""
    truths = [truth_row(tl, k, "national", codes) for k in range(tl.n_states)]
    distinct = {json.dumps(t, sort_keys=True) for t in truths}
    clean = clean_national_states(fake, 2)
    accepted_rows = {json.dumps(truths[k], sort_keys=True) for k in audit.accepted_states}
    lost = sorted(k for k in clean
                  if json.dumps(truths[k], sort_keys=True) not in accepted_rows)
    return distinct, accepted_rows, list(clean), lost


def _staleness(ages: list[tuple[datetime, float | None, bool]]) -> tuple[float, float]:
    """(fraction of the time the served state was stale, the largest age seen)."""
    first = next((i for i, a in enumerate(ages) if a[1] is not None), len(ages))
    stale_time = sum((ages[i + 1][0] - ages[i][0]).total_seconds()
                     for i in range(first, len(ages) - 1) if ages[i][2])
    span = ((ages[-1][0] - ages[first][0]).total_seconds()
            if first < len(ages) - 1 else 0.0)
    return (round(stale_time / span, 4) if span else 1.0,
            max((a[1] for a in ages if a[1] is not None), default=0.0))


def _soak_timeline(seed: int, hours: float, units: tuple[str, ...], n_actas: int
                   ) -> Synthetic2026:
    """A state every 10 minutes, two corrections and three freezes along the night."""
    step = 600.0
    n_states = int(hours * 3600 / step) + 1
    return Synthetic2026(seed=seed, n_states=n_states, step_s=step, units=units,
                         n_actas=max(20_000, 2_000 * len(units)),
                         corrections=(n_states // 3, 2 * n_states // 3),
                         freezes=(n_states // 5, n_states // 2, 4 * n_states // 5),
                         n_watch_actas=n_actas)


def _inject_block(fake: FakeOnpe, i: int, slow: int) -> None:
    """A 403 or 401 on the national totals (alternately), and ``slow`` slow answers."""
    fake.inject("forbidden403" if i % 2 == 0 else "unauthorized401", 1,
                match="tipoFiltro=eleccion")
    if slow:
        fake.inject("slow", slow, match="totales")


def run_soak(*, seed: int = 12, hours: float = 12.0, fault_rate: float = 0.04,
             max_burst: int = 8, units: tuple[str, ...] = ("010000", "140000", "150000",
                                                          "920000"),
             n_actas: int = 5, hard_blocks: int = 2, slow: int = 2,
             crawl: tuple[str, ...] = ("abroad",), verify_ledger: bool = True,
             store: DuckDBStore | None = None) -> SoakReport:
    """``hours`` of virtual polling over a count whose states change every 10 minutes,
    with random fault bursts (every soft kind), ``hard_blocks`` 401/403 blocks and
    ``slow`` slow answers (these cost real time: the client's timeout). The cold path
    crawls ``crawl`` (geography, acta lists, actas) under the same faults; with
    ``verify_ledger`` the hash chain is verified at the end (``verify-log``)."""
    tl = _soak_timeline(seed, hours, units, n_actas)
    clock = FakeClock()
    fake = FakeOnpe(tl, clock=clock, slow_s=0.35).start()
    own_store = store is None
    store = store or DuckDBStore(":memory:")
    cfg = soak_config(fake, tl, units=units, n_actas=n_actas, crawl=crawl)
    kinds = tuple(k for k in SOFT_FAULTS if k != "slow")
    fake.random_faults(fault_rate, kinds=kinds, max_burst=max_burst, seed=seed)
    w = Watcher(cfg, store, clock=clock, seed=seed)
    ages: list[tuple[datetime, float | None, bool]] = []

    cold_requests: list[int] = []

    def sample(rep: dict[str, Any]) -> None:
        cold_requests.append(int(rep.get("cold_requests", 0)))
        s = w.served()
        ages.append((clock.now(), None if s is None else s["age_s"],
                     True if s is None else bool(s["stale"])))

    t0 = time.perf_counter()
    total = hours * 3600 + 3600  # an hour after the last state: time to catch up
    segments = max(1, hard_blocks + 1)
    try:
        for i in range(segments):
            w.run(duration_s=total / segments, install_signals=False, on_cycle=sample)
            if i < hard_blocks:
                _inject_block(fake, i, slow)
        wall = time.perf_counter() - t0
        audit = audit_against_truth(store, cfg, tl)
        final_nat, final_area, final_actas = _final_states(w, store, tl, crawl, n_actas)
        crawl_info = _crawl_info(w, store, fake, tl, crawl, cold_requests, verify_ledger)
        distinct, accepted_rows, clean, lost = _state_counts(
            fake, tl, audit, [c.code for c in cfg.contest.candidates])
        stale_fraction, max_age = _staleness(ages)
        st = w.status()
        return SoakReport(
            seed=seed, virtual_hours=total / 3600, wall_seconds=round(wall, 2),
            requests=fake.requests, faults_injected=fake.fault_counts(),
            outcomes=dict(w.stats.outcomes), results=dict(w.stats.results),
            rejections=dict(w.stats.rejections),
            snapshots={"national": audit.national, "area1": audit.area1,
                       "actas": audit.actas},
            truth_states=tl.n_states, distinct_truth_states=len(distinct),
            accepted_states=len(accepted_rows), clean_states=len(clean), lost_states=lost,
            bad_snapshots=audit.bad, final_national_ok=final_nat, final_area1_ok=final_area,
            final_actas_ok=final_actas, crawl=crawl_info, hard_blocks=w.stats.hard_blocks,
            storms=w.stats.storms, corrections=w.stats.corrections,
            stale_fraction=stale_fraction, max_age_s=max_age,
            final_state=st["state"],
        )
    finally:
        w.transport.close()
        fake.stop()
        if own_store:
            store.close()
