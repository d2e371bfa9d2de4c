"""Security of the observer server (docs/observers.md, "Threat model"): the full matrix of
roles x endpoints, bad tokens, oversized and malformed payloads, path tricks, injection
through every parameter — all refused with a 4xx (never a 500) and logged without
secrets —, security headers and a CSP the pages satisfy, CORS, CSRF, and a hypothesis
fuzzing pass over the submission API."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from escrutinio.server.security import CSP
from escrutinio.store.ledger import verify_log
from server_support import Env, TestClient, copy_of, server_env

SUBS = "/api/v1/observer/submissions"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00security-test" * 20
OK_STATUSES = {200, 201, 303, 400, 401, 403, 404, 405, 409, 413, 415, 422}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def env(request, tmp_path_factory, pg_server, data_dir) -> Iterator[Env]:
    with server_env(request.param, tmp_path_factory.mktemp(request.param), pg_server,
                    data_dir) as e:
        _extra_tokens(e)
        yield e


@pytest.fixture(scope="module")
def duck(tmp_path_factory, pg_server, data_dir) -> Iterator[Env]:
    with server_env("duckdb", tmp_path_factory.mktemp("duck"), pg_server, data_dir) as e:
        _extra_tokens(e)
        yield e


def _extra_tokens(e: Env) -> None:
    """Tokens that must all fail: expired, revoked, of a disabled account, malformed."""
    acc = e.accounts["ana"].account_id
    e.tokens["expired"], info = e.repo.issue_token(acc)
    with e.repo.db._use(write=True) as run:
        run("UPDATE tokens SET expires_at = ? WHERE token_id = ?",
            [datetime.now(UTC) - timedelta(minutes=1), info.token_id])
    e.tokens["revoked"], info = e.repo.issue_token(acc)
    e.repo.revoke_token(info.token_id)
    dis = e.repo.create_account("disabled-one", "admin")
    e.tokens["disabled"], _ = e.repo.issue_token(dis.account_id)
    e.repo.set_disabled(dis.account_id, True)
    good = e.tokens["root"]
    e.tokens["wrong_secret"] = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
    e.tokens["malformed"] = "esc_nothex.short"


def _secrets(e: Env) -> list[str]:
    """Every secret the tests know: full tokens and their secret halves."""
    out = []
    for t in e.tokens.values():
        out.append(t)
        if "." in t and len(t.split(".")[1]) >= 20:
            out.append(t.split(".")[1])
    return out


# -- the matrix ------------------------------------------------------------------------------
ROLES = ["anonymous", "ana", "ben", "coord", "root", "expired", "revoked", "disabled",
         "wrong_secret", "malformed"]


def _setup_matrix(e: Env) -> dict[str, str]:
    photo = e.client.post("/api/v1/observer/photos", content=PNG,
                          headers={**e.h("ana"), "Content-Type": "image/png"}).json()["sha256"]
    sub = e.client.post(SUBS, headers=e.h("ana"), json={
        "client_id": "matrix-base", "copy": copy_of(e.acta(i=11)), "photo_sha256": photo})
    assert sub.status_code in (200, 201), sub.text
    e.client.post("/api/v1/admin/checkpoint", headers=e.h("root"))
    victim = e.repo.create_account(f"victim-{datetime.now(UTC).timestamp()}", "observer")
    _, tok = e.repo.issue_token(victim.account_id)
    return {"photo": photo, "sub": sub.json()["submission"]["id"],
            "acc": victim.account_id, "tok": tok.token_id}


def _call(e: Env, who: str, method: str, path: str, kind: str | None, n: int) -> int:
    headers = {} if who == "anonymous" else {"Authorization": f"Bearer {e.tokens[who]}"}
    if kind == "photo":
        r = e.client.post(path, content=PNG + bytes([n % 256]),
                          headers={**headers, "Content-Type": "image/png"})
    elif kind == "submission":
        r = e.client.post(path, headers=headers, json={
            "client_id": f"matrix-{who}-{n}", "copy": copy_of(e.acta(i=12))})
    elif kind == "account":
        r = e.client.post(path, headers=headers,
                          json={"name": f"made-by-{who}-{n}", "role": "observer"})
    elif kind == "token":
        r = e.client.post(path, headers=headers, json={"expires_in_days": 1})
    else:
        r = e.client.request(method, path, headers=headers)
    return r.status_code


def _expected(who: str, path: str) -> int | set[int]:
    if who in ("anonymous", "expired", "revoked", "disabled", "wrong_secret", "malformed"):
        return 401
    if who == "root":
        return {200, 201}
    if path.startswith("/api/v1/admin/"):
        return 403
    # ben: an observer who owns nothing that was set up: others' things do not exist
    if who == "ben" and path.startswith((f"{SUBS}/", "/api/v1/observer/photos/")):
        return 404
    return {200, 201}


def test_role_endpoint_matrix(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    ids = _setup_matrix(env)
    endpoints = [
        ("POST", "/api/v1/observer/photos", "photo"),
        ("GET", f"/api/v1/observer/photos/{ids['photo']}", None),
        ("POST", SUBS, "submission"),
        ("GET", SUBS, None),
        ("GET", f"{SUBS}/{ids['sub']}", None),
        ("GET", f"{SUBS}/{ids['sub']}/proof", None),
        ("GET", "/api/v1/observer/me", None),
        ("POST", "/api/v1/admin/accounts", "account"),
        ("GET", "/api/v1/admin/accounts", None),
        ("POST", f"/api/v1/admin/accounts/{ids['acc']}/tokens", "token"),
        ("POST", f"/api/v1/admin/tokens/{ids['tok']}/revoke", None),
        ("POST", f"/api/v1/admin/accounts/{ids['acc']}/disable", None),
        ("POST", "/api/v1/admin/checkpoint", None),
    ]
    failures = []
    n = 0
    for who in ROLES:
        for method, path, kind in endpoints:
            n += 1
            got = _call(env, who, method, path, kind, n)
            want = _expected(who, path)
            if who == "ben" and kind == "submission":
                want = 403  # the acta is outside ben's one-acta scope
            ok = got in want if isinstance(want, set) else got == want
            if not ok:
                failures.append((who, method, path, got, want))
    assert not failures, failures
    # every refusal was logged, with its reason, and no secret anywhere in the logs
    lines = [json.loads(r.getMessage()) for r in caplog.records
             if r.name == "escrutinio.security"]
    assert sum(1 for x in lines if x["status"] == 401) >= 6 * len(endpoints)
    assert {x.get("reason") for x in lines if x["status"] == 401} >= {
        "missing_token", "expired_token", "revoked_token", "account_disabled",
        "invalid_token", "malformed_token"}
    assert all(x.get("reason") for x in lines if x["status"] in (401, 403))
    for secret in _secrets(env):
        assert secret not in caplog.text


def test_public_checkpoints_need_no_token(env: Env) -> None:
    r = env.client.get("/api/v1/ledger/submission-checkpoints")
    assert r.status_code == 200 and "checkpoints" in r.json()
    assert r.headers["access-control-allow-origin"] == "*"


# -- bad payloads ----------------------------------------------------------------------------
def test_oversized_bodies(env: Env) -> None:
    limit = env.app.state.observers.config.body_max_bytes
    big = {"client_id": "oversized-1", "copy": copy_of(env.acta(), notes="x" * (limit + 10))}
    r = env.client.post(SUBS, json=big, headers=env.h("ana"))
    assert r.status_code == 413 and r.json()["reason"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the stream itself is counted
        yield b'{"client_id": "oversized-2", "copy": {"notes": "'
        for _ in range(limit // 1000 + 2):
            yield b"y" * 1000
        yield b'"}}'

    r = env.client.post(SUBS, content=chunks(),
                        headers={**env.h("ana"), "Content-Type": "application/json"})
    assert r.status_code == 413
    r = env.client.post(SUBS, content=b"{}", headers={
        **env.h("ana"), "Content-Type": "application/json", "Content-Length": "99999999999"})
    assert r.status_code in (400, 413)
    photo_limit = env.app.state.observers.config.photo_max_bytes

    def photo_chunks() -> Iterator[bytes]:
        yield b"\xff\xd8\xff"
        for _ in range(photo_limit // 65536 + 2):
            yield b"\x00" * 65536

    r = env.client.post("/api/v1/observer/photos", content=photo_chunks(),
                        headers={**env.h("ana"), "Content-Type": "image/jpeg"})
    assert r.status_code == 413


MALFORMED: list[tuple[bytes, str, int]] = [
    (b"not json at all", "application/json", 422),
    (b'{"client_id": "abcdefgh", "copy": {"cast": NaN}}', "application/json", 422),
    (b'{"client_id": "abcdefgh", "client_id": "ijklmnop", "copy": {}}', "application/json", 422),
    (b'{"client_id": "abcdefgh", "copy": ' + b"[" * 5000 + b"]" * 5000 + b"}",
     "application/json", 422),
    (b'{"client_id": "abcdefgh", "copy": ' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"}",
     "application/json", 422),
    (b"\xff\xfe\x00{", "application/json", 400),
    (b"", "application/json", 400),
    (b"   ", "application/json", 400),
    (b"[]", "application/json", 422),
    (b'"a string"', "application/json", 422),
    (b"123" + b"4" * 5000, "application/json", 422),
    (b'{"client_id": 12345678, "copy": {}}', "application/json", 422),
    (b'{"client_id": "abcdefgh", "copy": {"cast": 1e400}}', "application/json", 422),
    (b'{"client_id": "abcdefgh", "copy": "DROP TABLE"}', "application/json", 422),
    (b'{"client_id": "abcdefgh", "copy": {}}', "text/plain", 415),
    (b'client_id=abcdefgh', "application/x-www-form-urlencoded", 415),
    (b'{"client_id": "abcdefgh", "copy": {}}', "", 415),
]


@pytest.mark.parametrize(("body", "ctype", "status"), MALFORMED,
                         ids=[f"malformed-{k}" for k in range(len(MALFORMED))])
def test_malformed_submissions(duck: Env, body: bytes, ctype: str, status: int) -> None:
    headers = {**duck.h("ana")}
    if ctype:
        headers["Content-Type"] = ctype
    r = duck.client.post(SUBS, content=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["message_es"] and r.json()["message_en"]


# -- path tricks -----------------------------------------------------------------------------
def test_upload_path_tricks(duck: Env, tmp_path: Path) -> None:
    root_before = {p.name for p in Path(duck.url).parent.iterdir()}
    cwd_before = set(Path.cwd().iterdir())
    data = PNG + b"path-trick"
    r = duck.client.post("/api/v1/observer/photos", content=data, headers={
        **duck.h("ana"), "Content-Type": "image/png",
        "Content-Disposition": 'attachment; filename="../../../../tmp/evil.sh"',
        "X-Filename": "../../etc/passwd"})
    assert r.status_code in (200, 201)
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()  # named by content only
    for path in ("/api/v1/observer/photos/..%2F..%2F..%2Fetc%2Fpasswd",
                 "/api/v1/observer/photos/%2e%2e/%2e%2e/etc/passwd",
                 "/api/v1/observer/photos/" + "a" * 63 + "%00",
                 "/api/v1/observer/photos/" + hashlib.sha256(data).hexdigest().upper(),
                 "/api/v1/observer/photos/..",
                 "/api/v1/observer/photos/~root",
                 "/coordinator/photos/..%2F..%2Fetc%2Fpasswd",
                 "/static/..%2F..%2F..%2Fetc%2Fpasswd",
                 "/static/%2e%2e/%2e%2e/pyproject.toml"):
        got = duck.client.get(path, headers=duck.h("ana"), follow_redirects=False)
        assert got.status_code in (303, 404, 405), (path, got.status_code)
        assert b"root:" not in got.content and b"[project]" not in got.content
    r = duck.client.post("/api/v1/observer/photos/../../x", content=data,
                         headers={**duck.h("ana"), "Content-Type": "image/png"})
    assert r.status_code in (404, 405)
    assert not Path("/tmp/evil.sh").exists()
    assert {p.name for p in Path(duck.url).parent.iterdir()} <= root_before | {
        Path(duck.url).name + ".wal"}
    assert set(Path.cwd().iterdir()) == cwd_before


# -- injection through every parameter -------------------------------------------------------
INJECTIONS = ["' OR '1'='1", "1; DROP TABLE submissions; --", '" OR ""="',
              "000001' UNION SELECT secret_sha256, token_id FROM tokens --",
              "%' OR 1=1 --", "\\'; SELECT pg_sleep(5); --", "$1", "?", "%s",
              "'; DELETE FROM accounts; --", "*/ OR /*", "\x00"]


def test_injection_through_every_parameter(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    c = env.client
    base = c.post(SUBS, headers=env.h("ana"), json={
        "client_id": "inject-base", "copy": copy_of(env.acta(i=13))})
    assert base.status_code in (200, 201)

    def counts() -> tuple[int, int, int]:
        with env.repo.db._use() as run:
            return tuple(int(run(f"SELECT count(*) FROM {t}", [])[0][0])  # type: ignore[return-value]
                         for t in ("accounts", "tokens", "submissions"))

    before = counts()
    statuses: list[tuple[str, str, int]] = []
    for k, bad in enumerate(INJECTIONS):
        # query parameters
        for param in ("acta", "category", "account", "contest", "limit", "offset"):
            r = c.get(SUBS, params={param: bad}, headers=env.h("ana"))
            statuses.append((param, bad, r.status_code))
            if r.status_code == 200:  # a filter that matched nothing, never everything
                assert r.json()["total"] == 0, (param, bad)
        r = c.get("/coordinator/", params={"acta": bad, "category": bad})
        statuses.append(("page", bad, r.status_code))
        # path parameters
        q = quote(bad, safe="")
        for path in (f"{SUBS}/{q}", f"{SUBS}/{q}/proof", f"/api/v1/observer/photos/{q}"):
            r = c.get(path, headers=env.h("root"))
            statuses.append((path, bad, r.status_code))
            assert r.status_code in (404, 405)
        for path in (f"/api/v1/admin/accounts/{q}/tokens",
                     f"/api/v1/admin/tokens/{q}/revoke",
                     f"/api/v1/admin/accounts/{q}/disable"):
            r = c.post(path, headers=env.h("root"),
                       json={"expires_in_days": 1})
            statuses.append((path, bad, r.status_code))
            assert r.status_code in (404, 405, 422)
        # JSON fields of a submission
        row = env.acta(i=14)
        for fld, value in (("client_id", bad), ("contest_id", bad), ("photo_sha256", bad)):
            r = c.post(SUBS, headers=env.h("ana"),
                       json={"client_id": f"inj-{k}-xx", "copy": copy_of(row), fld: value})
            statuses.append((fld, bad, r.status_code))
            assert r.status_code == 422
        r = c.post(SUBS, headers=env.h("root"),
                   json={"client_id": f"inj-acta-{k}", "copy": copy_of(row, acta_id=bad)})
        statuses.append(("copy.acta_id", bad, r.status_code))
        for fld in ("observer_id", "notes", "organization", "copy_code"):
            r = c.post(SUBS, headers=env.h("ana"),
                       json={"client_id": f"inj-{fld[:4]}-{k}", "copy": copy_of(row, **{fld: bad})})
            statuses.append((f"copy.{fld}", bad, r.status_code))
            if r.status_code == 201:  # stored verbatim, read back verbatim
                got = c.get(f"{SUBS}/{r.json()['submission']['id']}", headers=env.h("ana"))
                assert got.json()["submission"]["copy"][fld] == bad
        # admin fields
        r = c.post("/api/v1/admin/accounts", headers=env.h("root"),
                   json={"name": bad, "role": "observer"})
        statuses.append(("name", bad, r.status_code))
        r = c.post("/api/v1/admin/accounts", headers=env.h("root"),
                   json={"name": f"inj-role-{k}", "role": bad})
        statuses.append(("role", bad, r.status_code))
        assert r.status_code == 422
        r = c.post("/api/v1/admin/accounts", headers=env.h("root"), json={
            "name": f"inj-scope-{k}", "role": "coordinator",
            "scope": {"actas": [bad], "places": [bad]}})
        statuses.append(("scope", bad, r.status_code))
        if r.status_code == 201:  # an injected scope sees only what it literally names
            acc = r.json()["account"]["account_id"]
            tok = c.post(f"/api/v1/admin/accounts/{acc}/tokens", headers=env.h("root"),
                         json={}).json()["token"]
            seen = c.get(SUBS, params={"limit": 500},
                         headers={"Authorization": f"Bearer {tok}"}).json()
            # at most the admin's copy filed literally under this acta id, nothing else
            assert {x["acta_id"] for x in seen["submissions"]} <= {bad}
        # the bearer token itself, and the login form
        r = c.get(SUBS, headers={"Authorization": f"Bearer {bad}"})
        statuses.append(("authorization", bad, r.status_code))
        assert r.status_code == 401
        r = c.post("/coordinator/login", data={"token": bad, "csrf": bad},
                   follow_redirects=False)
        statuses.append(("login", bad, r.status_code))
        assert r.status_code in (401, 403)
    assert all(s in OK_STATUSES for _, _, s in statuses), [x for x in statuses
                                                           if x[2] not in OK_STATUSES]
    after = counts()
    assert after[0] >= before[0] and after[2] >= before[2]  # nothing dropped or deleted
    with env.repo.db._use() as run:
        names = {r[0] for r in run("SELECT name FROM accounts", [])}
    assert {"root", "coord", "ana", "ben"} <= names
    assert verify_log(env.store).ok
    assert any(json.loads(r.getMessage()).get("reason") for r in caplog.records
               if r.name == "escrutinio.security")
    for secret in _secrets(env):
        assert secret not in caplog.text


# -- secrets never logged --------------------------------------------------------------------
def test_no_secret_in_logs_even_on_login(duck: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    c = duck.client
    c.cookies.clear()
    form = c.get("/coordinator/login")
    csrf = form.cookies.get("esc_csrf")
    for tok in (duck.tokens["expired"], duck.tokens["revoked"], duck.tokens["wrong_secret"]):
        r = c.post("/coordinator/login", data={"token": tok, "csrf": csrf},
                   follow_redirects=False)
        assert r.status_code == 401
    r = c.post("/coordinator/login", data={"token": duck.tokens["coord"], "csrf": csrf},
               follow_redirects=False)
    assert r.status_code == 303
    session = r.cookies.get("esc_session") or c.cookies.get("esc_session")
    assert session
    c.get("/coordinator/submissions/sub_000000000000000000000000")  # a logged 404
    c.get(SUBS, headers={"Authorization": f"Basic {duck.tokens['root']}"})
    c.get(f"{SUBS}?token={duck.tokens['root']}")  # a token pasted into a URL
    # the server's log lines (the test client's own request log shows the URL it sent)
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    for secret in [*_secrets(duck), session, session.split(".")[1]]:
        assert secret not in text
    assert "[REDACTED]" in text
    c.cookies.clear()


# -- headers, CSP, CORS ----------------------------------------------------------------------
PAGES = ["/", "/en/", "/snapshots/", "/history/", "/api/", "/coordinator/login",
         "/en/coordinator/login"]


def test_security_headers_on_every_response(duck: Env) -> None:
    c = duck.client
    c.cookies.clear()
    paths = [*PAGES, "/api/v1/snapshots", "/static/style.css",
             "/static/app.js", "/no-such-page", "/api/v1/no-such", "/api/v1/observer/me",
             "/coordinator/"]
    for path in paths:
        for _ in range(2):  # the second is answered by the front cache when it is hot
            r = c.get(path, follow_redirects=False)
            assert r.status_code < 500, (path, r.status_code)
            h = r.headers
            assert h["x-content-type-options"] == "nosniff", path
            assert h["x-frame-options"] == "DENY", path
            assert h["content-security-policy"] == CSP, path
            assert "frame-ancestors 'none'" in h["content-security-policy"]
            assert h["referrer-policy"] == "same-origin", path
            assert "strict-transport-security" not in h  # plain http: no HSTS
    r = c.post(SUBS, json={}, headers=duck.h("ana"))
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    with TestClient(duck.app, base_url="https://testserver") as tls:
        r = tls.get("/")
        assert r.headers["strict-transport-security"].startswith("max-age=")
        form = tls.get("/coordinator/login")
        assert "secure" in form.headers["set-cookie"].lower()
        r = tls.post("/coordinator/login", follow_redirects=False, data={
            "token": duck.tokens["coord"], "csrf": form.cookies.get("esc_csrf")})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
_EXTERNAL = re.compile(r"<(script|link|img|iframe|source|video|audio|embed|object)\b[^>]*"
                       r"\b(src|href|data)=[\"']?(https?:)?//", re.I)


def _csp_problems(html: str) -> list[str]:
    out = []
    if _INLINE_SCRIPT.search(html):
        out.append("inline <script>")
    if _HANDLER.search(html):
        out.append("inline event handler")
    if "javascript:" in html.lower():
        out.append("javascript: URL")
    if _EXTERNAL.search(html):
        out.append("asset from another origin")
    if re.search(r"<style[\s>]", html, re.I):
        out.append("<style> element")
    return out


def test_pages_satisfy_the_csp(duck: Env) -> None:
    c = duck.client
    sid = duck.snapshot.snapshot_id
    pages = [*PAGES, f"/s/{sid}/", f"/s/{sid}/verify/", f"/s/{sid}/contested/",
             f"/s/{sid}/forensics/", f"/s/{sid}/audit/", f"/s/{sid}/quickcount/",
             f"/s/{sid}/projection/"]
    for path in pages:
        r = c.get(path)
        assert r.status_code in (200, 422), (path, r.status_code)
        assert not _csp_problems(r.text), (path, _csp_problems(r.text))
    # and the templates themselves (pages not rendered above included)
    for folder in (REPO / "src/escrutinio/api/templates",
                   REPO / "src/escrutinio/server/templates"):
        for f in folder.glob("*.html"):
            assert not _csp_problems(f.read_text("utf-8")), f
    js = (REPO / "src/escrutinio/api/static/app.js").read_text("utf-8")
    assert not re.search(r"\beval\s*\(|new\s+Function\s*\(|setTimeout\s*\(\s*[\"']", js)
    css = (REPO / "src/escrutinio/api/static/style.css").read_text("utf-8")
    assert not re.search(r"@import|url\(\s*[\"']?(https?:)?//", css)


def test_cors_policy(duck: Env) -> None:
    c = duck.client
    evil = {"Origin": "https://evil.example"}
    pub = c.get("/api/v1/snapshots", headers=evil)
    assert pub.headers["access-control-allow-origin"] == "*"
    pre = c.options("/api/v1/snapshots", headers={**evil, "Access-Control-Request-Method":
                                                  "GET"})
    assert pre.status_code == 204 and "GET" in pre.headers["access-control-allow-methods"]
    for path in (SUBS, "/api/v1/admin/accounts", "/api/v1/observer/photos",
                 "/coordinator/login"):
        pre = c.options(path, headers={**evil, "Access-Control-Request-Method": "POST",
                                       "Access-Control-Request-Headers": "authorization"})
        assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers
        r = c.get(path, headers={**evil, **duck.h("root")})
        assert "access-control-allow-origin" not in r.headers
    r = c.post("/api/v1/s/latest/pvt", headers=evil, json=[])  # public, but not a GET
    assert "access-control-allow-origin" not in r.headers


def test_csrf_on_browser_forms(duck: Env) -> None:
    c = duck.client
    c.cookies.clear()
    form = c.get("/coordinator/login")
    csrf = form.cookies.get("esc_csrf")
    token = duck.tokens["coord"]
    r = c.post("/coordinator/login", data={"token": token, "csrf": "forged"},
               follow_redirects=False)
    assert r.status_code == 403 and "esc_session" not in r.headers.get("set-cookie", "")
    r = c.post("/coordinator/login", data={"token": token}, follow_redirects=False)
    assert r.status_code == 403
    r = c.post("/coordinator/login", data={"token": token, "csrf": csrf},
               headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403
    r = c.post("/coordinator/login", data={"token": token, "csrf": csrf},
               headers={"Referer": "https://evil.example/x"}, follow_redirects=False)
    assert r.status_code == 403
    c.cookies.clear()  # no CSRF cookie at all: a cross-site form cannot carry one
    r = c.post("/coordinator/login", data={"token": token, "csrf": csrf},
               follow_redirects=False)
    assert r.status_code == 403
    form = c.get("/coordinator/login")
    r = c.post("/coordinator/login", data={"token": token,
                                           "csrf": form.cookies.get("esc_csrf")},
               headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert r.status_code == 303
    page = c.get("/coordinator/")
    assert page.status_code == 200
    r = c.post("/coordinator/logout", data={"other": "x"}, follow_redirects=False)
    assert r.status_code == 403
    sync = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    r = c.post("/coordinator/logout", data={"csrf": sync},
               headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403
    assert c.get("/coordinator/").status_code == 200  # still logged in
    # the session cookie never authenticates the JSON API (no CSRF needed there)
    assert c.get(SUBS).status_code == 401
    r = c.post("/coordinator/logout", data={"csrf": sync}, follow_redirects=False)
    assert r.status_code == 303
    c.cookies.clear()


def test_read_only_store_disables_the_observer_api(duck: Env, tmp_path: Path) -> None:
    from escrutinio.api.app import create_app
    from escrutinio.store.duckdb_store import DuckDBStore

    db = tmp_path / "ro.duckdb"
    with DuckDBStore(db) as store:
        store.put_snapshots([duck.snapshot])
    app = create_app(db, warm=False)
    with TestClient(app) as c:
        for method, path in (("POST", SUBS), ("GET", SUBS), ("GET", "/api/v1/observer/me"),
                             ("POST", "/api/v1/admin/accounts")):
            r = c.request(method, path, headers=duck.h("root"))
            assert r.status_code == 503 and r.json()["reason"] == "observer_api_disabled"
            assert "writable" in r.json()["message_en"]
        login = c.get("/coordinator/login")
        assert login.status_code == 200 and "escribible" in login.text
        assert "writable" in c.get("/en/coordinator/login").text
        assert c.get("/").status_code == 200  # the public site is unaffected


# -- fuzzing ---------------------------------------------------------------------------------
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=3),
    max_leaves=10)
_FIELDS = ["acta_id", "observer_id", "observed_at", "cast", "blank", "null", "challenged",
           "electors", "copy_code", "copy_id", "organization", "image_sha256", "notes",
           "v_castillo", "v_fujimori", "v_other", "extra"]
_VALUE = st.one_of(st.integers(-5, 10**6), st.sampled_from(["000001", "1", "", "2021-06-06",
                                                             "2021-06-06T19:40:00-05:00",
                                                             "ab" * 32, "x" * 70]), _JSON)
_COPY = st.dictionaries(st.sampled_from(_FIELDS), _VALUE, max_size=len(_FIELDS))
_BODY = st.one_of(
    _JSON,
    st.fixed_dictionaries({"client_id": st.one_of(
        st.text(max_size=70), st.from_regex(r"[a-z0-9_-]{8,20}", fullmatch=True)),
                           "copy": _COPY},
                          optional={"contest_id": _VALUE, "photo_sha256": _VALUE,
                                    "other": _VALUE}),
)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=_BODY, raw=st.booleans(), junk=st.binary(max_size=64))
def test_fuzz_submission_api_never_500(duck: Env, body: Any, raw: bool, junk: bytes) -> None:
    content = junk if raw else json.dumps(body).encode()
    r = duck.client.post(SUBS, content=content, headers={**duck.h("root"),
                                                         "Content-Type": "application/json"})
    assert r.status_code in {200, 201, 400, 403, 409, 413, 415, 422}, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")


def test_schemathesis_over_the_observer_api(duck: Env) -> None:
    """Schemathesis against the documented observer and admin operations (as an admin, so
    that requests get past authentication): no 5xx, and every answer matches its
    documented status codes, content type and schema; what the schema forbids is a 4xx."""
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode, checks

    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", duck.app)
    ops = [r.ok() for r in schema.get_all_operations()]
    ours = [o for o in ops if o.path.startswith(("/api/v1/observer", "/api/v1/admin",
                                                 "/api/v1/ledger/submission"))]
    assert len(ours) == 14, [o.label for o in ours]
    # the destructive ones get a throwaway account, so the admin's token keeps working
    spare = duck.repo.create_account("schemathesis-spare", "observer")
    _, spare_tok = duck.repo.issue_token(spare.account_id)
    fixed = {"account_id": spare.account_id, "token_id": spare_tok.token_id}
    failures = []
    calls: list[str] = []
    for op in ours:
        names = {p.name for p in op.iter_parameters() if p.location == "path"}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=op.as_strategy(generation_mode=mode, path_parameters={
                k: v for k, v in fixed.items() if k in names} or None))
            @settings(max_examples=4, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case: Any) -> None:
                calls.append(case.operation.label)
                case.call_and_validate(headers=duck.h("root"), checks=[
                    checks.not_a_server_error, checks.status_code_conformance,
                    checks.content_type_conformance, checks.response_schema_conformance,
                    checks.negative_data_rejection])

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE
            except Exception as exc:
                failures.append(f"{op.label} [{mode.value}]: {exc}")
    assert not failures, "\n\n".join(failures)
    assert len(set(calls)) == len(ours) and len(calls) >= 4 * len(ours)  # all were exercised
