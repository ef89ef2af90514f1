#!/usr/bin/env bash
# MariaDB semi-sync replication on loopback, real against twin (issue #7, point 1).
#
# Starts a real MariaDB primary (127.0.0.1:33061; binlog, sync_binlog=1, semi-sync master on,
# rpl_semi_sync_master_timeout 2,000 ms) and one replica (33062, semi-sync slave on) in a
# temporary directory, then TRIALS times:
#   latency_on_ms / latency_off_ms  the median of 200 single-row autocommit INSERTs, timed
#                                   inside the server (NOW(6) around each), semi-sync on / off;
#   first_write_ms                  SIGKILL the replica; the next INSERT waits the timeout;
#   fell_back                       1 when the primary then reports Rpl_semi_sync_master_status OFF;
#   next_write_ms                   the INSERT after it (async now);
#   back_ms                         restart the replica (3 s after the kill, writes going on at
#                                   10 a second): from its semi-sync registration at the primary
#                                   (Rpl_semi_sync_master_clients back to 1) to the primary's
#                                   status ON, both read inside the server every 0.5 ms by a
#                                   stored procedure. (A client polling from outside cannot see
#                                   below one mariadb call, about 10 ms: the first version of
#                                   this script measured that floor. mariadbd's own start-up,
#                                   about 150 ms before it registers, is not counted: the twin
#                                   has no process start-up.) The twin: from the restart to
#                                   semi-sync back on; its replica_connect (log-normal, median
#                                   4.5 ms) was set from this measurement, so this row is
#                                   calibrated, not predicted.
# Stops every process it started by pid. Then runs the twin's
# scenarios/semisync-replica-stop.toml on as many seeds, with the disk's sync latency set to
# two fsyncs (binlog and redo) of this machine as measured here, and prints real against twin.
# Writes results/calibration/mariadb-semisync.{csv,txt}.
#
# Needs mariadb-server, mariadb-client and python3 (Debian: apt-get install mariadb-server
# mariadb-client python3).
# Usage: calibration/mariadb-semisync.sh [TRIALS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in mariadbd mariadb mariadb-install-db python3; do
  command -v "$tool" >/dev/null || {
    echo "calibration: $tool is missing: install it (Debian: apt-get install mariadb-server mariadb-client python3)" >&2
    exit 2
  }
done
trials=${1:-5}
timeout_ms=2000
out_dir=results/calibration
mkdir -p "$out_dir"
csv="$out_dir/mariadb-semisync.csv"
work=$(mktemp -d)
primary_pid="" replica_pid="" writer_pid=""
stop_all() {
  for p in $writer_pid $replica_pid $primary_pid; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in $writer_pid $replica_pid $primary_pid; do
    wait "$p" 2>/dev/null || true
  done
  writer_pid="" replica_pid="" primary_pid=""
}
trap 'stop_all; rm -rf "$work"' EXIT
now_s() { date +%s.%N; }
wait_port() { until python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null; do sleep 0.01; done; }

for n in primary replica; do
  mariadb-install-db --no-defaults --datadir="$work/$n" --auth-root-authentication-method=normal >/dev/null 2>&1
done
start_primary() {
  mariadbd --no-defaults --datadir="$work/primary" --socket="$work/primary.sock" --port=33061 \
    --bind-address=127.0.0.1 --user=root --skip-grant-tables --server-id=1 \
    --log-bin="$work/primary/bin" --binlog-format=ROW --sync-binlog=1 \
    --innodb-flush-log-at-trx-commit=1 --rpl-semi-sync-master-enabled=ON \
    --rpl-semi-sync-master-timeout=$timeout_ms --log-error="$work/primary.err" &
  primary_pid=$!
}
start_replica() {
  mariadbd --no-defaults --datadir="$work/replica" --socket="$work/replica.sock" --port=33062 \
    --bind-address=127.0.0.1 --user=root --skip-grant-tables --server-id=2 \
    --relay-log="$work/replica/relay" --rpl-semi-sync-slave-enabled=ON \
    --log-error="$work/replica.err" &
  replica_pid=$!
}
sql() { timeout 60 mariadb --no-defaults -uroot -N -B -S "$work/$1.sock" "${@:2}"; }
status() { sql primary -e "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'" | awk '{ print $2 }'; }
# The median (or, for one, the value) of N timed INSERTs, in ms.
inserts_ms() {
  python3 -c "
import sys
for i in range(int(sys.argv[1])):
    print('SET @t = NOW(6); INSERT INTO kv.kv (v) VALUES (%d); SELECT TIMESTAMPDIFF(MICROSECOND, @t, NOW(6));' % i)
" "$1" | sql primary | sort -n | awk '{ a[NR] = $1 } END { printf "%.3f", a[int((NR + 1) / 2)] / 1000 }'
}

start_primary
start_replica
wait_port 33061
wait_port 33062
sql primary -e "CREATE DATABASE kv; CREATE TABLE kv.kv (k BIGINT AUTO_INCREMENT PRIMARY KEY, v BIGINT) ENGINE=InnoDB"
# Waits inside the server for the replica's semi-sync registration and then for the status ON;
# prints both as Unix times (microseconds), or NULL after 10 s.
sql primary <<'SQL'
DELIMITER //
CREATE PROCEDURE kv.back_on() BEGIN
  DECLARE t_conn DATETIME(6) DEFAULT NULL;
  DECLARE t_on DATETIME(6) DEFAULT NULL;
  DECLARE i INT DEFAULT 0;
  WHILE t_on IS NULL AND i < 20000 DO
    IF t_conn IS NULL AND (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
        WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS') = '1' THEN
      SET t_conn = NOW(6);
    END IF;
    IF (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
        WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_STATUS') = 'ON' THEN
      SET t_on = NOW(6);
    END IF;
    DO SLEEP(0.0005);
    SET i = i + 1;
  END WHILE;
  SELECT UNIX_TIMESTAMP(t_conn), UNIX_TIMESTAMP(t_on);
END //
DELIMITER ;
SQL
sql replica -e "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=33061, MASTER_USER='root', MASTER_USE_GTID=slave_pos; START SLAVE"
until [ "$(sql primary -e "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'" | awk '{ print $2 }')" = 1 ]; do sleep 0.05; done

# This machine's fsync, in the temporary directory: the twin's disk.
read -r fsync_p10 fsync_mean < <(python3 - "$work/fsync.test" <<'PY'
import os, sys, time
f = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
xs = []
for _ in range(500):
    os.write(f, b"x" * 256)
    t = time.perf_counter(); os.fsync(f); xs.append((time.perf_counter() - t) * 1000)
xs.sort()
print(f"{xs[50]:.4f} {sum(xs) / len(xs):.4f}")
PY
)

echo "system,experiment,trial,quantity,value" >"$csv"
for i in $(seq 1 "$trials"); do
  on=$(inserts_ms 200)
  sql primary -e "SET GLOBAL rpl_semi_sync_master_enabled = OFF"
  off=$(inserts_ms 200)
  sql primary -e "SET GLOBAL rpl_semi_sync_master_enabled = ON"
  inserts_ms 1 >/dev/null
  until [ "$(status)" = ON ]; do sleep 0.05; done
  kill -9 "$replica_pid"
  wait "$replica_pid" 2>/dev/null || true
  kill_s=$(now_s)
  first=$(inserts_ms 1)
  fell_back=$([ "$(status)" = OFF ] && echo 1 || echo 0)
  next=$(inserts_ms 1)
  (while true; do inserts_ms 1 >/dev/null; sleep 0.1; done) &
  writer_pid=$!
  sleep "$(python3 -c "import time; print(max(0.0, $kill_s + 2.5 - time.time()))")"
  (sql primary -e "CALL kv.back_on()" >"$work/back_on") &
  waiter_pid=$!
  sleep 0.5
  start_replica
  wait_port 33062
  wait "$waiter_pid"
  kill "$writer_pid" 2>/dev/null || true
  wait "$writer_pid" 2>/dev/null || true
  writer_pid=""
  back=$(awk '{ if ($1 == "NULL" || $2 == "NULL") print "nan"; else printf "%.3f", ($2 - $1) * 1000 }' "$work/back_on")
  for q in "latency_on_ms $on" "latency_off_ms $off" "first_write_ms $first" "fell_back $fell_back" \
    "next_write_ms $next" "back_ms $back"; do
    set -- $q
    echo "real,semisync,$i,$1,$2" >>"$csv"
  done
  echo "real mariadb: trial $i of $trials: on $on ms, off $off ms, first write $first ms, back in $back ms" >&2
done
version=$(mariadbd --version | awk '{ print $3 }')
stop_all

# The twin, with this machine's disk.
cargo build --release --quiet
disk="topology.stores.disk.sync_latency={ dist = \"shifted_exp\", min_ms = $(python3 -c "print(round(2 * $fsync_p10, 4))"), extra_mean_ms = $(python3 -c "print(round(2 * ($fsync_mean - $fsync_p10), 4))") }"
twin() { # seed extra-args...
  local seed=$1
  shift
  rm -rf "$work/twin"
  target/release/minitwin run scenarios/semisync-replica-stop.toml --seed "$seed" --quiet \
    --out "$work/twin" --set "$disk" "$@" >/dev/null 2>&1 || true
  cat "$work"/twin/*/seed-"$seed"/metrics.csv
}
metric() { awk -F, -v c="$1" -v m="$2" '$4 == c && $5 == m { print $6 }'; }
for i in $(seq 1 "$trials"); do
  on=$(twin "$i" --set "faults=[]" | metric store-0 store_write_latency_ms_p50)
  off=$(twin "$i" --set "faults=[]" --set topology.stores.config.replication=async | metric store-0 store_write_latency_ms_p50)
  m=$(twin "$i" --log "$work/twin.log" --log-level debug)
  first=$(echo "$m" | metric store-0 store_commit_latency_ms_max)
  fell_back=$(echo "$m" | metric store-0 store_semi_sync_fallbacks_total)
  back=$(python3 - "$work/twin.log" <<'PY'
import json, sys
restart = on = None
for line in open(sys.argv[1]):
    e = json.loads(line)
    f = e.get("fields", {})
    if f.get("message") == "restart":
        restart = f["t_ns"]
    if f.get("message", "").startswith("a replica caught up") and restart is not None:
        on = e["span"]["t_ns"]
        break
print(round((on - restart) / 1e6, 3) if on else "nan")
PY
)
  for q in "latency_on_ms $on" "latency_off_ms $off" "first_write_ms $first" "fell_back $fell_back" "back_ms $back"; do
    set -- $q
    echo "twin,semisync,$i,$1,$2" >>"$csv"
  done
done

python3 calibration/table.py "$csv" \
  "MariaDB $version semi-sync on loopback against the twin (timeout $timeout_ms ms; twin disk: 2 fsyncs of this machine, fsync p10 $fsync_p10 ms, mean $fsync_mean ms); twin at commit $(git rev-parse --short HEAD); $trials trials each; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(date -u +%F)" \
  | tee "$out_dir/mariadb-semisync.txt"
