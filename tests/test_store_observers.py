"""The observer repository (store/observers_repo.py) on DuckDB and PostgreSQL: the same
calls give the same rows on both, including the one fragment that differs between them
(a list parameter in the visibility rule). The server's rules over it are tested in
tests/test_server_*.py; this is the store's contract alone, without an app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from escrutinio.errors import UnknownReferenceError
from escrutinio.store.base import Store
from escrutinio.store.ledger import submission_entry, verify_log
from escrutinio.store.observers_repo import (
    SUBMISSION_ROW,
    ObserverRepo,
    ValueNotAccepted,
    Visibility,
    open_observer_repo,
)

T0 = datetime(2026, 4, 12, 20, 0, tzinfo=UTC)


@pytest.fixture
def repo(any_store: Store) -> Iterator[ObserverRepo]:
    r = open_observer_repo(any_store, pool_size=2)
    try:
        yield r
    finally:
        r.close()


def _account(repo: ObserverRepo, acc_id: str, name: str, role: str = "observer") -> None:
    assert repo.insert_account([acc_id, name, role, json.dumps({}), T0, None])


def _row(n: int, account: str, *, acta: str, area: str, place: str | None = None,
         photo: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in SUBMISSION_ROW}
    row.update(submission_id=f"sub_{n:024x}", account_id=account, client_id=f"c-{n}",
               contest_id="pe-test", acta_id=acta, acta_key=acta, area1_code=area[:2],
               area2_code=area[:4], area3_code=area, place_key=place,
               received_at=T0 + timedelta(seconds=n), request_sha256="0" * 64,
               payload=json.dumps({"n": n}), payload_sha256="1" * 64, photo_sha256=photo,
               reconciliation="{}")
    return row


def test_accounts_tokens_and_sessions(repo: ObserverRepo) -> None:
    assert repo.backend_name in ("duckdb", "postgresql")
    repo.ping()
    _account(repo, "acc_0000000000000001", "ana")
    assert not repo.insert_account(["acc_0000000000000002", "ana", "observer", "{}", T0,
                                    None])  # the name is taken
    _account(repo, "acc_0000000000000003", "ben", "coordinator")
    assert [r[1] for r in repo.accounts()] == ["ana", "ben"]
    by_name, by_id = repo.account("ana"), repo.account("acc_0000000000000001")
    assert by_name == by_id and by_name is not None and by_name[2] == "observer"
    assert repo.account("nadie") is None

    repo.insert_token("t1", "acc_0000000000000001", "h1", T0, T0 + timedelta(days=1))
    assert repo.token_expiry("t1") == T0 + timedelta(days=1)
    joined = repo.token_with_account("t1")
    assert joined is not None and joined[0] == "h1" and joined[4] == "acc_0000000000000001"
    repo.touch_token("t1", T0 + timedelta(minutes=5))
    assert repo.tokens("acc_0000000000000001")[0][5] == T0 + timedelta(minutes=5)

    repo.insert_session("s1", "hs", "t1", "acc_0000000000000001", T0, T0 + timedelta(hours=1))
    sess = repo.session_with_token("s1")
    assert sess is not None and sess[3] == "t1" and sess[2] is None
    revoked = repo.revoke_token("t1", T0 + timedelta(minutes=9))
    assert revoked is not None and revoked[4] == T0 + timedelta(minutes=9)
    again = repo.revoke_token("t1", T0 + timedelta(hours=2))  # once: the first time stands
    assert again is not None and again[4] == T0 + timedelta(minutes=9)
    sess = repo.session_with_token("s1")
    assert sess is not None and sess[2] == T0 + timedelta(minutes=9)  # sessions end with it
    assert repo.revoke_token("nope", T0) is None

    repo.set_disabled("acc_0000000000000003", T0)
    ben = repo.account("ben")
    assert ben is not None and ben[5] == T0


def test_submissions_visibility_and_the_log(repo: ObserverRepo) -> None:
    _account(repo, "acc_a", "ana")
    _account(repo, "acc_b", "ben")
    assert repo.put_photo("f" * 64, "image/png", b"\x89PNG", "acc_a", T0)
    assert not repo.put_photo("f" * 64, "image/png", b"\x89PNG", "acc_b", T0)  # first stays
    assert repo.photo_meta("f" * 64) == ("image/png", 4, "acc_a")
    assert repo.photo_bytes("f" * 64) == b"\x89PNG"

    rows = [_row(1, "acc_a", acta="000101", area="150101", place="COLEGIO 1", photo="f" * 64),
            _row(2, "acc_a", acta="000102", area="150102"),
            _row(3, "acc_b", acta="000201", area="040101", place="COLEGIO 2")]
    stored = [repo.record_submission(r, submission_entry) for r in rows]
    assert all(new for _, new in stored)
    assert [s["ledger_seq"] for s, _ in stored] == [1, 2, 3]
    # the same (account, client id) again: the stored row, not a second one
    same, new = repo.record_submission({**rows[0], "submission_id": "sub_" + "9" * 24},
                                       submission_entry)
    assert not new and same["submission_id"] == rows[0]["submission_id"]
    assert same["entry_hash"] == stored[0][0]["entry_hash"]
    assert repo.submission_by_key("acc_b", "c-3") == repo.submission(rows[2]["submission_id"])

    def ids(v: Visibility, **kw: Any) -> list[int]:
        got, total = repo.list_submissions(v, **kw)
        assert total == len(got)
        return [int(s["submission_id"][4:], 16) for s in got]

    assert ids(Visibility("acc_z", everything=True)) == [3, 2, 1]  # newest first
    assert ids(Visibility("acc_a")) == [2, 1]
    # the list parameter (ANY(?) on PostgreSQL, list_contains on DuckDB)
    assert ids(Visibility("acc_z", acta_keys=("000201", "000102"))) == [3, 2]
    assert ids(Visibility("acc_z", area_prefixes=("04",))) == [3]
    assert ids(Visibility("acc_z", places=(("15", "COLEGIO 1"), (None, "COLEGIO 2")))) == [3, 1]
    assert ids(Visibility("acc_z", places=(("04", "COLEGIO 1"),))) == []
    assert ids(Visibility("acc_a"), acta_key="000101") == [1]
    assert ids(Visibility("acc_z", everything=True), category="pending") == [3, 2, 1]
    assert ids(Visibility("acc_z", everything=True), category="coincide") == []
    assert ids(Visibility("acc_z", everything=True), account="acc_b", contest="pe-test") == [3]
    page, total = repo.list_submissions(Visibility("acc_z", everything=True), limit=1,
                                        offset=1)
    assert total == 3 and [p["client_id"] for p in page] == ["c-2"]
    assert repo.photo_in_visible_submission("f" * 64, Visibility("acc_a"))
    assert not repo.photo_in_visible_submission("f" * 64, Visibility("acc_b"))

    assert repo.head() == (3, stored[2][0]["entry_hash"])
    with pytest.raises(Exception, match="checkpoint"):
        repo.prove(rows[0]["submission_id"])
    cp = repo.checkpoint()
    assert cp is not None and cp.seq == 4 and repo.checkpoint() is None  # nothing new
    assert [c["tree_size"] for c in repo.checkpoints()] == [3]
    proof = repo.prove(rows[1]["submission_id"])
    assert (proof.leaf_index, proof.tree_size, proof.checkpoint_seq) == (1, 3, 4)
    with pytest.raises(UnknownReferenceError):
        repo.prove("sub_" + "e" * 24)


def test_official_side_and_refused_values(any_store: Store, repo: ObserverRepo) -> None:
    assert repo.default_contest() is None
    assert repo.contest("pe-test") is None
    assert repo.latest_actas_snapshot("pe-test") is None
    assert verify_log(any_store).ok
    if repo.backend_name == "postgresql":
        # PostgreSQL refuses NUL in text: said without the database's words
        with pytest.raises(ValueNotAccepted) as err:
            repo.account("a\x00b")
        assert "PostgreSQL" not in str(err.value) and "NUL" not in str(err.value)
