#!/usr/bin/env bash
# Redis Cluster failover on loopback, real against twin (issue #7, point 1).
#
# Starts a real Redis Cluster of 3 masters and 1 replica each on 127.0.0.1 (ports 30001-30006,
# a temporary directory, no persistence), waits until every replica's link is up, SIGKILLs a
# master and times, from the kill, until another node's CLUSTER NODES shows its replica as
# master; TRIALS times at each cluster-node-timeout. Meanwhile one client INCRs a counter on
# that master at 333 a second (the twin's set rate per master): the writes it acknowledged
# that the promoted replica does not have are the writes lost. Stops every process it started
# by pid. Then runs the twin's scenarios/session-failover.toml with the same node timeout on
# as many seeds, and prints real against twin (median, p10, p90, ratio). Writes the trials to
# results/calibration/redis-failover.csv and the table to redis-failover.txt.
#
# Needs redis-server and redis-cli (Debian: apt-get install redis-server redis-tools).
# Usage: calibration/redis-failover.sh [TRIALS] [TIMEOUTS_MS...]   (default: 5 2000 15000)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || {
    echo "calibration: $tool is missing: install it (Debian: apt-get install redis-server redis-tools)" >&2
    exit 2
  }
done
trials=${1:-5}
shift || true
timeouts=("${@:-2000}")
[ $# -gt 0 ] || timeouts=(2000 15000)
out_dir=results/calibration
mkdir -p "$out_dir"
csv="$out_dir/redis-failover.csv"
work=$(mktemp -d)
. calibration/lib.sh
trap 'stop_all KILL; rm -rf "$work"' EXIT
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# The interpreter itself, not a version manager's shim, so that $! is the writer's pid.
py=$(python3 -c 'import sys; print(sys.executable)')

# One trial: a fresh cluster, a kill, the time to the replica's promotion (ms).
trial() {
  local timeout=$1 dir="$work/t$RANDOM$RANDOM"
  mkdir -p "$dir"
  local ports=(30001 30002 30003 30004 30005 30006) addrs=()
  for port in "${ports[@]}"; do
    mkdir -p "$dir/$port"
    cat >"$dir/$port/redis.conf" <<CONF
port $port
bind 127.0.0.1
protected-mode yes
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout $timeout
appendonly no
save ""
dir $dir/$port
logfile $dir/$port/redis.log
CONF
    redis-server "$dir/$port/redis.conf" >/dev/null 2>&1 &
    pids+=($!)
    addrs+=("127.0.0.1:$port")
  done
  for port in "${ports[@]}"; do
    until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1
  # Every node sees the cluster ok, and every replica's link to its master is up.
  for port in "${ports[@]}"; do
    until redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok'; do sleep 0.1; done
  done
  for port in "${ports[@]}"; do
    if redis-cli -p "$port" info replication | grep -q 'role:slave'; then
      until redis-cli -p "$port" info replication | grep -q 'master_link_status:up'; do sleep 0.1; done
    fi
  done
  # The master on 30001, its replica, and the pid to kill.
  local master_id replica_id replica_port victim=${pids[${#pids[@]}-6]}
  master_id=$(redis-cli -p 30001 cluster myid | tr -d '\r')
  replica_id=$(redis-cli -p 30002 cluster nodes | awk -v m="$master_id" '$4 == m { print $1 }')
  [ -n "$replica_id" ] || { echo "calibration: no replica of 30001 found" >&2; exit 1; }
  replica_port=$(redis-cli -p 30002 cluster nodes | awk -v r="$replica_id" '$1 == r { split($2, a, "[:@]"); print a[2] }')
  "$py" calibration/backend.py redis-incr 30001 333 >"$dir/writer.out" &
  local writer=$!
  sleep 1
  local t0 t1
  t0=$(now_ms)
  kill -9 "$victim"
  until redis-cli -p 30002 cluster nodes | awk -v r="$replica_id" '$1 == r && $3 ~ /master/ { found = 1 } END { exit !found }'; do
    sleep 0.02
  done
  t1=$(now_ms)
  wait "$writer" || true
  local key acked kept
  read -r key acked <"$dir/writer.out"
  kept=$(redis-cli -p "$replica_port" get "$key" | tr -d '\r')
  stop_all KILL
  echo "$((t1 - t0)) $((acked - ${kept:-0}))"
}

echo "system,experiment,trial,quantity,value" >"$csv"
for timeout in "${timeouts[@]}"; do
  for i in $(seq 1 "$trials"); do
    read -r ms lost < <(trial "$timeout")
    echo "real,failover node_timeout=${timeout}ms,$i,failover_ms,$ms" >>"$csv"
    echo "real,failover node_timeout=${timeout}ms,$i,lost_writes,$lost" >>"$csv"
    echo "real redis: node timeout $timeout ms, trial $i: failover in $ms ms, $lost acknowledged writes lost" >&2
  done
done

# The twin: the same topology and timeout, one seed per trial.
cargo build --release --quiet
for timeout in "${timeouts[@]}"; do
  for i in $(seq 1 "$trials"); do
    "target/release/minitwin" run scenarios/session-failover.toml --seed "$i" --quiet \
      --set "topology.sessions.config.node_timeout_ms=$timeout.0" --out "$work/twin" >/dev/null 2>&1 || true
    f=$(awk -F, '$4 == "run" && $5 == "failover_s" { print $6 }' \
      "$work"/twin/session-failover*/seed-"$i"/metrics.csv)
    lost=$(sed -nE 's/.*acknowledged writes lost ([0-9]+).*/\1/p' "$work"/twin/session-failover*/seed-"$i"/summary.txt | head -1)
    echo "twin,failover node_timeout=${timeout}ms,$i,failover_ms,$(awk -v s="$f" 'BEGIN { printf "%.0f", s * 1000 }')" >>"$csv"
    echo "twin,failover node_timeout=${timeout}ms,$i,lost_writes,$lost" >>"$csv"
  done
done

redis_version=$(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/')
python3 calibration/table.py "$csv" \
  "Redis Cluster failover: real (redis $redis_version, loopback) against the twin; twin at commit $(git rev-parse --short HEAD); $trials trials each; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(date -u +%F)" \
  | tee "$out_dir/redis-failover.txt"
