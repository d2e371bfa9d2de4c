-- escrutinio store, migration 0001 (DuckDB variant): the initial schema.
-- The same tables and meaning as 0001_init.postgres.sql; DuckDB sorts bytewise already,
-- so no COLLATE here, and row_reports keeps insertion order without a serial column.
-- Snapshots are immutable: rows are inserted once, never updated. A correction by the
-- authority arrives as a new snapshot, and the diff between snapshots shows it.
-- IF NOT EXISTS everywhere: a store created before versioned migrations (by
-- store/schema.sql, recorded in schema_version) already holds these tables, and this
-- migration then only records them (the baseline, docs/store.md).

CREATE TABLE IF NOT EXISTS contests (
    contest_id TEXT PRIMARY KEY,
    definition TEXT NOT NULL           -- JSON of domain.Contest (candidate order matters)
);

CREATE TABLE IF NOT EXISTS snapshots (
    snapshot_id TEXT PRIMARY KEY,      -- SHA-256 (see sources.base.ParsedSnapshot)
    contest_id TEXT NOT NULL,
    kind TEXT NOT NULL,                -- 'actas' | 'units'
    level TEXT,                        -- finest level of a unit snapshot
    as_of TIMESTAMPTZ NOT NULL,        -- when the authority published this state
    source_uri TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,       -- SHA-256 of the source bytes
    part TEXT,                         -- which cut of a multi-snapshot source
    parser TEXT NOT NULL,
    label TEXT NOT NULL,
    n_rows BIGINT NOT NULL,
    n_rejected BIGINT NOT NULL,
    n_findings BIGINT NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    escrutinio_version TEXT NOT NULL,
    metadata TEXT NOT NULL             -- JSON
);

CREATE TABLE IF NOT EXISTS actas (
    snapshot_id TEXT NOT NULL,
    acta_id TEXT NOT NULL,
    area1_code TEXT,
    area2_code TEXT,
    area3_code TEXT,
    abroad BOOLEAN,
    polling_place TEXT,
    status TEXT NOT NULL,
    observation TEXT,
    resolved BOOLEAN,
    electors BIGINT,
    "cast" BIGINT,
    blank BIGINT,
    "null" BIGINT,
    challenged BIGINT,
    votes BIGINT[]                     -- in the contest's candidate order
);

CREATE TABLE IF NOT EXISTS units (
    snapshot_id TEXT NOT NULL,
    level TEXT NOT NULL,
    unit_code TEXT NOT NULL,
    abroad BOOLEAN,
    actas_total BIGINT,
    actas_counted BIGINT,
    actas_processed BIGINT,
    actas_jee BIGINT,
    actas_pending BIGINT,
    actas_annulled BIGINT,
    actas_not_installed BIGINT,
    electors BIGINT,
    electors_total BIGINT,
    "cast" BIGINT,
    blank BIGINT,
    "null" BIGINT,
    challenged BIGINT,
    votes BIGINT[]
);

CREATE TABLE IF NOT EXISTS row_reports (
    snapshot_id TEXT NOT NULL,
    severity TEXT NOT NULL,            -- 'reject' | 'flag'
    line BIGINT,
    acta_id TEXT,
    field TEXT,
    rule TEXT NOT NULL,
    message_es TEXT NOT NULL,
    message_en TEXT NOT NULL,
    raw TEXT
);

CREATE TABLE IF NOT EXISTS geography (
    contest_id TEXT NOT NULL,
    code TEXT NOT NULL,
    name TEXT,
    level TEXT NOT NULL,
    parent TEXT,
    abroad BOOLEAN,
    alt_code TEXT
);
