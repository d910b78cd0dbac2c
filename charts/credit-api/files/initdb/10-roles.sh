#!/bin/sh
# The prediction store's roles, created by the bundled PostgreSQL (charts/credit-api).
#
# The postgres image's entrypoint runs this once, when it initialises an empty data directory,
# with PostgreSQL listening on its local socket only: it executes it (or sources it: no `exit`,
# no `set`, variables prefixed store_roles_), as POSTGRES_USER, the superuser, on POSTGRES_DB.
# The StatefulSet passes the role names (CREDIT_DB_OWNER, _WRITER, _READER) and the directory
# of their password files (CREDIT_DB_PASSWORDS_DIR: owner-password, writer-password,
# reader-password, from the database Secret).
#
# - the owner owns the schema: the migration (an init container of the API pod) runs as it and
#   grants the writer and reader what prediction_store.privileges lists;
# - the writer (the API) and the reader (drift jobs) get only CONNECT here; none of the three
#   is a superuser or may create roles or databases.
#
# Idempotent: run it again to give a data volume initialised by an earlier chart its roles (its
# tables pass to the owner), or to set the passwords again:
#   kubectl -n NAMESPACE exec STATEFULSET-POD -- sh /docker-entrypoint-initdb.d/10-roles.sh
store_roles_password_file="${POSTGRES_PASSWORD_FILE:-}"
if [ -z "${PGPASSWORD:-}" ] && [ -n "$store_roles_password_file" ] && [ -r "$store_roles_password_file" ]; then
	# By hand (kubectl exec) the entrypoint has not set PGPASSWORD for psql.
	store_roles_pgpassword="$(cat "$store_roles_password_file")"
else
	store_roles_pgpassword="${PGPASSWORD:-}"
fi
PGPASSWORD="$store_roles_pgpassword" psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
	--username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
	--set owner="$CREDIT_DB_OWNER" --set writer="$CREDIT_DB_WRITER" --set reader="$CREDIT_DB_READER" <<'SQL'
-- Passwords come from files, through psql: never in a command line or this script.
\set owner_password `cat "$CREDIT_DB_PASSWORDS_DIR/owner-password"`
\set writer_password `cat "$CREDIT_DB_PASSWORDS_DIR/writer-password"`
\set reader_password `cat "$CREDIT_DB_PASSWORDS_DIR/reader-password"`

SELECT format('CREATE ROLE %I', role) FROM (VALUES (:'owner'), (:'writer'), (:'reader')) AS wanted (role)
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role) \gexec

ALTER ROLE :"owner" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'owner_password';
ALTER ROLE :"writer" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'writer_password';
ALTER ROLE :"reader" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'reader_password';

-- Only these roles (and the superuser) connect to the store's database.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database()) \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), :'owner') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I, %I', current_database(), :'writer', :'reader') \gexec

-- The owner creates the tables; the others may only use what the owner grants them.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO :"owner";
GRANT USAGE ON SCHEMA public TO :"writer", :"reader";

-- Tables of a volume initialised before the roles existed (owned by the superuser) pass to the
-- owner, so that its migrations can change them.
SELECT format('ALTER TABLE public.%I OWNER TO %I', tablename, :'owner') FROM pg_tables
WHERE schemaname = 'public' AND tableowner <> :'owner' \gexec
SQL
