#!/usr/bin/env bash
# The project's checks, exactly as CI runs them. Run locally with `bash ci/check.sh`.
#
# Needs: the pinned Rust toolchain (rust-toolchain.toml), crates.io, the shared fixtures
# checked out beside this repository (../shared), which the tests read, and root (or
# passwordless sudo) so ci/postgres.sh can install and start PostgreSQL from Debian, and
# node (>= 20) with npm for the OpenID provider the sign-in tests run (ci/oidc).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d ../shared/data/omop ]; then
    echo "error: the test fixtures are expected in ../shared (beside this repository)" >&2
    exit 1
fi

step() { printf '\n== %s\n' "$*"; }

step "PostgreSQL on loopback (the metadata store runs its tests on SQLite and PostgreSQL)"
AGORA_TEST_POSTGRES_URL="$(bash ci/postgres.sh)"
export AGORA_TEST_POSTGRES_URL

step "researchers' clients for the protocol tests (ADBC Flight SQL, psycopg, psql, pgjdbc)"
AGORA_TEST_PYTHON="$(bash ci/clients.sh)"
export AGORA_TEST_PYTHON
export AGORA_TEST_JDBC_JAR=/usr/share/java/postgresql.jar

step "OpenID provider for the sign-in tests (ci/oidc: oidc-provider from npm, pinned)"
npm ci --no-audit --no-fund --prefix ci/oidc

step "dependency rule (fronts reach data only through agora-service)"
python3 ci/dependency-rule.py

step "format"
cargo fmt --all --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "SQL-on-FHIR v2 conformance (official suite)"
cargo run --quiet --locked -- sof-conformance ../shared/conformance/sql-on-fhir-v2/tests

step "test (the README's test command)"
cargo test --workspace

step "benchmark harness on 300 persons (debug build: checks the harness and the three engines' answers, not speed)"
python3 -m pip install --quiet -r benchmarks/requirements.txt
cargo build --quiet --locked -p agora-cli -p agora-bench
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
bench_tmp="$(mktemp -d)"
trap 'rm -rf "$bench_tmp"' EXIT
AGORA_BIN="$target_dir/debug/agora" bash benchmarks/bench.sh --persons 300 --reps 1 --ingest-reps 1 \
    --data-root "$bench_tmp" --results-dir "$bench_tmp/results" >"$bench_tmp/bench.log" 2>&1 \
    || { tail -40 "$bench_tmp/bench.log"; exit 1; }
grep -q "ALL ANSWERS MATCH" "$bench_tmp/bench.log"
ls "$bench_tmp"/results/*.png >/dev/null
