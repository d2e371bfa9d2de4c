"""Exports: ``escrutinio export-site`` (a static copy of the dashboard for any web server or
CDN) and spreadsheet CSV files that a spreadsheet cannot turn into formulas
(:func:`spreadsheet_safe`, :func:`write_spreadsheet_csv`).

Every page is fetched from the real application (so the copy is byte for byte what the
server would send) and written as ``<path>/index.html``; its JSON twin is written at the
``.json`` address the page links to. Pages that do not apply to a snapshot (a per-acta
analysis of an aggregate snapshot) are skipped and listed in the report.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from escrutinio.domain import Level, SnapshotKind
from escrutinio.sources.sanitize import FORMULA_PATTERN


def spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with nested values flattened to text and every text value that a
    spreadsheet would evaluate (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return) prefixed with an apostrophe (OWASP's advice for CSV injection).
    Number columns are left as they are: ``-12`` stays a number."""
    flat = frame.with_columns(
        [pl.col(c).list.eval(pl.element().cast(pl.String)).list.join(", ")
         for c, t in frame.schema.items() if isinstance(t, pl.List)]
        + [pl.col(c).struct.json_encode() for c, t in frame.schema.items()
           if isinstance(t, pl.Struct)])
    risky = f"{FORMULA_PATTERN}|^[\\t\\r]"
    return flat.with_columns([
        pl.when(pl.col(c).str.contains(risky)).then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c)).alias(c)
        for c, t in flat.schema.items() if t == pl.String])


def write_spreadsheet_csv(frame: pl.DataFrame, path: str | Path) -> None:
    """A CSV for a spreadsheet: UTF-8 with BOM, nested values as text, no formula."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    spreadsheet_safe(frame).write_csv(p, include_bom=True)


def site_urls(backend: Any, *, snapshots: str = "all") -> tuple[list[str], list[str]]:
    """(page paths without language prefix, JSON addresses) of the static copy."""
    from escrutinio.api.pages import previous_snapshot

    b = backend
    cid = b.contest_id()
    every = b.store.list_snapshots(cid)
    if snapshots == "latest":
        chosen = [b.overview_snapshot(cid)]
        acta = [s for s in every if s.kind is SnapshotKind.ACTAS]
        if acta and acta[-1] not in chosen:
            chosen.append(acta[-1])
    elif snapshots == "actas":
        chosen = [s for s in every if s.kind is SnapshotKind.ACTAS]
    else:
        chosen = every
    pages = ["/", "/snapshots/", "/history/", "/api/"]
    jsons = ["/api/v1/snapshots.json", "/api/v1/history.json",
             "/api/v1/projection-history.json", "/api/v1/contests.json",
             "/api/v1/openapi.json", "/api/v1/ledger.json"]
    for s in chosen:
        sid = s.snapshot_id
        pages.append(f"/s/{sid}/")
        jsons += [f"/api/v1/s/{sid}.json", f"/api/v1/s/{sid}/state/national.json"]
        for lv in b.levels_of(s):
            if lv is Level.NATIONAL:
                continue
            pages.append(f"/s/{sid}/map/{lv.value}/")
            jsons += [f"/api/v1/s/{sid}/state/{lv.value}.json",
                      f"/api/v1/s/{sid}/map/{lv.value}.json"]
        pages.append(f"/s/{sid}/projection/")  # every page links it (skipped if it fails)
        jsons.append(f"/api/v1/s/{sid}/projection.json")
        if s.kind is SnapshotKind.ACTAS:
            for name in ("contested", "verify", "quickcount", "forensics", "audit"):
                pages.append(f"/s/{sid}/{name}/")
                jsons.append(f"/api/v1/s/{sid}/{name}.json")
            jsons.append(f"/api/v1/s/{sid}/forensics/fingerprint.png")
        prev = previous_snapshot(b, s)
        if prev is not None:
            pages.append(f"/diff/{prev.snapshot_id}/{sid}/")
            jsons.append(f"/api/v1/diff/{prev.snapshot_id}/{sid}.json")
    return pages, jsons


def _target(root: Path, url: str) -> Path:
    path = urlsplit(url).path.lstrip("/")
    if not path or path.endswith("/"):
        return root / path / "index.html"
    return root / path


def export_site(db: str | Path | None, directory: str | Path, *, snapshots: str = "all",
                langs: tuple[str, ...] = ("es", "en"), projection_sims: int = 10_000,
                baseline: str = "auto", progress: Any = None,
                backend: Any = None) -> dict[str, Any]:
    """Write the static copy of the dashboard over ``db`` (or over ``backend``, reusing
    what a running app already computed) into ``directory``; return a report."""
    import warnings

    from escrutinio.api.app import STATIC_DIR, create_app

    with warnings.catch_warnings():  # starlette's note about httpx vs httpx2
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    app = create_app(db, static_site=True, projection_sims=projection_sims, baseline=baseline,
                     backend=backend)
    try:
        pages, jsons = site_urls(app.state.backend, snapshots=snapshots)
        urls = [("/en" + p if lang == "en" else p) for lang in langs for p in pages] + jsons
        written, skipped, total = _fetch(TestClient(app, raise_server_exceptions=True), root,
                                         urls, progress)
    finally:
        if backend is None:  # the store opened here: a DuckDB file stays held (read-only:
            app.state.backend.store.close()  # no writer may open it) until it is closed
    static = root / "static"
    if static.exists():
        shutil.rmtree(static)
    shutil.copytree(STATIC_DIR, static)
    n_static = sum(1 for _ in static.rglob("*") if _.is_file())
    total += sum(p.stat().st_size for p in static.rglob("*") if p.is_file())
    return {"directory": str(root), "n_files": written + n_static, "n_pages": written,
            "bytes": total, "skipped": skipped, "snapshots": snapshots, "langs": list(langs)}


def _fetch(client: Any, root: Path, urls: list[str], progress: Any
           ) -> tuple[int, list[dict[str, Any]], int]:
    """Fetch every address through ``client`` and write it under ``root``: (files
    written, addresses skipped, bytes written)."""
    written, skipped, total = 0, [], 0
    with client:
        for i, url in enumerate(urls):
            r = client.get(url)
            if r.status_code != 200:
                body = r.json() if "json" in r.headers.get("content-type", "") else {}
                skipped.append({"url": url, "status": r.status_code,
                                "message_es": body.get("message_es", ""),
                                "message_en": body.get("message_en", "")})
                continue
            target = _target(root, url)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(r.content)
            written += 1
            total += len(r.content)
            if progress is not None and (i + 1) % 50 == 0:
                progress.print(f"{i + 1}/{len(urls)}")
    return written, skipped, total
