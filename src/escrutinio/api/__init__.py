"""The web dashboard and HTTP API (docs/api.md): ``create_app`` builds the FastAPI app over
a store; ``escrutinio serve`` runs it and ``escrutinio export-site`` writes a static copy.

Modules: ``app`` (routes of the JSON API, HTTP caching, errors, the front cache),
``pages`` (HTML pages), ``backend`` (cached access to the analyses), ``catalog`` (the
read-only store view and the replay clock), ``replay`` (projections of a replayed count),
``geo`` (the map), ``svg`` (charts), ``schemas`` (OpenAPI), ``i18n``, ``export``.
"""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any) -> Any:
    """See :func:`escrutinio.api.app.create_app` (imported lazily: FastAPI is only needed
    when serving)."""
    from escrutinio.api.app import create_app as _create

    return _create(*args, **kwargs)


__all__ = ["create_app"]
