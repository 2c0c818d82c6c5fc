#!/usr/bin/env bash
# The TypeScript client and the console, end to end: installs what they need (npm ci from the
# lock, Debian's chromium when missing), checks the protos (buf lint STANDARD, buf format) and
# that the generated code is fresh, then runs the client tests (native gRPC and grpc-web against
# the real binary) and the browser test. Exits non-zero when anything fails.
# FH_BIN: the service binary to test (built with cargo when unset).
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=clients/typescript
scripts/postgres.sh

if [ -z "${FH_BIN:-}" ]; then
  cargo build --locked --bin founderhouse-integrations
  FH_BIN="${CARGO_TARGET_DIR:-target}/debug/founderhouse-integrations"
fi
FH_BIN="$(realpath "$FH_BIN")"
export FH_BIN

scripts/chromium.sh

echo "== buf lint, buf format (proto/)"
scripts/buf.sh lint proto
scripts/buf.sh format --diff --exit-code proto

echo "== generated TypeScript is fresh"
scripts/gen-clients.sh typescript
if [ -n "$(git status --porcelain -- "$pkg/gen")" ]; then
  echo "test-ts.sh: $pkg/gen is stale; run scripts/gen-clients.sh and commit:" >&2
  git status --porcelain -- "$pkg/gen" >&2
  git --no-pager diff -- "$pkg/gen" >&2
  exit 1
fi

echo "== type check and build"
(cd "$pkg" && node_modules/.bin/tsc -p tsconfig.json)

echo "== client tests (gRPC on HTTP/2, grpc-web on HTTP/1.1)"
(cd "$pkg" && node --test --test-timeout=120000 dist/test/*.test.js)

echo "== console in chromium (screenshots: $pkg/test-artifacts/)"
(cd "$pkg" && node console/build.mjs && node --test --test-timeout=120000 console/test/*.test.mjs)
