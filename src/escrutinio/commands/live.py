"""Count night: ``escrutinio watch``, ``watch-status``, ``watch-export`` and ``fake-onpe``.

Presenters only: the work is in :mod:`escrutinio.live`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

from escrutinio.commands.common import T, choice, emit_json, err, fail, open_store, opts, out
from escrutinio.errors import EscrutinioError

SCENARIOS = ("synthetic-2026", "actas-2021", "replay-2021", "fixtures")


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        return msg if msg.startswith("{") else json.dumps(
            {"level": record.levelname.lower(), "message": msg}, ensure_ascii=False)


def _setup_logging(log_file: str | None, quiet: bool) -> logging.Handler | None:
    lg = logging.getLogger("escrutinio.live")
    if quiet and not log_file:
        return None
    handler: logging.Handler = (logging.FileHandler(log_file, encoding="utf-8") if log_file
                                else logging.StreamHandler(sys.stderr))
    handler.setFormatter(_JsonLines())
    lg.addHandler(handler)
    lg.setLevel(logging.INFO)
    return handler


def _status_path(status_file: str | None) -> Path:
    """``--status-file``, else ``<db>.live-status.json`` beside a DuckDB file; for a
    PostgreSQL URL, ``escrutinio-<hash of the URL>.live-status.json`` in the working
    directory (never the URL itself, which may hold a password, as a file name)."""
    if status_file:
        return Path(status_file)
    from escrutinio.store import is_postgres_url

    if is_postgres_url(opts.db):
        digest = hashlib.sha256(str(opts.db).encode()).hexdigest()[:12]
        return Path(f"escrutinio-{digest}.live-status.json")
    return Path(f"{opts.db}.live-status.json")


def _load_cfg(config: str, base_url: str | None, site_url: str | None,
              crawl: list[str] | None = None) -> Any:
    from escrutinio.live.config import example, load_config

    p = Path(config)
    cfg = load_config(p if p.exists() or p.suffix else example(config))
    if crawl:
        cfg = cfg.with_crawl(crawl)
    if base_url:
        if not site_url:
            s = urllib.parse.urlsplit(base_url)
            site_url = f"{s.scheme}://{s.netloc}"
        cfg = cfg.with_base(base_url, site_url)
    return cfg


def _data_dir(explicit: str | None, needed: str) -> Path:
    from escrutinio.datasets import data_dir_candidates

    cands = [Path(explicit)] if explicit else list(data_dir_candidates())
    for c in cands:
        if (c / needed).is_dir():
            return c
    raise EscrutinioError(
        f"no se encuentra {needed} en {', '.join(map(str, cands))}; use --data-dir",
        f"{needed} not found in {', '.join(map(str, cands))}; use --data-dir")


def _print_status(st: dict[str, Any]) -> None:
    served = st.get("served") or {}
    state = st.get("state", "?")
    color = {"ok": "green", "stale": "yellow", "hard_blocked": "red"}.get(state, "white")
    out.print(f"[bold {color}]{T('Estado', 'State')}: {state}[/]  "
              f"({st.get('contest_id')}, {T('elección', 'election')} {st.get('election_id')})")
    if served:
        out.print(f"{T('Servido', 'Served')}: {served.get('snapshot_id', '')[:12]}  "
                  f"ONPE {served.get('as_of')}  "
                  f"{T('edad', 'age')} {served.get('age_s')} s"
                  f"{T(' (DESACTUALIZADO)', ' (STALE)') if served.get('stale') else ''}")
        out.print(f"{T('Actas contabilizadas', 'Counted actas')}: "
                  f"{served.get('actas_counted'):,} / {served.get('actas_total'):,} "
                  f"({served.get('pct_actas_counted')}%)")
        for code, v in (served.get("votes") or {}).items():
            out.print(f"  {code}: {v:,}" if isinstance(v, int) else f"  {code}: {v}")
    counts = st.get("counts") or {}
    out.print(T("Respuestas: ", "Responses: ") + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if st.get("rejections"):
        out.print(T("Rechazos: ", "Rejections: ") + ", ".join(
            f"{k} {v}" for k, v in st["rejections"].items()))
    out.print(f"{T('Correcciones', 'Corrections')}: {st.get('corrections', 0)}  "
              f"{T('Alarmas', 'Alarms')}: {st.get('alarms', 0)}  "
              f"{T('Instantáneas nuevas', 'New snapshots')}: {st.get('snapshots_created', 0)}")
    crawl = st.get("crawl")
    if crawl:
        geo = crawl.get("geography") or {}
        out.print(f"{T('Geografía', 'Geography')}: {geo.get('nodes', 0)} "
                  f"{T('áreas', 'areas')} ({geo.get('method') or '-'})")
        if crawl.get("areas"):
            by = ", ".join(f"{k} {v}" for k, v in sorted((crawl.get("by_status") or {}).items()))
            out.print(f"{T('Recorrido', 'Crawl')} {', '.join(crawl['areas'])}: "
                      f"{crawl['districts_listed']}/{crawl['districts']} "
                      f"{T('distritos listados', 'districts listed')}, "
                      f"{crawl['actas_fetched']}/{crawl['actas']} "
                      f"{T('actas leídas', 'actas fetched')} ({by}); "
                      f"{crawl['actas_due']} {T('pendientes de pedir', 'due')}"
                      + (T(" — completo", " — complete") if crawl.get("complete_at") else ""))
    if st.get("last_error"):
        e = st["last_error"]
        out.print(f"{T('Último error', 'Last error')}: {e.get('at')} {e.get('scope')} "
                  f"{e.get('outcome')} ({e.get('reason')})")
    if (st.get("status_age_s") or 0) > 120 and state != "replayed":
        ago = f"{st['status_age_s']:.0f} s"
        out.print("[red]" + T(f"El estado se escribió hace {ago} (¿sigue corriendo el watch?)",
                              f"The status was written {ago} ago (is the watch running?)")
                  + "[/]")
    if st.get("paused_until"):
        out.print(f"[red]{T('En pausa por bloqueo hasta', 'Paused by a block until')} "
                  f"{st['paused_until']}[/]")


def register(app: typer.Typer) -> None:
    @app.command("watch")
    def watch(
        config: Annotated[str, typer.Argument(
            help="configuración TOML/JSON o nombre de un ejemplo (onpe2026-runoff, "
                 "onpe2021-runoff...) / TOML/JSON configuration or an example name")],
        base_url: Annotated[str | None, typer.Option(
            help="otro host para la API (p. ej. un fake-onpe) / another API host")] = None,
        site_url: Annotated[str | None, typer.Option(
            help="sitio web para cookies y Referer / web app for cookies and Referer")] = None,
        once: Annotated[bool, typer.Option(
            help="un ciclo de cada ruta y salir / one cycle of every path, then exit")] = False,
        cycles: Annotated[int | None, typer.Option(help="máximo de ciclos / max cycles",
            min=1)] = None,
        duration: Annotated[float | None, typer.Option(
            help="segundos de vigilancia / seconds to watch", min=0.0)] = None,
        crawl: Annotated[list[str] | None, typer.Option(
            help="recorrer las actas de esta área (ubigeo, all, home, abroad; se puede "
                 "repetir) / crawl the actas of this area (repeatable)")] = None,
        replay: Annotated[str | None, typer.Option(
            help="seguir una carpeta grabada / follow a recorded folder")] = None,
        speed: Annotated[float, typer.Option(
            help="replay: 0 = lo más rápido posible, N = N veces el tiempo real", min=0.0)] = 0.0,
        status_file: Annotated[str | None, typer.Option(
            help="archivo de estado (por defecto <db>.live-status.json)")] = None,
        health_port: Annotated[int | None, typer.Option(
            help="servir GET /health en 127.0.0.1:PUERTO / serve GET /health",
                min=0, max=65535)] = None,
        log_file: Annotated[str | None, typer.Option(
            help="registro estructurado (JSON por línea) / structured log")] = None,
        quiet: Annotated[bool, typer.Option(help="sin registro en stderr")] = False,
        seed: Annotated[int | None, typer.Option(help="semilla del jitter / jitter seed",
            min=0)] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Seguir el conteo en vivo / follow the live count (never serving bad numbers)."""
        from escrutinio.live.replay import ReplayClock
        from escrutinio.live.replay import replay as do_replay
        from escrutinio.live.watcher import Watcher, serve_health

        handler = _setup_logging(log_file, quiet or (as_json and not log_file))
        health = None
        try:
            cfg = _load_cfg(config, base_url, site_url, crawl)
            with open_store() as store:
                # hold the file only while writing: status, snapshots and serve read it
                # between the watcher's short transactions (docs/live.md)
                start_lease = getattr(store, "start_lease", None)
                if start_lease is not None and not replay:
                    from escrutinio.store.duckdb_store import DEFAULT_LEASE

                    start_lease(DEFAULT_LEASE)
                if replay:
                    clock = ReplayClock()
                    w = Watcher(cfg, store, clock=clock, seed=seed,
                                status_file=_status_path(status_file))
                    rep = do_replay(replay, w, clock, speed=speed)
                    st = w.status()
                    st["replay"] = {"kind": rep.kind, "items": rep.items,
                                    "results": rep.results}
                    st = _as_of_replay(st)
                else:
                    w = Watcher(cfg, store, seed=seed,
                                status_file=_status_path(status_file))
                    if health_port is not None:
                        health = serve_health(w, health_port)
                    if once:
                        w.run(max_cycles=1)
                    else:
                        w.run(max_cycles=cycles, duration_s=duration)
                    st = w.status()
                w.transport.close()
        except EscrutinioError as exc:
            fail(exc, as_json)
            return
        finally:
            if health is not None:
                health.shutdown()
            if handler is not None:
                logging.getLogger("escrutinio.live").removeHandler(handler)
                handler.close()
        if as_json:
            emit_json(st)
        else:
            _print_status(st)

    @app.command("watch-status")
    def watch_status(
        status_file: Annotated[str | None, typer.Option(
            help="archivo de estado (por defecto <db>.live-status.json)")] = None,
        url: Annotated[str | None, typer.Option(
            help="endpoint de salud de un watch en marcha / health URL of a running watch")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Estado de la vigilancia / watch status: staleness, errors, failures by class."""
        from escrutinio.live.watcher import read_status_file

        try:
            if url:
                if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
                    raise EscrutinioError("solo se consulta un endpoint local (127.0.0.1)",
                                          "only a local endpoint (127.0.0.1) is queried")
                try:
                    with urllib.request.urlopen(url, timeout=5) as r:
                        st = json.loads(r.read())
                except urllib.error.HTTPError as exc:  # 503 = stale, still a status
                    st = json.loads(exc.read())
            else:
                path = _status_path(status_file)
                if not path.exists():
                    raise EscrutinioError(
                        f"no hay archivo de estado {path}; ¿se ejecutó 'escrutinio watch'?",
                        f"no status file {path}; has 'escrutinio watch' run?")
                st = read_status_file(path)
        except (EscrutinioError, OSError, ValueError) as exc:
            e = exc if isinstance(exc, EscrutinioError) else EscrutinioError(
                f"no se pudo leer el estado: {exc}", f"could not read the status: {exc}")
            fail(e, as_json)
            return
        if as_json:
            emit_json(st)
        else:
            _print_status(st)

    @app.command("watch-export")
    def watch_export(
        folder: Annotated[str, typer.Argument(help="carpeta de destino / target folder")],
        run: Annotated[str | None, typer.Option(help="solo esta corrida / only this run")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Exportar las respuestas crudas / export the raw responses (audit, --replay)."""
        from escrutinio.live.rawlog import RawLog

        try:
            with open_store(read_only=True) as store:
                log = RawLog(store.live_rawlog, read_only=True)
                runs = log.run_ids()
                if run is not None:
                    choice(run, runs or ["—"], "--run")
                if not runs:
                    raise EscrutinioError(
                        "este almacén no tiene respuestas de 'escrutinio watch'",
                        "this store holds no responses of 'escrutinio watch'")
                n = log.export(folder, run_id=run)
        except EscrutinioError as exc:
            fail(exc, as_json)
            return
        if as_json:
            emit_json({"folder": folder, "responses": n})
        else:
            out.print(T(f"{n} respuestas exportadas a {folder}",
                        f"{n} responses exported to {folder}"))

    @app.command("fake-onpe")
    def fake_onpe(
        scenario: Annotated[str, typer.Option(help="synthetic-2026 | replay-2021 | fixtures")
                            ] = "synthetic-2026",
        port: Annotated[int, typer.Option(help="puerto en 127.0.0.1 (0 = libre)",
            min=0, max=65535)] = 8765,
        step_seconds: Annotated[float, typer.Option(
            help="segundos reales entre estados del conteo / real seconds between states", min=0.0)
        ] = 30.0,
        states: Annotated[int, typer.Option(
            help="synthetic-2026, actas-2021: número de estados / number of states", min=1)] = 48,
        region: Annotated[list[str] | None, typer.Option(
            help="actas-2021: solo las actas de este ubigeo (se puede repetir) / only the "
                 "actas of this ubigeo (repeatable)")] = None,
        first_page: Annotated[int, typer.Option(
            help="primera página de /actas: 0 o 1 / first page of /actas: 0 or 1", min=0)] = 0,
        fault_rate: Annotated[float, typer.Option(
            help="probabilidad de una ráfaga de fallas por respuesta / fault burst rate",
                min=0.0, max=1.0)
        ] = 0.0,
        seed: Annotated[int, typer.Option(help="semilla / seed", min=0)] = 2026,
        require_browser: Annotated[bool, typer.Option(
            help="como el WAF: sin cookie ni Chrome, HTML / WAF-like")] = False,
        data_dir: Annotated[str | None, typer.Option(help="carpeta de datos / data folder")
                            ] = None,
        duration: Annotated[float | None, typer.Option(
            help="segundos y salir (por defecto hasta Ctrl-C)", min=0.0)] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Un ONPE falso en 127.0.0.1 / a fake ONPE on 127.0.0.1 to rehearse count night."""
        from escrutinio.live import fake_onpe as fk

        try:
            choice(scenario, SCENARIOS, "--scenario")
            if region and scenario != "actas-2021":
                raise EscrutinioError("--region: solo con --scenario actas-2021",
                                      "--region: only with --scenario actas-2021")
            timeline: Any
            if first_page not in (0, 1):
                raise EscrutinioError("--first-page debe ser 0 o 1",
                                      "--first-page must be 0 or 1")
            if scenario in ("synthetic-2026", "actas-2021"):
                big = states >= 8
                universe = None
                if scenario == "actas-2021":
                    root = _data_dir(data_dir, "peru-2021-runoff") / "peru-2021-runoff"
                    universe = fk.ActaUniverse.from_2021(root, tuple(region or ()))
                    if not len(universe):
                        raise EscrutinioError(
                            f"ninguna acta en {', '.join(region or [])}",
                            f"no acta in {', '.join(region or [])}")
                timeline = fk.Synthetic2026(seed=seed, n_states=states, step_s=step_seconds,
                                            corrections=(states // 2,) if big else (),
                                            freezes=(states // 3,) if big else (),
                                            universe=universe, first_page=first_page)
                example = "onpe2026-runoff"
                base = "/presentacion-backend"
            elif scenario == "replay-2021":
                root = _data_dir(data_dir, "peru-2021-runoff") / "peru-2021-runoff"
                timeline = fk.Replay2021(root, step_s=step_seconds)
                example, base = "onpe2021-runoff", ""
            else:
                root = _data_dir(data_dir, "onpe-api-fixtures") / "onpe-api-fixtures"
                timeline = fk.Fixtures(root, step_s=step_seconds)
                example, base = "onpe2021-first-round", ""
            server = fk.FakeOnpe(timeline, port=port, require_browser=require_browser)
            if fault_rate > 0:
                server.random_faults(fault_rate, seed=seed)
            server.start()
        except (EscrutinioError, OSError) as exc:
            e = exc if isinstance(exc, EscrutinioError) else EscrutinioError(
                f"no se pudo iniciar: {exc}", f"could not start: {exc}")
            fail(e, as_json)
            return
        info: dict[str, Any] = {
            "url": server.url, "base_url": server.url + base, "scenario": scenario,
            "states": timeline.n_states,
            "watch": f"escrutinio watch {example} --base-url {server.url + base}"}
        if isinstance(timeline, fk.Synthetic2026):
            info["actas"] = len(timeline.mesa)
            info["districts"] = len(timeline.district_codes())
            areas = " ".join(f"--crawl {a}" for a in (region or ["all"]))
            info["watch_crawl"] = f"{info['watch']} {areas}"
        if as_json:
            emit_json(info)
            sys.stdout.flush()
        else:
            out.print(f"fake ONPE: {server.url}  ({scenario}, {timeline.n_states} "
                      f"{T('estados', 'states')})")
            out.print(T("Para seguirlo: ", "To follow it: ") + info["watch"])
            if "watch_crawl" in info:
                out.print(T(f"Con las {info['actas']:,} actas ({info['districts']} distritos): ",
                            f"With its {info['actas']:,} actas ({info['districts']} districts): ")
                          + info["watch_crawl"])
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        try:
            stop.wait(duration)
        finally:
            server.stop()
            if not as_json:
                err.print(T(f"{server.requests} peticiones atendidas",
                            f"{server.requests} requests served"))


def _as_of_replay(st: dict[str, Any]) -> dict[str, Any]:
    """A replayed state is not 'live': report it without the staleness verdict."""
    st = dict(st)
    if st.get("state") in ("ok", "stale"):
        st["state"] = "replayed"
    return st

