"""Tamper-evident history: hash chain, Merkle roots, inclusion proofs, on both stores."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from escrutinio.commands import common
from escrutinio.commands import ledger as ledger_cmd
from escrutinio.domain import ACTA_COLUMNS
from escrutinio.sources.onpe_files import parse_ronderos
from escrutinio.store import ledger
from escrutinio.store.base import Store
from escrutinio.store.ledger import (
    InclusionProof,
    append_new,
    encode_frame,
    encode_row,
    leaf_hash,
    merkle_levels,
    merkle_root,
    node_hash,
    prove,
    verify_log,
    verify_proof,
)

FINAL = "peru-2021-runoff/actas/actas_electorales_ronderos.pe.csv.gz"


@pytest.fixture(scope="module")
def final(data_dir: Path):
    return parse_ronderos(data_dir / FINAL, as_of="2021-06-17T00:00:00Z")


@pytest.fixture(scope="module")
def small(final):
    """3,001 real actas (odd, so the tree has carried-up nodes) as their own snapshot."""
    frame = final.frame.sort("acta_id").gather_every(29).head(3001)
    return dataclasses.replace(final, part="ledger-test", label="ledger-test", frame=frame,
                               rejected=final.rejected.head(0), findings=final.findings.head(0))


def _sql(store: Store, query: str, params: list[object] | None = None) -> None:
    ledger._exec(store, query, params or [])


# -- the tree itself ---------------------------------------------------------------------
def _rfc6962(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(_rfc6962(leaves[:k]), _rfc6962(leaves[k:]))


def test_merkle_root_is_rfc6962_and_every_path_verifies() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()
    for n in range(1, 40):
        leaves = [leaf_hash(f"row {i}") for i in range(n)]
        root = merkle_root(leaves)
        assert root == _rfc6962(leaves).hex()
        levels = merkle_levels(leaves)
        for i in range(n):
            path = ledger.audit_path(levels, i)
            assert ledger.root_from_path(leaves[i], i, n, path) == root
            if n > 1:  # the same path at another index, or for another leaf, fails
                assert ledger.root_from_path(leaves[i], (i + 1) % n, n, path) != root
                assert ledger.root_from_path(leaves[(i + 1) % n], i, n, path) != root


def test_vectorised_encoding_matches_the_documented_one() -> None:
    df = pl.DataFrame({"acta_id": ["000001", "a,b", "", None, "ñandú"],
                       "abroad": [True, False, None, True, False],
                       "v_1": [0, 12, None, -3, 7]})
    vec = encode_frame(df).to_list()
    assert vec == [encode_row(list(r)) for r in df.iter_rows()]
    assert vec[0] == "6:000001,4:true,1:0"
    assert vec[1] == "3:a,b,5:false,2:12"       # a comma inside a value is not ambiguous
    assert vec[2] == "0:,~,~"                   # empty string and NULL differ
    assert vec[4].startswith("7:ñandú")         # length in UTF-8 bytes
    assert ledger.leaf_hashes(df) == [leaf_hash(v) for v in vec]
    assert ledger.leaf_hashes(df.head(0)) == []
    assert ledger.leaf_hashes(df.select([])) == []


#: Merkle root of the 2021 runoff's final per-acta file (86,488 actas in acta_id order,
#: canonical columns), recorded with the row-by-row implementation (``encode_row`` and
#: one ``leaf_hash`` per acta) before leaf hashing was vectorised: the ledger's hashes
#: must never change (docs/store.md, format version 1)
FINAL_ROOT = "3a0d72f441e278b95ace5dcfbb47b3db85ff67d30fdec715e14a6c73f8d22314"


def test_bulk_leaf_hashes_are_the_row_by_row_ones(final, small) -> None:
    cols = [*ACTA_COLUMNS, *final.contest.candidate_columns]
    rows = small.frame.select(cols)
    assert rows.null_count().sum_horizontal().item() > 0  # NULL fields are exercised
    assert ledger.leaf_hashes(rows) == [leaf_hash(encode_row(list(r)))
                                        for r in rows.iter_rows()]
    leaves = ledger.leaf_hashes(final.frame.sort("acta_id").select(cols))
    assert merkle_root(leaves) == FINAL_ROOT
    assert merkle_levels(leaves)[-1][0].hex() == FINAL_ROOT


# -- on both stores ------------------------------------------------------------------------
def test_chain_is_idempotent_and_verifies(any_store: Store, small, final) -> None:
    any_store.put_snapshots([small])
    first = append_new(any_store)
    assert [e.ref for e in first] == [small.snapshot_id]
    assert first[0].prev_hash == ledger.GENESIS
    assert append_new(any_store) == []
    any_store.put_snapshots([final])
    second = append_new(any_store)
    assert [e.seq for e in second] == [2] and second[0].prev_hash == first[0].entry_hash
    report = verify_log(any_store)
    assert report.ok, report.problems
    assert report.n_entries == 2 and report.head_hash == second[0].entry_hash
    assert report.roots[final.snapshot_id] == second[0].entry["merkle_root"]
    assert second[0].entry["tree_size"] == 86_488
    # the same rows give the same root on either backend and from the parsed frame
    cols = second[0].entry["columns"]
    assert second[0].entry["merkle_root"] == merkle_root(
        ledger.leaf_hashes(final.frame.sort("acta_id").select(cols)))
    assert not verify_log(any_store, expected_head="ab" * 32).ok


def test_ingest_stores_and_logs_in_one_transaction(any_store_opener, small, final,
                                                    monkeypatch) -> None:
    """service.ingest logs a snapshot in the transaction that stores it: when logging
    fails, the snapshot is not stored either (and a retry stores and logs it)."""
    from escrutinio import service

    with any_store_opener() as store:
        service.ingest(store, [small])

        def broken(*args, **kwargs):
            raise RuntimeError("ledger failure")

        monkeypatch.setattr(ledger, "snapshot_entry", broken)
        with pytest.raises(RuntimeError, match="ledger failure"):
            service.ingest(store, [final])
        monkeypatch.undo()
        assert [s.snapshot_id for s in store.list_snapshots()] == [small.snapshot_id]
        assert [e.ref for e in ledger.entries(store)] == [small.snapshot_id]
        service.ingest(store, [final])
    with any_store_opener() as store:
        assert {e.ref for e in ledger.entries(store)} == {small.snapshot_id, final.snapshot_id}
        assert verify_log(store).ok


def test_ingest_hashes_the_parsed_rows_as_the_store_returns_them(any_store_opener, small,
                                                                  final, monkeypatch) -> None:
    """service.ingest hashes the leaves of a new per-acta snapshot from its parsed frame
    while the store writes it (ledger.parsed_rows), without reading the rows back: the
    keys, leaves, root and entry are the ones the ledger computes from the stored rows
    (log-sync, verify-log), on both stores; rows in another order give the same too."""
    from escrutinio import service

    shuffled = dataclasses.replace(small, part="ledger-test-shuffled",
                                   frame=small.frame.sample(fraction=1.0, shuffle=True, seed=7))
    assert not shuffled.frame["acta_id"].is_sorted()
    with any_store_opener() as store:
        def no_read_back(*args, **kwargs):
            raise AssertionError("the rows of a new per-acta snapshot were read back")

        monkeypatch.setattr(ledger, "snapshot_rows", no_read_back)
        service.ingest(store, [final, shuffled])
        monkeypatch.undo()
        logged = ledger.logged_snapshots(store)
        for snap in (final, shuffled):
            info = next(i for i in store.list_snapshots() if i.snapshot_id == snap.snapshot_id)
            stored = ledger.snapshot_rows(store, info)
            parsed = ledger.parsed_rows(snap)
            assert parsed is not None
            assert parsed.columns == stored.columns and parsed.keys == stored.keys
            assert parsed.leaves == stored.leaves
            assert logged[snap.snapshot_id].entry == ledger.snapshot_entry(store, info, stored)
        assert logged[final.snapshot_id].entry["merkle_root"] == FINAL_ROOT
        assert verify_log(store).ok
    # a snapshot with a duplicated acta id is left to the read-back
    twice = dataclasses.replace(small, frame=pl.concat([small.frame, small.frame.head(1)]))
    assert ledger.parsed_rows(twice) is None


def test_leaves_hashed_before_the_store_opens(any_store_opener, small, final,
                                              monkeypatch) -> None:
    """``escrutinio ingest`` starts hashing the leaves (service.LeavesAhead) before the
    store opens: the same entries as without it, no read-back of a new snapshot, and a
    snapshot the store already holds costs no wait (its hash is not needed)."""
    from escrutinio import service

    with any_store_opener() as store:
        service.ingest(store, [small])
        head = ledger.head(store)
    with service.LeavesAhead([small, final]) as ahead, any_store_opener() as store:
        assert set(ahead.futures) == {small.snapshot_id, final.snapshot_id}

        def no_read_back(*args, **kwargs):
            raise AssertionError("the rows of a new per-acta snapshot were read back")

        monkeypatch.setattr(ledger, "snapshot_rows", no_read_back)
        outcomes = service.ingest(store, [small, final], ahead=ahead)
        monkeypatch.undo()
        assert [o.created for o in outcomes] == [False, True]
        added = ledger.entries(store)[-1]
        assert added.prev_hash == head[1] and added.entry["merkle_root"] == FINAL_ROOT
        info = next(i for i in store.list_snapshots() if i.snapshot_id == final.snapshot_id)
        assert added.entry == ledger.snapshot_entry(store, info,
                                                    ledger.snapshot_rows(store, info))
        assert verify_log(store).ok
    with service.LeavesAhead([small, final]) as ahead, any_store_opener() as store:
        assert service.ingest(store, [small, final], ahead=ahead)[1].created is False
        assert len(ledger.entries(store)) == 2
    assert ahead._pool._shutdown


@pytest.mark.parametrize("keys", [
    [], [""], ["", ""], ["000001", "000002"], ["ñandú", "a b"], ['a"b'], ['a"b', "c"],
    ["c", '"'], ["a\\b"], ["a\x01"], ["\u2028"], ["a\x7f"], ["a, b", "c"]])
def test_keys_json_is_json_dumps(keys: list[str]) -> None:
    assert ledger._keys_json(keys) == json.dumps(keys, ensure_ascii=False)


def test_tampered_rows_are_named(any_store_opener, small) -> None:
    victim, gone = small.frame["acta_id"][17], small.frame["acta_id"][2000]
    sid = small.snapshot_id
    with any_store_opener() as store:
        store.put_snapshots([small])
        append_new(store)
        _sql(store, 'UPDATE actas SET "cast" = "cast" + 1 WHERE snapshot_id = ? '
             "AND acta_id = ?", [sid, victim])
        _sql(store, "DELETE FROM actas WHERE snapshot_id = ? AND acta_id = ?", [sid, gone])
    with any_store_opener() as store:  # a fresh process: nothing cached
        report = verify_log(store)
    assert not report.ok
    named = {(p.kind, p.key) for p in report.problems}
    assert named == {("row_altered", victim), ("row_missing", gone)}


def test_tampered_votes_array_and_entry_and_unlogged_snapshot(any_store_opener, small,
                                                              final) -> None:
    victim = small.frame["acta_id"][5]
    with any_store_opener() as store:
        store.put_snapshots([small])
        append_new(store)
        # a vote moved between candidates: same totals, different row
        _sql(store, "UPDATE actas SET votes = [votes[2], votes[1]] WHERE snapshot_id = ? "
             "AND acta_id = ?" if not ledger._is_pg(store) else
             "UPDATE actas SET votes = ARRAY[votes[2], votes[1]] WHERE snapshot_id = ? "
             "AND acta_id = ?", [small.snapshot_id, victim])
        _sql(store, "UPDATE ledger_entries SET entry = replace(entry, '\"label\":\"ledger-test\"'"
             ", '\"label\":\"forged\"') WHERE seq = 1")
        store.put_snapshots([final])  # stored, never appended to the chain
    with any_store_opener() as store:
        report = verify_log(store)
    kinds = {(p.kind, p.key) for p in report.problems}
    assert ("row_altered", victim) in kinds
    assert ("entry_altered", None) in kinds
    assert ("unlogged_snapshot", None) in kinds
    # the altered entry also disagrees with the snapshot it describes
    assert any(p.kind == "snapshot_altered" and p.field == "label" for p in report.problems)


def test_proofs_verify_and_forgeries_fail(any_store: Store, small) -> None:
    any_store.put_snapshots([small])
    [entry] = append_new(any_store)
    root = entry.entry["merkle_root"]
    for i in (0, 1, 1500, small.frame.height - 1):  # the last leaf is carried up
        key = small.frame.sort("acta_id")["acta_id"][i]
        proof = prove(any_store, small.snapshot_id, key)
        assert proof.leaf_index == i and proof.tree_size == small.frame.height
        assert verify_proof(proof, root)
        # survives JSON (what `escrutinio prove --json` prints)
        again = InclusionProof.from_dict(json.loads(json.dumps(proof.to_dict())))
        assert verify_proof(again, root)
    proof = prove(any_store, small.snapshot_id, small.frame["acta_id"][100])
    cast_at = proof.columns.index("cast")
    v1_at = proof.columns.index(small.contest.candidate_columns[0])
    forged_values = list(proof.values)
    forged_values[v1_at] = int(forged_values[v1_at]) + 1  # type: ignore[call-overload]
    forgeries = [
        dataclasses.replace(proof, values=forged_values),
        dataclasses.replace(proof, values=[*proof.values[:cast_at], None,
                                           *proof.values[cast_at + 1:]]),
        dataclasses.replace(proof, path=["00" * 32, *proof.path[1:]]),
        dataclasses.replace(proof, path=proof.path[:-1]),
        dataclasses.replace(proof, leaf_index=proof.leaf_index + 1),
        dataclasses.replace(proof, key=small.frame["acta_id"][101]),
    ]
    for forged in forgeries:
        assert not verify_proof(forged, root)
    assert not verify_proof(proof, "11" * 32)  # a root that was never published
    with pytest.raises(ledger.NotFoundError):
        prove(any_store, small.snapshot_id, "no-such-acta")


# -- CLI -------------------------------------------------------------------------------------
def test_cli_verify_log_and_prove(tmp_path: Path, small, any_store_opener) -> None:
    with any_store_opener() as store:
        store.put_snapshots([small])
        db = store.path  # type: ignore[attr-defined]  # a DuckDB path or a PostgreSQL URL
    app = typer.Typer()
    ledger_cmd.register(app)
    app.command("noop")(lambda: None)  # more than one command: typer keeps the names
    common.opts.db = str(db)
    runner = CliRunner()
    r = runner.invoke(app, ["verify-log", "--json"])
    assert r.exit_code == 3 and json.loads(r.stdout)["problems"][0]["kind"] == "unlogged_snapshot"
    r = runner.invoke(app, ["log-sync", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["appended"][0]["ref"] == small.snapshot_id
    r = runner.invoke(app, ["verify-log", "--json"])
    assert r.exit_code == 0, r.output
    head = json.loads(r.stdout)["head_hash"]
    acta = small.frame["acta_id"][42]
    r = runner.invoke(app, ["prove", acta, "--snapshot", small.snapshot_id[:10], "--json"])
    assert r.exit_code == 0, r.output
    proof = InclusionProof.from_dict(json.loads(r.stdout))
    assert proof.key == acta and verify_proof(proof)
    (tmp_path / "p.json").write_text(r.stdout, encoding="utf-8")
    r = runner.invoke(app, ["verify-proof", str(tmp_path / "p.json"), "--root",
                            proof.merkle_root, "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["valid"] is True
    r = runner.invoke(app, ["verify-proof", str(tmp_path / "p.json"), "--root", "22" * 32])
    assert r.exit_code == 3
    with any_store_opener() as store:
        store.con.execute("UPDATE actas SET blank = blank + 5 WHERE acta_id = "
                          + ("%s" if str(db).startswith("postgres") else "?"), [acta])
    r = runner.invoke(app, ["verify-log", "--head", head])
    assert r.exit_code == 3 and acta in r.output
    r = runner.invoke(app, ["prove", acta, "--snapshot", "latest"])
    assert r.exit_code == 3
