#!/bin/sh
# Start-up of the local PostgreSQL image: the official postgres image's contract, which the
# credit-api chart relies on, written for this image.
# - On an empty $PGDATA: initdb with POSTGRES_USER (default postgres) and the password from
#   POSTGRES_PASSWORD or the file POSTGRES_PASSWORD_FILE; password authentication over TCP
#   (POSTGRES_HOST_AUTH_METHOD, default scram-sha-256), trust on the local socket; the database
#   POSTGRES_DB (default: the user's name); listening on every address of the container;
#   then every /docker-entrypoint-initdb.d/ file in order (*.sh run, or sourced when not
#   executable; *.sql through psql), against a server that listens on the socket only.
# - Then, and on every later start, exec postgres with the arguments given.
set -eu

if [ "${1:-}" != postgres ]; then
  exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
export PGDATA POSTGRES_USER POSTGRES_DB

log() { echo "entrypoint: $*" >&2; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
  fi
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    log "the data folder is empty and no POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is set"
    exit 1
  fi
  export POSTGRES_PASSWORD
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  log "initialising $PGDATA for user $POSTGRES_USER"
  pwfile="$(mktemp)"
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
    --auth-host="$POSTGRES_HOST_AUTH_METHOD" >&2
  rm -f "$pwfile"
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"
  # Debian's default is localhost only; in a container the network is the pod's own.
  printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"

  pg_ctl --wait --silent -o "-c listen_addresses=''" start >&2
  export PGUSER="$POSTGRES_USER" PGHOST=/var/run/postgresql
  if [ "$POSTGRES_DB" != postgres ]; then
    psql --no-psqlrc --set ON_ERROR_STOP=1 --dbname postgres \
      --command "CREATE DATABASE \"$POSTGRES_DB\"" >&2
  fi
  for script in /docker-entrypoint-initdb.d/*; do
    [ -e "$script" ] || continue
    case "$script" in
      *.sh)
        log "running $script"
        if [ -x "$script" ]; then "$script"; else . "$script"; fi ;;
      *.sql)
        log "running $script"
        psql --no-psqlrc --set ON_ERROR_STOP=1 --dbname "$POSTGRES_DB" --file "$script" >&2 ;;
      *) log "ignoring $script" ;;
    esac
  done
  pg_ctl --wait --silent -m fast stop >&2
  unset PGUSER PGHOST
  log "initialised"
fi

exec "$@"
