"""Following a results backend live, without ever serving bad numbers (docs/live.md).

* :mod:`~escrutinio.live.config` — an election described by a TOML/JSON file;
* :mod:`~escrutinio.live.transport` — polite HTTP (browser headers, cookies, rate limit
  with jitter, timeouts, bounded backoff), with an injectable clock;
* :mod:`~escrutinio.live.classify` — the failure table, applied before any parsing;
* :mod:`~escrutinio.live.parse` — tolerant parsing of ONPE's 2021 and 2026 answers;
* :mod:`~escrutinio.live.validate` — checks before a state is accepted;
* :mod:`~escrutinio.live.rawlog` — every raw answer kept (buffered; stored through the
  store's raw-log repository, DuckDB or PostgreSQL);
* :mod:`~escrutinio.live.watcher` — the coordinator of a count night, built from
  :mod:`~escrutinio.live.schedule` (which tier is due, cold budget, back-off),
  :mod:`~escrutinio.live.fetch` (URLs, election id, one poll),
  :mod:`~escrutinio.live.accept` (classify → parse → validate → accept),
  :mod:`~escrutinio.live.build` (snapshots), sharing :mod:`~escrutinio.live.state`;
  restart in :mod:`~escrutinio.live.resume`, status in :mod:`~escrutinio.live.status`;
* :mod:`~escrutinio.live.crawl` — the cold path's crawl (geography, acta lists, actas)
  with its persisted frontier;
* :mod:`~escrutinio.live.replay` — following recorded folders through the same path;
* :mod:`~escrutinio.live.fake_onpe` — a fake ONPE on 127.0.0.1 for tests and rehearsal;
* :mod:`~escrutinio.live.soak` — time-compressed count nights against the fake.
"""

from escrutinio.live.classify import Classification, Outcome, RawResponse, classify
from escrutinio.live.config import LiveConfig, Scope, Stack, load_config
from escrutinio.live.watcher import Watcher

__all__ = ["Classification", "LiveConfig", "Outcome", "RawResponse", "Scope", "Stack",
           "Watcher", "classify", "load_config"]
