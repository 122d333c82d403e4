-- Governance: accounts, sessions, project applications, data permits, public registry
-- results, citizen opt-outs, catalogue metadata.
-- Portable SQL: runs unchanged on SQLite and PostgreSQL. Times are TEXT (RFC 3339 UTC,
-- microseconds, fixed width: text order is time order); flags are BIGINT 0/1; lists and
-- structured terms are JSON text.

-- Users: the unique ids every audit entry names. `id` is chosen by an operator for local
-- accounts, derived from (issuer, subject) for OpenID Connect accounts ('oidc-...').
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    email         TEXT,
    active        BIGINT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE user_roles (
    user_id     TEXT NOT NULL REFERENCES users(id),
    role        TEXT NOT NULL,
    granted_at  TEXT NOT NULL,
    granted_by  TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
);

-- API tokens issued before accounts existed belong to a user named like their principal,
-- holding the roles its tokens carried.
INSERT INTO users (id, display_name, email, active, created_at, updated_at)
SELECT principal, principal, NULL, 1, MIN(created_at), MIN(created_at)
FROM api_tokens GROUP BY principal;
INSERT INTO user_roles (user_id, role, granted_at, granted_by)
SELECT principal, 'operator', MIN(created_at), 'migration' FROM api_tokens
WHERE (',' || roles || ',') LIKE '%,operator,%' GROUP BY principal;
INSERT INTO user_roles (user_id, role, granted_at, granted_by)
SELECT principal, 'producer', MIN(created_at), 'migration' FROM api_tokens
WHERE (',' || roles || ',') LIKE '%,producer,%' GROUP BY principal;
INSERT INTO user_roles (user_id, role, granted_at, granted_by)
SELECT principal, 'reviewer', MIN(created_at), 'migration' FROM api_tokens
WHERE (',' || roles || ',') LIKE '%,reviewer,%' GROUP BY principal;
INSERT INTO user_roles (user_id, role, granted_at, granted_by)
SELECT principal, 'researcher', MIN(created_at), 'migration' FROM api_tokens
WHERE (',' || roles || ',') LIKE '%,researcher,%' GROUP BY principal;
CREATE INDEX api_tokens_principal ON api_tokens (principal);

-- Local password accounts: only the argon2id PHC string is stored.
CREATE TABLE password_credentials (
    user_id     TEXT PRIMARY KEY REFERENCES users(id),
    phc         TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- External (OpenID Connect) identities mapped to local users.
CREATE TABLE external_identities (
    issuer         TEXT NOT NULL,
    subject        TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users(id),
    created_at     TEXT NOT NULL,
    last_login_at  TEXT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX external_identities_user ON external_identities (user_id);

-- Failed-login throttle, keyed by a SHA-256 of the login name as typed (never the name
-- itself: a mistyped login is sometimes a password). Rows exist for unknown logins too.
CREATE TABLE login_throttle (
    login_hash    TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    window_start  TEXT NOT NULL,
    locked_until  TEXT
);

-- Browser sessions: only the SHA-256 of the 256-bit session token is stored.
CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id),
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    revoked_at    TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Project applications. `form` is the applicant's JSON form; `submitted_at` is the first
-- submission (from then on reviewers and operators may see the application).
CREATE TABLE applications (
    id            TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL REFERENCES users(id),
    state         TEXT NOT NULL,
    form          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    submitted_at  TEXT
);
CREATE INDEX applications_owner ON applications (owner_id);
CREATE INDEX applications_state ON applications (state);

-- Team members (besides the owner), mirroring the form's team list.
CREATE TABLE application_members (
    application_id  TEXT NOT NULL REFERENCES applications(id),
    user_id         TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (application_id, user_id)
);
CREATE INDEX application_members_user ON application_members (user_id);

-- Who did what when: every transition (and review event) of an application, in order.
CREATE TABLE application_events (
    application_id  TEXT NOT NULL REFERENCES applications(id),
    seq             BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    from_state      TEXT,
    to_state        TEXT NOT NULL,
    actor           TEXT NOT NULL,
    at              TEXT NOT NULL,
    comment         TEXT,
    PRIMARY KEY (application_id, seq)
);

-- Review steps with the due date fixed when each step starts.
CREATE TABLE application_steps (
    application_id  TEXT NOT NULL REFERENCES applications(id),
    seq             BIGINT NOT NULL,
    step            TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    due_at          TEXT NOT NULL,
    completed_at    TEXT,
    PRIMARY KEY (application_id, seq)
);

-- Data permits: one per approved application, versioned. `expires_at` mirrors the current
-- version's expiry so that access checks are one indexed lookup.
CREATE TABLE permits (
    id               TEXT PRIMARY KEY,
    application_id   TEXT NOT NULL UNIQUE REFERENCES applications(id),
    current_version  BIGINT NOT NULL,
    expires_at       TEXT NOT NULL,
    issued_at        TEXT NOT NULL,
    issued_by        TEXT NOT NULL,
    activated_at     TEXT,
    activated_by     TEXT,
    revoked_at       TEXT,
    revoked_by       TEXT,
    revoke_reason    TEXT
);

-- Every version of every permit, immutable once written.
CREATE TABLE permit_versions (
    permit_id   TEXT NOT NULL REFERENCES permits(id),
    version     BIGINT NOT NULL,
    terms       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (permit_id, version)
);

-- Members of the current version of each permit (for access checks).
CREATE TABLE permit_members (
    permit_id  TEXT NOT NULL REFERENCES permits(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (permit_id, user_id)
);
CREATE INDEX permit_members_user ON permit_members (user_id);

-- Results and publications attached to a registered project (the registry's only input
-- that is not derived from applications and permits).
CREATE TABLE project_results (
    id              TEXT PRIMARY KEY,
    application_id  TEXT NOT NULL REFERENCES applications(id),
    title           TEXT NOT NULL,
    url             TEXT,
    published_on    TEXT,
    added_at        TEXT NOT NULL,
    added_by        TEXT NOT NULL
);
CREATE INDEX project_results_application ON project_results (application_id);

-- Citizen opt-outs: the hub person key only, never an identifier. A withdrawn opt-out keeps
-- its row (history); at most one opt-out per person is in force.
CREATE TABLE optouts (
    receipt_id    TEXT PRIMARY KEY,
    person_key    BIGINT NOT NULL,
    channel       TEXT NOT NULL,
    recorded_by   TEXT NOT NULL,
    opted_out_at  TEXT NOT NULL,
    withdrawn_at  TEXT,
    withdrawn_by  TEXT
);
CREATE UNIQUE INDEX optouts_in_force ON optouts (person_key) WHERE withdrawn_at IS NULL;

-- Operator-edited catalogue metadata per dataset (combined with release manifests for
-- HealthDCAT-AP). A dataset may be described before its first release.
CREATE TABLE dataset_metadata (
    dataset         TEXT PRIMARY KEY,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL,
    publisher       TEXT NOT NULL,
    contact_point   TEXT,
    legal_basis     TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    coding_systems  TEXT NOT NULL,
    access_rights   TEXT NOT NULL,
    keywords        TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    updated_by      TEXT NOT NULL
);
