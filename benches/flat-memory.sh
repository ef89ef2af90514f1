#!/usr/bin/env bash
# Flat memory: the same slice at 8,500 req/s for 10 simulated minutes and for one simulated
# hour; the hour's peak RSS must stay within 1.25x the 10 minutes'. Prints both, the ratio and
# the hour's wall time. Needs GNU time (Debian: apt-get install time).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out=$(mktemp -d)
measure() {
  /usr/bin/time -f '%M %e' target/release/minitwin run "benches/$1.toml" --quiet --force \
    --out "$out" 2>&1 >/dev/null | tail -n 1
}
read -r rss10 wall10 < <(measure slice-8500-10min)
read -r rss60 wall60 < <(measure slice-8500-1h)
ratio=$(awk -v a="$rss60" -v b="$rss10" 'BEGIN { printf "%.2f", a / b }')
echo "10 simulated minutes: peak RSS $((rss10 / 1024)) MB, wall ${wall10} s"
echo "1 simulated hour:     peak RSS $((rss60 / 1024)) MB, wall ${wall60} s"
echo "RSS ratio (hour / 10 min): ${ratio} (target <= 1.25)"
awk -v r="$ratio" 'BEGIN { exit !(r <= 1.25) }' || { echo "memory grows with simulated time" >&2; exit 1; }
