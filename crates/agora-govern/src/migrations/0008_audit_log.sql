-- The tamper-evident audit log (agora-audit): one row per entry, the leaf of a Merkle tree.
-- `leaf` is the entry exactly as hashed (compact JSON); `leaf_hash` is its RFC 6962 leaf hash
-- (hex). The other columns repeat fields of the leaf so views can filter on an index;
-- `agora audit verify` checks them against the leaf. Rows are only ever inserted.
CREATE TABLE audit_entries (
    seq        BIGINT PRIMARY KEY,
    at         TEXT NOT NULL,
    category   TEXT NOT NULL,
    event      TEXT NOT NULL,
    actor      TEXT NOT NULL,
    project    TEXT,
    permit_id  TEXT,
    outcome    TEXT NOT NULL,
    leaf       TEXT NOT NULL,
    leaf_hash  TEXT NOT NULL
);
CREATE INDEX audit_entries_at ON audit_entries (at);
CREATE INDEX audit_entries_actor ON audit_entries (actor, seq);
CREATE INDEX audit_entries_project ON audit_entries (project, seq);
CREATE INDEX audit_entries_category ON audit_entries (category, seq);

-- The log's size. Every append updates this one row first: the update serializes appenders
-- (SQLite's write lock, PostgreSQL's row lock) so positions are dense and in commit order.
CREATE TABLE audit_state (
    id    BIGINT PRIMARY KEY,
    size  BIGINT NOT NULL
);
INSERT INTO audit_state (id, size) VALUES (1, 0);

-- Signed tree heads, as published (JSON of agora_audit::SignedTreeHead).
CREATE TABLE audit_heads (
    tree_size  BIGINT PRIMARY KEY,
    signed     TEXT NOT NULL
);
