#!/usr/bin/env bash
# The Python client's suite (issue 11): the pinned venv, the generated code checked fresh,
# mypy --strict on the package, the example and the tests, then pytest against the real binary
# (each test on a fresh database). Builds the binary unless FH_BIN names one.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
py=clients/python

scripts/postgres.sh
if [ -z "${FH_BIN:-}" ]; then
  cargo build --locked --bin founderhouse-integrations
  export FH_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/founderhouse-integrations"
fi

venv=$("$py/venv.sh")

"$py/generate.sh"
if [ -n "$(git status --porcelain -- "$py")" ]; then
  echo "test-python.sh: clients/python differs from the commit: run clients/python/generate.sh and commit the result" >&2
  git status --porcelain -- "$py" >&2
  git --no-pager diff -- "$py" >&2
  exit 1
fi

(cd "$py" && "$venv/bin/mypy" --strict)
(cd "$py" && "$venv/bin/pytest" -q --durations=5)
