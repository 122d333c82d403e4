-- Differential privacy: each project's privacy budget ledger. All versions of a project's
-- permit draw on one budget. Amounts are kept as integers (epsilon in units of 1e-12, delta
-- in units of 1e-18) so that adding spends up never drifts; the per-spend rows also keep
-- the amounts as numbers for people reading the table. Rows are only ever inserted (spends)
-- or moved up (the running totals). Never a query result or a data value.
--
-- Migrations 5 and 6 are other changes; this one depends on neither and applies without
-- them.

-- The running total of a project: what the conditional UPDATE of a spend checks and
-- raises, so that concurrent spends serialize on this one row.
CREATE TABLE dp_budgets (
    project_id     TEXT PRIMARY KEY REFERENCES applications(id),
    spent_epsilon  BIGINT NOT NULL,
    spent_delta    BIGINT NOT NULL,
    queries        BIGINT NOT NULL
);

-- One row per charged query: who, when, under which permit version, how much, and the
-- hash of the question (a repeated question is not charged again: it gets the same noise).
CREATE TABLE dp_spends (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES applications(id),
    permit_id       TEXT NOT NULL REFERENCES permits(id),
    permit_version  BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    at              TEXT NOT NULL,
    epsilon         DOUBLE PRECISION NOT NULL,
    delta           DOUBLE PRECISION NOT NULL,
    epsilon_units   BIGINT NOT NULL,
    delta_units     BIGINT NOT NULL,
    query_hash      TEXT NOT NULL
);
CREATE UNIQUE INDEX dp_spends_question ON dp_spends (permit_id, permit_version, query_hash);
CREATE INDEX dp_spends_project ON dp_spends (project_id, at);
