-- Retention of the audit log. Entries older than the retention period move into archived
-- segment files (agora-audit's segment format: the entries and a range proof against a
-- signed head); their rows leave `audit_entries`, and only their leaf hashes stay, in
-- `audit_archived`, so the tree, its proofs and its heads go on as before.
CREATE TABLE audit_archived (
    seq        BIGINT PRIMARY KEY,
    leaf_hash  TEXT NOT NULL
);

-- One row per archived segment: entries first_seq..end_seq (end excluded), in `file` under
-- the data directory's audit folder, with the file's SHA-256 and the signed head its range
-- proof leads to.
CREATE TABLE audit_segments (
    first_seq    BIGINT PRIMARY KEY,
    end_seq      BIGINT NOT NULL,
    file         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    head_size    BIGINT NOT NULL,
    archived_at  TEXT NOT NULL
);

-- The citizens' view: answered queries per month, project and dataset, counted in the
-- transaction of each access entry (so archiving entries keeps their counts).
CREATE TABLE audit_activity (
    month    TEXT NOT NULL,
    project  TEXT NOT NULL,
    dataset  TEXT NOT NULL,
    queries  BIGINT NOT NULL,
    PRIMARY KEY (month, project, dataset)
);
