#!/usr/bin/env bash
# Instructions per call of each operation on the store's submit path (SQLite), as
# counted by callgrind: `crates/store/benches/callgrind.sh [LOW HIGH]`.
#
# Runs the submit_path bench under `valgrind --tool=callgrind` with LOW and HIGH
# rounds (default 10 and 110) for each prefix of a round (until submit_many, until
# decide_many, ...), so that start-up and migrations cancel out: one round's cost is
# (total(HIGH) - total(LOW)) / (HIGH - LOW), and each operation's is the
# difference between the rounds until it and until the operation before. Counts
# are of user-space instructions of every thread (SQLite's included), not of the
# kernel's. BENCH=PATH measures that build of the bench instead (to compare a
# change with the commit before it). Needs valgrind (`apt-get install -y valgrind`).
set -euo pipefail
cd "$(dirname "$0")/../../.."
low=${1:-10}
high=${2:-110}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/suanwang-target}"
bench=${BENCH:-$(cargo bench -p suanwang-store --bench submit_path --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*submit_path[^"]*\)".*/\1/p' | tail -1)}
[ -x "$bench" ] || { echo "could not build the submit_path bench" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Total instructions of one run.
instructions() {
  valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" "$bench" "$@" >/dev/null 2>&1
  sed -n 's/^summary: //p' "$out/cg.out"
}

echo "instructions per call ($low and $high rounds of 64 jobs; $bench)"
previous=0
for op in submit_many decide_many lease heartbeat report; do
  a=$(instructions "$low" --until "$op")
  b=$(instructions "$high" --until "$op")
  round=$(((b - a) / (high - low)))
  calls=1
  [ "$op" = report ] && calls=64
  printf '%-12s %14d per round until it, %12d per call\n' "$op" "$round" $(((round - previous) / calls))
  previous=$round
done
