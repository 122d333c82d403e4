#!/usr/bin/env bash
# Installs (Debian package) and starts a PostgreSQL server on loopback for the metadata-store
# tests, creates the test role and database, and prints the connection URL on stdout (the
# only line written to stdout; progress goes to stderr).
#
# Idempotent: safe to run again on a machine where the server is installed, running, or both.
#
#   export AGORA_TEST_POSTGRES_URL="$(ci/postgres.sh)"
#   cargo test -p agora-govern
#
# Settings (environment): AGORA_PG_USER (agora), AGORA_PG_PASSWORD (agora),
# AGORA_PG_DB (agora_test). Needs root (or passwordless sudo) for apt and for acting as the
# `postgres` system user.
set -euo pipefail

PG_USER="${AGORA_PG_USER:-agora}"
PG_PASSWORD="${AGORA_PG_PASSWORD:-agora}"
PG_DB="${AGORA_PG_DB:-agora_test}"

log() { echo "ci-postgres: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo -n"
fi

# Identifiers are interpolated into SQL below: keep them to a safe alphabet.
for v in "$PG_USER" "$PG_DB"; do
    if ! [[ "$v" =~ ^[a-z_][a-z0-9_]*$ ]]; then
        log "invalid role or database name: use [a-z_][a-z0-9_]*"
        exit 2
    fi
done
if [[ "$PG_PASSWORD" == *"'"* ]]; then
    log "the password may not contain a single quote"
    exit 2
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "installing postgresql (apt)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi

VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
CLUSTER=main
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$VERSION $CLUSTER"; then
    log "creating cluster $VERSION/$CLUSTER"
    $SUDO pg_createcluster "$VERSION" "$CLUSTER" >&2
fi
PORT="$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $3}')"
STATUS="$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $4}')"

# Loopback only (the Debian default, made explicit).
CONF="/etc/postgresql/$VERSION/$CLUSTER/conf.d/agora-ci.conf"
if [ ! -f "$CONF" ]; then
    printf "listen_addresses = 'localhost'\nmax_connections = 300\n" | $SUDO tee "$CONF" >/dev/null
    if [ "$STATUS" = "online" ]; then
        log "restarting cluster to apply $CONF"
        $SUDO pg_ctlcluster "$VERSION" "$CLUSTER" restart -- -t 300 >&2
        STATUS=online
    fi
fi
if [ "$STATUS" != "online" ]; then
    log "starting cluster $VERSION/$CLUSTER on port $PORT"
    # After an unclean stop the server fsyncs its data directory before it accepts
    # connections, which takes minutes on a busy disk: wait up to 5 minutes, not pg_ctl's 60 s.
    $SUDO pg_ctlcluster "$VERSION" "$CLUSTER" start -- -t 300 >&2
fi

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        sudo -n -u postgres "$@"
    fi
}
psql_admin() { as_postgres psql -p "$PORT" -v ON_ERROR_STOP=1 -qtA "$@"; }

for _ in $(seq 1 30); do
    if as_postgres pg_isready -q -h 127.0.0.1 -p "$PORT"; then break; fi
    sleep 1
done

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")" != "1" ]; then
    log "creating role $PG_USER"
    psql_admin -c "CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD'" >/dev/null
else
    psql_admin -c "ALTER ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD'" >/dev/null
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != "1" ]; then
    log "creating database $PG_DB"
    psql_admin -c "CREATE DATABASE $PG_DB OWNER $PG_USER" >/dev/null
fi
# The tests create one schema per test in this database.
psql_admin -d "$PG_DB" -c "GRANT CREATE ON DATABASE $PG_DB TO $PG_USER" >/dev/null

echo "postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PORT/$PG_DB"
