#!/usr/bin/env bash
# The agent side of the control plane, against a real `suanwang serve` (SQLite) on
# loopback:
#  1. N simulated agents heartbeating (with a telemetry sample) and leasing every
#     PERIOD for SECONDS: heartbeat latency, and the server's CPU and memory;
#  2. time from submit to process start on a real local agent (50 jobs), with the
#     server's default heartbeat (5 s) and with --heartbeat 1s.
# Usage: tools/bench-agents.sh [AGENTS] [PERIOD] [SECONDS]
set -euo pipefail
agents=${1:-500}
period=${2:-5s}
seconds=${3:-60}
cd "$(dirname "$0")/.."
cargo build --release -q -p suanwang-cli
bin=${CARGO_TARGET_DIR:-target}/release/suanwang
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

serve() { # DB PORT [extra serve flags]
  local db=$1 port=$2; shift 2
  "$bin" serve --listen "127.0.0.1:$port" --database "$db" "$@" 2>"$dir/serve-$port.log" &
  server=$!
  pids+=("$server")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "serve did not start" >&2; exit 1
}

echo "machine: $(nproc) cores, $(git rev-parse --short HEAD)"
db="sqlite://$dir/agents.sqlite"
operator=$("$bin" admin token --database "$db" --role operator)
port=$((20000 + RANDOM % 20000))
serve "$db" "$port"
sleep 1
before=$(cpu_ticks "$server")
"$bin" loadgen --mode agents --url "http://127.0.0.1:$port" --token "$operator" \
  --agents "$agents" --every "$period" --seconds "$seconds"
after=$(cpu_ticks "$server")
awk -v t=$((after - before)) -v hz="$ticks" -v s="$seconds" \
  'BEGIN { printf "control plane CPU: %.1f%% of one core over the run\n", 100 * t / hz / s }'
grep -E 'VmRSS|VmHWM' "/proc/$server/status" | tr -s ' \t' ' ' | sed 's/^/control plane memory: /'
kill "$server"; wait "$server" 2>/dev/null || true

for hb in 5s 1s; do
  db="sqlite://$dir/start-$hb.sqlite"
  operator=$("$bin" admin token --database "$db" --role operator)
  tenant=$("$bin" admin token --database "$db" --role tenant --tenant bench)
  port=$((20000 + RANDOM % 20000))
  serve "$db" "$port" --heartbeat "$hb"
  "$bin" agent --server "http://127.0.0.1:$port" --token "$operator" --site hami \
    --executor local --data "$dir/agent-$hb" 2>"$dir/agent-$hb.log" &
  pids+=("$!")
  sleep 2
  echo -n "heartbeat $hb: "
  "$bin" loadgen --mode start --url "http://127.0.0.1:$port" --token "$tenant" --jobs 50 --site hami
done
