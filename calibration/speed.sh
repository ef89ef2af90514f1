#!/usr/bin/env bash
# Speed of the production binaries against the real software they model, in one run on this
# machine (issue #10, point 8):
#   1. cached responses: `wrk -t2 -c64 -d10s` against minitwin's gateway (GET /static/1.js, a
#      cache hit after the first) and against nginx with proxy_cache in front of
#      calibration/backend.py (the same path, a cache hit after the first); requests per
#      second, and the ratio.
#   2. durable writes: `minitwin bench-store` (16 closed-loop writers, one store node without
#      replicas: fsync per group commit) against MariaDB with sync_binlog=1 and
#      innodb_flush_log_at_trx_commit=1 (mariadb-slap, 16 clients, single-row INSERTs into an
#      InnoDB table); both data directories on the same disk (results/speed/); acknowledged
#      writes per second, and the ratio.
# Stops every process it started by pid. Writes results/speed/speed.txt.
#
# Needs wrk, nginx, mariadb-server, mariadb-client, python3
# (Debian: apt-get install wrk nginx mariadb-server mariadb-client python3).
# Usage: calibration/speed.sh [SECONDS]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk nginx mariadbd mariadb mariadb-install-db mariadb-slap python3; do
  command -v "$tool" >/dev/null || {
    echo "calibration: $tool is missing (Debian: apt-get install wrk nginx mariadb-server mariadb-client python3)" >&2
    exit 2
  }
done
secs=${1:-10}
bin=target/release/minitwin
[ -x "$bin" ] || { echo "calibration: $bin is missing: run cargo build --release" >&2; exit 2; }
out=results/speed
rm -rf "$out" && mkdir -p "$out"
work=$(cd "$out" && pwd)
. calibration/lib.sh
trap stop_all EXIT
wait_port() { for _ in $(seq 200); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
rps() { awk '/Requests\/sec/ { print $2 }'; }

# A cluster for the speed runs: the loopback topology, one shard without replicas, no sessions.
mkdir -p "$work/cluster"
python3 - "$work/cluster" <<'PY'
import sys
d = sys.argv[1]
s = open("deploy/loopback/scenario.toml").read()
drop = {"[topology.stores.config]", "[topology.stores.orchestrator]", "[topology.sessions]", "[topology.sessions.client]"}
out, skipping = [], False
for line in s.split("\n"):
    if line.startswith("["):
        skipping = line.strip() in drop
    if not skipping:
        out.append(line)
s = "\n".join(out).replace("shards = 2\nreplicas = 1", "shards = 1\nreplicas = 0")
s = s.replace('name = "loopback"', 'name = "speed"')
open(f"{d}/scenario.toml", "w").write(s)
open(f"{d}/cluster.toml", "w").write('scenario = "scenario.toml"\ndata_dir = "data"\nbase_port = 31200\nhttp_base_port = 31300\n')
PY
"$bin" check "$work/cluster/scenario.toml" >/dev/null
"$bin" up "$work/cluster/cluster.toml" --fresh --for 600 --log-level warn >"$work/up.txt" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q "Ctrl-C stops" "$work/up.txt" 2>/dev/null && break; sleep 0.05; done
gateway_http=$(awk '$2 == "gateway" { print $5 }' "$work/up.txt")
store_peer=$(awk '$2 == "store" { print $4 }' "$work/up.txt")

# nginx with proxy_cache in front of a backend, on 31180.
mkdir -p "$work/nginx/cache"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  proxy_cache_path $work/nginx/cache keys_zone=c:10m;
  upstream backend { server 127.0.0.1:31101; }
  server {
    listen 127.0.0.1:31180;
    location / {
      proxy_pass http://backend;
      proxy_cache c;
      proxy_cache_valid 200 10m;
    }
  }
}
NGINX
python3 calibration/backend.py serve 31101 0 &
pids+=($!)
nginx -c "$work/nginx/nginx.conf" -g "daemon off;" &
pids+=($!)
wait_port 31180
wait_port 31101
curl -sf "http://127.0.0.1:31180/static/1.js" >/dev/null
curl -sf "http://$gateway_http/static/1.js" >/dev/null
wrk -t2 -c64 -d"${secs}s" "http://$gateway_http/static/1.js" >"$work/wrk-minitwin.txt"
wrk -t2 -c64 -d"${secs}s" "http://127.0.0.1:31180/static/1.js" >"$work/wrk-nginx.txt"
hits=$(curl -sf "http://$gateway_http/metrics" | awk '/^gateway_cache_hits_total / { print $2 }')
misses=$(curl -sf "http://$gateway_http/metrics" | awk '/^gateway_cache_misses_total / { print $2 }')
bench=$("$bin" bench-store "$store_peer" --clients 16 --for "$secs")
stop_all

# MariaDB: one server, binlog synced at every commit, InnoDB log flushed at every commit.
mariadb-install-db --no-defaults --datadir="$work/mariadb" --auth-root-authentication-method=normal >/dev/null 2>&1
mariadbd --no-defaults --datadir="$work/mariadb" --socket="$work/mariadb.sock" --port=33071 \
  --bind-address=127.0.0.1 --user=root --skip-grant-tables --server-id=1 \
  --log-bin="$work/mariadb/bin" --binlog-format=ROW --sync-binlog=1 \
  --innodb-flush-log-at-trx-commit=1 --max-connections=200 --log-error="$work/mariadb.err" &
pids+=($!)
wait_port 33071
mariadb --no-defaults -uroot -S "$work/mariadb.sock" -e "CREATE DATABASE b; CREATE TABLE b.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v BIGINT) ENGINE=InnoDB"
queries=$((16 * 2000))
start=$(date +%s.%N)
mariadb-slap --no-defaults -uroot -S "$work/mariadb.sock" --create-schema=b --concurrency=16 \
  --iterations=1 --number-of-queries=$queries --query="INSERT INTO t (v) VALUES (1)" >"$work/slap.txt"
end=$(date +%s.%N)
rows=$(mariadb --no-defaults -uroot -N -B -S "$work/mariadb.sock" -e "SELECT COUNT(*) FROM b.t")
stop_all

m=$(rps <"$work/wrk-minitwin.txt")
n=$(rps <"$work/wrk-nginx.txt")
store_rate=$(echo "$bench" | sed -n 's/.*writes (\([0-9]*\)\/s).*/\1/p')
maria_rate=$(python3 -c "print(round($rows / ($end - $start)))")
{
  echo "# minitwin against nginx and MariaDB on this machine (calibration/speed.sh, $(nproc) cores, $(date -u +%Y-%m-%d))"
  echo
  echo "cached responses, wrk -t2 -c64 -d${secs}s, GET /static/1.js:"
  echo "  minitwin gateway  $m req/s (cache hits $hits, misses $misses)"
  echo "  nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') proxy_cache  $n req/s"
  echo "  ratio minitwin / nginx  $(python3 -c "print(round($m / $n, 3))")"
  echo
  echo "durable writes, 16 clients, ${secs} s / $queries inserts:"
  echo "  minitwin store    $store_rate acknowledged writes/s  ($bench)"
  echo "  MariaDB $(mariadbd --version | awk '{print $3}') sync_binlog=1  $maria_rate inserts/s ($rows rows in $(python3 -c "print(round($end - $start, 2))") s)"
  echo "  ratio minitwin / MariaDB  $(python3 -c "print(round($store_rate / $maria_rate, 3))")"
} | tee "$work/speed.txt"
