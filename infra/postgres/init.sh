#!/bin/sh
# One role per service, least privilege (run by the postgres image on a fresh volume, as the superuser):
#   MLFLOW_DB_USER  owns the mlflow (tracking) and mlflow_auth (basic auth) databases, nothing else
#   PREFECT_DB_USER owns the prefect database, nothing else
# Neither role may log in, create roles or databases anywhere else: PUBLIC loses CONNECT on every database.
# The superuser (POSTGRES_USER) stays with this container; no service connects with it. Idempotent: run again
# (docker compose exec postgres sh /docker-entrypoint-initdb.d/10-roles.sh) to apply changed passwords.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v mlflow_user="$MLFLOW_DB_USER" -v mlflow_password="$MLFLOW_DB_PASSWORD" \
  -v prefect_user="$PREFECT_DB_USER" -v prefect_password="$PREFECT_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I', r) FROM unnest(ARRAY[:'mlflow_user', :'prefect_user']) AS r
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec
SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L',
              r, p)
  FROM (VALUES (:'mlflow_user', :'mlflow_password'), (:'prefect_user', :'prefect_password')) AS v(r, p) \gexec
SELECT format('CREATE DATABASE %I OWNER %I', d, o)
  FROM (VALUES ('mlflow', :'mlflow_user'), ('mlflow_auth', :'mlflow_user'), ('prefect', :'prefect_user')) AS v(d, o)
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = d) \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', d, o)
  FROM (VALUES ('mlflow', :'mlflow_user'), ('mlflow_auth', :'mlflow_user'), ('prefect', :'prefect_user')) AS v(d, o)
  \gexec
REVOKE ALL ON DATABASE postgres, mlflow, mlflow_auth, prefect FROM PUBLIC;
-- Prefect's migrations ask for pg_trgm; created here so its role needs no extension rights
\connect prefect
CREATE EXTENSION IF NOT EXISTS pg_trgm;
SQL
