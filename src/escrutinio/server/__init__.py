"""A shared server for observer networks (docs/observers.md, docs/deploy.md).

* :mod:`escrutinio.server.resilience` — server mode on PostgreSQL: stateless workers, the
  catalogue epoch, 503 + Retry-After while the database is down, ``/api/v1/health``.
* :mod:`escrutinio.server.repo` — every SQL statement of accounts, tokens, sessions,
  photos and submissions, on DuckDB and PostgreSQL.
* :mod:`escrutinio.server.auth` — tokens, roles, scopes, sessions, CSRF.
* :mod:`escrutinio.server.submissions` — validation, reconciliation and the idempotent,
  ledger-chained write of an observer's copy.
* :mod:`escrutinio.server.routes` — the observer/admin API and the coordinator pages
  (``install_observers``); :mod:`escrutinio.server.security` — security headers, CORS and
  the security log (``install_security``).
"""

from __future__ import annotations
