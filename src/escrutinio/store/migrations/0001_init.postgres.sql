-- escrutinio PostgreSQL store, migration 0001: the initial schema.
-- Same tables and meaning as the DuckDB schema (store/schema.sql). Snapshots are
-- immutable: rows are inserted once, never updated; a correction arrives as a new snapshot.
-- Sort keys use COLLATE "C" so that ordering is bytewise, as in DuckDB and polars,
-- whatever the database's locale.

CREATE TABLE contests (
    contest_id TEXT COLLATE "C" PRIMARY KEY,
    definition TEXT NOT NULL           -- JSON of domain.Contest (candidate order matters)
);

CREATE TABLE snapshots (
    snapshot_id TEXT COLLATE "C" PRIMARY KEY,  -- SHA-256 (see sources.base.ParsedSnapshot)
    contest_id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,                -- 'actas' | 'units'
    level TEXT,
    as_of TIMESTAMPTZ NOT NULL,
    source_uri TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    part TEXT,
    parser TEXT NOT NULL,
    label TEXT COLLATE "C" NOT NULL,
    n_rows BIGINT NOT NULL,
    n_rejected BIGINT NOT NULL,
    n_findings BIGINT NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    escrutinio_version TEXT NOT NULL,
    metadata TEXT NOT NULL             -- JSON
);
CREATE INDEX snapshots_contest_idx ON snapshots (contest_id, kind);

CREATE TABLE actas (
    snapshot_id TEXT COLLATE "C" NOT NULL,
    acta_id TEXT COLLATE "C" NOT NULL,
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
CREATE INDEX actas_snapshot_idx ON actas (snapshot_id, acta_id);

CREATE TABLE units (
    snapshot_id TEXT COLLATE "C" NOT NULL,
    level TEXT COLLATE "C" NOT NULL,
    unit_code TEXT COLLATE "C" NOT NULL,
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
CREATE INDEX units_snapshot_idx ON units (snapshot_id, level, unit_code);

CREATE TABLE row_reports (
    seq BIGSERIAL PRIMARY KEY,         -- insertion order: ties on line keep it
    snapshot_id TEXT COLLATE "C" NOT NULL,
    severity TEXT NOT NULL,            -- 'reject' | 'flag'
    line BIGINT,
    acta_id TEXT,
    field TEXT,
    rule TEXT NOT NULL,
    message_es TEXT NOT NULL,
    message_en TEXT NOT NULL,
    raw TEXT
);
CREATE INDEX row_reports_snapshot_idx ON row_reports (snapshot_id, line);

CREATE TABLE geography (
    contest_id TEXT COLLATE "C" NOT NULL,
    code TEXT COLLATE "C" NOT NULL,
    name TEXT,
    level TEXT COLLATE "C" NOT NULL,
    parent TEXT,
    abroad BOOLEAN,
    alt_code TEXT
);
CREATE INDEX geography_contest_idx ON geography (contest_id, level, code);
