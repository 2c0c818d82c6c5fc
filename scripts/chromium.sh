#!/usr/bin/env bash
# Installs Debian's chromium (the browser tests' browser; nothing is downloaded by npm) when it
# is missing.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "chromium.sh: installing Debian's chromium" >&2
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
