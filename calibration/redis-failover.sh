#!/usr/bin/env bash
# Redis Cluster failover on loopback, real against twin (issue #7, point 1).
#
# Starts a real Redis Cluster of 3 masters and 1 replica each on 127.0.0.1 (ports 30001-30006,
# a temporary directory, no persistence), waits until every replica's link is up, SIGKILLs a
# master and times, from the kill, until another node's CLUSTER NODES shows its replica as
# master; TRIALS times at each cluster-node-timeout. Stops every process it started by pid.
# Then runs the twin's scenarios/session-failover.toml with the same node timeout on as many
# seeds, and prints real against twin (median, p10, p90, ratio). Writes the trials to
# results/calibration/redis-failover.csv and the table to redis-failover.txt.
#
# Needs redis-server and redis-cli (Debian: apt-get install redis-server redis-tools).
# Usage: calibration/redis-failover.sh [TRIALS] [TIMEOUTS_MS...]   (default: 5 2000 15000)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in redis-server redis-cli; do
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
pids=()
stop_all() {
  for p in "${pids[@]:-}"; do
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
  done
  for p in "${pids[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

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
  local master_id replica_id victim=${pids[${#pids[@]}-6]}
  master_id=$(redis-cli -p 30001 cluster myid | tr -d '\r')
  replica_id=$(redis-cli -p 30002 cluster nodes | awk -v m="$master_id" '$4 == m { print $1 }')
  [ -n "$replica_id" ] || { echo "calibration: no replica of 30001 found" >&2; exit 1; }
  sleep 1
  local t0 t1
  t0=$(now_ms)
  kill -9 "$victim"
  until redis-cli -p 30002 cluster nodes | awk -v r="$replica_id" '$1 == r && $3 ~ /master/ { found = 1 } END { exit !found }'; do
    sleep 0.02
  done
  t1=$(now_ms)
  stop_all
  echo $((t1 - t0))
}

echo "system,node_timeout_ms,trial,failover_ms" >"$csv"
for timeout in "${timeouts[@]}"; do
  for i in $(seq 1 "$trials"); do
    ms=$(trial "$timeout")
    echo "real,$timeout,$i,$ms" >>"$csv"
    echo "real redis: node timeout $timeout ms, trial $i: failover in $ms ms" >&2
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
    echo "twin,$timeout,$i,$(awk -v s="$f" 'BEGIN { printf "%.0f", s * 1000 }')" >>"$csv"
  done
done

redis_version=$(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/')
{
printf 'Redis Cluster failover: real (redis %s, loopback) against the twin; %s trials each; %s, %s cores, %s\n' \
  "$redis_version" "$trials" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)" "$(date -u +%F)"
printf '%-16s %-6s %10s %10s %10s\n' "node timeout" "" "median ms" "p10 ms" "p90 ms"
python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def q(xs, p):
    xs = sorted(xs); i = (len(xs) - 1) * p; lo = int(i); hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)
for t in sorted({int(r["node_timeout_ms"]) for r in rows}):
    med = {}
    for system in ("real", "twin"):
        xs = [float(r["failover_ms"]) for r in rows if r["system"] == system and int(r["node_timeout_ms"]) == t]
        med[system] = q(xs, 0.5)
        print(f"{t:>10} ms    {system:<6} {q(xs, 0.5):10.0f} {q(xs, 0.1):10.0f} {q(xs, 0.9):10.0f}")
    print(f"{'':>16} twin/real {med['twin'] / med['real']:.2f}")
PY
} | tee "$out_dir/redis-failover.txt"
