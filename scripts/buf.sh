#!/usr/bin/env bash
# Runs the buf CLI pinned by clients/typescript (npm @bufbuild/buf), in the current directory:
# `scripts/buf.sh curl ...`, `scripts/buf.sh lint proto`. Installs the package's locked
# node_modules first when they are missing or stale (npm ci, ~20 s once).
set -euo pipefail
pkg="$(cd "$(dirname "$0")/../clients/typescript" && pwd)"
stamp="$pkg/node_modules/.installed-from-lock"
if ! cmp -s "$pkg/package-lock.json" "$stamp" 2>/dev/null; then
  npm ci --prefix "$pkg" --no-audit --no-fund --loglevel=error >&2
  cp "$pkg/package-lock.json" "$stamp"
fi
exec "$pkg/node_modules/.bin/buf" "$@"
