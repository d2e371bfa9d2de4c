"""Every raw response kept: URL, status, headers, fetch time, SHA-256 and the bytes.

Storage: three tables of the store's own (``live_bodies``, ``live_responses``,
``live_events``), written and read through the store's raw-log repository
(``store.live_rawlog``, :mod:`escrutinio.store.rawlog_repo`: one implementation per
backend, DuckDB and PostgreSQL; the snapshot schema is not touched):

* ``live_bodies(sha256 PRIMARY KEY, size, body)`` — each distinct body once (a
  night of polling repeats the same answer thousands of times);
* ``live_responses`` — one row per HTTP exchange, retries included: run, cycle, scope,
  endpoint, attempt, URL, status, headers (JSON), fetched_at, elapsed, network error,
  the body's SHA-256 and the class the classifier gave it;
* ``live_events`` — the watcher's structured log: acceptances, rejections with the
  rule, corrections, alarms, blocks, pauses, start and shutdown.

Every accepted snapshot lists, in its metadata, the SHA-256 and URL of each response it
was built from, so it can be audited against ``live_bodies`` and replayed
(:mod:`escrutinio.live.replay`). Rows are buffered and written in one transaction per
flush: before a snapshot is stored (its raw responses are on disk first), every couple
of seconds of polling, and at shutdown. A kill -9 between flushes loses at most those
seconds of log — never half a row, never the responses of an accepted snapshot.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from escrutinio.live.classify import Classification, RawResponse
from escrutinio.store.rawlog_repo import EVENT_COLUMNS, RawLogRepo


@dataclass(frozen=True, slots=True)
class LoggedResponse:
    seq: int
    run_id: str
    cycle: int
    fetched_at: datetime
    url: str
    scope: str
    endpoint: str
    attempt: int
    status: int | None
    headers: tuple[tuple[str, str], ...]
    sha256: str
    size: int
    elapsed_ms: float
    error: str | None
    outcome: str
    reason: str


class RawLog:
    """Buffered writer (and reader) of the raw log, through the store's repository."""

    def __init__(self, repo: RawLogRepo, run_id: str = "", *, read_only: bool = False) -> None:
        self.repo = repo
        self.run_id = run_id
        if not read_only:
            repo.ensure_schema()
        self._resp: list[dict[str, Any]] = []
        self._bodies: dict[str, bytes] = {}
        self._events: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._seq = repo.max_seq("responses")
        self._eseq = repo.max_seq("events")

    def has_log(self) -> bool:
        """Does the store hold a raw log at all (a store never watched has none)?"""
        return self.repo.has_log()

    def run_ids(self) -> list[str]:
        """Every run that logged a response, sorted."""
        return self.repo.run_ids()

    # -- writing ---------------------------------------------------------------------
    def record(self, resp: RawResponse, cls: Classification, cycle: int) -> None:
        self._seq += 1
        self._resp.append({
            "seq": self._seq, "run_id": self.run_id, "cycle": cycle,
            "fetched_at": resp.fetched_at.astimezone(UTC), "url": resp.url,
            "scope": resp.scope, "endpoint": resp.endpoint, "attempt": resp.attempt,
            "status": resp.status, "headers": json.dumps(list(resp.headers)),
            "sha256": resp.sha256, "size": len(resp.body), "elapsed_ms": resp.elapsed_s * 1e3,
            "error": resp.error, "outcome": cls.outcome.value, "reason": cls.reason,
        })
        self._bodies.setdefault(resp.sha256, resp.body)

    def event(self, ts: datetime, level: str, kind: str, scope: str | None, es: str, en: str,
              detail: dict[str, Any] | None = None) -> None:
        self._eseq += 1
        self._events.append({
            "seq": self._eseq, "run_id": self.run_id, "ts": ts.astimezone(UTC),
            "level": level, "kind": kind, "scope": scope, "message_es": es, "message_en": en,
            "detail": json.dumps(detail or {}, ensure_ascii=False, default=str),
        })

    def maybe_flush(self, *, max_rows: int = 2000, max_age_s: float = 2.0) -> None:
        """Flush when the buffer is large or old (real seconds): one commit per few
        seconds of polling instead of one per response."""
        if self.pending >= max_rows or (
                self.pending and time.monotonic() - self._last_flush >= max_age_s):
            self.flush()

    @property
    def pending(self) -> int:
        return len(self._resp) + len(self._events)

    def flush(self) -> None:
        """Write everything buffered in one transaction (all or nothing)."""
        if not self._resp and not self._events:
            return
        self.repo.write(self._bodies, self._resp, self._events)
        self._resp.clear()
        self._bodies.clear()
        self._events.clear()
        self._last_flush = time.monotonic()

    # -- reading ---------------------------------------------------------------------
    def responses(self, *, run_id: str | None = None, scope: str | None = None,
                  limit: int | None = None) -> list[LoggedResponse]:
        self.flush()  # a reader sees what this log has buffered
        rows = self.repo.responses(run_id=run_id, scope=scope, limit=limit)
        out = []
        for r in rows:
            ts = r[3] if r[3].tzinfo else r[3].replace(tzinfo=UTC)
            out.append(LoggedResponse(int(r[0]), r[1], int(r[2]), ts.astimezone(UTC), r[4], r[5],
                                      r[6], int(r[7]), None if r[8] is None else int(r[8]),
                                      tuple(tuple(h) for h in json.loads(r[9])),  # type: ignore[misc]
                                      r[10], int(r[11]), float(r[12]), r[13], r[14], r[15]))
        return out

    def body(self, sha256: str) -> bytes | None:
        return self.repo.body(sha256)

    def events(self, *, kind: str | None = None) -> list[dict[str, Any]]:
        self.flush()
        out = []
        for r in self.repo.events(kind=kind):
            d = dict(zip(EVENT_COLUMNS, r, strict=True))
            d["detail"] = json.loads(d["detail"])
            out.append(d)
        return out

    def outcome_counts(self, run_id: str | None = None) -> dict[str, int]:
        self.flush()
        return self.repo.outcome_counts(run_id)

    def export(self, folder: str | Path, *, run_id: str | None = None) -> int:
        """Write the log as a replay folder: ``responses.jsonl`` (one exchange per line, in
        order) and ``bodies/<sha256>`` (each body once). Returns the number of lines."""
        root = Path(folder)
        (root / "bodies").mkdir(parents=True, exist_ok=True)
        n = 0
        with (root / "responses.jsonl").open("w", encoding="utf-8") as fh:
            for r in self.responses(run_id=run_id):
                path = root / "bodies" / r.sha256
                if not path.exists():
                    body = self.body(r.sha256)
                    path.write_bytes(body or b"")
                fh.write(json.dumps({
                    "seq": r.seq, "run_id": r.run_id, "cycle": r.cycle,
                    "fetched_at": r.fetched_at.isoformat(), "url": r.url, "scope": r.scope,
                    "endpoint": r.endpoint, "attempt": r.attempt, "status": r.status,
                    "headers": [list(h) for h in r.headers], "sha256": r.sha256,
                    "elapsed_ms": r.elapsed_ms, "error": r.error, "outcome": r.outcome,
                    "reason": r.reason,
                }, ensure_ascii=False) + "\n")
                n += 1
        return n


def iter_export(folder: str | Path) -> Iterator[RawResponse]:
    """Read back a folder written by :meth:`RawLog.export`, in order."""
    root = Path(folder)
    with (root / "responses.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            d = json.loads(line)
            body = (root / "bodies" / d["sha256"]).read_bytes()
            yield RawResponse(
                url=d["url"], status=d["status"],
                headers=tuple((str(k), str(v)) for k, v in d["headers"]), body=body,
                fetched_at=datetime.fromisoformat(d["fetched_at"]),
                elapsed_s=float(d.get("elapsed_ms", 0.0)) / 1e3, error=d.get("error"),
                scope=d["scope"], endpoint=d["endpoint"], attempt=int(d["attempt"]),
            )
