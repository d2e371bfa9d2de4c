"""One versioned set of schema migrations for both databases (docs/store.md).

Files ``store/migrations/NNNN_name.sql``, numbered from ``0001`` without gaps, written in
the SQL DuckDB and PostgreSQL both accept. Where the dialects differ a version ships two
variants instead, ``NNNN_name.duckdb.sql`` and ``NNNN_name.postgres.sql`` (same number,
same name, never a common file beside them). Each backend applies, in order, the files it
has not recorded in ``schema_migrations(version, name, sha256, applied_at)``: each file
and its record in one transaction. A recorded migration whose file has since changed
stops the store from opening: migrations are append-only.

A DuckDB store created before this runner existed (by ``store/schema.sql``, with a
``schema_version`` table and no ``schema_migrations``) is detected and baselined: its
tables are those of ``0001``, which is written with ``IF NOT EXISTS`` on DuckDB, so
``0001`` is recorded without changing anything and the later migrations apply as usual.

:class:`MigrationRepository` is the interface; :class:`DuckDBMigrations` and
:class:`PostgresMigrations` run it on a raw connection of each backend.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Final, Literal

from escrutinio.errors import EscrutinioError

Backend = Literal["duckdb", "postgres"]
BACKENDS: Final[tuple[Backend, ...]] = ("duckdb", "postgres")
#: advisory lock key serialising PostgreSQL migrators (several workers starting at once)
MIGRATION_LOCK: Final = 7_301_946_001
#: the table a store created by the old ``store/schema.sql`` (DuckDB) has instead
LEGACY_TABLE: Final = "schema_version"

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(duckdb|postgres))?\.sql$")
_CREATE_TABLE = ("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                 "name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")


class MigrationError(EscrutinioError):
    """The shipped migrations are inconsistent, or an applied one was edited."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str
    file: str  # the file it comes from (a common file or the backend's variant)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    version: int
    name: str
    sha256: str
    applied_at: datetime


def migrations_folder() -> Traversable:
    """Where the migration files are (inside the installed package)."""
    return resources.files("escrutinio.store").joinpath("migrations")


def migration_sql(name: str) -> str:
    """The text of one migration file (``NNNN_name.sql``), for a repository that also
    creates its tables when a writer finds them missing (idempotent DDL)."""
    return migrations_folder().joinpath(name).read_text("utf-8")


def migrations(backend: Backend) -> list[Migration]:
    """The migrations shipped with escrutinio for ``backend``, in version order."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}")
    folder = migrations_folder()
    files: dict[int, dict[str | None, tuple[str, str]]] = {}
    clashes: list[str] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        m = _FILE.match(entry.name)
        if m:
            kinds = files.setdefault(int(m.group(1)), {})
            if m.group(3) in kinds:  # two branches took the same number
                clashes += [kinds[m.group(3)][1], entry.name]
            kinds[m.group(3)] = (m.group(2), entry.name)
    if clashes:
        raise MigrationError(
            f"dos migraciones con el mismo número: {clashes}; renumere la más nueva",
            f"two migrations with the same number: {clashes}; renumber the newer one")
    versions = sorted(files)
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(
            f"las migraciones deben numerarse 0001, 0002, ... sin huecos; hay {versions}",
            f"migrations must be numbered 0001, 0002, ... without gaps; found {versions}")
    out: list[Migration] = []
    for v in versions:
        kinds = files[v]
        names = {name for name, _ in kinds.values()}
        variants = set(kinds) - {None}
        if len(names) != 1 or (None in kinds and variants) or (variants and
                                                               variants != set(BACKENDS)):
            listing = sorted(f for _, f in kinds.values())
            raise MigrationError(
                f"la migración {v:04d} debe ser un archivo común o una variante por motor "
                f"(.duckdb.sql y .postgres.sql) con el mismo nombre; hay {listing}",
                f"migration {v:04d} must be one common file or one variant per backend "
                f"(.duckdb.sql and .postgres.sql) with the same name; found {listing}")
        name, fname = kinds.get(None) or kinds[backend]
        out.append(Migration(v, name, folder.joinpath(fname).read_text("utf-8"), fname))
    return out


class MigrationRepository(ABC):
    """The schema's version record on one database connection."""

    backend: Backend
    #: after :meth:`migrate`: the database was a store from before versioned migrations
    baselined: bool = False

    # -- what each backend provides -------------------------------------------------------
    @abstractmethod
    def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _script(self, sql: str) -> None:
        """Run a migration file (several statements)."""

    @abstractmethod
    def _transaction(self) -> Any:
        """A context manager: one transaction."""

    @abstractmethod
    def has_table(self, name: str) -> bool: ...

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Held while migrating (PostgreSQL: a lock between processes)."""
        yield

    # -- the interface -------------------------------------------------------------------
    def applied(self) -> list[AppliedMigration]:
        """The migrations recorded in this database, in version order (none when the
        database has no ``schema_migrations`` yet)."""
        if not self.has_table("schema_migrations"):
            return []
        return self._recorded()

    def _recorded(self) -> list[AppliedMigration]:
        return [AppliedMigration(int(r[0]), str(r[1]), str(r[2]),
                                 r[3].astimezone(UTC) if r[3].tzinfo else
                                 r[3].replace(tzinfo=UTC))
                for r in self._rows("SELECT version, name, sha256, applied_at FROM "
                                    "schema_migrations ORDER BY version")]

    def versions(self) -> list[int]:
        return [a.version for a in self.applied()]

    def is_legacy(self) -> bool:
        """A store from before versioned migrations (DuckDB ``schema.sql``)."""
        return self.has_table(LEGACY_TABLE) and not self.has_table("schema_migrations")

    def pending(self, applied: list[AppliedMigration] | None = None) -> list[Migration]:
        """The shipped migrations not recorded yet, in order (``applied``: the record,
        when the caller has read it already)."""
        done = {a.version: a.sha256 for a in (self.applied() if applied is None else applied)}
        out = []
        for mig in migrations(self.backend):
            if mig.version in done:
                if done[mig.version] != mig.sha256:
                    raise MigrationError(
                        f"la migración {mig.file} cambió después de aplicarse; agregue una "
                        "migración nueva en lugar de editar una aplicada",
                        f"migration {mig.file} was changed after it was applied; add a new "
                        "migration instead of editing an applied one")
                continue
            out.append(mig)
        return out

    def migrate(self) -> list[int]:
        """Apply the pending migrations in order, each with its record in one transaction;
        return their versions. Idempotent. Sets :attr:`baselined` when the database was a
        store from before versioned migrations."""
        applied_now: list[int] = []
        with self._exclusive():
            # checked first: CREATE ... IF NOT EXISTS needs the right to create tables even
            # when the table exists, and a server's least-privileged role has no such right
            if self.has_table("schema_migrations"):
                self.baselined = False
                recorded = self._recorded()
            else:
                self.baselined = self.has_table(LEGACY_TABLE)
                self._rows(_CREATE_TABLE)
                recorded = []
            for mig in self.pending(recorded):
                with self._transaction():
                    self._script(mig.sql)  # a trusted file shipped with us
                    self._rows("INSERT INTO schema_migrations VALUES (?, ?, ?, ?)",
                               [mig.version, mig.name, mig.sha256, datetime.now(UTC)])
                applied_now.append(mig.version)
        return applied_now


class DuckDBMigrations(MigrationRepository):
    """On a raw ``duckdb`` connection (the store's root connection, while it opens)."""

    backend: Backend = "duckdb"

    def __init__(self, con: Any) -> None:
        self.con = con

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self.con.execute(sql, params) if params else self.con.execute(sql)
        return list(cur.fetchall()) if cur.description else []

    def _script(self, sql: str) -> None:
        self.con.execute(sql)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def has_table(self, name: str) -> bool:
        # duckdb_tables(): the catalogue without information_schema's views (2x faster)
        return bool(self._rows("SELECT 1 FROM duckdb_tables() WHERE table_name = ? AND "
                               "schema_name = current_schema()", [name]))


class PostgresMigrations(MigrationRepository):
    """On an autocommit ``psycopg`` connection; a session advisory lock serialises
    processes that migrate at the same time."""

    backend: Backend = "postgres"

    def __init__(self, con: Any) -> None:
        self.con = con

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self.con.execute(sql.replace("?", "%s"), params or [])
        return list(cur.fetchall()) if cur.description else []

    def _script(self, sql: str) -> None:
        self.con.execute(sql)

    def _transaction(self) -> Any:
        return self.con.transaction()

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        self.con.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
        try:
            yield
        finally:
            self.con.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])

    def has_table(self, name: str) -> bool:
        row = self.con.execute("SELECT to_regclass(%s)", [name]).fetchone()
        return row is not None and row[0] is not None
