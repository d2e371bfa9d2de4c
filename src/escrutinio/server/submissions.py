"""One observer's copy of an acta, received over HTTP: validated, reconciled, stored once.

The rules are the existing ones — the JSON schema of an observer copy
(``defence/observer_copy.schema.json``), :func:`escrutinio.defence.observers.
parse_observer_records` and :func:`escrutinio.defence.pvt.reconcile` — applied to one
record. What this module adds is what a network needs: a client-generated id that makes
retries safe, scopes, and a row that is chained into the tamper-evident log in the same
transaction (:meth:`escrutinio.server.repo.Repo.record_submission`).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import polars as pl

from escrutinio.defence import observers
from escrutinio.defence.pvt import FIELDS_BASE, normalise_ids, pick_pair, reconcile
from escrutinio.domain import Contest
from escrutinio.errors import IngestError
from escrutinio.server.auth import AuthError, Principal, Role, acta_key, place_key
from escrutinio.server.repo import Repo
from escrutinio.store.base import Store
from escrutinio.store.ledger import canonical_json, iso_utc, sha256_text

CLIENT_ID_RE: Final = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")
TOP_KEYS: Final = frozenset({"client_id", "contest_id", "copy", "photo_sha256"})
#: the largest count accepted in a copy (far above any acta; keeps every figure an Int64)
MAX_COUNT: Final = 2**31 - 1
#: official frames kept per process (snapshots never change once stored)
OFFICIAL_CACHE: Final = 2


class Invalid(AuthError):
    """A submission that breaks a rule: 4xx with ``detail`` naming field and rule."""

    def __init__(self, status: int, rule: str, field: str | None, message_es: str,
                 message_en: str, detail: list[dict[str, Any]] | None = None) -> None:
        super().__init__(status, rule, message_es, message_en)
        self.detail = detail if detail is not None else [
            {"field": field, "rule": rule, "message_es": message_es,
             "message_en": message_en}]


# -- JSON in -------------------------------------------------------------------------------
def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def parse_json(body: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no repeated keys, bounded nesting."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(400, "bad_encoding", None, "el cuerpo no es UTF-8",
                      "the body is not UTF-8") from None
    if not text.strip():
        raise Invalid(400, "empty_body", None, "el cuerpo está vacío", "the body is empty")
    depth = max_depth = 0
    in_str = esc = False
    for ch in text:  # nesting is checked before parsing: json's recursion stays shallow
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            max_depth = max(max_depth, depth)
            if max_depth > 8:
                raise Invalid(422, "too_deep", None, "JSON anidado en exceso (máximo 8 niveles)",
                              "JSON nested too deeply (at most 8 levels)")
        elif ch in "]}":
            depth -= 1
    try:
        return json.loads(text, parse_constant=_no_constants,
                          object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise Invalid(422, "bad_json", None, f"JSON no válido: {str(exc)[:200]}",
                      f"invalid JSON: {str(exc)[:200]}") from None


@dataclass(frozen=True, slots=True)
class Request:
    client_id: str
    contest_id: str | None
    copy: dict[str, Any]
    photo_sha256: str | None
    request_sha256: str


def read_request(obj: Any) -> Request:
    if not isinstance(obj, dict):
        raise Invalid(422, "not_an_object", None, "el cuerpo debe ser un objeto JSON",
                      "the body must be a JSON object")
    extra = sorted(set(obj) - TOP_KEYS)
    if extra:
        raise Invalid(422, "unexpected_field", extra[0], f"campo no reconocido {extra[0][:60]!r}",
                      f"unrecognised field {extra[0][:60]!r}")
    cid = obj.get("client_id")
    if not isinstance(cid, str) or not CLIENT_ID_RE.match(cid):
        raise Invalid(422, "bad_client_id", "client_id",
                      "client_id: 8 a 64 caracteres A-Z a-z 0-9 _ -",
                      "client_id: 8 to 64 characters A-Z a-z 0-9 _ -")
    contest = obj.get("contest_id")
    if contest is not None and (not isinstance(contest, str) or not 0 < len(contest) <= 200
                                or any(ord(ch) < 32 for ch in contest)):
        raise Invalid(422, "bad_contest_id", "contest_id",
                      "contest_id debe ser un texto de hasta 200 caracteres",
                      "contest_id must be a string of up to 200 characters")
    copy = obj.get("copy")
    if not isinstance(copy, dict):
        raise Invalid(422, "missing_copy" if copy is None else "not_an_object", "copy",
                      "falta 'copy': un objeto con la copia del acta",
                      "'copy' is missing: an object with the copy of the acta")
    photo = obj.get("photo_sha256")
    if photo is not None and (not isinstance(photo, str) or not SHA256_RE.match(photo)):
        raise Invalid(422, "bad_photo_sha256", "photo_sha256",
                      "photo_sha256: 64 dígitos hexadecimales en minúscula",
                      "photo_sha256: 64 lower-case hexadecimal digits")
    digest = sha256_text(canonical_json({"client_id": cid, "contest_id": contest,
                                         "copy": copy, "photo_sha256": photo}))
    return Request(cid, contest, copy, photo, digest)


def check_copy_types(copy: Mapping[str, Any], contest: Contest) -> None:
    """The JSON schema's types and limits, field by field (the parser then applies the
    format's rules): a wrong type is named here rather than guessed at later."""
    sch = observers.schema()
    props: dict[str, Any] = sch["properties"]
    cand = set(contest.candidate_columns)
    problems: list[dict[str, Any]] = []

    def bad(fld: str, rule: str, es: str, en: str) -> None:
        problems.append({"field": fld, "rule": rule, "message_es": es, "message_en": en})

    for key in [*sch["required"], *contest.candidate_columns]:
        if key not in copy or copy[key] is None:
            bad(key, "required", f"falta el campo obligatorio {key}",
                f"the required field {key} is missing")
    for key, value in copy.items():
        if not isinstance(key, str) or len(key) > 80:
            bad(str(key)[:80], "unexpected_field", "campo no reconocido", "unrecognised field")
            continue
        spec = props.get(key)
        if spec is None and re.fullmatch(r"v_[a-z0-9_]+", key):
            if key not in cand:
                bad(key, "unknown_candidate_column",
                    f"{key} no es un candidato de {contest.id}",
                    f"{key} is not a candidate of {contest.id}")
                continue
            spec = sch["patternProperties"]["^v_[a-z0-9_]+$"]
        if spec is None:
            bad(key, "unexpected_field", f"campo no reconocido {key!r}",
                f"unrecognised field {key!r}")
            continue
        types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
        if value is None:
            if "null" not in types:
                bad(key, "required", f"{key} no puede ser null", f"{key} cannot be null")
            continue
        if "integer" in types:
            if isinstance(value, bool) or not isinstance(value, int):
                bad(key, "not_an_integer", f"{key} debe ser un número entero",
                    f"{key} must be an integer")
            elif not 0 <= value <= MAX_COUNT:
                bad(key, "out_of_range", f"{key} debe estar entre 0 y {MAX_COUNT}",
                    f"{key} must be between 0 and {MAX_COUNT}")
            continue
        if not isinstance(value, str):
            bad(key, "not_a_string", f"{key} debe ser un texto", f"{key} must be a string")
            continue
        if len(value) > int(spec.get("maxLength", 10_000)):
            bad(key, "too_long", f"{key} supera {spec['maxLength']} caracteres",
                f"{key} is longer than {spec['maxLength']} characters")
        elif len(value) < int(spec.get("minLength", 0)):
            bad(key, "too_short", f"{key} está vacío", f"{key} is empty")
        elif "pattern" in spec and not re.search(spec["pattern"], value):
            bad(key, "bad_format", f"{key} no tiene el formato esperado",
                f"{key} does not have the expected format")
        elif any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value):
            bad(key, "control_characters", f"{key} contiene caracteres de control",
                f"{key} contains control characters")
    if problems:
        first = problems[0]
        raise Invalid(422, first["rule"], first["field"],
                      f"copia no válida: {first['message_es']}",
                      f"invalid copy: {first['message_en']}", problems)


def parse_copy(copy: Mapping[str, Any], contest: Contest) -> pl.DataFrame:
    """The copy as a one-row canonical frame, through the documented parser."""
    try:
        parsed = observers.parse_observer_records([copy], contest, source="copy")
    except IngestError as exc:
        raise Invalid(422, exc.rule, exc.location.field, f"copia no válida: {exc.detail_es}",
                      f"invalid copy: {exc.detail_en}") from None
    except (pl.exceptions.PolarsError, ValueError, OverflowError) as exc:
        raise Invalid(422, "unreadable_copy", None, f"copia ilegible: {str(exc)[:200]}",
                      f"unreadable copy: {str(exc)[:200]}") from None
    if parsed.rejected.height:
        detail = [{"field": r["field"], "rule": r["rule"], "message_es": r["message_es"],
                   "message_en": r["message_en"]} for r in parsed.rejected.to_dicts()]
        first = detail[0]
        raise Invalid(422, first["rule"], first["field"],
                      f"copia no válida: {first['message_es']}",
                      f"invalid copy: {first['message_en']}", detail)
    return parsed.frame


# -- the official side ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Official:
    """The latest per-acta snapshot of a contest, prepared for one-copy reconciliations."""

    snapshot_id: str
    contest: Contest
    frame: pl.DataFrame
    index: dict[str, int]
    id_sample: pl.Series  # what normalise_ids needs to pad like the official ids
    pair: tuple[str, str, int] | None  # leader, runner-up, margin among counted actas

    @staticmethod
    def build(snapshot_id: str, contest: Contest, frame: pl.DataFrame) -> Official:
        ids = frame["acta_id"]
        numeric = ids.len() > 0 and bool(ids.str.contains(r"^\d+$").all())
        one_width = ids.str.len_chars().n_unique() == 1
        sample = ids.head(1) if numeric and one_width else pl.Series("acta_id", ["-"])
        try:
            pair: tuple[str, str, int] | None = pick_pair(frame, contest)
        except ValueError:
            pair = None
        return Official(snapshot_id, contest, frame,
                        dict(zip(ids.to_list(), range(ids.len()), strict=True)), sample, pair)

    def normalise(self, acta_id: str) -> str:
        return str(normalise_ids(pl.Series("acta_id", [acta_id]), self.id_sample)[0])

    def geography(self, acta_id: str) -> tuple[list[str | None], str | None]:
        i = self.index.get(acta_id)
        if i is None:
            return [None, None, None], None
        r = self.frame.row(i, named=True)
        return [r["area1_code"], r["area2_code"], r["area3_code"]], r["polling_place"]


class Officials:
    """Per process: the latest official per-acta snapshot of each contest, loaded once per
    snapshot id through ``reader`` (the app's store or catalogue)."""

    def __init__(self, repo: Repo, reader: Store) -> None:
        self.repo = repo
        self.reader = reader
        self.cache: OrderedDict[str, Official] = OrderedDict()
        self.lock = threading.Lock()

    def latest(self, contest: Contest) -> Official | None:
        sid = self.repo.latest_actas_snapshot(contest.id)
        if sid is None:
            return None
        with self.lock:
            hit = self.cache.get(sid)
            if hit is not None:
                self.cache.move_to_end(sid)
                return hit
        off = Official.build(sid, contest, self.reader.load_actas(sid))
        with self.lock:
            self.cache[sid] = off
            while len(self.cache) > OFFICIAL_CACHE:
                self.cache.popitem(last=False)
        return off


def reconcile_one(frame: pl.DataFrame, official: Official) -> dict[str, Any]:
    """Reconcile a one-copy frame (acta id already normalised) with ``pvt.reconcile``
    against the official acta. The margin is the whole snapshot's (computed once)."""
    contest = official.contest
    aid = str(frame["acta_id"][0])
    i = official.index.get(aid)
    rows = official.frame.slice(i, 1) if i is not None else official.frame.head(0)
    pair = official.pair
    res = reconcile(frame, rows, contest, pair=(pair[0], pair[1]) if pair else None,
                    snapshot_ids=[official.snapshot_id])
    r = res.copies.row(0, named=True)
    fields = [*FIELDS_BASE, *contest.candidate_columns]
    margin = pair[2] if pair else None
    net = int(r["net_change"])
    return {
        "status": "reconciled", "snapshot_id": official.snapshot_id,
        "category": r["category"],
        "differing_fields": [f for f in (r["differing_fields"] or "").split(";") if f],
        "official_status": r["official_status"], "net_change": net,
        "pair": [pair[0], pair[1]] if pair else None, "margin": margin,
        "pct_of_margin": (round(100.0 * net / margin, 6) if margin else None),
        "likely_wrong": r["likely_wrong"] or None,
        "flags": [f for f in (r["flags"] or "").split(";") if f],
        "copy": {f: r[f"copy_{f}"] for f in fields},
        "official": {f: r[f"official_{f}"] for f in fields},
    }


def pending(reason_es: str, reason_en: str) -> dict[str, Any]:
    return {"status": "pending", "snapshot_id": None, "category": None,
            "reason_es": reason_es, "reason_en": reason_en}


# -- the whole thing -----------------------------------------------------------------------
def submission_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """The public form of a stored submission (the same for 201 and every replay)."""
    payload = json.loads(row["payload"])
    return {
        "id": row["submission_id"], "client_id": row["client_id"],
        "account": row["account_id"], "contest_id": row["contest_id"],
        "acta_id": row["acta_id"], "received_at": iso_utc(row["received_at"]),
        "payload_sha256": row["payload_sha256"], "photo_sha256": row["photo_sha256"],
        "copy": payload["copy"], "reconciliation": json.loads(row["reconciliation"]),
        "ledger": {"seq": row["ledger_seq"], "entry_hash": row["entry_hash"]},
    }


class Conflict(AuthError):
    pass


class Submissions:
    def __init__(self, repo: Repo, reader: Store) -> None:
        self.repo = repo
        self.officials = Officials(repo, reader)

    def _existing(self, stored: Mapping[str, Any], req: Request) -> dict[str, Any]:
        if stored["request_sha256"] != req.request_sha256:
            raise Conflict(409, "client_id_reused",
                           f"client_id {req.client_id!r} ya se usó con otro contenido; use un "
                           "client_id nuevo para un envío distinto",
                           f"client_id {req.client_id!r} was already used with different "
                           "content; use a new client_id for a different submission")
        return dict(stored)

    def submit(self, principal: Principal, obj: Any) -> tuple[dict[str, Any], bool]:
        """Validate, reconcile and store one submission. Returns (stored row, created);
        raises :class:`Invalid` (4xx) or :class:`Conflict` (409)."""
        principal.require((Role.OBSERVER, Role.COORDINATOR, Role.ADMIN))
        req = read_request(obj)
        account = principal.account.account_id
        stored = self.repo.submission_by_key(account, req.client_id)
        if stored is not None:
            return self._existing(stored, req), False
        cid = req.contest_id or self.repo.default_contest()
        if cid is None:
            raise Invalid(422, "no_contest", "contest_id",
                          "el almacén no tiene contiendas: no se puede validar la copia",
                          "the store has no contests: the copy cannot be validated")
        contest = self.repo.contest(cid)
        if contest is None:
            raise Invalid(422, "unknown_contest", "contest_id",
                          f"contienda desconocida {cid[:80]!r}", f"unknown contest {cid[:80]!r}")
        copy = dict(req.copy)
        if copy.get("observer_id") is None:
            copy["observer_id"] = principal.pseudonym
        if req.photo_sha256 is not None:
            if self.repo.photo_meta(req.photo_sha256) is None:
                raise Invalid(422, "unknown_photo", "photo_sha256",
                              "no hay una foto con ese SHA-256: súbala primero a "
                              "/api/v1/observer/photos",
                              "there is no photo with that SHA-256: upload it first to "
                              "/api/v1/observer/photos")
            given = copy.get("image_sha256")
            if given is None:
                copy["image_sha256"] = req.photo_sha256
            elif not isinstance(given, str) or given.lower() != req.photo_sha256:
                raise Invalid(422, "photo_mismatch", "copy.image_sha256",
                              "copy.image_sha256 no coincide con photo_sha256",
                              "copy.image_sha256 does not match photo_sha256")
        check_copy_types(copy, contest)
        frame = parse_copy(copy, contest)
        official = self.officials.latest(contest)
        raw_id = str(frame["acta_id"][0])
        aid = official.normalise(raw_id) if official is not None else raw_id
        frame = frame.with_columns(pl.lit(aid).alias("acta_id"))
        areas, place = official.geography(aid) if official is not None else ([None] * 3, None)
        acc = principal.account
        if acc.role is not Role.ADMIN and not acc.scope.covers(aid, areas, place):
            raise Invalid(403, "out_of_scope", "copy.acta_id",
                          f"el acta {aid} está fuera del alcance de esta cuenta",
                          f"acta {aid} is outside this account's scope")
        if official is None:
            rec = pending("aún no hay una instantánea oficial por acta de esta contienda",
                          "there is no official per-acta snapshot of this contest yet")
        else:
            rec = reconcile_one(frame, official)
        payload = canonical_json({"client_id": req.client_id, "contest_id": cid,
                                  "copy": copy, "photo_sha256": req.photo_sha256})
        row = {
            "submission_id": f"sub_{secrets.token_hex(12)}", "account_id": account,
            "client_id": req.client_id, "contest_id": cid, "acta_id": aid,
            "acta_key": acta_key(aid), "area1_code": areas[0], "area2_code": areas[1],
            "area3_code": areas[2], "place_key": place_key(place) if place else None,
            "received_at": datetime.now(UTC), "request_sha256": req.request_sha256,
            "payload": payload, "payload_sha256": sha256_text(payload),
            "photo_sha256": req.photo_sha256, "official_snapshot_id": rec["snapshot_id"],
            "category": rec["category"], "reconciliation": canonical_json(rec),
        }
        stored, created = self.repo.record_submission(row)
        if not created:
            return self._existing(stored, req), False
        return stored, True
