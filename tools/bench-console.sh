#!/usr/bin/env bash
# The console under load: 500 sites (tools/synth-topology.py) and about 10,000 live
# jobs (placed, dispatched or running) from `suanwang demo`, then
# console/tests/bench.mjs in Debian's Chromium records frame times and long tasks
# on the map and the jobs table while live events stream in.
# Usage: tools/bench-console.sh [SITES] [LIVE_JOBS] [SECONDS]
# Needs node, console/node_modules (npm ci) and /usr/bin/chromium.
set -euo pipefail
sites=${1:-500}
want=${2:-10000}
seconds=${3:-20}
cd "$(dirname "$0")/.."
cargo build --release -q -p suanwang-cli
bin=${CARGO_TARGET_DIR:-target}/release/suanwang
dir=$(mktemp -d)
trap 'kill $demo 2>/dev/null || true; rm -rf "$dir"' EXIT
python3 tools/synth-topology.py "$sites" > "$dir/topology.toml"
port=$((20000 + RANDOM % 20000))
# 20,000 jobs per network hour at ×60 keep about 10,000 live after ~2 minutes.
"$bin" demo --listen 127.0.0.1:$port --data "$dir/demo" --reset --topology "$dir/topology.toml" \
  --rate 20000 --speed 60 > "$dir/demo.log" 2>&1 &
demo=$!
for _ in $(seq 100); do grep -q "admin token" "$dir/demo.log" 2>/dev/null && break; sleep 0.2; done
token=$(awk '$1 == "admin" && $2 == "token" {print $3; exit}' "$dir/demo.log")
url="http://127.0.0.1:$port"
live() {
  curl -sf -H "authorization: Bearer $token" "$url/v1/overview" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(s["queued"]+s["running"] for s in d["sites"]))'
}
[ -n "$token" ] || { echo "the demo printed no admin token:" >&2; cat "$dir/demo.log" >&2; exit 1; }
for _ in $(seq 150); do
  n=$(live || echo 0)
  [ "$n" -ge "$want" ] && break
  sleep 2
done
echo "$sites sites, $(live) live jobs, $(nproc) cores, $(git rev-parse --short HEAD)"
node console/tests/bench.mjs "$url" "$token" "$seconds"
echo "live jobs after: $(live)"
