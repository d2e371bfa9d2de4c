"""A shared server for observer networks (docs/observers.md, docs/deploy.md).

The observer server plugs into the web app as a router: ``escrutinio.api`` builds the app
and mounts :func:`escrutinio.server.routes.install_observers`; nothing here imports the web
app (tests/test_architecture.py). Server mode on PostgreSQL (stateless workers, the
catalogue epoch, 503 + Retry-After, ``/api/v1/health``) is the web app's:
:mod:`escrutinio.api.resilience`.

* :mod:`escrutinio.server.repo` — accounts, tokens, sessions, photos and submissions: who
  may sign in and see what, over :mod:`escrutinio.store.observers_repo` (every SQL
  statement, on DuckDB and PostgreSQL).
* :mod:`escrutinio.server.auth` — tokens, roles, scopes, sessions, CSRF.
* :mod:`escrutinio.server.submissions` — validation, reconciliation and the idempotent,
  ledger-chained write of an observer's copy.
* :mod:`escrutinio.server.routes` — the observer/admin API and the coordinator pages (one
  router, ``install_observers``); :mod:`escrutinio.server.security` — security headers,
  CORS and the security log (``install_security``).
"""

from __future__ import annotations
