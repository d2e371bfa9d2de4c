"""Reading a source's bytes safely: size caps, streaming decompression, UTF-8 checked
(re-exported by :mod:`escrutinio.sources.base`).

Imports no polars and no numpy, so that ``escrutinio ingest`` can start reading and
decompressing its file (:func:`prefetch`, in a thread: file reads, zlib and SHA-256
release the GIL) while the libraries it needs are still loading.
"""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from escrutinio.errors import IngestError, Location
from escrutinio.sources.sanitize import MAX_DECOMPRESSED_BYTES


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class SourceBytes:
    """The raw bytes of a source file, its SHA-256 and the decoded text."""

    path: str
    raw: bytes
    sha256: str
    text: bytes  # decompressed, validated UTF-8 bytes


def max_decompressed_bytes() -> int:
    """The cap on decompressed size: ``ESCRUTINIO_MAX_DECOMPRESSED_MB`` (MiB) or
    :data:`~escrutinio.sources.sanitize.MAX_DECOMPRESSED_BYTES`."""
    env = os.environ.get("ESCRUTINIO_MAX_DECOMPRESSED_MB", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env) << 20
    return MAX_DECOMPRESSED_BYTES


def gunzip_capped(raw: bytes, name: str, limit: int | None = None) -> bytes:
    """Decompress gzip data (every member) in a stream, refusing output beyond ``limit``
    bytes (rule ``decompressed_too_large``) before it is all in memory: a 2 MB file
    that expands to 2 GiB costs at most the cap, not 2 GiB."""
    cap = max_decompressed_bytes() if limit is None else limit
    chunk = 1 << 24
    parts: list[bytes] = []
    total = 0
    rest = raw
    try:
        while rest:
            d = zlib.decompressobj(wbits=31)
            buf = rest
            while True:
                piece = d.decompress(buf, chunk)
                total += len(piece)
                if total > cap:
                    raise IngestError(
                        Location(name), "decompressed_too_large",
                        f"el archivo descomprimido supera {cap >> 20:,} MiB (límite de "
                        "seguridad; ESCRUTINIO_MAX_DECOMPRESSED_MB lo cambia)",
                        f"the decompressed file exceeds {cap >> 20:,} MiB (a safety "
                        "limit; ESCRUTINIO_MAX_DECOMPRESSED_MB changes it)")
                parts.append(piece)
                buf = d.unconsumed_tail
                if d.eof or (not buf and not piece):
                    break
            if not d.eof:
                raise EOFError("compressed file ended before the end-of-stream marker")
            rest = d.unused_data.lstrip(b"\x00")  # gzip pads members with zeros
            if rest and rest[:2] != b"\x1f\x8b":
                raise OSError("trailing garbage after the gzip data")
    except (EOFError, zlib.error, OSError) as exc:
        raise IngestError(
            Location(name), "gzip_corrupt",
            f"el archivo gzip está truncado o dañado ({exc})",
            f"the gzip file is truncated or corrupt ({exc})",
        ) from None
    return b"".join(parts)


#: the last file read (key: path, size, mtime, encoding): the format detection and then the
#: parser read the same file, and reading it twice doubled the decompression and decoding
_LAST_READ: list[tuple[tuple[str, int, int, str], SourceBytes]] = []


def read_source(path: str | Path, *, encoding: str = "utf-8") -> SourceBytes:
    """Read a (possibly gzipped) text file and check it decodes; name the line if not."""
    p = Path(path)
    key = _key(p, encoding)
    with _LOCK:
        pending = _PENDING.get(key) if key is not None else None
    if pending is not None:
        pending.wait()  # a prefetch of this very file: wait for it rather than read twice
    if key is not None and _LAST_READ and _LAST_READ[0][0] == key:
        cached = _LAST_READ[0][1]
        return cached if cached.path == str(path) else SourceBytes(
            path=str(path), raw=cached.raw, sha256=cached.sha256, text=cached.text)
    src = _read_source(p, str(path), encoding)
    _LAST_READ[:] = [(key, src)] if key is not None else []
    return src


def _key(p: Path, encoding: str) -> tuple[str, int, int, str] | None:
    try:
        st = p.stat()
        return (str(p.resolve()), st.st_size, st.st_mtime_ns, encoding)
    except OSError:
        return None


_LOCK = threading.Lock()
#: files being read by :func:`prefetch` (key as in :data:`_LAST_READ`)
_PENDING: dict[tuple[str, int, int, str], threading.Event] = {}


def prefetch(path: str | Path) -> None:
    """Start reading ``path`` (as :func:`read_source` with UTF-8 does) in a thread; the
    next :func:`read_source` of the same file waits for it instead of reading it again.
    Nothing is reported from the thread: a file that cannot be read is read again by
    the caller, who gets the error as always."""
    p = Path(path)
    key = _key(p, "utf-8")
    if key is None or not p.is_file():
        return
    done = threading.Event()
    with _LOCK:
        if key in _PENDING or (_LAST_READ and _LAST_READ[0][0] == key):
            return
        _PENDING[key] = done

    def read() -> None:
        try:
            src = _read_source(p, str(path), "utf-8")
            with _LOCK:
                _LAST_READ[:] = [(key, src)]
        except BaseException:  # read_source reads the file again and says what is wrong
            pass
        finally:
            with _LOCK:
                _PENDING.pop(key, None)
            done.set()

    threading.Thread(target=read, name="escrutinio-prefetch", daemon=True).start()


def _read_source(p: Path, name: str, encoding: str) -> SourceBytes:
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise IngestError(Location(name), "file_not_found", "el archivo no existe",
                          "the file does not exist") from None
    if not raw:
        raise IngestError(Location(name), "empty_file", "el archivo está vacío",
                          "the file is empty")
    data = raw
    if raw[:2] == b"\x1f\x8b":
        data = gunzip_capped(raw, name)
        if not data:
            raise IngestError(Location(name), "empty_file",
                              "el archivo está vacío (gzip sin contenido)",
                              "the file is empty (gzip with no content)")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if encoding.lower().replace("-", "") == "utf8":
        try:
            if not data.isascii():  # ASCII is valid UTF-8, and isascii is far faster
                data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise IngestError(
                Location(name, line), "encoding",
                f"el texto no es UTF-8 válido (byte {exc.start}); ¿se guardó como Latin-1?",
                f"the text is not valid UTF-8 (byte {exc.start}); was it saved as Latin-1?",
            ) from None
    else:
        data = data.decode(encoding).encode("utf-8")
    if not data or data.isspace():  # what strip() would empty, without copying the text
        raise IngestError(Location(name), "empty_file", "el archivo está vacío",
                          "the file is empty")
    if b"\n" not in data and b"\r" in data:
        # classic Mac line endings (Excel's "CSV (Macintosh)"): lines end in CR alone
        data = data.replace(b"\r", b"\n")
    return SourceBytes(path=name, raw=raw, sha256=sha256_bytes(raw), text=data)


