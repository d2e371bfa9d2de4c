"""Observer accounts, tokens, sessions and scopes (docs/observers.md), on DuckDB and
PostgreSQL: the repository, the admin API and ``escrutinio accounts``."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from escrutinio.server import auth
from escrutinio.server.auth import AuthError, Role, Scope
from escrutinio.server.repo import LAST_USED_EVERY, Repo
from escrutinio.store.base import Store
from server_support import Env, server_env, store_url


@pytest.fixture
def repo(any_store: Store):
    r = Repo(any_store)
    try:
        yield r
    finally:
        r.close()


def _all_text(repo: Repo) -> str:
    """Every value of the account tables as text (to look for secrets at rest)."""
    out = []
    with repo.db._use() as run:
        for table in ("accounts", "tokens", "sessions"):
            out += [repr(r) for r in run(f"SELECT * FROM {table}", [])]
    return "\n".join(out)


# -- accounts --------------------------------------------------------------------------------
def test_accounts_are_created_listed_and_unique(repo: Repo) -> None:
    a = repo.create_account("Ana Pérez", "observer", Scope(actas=("000123",)))
    b = repo.create_account("coord-lima", Role.COORDINATOR, Scope(areas=("1501",)))
    assert re.fullmatch(r"acc_[0-9a-f]{16}", a.account_id)
    assert [x.name for x in repo.accounts()] == ["Ana Pérez", "coord-lima"]
    assert repo.account(a.account_id) == repo.account("Ana Pérez") == a
    assert repo.account(b.account_id).scope == Scope(areas=("1501",))
    with pytest.raises(AuthError) as e:
        repo.create_account("Ana Pérez", "admin")
    assert e.value.status == 409 and e.value.reason == "name_taken"
    for name, role, reason in (("x", "superuser", "bad_role"), ("", "observer", "bad_name"),
                               ("a'; DROP TABLE accounts; --", "observer", "bad_name"),
                               ("a" * 101, "observer", "bad_name")):
        with pytest.raises(AuthError) as e:
            repo.create_account(name, role)
        assert e.value.reason == reason
    assert len(repo.accounts()) == 2


# -- tokens ----------------------------------------------------------------------------------
def test_tokens_are_hashed_at_rest_and_authenticate(repo: Repo) -> None:
    acc = repo.create_account("ana", "observer")
    token, info = repo.issue_token(acc.account_id, days=7)
    m = re.fullmatch(r"esc_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})", token)
    assert m and m.group(1) == info.token_id
    secret = m.group(2)
    assert timedelta(days=6.99) < info.expires_at - info.created_at <= timedelta(days=7)
    stored = _all_text(repo)
    assert secret not in stored and token not in stored  # only the hash is kept
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    p = repo.authenticate(token)
    assert p.account == acc and p.token_id == info.token_id and p.via == "token"
    # every way of getting it wrong is a 401 naming why
    wrong_secret = f"esc_{info.token_id}.{'A' * 43}"
    unknown = f"esc_{'0' * 16}.{secret}"
    for bad, reason in ((wrong_secret, "invalid_token"), (unknown, "invalid_token"),
                        (token[:-1], "malformed_token"), (token + "x", "malformed_token"),
                        ("", "malformed_token"), ("esc_' OR '1'='1", "malformed_token"),
                        (token.upper(), "malformed_token")):
        with pytest.raises(AuthError) as e:
            repo.authenticate(bad)
        assert e.value.status == 401 and e.value.reason == reason, bad


def test_expiry_revocation_and_disabled_accounts(repo: Repo) -> None:
    acc = repo.create_account("ana", "observer")
    t1, i1 = repo.issue_token(acc.account_id)
    t2, i2 = repo.issue_token(acc.account_id)
    t3, i3 = repo.issue_token(acc.account_id)
    with repo.db._use(write=True) as run:
        run("UPDATE tokens SET expires_at = ? WHERE token_id = ?",
            [datetime.now(UTC) - timedelta(seconds=1), i1.token_id])
    with pytest.raises(AuthError, match="expired"):
        repo.authenticate(t1)
    revoked = repo.revoke_token(i2.token_id)
    assert revoked.revoked_at is not None
    assert repo.revoke_token(i2.token_id).revoked_at == revoked.revoked_at  # idempotent
    with pytest.raises(AuthError) as e:
        repo.authenticate(t2)
    assert e.value.reason == "revoked_token"
    assert repo.authenticate(t3).token_id == i3.token_id
    repo.set_disabled(acc.account_id, True)
    with pytest.raises(AuthError) as e:
        repo.authenticate(t3)
    assert e.value.reason == "account_disabled"
    repo.set_disabled(acc.account_id, False)
    assert repo.authenticate(t3).token_id == i3.token_id
    with pytest.raises(AuthError):
        repo.issue_token(acc.account_id, days=0)
    with pytest.raises(Exception, match="unknown token"):
        repo.revoke_token("ffffffffffffffff")


def test_last_used_is_recorded_but_not_on_every_call(repo: Repo) -> None:
    acc = repo.create_account("ana", "observer")
    token, info = repo.issue_token(acc.account_id)
    assert repo.tokens(acc.account_id)[0].last_used_at is None
    repo.authenticate(token)
    first = repo.tokens(acc.account_id)[0].last_used_at
    assert first is not None and datetime.now(UTC) - first < timedelta(seconds=30)
    repo.authenticate(token)
    assert repo.tokens(acc.account_id)[0].last_used_at == first  # within LAST_USED_EVERY
    with repo.db._use(write=True) as run:
        run("UPDATE tokens SET last_used_at = ? WHERE token_id = ?",
            [first - LAST_USED_EVERY - timedelta(seconds=1), info.token_id])
    repo.authenticate(token)
    assert repo.tokens(acc.account_id)[0].last_used_at > first - timedelta(seconds=1)


# -- sessions --------------------------------------------------------------------------------
def test_sessions_end_with_logout_and_with_their_token(repo: Repo) -> None:
    acc = repo.create_account("coord", "coordinator")
    token, info = repo.issue_token(acc.account_id, days=1)
    p = repo.authenticate(token)
    value, expires = repo.create_session(p, hours=48)
    assert expires <= info.expires_at  # never beyond its token
    assert value.startswith("ess_") and value.split(".")[1] not in _all_text(repo)
    s = repo.session(value)
    assert s.account == acc and s.via == "session" and s.session_value == value
    assert auth.csrf_token(value) != auth.csrf_token(repo.create_session(p)[0])
    repo.end_session(value)
    with pytest.raises(AuthError) as e:
        repo.session(value)
    assert e.value.reason == "session_ended"
    other, _ = repo.create_session(p)
    repo.revoke_token(info.token_id)  # revoking the token ends its sessions
    with pytest.raises(AuthError):
        repo.session(other)
    for bad in ("", "ess_zz", other[:-2] + "AA", f"ess_{'0' * 16}.{'a' * 43}"):
        with pytest.raises(AuthError) as e:
            repo.session(bad)
        assert e.value.status == 401


# -- scopes ----------------------------------------------------------------------------------
def test_scope_validation() -> None:
    s = Scope.from_dict({"actas": ["000123", " 7 ", "000123"], "areas": ["15", "1501"],
                         "places": ["IE  1234", "150101:Colegio X"]})
    assert s.actas == ("000123", "7") and s.areas == ("15", "1501")
    assert Scope.from_dict(None).empty and Scope.from_dict({}).empty
    for bad in ([], {"districts": []}, {"actas": "000123"}, {"actas": [1]},
                {"areas": ["15; DROP TABLE x"]}, {"places": ["x" * 201]},
                {"actas": [""]}, {"places": ["a\nb"]}):
        with pytest.raises(AuthError) as e:
            Scope.from_dict(bad)
        assert e.value.status == 422 and e.value.reason == "bad_scope"


def test_scope_matching() -> None:
    geo = ["010000", "010100", "010101"]
    assert Scope(actas=("1",)).covers("000001")
    assert Scope(actas=("000001",)).covers("1")
    assert not Scope(actas=("10",)).covers("000001")
    assert Scope(actas=("A-7",)).covers("A-7") and not Scope(actas=("A-7",)).covers("a-7")
    assert Scope(areas=("01",)).covers("x", geo) and Scope(areas=("0101",)).covers("x", geo)
    assert Scope(areas=("010101",)).covers("x", geo)
    assert not Scope(areas=("02",)).covers("x", geo)
    assert not Scope(areas=("01",)).covers("x")  # an acta the official actas do not have
    place = "IE 18288 ISABEL LYNCH DE RUBIO"
    assert Scope(places=("ie 18288  isabel lynch de rubio",)).covers("x", geo, place)
    assert Scope(places=("0101:" + place,)).covers("x", geo, place)
    assert not Scope(places=("02:" + place,)).covers("x", geo, place)
    assert not Scope(places=("OTHER",)).covers("x", geo, place)
    assert not Scope().covers("000001", geo, place)


def test_redaction() -> None:
    _, token, _ = auth.new_token()
    secret = token.split(".")[1]
    for text in (f"Bearer {token}", f"x={token}&y=1", f"{token} and {token}"):
        out = auth.redact(text)
        assert secret not in out and token.split(".")[0] in out
    assert auth.redact_header("Basic dXNlcjpwYXNz") == "Basic [REDACTED]"
    assert auth.redact_header("sometoken") == "[REDACTED]"


# -- the admin API ---------------------------------------------------------------------------
@pytest.fixture(params=["duckdb", "postgres"])
def env(request, tmp_path, pg_server, data_dir):
    with server_env(request.param, tmp_path, pg_server, data_dir) as e:
        yield e


def test_admin_api(env: Env) -> None:
    c, root = env.client, env.h("root")
    r = c.post("/api/v1/admin/accounts", headers=root,
               json={"name": "eva", "role": "observer", "scope": {"actas": ["000001"]}})
    assert r.status_code == 201, r.text
    eva = r.json()["account"]
    assert eva["scope"]["actas"] == ["000001"] and eva["role"] == "observer"
    assert c.post("/api/v1/admin/accounts", headers=root,
                  json={"name": "eva", "role": "observer"}).status_code == 409
    for bad in ({"name": "x"}, {"name": "x", "role": "god"}, {"name": 3, "role": "observer"},
                {"name": "y", "role": "observer", "scope": {"actas": [1]}},
                {"name": "y", "role": "observer", "admin": True}):
        assert c.post("/api/v1/admin/accounts", headers=root, json=bad).status_code == 422
    t = c.post(f"/api/v1/admin/accounts/{eva['account_id']}/tokens", headers=root,
               json={"expires_in_days": 2})
    assert t.status_code == 201
    token = t.json()["token"]
    assert c.get("/api/v1/observer/me", headers={"Authorization": f"Bearer {token}"}).json()[
        "account"]["name"] == "eva"
    listed = c.get("/api/v1/admin/accounts", headers=root).json()["accounts"]
    row = next(a for a in listed if a["name"] == "eva")
    assert [x["token_id"] for x in row["tokens"]] == [t.json()["token_id"]]
    assert token.split(".")[1] not in json.dumps(listed)  # never shown again
    assert c.post(f"/api/v1/admin/accounts/{eva['account_id']}/tokens", headers=root,
                  json={"expires_in_days": -1}).status_code == 422
    assert c.post("/api/v1/admin/accounts/acc_0000000000000000/tokens", headers=root,
                  json={}).status_code == 404
    rv = c.post(f"/api/v1/admin/tokens/{t.json()['token_id']}/revoke", headers=root)
    assert rv.status_code == 200 and rv.json()["revoked_at"]
    gone = c.get("/api/v1/observer/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401 and gone.json()["reason"] == "revoked_token"
    assert c.post("/api/v1/admin/tokens/ffffffffffffffff/revoke",
                  headers=root).status_code == 404
    d = c.post(f"/api/v1/admin/accounts/{eva['account_id']}/disable", headers=root)
    assert d.status_code == 200 and d.json()["account"]["disabled_at"]
    me = env.accounts["root"].account_id
    assert c.post(f"/api/v1/admin/accounts/{me}/disable", headers=root).status_code == 409


# -- the CLI ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_cli_accounts(kind: str, tmp_path: Path, pg_server) -> None:
    from escrutinio.cli import app as cli

    runner = CliRunner()
    with store_url(kind, tmp_path, pg_server) as url:
        scope = tmp_path / "scope.json"
        scope.write_text(json.dumps({"areas": ["1501"], "places": ["IE 1"]}))
        r = runner.invoke(cli, ["--db", url, "accounts", "add", "ana", "--role", "observer",
                                "--acta", "000123", "--scope-file", str(scope), "--json"])
        assert r.exit_code == 0, r.stdout
        acc = json.loads(r.stdout)["account"]
        assert acc["scope"] == {"actas": ["000123"], "places": ["IE 1"], "areas": ["1501"]}
        r = runner.invoke(cli, ["--db", url, "accounts", "add", "ana", "--json"])
        assert r.exit_code != 0 and json.loads(r.stdout)["error"] == "AuthError"
        r = runner.invoke(cli, ["--db", url, "accounts", "add", "bob", "--role", "king"])
        assert r.exit_code != 0
        r = runner.invoke(cli, ["--db", url, "accounts", "token", "ana", "--days", "3",
                                "--json"])
        assert r.exit_code == 0
        issued = json.loads(r.stdout)
        token = issued["token"]
        r = runner.invoke(cli, ["--db", url, "accounts", "token", "ana"])
        assert r.exit_code == 0 and re.search(r"esc_[0-9a-f]{16}\.\S{43}", r.stdout)
        r = runner.invoke(cli, ["--db", url, "accounts", "list", "--json"])
        listed = json.loads(r.stdout)["accounts"]
        assert [a["name"] for a in listed] == ["ana"] and len(listed[0]["tokens"]) == 2
        assert token.split(".")[1] not in r.stdout
        r = runner.invoke(cli, ["--db", url, "accounts", "list"])
        assert r.exit_code == 0 and "ana" in r.stdout
        r = runner.invoke(cli, ["--db", url, "accounts", "revoke", issued["token_id"],
                                "--json"])
        assert r.exit_code == 0 and json.loads(r.stdout)["revoked_at"]
        r = runner.invoke(cli, ["--db", url, "accounts", "revoke", "0" * 16, "--json"])
        assert r.exit_code != 0
        r = runner.invoke(cli, ["--db", url, "accounts", "disable", "ana", "--json"])
        assert r.exit_code == 0 and json.loads(r.stdout)["account"]["disabled_at"]
        from escrutinio.store import open_store

        with open_store(url) as store:
            repo = Repo(store)
            with pytest.raises(AuthError):
                repo.authenticate(token)
            repo.close()
