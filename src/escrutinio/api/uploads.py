"""Files sent to the server: observers' copies (parallel tabulation) and the reports of
the quick count's sampled mesas.

``POST /api/v1/s/{ref}/pvt``, ``POST /api/v1/s/{ref}/quickcount/estimate`` and the
pages' upload forms accept one set of copies in the documented format
(:mod:`escrutinio.defence.observers`, docs/defence.md) as

* ``application/json`` — an array of records (``observer_copy.schema.json``);
* ``text/csv`` (also ``application/csv``) — the CSV, optionally gzipped;
* ``multipart/form-data`` — one file part (CSV, gzipped CSV, Parquet or a JSON array;
  what the pages' forms send), other parts being text fields (the quick count's ``seed``).

Nothing is parsed here: the copies go through
:func:`~escrutinio.defence.observers.parse_observer_records` and
:func:`~escrutinio.defence.observers.parse_observer_copies`, so a web upload follows
exactly the rules of ``escrutinio pvt`` (a file-level problem names file, line, field and
rule and nothing is read; a bad row is rejected and reported with its line and rule).

Limits: the request body (``Backend.upload_limit``, 32 MiB by default — a copy of every
acta of a national election is ~10 MB of CSV), what a gzipped file inflates to (8 times
that) and 200,000 JSON records. Past a limit the answer is ``413`` with a message saying
which limit and how to split the file.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl
from starlette.requests import Request

from escrutinio.defence import observers
from escrutinio.domain import Contest
from escrutinio.errors import EscrutinioError, IngestError, Location

UPLOAD_LIMIT: Final = 32 * 2**20
INFLATE_FACTOR: Final = 8
MAX_RECORDS: Final = 200_000
MAX_FIELD_CHARS: Final = 1000
JSON_TYPES: Final = frozenset({"application/json", "text/json"})
CSV_TYPES: Final = frozenset({"text/csv", "application/csv"})
MULTIPART: Final = "multipart/form-data"
#: multipart parts taken as the file when several files are sent (else the only one)
FILE_FIELDS: Final = ("copies", "reports", "file")
BODY_NAME: Final = "request body"


class UploadError(EscrutinioError):
    """An upload the server will not read; ``status`` is the HTTP status to answer."""

    status = 400


class TooLarge(UploadError):
    status = 413


class UnsupportedType(UploadError):
    status = 415


@dataclass(frozen=True, slots=True)
class Upload:
    """The file of a request and its other form fields."""

    data: bytes
    name: str  # for messages: the uploaded file's name, or "request body"
    kind: str  # "json" (an array of records) or "file" (CSV, gzipped CSV, Parquet, JSON)
    fields: dict[str, str] = field(default_factory=dict)


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n:,} bytes"


def too_large(limit: int, what_es: str = "el envío", what_en: str = "the upload") -> TooLarge:
    return TooLarge(
        f"{what_es} supera el límite de {_mib(limit)}; divida las copias en varios archivos "
        "y envíelos por separado",
        f"{what_en} exceeds the limit of {_mib(limit)}; split the copies into several files "
        "and send them separately")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit``
    (from ``Content-Length`` before reading anything, else while streaming)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    n = 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_upload(request: Request, limit: int) -> Upload:
    """The copies sent in ``request`` (JSON, CSV or a multipart file), not yet parsed."""
    mt = media_type(request)
    if mt not in JSON_TYPES | CSV_TYPES | {MULTIPART}:
        raise UnsupportedType(
            f"tipo de contenido no admitido {mt or '(ninguno)'!r}: envíe application/json "
            "(registros), text/csv o multipart/form-data (un archivo)",
            f"unsupported content type {mt or '(none)'!r}: send application/json (records), "
            "text/csv or multipart/form-data (one file)")
    body = await read_body(request, limit)
    if mt == MULTIPART:
        return parse_multipart(request.headers.get("content-type", ""), body)
    if not body.strip():
        raise IngestError(Location(BODY_NAME), "empty_body", "el cuerpo de la petición está "
                          "vacío: envíe las copias", "the request body is empty: send the copies")
    return Upload(body, BODY_NAME, "json" if mt in JSON_TYPES else "file")


def parse_multipart(content_type: str, body: bytes) -> Upload:
    """A ``multipart/form-data`` body (standard library MIME parser): one file part, the
    other parts as text fields."""
    from email import policy
    from email.parser import BytesParser

    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    msg = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart():
        raise IngestError(Location(BODY_NAME), "bad_multipart",
                          "el cuerpo no es un multipart/form-data legible (¿falta el "
                          "boundary?)", "the body is not a readable multipart/form-data "
                          "(is the boundary missing?)")
    files: list[tuple[str, str, bytes]] = []
    fields: dict[str, str] = {}
    for part in msg.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition") or ""
        filename = part.get_filename()
        payload = part.get_payload(decode=True) or b""
        if not isinstance(payload, bytes):
            continue
        if filename is not None:
            if filename or payload:  # a form sent without choosing a file: no file
                files.append((str(name), filename or str(name), payload))
        elif name:
            text = payload.decode("utf-8", "replace")
            if len(text) > MAX_FIELD_CHARS:
                raise IngestError(Location(BODY_NAME, None, str(name)), "field_too_long",
                                  f"el campo {name!r} supera {MAX_FIELD_CHARS} caracteres",
                                  f"field {name!r} exceeds {MAX_FIELD_CHARS} characters")
            fields[str(name)] = text
    chosen = [f for f in files if f[0] in FILE_FIELDS] or files
    if not chosen:
        raise IngestError(Location(BODY_NAME), "no_file",
                          "no se envió ningún archivo: elija el archivo de copias",
                          "no file was sent: choose the file of copies")
    if len(chosen) > 1:
        raise IngestError(Location(BODY_NAME, None, chosen[1][0]), "several_files",
                          "envíe un solo archivo por petición",
                          "send one file per request")
    _, filename, data = chosen[0]
    name = Path(filename.replace("\\", "/")).name or BODY_NAME
    if not data.strip():
        raise IngestError(Location(name), "empty_file", "el archivo está vacío",
                          "the file is empty")
    return Upload(data, name, "file", fields)


def _check_inflated(data: bytes, limit: int) -> None:
    """A gzipped file must not inflate past ``limit`` (a small upload can hide gigabytes).
    A damaged stream is left for the parser, which names it."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    n = 0
    buf = data
    try:
        while buf and not d.eof:
            n += len(d.decompress(buf, 1 << 20))
            if n > limit:
                raise too_large(limit, "el archivo descomprimido", "the decompressed file")
            buf = d.unconsumed_tail
    except zlib.error:
        return


def _looks_json(data: bytes) -> bool:
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] in (b"[", b"{")


def parse_copies(upload: Upload, contest: Contest, *, limit: int,
                 assume_tz: str = "UTC") -> observers.ObserverCopies:
    """Parse an upload with the observer-copy parsers; errors name the upload, not a
    temporary file."""
    if upload.kind == "json" or (upload.name.lower().endswith(".json")
                                 or (upload.kind == "file" and _looks_json(upload.data))):
        return _parse_json(upload, contest, assume_tz)
    if upload.data[:2] == b"\x1f\x8b":
        _check_inflated(upload.data, INFLATE_FACTOR * limit)
    with tempfile.TemporaryDirectory(prefix="escrutinio-upload-") as tmp:
        path = Path(tmp) / "copies"
        path.write_bytes(upload.data)
        try:
            copies = observers.parse_observer_copies(path, contest, assume_tz=assume_tz)
        except IngestError as exc:
            loc = exc.location
            raise IngestError(type(loc)(upload.name, loc.line, loc.field), exc.rule,
                              exc.detail_es, exc.detail_en) from None
        except (csv.Error, pl.exceptions.PolarsError) as exc:
            # what the parser did not foresee is still a bad file, not a server error
            raise IngestError(Location(upload.name), "unreadable_csv",
                              f"CSV ilegible: {exc}", f"unreadable CSV: {exc}") from None
    return dataclasses.replace(copies, source_uri=upload.name)


def _parse_json(upload: Upload, contest: Contest, assume_tz: str) -> observers.ObserverCopies:
    try:
        records: Any = json.loads(upload.data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise IngestError(Location(upload.name, line), "bad_json",
                          f"JSON ilegible: {exc}", f"unreadable JSON: {exc}") from None
    if not isinstance(records, list):
        raise IngestError(Location(upload.name), "not_an_array",
                          "se esperaba un arreglo JSON de copias (registros)",
                          "expected a JSON array of copies (records)")
    if len(records) > MAX_RECORDS:
        raise TooLarge(f"{len(records):,} registros superan el límite de {MAX_RECORDS:,} por "
                       "petición; envíelos en varias partes",
                       f"{len(records):,} records exceed the limit of {MAX_RECORDS:,} per "
                       "request; send them in several parts")
    return observers.parse_observer_records(records, contest, source=upload.name,
                                            assume_tz=assume_tz)


def error_response(exc: UploadError) -> Any:
    """The JSON error answer of an upload refused with ``exc.status`` (413, 415)."""
    from fastapi.responses import JSONResponse

    from escrutinio.api.app import error_payload

    return JSONResponse(error_payload(exc.status, exc), status_code=exc.status,
                        headers={"Cache-Control": "no-store"})
