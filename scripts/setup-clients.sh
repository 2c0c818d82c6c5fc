#!/usr/bin/env bash
# Installs what the client suites need from the package registries, each from its lock or pins:
# the Python client's venv, the TypeScript package's node_modules, Debian's chromium.
# scripts/test.sh runs it in the background while Rust builds; each suite's own script repeats
# the step it needs (a no-op once done).
set -euo pipefail
cd "$(dirname "$0")/.."
clients/python/venv.sh >/dev/null
scripts/buf.sh --version >/dev/null
scripts/chromium.sh
