"""A server that follows a DuckDB store while another process (or thread) writes to it.

``escrutinio serve`` on a DuckDB file and ``serve --watch`` read the store through a
:class:`FollowingCatalog`: the snapshot list and the contests are read again when the
store's *catalogue epoch* (:meth:`~escrutinio.store.duckdb_store.DuckDBStore.catalog_epoch`:
how many snapshots and contests, the newest ingest time) moves. The epoch is checked at
most once every ``interval`` seconds (one small query; the file itself is held only while
it is used, see :mod:`escrutinio.store.duckdb_store`). As in the PostgreSQL server mode
(:mod:`escrutinio.api.resilience`), every request carries the epoch it was answered
under, so the front cache and the page cache never serve a body from before a new
snapshot once the server has seen it; results keyed by snapshot ids stay cached (a
snapshot never changes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable
from typing import Any

from escrutinio.api.catalog import CatalogStore
from escrutinio.errors import EscrutinioError
from escrutinio.store.base import Store

log = logging.getLogger("escrutinio.api")

#: seconds between two checks of the catalogue epoch
EPOCH_INTERVAL = 1.0
#: a following server releases the DuckDB file after this many idle seconds
LEASE_S = 0.5  # = escrutinio.store.duckdb_store.DEFAULT_LEASE (not imported: no duckdb here)


class FollowingCatalog(CatalogStore):
    """A :class:`CatalogStore` that reloads when the inner store's epoch moves."""

    def __init__(self, inner: Store, *, interval: float = EPOCH_INTERVAL) -> None:
        super().__init__(inner)
        self.interval = interval
        self._check_lock = threading.Lock()
        self.epoch: Hashable = self._epoch()
        self._checked = time.monotonic()

    def _epoch(self) -> Hashable:
        with self.lock:
            return self.inner.catalog_epoch()

    def due(self) -> bool:
        return time.monotonic() - self._checked >= self.interval

    def check(self) -> Hashable:
        """The current epoch, reloading the catalogue when it moved (at most once per
        ``interval``; a busy store keeps the last catalogue, which is still true)."""
        if not self.due() or not self._check_lock.acquire(blocking=False):
            return self.epoch
        try:
            try:
                epoch = self._epoch()
            except EscrutinioError as exc:  # StoreBusyError: answer from what we have
                log.warning("catalogue epoch unavailable: %s", exc)
                return self.epoch
            if epoch != self.epoch:
                self.reload(epoch)
            self._checked = time.monotonic()
            return self.epoch
        finally:
            self._check_lock.release()

    def reload(self, epoch: Hashable) -> None:
        with self.lock:
            snaps = tuple(self.inner.list_snapshots())
            contests = {c.id: c for c in self.inner.contests()}
            # supersets first: a reader between two assignments finds what it looks up
            self._contests = contests
            self._by_id = {s.snapshot_id: s for s in snaps}
            self._all = snaps
            self.epoch = epoch


class EpochGate:
    """ASGI layer (outside the front cache): settles each request's catalogue epoch."""

    def __init__(self, app: Any, catalog: FollowingCatalog) -> None:
        self.app = app
        self.catalog = catalog

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.concurrency import run_in_threadpool

        from escrutinio.api.resilience import _EPOCH, EPOCH_SCOPE_KEY

        cat = self.catalog
        epoch = await run_in_threadpool(cat.check) if cat.due() else cat.epoch
        scope[EPOCH_SCOPE_KEY] = epoch
        token = _EPOCH.set(epoch)
        try:
            await self.app(scope, receive, send)
        finally:
            _EPOCH.reset(token)


def install(app: Any, backend: Any) -> None:
    """Make ``app`` follow its :class:`FollowingCatalog`: epoch-keyed page caches and the
    epoch gate in front of the front cache."""
    from escrutinio.api.resilience import EpochCache, ResultCache

    cat = backend.store
    if not isinstance(cat, FollowingCatalog):
        return
    backend.bodies = EpochCache(backend.bodies.size)
    backend.results = ResultCache(backend.results.size)
    app.hot = EpochGate(app.hot, cat)


__all__ = ["EPOCH_INTERVAL", "LEASE_S", "EpochGate", "FollowingCatalog", "install"]
