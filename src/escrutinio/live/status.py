"""The served state and the watcher's status: what ``watch-status``, the status file and
``GET /health`` show.

The served state carries its age — seconds since ONPE last confirmed it — and a
staleness flag (age above ``stale_after_s``).
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from escrutinio.live.classify import Outcome
from escrutinio.live.config import LiveConfig
from escrutinio.live.state import LiveState, iso, lima

if TYPE_CHECKING:
    from escrutinio.live.watcher import Watcher


def served_state(cfg: LiveConfig, live: LiveState, now: datetime) -> dict[str, Any] | None:
    """The national state being served, with its age and staleness (None before one)."""
    st = live.scopes.get("national")
    if st is None or st.accepted is None:
        return None
    r = st.accepted
    age = None if st.confirmed_at is None else (now - st.confirmed_at).total_seconds()
    stale = age is None or age > cfg.intervals.stale_after_s
    counted, total = r.counts.get("actas_counted"), r.counts.get("actas_total")
    return {
        "snapshot_id": live.served_snapshot, "as_of": lima(r.as_of),
        "latest_onpe_time": lima(st.latest_onpe_time),
        "accepted_at": iso(st.accepted_at), "confirmed_at": iso(st.confirmed_at),
        "age_s": None if age is None else round(age, 3), "stale": stale,
        "stale_after_s": cfg.intervals.stale_after_s,
        "actas_counted": counted, "actas_total": total,
        "actas_jee": r.counts.get("actas_jee"), "actas_pending": r.counts.get("actas_pending"),
        "pct_actas_counted": (round(100.0 * counted / total, 3)
                              if counted is not None and total else None),
        "cast": r.counts.get("cast"), "valid": r.valid, "votes": dict(r.votes),
    }


def _counts(live: LiveState) -> dict[str, Any]:
    stats = live.stats
    return {
        "counts": {o.value: stats.outcomes.get(o.value, 0) for o in Outcome},
        "results": dict(stats.results), "rejections": dict(stats.rejections),
        "corrections": stats.corrections, "alarms": stats.alarms,
        "hard_blocks": stats.hard_blocks, "storms": stats.storms,
        "snapshots_created": stats.snapshots_created, "cycles": stats.cycles,
    }


def _scopes_and_actas(live: LiveState) -> dict[str, Any]:
    actas = live.actas
    return {
        "scopes": {k: {"as_of": lima(st.accepted.as_of) if st.accepted else None,
                       "confirmed_at": iso(st.confirmed_at),
                       "actas_counted": (st.accepted.counts.get("actas_counted")
                                         if st.accepted else None),
                       "last_error": st.last_error}
                   for k, st in live.scopes.items()},
        "actas": {r.acta_id: r.status for r in actas.values()} if len(actas) <= 200 else {},
        "actas_by_status": dict(Counter(r.status for r in actas.values())),
        "acta_errors": dict(list(live.acta_errors.items())[-50:]),
    }


def watcher_status(w: Watcher, now: datetime) -> dict[str, Any]:
    live, paused_until = w.live, w.schedule.paused_until
    served = served_state(w.cfg, live, now)
    if paused_until is not None and now < paused_until:
        state = "hard_blocked"
    elif served is None:
        state = "starting"
    elif served["stale"]:
        state = "stale"
    else:
        state = "ok"
    return {
        "state": state, "contest_id": w.cfg.contest.id, "config": w.cfg.source,
        "run_id": w.run_id, "pid": os.getpid(), "now": iso(now),
        "started_at": iso(w.started_at),
        "election_id": live.election_id, "served": served,
        "last_success": iso(live.last_success), "last_error": live.last_error,
        "paused_until": iso(paused_until),
        "consecutive_failures": live.consecutive_failures,
        **_counts(live),
        "requests": w.transport.requests,
        **_scopes_and_actas(live),
        "crawl": None if w.crawler is None else w.crawler.summary(),
        "snapshots": {"national": live.served_snapshot, "area1": live.area1_snapshot,
                      "actas": live.actas_snapshot},
    }


def refresh_age(st: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Recompute ``served.age_s`` / ``stale`` of a saved status at ``now``, and how old
    the status itself is (``status_age_s``: a watcher that stopped writing it is not
    running)."""
    if st.get("now"):
        written = datetime.fromisoformat(str(st["now"]).replace("Z", "+00:00"))
        st["status_age_s"] = round((now - written).total_seconds(), 3)
    served = st.get("served")
    if served and served.get("confirmed_at"):
        conf = datetime.fromisoformat(served["confirmed_at"].replace("Z", "+00:00"))
        age = (now - conf).total_seconds()
        served["age_s"] = round(age, 3)
        served["stale"] = age > float(served.get("stale_after_s", 0))
        if st.get("state") in ("ok", "stale"):
            st["state"] = "stale" if served["stale"] else "ok"
    st["now"] = iso(now)
    return st


def write_status_file(path: Path, status: dict[str, Any]) -> None:
    """Atomic write (temporary file + rename): a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, ensure_ascii=False, indent=2, default=str),
                   encoding="utf-8")
    os.replace(tmp, path)


def read_status_file(path: Path, now: datetime | None = None) -> dict[str, Any]:
    st = json.loads(path.read_text(encoding="utf-8"))
    return refresh_age(st, now or datetime.now(UTC))


def serve_health(watcher: Watcher, port: int, host: str = "127.0.0.1"
                 ) -> ThreadingHTTPServer:
    """``GET /health`` (or ``/status``): the status JSON; 200 when fresh, 503 when stale,
    blocked or starting."""

    class Health(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            st = watcher.cached_status()
            body = json.dumps(st, ensure_ascii=False, default=str).encode()
            self.send_response(200 if st.get("state") == "ok" else 503)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((host, port), Health)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


__all__ = [
    "read_status_file",
    "refresh_age",
    "serve_health",
    "served_state",
    "watcher_status",
    "write_status_file",
]
