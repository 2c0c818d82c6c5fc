#!/usr/bin/env bash
# The whole check: PostgreSQL up, formatting, clippy, then every test (unit and integration).
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
unset FH_DATABASE_URL
scripts/postgres.sh

# Databases left by tests that were killed mid-run.
PGPASSWORD=postgres psql -qtA -h 127.0.0.1 -U postgres -d postgres \
  -c "SELECT datname FROM pg_database WHERE datname LIKE 'fh_test_%'" |
  while read -r db; do
    PGPASSWORD=postgres psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" || true
  done

# The clients' toolchains (a Python venv, npm packages, Chromium) download while Rust builds:
# the one is network-bound, the other CPU-bound.
mkdir -p target
scripts/setup-clients.sh >target/setup-clients.log 2>&1 &
setup=$!

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi

# The generated clients and everything that speaks to the real binary from outside Rust.
cargo build --locked --bin founderhouse-integrations
export FH_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/founderhouse-integrations"
if ! wait "$setup"; then
  cat target/setup-clients.log >&2
  echo "test.sh: installing the clients' toolchains failed" >&2
  exit 1
fi
scripts/test-python.sh
scripts/test-ts.sh
scripts/test-mcp.sh
