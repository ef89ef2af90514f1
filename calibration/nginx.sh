#!/usr/bin/env bash
# nginx on loopback, real against twin (issue #7, point 1).
#
# Starts real nginx on 127.0.0.1:31080 in a temporary directory, in front of 3 backends
# (calibration/backend.py serve, 5 ms each, ports 31001-31003), with nginx's defaults
# (max_fails=1, fail_timeout=10s, proxy_read_timeout 60s), and runs three experiments TRIALS
# times each (open-loop Poisson load from calibration/backend.py load):
#   kill   100 req/s for 40 s; the backend on 31002 is SIGKILLed at 5 s and restarted at 20 s:
#          requests that failed or took over 1 s, failed attempts on the killed
#          backend (refused or reset), requests passed to the next upstream, and how long the
#          backend stays out (its first failure to its next success).
#   limit  limit_req zone=$binary_remote_addr rate=50r/s burst=20, without and with nodelay,
#          under 100 req/s for 10 s: admitted (passed or delayed) and delayed counts, and the
#          share rejected.
#   cache  proxy_cache (valid 10m, big enough for every object) under a Zipf(0.9) stream over
#          10,000 objects at 200 req/s for 20 s: hit ratio.
# Stops every process it started by pid. Then runs the twin's scenarios upstream-kill,
# limit-req and proxy-cache on as many seeds, and prints real against twin. Writes
# results/calibration/nginx.csv and nginx.txt.
#
# Needs nginx and python3 (Debian: apt-get install nginx python3).
# Usage: calibration/nginx.sh [TRIALS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in nginx python3; do
  command -v "$tool" >/dev/null || {
    echo "calibration: $tool is missing: install it (Debian: apt-get install nginx python3)" >&2
    exit 2
  }
done
trials=${1:-5}
out_dir=results/calibration
mkdir -p "$out_dir"
csv="$out_dir/nginx.csv"
work=$(mktemp -d)
. calibration/lib.sh
trap 'stop_all; rm -rf "$work"' EXIT
# The interpreter itself, not a version manager's shim, so that $! is the server's pid.
py=$(python3 -c 'import sys; print(sys.executable)')
backend() { "$py" calibration/backend.py serve "$1" 5 & pids+=($!); }
wait_port() { until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null; do sleep 0.05; done; }

start_nginx() {
  local dir=$1
  mkdir -p "$dir/cache" "$dir/tmp"
  # nginx started as root runs its workers as nobody: they must be able to write the cache.
  chmod 0755 "$work" "$dir"
  chmod 0777 "$dir/cache" "$dir/tmp"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 4096; }
http {
  log_format cal '\$msec|\$request_time|\$status|\$upstream_addr|\$upstream_status|\$limit_req_status|\$upstream_cache_status|\$uri';
  access_log $dir/access.log cal;
  client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
  upstream backends { server 127.0.0.1:31001; server 127.0.0.1:31002; server 127.0.0.1:31003; }
  proxy_cache_path $dir/cache keys_zone=objects:10m inactive=10m;
  limit_req_zone \$binary_remote_addr zone=paced:1m rate=50r/s;
  limit_req_zone \$binary_remote_addr zone=nodelay:1m rate=50r/s;
  server {
    listen 127.0.0.1:31080 backlog=4096;
    location /kill/ { proxy_pass http://backends; }
    location /limit/ { limit_req zone=paced burst=20; proxy_pass http://backends; }
    location /nodelay/ { limit_req zone=nodelay burst=20 nodelay; proxy_pass http://backends; }
    location /cache/ { proxy_cache objects; proxy_cache_valid 200 10m; proxy_pass http://backends; }
  }
}
CONF
  nginx -c "$dir/nginx.conf" -p "$dir" >/dev/null 2>&1 &
  pids+=($!)
  wait_port 31080
}

# One trial of the kill experiment: rows for nginx.csv.
kill_trial() {
  local i=$1 dir="$work/kill$1"
  mkdir -p "$dir/tmp"
  backend 31001; backend 31002; local victim=${pids[-1]}; backend 31003
  for p in 31001 31002 31003; do wait_port $p; done
  start_nginx "$dir"
  "$py" calibration/backend.py load http://127.0.0.1:31080/kill/ 100 40 "$i" >"$dir/load.csv" &
  local load=$!
  sleep 5
  local kill_s
  kill_s=$(date +%s.%N)
  kill -9 "$victim"
  sleep 15
  backend 31002
  wait "$load"
  sleep 0.5
  stop_all
  python3 - "$dir" "$i" "$kill_s" <<'PY'
import sys
d, trial, kill_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
load = [l.split(",") for l in open(f"{d}/load.csv")]
errors = sum(1 for _, st, ms in load if st != "200" or float(ms) > 1000)
failed, retried, first_fail, back = 0, 0, None, None
for line in open(f"{d}/access.log"):
    f = line.rstrip("\n").split("|")
    msec, rt = float(f[0]), float(f[1])
    addrs = f[3].split(", ")
    codes = f[4].split(", ")
    start = msec - rt
    if len(addrs) > 1:
        retried += 1
    for a, c in zip(addrs, codes):
        if a != "127.0.0.1:31002":
            continue
        if c != "200":
            failed += 1
            if first_fail is None and start >= kill_s - 0.01:
                first_fail = start
        elif first_fail is not None and back is None:
            back = start
out_ms = round((back - first_fail) * 1000) if first_fail and back else "nan"
for q, v in [("client_errors", errors), ("failed_attempts", failed),
             ("passed_to_next", retried), ("out_ms", out_ms)]:
    print(f"real,kill,{trial},{q},{v}")
PY
}

# Three backends and nginx in front of them, for a trial in directory $1.
start_all() {
  mkdir -p "$1/tmp"
  backend 31001; backend 31002; backend 31003
  for p in 31001 31002 31003; do wait_port $p; done
  start_nginx "$1"
}

limit_trial() {
  local i=$1 dir="$work/limit$1"
  start_all "$dir"
  python3 calibration/backend.py load http://127.0.0.1:31080/limit/ 100 10 "$i" >"$dir/paced.csv"
  sleep 1.5 # the bucket drains between the two runs
  python3 calibration/backend.py load http://127.0.0.1:31080/nodelay/ 100 10 "$i" >"$dir/nodelay.csv"
  stop_all
  python3 - "$dir" "$i" <<'PY'
import sys
d, trial = sys.argv[1], sys.argv[2]
count = {}
for line in open(f"{d}/access.log"):
    f = line.rstrip("\n").split("|")
    mode = "limit_nodelay" if f[7].startswith("/nodelay/") else "limit_paced"
    c = count.setdefault(mode, {"admitted": 0, "delayed": 0, "rejected": 0})
    if f[2] == "200":
        c["admitted"] += 1
        c["delayed"] += f[5] == "DELAYED"
    else:
        c["rejected"] += 1
for mode in ("limit_paced", "limit_nodelay"):
    c = count[mode]
    c["rejected_share"] = round(c["rejected"] / (c["admitted"] + c["rejected"]), 4)
    for q in ("admitted", "delayed", "rejected_share"):
        print(f"real,{mode},{trial},{q},{c[q]}")
PY
}

cache_trial() {
  local i=$1 dir="$work/cache$1"
  start_all "$dir"
  python3 calibration/backend.py load http://127.0.0.1:31080/cache/ 200 20 "$i" 10000 0.9 >"$dir/load.csv"
  stop_all
  awk -F'|' -v t="$i" '{ if ($7 == "HIT") h++; else if ($7 == "MISS") m++ }
    END { printf "real,cache,%s,hit_ratio,%.4f\n", t, h / (h + m) }' "$dir/access.log"
}

echo "system,experiment,trial,quantity,value" >"$csv"
for i in $(seq 1 "$trials"); do
  kill_trial "$i" >>"$csv"
  limit_trial "$i" >>"$csv"
  cache_trial "$i" >>"$csv"
  echo "real nginx: trial $i of $trials done" >&2
done

# The twin: the same set-ups, one seed per trial.
cargo build --release --quiet
twin() { # scenario seed extra-args...
  local s=$1 seed=$2
  shift 2
  rm -rf "$work/twin"
  target/release/minitwin run "scenarios/$s.toml" --seed "$seed" --quiet --out "$work/twin" "$@" >/dev/null 2>&1 || true
  cat "$work"/twin/*/seed-"$seed"/metrics.csv
}
metric() { awk -F, -v c="$1" -v m="$2" '$4 == c && $5 == m { print $6 }'; }
for i in $(seq 1 "$trials"); do
  m=$(twin upstream-kill "$i")
  # Answered with an error or after the 1 s client timeout; not those still in flight at the end.
  run_errors=$(( $(echo "$m" | metric run requests_total) - $(echo "$m" | metric run ok_total) - $(echo "$m" | metric run unanswered_total) ))
  refused=$(echo "$m" | metric gateway-0 gateway_upstream_refused_total)
  resets=$(echo "$m" | metric gateway-0 gateway_upstream_resets_total)
  {
    echo "twin,kill,$i,client_errors,$run_errors"
    echo "twin,kill,$i,failed_attempts,$((refused + resets))"
    echo "twin,kill,$i,passed_to_next,$(echo "$m" | metric gateway-0 gateway_upstream_retries_total)"
    echo "twin,kill,$i,out_ms,$(echo "$m" | metric gateway-0 gateway_upstream_down_ms_p50 | awk '{ printf "%.0f", $1 }')"
  } >>"$csv"
  for mode in paced nodelay; do
    nd=false
    [ "$mode" = nodelay ] && nd=true
    m=$(twin limit-req "$i" --set "topology.gateways.config.rate_limit_nodelay=$nd")
    {
      total=$(echo "$m" | metric gateway-0 gateway_requests_total)
      limited=$(echo "$m" | metric gateway-0 gateway_rate_limited_total)
      echo "twin,limit_$mode,$i,admitted,$((total - limited))"
      echo "twin,limit_$mode,$i,delayed,$(echo "$m" | metric gateway-0 gateway_rate_delayed_total)"
      echo "twin,limit_$mode,$i,rejected_share,$(awk -v r="$limited" -v t="$total" 'BEGIN { printf "%.4f", r / t }')"
    } >>"$csv"
  done
  m=$(twin proxy-cache "$i")
  echo "twin,cache,$i,hit_ratio,$(echo "$m" | metric run cache_hit_ratio | awk '{ printf "%.4f", $1 }')" >>"$csv"
done

nginx_version=$(nginx -v 2>&1 | sed -E 's|.*nginx/||')
python3 calibration/table.py "$csv" \
  "nginx $nginx_version on loopback against the twin; twin at commit $(git rev-parse --short HEAD); $trials trials each; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(date -u +%F)" \
  | tee "$out_dir/nginx.txt"
