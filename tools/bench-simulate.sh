#!/usr/bin/env bash
# Times `suanwang simulate` per policy on a trace (default: GAIA PAI 100k), best of
# N runs, one policy per process so each figure is one core's work.
# Usage: tools/bench-simulate.sh [TRACE] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
data="${SUANWANG_DATA:-../shared/data}"
trace="${1:-$data/traces/gaia_pai-100k.csv}"
runs="${2:-5}"
cargo build --release -q
bin="${CARGO_TARGET_DIR:-target}/release/suanwang"
printf '%-16s %10s\n' policy "best s"
for policy in local-fifo least-loaded cheapest greenest-now wait-for-green balanced; do
  best=""
  for _ in $(seq "$runs"); do
    s=$( { /usr/bin/time -f '%e' "$bin" simulate --quiet --lp-max-jobs 0 --trace "$trace" --policy "$policy" >/dev/null; } 2>&1 | tail -1)
    if [ -z "$best" ] || awk "BEGIN{exit !($s < $best)}"; then best=$s; fi
  done
  printf '%-16s %10s\n' "$policy" "$best"
done
# The fixed part: reading the trace, filling it in and precomputing the series.
s=$( { /usr/bin/time -f '%e' "$bin" simulate --quiet --lp-max-jobs 0 --trace "$trace" --policy local-fifo --limit 1 >/dev/null; } 2>&1 | tail -1)
printf '%-16s %10s\n' "(1 job only)" "$s"
