#!/usr/bin/env bash
# Makes the default database URL work on a fresh Debian machine: installs PostgreSQL when it is
# missing, starts the cluster when it is down, and gives the `postgres` role the password
# `postgres` (127.0.0.1 connections use scram-sha-256, so a password is required).
# Skipped when FH_DATABASE_URL points somewhere other than this machine's default server.
set -euo pipefail

url="${FH_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/founderhouse}"
case "$url" in
  postgres://postgres:postgres@127.0.0.1:5432/*|postgres://postgres:postgres@localhost:5432/*) ;;
  *) echo "postgres.sh: FH_DATABASE_URL is not the local default; leaving PostgreSQL alone"; exit 0 ;;
esac

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "postgres.sh: installing PostgreSQL"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
fi

read -r version cluster _port status _ < <(pg_lsclusters --no-header | head -n 1) || true
if [ -z "${version:-}" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  as_root pg_createcluster "$version" main --start
  cluster=main
elif [ "$status" != online ]; then
  as_root pg_ctlcluster "$version" "$cluster" start
fi

for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 0.2
done
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "postgres.sh: PostgreSQL did not become ready" >&2; exit 1; }

if ! PGPASSWORD=postgres PGCONNECT_TIMEOUT=5 psql -qtA -h 127.0.0.1 -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; then
  echo "postgres.sh: setting the postgres role's password"
  as_root runuser -u postgres -- psql -q -c "ALTER USER postgres PASSWORD 'postgres'"
fi
