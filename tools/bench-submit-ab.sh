#!/usr/bin/env bash
# A/B of durable submits: two builds of `suanwang`, alternating, each round a fresh
# SQLite database, `serve` (scheduler on) and `wrk -t2 -c64 -d10s` with
# tools/wrk-submit.lua, as tools/bench-submit.sh does with LOADGEN=wrk.
# Usage: tools/bench-submit-ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS] [SECONDS]
# With AB_POSTGRES=postgres://USER:PASS@HOST:PORT (a role that may create
# databases), each round runs on a fresh PostgreSQL database there instead.
# Prints per run: submits/s, p50 and p99 (wrk), and the server's CPU time per
# 1,000 acknowledged submits (user + system, from /proc): the measure that travels
# between machines and is less noisy than the rate on a shared 2-core machine. On
# PostgreSQL running on this machine, also the CPU time of the round's backends
# per 1,000 submits.
set -euo pipefail
before=$1 after=$2 rounds=${3:-3} seconds=${4:-10}
cd "$(dirname "$0")/.."
tick=$(getconf CLK_TCK)
# The load is one tenant token far past the default rate limit (a build with
# limits has `--rate-limit`; an older one has none to turn off).
limits_off() { if "$1" serve --help | grep -q -- --rate-limit; then echo "--rate-limit off"; fi; }

run() {
  local name=$1 bin=$2 dir port token server db pgname=""
  dir=$(mktemp -d)
  db="sqlite://$dir/db.sqlite"
  if [ -n "${AB_POSTGRES:-}" ]; then
    pgname="suanwang_ab_$$_$RANDOM"
    psql "$AB_POSTGRES/postgres" -qc "CREATE DATABASE $pgname"
    db="$AB_POSTGRES/$pgname"
  fi
  token=$("$bin" admin token --database "$db" --role tenant --tenant load)
  port=$((20000 + RANDOM % 20000))
  RUST_LOG=${RUST_LOG:-} "$bin" serve --listen 127.0.0.1:$port --database "$db" $(limits_off "$bin") 2>"$dir/serve.log" &
  server=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local cpu0 cpu1 out requests
  cpu0=$(awk '{print $14 + $15}' /proc/$server/stat)
  out=$(TOKEN=$token wrk -t2 -c64 -d"${seconds}s" --latency -s tools/wrk-submit.lua "http://127.0.0.1:$port")
  cpu1=$(awk '{print $14 + $15}' /proc/$server/stat)
  local pgcpu=""
  if [ -n "$pgname" ]; then
    # The CPU time of the PostgreSQL backends serving this round's database
    # (their whole lives: the server's pool, opened at start), when the
    # database runs on this machine.
    pgcpu=$(psql "$AB_POSTGRES/postgres" -tAc \
      "select pid from pg_stat_activity where datname = '$pgname'" |
      while read -r pid; do
        if [ -r "/proc/$pid/stat" ]; then awk '{print $14 + $15}' "/proc/$pid/stat"; fi
      done |
      awk '{s += $1} END {print s + 0}')
  fi
  kill $server; wait $server 2>/dev/null || true
  if [ -n "$pgname" ]; then
    requests=$(psql "$db" -tAc 'select count(*) from jobs')
    psql "$AB_POSTGRES/postgres" -qc "DROP DATABASE $pgname"
  else
    requests=$(sqlite3 "$dir/db.sqlite" 'select count(*) from jobs')
  fi
  rm -rf "$dir"
  printf '%-6s %8s/s  p50 %8s  p99 %8s  server CPU %6.1f ms per 1,000 submits (%s stored)' "$name" \
    "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')" \
    "$(echo "$out" | awk '$1 == "50%" {print $2}')" \
    "$(echo "$out" | awk '$1 == "99%" {print $2}')" \
    "$(echo "($cpu1 - $cpu0) * 1000 / $tick * 1000 / $requests" | bc -l)" "$requests"
  if [ -n "$pgcpu" ]; then
    printf '  postgres CPU %6.1f ms per 1,000' "$(echo "$pgcpu * 1000 / $tick * 1000 / $requests" | bc -l)"
  fi
  printf '\n'
}
echo "$(nproc) cores; before $before; after $after"
for _ in $(seq "$rounds"); do
  run before "$before"
  run after "$after"
done
