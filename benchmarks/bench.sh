#!/usr/bin/env bash
# Agora vs DuckDB benchmark: ingest and the OMOP query suite, in one run.
#
#   pip install -r benchmarks/requirements.txt
#   cargo build --release -p agora-cli
#   benchmarks/bench.sh [--persons N] [--reps R]     (all options: benchmarks/bench.sh --help)
#
# AGORA_BIN selects the binary (default: target/release/agora); PYTHON the interpreter.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
if ! "$python" -c 'import duckdb' 2>/dev/null; then
    echo "error: the Python package duckdb is missing; install the benchmark's requirements:" >&2
    echo "    $python -m pip install -r $here/requirements.txt" >&2
    exit 2
fi
exec "$python" "$here/run.py" "$@"
