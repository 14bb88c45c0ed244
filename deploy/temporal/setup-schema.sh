#!/bin/sh
# temporal-schema service of docker-compose.yml (temporalio/admin-tools image): creates Temporal's
# databases if missing and brings their schemas to the version of the image. Idempotent; runs on
# every `docker compose up`, so upgrading TEMPORAL_VERSION also upgrades the schema.
# Reads the same variables as the temporal service (x-temporal-db-env).
set -eu

export SQL_PLUGIN="${DB:?}"
export SQL_HOST="${POSTGRES_SEEDS:?}"
export SQL_PORT="${DB_PORT:?}"
export SQL_USER="${POSTGRES_USER:?}"
export SQL_PASSWORD="${POSTGRES_PWD:?}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

for target in "${DBNAME:?}:temporal" "${VISIBILITY_DBNAME:?}:visibility"; do
    db=${target%%:*}
    schema=${target#*:}
    echo "temporal-schema: database $db ($schema schema)"
    temporal-sql-tool --db "$db" create
    temporal-sql-tool --db "$db" setup-schema -v 0.0
    temporal-sql-tool --db "$db" update-schema -d "$SCHEMA_DIR/$schema/versioned"
done
echo "temporal-schema: done"
