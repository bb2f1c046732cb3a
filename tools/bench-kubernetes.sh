#!/usr/bin/env bash
# The Kubernetes executor end to end: time from submit to the pod's process start
# (loadgen --mode start: JOBS jobs whose command prints its start time, read back
# through pods/log), with a real `suanwang serve` (SQLite, --heartbeat 1s), a
# `suanwang agent --executor kubernetes` under the agent's RBAC role, and a
# stand-in node of the cluster that tools/start-kubernetes.sh runs; and the
# agent's CPU time per job (from /proc), a figure that travels between machines.
# Usage: eval "$(tools/start-kubernetes.sh)"; tools/bench-kubernetes.sh [JOBS]
set -euo pipefail
jobs=${1:-30}
state=${KUBE_STATE:-/tmp/suanwang-kubernetes}
[ -f "$state/agent.kubeconfig" ] || { echo "no cluster at $state: run tools/start-kubernetes.sh" >&2; exit 1; }
cd "$(dirname "$0")/.."
cargo build --release -q -p suanwang-cli
bin=${CARGO_TARGET_DIR:-target}/release/suanwang
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
ticks=$(getconf CLK_TCK)
pool="bench-$$"
"$state/bin/suanwang-kube-standin" --kubeconfig "$state/admin.kubeconfig" --node "$pool" \
  --cpu 64 --memory 256Gi --label "suanwang.io/pool=$pool" --workdir "$dir/node" 2>"$dir/node.log" &
pids+=("$!")
db="sqlite://$dir/k8s.sqlite"
operator=$("$bin" admin token --database "$db" --role operator)
tenant=$("$bin" admin token --database "$db" --role tenant --tenant bench)
port=$((20000 + RANDOM % 20000))
"$bin" serve --listen "127.0.0.1:$port" --database "$db" --heartbeat 1s 2>"$dir/serve.log" &
pids+=("$!")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
"$bin" agent --server "http://127.0.0.1:$port" --token "$operator" --site hami \
  --executor kubernetes --kubeconfig "$state/agent.kubeconfig" --k8s-namespace suanwang \
  --k8s-node-selector "suanwang.io/pool=$pool" 2>"$dir/agent.log" &
agent=$!
pids+=("$agent")
sleep 3
echo "machine: $(nproc) cores, $(git rev-parse --short HEAD), Kubernetes $(curl -sk https://127.0.0.1:6443/version | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p')"
before=$(awk '{print $14 + $15}' "/proc/$agent/stat")
"$bin" loadgen --mode start --url "http://127.0.0.1:$port" --token "$tenant" --jobs "$jobs" --site hami
after=$(awk '{print $14 + $15}' "/proc/$agent/stat")
awk -v t=$((after - before)) -v hz="$ticks" -v n="$jobs" \
  'BEGIN { printf "agent CPU: %.1f ms per job (%d jobs)\n", 1000 * t / hz / n, n }'
