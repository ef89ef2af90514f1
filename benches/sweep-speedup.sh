#!/usr/bin/env bash
# The speed-up of a sweep from 1 to 2 cores on this machine: the same sweep (runs are
# single-threaded and independent) with --jobs 1 and --jobs 2, each timed three times; prints
# the best wall times and their ratio. Usage: benches/sweep-speedup.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-24}
cargo build --release --quiet
bin=target/release/minitwin
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
best() {
  local jobs=$1 best=999999
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N)
    "$bin" sweep scenarios/steady.toml --seeds "$runs" --jobs "$jobs" --quiet --out "$out/j$jobs" >/dev/null
    t1=$(date +%s.%N)
    best=$(awk -v a="$t0" -v b="$t1" -v m="$best" 'BEGIN { d = b - a; print (d < m) ? d : m }')
  done
  echo "$best"
}
one=$(best 1)
two=$(best 2)
cmp -s "$out/j1/steady/sweep/sweep.csv" "$out/j2/steady/sweep/sweep.csv" \
  || { echo "the sweep's table differs between 1 and 2 threads" >&2; exit 1; }
printf 'sweep of %s runs of scenarios/steady.toml on %s (%s cores)\n' "$runs" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)"
printf '  --jobs 1: %.2f s   --jobs 2: %.2f s   speed-up %.2fx (tables identical)\n' \
  "$one" "$two" "$(awk -v a="$one" -v b="$two" 'BEGIN { print a / b }')"
