"""Authenticated submissions of observers' copies (docs/observers.md), over HTTP, on DuckDB
and PostgreSQL: idempotency, validation, reconciliation with the PVT logic, scopes and
visibility, photos, the coordinator pages, and the tamper-evident log."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from escrutinio.defence.observers import parse_observer_records
from escrutinio.defence.pvt import pick_pair, reconcile
from escrutinio.server.auth import Scope
from escrutinio.server.repo import Repo
from escrutinio.server.submissions import Submissions
from escrutinio.store import ledger
from escrutinio.store.ledger import (
    SubmissionProof,
    verify_log,
    verify_submission_proof,
)
from server_support import Env, copy_of, server_env

SUBS = "/api/v1/observer/submissions"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def env(request, tmp_path_factory, pg_server, data_dir):
    with server_env(request.param, tmp_path_factory.mktemp(request.param), pg_server,
                    data_dir) as e:
        yield e


@pytest.fixture(params=["duckdb", "postgres"])
def fresh(request, tmp_path, pg_server, data_dir):
    """A store of its own (for tests that tamper with it)."""
    with server_env(request.param, tmp_path, pg_server, data_dir) as e:
        yield e


def submit(env: Env, who: str, client_id: str, copy: dict[str, Any], **extra: Any) -> Any:
    return env.client.post(SUBS, json={"client_id": client_id, "copy": copy, **extra},
                           headers=env.h(who))


# -- idempotency ---------------------------------------------------------------------------
def test_created_then_replayed_then_conflict(env: Env) -> None:
    copy = copy_of(env.acta(i=1))
    first = submit(env, "ana", "idem-0001", copy)
    assert first.status_code == 201, first.text
    sub = first.json()["submission"]
    assert sub["client_id"] == "idem-0001" and sub["account"] == env.accounts["ana"].account_id
    assert sub["acta_id"] == copy["acta_id"] and sub["ledger"]["seq"] >= 2
    assert first.headers["location"] == f"{SUBS}/{sub['id']}"
    again = submit(env, "ana", "idem-0001", copy)
    assert again.status_code == 200 and again.headers["idempotent-replay"] == "true"
    assert again.json() == first.json()  # the same body, byte for byte in content
    other = submit(env, "ana", "idem-0001", {**copy, "cast": copy["cast"] + 1})
    assert other.status_code == 409 and other.json()["reason"] == "client_id_reused"
    # the key is (account, client id): another account may use the same client id
    theirs = submit(env, "coord", "idem-0001", copy)
    assert theirs.status_code == 201 and theirs.json()["submission"]["id"] != sub["id"]
    # the observer id is filled with the account's pseudonym, and payload_sha256 covers it
    stored = env.repo.submission(sub["id"])
    assert stored is not None
    assert json.loads(stored["payload"])["copy"]["observer_id"] == sub["account"]
    assert hashlib.sha256(stored["payload"].encode()).hexdigest() == sub["payload_sha256"]


def test_concurrent_retries_store_one_row(env: Env) -> None:
    """Eight clients racing with the same (account, client id) through separate
    repositories (on PostgreSQL: separate connection pools, as separate processes would
    have) store one row and one ledger entry; different ids are all stored."""
    repos = [env.repo] if env.kind == "duckdb" else [Repo(env.store) for _ in range(4)]
    reader = env.app.state.backend.store
    services = [Submissions(r, reader) for r in repos]
    p = env.repo.authenticate(env.tokens["ana"])
    row = env.acta(i=2)
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def go(k: int, cid: str) -> None:
        try:
            stored, created = services[k % len(services)].submit(
                p, {"client_id": cid, "copy": copy_of(row)})
            results.append((stored["submission_id"], created))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(k, "race-same-1")) for k in range(8)]
    threads += [threading.Thread(target=go, args=(k, f"race-diff-{k}")) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    by_client = {sid: env.repo.submission(sid)["client_id"] for sid, _ in results}
    same = [(sid, c) for sid, c in results if by_client[sid] == "race-same-1"]
    assert len(same) == 8 and len({sid for sid, _ in same}) == 1
    assert sum(c for _, c in same) == 1  # one created, seven replays of it
    diff = {sid for sid, _ in results if by_client[sid] != "race-same-1"}
    assert len(diff) == 8
    for r in repos[1:]:
        r.close()
    # exactly one ledger entry per stored submission; the chain still verifies
    report = verify_log(env.store)
    assert report.ok, report.problems


def test_unique_constraint_is_in_the_database(env: Env) -> None:
    copy = copy_of(env.acta(i=3))
    r = submit(env, "ana", "uniq-0001", copy)
    assert r.status_code == 201
    stored = env.repo.submission(r.json()["submission"]["id"])
    cols = ", ".join(c for c in stored if c != "entry_hash")
    with (pytest.raises(Exception, match=r"(?i)unique|duplicate|constraint"),
          env.repo.db._use(write=True) as run):  # behind the repository's back
        run(f"INSERT INTO submissions ({cols}) VALUES "
            f"({', '.join('?' for c in stored if c != 'entry_hash')})",
            [("sub_" + "0" * 24 if c == "submission_id" else
              10**9 if c == "ledger_seq" else stored[c])
             for c in stored if c != "entry_hash"])


# -- validation ----------------------------------------------------------------------------
BAD_COPIES = [
    ({"cast": None}, "cast", "required"),
    ({"cast": "12"}, "cast", "not_an_integer"),
    ({"cast": True}, "cast", "not_an_integer"),
    ({"blank": 1.5}, "blank", "not_an_integer"),
    ({"null": -1}, "null", "out_of_range"),
    ({"v_castillo": 10**12}, "v_castillo", "out_of_range"),
    ({"v_keiko": 3}, "v_keiko", "unknown_candidate_column"),
    ({"colour": "red"}, "colour", "unexpected_field"),
    ({"observed_at": "yesterday evening"}, "observed_at", "bad_timestamp"),
    ({"acta_id": "x" * 65}, "acta_id", "too_long"),
    ({"acta_id": ""}, "acta_id", "too_short"),
    ({"image_sha256": "abc"}, "image_sha256", "bad_format"),
    ({"notes": {"a": 1}}, "notes", "not_a_string"),
    ({"notes": "a\x00b"}, "notes", "control_characters"),
]


@pytest.mark.parametrize(("change", "fld", "rule"), BAD_COPIES)
def test_invalid_copies_name_field_and_rule(env: Env, change: dict[str, Any], fld: str,
                                            rule: str) -> None:
    copy = copy_of(env.acta(i=4), **change)
    r = submit(env, "ana", "bad-copy-1", copy)
    assert r.status_code == 422, r.text
    body = r.json()
    assert {"field": fld, "rule": rule} in [{"field": d["field"], "rule": d["rule"]}
                                            for d in body["detail"]], body
    assert body["message_es"] and body["message_en"]
    assert env.repo.submission_by_key(env.accounts["ana"].account_id, "bad-copy-1") is None


@pytest.mark.parametrize(("body", "rule"), [
    ({"client_id": "short", "copy": {}}, "bad_client_id"),
    ({"client_id": "x" * 65, "copy": {}}, "bad_client_id"),
    ({"client_id": "has space!", "copy": {}}, "bad_client_id"),
    ({"client_id": "valid-id-1"}, "missing_copy"),
    ({"client_id": "valid-id-1", "copy": [1, 2]}, "not_an_object"),
    ({"client_id": "valid-id-1", "copy": {}, "extra": 1}, "unexpected_field"),
    ({"client_id": "valid-id-1", "copy": {}, "photo_sha256": "../../etc/passwd"},
     "bad_photo_sha256"),
    ({"client_id": "valid-id-1", "copy": {}, "contest_id": 7}, "bad_contest_id"),
])
def test_invalid_requests(env: Env, body: dict[str, Any], rule: str) -> None:
    r = env.client.post(SUBS, json=body, headers=env.h("ana"))
    assert r.status_code == 422 and r.json()["reason"] == rule, r.text


def test_unknown_contest_and_photo(env: Env) -> None:
    copy = copy_of(env.acta(i=5))
    r = submit(env, "ana", "unk-contest", copy, contest_id="no-such-contest")
    assert r.status_code == 422 and r.json()["reason"] == "unknown_contest"
    r = submit(env, "ana", "unk-photo-1", copy, photo_sha256="ab" * 32)
    assert r.status_code == 422 and r.json()["reason"] == "unknown_photo"


# -- reconciliation: the PVT logic itself ----------------------------------------------------
def _expected(env: Env, copy: dict[str, Any]) -> dict[str, Any]:
    contest = env.snapshot.contest
    official = env.store.load_actas(env.snapshot.snapshot_id)
    parsed = parse_observer_records([{**copy, "observer_id": "x"}], contest)
    res = reconcile(parsed.frame, official, contest)
    return res.copies.row(0, named=True)


@pytest.mark.parametrize("kind", ["exact", "swapped", "transposed", "figures", "sum",
                                  "above_electors"])
def test_reconciliation_matches_pvt_reconcile(env: Env, kind: str) -> None:
    frame = env.frame.filter(pl.col("area1_code").str.starts_with("01")
                             & (pl.col("status") == "counted")
                             & (pl.col("v_castillo") != pl.col("v_fujimori"))
                             & (pl.col("v_castillo") > 20))
    row = frame.row(7, named=True)
    a, b = row["v_castillo"], row["v_fujimori"]
    digits = str(a)
    swapped_digits = int(digits[::-1]) if digits[::-1][0] != "0" and digits[::-1] != digits \
        else a + 9
    changes = {"exact": {}, "swapped": {"v_castillo": b, "v_fujimori": a},
               "transposed": {"v_castillo": swapped_digits},
               "figures": {"v_castillo": a - 5, "v_fujimori": b + 5},
               "sum": {"v_castillo": a + 3},
               "above_electors": {"cast": row["electors"] + 50,
                                  "v_castillo": a + row["electors"] + 50 - row["cast"]}}[kind]
    copy = copy_of(row, **changes)
    r = submit(env, "ana", f"recon-{kind}", copy)
    assert r.status_code == 201, r.text
    rec = r.json()["submission"]["reconciliation"]
    want = _expected(env, copy)
    assert rec["status"] == "reconciled"
    assert rec["snapshot_id"] == env.snapshot.snapshot_id
    assert rec["category"] == want["category"]
    assert rec["net_change"] == want["net_change"]
    assert rec["likely_wrong"] == (want["likely_wrong"] or None)
    assert rec["differing_fields"] == [f for f in want["differing_fields"].split(";") if f]
    leader, runner, margin = pick_pair(env.store.load_actas(env.snapshot.snapshot_id),
                                       env.snapshot.contest)
    assert rec["pair"] == [leader, runner] and rec["margin"] == margin
    if kind == "exact":
        assert rec["category"] == "exact" and rec["net_change"] == 0
    if kind == "swapped":
        assert rec["category"] == "candidates_swapped"


def test_acta_ids_are_normalised_and_unknown_actas_reported(env: Env) -> None:
    row = env.acta(i=6)
    short = row["acta_id"].lstrip("0")
    r = submit(env, "ana", "norm-0001", copy_of(row, acta_id=short))
    assert r.status_code == 201
    assert r.json()["submission"]["acta_id"] == row["acta_id"]
    # an acta that does not exist: only an admin (no scope) can file it; the PVT says so
    r = submit(env, "root", "unknown-mesa-1", copy_of(row, acta_id="999999"))
    assert r.status_code == 201
    assert r.json()["submission"]["reconciliation"]["category"] == "unknown_mesa"


def test_pending_without_an_official_snapshot(tmp_path: Path, pg_server, data_dir) -> None:
    with server_env("duckdb", tmp_path, pg_server, data_dir, ingest=False) as e:
        r = submit(e, "root", "no-contest-1", copy_of(e.acta()))
        assert r.status_code == 422 and r.json()["reason"] == "no_contest"
        e.store._put_contest(e.snapshot.contest)  # the contest is known, no actas yet
        r = submit(e, "root", "pending-001", copy_of(e.acta()))
        assert r.status_code == 201
        rec = r.json()["submission"]["reconciliation"]
        assert rec["status"] == "pending" and rec["category"] is None
        # an area scope cannot be checked without the official actas: refused
        r = submit(e, "ana", "pending-002", copy_of(e.acta()))
        assert r.status_code == 403 and r.json()["reason"] == "out_of_scope"
        listed = e.client.get(SUBS, params={"category": "pending"}, headers=e.h("root"))
        assert listed.json()["total"] == 1


# -- scopes and visibility -------------------------------------------------------------------
def test_scopes_on_submit(env: Env) -> None:
    inside, outside = env.acta(i=8), env.acta(inside=False, i=0)
    r = submit(env, "ana", "scope-out-1", copy_of(outside))
    assert r.status_code == 403 and r.json()["reason"] == "out_of_scope"
    assert submit(env, "ana", "scope-in-01", copy_of(inside)).status_code == 201
    assert submit(env, "coord", "scope-in-02", copy_of(inside)).status_code == 201
    assert submit(env, "coord", "scope-out-2", copy_of(outside)).status_code == 403
    # ben's scope is one acta, given by value: "123" covers "000123"
    assert submit(env, "ben", "scope-ben-1",
                  copy_of(outside, acta_id=outside["acta_id"].lstrip("0"))).status_code == 201
    assert submit(env, "ben", "scope-ben-2", copy_of(inside)).status_code == 403
    assert submit(env, "root", "scope-root1", copy_of(outside)).status_code == 201


def test_visibility_by_role(env: Env) -> None:
    outside = env.acta(inside=False, i=0)
    a = submit(env, "ana", "vis-ana-01", copy_of(env.acta(i=9))).json()["submission"]
    b = submit(env, "ben", "vis-ben-01", copy_of(outside)).json()["submission"]

    def ids(who: str, **params: Any) -> set[str]:
        r = env.client.get(SUBS, params={"limit": 500, **params}, headers=env.h(who))
        assert r.status_code == 200, r.text
        return {s["id"] for s in r.json()["submissions"]}

    ana, ben, coord, root = ids("ana"), ids("ben"), ids("coord"), ids("root")
    assert a["id"] in ana and b["id"] not in ana
    assert b["id"] in ben and a["id"] not in ben
    assert a["id"] in coord and b["id"] not in coord  # ben's acta is outside coord's area
    assert {a["id"], b["id"]} <= root
    assert ana <= root and ben <= root and coord <= root
    # everyone the observer sees is theirs
    for who in ("ana", "ben"):
        r = env.client.get(SUBS, params={"limit": 500}, headers=env.h(who)).json()
        assert {s["account"] for s in r["submissions"]} == {env.accounts[who].account_id}
    # one submission: 404, not 403, when it is not visible
    assert env.client.get(f"{SUBS}/{b['id']}", headers=env.h("ana")).status_code == 404
    assert env.client.get(f"{SUBS}/{b['id']}", headers=env.h("coord")).status_code == 404
    assert env.client.get(f"{SUBS}/{a['id']}", headers=env.h("coord")).status_code == 200
    assert env.client.get(f"{SUBS}/{b['id']}", headers=env.h("root")).json()[
        "submission"] == b
    # filters
    assert ids("root", acta=outside["acta_id"].lstrip("0")) >= {b["id"]}
    assert a["id"] not in ids("root", acta=outside["acta_id"])
    cat = a["reconciliation"]["category"]
    assert a["id"] in ids("root", category=cat) and a["id"] not in ids(
        "root", category="figures_differ" if cat != "figures_differ" else "exact")
    assert env.client.get(SUBS, params={"category": "nonsense"},
                          headers=env.h("root")).status_code == 422


def test_sql_scope_filter_agrees_with_python(env: Env) -> None:
    """The coordinator's SQL filter and the per-row check are the same rule, for every
    kind of scope entry."""
    rows, _ = env.repo.list_submissions(env.repo.authenticate(env.tokens["root"]), limit=500)
    assert rows
    sample = rows[0]
    place = env.frame.filter(pl.col("acta_id") == sample["acta_id"])["polling_place"][0]
    scopes = [Scope(), Scope(actas=(sample["acta_id"].lstrip("0"),)),
              Scope(areas=("01",)), Scope(areas=(sample["area3_code"] or "zz",)),
              Scope(places=(place.lower(),)),
              Scope(places=(f"{sample['area2_code']}:{place}",)),
              Scope(places=(f"99:{place}",))]
    for k, scope in enumerate(scopes):
        acc = env.repo.create_account(f"scopecheck{k}", "coordinator", scope)
        tok, _ = env.repo.issue_token(acc.account_id)
        p = env.repo.authenticate(tok)
        seen, _ = env.repo.list_submissions(p, limit=500)
        want = {r["submission_id"] for r in rows if env.repo.can_see(p, r)}
        assert {r["submission_id"] for r in seen} == want, scope


def test_pagination(env: Env) -> None:
    for k in range(5):
        submit(env, "ana", f"page-{k:05d}", copy_of(env.acta(i=20 + k)))
    first = env.client.get(SUBS, params={"limit": 2}, headers=env.h("ana")).json()
    assert len(first["submissions"]) == 2 and first["total"] >= 5 and first["next"]
    second = env.client.get(first["next"], headers=env.h("ana")).json()
    assert not {s["id"] for s in first["submissions"]} & {s["id"] for s in second["submissions"]}
    seqs = [s["ledger"]["seq"] for s in first["submissions"] + second["submissions"]]
    assert seqs == sorted(seqs, reverse=True)  # newest first


# -- photos ----------------------------------------------------------------------------------
def test_photos_content_addressed(env: Env) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"jpeg-body" * 50
    webp = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"w" * 64
    for data, ctype in ((PNG, "image/png"), (jpeg, "image/jpeg"), (webp, "image/webp")):
        r = env.client.post("/api/v1/observer/photos", content=data,
                            headers={**env.h("ana"), "Content-Type": ctype})
        assert r.status_code in (200, 201), r.text
        assert r.json() == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                            "media_type": ctype}
        again = env.client.post("/api/v1/observer/photos", content=data,
                                headers={**env.h("ben"), "Content-Type": ctype})
        assert again.status_code == 200 and again.json() == r.json()
    sha = hashlib.sha256(PNG).hexdigest()
    s = submit(env, "ana", "photo-sub-1", copy_of(env.acta(i=30)), photo_sha256=sha)
    assert s.status_code == 201
    sub = s.json()["submission"]
    assert sub["photo_sha256"] == sha and sub["copy"]["image_sha256"] == sha
    got = env.client.get(f"/api/v1/observer/photos/{sha}", headers=env.h("coord"))
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert "sandbox" in got.headers["content-security-policy"]
    jsha = hashlib.sha256(jpeg).hexdigest()  # uploaded by ana, in no submission
    assert env.client.get(f"/api/v1/observer/photos/{jsha}",
                          headers=env.h("ana")).status_code == 200
    assert env.client.get(f"/api/v1/observer/photos/{jsha}",
                          headers=env.h("coord")).status_code == 404
    assert env.client.get(f"/api/v1/observer/photos/{jsha}",
                          headers=env.h("root")).status_code == 200
    mismatch = submit(env, "ana", "photo-sub-2", copy_of(env.acta(i=31), image_sha256="cd" * 32),
                      photo_sha256=sha)
    assert mismatch.status_code == 422 and mismatch.json()["reason"] == "photo_mismatch"


@pytest.mark.parametrize(("data", "ctype", "status", "reason"), [
    (PNG, "image/jpeg", 415, "content_mismatch"),
    (b"GIF89a" + b"x" * 40, "image/gif", 415, "unsupported_media_type"),
    (b"<svg onload=alert(1)>", "image/png", 415, "content_mismatch"),
    (b"", "image/png", 400, "empty_body"),
    (PNG, "application/octet-stream", 415, "unsupported_media_type"),
])
def test_photo_type_checked_by_magic_bytes(env: Env, data: bytes, ctype: str, status: int,
                                           reason: str) -> None:
    r = env.client.post("/api/v1/observer/photos", content=data,
                        headers={**env.h("ana"), "Content-Type": ctype})
    assert r.status_code == status and r.json()["reason"] == reason


def test_photo_size_limit(env: Env) -> None:
    limit = env.app.state.observers.config.photo_max_bytes
    big = b"\xff\xd8\xff" + b"\x00" * limit
    r = env.client.post("/api/v1/observer/photos", content=big,
                        headers={**env.h("ana"), "Content-Type": "image/jpeg"})
    assert r.status_code == 413 and r.json()["reason"] == "too_large"


# -- the tamper-evident log ------------------------------------------------------------------
def test_chain_checkpoint_and_proofs(env: Env) -> None:
    r = submit(env, "ana", "proof-00001", copy_of(env.acta(i=40)))
    sub = r.json()["submission"]
    before = env.client.get(f"{SUBS}/{sub['id']}/proof", headers=env.h("ana"))
    assert before.status_code in (200, 404)  # an earlier checkpoint may not cover it
    assert env.client.post("/api/v1/admin/checkpoint", headers=env.h("ana")).status_code == 403
    cp = env.client.post("/api/v1/admin/checkpoint", headers=env.h("root"))
    assert cp.status_code == 201, cp.text
    again = env.client.post("/api/v1/admin/checkpoint", headers=env.h("root"))
    assert again.status_code == 200 and again.json()["checkpoint"] is None  # nothing new
    published = env.client.get("/api/v1/ledger/submission-checkpoints").json()
    roots = {c["merkle_root"] for c in published["checkpoints"]}
    proof = env.client.get(f"{SUBS}/{sub['id']}/proof", headers=env.h("ana"))
    assert proof.status_code == 200, proof.text
    p = SubmissionProof.from_dict(proof.json())
    assert p.merkle_root in roots and verify_submission_proof(p, p.merkle_root)
    entry = json.loads(p.entry)
    assert entry["payload_sha256"] == sub["payload_sha256"]
    assert entry["account"] == sub["account"] and entry["acta_id"] == sub["acta_id"]
    assert p.entry_hash == sub["ledger"]["entry_hash"]
    forged = json.loads(p.entry)
    forged["acta_id"] = "000002"
    assert not verify_submission_proof(
        SubmissionProof(**{**p.to_dict(), "entry": ledger.canonical_json(forged)}))
    assert not verify_submission_proof(p, "00" * 32)
    assert env.client.get(f"{SUBS}/{sub['id']}/proof", headers=env.h("ben")).status_code == 404
    report = verify_log(env.store)
    assert report.ok, report.problems
    assert report.checkpoints and report.checkpoints[-1]["merkle_root"] in roots


def _sql(env: Env, query: str, params: list[Any] | None = None) -> None:
    with env.repo.db._use(write=True) as run:
        run(query, params or [])


def test_verify_log_names_altered_submissions(fresh: Env) -> None:
    env = fresh
    subs = [submit(env, "ana", f"tamper-{k:04d}", copy_of(env.acta(i=k))).json()["submission"]
            for k in range(5)]
    photo = env.client.post("/api/v1/observer/photos", content=PNG,
                            headers={**env.h("ana"), "Content-Type": "image/png"}).json()
    assert env.repo.checkpoint() is not None
    assert verify_log(env.store).ok
    victim, moved, gone, cat = subs[0]["id"], subs[1]["id"], subs[2]["id"], subs[3]["id"]
    _sql(env, "UPDATE submissions SET payload = replace(payload, '\"cast\":', '\"cast\":1') "
         "WHERE submission_id = ?", [victim])
    _sql(env, "UPDATE submissions SET acta_id = '000002' WHERE submission_id = ?", [moved])
    _sql(env, "UPDATE submissions SET category = 'figures_differ', reconciliation = '{}' "
         "WHERE submission_id = ?", [cat])
    _sql(env, "DELETE FROM submissions WHERE submission_id = ?", [gone])
    _sql(env, "UPDATE photos SET bytes = ? WHERE sha256 = ?", [PNG + b"!", photo["sha256"]])
    report = verify_log(env.store)
    assert not report.ok
    named = {(p.kind, p.key, p.field) for p in report.problems}
    assert ("submission_altered", victim, "payload") in named
    assert ("submission_altered", moved, "acta_id") in named
    assert ("submission_altered", cat, "category") in named
    assert ("submission_altered", cat, "reconciliation") in named
    assert ("submission_missing", gone, None) in named
    assert ("photo_altered", photo["sha256"], None) in named
    assert not any(p.key == subs[4]["id"] for p in report.problems)  # the untouched one


def test_checkpoint_and_entry_tampering_is_found(fresh: Env) -> None:
    env = fresh
    for k in range(3):
        submit(env, "ana", f"cp-tamper-{k}", copy_of(env.acta(i=k)))
    env.repo.checkpoint()
    _sql(env, "UPDATE ledger_entries SET entry = replace(entry, '\"tree_size\":3', "
         "'\"tree_size\":2') WHERE entry_type = 'checkpoint'")
    kinds = {p.kind for p in verify_log(env.store).problems}
    assert {"entry_altered", "checkpoint_altered"} <= kinds


def test_cli_prove_submission_and_verify_proof(tmp_path: Path, pg_server, data_dir) -> None:
    from escrutinio.cli import app as cli

    with server_env("duckdb", tmp_path, pg_server, data_dir) as e:
        sid = submit(e, "ana", "cli-proof-1", copy_of(e.acta())).json()["submission"]["id"]
        url = e.url
    runner = CliRunner()
    r = runner.invoke(cli, ["--db", url, "prove", "--submission", sid, "--json"])
    assert r.exit_code == 3 and "checkpoint" in r.stdout  # not under a checkpoint yet
    r = runner.invoke(cli, ["--db", url, "log-sync", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["checkpoint"]["tree_size"] == 1
    r = runner.invoke(cli, ["--db", url, "prove", "--submission", sid, "--json"])
    assert r.exit_code == 0, r.stdout
    proof = tmp_path / "proof.json"
    proof.write_text(r.stdout)
    root = json.loads(r.stdout)["merkle_root"]
    r = runner.invoke(cli, ["--db", url, "verify-proof", str(proof), "--root", root, "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["valid"] is True
    r = runner.invoke(cli, ["verify-proof", str(proof), "--root", "11" * 32, "--json"])
    assert r.exit_code == 3 and json.loads(r.stdout)["valid"] is False
    r = runner.invoke(cli, ["--db", url, "verify-log", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["checkpoints"][0]["tree_size"] == 1


# -- the coordinator pages -------------------------------------------------------------------
def _login(env: Env, who: str, prefix: str = "") -> None:
    form = env.client.get(f"{prefix}/coordinator/login")
    assert form.status_code == 200
    csrf = form.cookies.get("esc_csrf") or env.client.cookies.get("esc_csrf")
    r = env.client.post(f"{prefix}/coordinator/login",
                        data={"token": env.tokens[who], "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()


def test_coordinator_pages(env: Env) -> None:
    a = submit(env, "ana", "page-sub-01", copy_of(env.acta(i=50), v_castillo=1)).json()[
        "submission"]
    b = submit(env, "ben", "page-sub-02", copy_of(env.acta(inside=False))).json()["submission"]
    env.client.cookies.clear()
    assert env.client.get("/coordinator/", follow_redirects=False).headers[
        "location"] == "/coordinator/login"
    _login(env, "coord")
    page = env.client.get("/coordinator/")
    assert page.status_code == 200 and a["id"] in page.text and b["id"] not in page.text
    assert "no-store" in page.headers["cache-control"]
    detail = env.client.get(f"/coordinator/submissions/{a['id']}")
    assert detail.status_code == 200 and a["acta_id"] in detail.text
    assert env.client.get(f"/coordinator/submissions/{b['id']}").status_code == 404
    en = env.client.get("/en/coordinator/", params={"acta": a["acta_id"]})
    assert en.status_code == 200 and "<h1>Observers" in en.text and a["id"] in en.text
    # logout needs the session's CSRF token
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert env.client.post("/coordinator/logout", data={"csrf": "nope"},
                           follow_redirects=False).status_code == 403
    out = env.client.post("/coordinator/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert env.client.get("/coordinator/", follow_redirects=False).status_code == 303
    env.client.cookies.clear()


# -- the database going away -----------------------------------------------------------------
def test_database_down_is_503_and_a_retry_stores_once(env: Env) -> None:
    if env.kind != "postgres":
        pytest.skip("the observer API's own connections exist on PostgreSQL only")
    import re
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    pool = env.repo.db._pool
    assert pool is not None
    saved = pool.dsn
    copy = copy_of(env.acta(i=60))
    pool.close()
    pool.dsn = re.sub(r":\d+/", f":{port}/", saved, count=1)
    try:
        r = submit(env, "ana", "db-down-0001", copy)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] and r.json()["error"] == "DatabaseUnavailable"
    finally:
        pool.dsn = saved
    r = submit(env, "ana", "db-down-0001", copy)  # the client retries: stored now, once
    assert r.status_code == 201
    assert submit(env, "ana", "db-down-0001", copy).status_code == 200
