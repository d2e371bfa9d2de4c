"""``escrutinio serve`` (the dashboard and HTTP API), ``escrutinio export-site`` (a static
copy any web server or CDN can serve) and ``escrutinio migrate`` (the PostgreSQL schema of a
server). Register with ``COMMAND_MODULES = (..., "web")``.

``--db`` is a DuckDB file or a ``postgresql://`` URL. On PostgreSQL, ``serve --workers N``
runs N stateless worker processes under uvicorn's supervisor (a worker that dies is
replaced); each connects lazily and answers 503 while the database is down
(:mod:`escrutinio.api.resilience`, docs/deploy.md).

Presenters only: the pages and the API are in :mod:`escrutinio.api`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from escrutinio.commands.common import T, choice, emit_json, err, fail, open_store, opts, out
from escrutinio.errors import EscrutinioError
from escrutinio.store import is_postgres_url

if TYPE_CHECKING:
    from fastapi import FastAPI

ENV_PREFIX = "ESCRUTINIO_WEB_"


def _ingest_bundles(names: list[str]) -> None:
    """Ingest named data bundles into ``--db`` (existing snapshots are no-ops)."""
    from escrutinio import service
    from escrutinio.sources.bundles import BUNDLES, bundle_paths
    from escrutinio.store import open_store

    parsed = []
    for name in names:
        if name not in BUNDLES:
            raise EscrutinioError(f"paquete de datos desconocido {name!r}; conocidos: "
                                  f"{', '.join(BUNDLES)}",
                                  f"unknown data bundle {name!r}; known: {', '.join(BUNDLES)}")
        for item, path in bundle_paths(name):
            parsed.extend(item.parse(path))
    with open_store(opts.db) as store:
        outcomes = service.ingest(store, parsed)
    new = sum(o.created for o in outcomes)
    where = _redacted(opts.db)
    err.print(T(f"{len(outcomes)} instantáneas ({new} nuevas) en {where}",
                f"{len(outcomes)} snapshots ({new} new) in {where}"))


def _db_ref() -> str:
    """``--db`` as the workers receive it: a URL as given, a file as an absolute path."""
    return opts.db if is_postgres_url(opts.db) else str(Path(opts.db).resolve())


def _redacted(db: str) -> str:
    """A URL without its password (for messages and --json)."""
    if not is_postgres_url(db):
        return db
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(db)
    if parts.password is None:
        return db
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def following_app(db: str, *, store: object | None = None, baseline: str = "auto",
                  projection_sims: int = 10_000, warm: bool = True) -> FastAPI:
    """The app over a DuckDB file that another process (``watch``, ``ingest``) or thread
    (``serve --watch``) may be writing: the file is held only while it is read (released
    after :data:`escrutinio.api.following.LEASE_S` idle seconds) and the catalogue
    follows new snapshots (:mod:`escrutinio.api.following`, docs/live.md)."""
    from escrutinio.api import following
    from escrutinio.api.app import create_app
    from escrutinio.api.backend import Backend
    from escrutinio.store.duckdb_store import DuckDBStore

    if store is None:
        if not Path(db).exists():
            raise EscrutinioError(
                f"no existe el almacén {db}; ejecute 'escrutinio ingest' primero",
                f"store {db} does not exist; run 'escrutinio ingest' first")
        store = DuckDBStore(db, read_only=True, lease=following.LEASE_S)
    cat = following.FollowingCatalog(store)  # type: ignore[arg-type]
    backend = Backend(cat, baseline=baseline, projection_sims=projection_sims)
    app = create_app(store=cat, backend=backend, warm=warm)
    following.install(app, backend)
    return app


def app_from_env() -> FastAPI:
    """Uvicorn factory for ``--workers N``: every worker builds the app from the
    environment that ``serve`` set."""
    from escrutinio.api.app import create_app

    env = os.environ
    at = env.get(ENV_PREFIX + "REPLAY_AT")
    if (not is_postgres_url(env[ENV_PREFIX + "DB"]) and env.get(ENV_PREFIX + "REPLAY") != "1"
            and env.get(ENV_PREFIX + "WRITABLE") != "1"):
        return following_app(env[ENV_PREFIX + "DB"],
                             baseline=env.get(ENV_PREFIX + "BASELINE", "auto"),
                             projection_sims=int(env.get(ENV_PREFIX + "SIMS", "10000")),
                             warm=env.get(ENV_PREFIX + "WARM", "1") == "1")
    return create_app(
        env[ENV_PREFIX + "DB"], replay=env.get(ENV_PREFIX + "REPLAY") == "1",
        step_seconds=float(env.get(ENV_PREFIX + "STEP", "5")),
        replay_at=int(at) if at else None, loop=env.get(ENV_PREFIX + "LOOP", "1") == "1",
        replay_contest=env.get(ENV_PREFIX + "CONTEST") or None,
        baseline=env.get(ENV_PREFIX + "BASELINE", "auto"),
        projection_sims=int(env.get(ENV_PREFIX + "SIMS", "10000")),
        warm=env.get(ENV_PREFIX + "WARM", "1") == "1",
        writable=env.get(ENV_PREFIX + "WRITABLE") == "1")


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="dirección / address")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="puerto / port", min=0, max=65535)] = 8000,
        replay: Annotated[bool, typer.Option(
            "--replay", help="repetir el conteo instantánea por instantánea / replay the "
                             "count snapshot by snapshot")] = False,
        step: Annotated[float, typer.Option(
            help="segundos por paso de la repetición / seconds per replay step", min=0.0)] = 5.0,
        replay_at: Annotated[int | None, typer.Option(
            help="fijar la repetición en el paso N (0 = primero) / pin the replay at step N",
                min=0)]
        = None,
        loop: Annotated[bool, typer.Option(
            "--loop/--no-loop", help="volver a empezar al final / start again at the end")]
        = True,
        contest: Annotated[str | None, typer.Option(help="contest id (replay)")] = None,
        bundle: Annotated[list[str] | None, typer.Option(
            "--bundle", help="ingerir antes un paquete de datos (peru-2021-runoff...) / "
                             "ingest a data bundle first")] = None,
        baseline: Annotated[str, typer.Option(
            help="auto (primera vuelta del mismo año) | none")] = "auto",
        sims: Annotated[int, typer.Option(help="simulaciones de la proyección / projection "
                                          "simulations", min=1, max=10_000_000)] = 10_000,
        workers: Annotated[int, typer.Option(
            help="procesos; un proceso que muere se reemplaza / worker processes; one that "
                 "dies is replaced", min=1, max=64)] = 1,
        warm: Annotated[bool, typer.Option(
            "--warm/--no-warm", help="calcular por adelantado la portada / precompute the "
                                     "home page")] = True,
        observers: Annotated[bool | None, typer.Option(
            "--observers/--no-observers",
            help="API de observadores: en PostgreSQL activa salvo --no-observers (nodo "
                 "solo público); en DuckDB solo con --observers (abre el archivo en "
                 "escritura, un proceso) / observer API: on with PostgreSQL unless "
                 "--no-observers (a public-only node); on a DuckDB file only with "
                 "--observers (opens it read-write, one process)")] = None,
        watch: Annotated[str | None, typer.Option(
            "--watch", help="seguir el conteo con esta configuración (como 'escrutinio "
                            "watch') y servirlo desde el mismo proceso / follow the count "
                            "with this configuration (as 'escrutinio watch') and serve it "
                            "from the same process")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the address as JSON")]
        = False,
    ) -> None:
        """Servir el tablero y la API / serve the dashboard and the API."""
        import uvicorn

        watcher = None
        try:
            choice(baseline, ("auto", "none"), "--baseline")
            if bundle:
                from escrutinio.sources.bundles import BUNDLES

                for name in bundle:
                    choice(name, list(BUNDLES), "--bundle")
            elif contest is not None and watch is None:
                with open_store(read_only=True) as store:
                    store.contest(contest)  # an unknown contest: exit 2, the known ones
            if watch is not None:
                if is_postgres_url(opts.db) or replay or workers > 1 or observers:
                    raise EscrutinioError(
                        "--watch sigue el conteo en un archivo DuckDB, en un solo proceso, "
                        "sin --replay ni --observers",
                        "--watch follows the count into a DuckDB file, in one process, "
                        "without --replay or --observers")
                # the observer API keeps a connection of its own: not with a store that
                # is released between uses
                os.environ["ESCRUTINIO_OBSERVERS"] = "0"
                watcher = _start_watcher(watch)
            if bundle:
                _ingest_bundles(bundle)
            if baseline not in ("auto", "none"):
                raise EscrutinioError("--baseline: auto o none", "--baseline: auto or none")
            env = {"DB": _db_ref(), "REPLAY": "1" if replay else "0",
                   "STEP": str(step), "REPLAY_AT": "" if replay_at is None else str(replay_at),
                   "LOOP": "1" if loop else "0", "CONTEST": contest or "",
                   "BASELINE": baseline, "SIMS": str(sims), "WARM": "1" if warm else "0",
                   "WRITABLE": "1" if observers else "0"}
            for k, v in env.items():
                os.environ[ENV_PREFIX + k] = v
            if observers is not None:  # read by every worker's observer API
                os.environ["ESCRUTINIO_OBSERVERS"] = "1" if observers else "0"
            if workers < 1:
                raise EscrutinioError("--workers: al menos 1", "--workers: at least 1")
            if observers and workers > 1 and not is_postgres_url(opts.db):
                raise EscrutinioError(
                    "--observers con DuckDB: un solo proceso (un archivo DuckDB tiene un solo "
                    "escritor); use PostgreSQL para varios procesos",
                    "--observers with DuckDB: one process (a DuckDB file has one writer); "
                    "use PostgreSQL for several workers")
            application: FastAPI | None
            if watcher is not None:
                application = following_app(
                    opts.db, store=watcher[1], baseline=baseline, projection_sims=sims,
                    warm=warm)
            else:
                application = None if workers > 1 else app_from_env()
            if application is not None and warm:
                _warm_home(application)
            backend = getattr(getattr(application, "state", None), "backend", None)
            if backend is not None and backend.clock is not None:
                import time

                backend.clock.started = time.monotonic()  # the replay starts when we listen
        except (EscrutinioError, ValueError) as exc:
            if watcher is not None:
                _stop_watcher(watcher)
            fail(exc if isinstance(exc, EscrutinioError) else EscrutinioError(str(exc),
                                                                              str(exc)), as_json)
            return
        url = f"http://{host}:{port}/"
        if as_json:
            emit_json({"url": url, "db": _redacted(opts.db), "replay": replay,
                       "workers": workers})
        else:
            out.print(T(f"escrutinio en {url} (API: {url}api/) — Ctrl+C para salir",
                        f"escrutinio at {url} (API: {url}api/) — Ctrl+C to stop"))
        # the server's own log level (info: worker restarts are logged), from the environment
        level = os.environ.get("ESCRUTINIO_UVICORN_LOG_LEVEL", "warning")
        if watcher is not None:
            import signal

            # uvicorn re-raises the signal that stopped it once it has shut down: with
            # the default handler the process would die before the watcher stops
            # cleanly, so the handlers it restores do nothing and the watcher stops here
            quiet = {sig: signal.signal(sig, lambda *_: None)
                     for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                uvicorn.run(application, host=host, port=port,  # type: ignore[arg-type]
                            log_level=level, access_log=False)
            finally:
                _stop_watcher(watcher)
                for sig, handler in quiet.items():
                    signal.signal(sig, handler)
        elif application is not None:
            uvicorn.run(application, host=host, port=port, log_level=level,
                        access_log=False)
        else:
            uvicorn.run("escrutinio.commands.web:app_from_env", factory=True, host=host,
                        port=port, workers=workers, log_level=level, access_log=False)

    @app.command()
    def migrate(
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Aplicar las migraciones del esquema y listarlas / apply the schema migrations
        and list them (PostgreSQL: run it as the owner role before starting the servers;
        a DuckDB file also migrates by itself when opened for writing)."""
        try:
            report = _migrate(opts.db)
        except EscrutinioError as exc:
            fail(exc, as_json)
            return
        if as_json:
            emit_json(report)
            return
        applied = cast("list[int]", report["applied"])
        out.print(T(f"esquema en la versión {report['schema_version']}; aplicadas ahora: "
                    f"{', '.join(map(str, applied)) or 'ninguna'}",
                    f"schema at version {report['schema_version']}; applied now: "
                    f"{', '.join(map(str, applied)) or 'none'}"))

    @app.command("export-site")
    def export_site(
        directory: Annotated[Path, typer.Argument(help="carpeta de salida / output folder")],
        snapshots: Annotated[str, typer.Option(
            help="all | latest | actas (qué instantáneas exportar / which snapshots)")] =
        "all",
        lang: Annotated[str, typer.Option(help="es,en")] = "es,en",
        sims: Annotated[int, typer.Option(help="simulaciones de la proyección / projection "
                                          "simulations", min=1, max=10_000_000)] = 10_000,
        baseline: Annotated[str, typer.Option(help="auto | none")] = "auto",
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Copia estática del tablero: cada página y su gemelo JSON / static copy of the
        dashboard: every page and its JSON twin."""
        from escrutinio.api.export import export_site as run_export

        try:
            choice(baseline, ("auto", "none"), "--baseline")
            langs = tuple(x.strip() for x in lang.split(",") if x.strip())
            if not langs or any(x not in ("es", "en") for x in langs):
                raise EscrutinioError("--lang: es, en o es,en", "--lang: es, en or es,en")
            if snapshots not in ("all", "latest", "actas"):
                raise EscrutinioError("--snapshots: all, latest o actas",
                                      "--snapshots: all, latest or actas")
            if not is_postgres_url(opts.db) and not Path(opts.db).exists():
                raise EscrutinioError(
                    f"no existe el almacén {opts.db}; ejecute 'escrutinio ingest' primero",
                    f"store {opts.db} does not exist; run 'escrutinio ingest' first")
            report = run_export(opts.db, directory, snapshots=snapshots, langs=langs,
                                projection_sims=sims, baseline=baseline,
                                progress=None if as_json else err)
        except EscrutinioError as exc:
            fail(exc, as_json)
            return
        if as_json:
            emit_json(report)
            return
        out.print(T(f"{report['n_files']:,} archivos ({report['bytes']:,} bytes) en "
                    f"{directory}; {len(report['skipped'])} páginas omitidas",
                    f"{report['n_files']:,} files ({report['bytes']:,} bytes) in {directory}; "
                    f"{len(report['skipped'])} pages skipped"))
        for s in report["skipped"][:20]:
            out.print(f"  {s['url']}: {s['status']} {T(s['message_es'], s['message_en'])}")


def _start_watcher(config: str) -> tuple[object, object, object]:
    """``serve --watch``: the watcher of ``config`` in a background thread, writing to
    ``--db`` through a leased store (released when idle, so that ``status`` and the rest
    read it from other processes) that the app shares. Returns (watcher, store, thread)."""
    import threading

    from escrutinio.api.following import LEASE_S
    from escrutinio.commands.live import _load_cfg, _status_path
    from escrutinio.live.watcher import Watcher
    from escrutinio.store.duckdb_store import DuckDBStore

    cfg = _load_cfg(config, None, None)
    store = DuckDBStore(opts.db, lease=LEASE_S)
    try:
        w = Watcher(cfg, store, status_file=_status_path(None))
    except BaseException:
        store.close()
        raise
    thread = threading.Thread(target=w.run, kwargs={"install_signals": False},
                              name="escrutinio-watch", daemon=True)
    thread.start()
    return w, store, thread


def _stop_watcher(watcher: tuple[object, object, object]) -> None:
    """Stop the watcher cleanly (what it accepted is stored), then close the store."""
    w, store, thread = watcher
    w.request_stop()  # type: ignore[attr-defined]
    thread.join(timeout=60)  # type: ignore[attr-defined]
    w.transport.close()  # type: ignore[attr-defined]
    store.close()  # type: ignore[attr-defined]


def _migrate(url: str) -> dict[str, object]:
    """Apply the pending migrations (they create every table, the ledger's included, so
    that the roles the servers run as need no right to create tables); report the schema.
    A DuckDB file migrates whenever it is opened for writing: this opens it and reports."""
    if not is_postgres_url(url):
        from escrutinio.store.duckdb_store import DuckDBStore

        store = DuckDBStore(url)
        try:
            applied, rows = store.migrated_now, store.migrations.applied()
        finally:
            store.close()
        where = url
    else:
        import psycopg

        from escrutinio.store.postgres_store import migrate_database

        try:
            applied, rows = migrate_database(url, connect_timeout=10)
        except psycopg.Error as exc:
            raise EscrutinioError(f"no se pudo migrar {_redacted(url)}: {exc}",
                                  f"could not migrate {_redacted(url)}: {exc}") from exc
        where = _redacted(url)
    return {"db": where, "applied": applied,
            "schema_version": max((r.version for r in rows), default=0),
            "migrations": [{"version": r.version, "name": r.name, "sha256": r.sha256,
                            "applied_at": r.applied_at} for r in rows]}


def _warm_home(application: object) -> None:
    """Compute the home page before the first visitor (and, in a replay, the timeline)."""
    import warnings

    with warnings.catch_warnings():  # starlette's note about httpx vs httpx2
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    with TestClient(application) as client:  # type: ignore[arg-type]
        client.get("/")
