#!/usr/bin/env bash
# Calibrates the store's query cost against a real MariaDB on loopback: starts mariadbd on
# 127.0.0.1 with a throw-away data directory (Debian's mariadb-server; stopped by its pid),
# loads a key-value table, runs point reads and single-row writes with mysqlslap, and reports
# each workload's throughput and the server's CPU time per query (from /proc, user + system):
# the service demand a query puts on one core, which is what `query_time` models.
# Usage: benches/mariadb-calibration.sh [QUERIES] [CONCURRENCY]
set -euo pipefail
queries=${1:-40000}
concurrency=${2:-8}
command -v mariadbd >/dev/null || { echo "needs mariadb-server (apt-get install mariadb-server mariadb-client)" >&2; exit 2; }
dir=$(mktemp -d)
port=33061
sock="$dir/sock"
mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal >/dev/null 2>&1
mariadbd --no-defaults --datadir="$dir/data" --socket="$sock" --port=$port --bind-address=127.0.0.1 \
  --user=root --skip-grant-tables --innodb-buffer-pool-size=256M --max-connections=151 \
  --log-error="$dir/err.log" --pid-file="$dir/pid" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 60); do [[ -S $sock ]] && break; sleep 0.5; done
sql() { timeout 120 mariadb --no-defaults -S "$sock" -uroot "$@"; }
sql -e "CREATE DATABASE kv; CREATE TABLE kv.kv (k BIGINT PRIMARY KEY, v BIGINT) ENGINE=InnoDB;"
sql -e "INSERT INTO kv.kv SELECT seq, seq FROM kv.seq_1_to_100000;"
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
questions() { sql -N -e "SHOW GLOBAL STATUS LIKE 'Questions'" | awk '{ print $2 }'; }
run() {
  local name=$1 query=$2 t0 c0 t1 c1 q0 q1
  q0=$(questions); c0=$(cpu); t0=$(date +%s.%N)
  timeout 300 mysqlslap --no-defaults -S "$sock" -uroot --create-schema=kv --concurrency="$concurrency" \
    --number-of-queries="$queries" --iterations=1 --query="$query" >/dev/null
  t1=$(date +%s.%N); c1=$(cpu); q1=$(questions)
  # The queries the server answered (mysqlslap's count, and its own few statements).
  awk -v n="$name" -v q="$((q1 - q0))" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v hz="$hz" 'BEGIN {
    wall = t1 - t0; cpu_s = (c1 - c0) / hz
    printf "  %-12s %7.0f queries/s   server CPU %.3f ms per query\n", n, q / wall, cpu_s / q * 1000 }'
}
echo "MariaDB $(mariadbd --version | awk '{print $3}') on 127.0.0.1, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), mysqlslap concurrency $concurrency, $queries queries each:"
run "point read" "SELECT v FROM kv.kv WHERE k = 4242"
run "write" "INSERT INTO kv.kv VALUES (FLOOR(1 + RAND() * 100000), 7) ON DUPLICATE KEY UPDATE v = v + 1"
