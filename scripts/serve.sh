#!/usr/bin/env bash
# Runs the service on its defaults (gRPC + grpc-web on 127.0.0.1:50051, REST on 127.0.0.1:8080),
# starting PostgreSQL first. Extra arguments go to the binary, e.g. `scripts/serve.sh --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/postgres.sh
exec cargo run --release --quiet --bin founderhouse-integrations -- "$@"
