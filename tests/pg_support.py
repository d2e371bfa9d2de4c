"""PostgreSQL for the tests: an existing server, or a throwaway one started here.

Order of preference:

1. ``$ESCRUTINIO_TEST_PG`` — a DSN (``postgresql://user@host:port/db``) of a server the
   tests may write to. Each test gets its own schema, dropped afterwards.
2. ``initdb``/``pg_ctl`` in ``$ESCRUTINIO_PG_BINDIR``, on ``PATH`` or under
   ``/usr/lib/postgresql/*/bin``: a server is
   created in a temporary folder, listening on 127.0.0.1 only (no Unix socket), on a free
   port, with durability off (a test server), and stopped at the end of the session.
   PostgreSQL refuses to run as root: when the tests run as root, the server runs as the
   ``postgres`` system user (override with ``$ESCRUTINIO_PG_OS_USER``) through
   ``runuser``/``su``.
3. Neither: the PostgreSQL tests fail with a clear message when ``$CI`` is set (never a
   silent skip in CI) and are skipped on a developer machine.

``scripts/ci-postgres.sh`` does the same as (2) from the shell for CI.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

ENV_DSN = "ESCRUTINIO_TEST_PG"


def find_pg_bin() -> Path | None:
    """Folder holding initdb and pg_ctl, or None. ``$ESCRUTINIO_PG_BINDIR`` overrides the
    search (e.g. a Homebrew or EDB install)."""
    forced = os.environ.get("ESCRUTINIO_PG_BINDIR")
    if forced is not None:
        ok = (Path(forced) / "initdb").exists() and (Path(forced) / "pg_ctl").exists()
        return Path(forced) if ok else None
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0)
    for folder in reversed(candidates):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempPostgres:
    """A throwaway PostgreSQL cluster on loopback. ``start()`` returns its DSN."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="escrutinio-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self.os_user: str | None = None
        if os.geteuid() == 0:
            self.os_user = os.environ.get("ESCRUTINIO_PG_OS_USER", "postgres")
            pw = pwd.getpwnam(self.os_user)  # KeyError: no such user (reported by caller)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            os.chmod(self.root, 0o700)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.os_user is not None:
            cmd = (["runuser", "-u", self.os_user, "--", *cmd] if shutil.which("runuser")
                   else ["su", self.os_user, "-s", "/bin/sh", "-c",
                         " ".join(_shell_quote(c) for c in cmd)])
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)

    def start(self) -> str:
        r = self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "-E", "UTF8", "--no-sync", "--locale=C")
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {r.stderr.strip() or r.stdout.strip()}")
        for _attempt in range(5):
            self.port = free_port()
            conf = (f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                    "unix_socket_directories = ''\nfsync = off\nsynchronous_commit = off\n"
                    "full_page_writes = off\nmax_connections = 200\n")
            with open(self.data / "postgresql.auto.conf", "a", encoding="utf-8") as fh:
                fh.write(conf)
            r = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                          "-t", "60", "start")
            if r.returncode == 0:
                break
        else:
            log = self.log.read_text("utf-8", "replace") if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {r.stderr.strip()}\n{log[-2000:]}")
        dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(dsn, connect_timeout=2).close()
                return dsn
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        try:
            if self.data.exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _shell_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


def with_search_path(dsn: str, schema: str) -> str:
    """The DSN with ``options=-c search_path=<schema>`` added (libpq URI syntax)."""
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options=-csearch_path%3D{schema}"


class PgSchemas:
    """Hands out fresh, empty schemas on one server: one per test, dropped afterwards."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def create(self) -> tuple[str, str]:
        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.dsn, autocommit=True) as con:
            con.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        return name, with_search_path(self.dsn, name)

    def drop(self, name: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as con:
            con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@contextmanager
def schema_url(server: PgServer) -> Iterator[str]:
    """The URL of a fresh schema on ``server`` (the ``pg_server`` fixture), dropped
    afterwards. No server: the test fails in CI (``$CI``) and is skipped elsewhere."""
    dsn = server.ensure()
    if dsn is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI requires PostgreSQL: {server.reason}", pytrace=False)
        pytest.skip(server.reason)
    schemas = PgSchemas(dsn)
    name, url = schemas.create()
    try:
        yield url
    finally:
        schemas.drop(name)


def pg_unavailable_reason() -> str:
    return ("PostgreSQL is not available for the tests: set ESCRUTINIO_TEST_PG to a DSN, or "
            "install the server binaries (Debian/Ubuntu: apt-get install postgresql; macOS: "
            "brew install postgresql) so that initdb and pg_ctl are on PATH or under "
            "/usr/lib/postgresql/*/bin")


# -- pytest plumbing (the fixtures themselves are declared in conftest.py) -----------------
class PgServer:
    """The session's PostgreSQL: a DSN, or the reason there is none."""

    def __init__(self) -> None:
        self.dsn: str | None = os.environ.get(ENV_DSN) or None
        self.reason = ""
        self._temp: TempPostgres | None = None
        self._started = False

    def ensure(self) -> str | None:
        if self.dsn or self._started:
            return self.dsn
        self._started = True
        bindir = find_pg_bin()
        if bindir is None:
            self.reason = pg_unavailable_reason()
            return None
        try:
            self._temp = TempPostgres(bindir)
            self.dsn = self._temp.start()
        except (RuntimeError, KeyError, OSError, subprocess.SubprocessError,
                psycopg.Error) as exc:
            self.reason = f"could not start a throwaway PostgreSQL from {bindir}: {exc}"
            if self._temp is not None:
                self._temp.stop()
                self._temp = None
        return self.dsn

    def stop(self) -> None:
        if self._temp is not None:
            self._temp.stop()
            self._temp = None


def scrub(value: object, volatile: frozenset[str]) -> object:
    """A JSON answer without the keys that legitimately differ between two stores (ids,
    paths, times): what the DuckDB/PostgreSQL comparisons compare."""
    if isinstance(value, dict):
        return {k: scrub(v, volatile) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [scrub(v, volatile) for v in value]
    return value
