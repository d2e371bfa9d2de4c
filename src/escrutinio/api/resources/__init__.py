"""The web layer, one module per resource (docs/api.md).

Each module declares its resource once (:class:`~escrutinio.api.resources.base.Resource`:
paths, summary, parameters, the result fetched through the Backend, its JSON payload and
the page that shows the same result); :func:`install_api` and :func:`install_pages` turn
the declarations into the JSON routes under ``/api/v1`` and the pages (Spanish at ``/``,
English under ``/en``). A few routes are not a page-and-twin pair (uploads, the
fingerprint image, the log, a mesa's personal answer, redirects): their module declares
them as plain routes, installed in the same order.

The order of :data:`API` is the order of the paths in the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from escrutinio.api.backend import Backend
from escrutinio.api.resources import (
    audit,
    contested,
    count,
    diff,
    forensics,
    history,
    mesa,
    projection,
    quickcount,
    reference,
    snapshots,
    verify,
)
from escrutinio.api.resources.base import PageRoutes, Resource, add_json, add_page

#: the JSON routes, in the OpenAPI document's order: a declaration, or a module's own route
API: tuple[Resource | Callable[[FastAPI, Backend], None], ...] = (
    snapshots.CONTESTS, snapshots.SNAPSHOTS, snapshots.SNAPSHOT, snapshots.install_proof,
    snapshots.install_ledger, count.STATE, count.MAP, projection.PROJECTION,
    contested.CONTESTED, verify.VERIFY, forensics.FORENSICS, audit.AUDIT,
    quickcount.QUICKCOUNT, forensics.install_fingerprint, verify.install_pvt,
    quickcount.install_estimate, history.HISTORY, history.HISTORY_UNTIL,
    history.PROJECTION_HISTORY, history.PROJECTION_HISTORY_UNTIL, diff.DIFF,
    mesa.install_api, reference.install_replay,
)

#: the pages (each language): a declaration with a page, or a module's own page routes
PAGES: tuple[Resource | Callable[[PageRoutes], None], ...] = (
    count.install_home, count.STATE, count.MAP, history.HISTORY, history.HISTORY_UNTIL,
    projection.PROJECTION, contested.CONTESTED, forensics.FORENSICS, audit.AUDIT,
    verify.VERIFY, verify.install_form, quickcount.QUICKCOUNT, quickcount.install_form,
    diff.install_picker, diff.DIFF, mesa.install_pages, reference.REFERENCE,
    snapshots.SNAPSHOTS,
)


def install_api(app: FastAPI, b: Backend) -> None:
    for item in API:
        if isinstance(item, Resource):
            add_json(app, b, item)
        else:
            item(app, b)


def install_pages(app: FastAPI, b: Backend, *, static_site: bool = False) -> None:
    for prefix, lang in (("", "es"), ("/en", "en")):
        routes = PageRoutes(app, b, prefix, lang, static_site)
        for item in PAGES:
            if isinstance(item, Resource):
                add_page(app, b, item, prefix, lang, static_site)
            else:
                item(routes)


def resources() -> list[Resource]:
    """Every declaration (JSON route, page or both)."""
    out: dict[str, Resource] = {}
    for item in (*API, *PAGES):
        if isinstance(item, Resource):
            out[item.name] = item
    return list(out.values())


__all__ = ["API", "PAGES", "install_api", "install_pages", "resources"]
