#!/usr/bin/env bash
# The benchmark harness: release build, PostgreSQL up, then `benches/load.rs`.
# Arguments go to the harness, e.g. `scripts/bench.sh --seconds 5 --runs 3 --concurrency 64`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/postgres.sh >/dev/null
exec cargo bench --bench load -- "$@"
