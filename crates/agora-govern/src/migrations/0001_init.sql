-- Portable SQL: runs unchanged on SQLite and PostgreSQL.
CREATE TABLE datasets (
    name        TEXT PRIMARY KEY,
    model       TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- A row here *is* the commit of a release: readers only see releases listed here.
CREATE TABLE releases (
    dataset        TEXT NOT NULL REFERENCES datasets(name),
    number         BIGINT NOT NULL,
    release_id     TEXT NOT NULL UNIQUE,
    manifest_path  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    row_count      BIGINT NOT NULL,
    quarantined    BIGINT NOT NULL,
    PRIMARY KEY (dataset, number)
);

-- Person-key registry: guarantees two identities never share a hub person key.
-- Holds no identity, only 128 bits of the keyed HMAC of it.
CREATE TABLE person_keys (
    person_key   BIGINT PRIMARY KEY,
    check_value  BIGINT NOT NULL,
    first_release TEXT NOT NULL
);

CREATE TABLE api_tokens (
    token_hash  TEXT PRIMARY KEY,
    principal   TEXT NOT NULL,
    roles       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
