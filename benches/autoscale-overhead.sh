#!/usr/bin/env bash
# The autoscaler's cost in wall time: scenarios/autoscale-step.toml (900 simulated s, the HPA
# scaling 2 -> 7 replicas) against the same scenario with a fixed service tier of the run's
# mean replica count and no autoscaler, each timed three times on this machine; prints the
# best wall times and their ratio (issue #8 asks for at most 1.3x).
# Usage: benches/autoscale-overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/minitwin
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
scaled=scenarios/autoscale-step.toml
"$bin" run "$scaled" --seed 1 --out "$out/probe" >/dev/null
hours=$(awk -F, '$4 == "autoscaler" && $5 == "running_replica_hours" { print $6 }' \
  "$out/probe/autoscale-step/seed-1/metrics.csv")
mean=$(awk -v h="$hours" 'BEGIN { printf "%.0f", h * 3600 / 900 }')
# The same file without the autoscaler, the tier fixed at the mean.
awk -v n="$mean" '
  /^\[topology\.autoscaler/ { skip = 1; next }
  /^\[/ { skip = 0 }
  skip { next }
  /^count = 2$/ && services { print "count = " n; services = 0; next }
  /^\[topology\.services\]$/ { services = 1 }
  { print }
' "$scaled" | sed 's/^name = "autoscale-step"/name = "autoscale-step-fixed"/' >"$out/fixed.toml"
best() {
  local file=$1 best=999999
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N)
    "$bin" run "$file" --seed 1 --out "$out/runs" >/dev/null
    t1=$(date +%s.%N)
    best=$(awk -v a="$t0" -v b="$t1" -v m="$best" 'BEGIN { d = b - a; print (d < m) ? d : m }')
  done
  echo "$best"
}
a=$(best "$scaled")
f=$(best "$out/fixed.toml")
events() { awk -F, '$4 == "run" && $5 == "events_total" { print $6 }' "$1"; }
printf 'autoscale-step (900 simulated s) on %s (%s cores)\n' \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)"
printf '  autoscaled (2-7 replicas, mean %s running): %.2f s, %s events\n' "$mean" "$a" \
  "$(events "$out/runs/autoscale-step/seed-1/metrics.csv")"
printf '  fixed at %s replicas, no autoscaler:        %.2f s, %s events\n' "$mean" "$f" \
  "$(events "$out/runs/autoscale-step-fixed/seed-1/metrics.csv")"
printf '  ratio %.2fx (target <= 1.3x)\n' "$(awk -v a="$a" -v b="$f" 'BEGIN { print a / b }')"
