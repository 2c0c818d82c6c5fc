#!/usr/bin/env bash
# Regenerates the clients from proto/: TypeScript (buf + protoc-gen-es from clients/typescript's
# pinned node_modules) and Python (clients/python/generate.sh, when it exists). Deterministic:
# a second run leaves `git status --porcelain -- clients` empty.
# Usage: scripts/gen-clients.sh [typescript] [python]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(typescript python)

for t in "${targets[@]}"; do
  case "$t" in
    typescript)
      (cd clients/typescript && ../../scripts/buf.sh generate)
      ;;
    python)
      if [ -x clients/python/generate.sh ]; then clients/python/generate.sh; fi
      ;;
    *) echo "unknown client: $t (typescript, python)" >&2; exit 2 ;;
  esac
done
