#!/usr/bin/env bash
# `minitwin import` against `wc -l` on the same nginx access log (issue #11: a 1 GB log read
# streaming in bounded memory, lines per second against wc -l). Writes a synthetic log of
# LINES lines in the `upstream` format (about 160 bytes a line: 6,500,000 lines is 1 GB) to a
# temporary directory, reads it once to warm the page cache, then times wc -l and the import
# (best of 3 each) and the import's peak RSS. Needs GNU time (Debian: apt-get install time).
# Usage: benches/import-vs-wc.sh [LINES]   (default 6,500,000)
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-6500000}
command -v /usr/bin/time >/dev/null || { echo "bench: GNU time is missing (apt-get install time)" >&2; exit 2; }
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/access.log" "$lines" <<'PY'
import random, sys
random.seed(1)
routes = ["/api/user", "/api/order", "/static/app.js", "/api/feed"]
with open(sys.argv[1], "w") as f:
    t = 0.0
    for i in range(int(sys.argv[2])):
        t += random.expovariate(1000.0)
        s = int(t)
        status = 502 if random.random() < 0.001 else 200
        f.write(f'10.0.{i % 250}.{i % 7} - - [01/Dec/2026:{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d} +0000] '
                f'"GET {routes[i % 4]}/{random.randrange(1000000)}?id={i} HTTP/1.1" {status} 512 "-" "Mozilla/5.0" '
                f'{random.random() / 100:.3f} 127.0.0.1:900{i % 3} 0.004 {status}\n')
PY
bytes=$(stat -c %s "$work/access.log")
cat "$work/access.log" >/dev/null
best() { # command... -> best wall seconds of 3
  local b=""
  for _ in 1 2 3; do
    local s e
    s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
    b=$(python3 -c "print(min(float('${b:-inf}'), $e - $s))")
  done
  echo "$b"
}
wc_s=$(best wc -l "$work/access.log")
imp_s=$(best target/release/minitwin import "$work/access.log" --format upstream --out "$work/out")
rss_kb=$(/usr/bin/time -f %M target/release/minitwin import "$work/access.log" --format upstream --out "$work/out" 2>&1 >/dev/null | tail -1)
python3 - "$lines" "$bytes" "$wc_s" "$imp_s" "$rss_kb" <<'PY'
import sys
n, b, w, i, rss = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
print(f"log: {n} lines, {b / 1e9:.2f} GB (page cache warm)")
print(f"wc -l:           {w:.3f} s, {n / w / 1e6:.1f} M lines/s")
print(f"minitwin import: {i:.3f} s, {n / i / 1e6:.2f} M lines/s, peak RSS {rss / 1024:.0f} MiB")
print(f"import / wc -l:  {i / w:.1f}x the time")
PY
