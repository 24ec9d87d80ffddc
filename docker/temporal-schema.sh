#!/bin/sh
# Temporal's databases and their schema, as `npm run cluster` sets them up (src/dev/cluster-schema.ts): each of
# `temporal` (persistence) and `temporal_visibility` (SQL visibility) created when missing, then
# `temporal-sql-tool setup-schema -v 0.0` (the version tables) and `update-schema -d <schema>/<dir>/versioned`
# (every versioned step the server of this version expects). Idempotent: a second run finds the databases and the
# schema current and changes nothing; after a server upgrade it applies the new steps.
#
# docker-compose.yml runs it in temporalio/admin-tools (service temporal-schema), whose schema directory is
# /etc/temporal/schema/postgresql/v12. Run it on a machine of this repository with the schema setup.mjs copied:
#   SQL_HOST=127.0.0.1 SQL_PORT=5432 SQL_USER=… SQL_PASSWORD=… \
#   SCHEMA_DIR=.tools/share/temporal-schema/postgresql/v12 PATH=.tools/bin:$PATH sh docker/temporal-schema.sh
set -eu

: "${SQL_HOST:?SQL_HOST: the PostgreSQL host}"
: "${SQL_USER:?SQL_USER: a PostgreSQL user that may create databases}"
: "${SQL_PASSWORD:?SQL_PASSWORD: its password}"
SQL_PORT="${SQL_PORT:-5432}"
SQL_PLUGIN="${SQL_PLUGIN:-postgres12}"
SCHEMA_DIR="${SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}"
# the database names the server config reads (config/temporal/server.yaml)
DBNAME="${DBNAME:-temporal}"
VISIBILITY_DBNAME="${VISIBILITY_DBNAME:-temporal_visibility}"
export SQL_HOST SQL_PORT SQL_USER SQL_PASSWORD SQL_PLUGIN

# psql only asks whether a database exists; the password reaches both tools through the environment
export PGHOST="$SQL_HOST" PGPORT="$SQL_PORT" PGUSER="$SQL_USER" PGPASSWORD="$SQL_PASSWORD" PGDATABASE=postgres

for pair in "$DBNAME:temporal" "$VISIBILITY_DBNAME:visibility"; do
  database="${pair%%:*}"
  dir="$SCHEMA_DIR/${pair#*:}/versioned"
  [ -d "$dir" ] || { echo "no schema directory $dir" >&2; exit 1; }
  export SQL_DATABASE="$database"
  exists="$(echo "SELECT count(*) FROM pg_database WHERE datname = :'db'" | psql -XtA -v ON_ERROR_STOP=1 -v db="$database")"
  if [ "$exists" = 0 ]; then
    temporal-sql-tool create-database
    echo "database $database created"
  fi
  temporal-sql-tool setup-schema -v 0.0
  temporal-sql-tool update-schema -d "$dir"
  echo "schema of $database: $(psql -XtA -d "$database" -c 'SELECT curr_version FROM schema_version')"
done
