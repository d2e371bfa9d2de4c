"""``escrutinio accounts add|token|revoke|disable|list``: observer accounts and their tokens,
in the store named by ``--db`` (a PostgreSQL URL, or a DuckDB file not open elsewhere).
Register with ``COMMAND_MODULES = (..., "accounts")``.

Presenters only: the work is in :class:`escrutinio.server.repo.Repo` (docs/observers.md).
A token is printed once, when issued: only its SHA-256 is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from escrutinio.commands.common import T, choice, emit_json, err, fail, open_store, out
from escrutinio.errors import EscrutinioError
from escrutinio.server.auth import Scope
from escrutinio.server.repo import Repo
from escrutinio.sources.sanitize import load_json

accounts_app = typer.Typer(no_args_is_help=True, help="Cuentas de observadores y sus fichas "
                           "/ observer accounts and their tokens (docs/observers.md)")
JsonOpt = Annotated[bool, typer.Option("--json")]


@contextmanager
def _repo() -> Iterator[Repo]:
    with open_store(read_only=False) as store:
        repo = Repo(store)
        try:
            yield repo
        finally:
            repo.close()


@accounts_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="nombre de la cuenta / account name")],
    role: Annotated[str, typer.Option(help="observer | coordinator | admin")] = "observer",
    acta: Annotated[list[str] | None, typer.Option(
        "--acta", help="acta (mesa) en el alcance; repetible / acta in scope; repeatable")]
    = None,
    place: Annotated[list[str] | None, typer.Option(
        "--place", help="local de votación (NOMBRE o ÁREA:NOMBRE) / polling place")] = None,
    area: Annotated[list[str] | None, typer.Option(
        "--area", help="prefijo de código de área (ubigeo) / area code prefix")] = None,
    scope_file: Annotated[Path | None, typer.Option(
        help="alcance JSON {actas, places, areas} / scope as JSON")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Crear una cuenta / create an account."""
    try:
        choice(role, ("observer", "coordinator", "admin"), "--role")
        data: dict[str, list[str]] = {"actas": list(acta or []), "places": list(place or []),
                                      "areas": list(area or [])}
        if scope_file is not None:
            try:
                extra = load_json(scope_file.read_bytes())
            except (OSError, ValueError) as exc:
                raise EscrutinioError(f"alcance ilegible {scope_file}: {exc}",
                                      f"unreadable scope {scope_file}: {exc}") from None
            if not isinstance(extra, dict):
                raise EscrutinioError("el alcance debe ser un objeto JSON",
                                      "the scope must be a JSON object")
            for k in data:
                data[k] += list(extra.get(k) or [])
            for k in set(extra) - set(data):
                data[k] = extra[k]
        scope = Scope.from_dict(data)
        with _repo() as repo:
            acc = repo.create_account(name, role, scope)
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json({"account": acc.to_dict()})
        return
    out.print(T(f"Cuenta {escape(acc.name)} ({acc.role.value}) creada: {acc.account_id}",
                f"Account {escape(acc.name)} ({acc.role.value}) created: {acc.account_id}"))
    out.print(T(f"Emita una ficha con: escrutinio accounts token {acc.account_id}",
                f"Issue a token with: escrutinio accounts token {acc.account_id}"))


@accounts_app.command("token")
def token(
    account: Annotated[str, typer.Argument(help="nombre o id de la cuenta / account name or id")],
    days: Annotated[float, typer.Option(help="validez en días / validity in days",
        min=0.01, max=3650.0)] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Emitir una ficha (se muestra una sola vez) / issue a token (shown only once)."""
    try:
        with _repo() as repo:
            acc = repo.require_account(account)
            secret, info = repo.issue_token(acc.account_id, days=days)
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json({"token": secret, **info.to_dict()})
        return
    out.print(secret, soft_wrap=True)
    err.print(T(f"Ficha {info.token_id} de {escape(acc.name)}, válida hasta "
                f"{info.expires_at:%Y-%m-%d %H:%M} UTC. Guárdela ahora: no se vuelve a mostrar.",
                f"Token {info.token_id} of {escape(acc.name)}, valid until "
                f"{info.expires_at:%Y-%m-%d %H:%M} UTC. Keep it now: it is not shown again."))


@accounts_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="id de la ficha (16 hex) / token id")],
    as_json: JsonOpt = False,
) -> None:
    """Revocar una ficha (y sus sesiones) / revoke a token (and its sessions)."""
    try:
        with _repo() as repo:
            info = repo.revoke_token(token_id.strip())
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json(info.to_dict())
        return
    out.print(T(f"Ficha {info.token_id} revocada ({info.revoked_at:%Y-%m-%d %H:%M:%S} UTC)",
                f"Token {info.token_id} revoked ({info.revoked_at:%Y-%m-%d %H:%M:%S} UTC)"))


@accounts_app.command("disable")
def disable(
    account: Annotated[str, typer.Argument(help="nombre o id de la cuenta / account name or id")],
    as_json: JsonOpt = False,
) -> None:
    """Desactivar una cuenta (todas sus fichas dejan de valer) / disable an account."""
    try:
        with _repo() as repo:
            acc = repo.set_disabled(repo.require_account(account).account_id, True)
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json({"account": acc.to_dict()})
        return
    out.print(T(f"Cuenta {escape(acc.name)} desactivada", f"Account {escape(acc.name)} disabled"))


@accounts_app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """Cuentas y fichas (nunca los secretos) / accounts and tokens (never the secrets)."""
    try:
        with _repo() as repo:
            accs = repo.accounts()
            toks = repo.tokens()
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    by: dict[str, list[dict[str, object]]] = {}
    for t in toks:
        by.setdefault(t.account_id, []).append(t.to_dict())
    if as_json:
        emit_json({"accounts": [{**a.to_dict(), "tokens": by.get(a.account_id, [])}
                                for a in accs]})
        return
    table = Table(title=T(f"{len(accs)} cuentas", f"{len(accs)} accounts"))
    for col in (T("nombre", "name"), "id", T("rol", "role"), T("alcance", "scope"),
                T("fichas activas", "active tokens"), T("estado", "state")):
        table.add_column(col)
    for a in accs:
        sc = a.scope
        scope = ", ".join(x for x in (
            f"{len(sc.actas)} actas" if sc.actas else "",
            f"{len(sc.places)} {T('locales', 'places')}" if sc.places else "",
            f"{T('áreas', 'areas')} {' '.join(sc.areas)}" if sc.areas else "") if x)
        active = [t for t in by.get(a.account_id, []) if t["revoked_at"] is None]
        table.add_row(escape(a.name), a.account_id, a.role.value, escape(scope or "—"),
                      ", ".join(str(t["token_id"]) for t in active) or "—",
                      T("desactivada", "disabled") if a.disabled_at else T("activa", "active"))
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(accounts_app, name="accounts")
