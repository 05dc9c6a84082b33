-- PostgreSQL roles of the Zoom connector: one owner that migrates the
-- schema, and logins that reach only what they need. Run once per
-- database, as a role that may create roles (nothing secret here: set the
-- passwords afterwards with psql's \password, which never shows them):
--
--   psql -v owner=zoom_owner -v writer=zoom_writer -v reader=zoom_reader \
--        -v schema=zoom -d "$ADMIN_DATABASE_URL" -f deploy/postgres/roles.sql
--   psql -d "$ADMIN_DATABASE_URL" -c '\password zoom_owner'   (and the others)
--
-- Then the owner migrates (the writer binary with WRITER_MIGRATE_ONLY=true
-- and the owner's DATABASE_URL), and the writer runs on its own login,
-- which may read and change the rows of the schema's tables and nothing
-- else: no table created, altered, dropped or truncated. zoomctl's reads
-- (snapshot, status, provision log) take the reader login.
\set ON_ERROR_STOP on

CREATE ROLE :"owner" LOGIN;
CREATE ROLE :"writer" LOGIN;
CREATE ROLE :"reader" LOGIN;

-- The schema and everything in it belong to the owner.
CREATE SCHEMA :"schema" AUTHORIZATION :"owner";
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;
GRANT USAGE ON SCHEMA :"schema" TO :"writer", :"reader";
-- Nobody but the owner creates anything, in this schema or in public.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

ALTER ROLE :"owner" SET search_path = :"schema";
ALTER ROLE :"writer" SET search_path = :"schema";
ALTER ROLE :"reader" SET search_path = :"schema";

-- Every table and sequence the owner's migrations create, now and later.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"writer";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO :"writer";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
    GRANT SELECT ON TABLES TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
    GRANT SELECT ON SEQUENCES TO :"reader";
