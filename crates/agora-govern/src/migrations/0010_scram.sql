-- A SCRAM-SHA-256 verifier beside each local password's argon2id hash, for the PostgreSQL
-- protocol's SCRAM logins (PostgreSQL's format: iterations, salt, StoredKey, ServerKey; the
-- password cannot be recovered from it nor a login replayed). Passwords set before this
-- migration have none until they are set again.
ALTER TABLE password_credentials ADD COLUMN scram TEXT;
