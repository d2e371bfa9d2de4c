-- escrutinio, migration 0005: the crawl frontier of the live follower
-- (escrutinio.live.frontier): the state of each item still to visit, saved so that a
-- restarted crawl resumes. One file for both databases. IF NOT EXISTS: stores where the
-- crawler created the table itself keep it.

CREATE TABLE IF NOT EXISTS live_crawl (
    contest_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (contest_id, kind, key)
);
