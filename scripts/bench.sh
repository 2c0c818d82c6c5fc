#!/usr/bin/env bash
# The benchmark harness: release build, PostgreSQL up, then `benches/load.rs`.
# Arguments go to the harness, e.g. `scripts/bench.sh --seconds 5 --runs 3 --concurrency 64`;
# `scripts/bench.sh health [--runs 3 --integrations 10000 --subscribers 1000]` runs the health one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/postgres.sh >/dev/null
if [ "${1:-}" = health ]; then
  shift
  exec cargo bench --bench health -- "$@"
fi
exec cargo bench --bench load -- "$@"
