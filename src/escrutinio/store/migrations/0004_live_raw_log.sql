-- escrutinio, migration 0004: the live follower's raw log (escrutinio.live.rawlog,
-- docs/live.md): every response body once by its SHA-256, every fetch and every event,
-- appended by `watch`. Written in SQL both DuckDB and PostgreSQL accept (BYTEA and
-- DOUBLE PRECISION are DuckDB aliases of BLOB and DOUBLE). IF NOT EXISTS: stores where
-- `watch` created these tables itself (before this migration) keep them.

CREATE TABLE IF NOT EXISTS live_bodies (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    body BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS live_responses (
    seq BIGINT NOT NULL,
    run_id TEXT NOT NULL,
    cycle BIGINT NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL,
    url TEXT NOT NULL,
    scope TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status INTEGER,
    headers TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    elapsed_ms DOUBLE PRECISION NOT NULL,
    error TEXT,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS live_events (
    seq BIGINT NOT NULL,
    run_id TEXT NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    level TEXT NOT NULL,
    kind TEXT NOT NULL,
    scope TEXT,
    message_es TEXT NOT NULL,
    message_en TEXT NOT NULL,
    detail TEXT NOT NULL
);
