#!/usr/bin/env bash
# Durable submits per second against a real `suanwang serve` on loopback, with the
# project's load generator on the same machine.
# Usage: tools/bench-submit.sh [sqlite|postgres] [CONCURRENCY] [SECONDS]
# LOADGEN=wrk uses wrk (Debian's package, tools/wrk-submit.lua) instead of
# `suanwang loadgen`: the same requests from a lighter client, which leaves more of
# the two cores to the server.
# PostgreSQL needs tools/start-postgres.sh to have run (it prints the URL used here).
set -euo pipefail
backend=${1:-sqlite}
concurrency=${2:-64}
seconds=${3:-10}
cd "$(dirname "$0")/.."
cargo build --release -q -p suanwang-cli
bin=${CARGO_TARGET_DIR:-target}/release/suanwang
dir=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$dir"' EXIT
case $backend in
  sqlite) db="sqlite://$dir/db.sqlite" ;;
  postgres)
    base=$(bash tools/start-postgres.sh | tail -1)
    name="suanwang_bench_$$"
    psql "$base" -qc "CREATE DATABASE $name" >/dev/null
    db="${base%/*}/$name"
    trap 'kill $server 2>/dev/null || true; rm -rf "$dir"; psql "$base" -qc "DROP DATABASE IF EXISTS $name" >/dev/null 2>&1 || true' EXIT
    ;;
  *) echo "usage: $0 [sqlite|postgres] [CONCURRENCY] [SECONDS]" >&2; exit 2 ;;
esac
token=$("$bin" admin token --database "$db" --role tenant --tenant load)
port=$((20000 + RANDOM % 20000))
# The load is one tenant token far past the default rate limit: off.
"$bin" serve --listen 127.0.0.1:$port --database "$db" --rate-limit off 2>"$dir/serve.log" &
server=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
echo "backend $backend, $(nproc) cores, $(git rev-parse --short HEAD)"
if [ "${LOADGEN:-suanwang}" = wrk ]; then
  TOKEN=$token wrk -t2 -c"$concurrency" -d"${seconds}s" --latency -s tools/wrk-submit.lua "http://127.0.0.1:$port" |
    grep -E "Requests/sec|Non-2xx|Socket errors|^ +(50|99)%|requests in"
  # wrk counts answers; the database must hold one job per 2xx answer.
  case $backend in
    sqlite) echo "jobs stored: $(sqlite3 "${db#sqlite://}" 'select count(*) from jobs')" ;;
    postgres) echo "jobs stored: $(psql "$db" -qtAc 'select count(*) from jobs')" ;;
  esac
else
  "$bin" loadgen --url "http://127.0.0.1:$port" --token "$token" --concurrency "$concurrency" --seconds "$seconds"
fi
grep -c "scheduler pass" "$dir/serve.log" | sed 's/^/scheduler passes that placed jobs: /' || true
