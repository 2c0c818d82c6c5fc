#!/usr/bin/env bash
# The MCP suite (issue 12): the official TypeScript MCP client and curl against the real binary
# (tests/mcp, run by node --test). Installs its pinned packages, builds the binary unless FH_BIN
# names one, and exits non-zero when any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
unset FH_DATABASE_URL
scripts/postgres.sh

for tool in node npm curl psql; do
  command -v "$tool" >/dev/null || { echo "test-mcp: $tool is required" >&2; exit 1; }
done

if [ -z "${FH_BIN:-}" ]; then
  cargo build --locked --bin founderhouse-integrations
  FH_BIN="${CARGO_TARGET_DIR:-target}/debug/founderhouse-integrations"
fi
export FH_BIN="$(realpath "$FH_BIN")"

cd tests/mcp
# Exact versions from the committed lock (no audit or funding calls), installed again only when
# the lock changed since the last install.
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat node_modules/.lock-sha256 2>/dev/null)" != "$lock_sum" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.lock-sha256
fi
node --test --test-concurrency=1 test/*.test.mjs
