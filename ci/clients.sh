#!/usr/bin/env bash
# Installs the researchers' client libraries the protocol tests drive (ADBC's Flight SQL
# driver, psycopg 3, pyarrow, pandas; ci/clients-requirements.txt), the PostgreSQL JDBC
# driver (pgjdbc, Debian's libpostgresql-jdbc-java, at /usr/share/java/postgresql.jar) with a
# JDK to run the JDBC client, and checks `psql` is there (ci/postgres.sh installs it). Prints
# the Python interpreter to use on stdout (the only line written there):
#
#   export AGORA_TEST_PYTHON="$(bash ci/clients.sh)"
#   export AGORA_TEST_JDBC_JAR=/usr/share/java/postgresql.jar
#   cargo test -p agora-cli -- flight pg
#
# Tests that drive these clients skip (saying so) when AGORA_TEST_PYTHON is not set or the
# JDBC driver or `java` is missing. Needs root (or passwordless sudo) for apt when the
# driver or the JDK is not installed yet.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo -n"
fi
packages=()
[ -f /usr/share/java/postgresql.jar ] || packages+=(libpostgresql-jdbc-java)
command -v java >/dev/null || packages+=(default-jdk-headless)
if [ "${#packages[@]}" -gt 0 ]; then
    echo "ci-clients: installing ${packages[*]} (apt)" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >&2
fi
[ -f /usr/share/java/postgresql.jar ] || { echo "ci-clients: /usr/share/java/postgresql.jar not found" >&2; exit 1; }
python3 -m pip install --quiet --disable-pip-version-check -r ci/clients-requirements.txt >&2
python3 -c 'import adbc_driver_flightsql.dbapi, psycopg, pyarrow, pandas' >&2
command -v psql >/dev/null || { echo "ci-clients: psql not found (ci/postgres.sh installs it)" >&2; exit 1; }
command -v python3
