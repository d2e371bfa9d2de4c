-- escrutinio, migration 0006: the vote type (batch) of a unit row. A source may publish
-- a unit in several rows, one per vote type ("county X, election day" and "county X,
-- mail"; docs/formats.md, per-unit format): the units table keeps the type of each row.
-- NULL (or '') is "not given": every row stored before this migration, and every row of
-- an untyped source. One file for both databases; IF NOT EXISTS: applying it to a store
-- that already has the column changes nothing.

ALTER TABLE units ADD COLUMN IF NOT EXISTS vote_type TEXT;
