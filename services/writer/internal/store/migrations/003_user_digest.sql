-- A service user's row remembers the digest of every record a users page
-- gave for it (the user, its grants and attributes) and the run that last
-- compared them one by one. A later page with the same digest needs no
-- comparison at all: only the user row is marked as seen.
ALTER TABLE records ADD COLUMN digest bytea, ADD COLUMN diffed_at bigint NOT NULL DEFAULT 0;
