-- The content fingerprint (SHA-256, hex) of the files a release was ingested from, so that
-- re-ingesting the same files into the same dataset is recognized and refused unless asked
-- for. NULL for releases committed before this migration.
ALTER TABLE releases ADD COLUMN source_fingerprint TEXT;
CREATE INDEX releases_source_fingerprint ON releases (dataset, source_fingerprint);
