-- escrutinio, migration 0002: observer accounts, tokens, browser sessions, photos and
-- submissions (docs/observers.md), and the ledger tables they are chained into.
-- The same file creates the tables on DuckDB (escrutinio.server.repo runs it there), so
-- it uses only SQL both accept: IF NOT EXISTS everywhere, TEXT/BIGINT/BYTEA/TIMESTAMPTZ.
-- Secrets are never stored: tokens and sessions keep only the SHA-256 of the secret.

-- the ledger (store/ledger.py creates them lazily too, with the same definitions)
CREATE TABLE IF NOT EXISTS ledger_entries (
    seq BIGINT PRIMARY KEY,
    entry_type TEXT NOT NULL,
    ref TEXT NOT NULL,
    entry TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_leaves (
    snapshot_id TEXT PRIMARY KEY,
    keys TEXT NOT NULL,
    hashes BYTEA NOT NULL
);

CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,        -- 'acc_' + 16 hex; also the pseudonym in the log
    name TEXT NOT NULL UNIQUE,          -- for people; never written to the log
    role TEXT NOT NULL CHECK (role IN ('observer', 'coordinator', 'admin')),
    scope TEXT NOT NULL,                -- JSON {"actas": [...], "places": [...], "areas": [...]}
    created_at TIMESTAMPTZ NOT NULL,
    disabled_at TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS tokens (
    token_id TEXT PRIMARY KEY,          -- 16 hex, public
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    secret_sha256 TEXT NOT NULL,        -- SHA-256 of the whole token 'esc_<id>.<secret>'
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS tokens_account_idx ON tokens (account_id);

CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,        -- 16 hex, public
    secret_sha256 TEXT NOT NULL,        -- SHA-256 of the whole cookie value
    token_id TEXT NOT NULL REFERENCES tokens (token_id),
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS photos (
    sha256 TEXT PRIMARY KEY,            -- content address: SHA-256 of bytes
    media_type TEXT NOT NULL,           -- image/jpeg | image/png | image/webp (by magic bytes)
    size BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),  -- first uploader
    received_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS submissions (
    submission_id TEXT PRIMARY KEY,     -- 'sub_' + 24 hex
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    client_id TEXT NOT NULL,            -- the client's idempotency key
    contest_id TEXT NOT NULL,
    acta_id TEXT NOT NULL,              -- normalised against the official ids
    acta_key TEXT NOT NULL,             -- acta_id as scopes compare it (numeric: by value)
    area1_code TEXT,                    -- where the official acta is, at receipt (scopes)
    area2_code TEXT,
    area3_code TEXT,
    place_key TEXT,                     -- its polling place, upper case, spaces collapsed
    received_at TIMESTAMPTZ NOT NULL,
    request_sha256 TEXT NOT NULL,       -- the request as sent: a replay must match it
    payload TEXT NOT NULL,              -- canonical JSON {client_id, contest_id, copy, photo_sha256}
    payload_sha256 TEXT NOT NULL,
    photo_sha256 TEXT REFERENCES photos (sha256),
    official_snapshot_id TEXT,          -- the official snapshot reconciled against (NULL: pending)
    category TEXT,                      -- defence.pvt category (NULL: pending)
    reconciliation TEXT NOT NULL,       -- canonical JSON
    ledger_seq BIGINT NOT NULL UNIQUE REFERENCES ledger_entries (seq),
    UNIQUE (account_id, client_id)      -- idempotency across processes and nodes
);
CREATE INDEX IF NOT EXISTS submissions_acta_idx ON submissions (contest_id, acta_id);
CREATE INDEX IF NOT EXISTS submissions_key_idx ON submissions (acta_key);
CREATE INDEX IF NOT EXISTS submissions_account_idx ON submissions (account_id);
