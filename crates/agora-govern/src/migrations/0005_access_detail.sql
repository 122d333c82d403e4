-- What each access touched and released: the tables read (a JSON array of names), the rows
-- returned and the cells disclosure control suppressed (counts only, never values).
ALTER TABLE access_events ADD COLUMN tables_read TEXT;
ALTER TABLE access_events ADD COLUMN rows_returned BIGINT;
ALTER TABLE access_events ADD COLUMN cells_suppressed BIGINT;
-- The disclosure ledger: for every group a permit's answers released, how many persons it
-- rests on and a sketch of their (keyed, hashed) set, so later groups differing from it by
-- fewer than k persons can be withheld. No value, no person key.
CREATE TABLE disclosure_ledger (
    id TEXT PRIMARY KEY,
    permit_id TEXT NOT NULL,
    at TEXT NOT NULL,
    persons BIGINT NOT NULL,
    sketch TEXT NOT NULL
);
CREATE INDEX disclosure_ledger_persons ON disclosure_ledger (permit_id, persons);
