-- escrutinio, migration 0003: the risk-limiting audit's record (escrutinio.audit.workflow,
-- docs/audit.md): the audit and its manifest, the rounds and their draws, the hand counts
-- and every risk measurement. Rows are appended, never updated: a corrected hand count is a
-- new row with a higher seq. Written in SQL both DuckDB and PostgreSQL accept (one file
-- for both). IF NOT EXISTS: stores where the audit workflow created these tables itself
-- (before this migration) keep them and only record the migration.

CREATE TABLE IF NOT EXISTS audit_audits (
    audit_id TEXT PRIMARY KEY,
    contest_id TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    method TEXT NOT NULL,               -- 'macro' | 'alpha'
    design TEXT NOT NULL,               -- 'ppeb' | 'uniform'
    risk_limit TEXT NOT NULL,           -- exact fraction 'p/q'
    seed TEXT NOT NULL,
    policy TEXT NOT NULL,               -- JSON
    alpha_params TEXT NOT NULL,         -- JSON
    manifest_sha256 TEXT NOT NULL,
    n_actas BIGINT NOT NULL,
    total_weight TEXT NOT NULL,         -- exact integer as text
    scale TEXT NOT NULL,
    definition TEXT NOT NULL,           -- JSON: assertions, margins, manifest check...
    escrutinio_version TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_manifest (
    audit_id TEXT NOT NULL,
    ordinal BIGINT NOT NULL,
    acta_id TEXT NOT NULL,
    category TEXT NOT NULL,
    ballots BIGINT NOT NULL,
    weight TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_rounds (
    audit_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    first_draw BIGINT NOT NULL,
    last_draw BIGINT NOT NULL,
    size_rule TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_draws (
    audit_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    draw BIGINT NOT NULL,
    acta_id TEXT NOT NULL,
    ordinal BIGINT NOT NULL,
    detail TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_counts (
    audit_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    acta_id TEXT NOT NULL,
    votes BIGINT[],                     -- in the contest's candidate order
    blank BIGINT NOT NULL,
    "null" BIGINT NOT NULL,
    challenged BIGINT NOT NULL,
    source TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    line BIGINT,
    recorded_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_measures (
    audit_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    round INTEGER NOT NULL,
    measured_at TIMESTAMPTZ NOT NULL,
    n_draws BIGINT NOT NULL,
    status TEXT NOT NULL,
    risk DOUBLE PRECISION NOT NULL,
    summary TEXT NOT NULL               -- JSON
);

CREATE TABLE IF NOT EXISTS audit_external_manifest (
    audit_id TEXT,
    acta_id TEXT,
    ballots BIGINT
);
