#!/bin/sh
# The Compose deployment's PostgreSQL roles (roles.sql), made once when the
# database's volume is new (docker-entrypoint-initdb.d). The passwords come
# from the environment through psql's \getenv, never a command's arguments.
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
	-v owner=zoom_owner -v writer=zoom_writer -v reader=zoom_reader -v schema=zoom \
	-f /zoom/roles.sql
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" <<'SQL'
\getenv owner_pw ZOOM_DB_OWNER_PASSWORD
\getenv writer_pw ZOOM_DB_WRITER_PASSWORD
\getenv reader_pw ZOOM_DB_READER_PASSWORD
ALTER ROLE zoom_owner PASSWORD :'owner_pw';
ALTER ROLE zoom_writer PASSWORD :'writer_pw';
ALTER ROLE zoom_reader PASSWORD :'reader_pw';
SQL
