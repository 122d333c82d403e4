-- Export requests: a researcher asks to take a result file out of the hub under a data
-- permit. The file itself lives in the data directory (`exports/<id>.csv`); the store keeps
-- who asked, when, under which permit version, the statement, the file's size and SHA-256,
-- and every decision. Never a data value.
CREATE TABLE export_requests (
    id              TEXT PRIMARY KEY,
    permit_id       TEXT NOT NULL REFERENCES permits(id),
    permit_version  BIGINT NOT NULL,
    project_id      TEXT NOT NULL REFERENCES applications(id),
    requested_by    TEXT NOT NULL REFERENCES users(id),
    requested_at    TEXT NOT NULL,
    statement       TEXT NOT NULL,
    format          TEXT NOT NULL,
    row_count       BIGINT NOT NULL,
    byte_count      BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    status          TEXT NOT NULL,
    decided_by      TEXT,
    decided_at      TEXT,
    reason          TEXT
);
CREATE INDEX export_requests_project ON export_requests (project_id, requested_at);
CREATE INDEX export_requests_status ON export_requests (status, requested_at);
-- Every step of an export request (requested, approved, rejected), in order: rows are only
-- ever inserted, so every decision is kept.
CREATE TABLE export_events (
    export_id  TEXT NOT NULL REFERENCES export_requests(id),
    seq        BIGINT NOT NULL,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    status     TEXT NOT NULL,
    reason     TEXT,
    PRIMARY KEY (export_id, seq)
);
