#!/usr/bin/env bash
# The benchmark harness: release build, PostgreSQL up, then `benches/load.rs`.
# Arguments go to the harness, e.g. `scripts/bench.sh --seconds 5 --runs 3 --concurrency 64`;
# `scripts/bench.sh health [--runs 3 --integrations 10000 --subscribers 1000]` runs the health one,
# `scripts/bench.sh mcp [--seconds 5 --runs 3 --concurrency 64]` the MCP one (tools/call vs Invoke).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/postgres.sh >/dev/null
if [ "${1:-}" = health ]; then
  shift
  exec cargo bench --bench health -- "$@"
fi
if [ "${1:-}" = mcp ]; then
  shift
  exec cargo bench --bench mcp -- "$@"
fi
exec cargo bench --bench load -- "$@"
