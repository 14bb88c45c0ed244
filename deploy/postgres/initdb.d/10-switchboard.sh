#!/bin/sh
# Run by the postgres image once, when its data volume is empty (docker-compose.yml mounts this
# directory on /docker-entrypoint-initdb.d). An existing volume is never touched: there, create
# the same roles and databases by hand.
#
#   switchboard          role + database of the app (DATABASE_URL; alembic owns the schema)
#   temporal             role of Temporal, owning temporal and temporal_visibility
#                        (deploy/temporal/setup-schema.sh creates their tables)
#
# Nobody else may connect to a database it does not own. Passwords go through psql variables,
# never into the SQL text.
set -eu

psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v app_password="$SWITCHBOARD_DB_PASSWORD" \
    -v temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE switchboard LOGIN PASSWORD :'app_password';
CREATE DATABASE switchboard OWNER switchboard;
REVOKE ALL ON DATABASE switchboard FROM PUBLIC;

-- CREATEDB: temporal-sql-tool's idempotent `create` step must be allowed to try
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
REVOKE ALL ON DATABASE temporal FROM PUBLIC;
REVOKE ALL ON DATABASE temporal_visibility FROM PUBLIC;
SQL
