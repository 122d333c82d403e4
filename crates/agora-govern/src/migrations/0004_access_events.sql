-- One row per query a session answered, refused or failed: who (actor), on what (target:
-- a release or a permit and its version), the SQL text, when, and how it ended. Never a
-- result or a data value. Rows are only ever inserted (the tamper-evident audit log will
-- take this over).
CREATE TABLE access_events (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    front TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    dataset TEXT,
    release_number BIGINT,
    permit_id TEXT,
    permit_version BIGINT,
    statement TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error_kind TEXT
);
CREATE INDEX access_events_at ON access_events (at);
CREATE INDEX access_events_actor ON access_events (actor, at);
CREATE INDEX access_events_permit ON access_events (permit_id, at);
