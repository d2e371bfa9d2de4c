"""Tamper-evident history: ``escrutinio verify-log``, ``prove`` (an acta, or
``--submission ID``), ``verify-proof`` (either kind) and ``log-sync``. Presenters only: the
work is in :mod:`escrutinio.store.ledger`.

Exit codes: 0 all good; 3 the log, a row or a proof does not verify; 1 other errors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from escrutinio.commands.common import T, emit_json, err, fail, opts, out
from escrutinio.errors import BadOptionError, EscrutinioError
from escrutinio.sources.sanitize import load_json
from escrutinio.store import is_postgres_url, open_store
from escrutinio.store.base import Store
from escrutinio.store.ledger import (
    SUBMISSION_PROOF_FORMAT,
    InclusionProof,
    LedgerError,
    SubmissionProof,
    append_checkpoint,
    append_new,
    prove,
    prove_submission,
    verify_log,
    verify_proof,
    verify_submission_proof,
)

TAMPERED = LedgerError.exit_code


def _store(read_only: bool) -> Store:
    if read_only and not is_postgres_url(opts.db) and not Path(opts.db).exists():
        raise EscrutinioError(
            f"no existe el almacén {opts.db}; ejecute 'escrutinio ingest' primero",
            f"store {opts.db} does not exist; run 'escrutinio ingest' first")
    return open_store(opts.db, read_only=read_only)


def _hex64(value: str | None, option: str) -> None:
    """A published hash: 64 hexadecimal digits (SHA-256)."""
    if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value.strip()):
        raise BadOptionError(option, value, "se esperan 64 dígitos hexadecimales (SHA-256)",
                             "expected 64 hexadecimal digits (SHA-256)")


def verify_log_cmd(
    head: Annotated[str | None, typer.Option(
        help="cabeza publicada de la cadena / published chain head (hex)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verificar la cadena y cada fila / recompute the hash chain and every Merkle root."""
    try:
        _hex64(head, "--head")
        with _store(read_only=True) as store:
            report = verify_log(store, expected_head=head)
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json(report.to_dict())
    elif report.ok:
        out.print(T(f"[green]Cadena íntegra[/]: {report.n_entries} entradas, cabeza "
                    f"{report.head_hash}",
                    f"[green]Log intact[/]: {report.n_entries} entries, head "
                    f"{report.head_hash}"))
    else:
        table = Table(title=T(f"{len(report.problems)} problemas", f"{len(report.problems)} "
                              "problems"))
        for col in (T("tipo", "kind"), T("entrada", "entry"), T("instantánea", "snapshot"),
                    T("fila", "row"), T("detalle", "detail")):
            table.add_column(col)
        for p in report.problems:
            table.add_row(p.kind, "" if p.seq is None else str(p.seq),
                          (p.snapshot_id or "")[:12], escape(p.key or ""),
                          escape(T(p.message_es, p.message_en)))
        out.print(table)
    if not report.ok:
        raise typer.Exit(TAMPERED)


def prove_cmd(
    acta: Annotated[str | None, typer.Argument(
        help="id del acta (o nivel:código de una unidad) / acta id (or level:unit_code)")]
    = None,
    snapshot: Annotated[str, typer.Option(help="instantánea / snapshot ref")] = "latest",
    submission: Annotated[str | None, typer.Option(
        "--submission", help="id de un envío de observador (sub_...) / an observer "
        "submission id")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Prueba de inclusión de un acta o un envío / inclusion proof of an acta in a logged
    root, or of a submission under a checkpoint."""
    if (acta is None) == (submission is None):
        fail(EscrutinioError("indique un acta o --submission ID (uno de los dos)",
                             "give an acta or --submission ID (one of them)"), as_json)
        return
    if submission is not None:
        _prove_submission(submission, as_json)
        return
    assert acta is not None
    try:
        with _store(read_only=True) as store:
            info = store.snapshot(snapshot)
            proof = prove(store, info.snapshot_id, acta)
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json(proof.to_dict())
        return
    out.print(T(f"Acta {escape(acta)} en la instantánea {info.short_id} ({escape(info.label)})",
                f"Acta {escape(acta)} in snapshot {info.short_id} ({escape(info.label)})"))
    out.print(T(f"  raíz de Merkle {proof.merkle_root} (entrada {proof.entry_seq})",
                f"  Merkle root {proof.merkle_root} (entry {proof.entry_seq})"))
    out.print(T(f"  hoja {proof.leaf_index} de {proof.tree_size}; camino de "
                f"{len(proof.path)} hashes (use --json para guardarlo)",
                f"  leaf {proof.leaf_index} of {proof.tree_size}; path of {len(proof.path)} "
                "hashes (use --json to save it)"))


def _prove_submission(submission_id: str, as_json: bool) -> None:
    try:
        with _store(read_only=True) as store:
            sp = prove_submission(store, submission_id)
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json(sp.to_dict())
        return
    out.print(T(f"Envío {escape(submission_id)}: entrada {sp.entry_seq} de la cadena",
                f"Submission {escape(submission_id)}: chain entry {sp.entry_seq}"))
    out.print(T(f"  raíz de Merkle {sp.merkle_root} (punto de control {sp.checkpoint_seq}, "
                f"{sp.tree_size} envíos)",
                f"  Merkle root {sp.merkle_root} (checkpoint {sp.checkpoint_seq}, "
                f"{sp.tree_size} submissions)"))
    out.print(T(f"  hoja {sp.leaf_index}; camino de {len(sp.path)} hashes (use --json para "
                "guardarlo)", f"  leaf {sp.leaf_index}; path of {len(sp.path)} hashes (use "
                "--json to save it)"))


def verify_proof_cmd(
    proof_file: Annotated[Path, typer.Argument(help="prueba JSON / proof JSON")],
    root: Annotated[str | None, typer.Option(
        help="raíz publicada / published root (default: the one in the proof)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verificar una prueba sin el almacén / check a proof without the store."""
    try:
        _hex64(root, "--root")
    except EscrutinioError as exc:
        fail(exc, as_json)
    try:
        data = load_json(proof_file.read_bytes())
        if data.get("format") == SUBMISSION_PROOF_FORMAT:
            sproof = SubmissionProof.from_dict(data)
            valid = verify_submission_proof(sproof, root)
            key, ref, used = sproof.submission_id, None, root or sproof.merkle_root
        else:
            proof = InclusionProof.from_dict(data)
            valid = verify_proof(proof, root)
            key, ref, used = proof.key, proof.snapshot_id, root or proof.merkle_root
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        fail(EscrutinioError(f"prueba ilegible {proof_file}: {exc}",
                             f"unreadable proof {proof_file}: {exc}"), as_json)
        return
    if as_json:
        emit_json({"valid": valid, "key": key, "snapshot_id": ref, "root": used})
    elif valid:
        out.print(T(f"[green]Válida[/]: {escape(key)} está en la raíz {used}",
                    f"[green]Valid[/]: {escape(key)} is in root {used}"))
    else:
        err.print(T(f"[bold red]Inválida[/]: {escape(key)} no se prueba en la raíz {used}",
                    f"[bold red]Invalid[/]: {escape(key)} does not prove into root "
                    f"{used}"))
    if not valid:
        raise typer.Exit(TAMPERED)


def log_sync_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Añadir a la cadena las instantáneas nuevas y un punto de control de los envíos /
    append new snapshots, and a checkpoint of the observers' submissions, to the chain."""
    try:
        with _store(read_only=False) as store:
            added = append_new(store)
            cp = append_checkpoint(store)
    except EscrutinioError as exc:
        fail(exc, as_json)
        return
    if as_json:
        emit_json({"appended": [{"seq": e.seq, "ref": e.ref, "entry_hash": e.entry_hash,
                                 "merkle_root": e.entry.get("merkle_root")} for e in added],
                   "checkpoint": None if cp is None else {
                       "seq": cp.seq, "entry_hash": cp.entry_hash,
                       "tree_size": cp.entry.get("tree_size"),
                       "merkle_root": cp.entry.get("merkle_root")}})
        return
    out.print(T(f"{len(added)} entradas nuevas", f"{len(added)} new entries"))
    for e in added:
        out.print(f"  {e.seq}  {e.ref[:12]}  {e.entry.get('merkle_root')}")
    if cp is not None:
        out.print(T(f"Punto de control {cp.seq}: {cp.entry.get('tree_size')} envíos, raíz "
                    f"{cp.entry.get('merkle_root')}",
                    f"Checkpoint {cp.seq}: {cp.entry.get('tree_size')} submissions, root "
                    f"{cp.entry.get('merkle_root')}"))


def register(app: typer.Typer) -> None:
    app.command("verify-log")(verify_log_cmd)
    app.command("prove")(prove_cmd)
    app.command("verify-proof")(verify_proof_cmd)
    app.command("log-sync")(log_sync_cmd)
