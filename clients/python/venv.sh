#!/usr/bin/env bash
# Makes clients/python/.venv match requirements-dev.txt (exact pins), creating it when missing
# and reinstalling when the requirements changed. Prints the venv's path. Used by generate.sh
# and scripts/test-python.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv="$here/.venv"
want=$(cat "$here/requirements.txt" "$here/requirements-dev.txt" | sha256sum | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  echo "venv.sh: installing the pinned requirements into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --no-input -r "$here/requirements-dev.txt" >&2
  echo "$want" > "$venv/.requirements.sha256"
fi
echo "$venv"
