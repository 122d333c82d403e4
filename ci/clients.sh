#!/usr/bin/env bash
# Installs the researchers' client libraries the protocol tests drive (ADBC's Flight SQL
# driver, psycopg 3, pyarrow, pandas; ci/clients-requirements.txt) and checks `psql` is
# there (ci/postgres.sh installs it). Prints the Python interpreter to use on stdout (the only
# line written there):
#
#   export AGORA_TEST_PYTHON="$(bash ci/clients.sh)"
#   cargo test -p agora-cli -- flight pg
#
# Tests that drive these clients skip (saying so) when AGORA_TEST_PYTHON is not set.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -r ci/clients-requirements.txt >&2
python3 -c 'import adbc_driver_flightsql.dbapi, psycopg, pyarrow, pandas' >&2
command -v psql >/dev/null || { echo "ci-clients: psql not found (ci/postgres.sh installs it)" >&2; exit 1; }
command -v python3
