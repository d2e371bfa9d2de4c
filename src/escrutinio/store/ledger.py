"""Tamper-evident history: a hash chain of accepted snapshots with a Merkle root each.

Formats (also in docs/store.md; version 1):

* **Row (leaf) encoding.** Every canonical column of the row, in canonical order
  (``ACTA_COLUMNS`` then the candidate columns ``v_<code>`` in the contest's candidate
  order; ``UNIT_COLUMNS`` then candidates for unit snapshots, then ``vote_type`` when the
  snapshot publishes its units in one row per vote type). Each field is ``~`` when
  NULL, otherwise ``<n>:<text>`` where ``<text>`` is the value as text (integers in
  decimal, booleans ``true``/``false``, strings as they are) and ``<n>`` its length in
  UTF-8 bytes; fields are joined by ``,``. The length prefix makes the encoding
  unambiguous whatever the strings hold. Leaf hash = SHA-256(0x00 || UTF-8 bytes).
* **Merkle tree** (RFC 6962): node = SHA-256(0x01 || left || right); leaves in the order
  the store returns the rows (actas by ``acta_id``, units by ``level, unit_code``, bytewise,
  then vote type, untyped first);
  an odd node at the end of a level is carried up unchanged, which gives exactly the RFC
  6962 tree. The root of an empty snapshot is SHA-256 of the empty string.
* **Chain entry.** A JSON object (keys sorted, no spaces, UTF-8) describing the snapshot:
  ids, contest definition hash, time, label, source hash, counts, columns, Merkle root and
  tree size. entry_hash = SHA-256(prev_hash (32 bytes) || entry bytes); the first entry's
  prev_hash is 32 zero bytes. Publish the head hash (``verify-log`` prints it): a log that
  ends in a published head cannot be rewritten without the change showing.

The ledger lives in two tables created here (same SQL on DuckDB and PostgreSQL):
``ledger_entries`` (the chain) and ``ledger_leaves`` (the leaf hashes and row keys of each
snapshot, so that ``verify_log`` can name the altered row; they are themselves checked
against the chained root before being trusted). It uses only the Store interface to read
the snapshots.

Format version 2 adds two entry types to the same chain (version-1 logs verify unchanged):
``submission`` (one observer submission, written by :mod:`escrutinio.server` in the same
transaction as its row) and ``checkpoint`` (the Merkle root over every submission entry
so far, leaves = SHA-256(0x00 || entry bytes) in chain order), which inclusion proofs of
submissions point to. See docs/store.md and docs/observers.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from escrutinio.domain import ACTA_COLUMNS, UNIT_COLUMNS, VOTE_TYPE, Contest, SnapshotKind
from escrutinio.errors import EscrutinioError, NotFoundError, UnknownReferenceError
from escrutinio.sources.base import ParsedSnapshot
from escrutinio.store.base import SnapshotInfo, Store

LEDGER_VERSION = 1  # layout of snapshot entries and row proofs (unchanged in format 2)
#: version of the documented ledger format: 2 = version 1 + submission and checkpoint entries
FORMAT_VERSION = 2
SUBMISSION_ENTRY_VERSION = 1
GENESIS = "00" * 32
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
#: serialises ledger writers on PostgreSQL (advisory lock key)
LEDGER_LOCK = 7_301_946_003

DDL = (
    "CREATE TABLE IF NOT EXISTS ledger_entries ("
    " seq BIGINT PRIMARY KEY,"
    " entry_type TEXT NOT NULL,"
    " ref TEXT NOT NULL,"           # snapshot id (or, later, submission id)
    " entry TEXT NOT NULL,"         # canonical JSON: the bytes that are hashed
    " prev_hash TEXT NOT NULL,"
    " entry_hash TEXT NOT NULL,"
    " recorded_at TIMESTAMPTZ NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_leaves ("
    " snapshot_id TEXT PRIMARY KEY,"
    " keys TEXT NOT NULL,"          # JSON list of row keys, in leaf order
    " hashes BYTEA NOT NULL)",      # 32 bytes per leaf, in leaf order
)


class LedgerError(EscrutinioError):
    exit_code = 3


# -- backend plumbing: the only SQL the ledger runs ------------------------------------
def _is_pg(store: Store) -> bool:
    return type(store).__module__.endswith("postgres_store")


def _exec(store: Store, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    con: Any = store.con  # type: ignore[attr-defined]
    if _is_pg(store):
        cur = con.execute(sql.replace("?", "%s"), list(params))
        return list(cur.fetchall()) if cur.description else []
    cur = con.execute(sql, list(params))
    return list(cur.fetchall()) if cur.description else []


def _has_tables(store: Store) -> bool:
    rows = _exec(store, "SELECT count(*) FROM information_schema.tables WHERE "
                 "table_schema = current_schema() AND table_name IN "
                 "('ledger_entries', 'ledger_leaves')")
    return int(rows[0][0]) == 2


@contextmanager
def _transaction(store: Store) -> Iterator[None]:
    con: Any = store.con  # type: ignore[attr-defined]
    if _is_pg(store):
        with con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s)", [LEDGER_LOCK])
            yield
        return
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


@contextmanager
def _joined(store: Store) -> Iterator[None]:
    """Inside the caller's open transaction (``Store.put_snapshots(before_commit=...)``):
    only take the ledger lock, which PostgreSQL releases when that transaction ends."""
    if _is_pg(store):
        _exec(store, "SELECT pg_advisory_xact_lock(?)", [LEDGER_LOCK])
    yield


# -- hashing ---------------------------------------------------------------------------
def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _h(b"\x01" + left + right)


def leaf_hash(encoded: str) -> bytes:
    return _h(b"\x00" + encoded.encode("utf-8"))


def _field_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_row(values: Sequence[object]) -> str:
    """Leaf encoding of one row (the values in canonical column order)."""
    parts = []
    for v in values:
        t = _field_text(v)
        parts.append("~" if t is None else f"{len(t.encode('utf-8'))}:{t}")
    return ",".join(parts)


def _encoded_fields(frame: pl.DataFrame) -> list[pl.Expr]:
    """One expression per column: the field as :func:`encode_row` writes it."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.Boolean():  # the whole field is one of three constants
            exprs.append(pl.when(col).then(pl.lit("4:true")).when(col.not_())
                         .then(pl.lit("5:false")).otherwise(pl.lit("~")))
            continue
        text = col.cast(pl.String)
        # a NULL is "~"; pl.format builds "<n>:<text>" in one pass (cheaper, ~12%, than
        # a concat_str of the length cast to text, ":" and the text, with a fill_null)
        exprs.append(pl.when(col.is_null()).then(pl.lit("~"))
                     .otherwise(pl.format("{}:{}", text.str.len_bytes(), text)))
    return exprs


def encode_frame(frame: pl.DataFrame) -> pl.Series:
    """Leaf encodings of every row (vectorised; same result as :func:`encode_row`)."""
    if frame.width == 0:
        return pl.Series("leaf", [""] * frame.height, dtype=pl.String)
    return frame.lazy().select(pl.concat_str(_encoded_fields(frame), separator=",")
                               .alias("leaf")).collect().to_series()


def leaf_hashes(frame: pl.DataFrame) -> list[bytes]:
    """:func:`leaf_hash` of every row of ``frame`` (its columns in canonical order).

    Polars builds the hashed bytes of every leaf in one pass (the ``0x00`` prefix, the
    encoding, UTF-8); what is left per row is one call into OpenSSL's SHA-256 (about half
    a microsecond: neither polars, numpy nor pyarrow has a vectorised SHA-256, and
    DuckDB's ``sha256()`` is twice as slow per row)."""
    if frame.width == 0:
        return [leaf_hash("")] * frame.height
    prefixed = frame.lazy().select(
        pl.concat_str([pl.lit("\x00"), pl.concat_str(_encoded_fields(frame), separator=",")])
        .cast(pl.Binary).alias("leaf")).collect().to_series()
    sha256 = hashlib.sha256
    return [sha256(b).digest() for b in prefixed.to_list()]


def _next_level(cur: list[bytes]) -> list[bytes]:
    sha256 = hashlib.sha256
    pairs = iter(cur)  # zip of one iterator with itself: (0, 1), (2, 3)... an odd last is left
    nxt = [sha256(b"\x01" + left + right).digest()
           for left, right in zip(pairs, pairs, strict=False)]
    if len(cur) % 2:
        nxt.append(cur[-1])  # an odd node is carried up unchanged (RFC 6962)
    return nxt


def merkle_levels(leaves: list[bytes]) -> list[list[bytes]]:
    levels = [leaves]
    while len(levels[-1]) > 1:
        levels.append(_next_level(levels[-1]))
    return levels


def merkle_root(leaves: list[bytes]) -> str:
    if not leaves:
        return EMPTY_ROOT
    level = leaves
    while len(level) > 1:  # only the current level is kept
        level = _next_level(level)
    return level[0].hex()


def audit_path(levels: list[list[bytes]], index: int) -> list[str]:
    path: list[str] = []
    i = index
    for level in levels[:-1]:
        if i % 2:
            path.append(level[i - 1].hex())
        elif i + 1 < len(level):
            path.append(level[i + 1].hex())
        i //= 2
    return path


def root_from_path(leaf: bytes, index: int, tree_size: int, path: Sequence[str]) -> str | None:
    """The root implied by a leaf, its index and audit path; None if the path's length
    does not fit the tree."""
    if not 0 <= index < tree_size:
        return None
    h, i, m, k = leaf, index, tree_size, 0
    while m > 1:
        if i % 2 or i + 1 < m:
            if k >= len(path):
                return None
            sib = bytes.fromhex(path[k])
            k += 1
            h = node_hash(sib, h) if i % 2 else node_hash(h, sib)
        i //= 2
        m = (m + 1) // 2
    return h.hex() if k == len(path) else None


# -- what a snapshot's rows and entry are ----------------------------------------------
def _canonical_json(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def contest_sha256(contest: Contest) -> str:
    return hashlib.sha256(_canonical_json(contest.to_dict()).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SnapshotRows:
    columns: list[str]
    keys: list[str]
    leaves: list[bytes]
    frame: pl.DataFrame
    #: what the ledger stores of them, when already computed (:func:`parsed_rows`, in a
    #: thread): ``merkle_root(leaves)`` and the keys as JSON
    root: str | None = None
    keys_json: str | None = None

    def merkle_root(self) -> str:
        return merkle_root(self.leaves) if self.root is None else self.root

    def keys_text(self) -> str:
        return (json.dumps(self.keys, ensure_ascii=False) if self.keys_json is None
                else self.keys_json)


def snapshot_rows(store: Store, info: SnapshotInfo) -> SnapshotRows:
    """The rows of a snapshot as the store holds them now, with their keys and leaves."""
    contest = store.contest(info.contest_id)
    if info.kind is SnapshotKind.ACTAS:
        frame = store.load_actas(info.snapshot_id)
        base = list(ACTA_COLUMNS)
        keys = frame["acta_id"].to_list()
    else:
        frame = store.load_units(info.snapshot_id)
        base = list(UNIT_COLUMNS)
        key = pl.concat_str([pl.col("level"), pl.lit(":"), pl.col("unit_code").fill_null("")])
        if VOTE_TYPE in frame.columns:  # one row per unit and vote type: level:code|type
            key = pl.when(pl.col(VOTE_TYPE).is_null()).then(key).otherwise(
                pl.concat_str([key, pl.lit("|"), pl.col(VOTE_TYPE)]))
        keys = frame.select(key).to_series().to_list()
    columns = base + contest.candidate_columns
    if info.kind is SnapshotKind.UNITS and VOTE_TYPE in frame.columns:
        columns.append(VOTE_TYPE)
    frame = frame.select(columns)
    return SnapshotRows(columns, keys, leaf_hashes(frame), frame)


def parsed_rows(snap: ParsedSnapshot) -> SnapshotRows | None:
    """What :func:`snapshot_rows` will read back once ``snap`` is stored, computed from the
    parsed frame instead, so that the leaves can be hashed while the store writes the rows
    (:func:`escrutinio.service.ingest`). Only for per-acta snapshots whose acta ids are
    unique (validation rejects duplicates): both stores return their rows in acta_id
    order, bytewise, which is polars' order too, and the values they return are the ones
    written (text, integers, booleans, NULLs). None otherwise: the rows are then read
    back from the store, as always. ``tests/test_ledger.py`` checks that both ways give
    the same keys, leaves and root."""
    if snap.kind is not SnapshotKind.ACTAS:
        return None
    frame = snap.frame
    ids = frame["acta_id"]
    if ids.null_count() or ids.n_unique() != ids.len():
        return None
    if not ids.is_sorted():
        frame = frame.sort("acta_id")
    columns = list(ACTA_COLUMNS) + snap.contest.candidate_columns
    frame = frame.select(columns).cast(pl.Schema(
        dict(ACTA_COLUMNS) | {c: pl.Int64() for c in snap.contest.candidate_columns}))
    keys = frame["acta_id"].to_list()
    leaves = leaf_hashes(frame)
    return SnapshotRows(columns, keys, leaves, frame, merkle_root(leaves), _keys_json(keys))


def _keys_json(keys: list[str]) -> str:
    """``json.dumps(keys, ensure_ascii=False)``, by a join when no key holds a character
    that JSON escapes (a quote, a backslash, a control character)."""
    body = '", "'.join(keys)  # its only quotes are the separators' when no key holds one
    if body.isprintable() and body.count('"') == 2 * max(len(keys) - 1, 0) \
            and "\\" not in body:
        return f'["{body}"]' if keys else "[]"
    return json.dumps(keys, ensure_ascii=False)


def snapshot_entry(store: Store, info: SnapshotInfo, rows: SnapshotRows) -> dict[str, object]:
    return {
        "v": LEDGER_VERSION, "type": "snapshot",
        "snapshot_id": info.snapshot_id, "contest_id": info.contest_id,
        "contest_sha256": contest_sha256(store.contest(info.contest_id)),
        "kind": info.kind.value, "level": info.level,
        "as_of": info.as_of.astimezone(UTC).isoformat(), "label": info.label,
        "source_uri": info.source_uri, "source_sha256": info.source_sha256,
        "part": info.part, "parser": info.parser, "n_rows": info.n_rows,
        "n_rejected": info.n_rejected, "n_findings": info.n_findings,
        "columns": rows.columns, "tree_size": len(rows.leaves),
        "merkle_root": rows.merkle_root(),
    }


def entry_hash(prev_hash: str, entry_text: str) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + entry_text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    seq: int
    entry_type: str
    ref: str
    entry: dict[str, Any]
    prev_hash: str
    entry_hash: str
    recorded_at: datetime


def _entries(store: Store) -> list[tuple[int, str, str, str, str, str, datetime]]:
    if not _has_tables(store):
        return []
    return [(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6]) for r in _exec(
        store, "SELECT seq, entry_type, ref, entry, prev_hash, entry_hash, recorded_at "
        "FROM ledger_entries ORDER BY seq")]


def entries(store: Store) -> list[LedgerEntry]:
    return [LedgerEntry(s, t, ref, json.loads(e), p, h, at)
            for s, t, ref, e, p, h, at in _entries(store)]


def logged_snapshots(store: Store) -> dict[str, LedgerEntry]:
    """The chain entry of every logged snapshot, by snapshot id (what the API publishes:
    each snapshot's Merkle root and its place in the chain)."""
    if not _has_tables(store):
        return {}
    rows = _exec(store, "SELECT seq, entry_type, ref, entry, prev_hash, entry_hash, "
                 "recorded_at FROM ledger_entries WHERE entry_type = 'snapshot' ORDER BY seq")
    return {str(r[2]): LedgerEntry(int(r[0]), str(r[1]), str(r[2]), json.loads(r[3]),
                                   str(r[4]), str(r[5]), r[6]) for r in rows}


def head(store: Store) -> tuple[int, str]:
    """(number of entries, head hash) of the chain; (0, GENESIS) when it is empty."""
    if not _has_tables(store):
        return 0, GENESIS
    rows = _exec(store, "SELECT seq, entry_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1")
    return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)


def append_new(store: Store, *, in_transaction: bool = False,
               rows: Mapping[str, Callable[[], SnapshotRows | None]] | None = None
               ) -> list[LedgerEntry]:
    """Append every stored snapshot that is not in the chain yet (in as_of order).
    Idempotent. ``in_transaction``: run inside the caller's open transaction (how
    :func:`escrutinio.service.ingest` logs a snapshot in the transaction that stores it);
    otherwise in a transaction of its own (``log-sync``). ``rows``: snapshot id -> a
    function giving its rows as :func:`parsed_rows` computed them (None: read them back).
    Returns the new entries."""
    added: list[LedgerEntry] = []
    with _joined(store) if in_transaction else _transaction(store):
        if not _has_tables(store):  # DDL only when needed: a role without CREATE can log
            for ddl in DDL:
                _exec(store, ddl)
        last = _exec(store, "SELECT seq, entry_hash FROM ledger_entries "
                     "ORDER BY seq DESC LIMIT 1")
        seq, prev = (int(last[0][0]), str(last[0][1])) if last else (0, GENESIS)
        logged = {r[0] for r in _exec(
            store, "SELECT ref FROM ledger_entries WHERE entry_type = 'snapshot'")}
        for info in store.list_snapshots():
            if info.snapshot_id in logged:
                continue
            known = rows[info.snapshot_id]() if rows and info.snapshot_id in rows else None
            snap_rows = (known if known is not None and len(known.leaves) == info.n_rows
                         else snapshot_rows(store, info))
            entry = snapshot_entry(store, info, snap_rows)
            text = _canonical_json(entry)
            seq += 1
            h = entry_hash(prev, text)
            now = datetime.now(UTC)
            _exec(store, "INSERT INTO ledger_entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                  [seq, "snapshot", info.snapshot_id, text, prev, h, now])
            _exec(store, "INSERT INTO ledger_leaves VALUES (?, ?, ?)",
                  [info.snapshot_id, snap_rows.keys_text(), b"".join(snap_rows.leaves)])
            added.append(LedgerEntry(seq, "snapshot", info.snapshot_id, entry, prev, h, now))
            prev = h
    return added


# -- verification ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Problem:
    """One thing that does not match. ``key`` names the row (acta id, or level:unit)."""

    kind: str
    message_es: str
    message_en: str
    seq: int | None = None
    snapshot_id: str | None = None
    key: str | None = None
    field: str | None = None


@dataclass(frozen=True, slots=True)
class LogReport:
    ok: bool
    n_entries: int
    head_hash: str
    problems: list[Problem] = field(default_factory=list)
    roots: dict[str, str] = field(default_factory=dict)  # snapshot id -> logged root
    #: submission checkpoints: seq, tree_size, merkle_root (format 2)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _diff_rows(sid: str, seq: int, old_keys: list[str], old: list[bytes],
               new_keys: list[str], new: list[bytes]) -> list[Problem]:
    before = pl.DataFrame({"key": old_keys, "h": old}, schema={"key": pl.String,
                                                             "h": pl.Binary})
    after = pl.DataFrame({"key": new_keys, "h": new}, schema={"key": pl.String,
                                                            "h": pl.Binary})
    # position within equal keys keeps duplicated keys apart
    before = before.with_columns(pl.int_range(pl.len()).over("key").alias("k"))
    after = after.with_columns(pl.int_range(pl.len()).over("key").alias("k"))
    j = before.join(after, on=["key", "k"], how="full", coalesce=True, suffix="_now")
    out: list[Problem] = []
    for key in j.filter(pl.col("h_now").is_null())["key"].to_list():
        out.append(Problem("row_missing", f"fila {key} borrada de la instantánea {sid[:12]}",
                           f"row {key} deleted from snapshot {sid[:12]}", seq, sid, key))
    for key in j.filter(pl.col("h").is_null())["key"].to_list():
        out.append(Problem("row_added", f"fila {key} añadida a la instantánea {sid[:12]}",
                           f"row {key} added to snapshot {sid[:12]}", seq, sid, key))
    for key in j.filter(pl.col("h").is_not_null() & pl.col("h_now").is_not_null()
                        & (pl.col("h") != pl.col("h_now")))["key"].to_list():
        out.append(Problem("row_altered", f"fila {key} alterada en la instantánea {sid[:12]}",
                           f"row {key} altered in snapshot {sid[:12]}", seq, sid, key))
    return out


def verify_log(store: Store, *, expected_head: str | None = None) -> LogReport:
    """Recompute the chain and every snapshot's Merkle root from the stored rows; name
    every altered, missing or added row, altered entry and unlogged snapshot."""
    problems: list[Problem] = []
    rows_db = _entries(store)
    snaps = {s.snapshot_id: s for s in store.list_snapshots()}
    leaves_db = {r[0]: (r[1], r[2]) for r in _exec(
        store, "SELECT snapshot_id, keys, hashes FROM ledger_leaves")} if rows_db else {}
    prev, head = GENESIS, GENESIS
    roots: dict[str, str] = {}
    logged: set[str] = set()
    chained: list[tuple[int, str, str, str, dict[str, Any], str]] = []
    for i, (seq, etype, ref, text, prev_hash, h, _at) in enumerate(rows_db):
        if seq != i + 1:
            problems.append(Problem("chain_gap", f"falta la entrada {i + 1} de la cadena",
                                    f"entry {i + 1} of the chain is missing", seq))
        if prev_hash != prev:
            problems.append(Problem(
                "chain_broken", f"la entrada {seq} no enlaza con la anterior",
                f"entry {seq} does not link to the previous one", seq, ref))
        if entry_hash(prev_hash, text) != h:
            problems.append(Problem(
                "entry_altered", f"la entrada {seq} fue alterada (su hash no coincide)",
                f"entry {seq} was altered (its hash does not match)", seq, ref))
        prev = head = h
        entry = json.loads(text)
        if etype in ("submission", "checkpoint"):
            chained.append((seq, etype, ref, text, entry, h))
            continue
        if etype != "snapshot" or entry.get("type") != "snapshot":
            continue
        sid = entry["snapshot_id"]
        if sid != ref:
            problems.append(Problem("entry_altered", f"la entrada {seq} no es de {ref[:12]}",
                                    f"entry {seq} is not about {ref[:12]}", seq, ref))
        logged.add(sid)
        roots[sid] = entry["merkle_root"]
        info = snaps.get(sid)
        if info is None:
            problems.append(Problem(
                "snapshot_missing", f"la instantánea {sid[:12]} (entrada {seq}) fue borrada",
                f"snapshot {sid[:12]} (entry {seq}) was deleted", seq, sid))
            continue
        problems.extend(_check_snapshot(store, info, entry, seq, leaves_db.get(sid)))
    for sid, info in snaps.items():
        if sid not in logged:
            problems.append(Problem(
                "unlogged_snapshot",
                f"la instantánea {sid[:12]} ({info.label}) no está en la cadena: se añadió "
                "por fuera de escrutinio o falta 'escrutinio log-sync'",
                f"snapshot {sid[:12]} ({info.label}) is not in the chain: it was added "
                "behind escrutinio's back, or 'escrutinio log-sync' was not run", None, sid))
    sub_problems, checkpoints = _check_submissions(store, chained)
    problems.extend(sub_problems)
    if expected_head is not None and expected_head != head:
        problems.append(Problem(
            "head_mismatch", f"la cabeza de la cadena es {head}, se publicó {expected_head}",
            f"the chain head is {head}, the published one is {expected_head}"))
    return LogReport(not problems, len(rows_db), head, problems, roots, checkpoints)


def _check_snapshot(store: Store, info: SnapshotInfo, entry: dict[str, Any], seq: int,
                    stored: tuple[str, bytes] | None) -> list[Problem]:
    sid = info.snapshot_id
    out: list[Problem] = []
    try:
        rows = snapshot_rows(store, info)
        now = snapshot_entry(store, info, rows)
    except (EscrutinioError, pl.exceptions.PolarsError) as exc:
        return [Problem("snapshot_unreadable", f"la instantánea {sid[:12]} no se puede leer: "
                        f"{exc}", f"snapshot {sid[:12]} cannot be read: {exc}", seq, sid)]
    for k in sorted(set(entry) | set(now)):
        if k not in ("merkle_root", "tree_size") and entry.get(k) != now.get(k):
            out.append(Problem(
                "snapshot_altered", f"la instantánea {sid[:12]} cambió en '{k}'",
                f"snapshot {sid[:12]} changed in '{k}'", seq, sid, None, k))
    if now["merkle_root"] == entry["merkle_root"]:
        return out
    # the rows changed: name them, with leaf hashes that the chained root vouches for
    if stored is not None:
        keys = json.loads(stored[0])
        blob = bytes(stored[1])
        old = [blob[i:i + 32] for i in range(0, len(blob), 32)]
        if len(old) == len(keys) and merkle_root(old) == entry["merkle_root"]:
            named = _diff_rows(sid, seq, keys, old, rows.keys, rows.leaves)
            if named:
                return out + named
    return [*out, Problem(
        "rows_altered", f"las filas de la instantánea {sid[:12]} fueron alteradas (la raíz "
        "de Merkle no coincide; el registro de hojas también fue alterado)",
        f"the rows of snapshot {sid[:12]} were altered (the Merkle root does not match; "
        "the leaf record was altered too)", seq, sid)]


# -- inclusion proofs ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Everything needed to check that one row is in a logged snapshot's Merkle root."""

    snapshot_id: str
    key: str
    columns: list[str]
    values: list[object]
    leaf_index: int
    tree_size: int
    path: list[str]
    merkle_root: str
    entry_seq: int
    entry_hash: str
    format: str = f"escrutinio-ledger-v{LEDGER_VERSION}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> InclusionProof:
        return InclusionProof(
            str(d["snapshot_id"]), str(d["key"]), list(d["columns"]), list(d["values"]),
            int(d["leaf_index"]), int(d["tree_size"]), [str(p) for p in d["path"]],
            str(d["merkle_root"]), int(d["entry_seq"]), str(d["entry_hash"]),
            str(d.get("format", f"escrutinio-ledger-v{LEDGER_VERSION}")))


def prove(store: Store, snapshot_id: str, key: str) -> InclusionProof:
    """Inclusion proof of row ``key`` (acta id; ``level:unit_code`` for unit snapshots)
    in the logged Merkle root of a snapshot. Fails if the stored rows no longer give the
    logged root."""
    found = [e for e in entries(store)
             if e.entry_type == "snapshot" and e.ref == snapshot_id]
    if not found:
        raise NotFoundError(
            f"la instantánea {snapshot_id[:12]} no está en la cadena; ejecute "
            "'escrutinio log-sync'",
            f"snapshot {snapshot_id[:12]} is not in the chain; run 'escrutinio log-sync'")
    entry = found[0]
    info = store.snapshot(snapshot_id)
    rows = snapshot_rows(store, info)
    try:
        index = rows.keys.index(key)
    except ValueError:
        raise UnknownReferenceError(f"{key!r} no está en la instantánea {snapshot_id[:12]}",
                                    f"{key!r} is not in snapshot {snapshot_id[:12]}") from None
    levels = merkle_levels(rows.leaves)
    root = levels[-1][0].hex() if rows.leaves else EMPTY_ROOT
    if root != entry.entry["merkle_root"]:
        raise LedgerError(
            f"las filas de la instantánea {snapshot_id[:12]} ya no dan la raíz registrada; "
            "ejecute 'escrutinio verify-log'",
            f"the rows of snapshot {snapshot_id[:12]} no longer give the logged root; run "
            "'escrutinio verify-log'")
    values = list(rows.frame.row(index))
    return InclusionProof(snapshot_id, key, rows.columns, values, index, len(rows.leaves),
                          audit_path(levels, index), root, entry.seq, entry.entry_hash)


def row_key(columns: Sequence[str], values: Sequence[object]) -> str | None:
    """The key a row is proved under: its acta id, or ``level:unit_code``."""
    row = dict(zip(columns, values, strict=True))
    if "acta_id" in row:
        return None if row["acta_id"] is None else str(row["acta_id"])
    if "level" in row and "unit_code" in row:
        typed = f"|{row[VOTE_TYPE]}" if row.get(VOTE_TYPE) is not None else ""
        return f"{row['level']}:{row['unit_code'] or ''}{typed}"
    return None


def verify_proof(proof: InclusionProof, root: str | None = None) -> bool:
    """True if the proof's row, at its index, hashes up to ``root`` (the published root;
    by default the root carried in the proof)."""
    if len(proof.values) != len(proof.columns) or row_key(proof.columns,
                                                          proof.values) != proof.key:
        return False
    implied = root_from_path(leaf_hash(encode_row(proof.values)), proof.leaf_index,
                             proof.tree_size, proof.path)
    return implied is not None and implied == (root if root is not None else proof.merkle_root)


# -- observers' submissions and their checkpoints (format 2) ------------------------------
#: ``run(sql, params)``: execute one statement (``?`` placeholders) on the caller's
#: connection, inside the caller's transaction; returns the rows (empty if none)
Runner = Callable[[str, Sequence[object]], list[tuple[Any, ...]]]
SUBMISSION_PROOF_FORMAT = "escrutinio-submission-proof-v1"
#: the submissions columns an entry is recomputed from (see server/repo.py)
SUBMISSION_COLUMNS = ("submission_id", "client_id", "account_id", "contest_id", "acta_id",
                      "received_at", "payload", "photo_sha256", "official_snapshot_id",
                      "category", "reconciliation", "ledger_seq", "payload_sha256")


def store_runner(store: Store) -> Runner:
    """A :data:`Runner` over the store's own connection."""
    def run(sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return _exec(store, sql, params)

    return run


def iso_utc(when: datetime) -> str:
    """The one text form of a time in submission entries (UTC, microseconds, ``Z``)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(obj: object) -> str:
    """Keys sorted, no spaces, UTF-8: the bytes that are hashed."""
    return _canonical_json(obj)


def submission_entry(row: Mapping[str, Any]) -> dict[str, object]:
    """The chain entry of a submission row (a mapping with :data:`SUBMISSION_COLUMNS`).
    The payload and the reconciliation are covered by their SHA-256."""
    received = row["received_at"]
    return {
        "v": SUBMISSION_ENTRY_VERSION, "type": "submission",
        "submission_id": row["submission_id"], "client_id": row["client_id"],
        "account": row["account_id"], "contest_id": row["contest_id"],
        "acta_id": row["acta_id"],
        "received_at": iso_utc(received) if isinstance(received, datetime) else received,
        "payload_sha256": sha256_text(row["payload"]), "photo_sha256": row["photo_sha256"],
        "official_snapshot_id": row["official_snapshot_id"], "category": row["category"],
        "reconciliation_sha256": sha256_text(row["reconciliation"]),
    }


def ensure_tables(run: Runner) -> None:
    """Create the ledger tables if they are missing (only then: PostgreSQL checks the
    CREATE privilege even for ``CREATE TABLE IF NOT EXISTS`` on an existing table)."""
    have = run("SELECT count(*) FROM information_schema.tables WHERE "
               "table_schema = current_schema() AND table_name IN "
               "('ledger_entries', 'ledger_leaves')", [])
    if int(have[0][0]) == 2:
        return
    for ddl in DDL:
        run(ddl, [])


def append_entry(run: Runner, entry_type: str, ref: str, entry: Mapping[str, object],
                 now: datetime | None = None) -> LedgerEntry:
    """Append one entry on the caller's connection. The caller holds the transaction and
    the ledger lock (PostgreSQL: ``pg_advisory_xact_lock(LEDGER_LOCK)``; DuckDB: one
    writer per process), so that the entry and the caller's rows commit together."""
    last = run("SELECT seq, entry_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1", [])
    seq, prev = (int(last[0][0]) + 1, str(last[0][1])) if last else (1, GENESIS)
    text = _canonical_json(entry)
    h = entry_hash(prev, text)
    when = now or datetime.now(UTC)
    run("INSERT INTO ledger_entries VALUES (?, ?, ?, ?, ?, ?, ?)",
        [seq, entry_type, ref, text, prev, h, when])
    return LedgerEntry(seq, entry_type, ref, dict(entry), prev, h, when)


def _submission_leaves(run: Runner) -> list[tuple[int, str, str]]:
    return [(int(r[0]), str(r[1]), str(r[2])) for r in run(
        "SELECT seq, ref, entry FROM ledger_entries WHERE entry_type = 'submission' "
        "ORDER BY seq", [])]


def _checkpoint_rows(run: Runner) -> list[LedgerEntry]:
    return [LedgerEntry(int(r[0]), "checkpoint", r[1], json.loads(r[2]), r[3], r[4], r[5])
            for r in run("SELECT seq, ref, entry, prev_hash, entry_hash, recorded_at FROM "
                         "ledger_entries WHERE entry_type = 'checkpoint' ORDER BY seq", [])]


def checkpoint_entry(leaves: Sequence[tuple[int, str, str]]) -> dict[str, object]:
    return {"v": SUBMISSION_ENTRY_VERSION, "type": "checkpoint", "of": "submissions",
            "tree_size": len(leaves), "last_seq": leaves[-1][0] if leaves else 0,
            "merkle_root": merkle_root([leaf_hash(t) for _s, _r, t in leaves])}


def append_checkpoint_with(run: Runner) -> LedgerEntry | None:
    """Append a checkpoint over every submission entry so far, unless the latest
    checkpoint already covers them all. Caller holds the transaction and the lock."""
    leaves = _submission_leaves(run)
    if not leaves:
        return None
    done = _checkpoint_rows(run)
    if done and int(done[-1].entry.get("tree_size", -1)) == len(leaves):
        return None
    entry = checkpoint_entry(leaves)
    return append_entry(run, "checkpoint", f"submissions:{len(leaves)}", entry)


def append_checkpoint(store: Store) -> LedgerEntry | None:
    """:func:`append_checkpoint_with` on the store's connection (``escrutinio log-sync``)."""
    with _transaction(store):
        run = store_runner(store)
        ensure_tables(run)
        return append_checkpoint_with(run)


def checkpoints(store: Store) -> list[LedgerEntry]:
    return _checkpoint_rows(store_runner(store)) if _has_tables(store) else []


@dataclass(frozen=True, slots=True)
class SubmissionProof:
    """Everything needed to check that a submission is under a published checkpoint root:
    the exact entry bytes (its leaf), the leaf's index and audit path."""

    submission_id: str
    entry: str
    entry_seq: int
    entry_hash: str
    leaf_index: int
    tree_size: int
    path: list[str]
    merkle_root: str
    checkpoint_seq: int
    checkpoint_entry_hash: str
    format: str = SUBMISSION_PROOF_FORMAT

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> SubmissionProof:
        return SubmissionProof(
            str(d["submission_id"]), str(d["entry"]), int(d["entry_seq"]),
            str(d["entry_hash"]), int(d["leaf_index"]), int(d["tree_size"]),
            [str(p) for p in d["path"]], str(d["merkle_root"]), int(d["checkpoint_seq"]),
            str(d["checkpoint_entry_hash"]), str(d.get("format", SUBMISSION_PROOF_FORMAT)))


def prove_submission_with(run: Runner, submission_id: str) -> SubmissionProof:
    leaves = _submission_leaves(run)
    index = next((i for i, (_s, ref, _t) in enumerate(leaves) if ref == submission_id), None)
    if index is None:
        raise UnknownReferenceError(f"el envío {submission_id!r} no está en la cadena",
                                    f"submission {submission_id!r} is not in the chain")
    cover = [c for c in _checkpoint_rows(run) if int(c.entry.get("tree_size", 0)) > index]
    if not cover:
        raise NotFoundError(
            f"el envío {submission_id} aún no está bajo un punto de control; ejecute "
            "'escrutinio log-sync' (o POST /api/v1/admin/checkpoint)",
            f"submission {submission_id} is not under a checkpoint yet; run "
            "'escrutinio log-sync' (or POST /api/v1/admin/checkpoint)")
    cp = cover[0]  # the earliest root that covers it: it never changes afterwards
    n = int(cp.entry["tree_size"])
    hashes = [leaf_hash(t) for _s, _r, t in leaves[:n]]
    levels = merkle_levels(hashes)
    root = levels[-1][0].hex() if hashes else EMPTY_ROOT
    if root != cp.entry.get("merkle_root"):
        raise LedgerError(
            f"las entradas de envíos ya no dan la raíz del punto de control {cp.seq}; "
            "ejecute 'escrutinio verify-log'",
            f"the submission entries no longer give the root of checkpoint {cp.seq}; run "
            "'escrutinio verify-log'")
    seq, _ref, text = leaves[index]
    h = run("SELECT entry_hash FROM ledger_entries WHERE seq = ?", [seq])[0][0]
    return SubmissionProof(submission_id, text, seq, str(h), index, n,
                           audit_path(levels, index), root, cp.seq, cp.entry_hash)


def prove_submission(store: Store, submission_id: str) -> SubmissionProof:
    """Inclusion proof of a submission under the first checkpoint that covers it."""
    if not _has_tables(store):
        raise NotFoundError("el almacén no tiene cadena", "the store has no log")
    return prove_submission_with(store_runner(store), submission_id)


def verify_submission_proof(proof: SubmissionProof, root: str | None = None) -> bool:
    """True if the proof's entry is a submission entry for ``proof.submission_id`` (in
    canonical form) and hashes up to ``root`` (default: the root inside the proof)."""
    try:
        entry = json.loads(proof.entry)
    except ValueError:
        return False
    if (not isinstance(entry, dict) or entry.get("type") != "submission"
            or entry.get("submission_id") != proof.submission_id
            or _canonical_json(entry) != proof.entry):
        return False
    implied = root_from_path(leaf_hash(proof.entry), proof.leaf_index, proof.tree_size,
                             proof.path)
    return implied is not None and implied == (root if root is not None else proof.merkle_root)


def _table_exists(store: Store, name: str) -> bool:
    rows = _exec(store, "SELECT count(*) FROM information_schema.tables WHERE "
                 "table_schema = current_schema() AND table_name = ?", [name])
    return int(rows[0][0]) == 1


def _check_submissions(store: Store, chained: list[tuple[int, str, str, str, dict[str, Any],
                                                        str]]
                       ) -> tuple[list[Problem], list[dict[str, Any]]]:
    """Recompute every submission entry from the submissions table, every checkpoint root
    from the submission entries, and every photo's hash from its bytes."""
    out: list[Problem] = []
    cps: list[dict[str, Any]] = []
    rows: dict[str, dict[str, Any]] = {}
    if _table_exists(store, "submissions"):
        for r in _exec(store, f"SELECT {', '.join(SUBMISSION_COLUMNS)} FROM submissions"):
            rows[str(r[0])] = dict(zip(SUBMISSION_COLUMNS, r, strict=True))
    if _table_exists(store, "photos"):
        digest = "encode(sha256(bytes), 'hex')" if _is_pg(store) else "sha256(bytes)"
        for sha, now in _exec(store, f"SELECT sha256, {digest} FROM photos"):
            if sha != now:
                out.append(Problem(
                    "photo_altered", f"los bytes de la foto {sha[:16]}… fueron alterados",
                    f"the bytes of photo {sha[:16]}… were altered", None, None, sha))
    leaves: list[bytes] = []
    logged: set[str] = set()
    for seq, etype, ref, text, entry, h in chained:
        if etype == "checkpoint":
            n = entry.get("tree_size")
            ok = (entry.get("type") == "checkpoint" and n == len(leaves)
                  and entry.get("merkle_root") == merkle_root(leaves))
            if not ok:
                out.append(Problem(
                    "checkpoint_altered",
                    f"el punto de control {seq} no coincide con las entradas de envíos",
                    f"checkpoint {seq} does not match the submission entries", seq))
            cps.append({"seq": seq, "tree_size": n, "merkle_root": entry.get("merkle_root"),
                        "entry_hash": h})
            continue
        leaves.append(leaf_hash(text))
        sid = str(entry.get("submission_id"))
        if sid != ref or entry.get("type") != "submission":
            out.append(Problem("entry_altered", f"la entrada {seq} no es del envío {ref}",
                               f"entry {seq} is not about submission {ref}", seq, None, ref))
        logged.add(sid)
        row = rows.get(sid)
        if row is None:
            out.append(Problem("submission_missing",
                               f"el envío {sid} (entrada {seq}) fue borrado",
                               f"submission {sid} (entry {seq}) was deleted", seq, None, sid))
            continue
        now = submission_entry(row)
        for k in sorted(set(entry) | set(now)):
            if entry.get(k) != now.get(k):
                what = {"payload_sha256": "payload",
                        "reconciliation_sha256": "reconciliation"}.get(k, k)
                out.append(Problem(
                    "submission_altered", f"el envío {sid} cambió en '{what}'",
                    f"submission {sid} changed in '{what}'", seq, None, sid, what))
        if row["payload_sha256"] != now["payload_sha256"]:
            out.append(Problem(
                "submission_altered", f"el envío {sid} cambió en 'payload_sha256'",
                f"submission {sid} changed in 'payload_sha256'", seq, None, sid,
                "payload_sha256"))
        if row["ledger_seq"] is None or int(row["ledger_seq"]) != seq:
            out.append(Problem(
                "submission_altered", f"el envío {sid} apunta a otra entrada",
                f"submission {sid} points to another entry", seq, None, sid, "ledger_seq"))
    for sid in sorted(set(rows) - logged):
        out.append(Problem(
            "unlogged_submission",
            f"el envío {sid} no está en la cadena: se añadió por fuera de escrutinio",
            f"submission {sid} is not in the chain: it was added behind escrutinio's back",
            None, None, sid))
    return out, cps
