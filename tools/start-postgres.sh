#!/usr/bin/env bash
# Installs (if needed) and starts Debian's PostgreSQL on 127.0.0.1:5432 with a
# role `suanwang` (password `suanwang`) that may create databases, for the store's
# test suite. Prints the URL to use as SUANWANG_TEST_POSTGRES.
set -euo pipefail
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
cluster=$(pg_lsclusters --no-header | awk 'NR==1 {print $1" "$2}')
if [ -z "$cluster" ]; then
  pg_createcluster 15 main >/dev/null
  cluster="15 main"
fi
# shellcheck disable=SC2086
pg_ctlcluster $cluster start >/dev/null 2>&1 || true
for _ in $(seq 30); do
  su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1 && break
  sleep 0.5
done
su postgres -c "psql -qtAc \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'suanwang') THEN CREATE ROLE suanwang LOGIN PASSWORD 'suanwang' CREATEDB; END IF; END \\\$\\\$;\"" >/dev/null
# Databases left by earlier test runs.
for db in $(su postgres -c "psql -qtAc \"SELECT datname FROM pg_database WHERE datname LIKE 'suanwang\\_test\\_%'\""); do
  su postgres -c "psql -qc 'DROP DATABASE IF EXISTS \"$db\"'" >/dev/null
done
echo "postgres://suanwang:suanwang@127.0.0.1:5432/postgres"
