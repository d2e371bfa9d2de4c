"""Load and fault test of server mode on loopback (results in benchmarks/RESULTS-server.md).

What it does, all on 127.0.0.1:

1. Starts a throwaway PostgreSQL (``tests/pg_support.py``: initdb + pg_ctl in a temporary
   folder) with ``synchronous_commit = on`` — a commit is acknowledged only once its WAL
   has reached the operating system, so killing PostgreSQL cannot lose it (``fsync`` stays
   off: the machine itself does not crash in this test, only processes die).
2. Ingests the final per-acta state of the 2021 runoff (86,488 actas) and logs it.
3. Creates an admin account with the CLI (``escrutinio accounts``), starts
   ``escrutinio --db postgresql://... serve --workers N`` as a subprocess, and creates
   ``--observers`` observer accounts (each with its own token and a scope of the actas it
   covers) through the admin API.
4. Drives every observer at once (httpx AsyncClient, one token each): each submits its
   copies one after another. Copies are real actas of the official file; about one in
   eight carries a deliberate difference (candidates swapped, digits transposed, a figure
   changed). A client retries a timeout, a dropped connection or a 5xx with the **same
   client_id** (so a retry is idempotent), waiting ``Retry-After`` when the server gives it.
5. Optionally injects a fault in the middle of the load: ``worker`` (kill -9 of one API
   worker; uvicorn's supervisor must replace it) or ``postgres`` (kill -9 of every
   PostgreSQL process, a pause, then a restart with crash recovery).
6. Checks the database afterwards: every acknowledged (2xx) submission is present exactly
   once with the acknowledged id and payload hash; no duplicates; no submission without
   its ledger entry and no submission ledger entry without its row; ``escrutinio
   verify-log`` passes; no answer was a 500; every 503 carried ``Retry-After``.

``--reads SECONDS`` first measures the public read API in server mode with Debian's ``wrk``
(200 connections; every request checks the catalogue epoch against PostgreSQL).

Usage::

    .venv/bin/python benchmarks/bench_server.py --observers 500 --copies 4 --workers 2 \
        --faults none worker postgres [--reads 10] [--append]

``--append`` appends the results to benchmarks/RESULTS-server.md. The reduced version of the
same run is ``tests/test_server_mode.py`` (it imports this module).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS-server.md"
RUNOFF_FINAL = Path("peru-2021-runoff") / "actas" / "actas_electorales_ronderos.pe.csv.gz"
CLI = [sys.executable, "-c", "from escrutinio.cli import app; app(prog_name='escrutinio')"]
SUBMISSIONS = "/api/v1/observer/submissions"
#: the fraction of all submissions acknowledged when the fault is injected
FAULT_AT = 0.35


def _pg_support() -> Any:
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import pg_support

    return pg_support


def data_dir() -> Path:
    env = os.environ.get("ESCRUTINIO_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc), without multiprocessing's helper."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            ppid = int(text[text.rindex(")") + 2:].split()[1])
            state = text[text.rindex(")") + 2:].split()[0]
            if ppid != pid or state == "Z":
                continue
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if b"resource_tracker" not in cmd:
            out.append(int(stat.parent.name))
    return sorted(out)


# -- PostgreSQL ---------------------------------------------------------------------------------
class Postgres:
    """A throwaway cluster that this process may kill -9 and restart."""

    def __init__(self) -> None:
        pgs = _pg_support()
        bindir = pgs.find_pg_bin()
        if bindir is None:
            raise RuntimeError(pgs.pg_unavailable_reason())
        self.tp = pgs.TempPostgres(bindir)
        self.dsn = ""
        self.reaped = True  # whether init had reaped the killed postmaster (kill9)

    def start(self) -> str:
        import psycopg

        self.dsn = self.tp.start()
        with psycopg.connect(self.dsn, autocommit=True) as con:
            # acknowledged = in the WAL handed to the OS: a killed server loses nothing
            con.execute("ALTER SYSTEM SET synchronous_commit = on")
            con.execute("SELECT pg_reload_conf()")
        return self.dsn

    def postmaster(self) -> int:
        return int((self.tp.data / "postmaster.pid").read_text().split()[0])

    def kill9(self) -> None:
        """SIGKILL the postmaster and every backend at once (a crash, not a shutdown)."""
        pm = self.postmaster()
        pids = [pm, *children(pm)]
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_state(p) not in ("Z", "") for p in pids):
            time.sleep(0.02)
        # the postmaster was daemonised: its zombie waits for init to reap it, and a new
        # postmaster refuses to start while the PID in postmaster.pid exists. Give init a
        # moment; then the lock file is stale (every process of the cluster is dead)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and Path(f"/proc/{pm}").exists():
            time.sleep(0.02)
        self.reaped = not Path(f"/proc/{pm}").exists()
        if not self.reaped:
            (self.tp.data / "postmaster.pid").unlink(missing_ok=True)

    def restart(self) -> float:
        """pg_ctl start after a crash (crash recovery runs); seconds until it accepts."""
        import psycopg

        t0 = time.monotonic()
        r = self.tp._run("pg_ctl", "-D", str(self.tp.data), "-l", str(self.tp.log), "-w",
                         "-t", "60", "start")
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {r.stderr or r.stdout}")
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.dsn, connect_timeout=2).close()
                return time.monotonic() - t0
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self.tp.stop()


def _state(pid: int) -> str:
    """The process state letter ("Z": zombie; "": no such process)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return text[text.rindex(")") + 2:].split()[0]
    except (OSError, ValueError):
        return ""


# -- data: the official actas and the observers' copies -----------------------------------------
@dataclass
class Copy:
    client_id: str
    acta_id: str
    record: dict[str, Any]
    altered: str  # "" or what was changed on purpose


def setup_store(dsn: str, data: Path) -> dict[str, Any]:
    """Ingest the final 2021 runoff actas (and log them); return the official frame."""
    from escrutinio import service
    from escrutinio.sources.onpe_files import parse_ronderos
    from escrutinio.store import open_store

    snap = parse_ronderos(data / RUNOFF_FINAL, as_of="2021-06-17T00:00:00Z",
                          label="final (ronderos.pe, ~15-17 Jun 2021)")
    with open_store(dsn) as store:
        service.ingest(store, [snap])
    return {"frame": snap.frame, "contest": snap.contest, "snapshot_id": snap.snapshot_id}


def make_copies(official: dict[str, Any], n_observers: int, per_observer: int,
                seed: int = 2021) -> list[list[Copy]]:
    """Copies of counted actas, ``per_observer`` distinct actas per observer; about one in
    eight altered on purpose (so some submissions reconcile as differences)."""
    import polars as pl

    frame = official["frame"].filter(pl.col("status") == "counted")
    cands = official["contest"].candidate_columns
    rng = random.Random(seed)
    need = n_observers * per_observer
    idx = rng.sample(range(frame.height), need)
    rows = frame[idx].to_dicts()
    out: list[list[Copy]] = []
    for o in range(n_observers):
        mine = []
        for k in range(per_observer):
            row = rows[o * per_observer + k]
            rec: dict[str, Any] = {
                "acta_id": row["acta_id"],
                "observed_at": "2021-06-06T19:40:00-05:00",
                "electors": row["electors"], "cast": row["cast"], "blank": row["blank"],
                "null": row["null"], "challenged": row["challenged"],
                "organization": "bench", "notes": None,
            }
            for c in cands:
                rec[c] = row[c]
            altered = ""
            roll = rng.random()
            a, b = cands[0], cands[1]
            if roll < 0.04 and rec[a] != rec[b]:
                rec[a], rec[b] = rec[b], rec[a]
                altered = "swapped"
            elif roll < 0.08 and (rec[a] or 0) >= 10 and str(rec[a]) != str(rec[a])[::-1]:
                rec[a] = int(str(rec[a])[::-1])
                altered = "transposed"
            elif roll < 0.125:
                rec[b] = (rec[b] or 0) + rng.choice((1, 5, 10, 50))
                altered = "figure"
            mine.append(Copy(f"o{o:04d}-{row['acta_id']}-{k}", row["acta_id"], rec, altered))
        out.append(mine)
    return out


# -- the server -----------------------------------------------------------------------------------
class Server:
    """``escrutinio --db <dsn> serve --workers N`` as a subprocess."""

    def __init__(self, dsn: str, workers: int, *, log: Path) -> None:
        self.dsn = dsn
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> None:
        fh = open(self.log, "ab")  # noqa: SIM115 - kept open for the subprocess's lifetime
        # info: the supervisor logs every worker it replaces (kept in the run's log)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "ESCRUTINIO_UVICORN_LOG_LEVEL": "info"}
        self.proc = subprocess.Popen(
            [*CLI, "--db", self.dsn, "serve", "--port", str(self.port), "--workers",
             str(self.workers), "--no-warm"], stdout=fh, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}; see {self.log}")
            # --workers 1 serves from the process itself (no supervisor, no children)
            if (self.workers == 1 or len(self.worker_pids()) == self.workers) \
                    and self.healthy():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"serve did not become healthy in {timeout} s; see {self.log}")

    def healthy(self) -> bool:
        try:
            return httpx.get(self.base + "/api/v1/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def worker_pids(self) -> list[int]:
        return [] if self.proc is None else children(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


def cli(dsn: str, *args: str) -> Any:
    r = subprocess.run([*CLI, "--db", dsn, *args, "--json"], capture_output=True, text=True,
                       timeout=120, check=False)
    if r.returncode not in (0, 3):
        raise RuntimeError(f"escrutinio {' '.join(args)} failed ({r.returncode}): "
                           f"{r.stderr[-2000:]}{r.stdout[-2000:]}")
    return json.loads(r.stdout)


def admin_token(dsn: str, *, via_cli: bool = True) -> str:
    """An admin account and its token: with the CLI (as an operator would), or in-process
    (faster, for the test)."""
    if via_cli:
        cli(dsn, "accounts", "add", "bench-admin", "--role", "admin")
        return str(cli(dsn, "accounts", "token", "bench-admin")["token"])
    from escrutinio.server.repo import Repo
    from escrutinio.store import open_store

    with open_store(dsn) as store:
        repo = Repo(store)
        try:
            acc = repo.create_account("bench-admin", "admin")
            token, _ = repo.issue_token(acc.account_id, days=2)
        finally:
            repo.close()
    return token


async def create_observers(base: str, admin: str, copies: list[list[Copy]],
                           concurrency: int = 16, prefix: str = "observer"
                           ) -> list[dict[str, str]]:
    """One observer account per list of copies (scope: exactly its actas), with a token."""
    sem = asyncio.Semaphore(concurrency)
    auth = {"Authorization": f"Bearer {admin}"}

    async def one(client: httpx.AsyncClient, i: int, mine: list[Copy]) -> dict[str, str]:
        async with sem:
            r = await client.post("/api/v1/admin/accounts", headers=auth, json={
                "name": f"{prefix}-{i:04d}", "role": "observer",
                "scope": {"actas": [c.acta_id for c in mine], "places": [], "areas": []}})
            r.raise_for_status()
            acc = r.json()["account"]["account_id"]
            r = await client.post(f"/api/v1/admin/accounts/{acc}/tokens", headers=auth,
                                  json={"expires_in_days": 2})
            r.raise_for_status()
            return {"account_id": acc, "token": r.json()["token"]}

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return list(await asyncio.gather(*(one(client, i, m) for i, m in enumerate(copies))))


# -- the load -------------------------------------------------------------------------------------
@dataclass
class Attempt:
    client_id: str
    t0: float
    seconds: float
    status: int | None  # None: no HTTP answer (timeout, connection dropped)
    error: str = ""
    retry_after: str | None = None


@dataclass
class Ack:
    client_id: str
    account_id: str
    acta_id: str
    status: int
    submission_id: str
    payload_sha256: str
    replay: bool
    first_t0: float
    t_ack: float


@dataclass
class LoadResult:
    attempts: list[Attempt] = field(default_factory=list)
    acks: dict[str, Ack] = field(default_factory=dict)  # client_id -> ack
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)  # final 4xx
    abandoned: list[str] = field(default_factory=list)  # no ack before the deadline
    wall: float = 0.0
    faults: list[dict[str, Any]] = field(default_factory=list)
    #: set while observers hold back their last copy until the faults are injected (so that
    #: a fault always lands in the middle of the load, however slow the machine)
    hold: asyncio.Event | None = None
    hold_for: int = 0
    injected: int = 0
    finished: bool = False

    def mark_injected(self) -> bool:
        """Called by a fault right after it strikes; releases the held copies once every
        expected fault has struck. Returns whether the load was still running."""
        self.injected += 1
        if self.hold is not None and self.injected >= self.hold_for:
            self.hold.set()
        return not self.finished


async def run_load(base: str, observers: list[dict[str, str]], copies: list[list[Copy]], *,
                   timeout: float = 30.0, deadline_s: float = 600.0,
                   fault: Any = None, hold_for: int = 0) -> LoadResult:
    """Every observer at once, each submitting its copies in turn; ``fault`` is an async
    callable run alongside (it gets the result object to watch the progress).

    ``hold_for``: every observer holds back its last copy until ``hold_for`` faults have
    struck (``LoadResult.mark_injected``), so the faults cannot miss the load on a slow
    machine; a fault's ack threshold must then stay below the copies not held back."""
    res = LoadResult()
    total = sum(len(c) for c in copies)
    if hold_for:
        res.hold, res.hold_for = asyncio.Event(), hold_for
    t_start = time.monotonic()
    end = t_start + deadline_s
    limits = httpx.Limits(max_connections=len(observers) + 50,
                          max_keepalive_connections=len(observers) + 50)

    async def observer(client: httpx.AsyncClient, who: dict[str, str], mine: list[Copy],
                       rng: random.Random) -> None:
        auth = {"Authorization": f"Bearer {who['token']}"}
        for k, c in enumerate(mine):
            if res.hold is not None and k == len(mine) - 1:
                await res.hold.wait()
            body = {"client_id": c.client_id, "copy": c.record}
            first = None
            backoff = 0.2
            while True:
                if time.monotonic() > end:
                    res.abandoned.append(c.client_id)
                    break
                t0 = time.monotonic()
                first = t0 if first is None else first
                try:
                    r = await client.post(SUBMISSIONS, json=body, headers=auth)
                except httpx.HTTPError as exc:  # timeout, refused, reset: retry, same id
                    res.attempts.append(Attempt(c.client_id, t0, time.monotonic() - t0, None,
                                                type(exc).__name__))
                    await asyncio.sleep(backoff * (0.5 + rng.random()))
                    backoff = min(backoff * 2, 5.0)
                    continue
                ra = r.headers.get("retry-after")
                res.attempts.append(Attempt(c.client_id, t0, time.monotonic() - t0,
                                            r.status_code, "", ra))
                if r.status_code in (200, 201):
                    sub = r.json()["submission"]
                    res.acks[c.client_id] = Ack(
                        c.client_id, who["account_id"], c.acta_id, r.status_code, sub["id"],
                        sub["payload_sha256"], r.headers.get("idempotent-replay") == "true",
                        first, time.monotonic())
                    break
                if r.status_code >= 500 or r.status_code == 429:
                    wait = float(ra) if ra and ra.isdigit() else backoff
                    await asyncio.sleep(wait * (0.5 + rng.random()))
                    backoff = min(backoff * 2, 5.0)
                    continue
                res.refused[c.client_id] = (r.status_code, r.text[:300])
                break

    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as client:
        tasks = [asyncio.create_task(observer(client, who, mine, random.Random(i)))
                 for i, (who, mine) in enumerate(zip(observers, copies, strict=True))]
        ftask = asyncio.create_task(fault(res, total)) if fault is not None else None
        if ftask is not None and res.hold is not None:
            # a fault that fails or gives up must not leave the observers waiting forever
            ftask.add_done_callback(lambda _t: res.hold.set() if res.hold else None)
        await asyncio.gather(*tasks)
        res.finished = True
        res.wall = time.monotonic() - t_start
        if ftask is not None:
            await ftask
    return res


def worker_fault(server: Server, at: float = FAULT_AT) -> Any:
    """kill -9 one API worker once ``at`` of the submissions are acknowledged; record how
    long until the supervisor had a replacement serving."""

    async def fault(res: LoadResult, total: int) -> None:
        while len(res.acks) < at * total:
            await asyncio.sleep(0.05)
        before = server.worker_pids()
        victim = before[0]
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        info: dict[str, Any] = {"fault": "worker", "killed_pid": victim,
                                "acked_before": len(res.acks),
                                "during_load": res.mark_injected()}
        while time.monotonic() - t0 < 60:
            now = server.worker_pids()
            new = [p for p in now if p not in before]
            if new and len(now) == server.workers:
                info["replacement_pid"] = new[0]
                info["replaced_after_s"] = round(time.monotonic() - t0, 2)
                break
            await asyncio.sleep(0.05)
        res.faults.append(info)

    return fault


def postgres_fault(pg: Postgres, down_seconds: float = 3.0, at: float = FAULT_AT) -> Any:
    """kill -9 every PostgreSQL process once ``at`` of the submissions are acknowledged,
    leave it down ``down_seconds``, restart it (crash recovery)."""

    async def fault(res: LoadResult, total: int) -> None:
        while len(res.acks) < at * total:
            await asyncio.sleep(0.05)
        t0 = time.monotonic()
        await asyncio.to_thread(pg.kill9)
        info: dict[str, Any] = {"fault": "postgres", "acked_before": len(res.acks),
                                "t_kill": t0, "during_load": res.mark_injected()}
        await asyncio.sleep(down_seconds)
        info["restart_s"] = round(await asyncio.to_thread(pg.restart), 2)
        info["down_s"] = round(time.monotonic() - t0, 2)
        info["t_up"] = time.monotonic()
        res.faults.append(info)

    return fault


# -- checks ----------------------------------------------------------------------------------------
def check(dsn: str, res: LoadResult, attempted: set[str], accounts: set[str], *,
          con: Any = None) -> dict[str, Any]:
    """What the database holds for ``accounts`` against what their clients were told.
    ``con``: an open connection to run on (a test may alter rows inside a transaction it
    rolls back, to see this check fail)."""
    import psycopg

    own = con is None
    con = con or psycopg.connect(dsn, autocommit=True)
    try:
        rows = con.execute(
            "SELECT s.submission_id, s.account_id, s.client_id, s.acta_id, s.payload_sha256,"
            " s.ledger_seq, l.entry_type, l.ref FROM submissions s LEFT JOIN ledger_entries l"
            " ON l.seq = s.ledger_seq").fetchall()
        orphans = con.execute(
            "SELECT l.seq, l.ref FROM ledger_entries l WHERE l.entry_type = 'submission' "
            "AND NOT EXISTS (SELECT 1 FROM submissions s WHERE s.ledger_seq = l.seq)"
        ).fetchall()
    finally:
        if own:
            con.close()
    by_key: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    by_acta: Counter[tuple[str, str]] = Counter()
    rows = [r for r in rows if r[1] in accounts]
    for r in rows:
        by_key.setdefault((r[1], r[2]), []).append(r)
        by_acta[(r[1], r[3])] += 1
    missing, mismatched = [], []
    for cid, ack in res.acks.items():
        found = by_key.get((ack.account_id, cid), [])
        if not found:
            missing.append(cid)
        elif found[0][0] != ack.submission_id or found[0][4] != ack.payload_sha256:
            mismatched.append(cid)
    acked = set(res.acks)
    stored_ids = {k[1] for k in by_key}
    return {
        "rows": len(rows),
        "acked": len(acked),
        "missing_acked": missing,
        "mismatched_acked": mismatched,
        "duplicate_keys": [k for k, v in by_key.items() if len(v) > 1],
        "duplicate_actas": [k for k, n in by_acta.items() if n > 1],
        "unexpected_rows": sorted(stored_ids - attempted),
        "stored_not_acked": sorted((stored_ids & attempted) - acked),
        "without_ledger_entry": [r[0] for r in rows if r[6] is None or r[7] != r[0]],
        "ledger_without_row": [int(s) for s, _ in orphans],
    }


def http_summary(res: LoadResult, window: tuple[float, float] | None = None
                 ) -> dict[str, Any]:
    """Answers by status; ``window``: only answers that arrived within it (monotonic
    times, e.g. from the kill of PostgreSQL until it accepted connections again)."""
    att = [a for a in res.attempts
           if window is None or window[0] <= a.t0 + a.seconds <= window[1]]
    by = Counter("error:" + a.error if a.status is None else str(a.status) for a in att)
    return {"by_status": dict(sorted(by.items())),
            "n_500": sum(1 for a in att if a.status is not None and a.status >= 500
                         and a.status != 503),
            "n_503": sum(1 for a in att if a.status == 503),
            "n_503_without_retry_after": sum(1 for a in att if a.status == 503
                                             and not a.retry_after)}


def latency(res: LoadResult) -> dict[str, float]:
    import numpy as np

    ok = np.array([a.seconds for a in res.attempts if a.status in (200, 201)]) * 1000
    e2e = np.array([a.t_ack - a.first_t0 for a in res.acks.values()]) * 1000
    if ok.size == 0:
        return {}
    return {"p50_ms": float(np.percentile(ok, 50)), "p90_ms": float(np.percentile(ok, 90)),
            "p99_ms": float(np.percentile(ok, 99)), "max_ms": float(ok.max()),
            "e2e_p50_ms": float(np.percentile(e2e, 50)),
            "e2e_p99_ms": float(np.percentile(e2e, 99)),
            "throughput_per_s": len(res.acks) / res.wall if res.wall else 0.0}


def verify_log(dsn: str) -> dict[str, Any]:
    rep = cli(dsn, "verify-log")
    return {"ok": bool(rep.get("ok")), "n_entries": rep.get("n_entries"),
            "head": rep.get("head_hash"), "problems": len(rep.get("problems", []))}


def problems(chk: dict[str, Any], http: dict[str, Any], vlog: dict[str, Any],
             res: LoadResult) -> list[str]:
    """Everything that must be empty for a run to pass."""
    out = [f"{k}: {v[:5]}" for k, v in chk.items()
           if isinstance(v, list) and v and k != "stored_not_acked"]
    if http["n_500"]:
        out.append(f"{http['n_500']} answers 5xx other than 503")
    if http["n_503_without_retry_after"]:
        out.append(f"{http['n_503_without_retry_after']} answers 503 without Retry-After")
    if not vlog["ok"]:
        out.append(f"verify-log failed: {vlog}")
    if res.abandoned:
        out.append(f"{len(res.abandoned)} submissions never acknowledged")
    if res.refused:
        out.append(f"{len(res.refused)} submissions refused: "
                   f"{list(res.refused.items())[:3]}")
    late = [f["fault"] for f in res.faults if not f.get("during_load", True)]
    if late:
        out.append(f"fault(s) {late} struck after the load had finished: not tested")
    return out


# -- one complete run ----------------------------------------------------------------------------
def read_load(server: Server, snapshot_id: str, seconds: float) -> list[dict[str, Any]]:
    """The public dashboard API in server mode (every request checks the catalogue epoch
    against PostgreSQL): Debian's ``wrk``, 200 connections, ``seconds`` per URL."""
    import re
    import shutil

    if shutil.which("wrk") is None:
        raise RuntimeError("--reads needs wrk (apt-get install wrk)")
    out = []
    for name, path in (("count state, latest", "/api/v1/s/latest/state/national"),
                       ("count state, permalink", f"/api/v1/s/{snapshot_id}/state/national")):
        for _ in range(3):  # computed once and cached, as on a warmed server
            httpx.get(server.base + path, timeout=120).raise_for_status()
        load = os.getloadavg()[0]
        r = subprocess.run(["wrk", "-t2", "-c200", f"-d{int(seconds)}s", "--latency",
                            server.base + path], capture_output=True, text=True, check=True,
                           timeout=seconds + 60)
        pct = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)$", r.stdout, re.M))
        rps = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
        out.append({"scenario": name, "load_avg_start": round(load, 2),
                    "req_per_s": float(rps.group(1)) if rps else None,
                    "p50": pct.get("50"), "p90": pct.get("90"), "p99": pct.get("99"),
                    "non_2xx": int(bad.group(1)) if bad else 0})
    return out


def run(*, n_observers: int, per_observer: int, workers: int, faults: list[str],
        log_dir: Path, down_seconds: float = 3.0, reads: float = 0.0,
        progress: Any = print) -> list[dict[str, Any]]:
    """Set everything up once; ``reads`` > 0: the read load first; then one load per
    entry of ``faults`` (none, worker, postgres), each with fresh observers (new
    accounts), checked after it."""
    pg = Postgres()
    dsn = pg.start()
    server = None
    reports: list[dict[str, Any]] = []
    try:
        t = time.monotonic()
        official = setup_store(dsn, data_dir())
        progress(f"ingested {official['frame'].height:,} actas in {time.monotonic() - t:.1f} s")
        admin = admin_token(dsn)
        server = Server(dsn, workers, log=log_dir / "serve.log")
        t = time.monotonic()
        server.start()
        progress(f"serve --workers {workers} healthy in {time.monotonic() - t:.1f} s")
        if reads > 0:
            reports.append({"reads": read_load(server, official["snapshot_id"], reads),
                            "workers": workers, "seconds": reads})
            progress(json.dumps(reports[-1], indent=1))
        all_copies = make_copies(official, n_observers * len(faults), per_observer)
        for k, fault_name in enumerate(faults):
            copies = all_copies[k * n_observers:(k + 1) * n_observers]
            t = time.monotonic()
            observers = asyncio.run(create_observers(server.base, admin, copies,
                                                     prefix=f"observer-{fault_name}"))
            progress(f"[{fault_name}] {len(observers)} observer accounts + tokens in "
                     f"{time.monotonic() - t:.1f} s")
            fault = {"none": None, "worker": worker_fault(server),
                     "postgres": postgres_fault(pg, down_seconds)}[fault_name]
            load_avg = os.getloadavg()[0]
            res = asyncio.run(run_load(server.base, observers, copies, fault=fault,
                                       hold_for=0 if fault is None else 1))
            attempted = {c.client_id for mine in copies for c in mine}
            # this run's rows only: each run has its own accounts
            mine_accounts = {o["account_id"] for o in observers}
            chk = check(dsn, res, attempted, mine_accounts)
            vlog = verify_log(dsn)
            during = None
            for f in res.faults:
                if f["fault"] == "postgres":
                    during = http_summary(res, (f["t_kill"], f["t_up"]))
            rep = {"fault": fault_name, "observers": n_observers, "per_observer": per_observer,
                   "submissions": sum(len(c) for c in copies), "workers": workers,
                   "load_avg_start": round(load_avg, 2), "wall_s": round(res.wall, 2),
                   "latency": latency(res), "http": http_summary(res), "http_after_fault":
                   during, "faults": [{k2: v for k2, v in f.items() if not k2.startswith("t_")}
                                      for f in res.faults],
                   "check": {k2: (len(v) if isinstance(v, list) else v)
                             for k2, v in chk.items()},
                   "replays": sum(1 for a in res.acks.values() if a.replay),
                   "altered": sum(1 for m in copies for c in m if c.altered),
                   "verify_log": vlog, "accounts": len(mine_accounts)}
            rep["problems"] = problems(chk, rep["http"], vlog, res)
            reports.append(rep)
            progress(json.dumps(rep, indent=1, default=str))
            if not server.healthy():
                raise RuntimeError("server not healthy after the run")
    finally:
        if server is not None:
            server.stop()
        pg.stop()
    return reports


def markdown(reports: list[dict[str, Any]], command: str) -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    runs = [r for r in reports if "reads" not in r]
    what = (f"{runs[0]['observers']} observers" if runs else "reads")
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {what}, {reports[0]['workers']} workers",
        "",
        f"Machine: {os.cpu_count()} vCPU {cpu}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load generator on the same cores.",
        f"Command: `{command}`",
        "",
    ]
    for r in reports:
        if "reads" in r:
            lines += ["| reads (wrk -t2 -c200) | load avg at start | req/s | p50 | p90 | p99 | "
                      "non-2xx |", "|---|---|---|---|---|---|---|"]
            lines += [f"| {x['scenario']} | {x['load_avg_start']} | {x['req_per_s']:,.0f} | "
                      f"{x['p50']} | {x['p90']} | {x['p99']} | {x['non_2xx']} |"
                      for x in r["reads"]]
            lines.append("")
    if not runs:
        return "\n".join(lines) + "\n"
    lines += [
        "| fault | submissions | load avg at start | wall s | throughput /s | p50 ms | "
        "p90 ms | p99 ms | max ms | end-to-end p99 ms | answers | fault detail | "
        "acked / stored / missing / duplicates / orphans | verify-log | result |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lat, c = r["latency"], r["check"]
        fd = "; ".join(", ".join(f"{k}={v}" for k, v in f.items() if k != "fault")
                       for f in r["faults"]) or "—"
        ans = ", ".join(f"{k}: {v}" for k, v in r["http"]["by_status"].items())
        lines.append(
            f"| {r['fault']} | {r['submissions']:,} | {r['load_avg_start']} | {r['wall_s']} | "
            f"{lat.get('throughput_per_s', 0):.0f} | {lat.get('p50_ms', 0):.0f} | "
            f"{lat.get('p90_ms', 0):.0f} | {lat.get('p99_ms', 0):.0f} | "
            f"{lat.get('max_ms', 0):.0f} | {lat.get('e2e_p99_ms', 0):.0f} | {ans} | {fd} | "
            f"{c['acked']} / {c['rows']} / {c['missing_acked']} / "
            f"{c['duplicate_keys'] + c['duplicate_actas']} / "
            f"{c['without_ledger_entry'] + c['ledger_without_row']} | "
            f"{'ok' if r['verify_log']['ok'] else 'FAILED'} ({r['verify_log']['n_entries']} "
            f"entries) | {'pass' if not r['problems'] else 'FAIL: ' + '; '.join(r['problems'])} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--observers", type=int, default=500)
    ap.add_argument("--copies", type=int, default=4, help="copies per observer")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--faults", nargs="*", default=["none", "worker", "postgres"],
                    choices=["none", "worker", "postgres"])
    ap.add_argument("--reads", type=float, default=0.0,
                    help="seconds of read load (wrk) per URL before the submissions")
    ap.add_argument("--down-seconds", type=float, default=3.0)
    ap.add_argument("--log-dir", type=Path, default=Path("/tmp"))
    ap.add_argument("--json", type=Path, help="also write the reports as JSON here")
    ap.add_argument("--append", action="store_true", help=f"append to {RESULTS.name}")
    args = ap.parse_args()
    args.log_dir.mkdir(parents=True, exist_ok=True)
    reports = run(n_observers=args.observers, per_observer=args.copies, workers=args.workers,
                  faults=args.faults, log_dir=args.log_dir, down_seconds=args.down_seconds,
                  reads=args.reads, progress=lambda m: print(m, file=sys.stderr, flush=True))
    command = "python benchmarks/bench_server.py " + " ".join(sys.argv[1:])
    md = markdown(reports, command)
    print(md)
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1, default=str))
    if args.append:
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write(md)
    return 0 if all(not r.get("problems") for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
