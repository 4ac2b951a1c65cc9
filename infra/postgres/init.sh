#!/bin/sh
# One role per service, least privilege (run by the postgres image on a fresh volume, as the superuser):
#   MLFLOW_DB_USER  owns the mlflow (tracking) and mlflow_auth (basic auth) databases, nothing else
#   PREFECT_DB_USER owns the prefect database, nothing else
# Neither role may log in, create roles or databases anywhere else: PUBLIC loses CONNECT on every database.
# The superuser (POSTGRES_USER) stays with this container; no service connects with it. Idempotent: run it
# again to apply changed passwords, or once on a volume made before these roles existed (the postgres image
# runs init scripts on an empty volume only):
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/10-roles.sh
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
SQL
# A volume made before the roles existed holds tables the superuser owns: hand every object of each database's
# public schema (extension members aside) to the database's owner, so its service can migrate them.
for db in mlflow mlflow_auth prefect; do
  psql -v ON_ERROR_STOP=1 --quiet --username "$POSTGRES_USER" --dbname "$db" <<'SQL'
DO $do$
DECLARE
  owner name := pg_get_userbyid((SELECT datdba FROM pg_database WHERE datname = current_database()));
  r record;
BEGIN
  FOR r IN
    SELECT format('ALTER %s %s OWNER TO %I', kind, obj, owner) AS stmt FROM (
      SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                            ELSE 'TABLE' END, c.oid::regclass::text, c.relowner, 'pg_class'::regclass, c.oid,
             c.relkind = 'S' AND EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                         AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
        FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
      UNION ALL
      SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype::text, t.typowner,
             'pg_type'::regclass, t.oid, false
        FROM pg_type t WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'c', 'r')
         AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
      UNION ALL
      SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
             p.oid::regprocedure::text, p.proowner, 'pg_proc'::regclass, p.oid, false
        FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
    ) AS o(kind, obj, objowner, classid, objid, follows_its_table)
    WHERE objowner <> owner::regrole AND NOT follows_its_table
      AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = o.classid AND e.objid = o.objid AND e.deptype = 'e')
  LOOP
    EXECUTE r.stmt;
  END LOOP;
END
$do$;
SQL
done
# Prefect's migrations ask for pg_trgm; created here so its role needs no extension rights
psql -v ON_ERROR_STOP=1 --quiet --username "$POSTGRES_USER" --dbname prefect \
  -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm'
