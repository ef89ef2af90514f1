#!/usr/bin/env bash
# Records a small production incident from real software, for `minitwin import` and
# `minitwin replay` (issue #11, point 6): nginx in front of three local backends
# (calibration/backend.py, 5 ms each), an open-loop Poisson load of 50 GET/s for 40 s, one
# backend in trouble from 10 s to 25 s. nginx logs in the `upstream` format (combined +
# $request_time $upstream_addr $upstream_response_time $upstream_status).
#   kill (default): the backend is SIGKILLed and started again. Clients see no error (nginx
#     passes a refused request to the next upstream); the log shows the failed attempts.
#     Writes tests/data/incident-nginx/{access.log,timeline.txt}.
#   hang: the backend is SIGSTOPped and SIGCONTinued (a process stuck in a GC pause, a full
#     disk, a deadlock). Its kernel still accepts connections, so nginx sends it its share and
#     waits (proxy_read_timeout 60 s); the users give up after 1 s. Prometheus (1 s scrapes)
#     watches the backends. Writes tests/data/incident-hang/{access.log,timeline.toml,
#     prometheus-up.json,prometheus-up.csv}.
# Stops what it started by pid.
# Needs nginx and python3, and prometheus for `hang` (Debian: apt-get install nginx python3
# prometheus).
# Usage: calibration/record-incident.sh [kill|hang] (environment: OUT, another directory to
# write to; PROXY_READ_TIMEOUT, nginx's proxy_read_timeout, 60s by default: the what-if of the
# README's walk-through held against real nginx)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-kill}
case "$mode" in
  kill) out=${OUT:-tests/data/incident-nginx}; tools="nginx python3" ;;
  hang) out=${OUT:-tests/data/incident-hang}; tools="nginx python3 prometheus" ;;
  *) echo "record-incident: unknown mode '$mode': give kill or hang" >&2; exit 2 ;;
esac
for tool in $tools; do
  command -v "$tool" >/dev/null || {
    echo "record-incident: $tool is missing: install it (Debian: apt-get install $tool)" >&2
    exit 2
  }
done
mkdir -p "$out"
work=$(mktemp -d)
. calibration/lib.sh
trap 'stop_all; rm -rf "$work"' EXIT
py=$(python3 -c 'import sys; print(sys.executable)')
backend() { "$py" calibration/backend.py serve "$1" 5 & pids+=($!); }
wait_port() { until python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null; do sleep 0.05; done; }
chmod 0755 "$work"
mkdir -p "$work/tmp" && chmod 0777 "$work/tmp"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log info;
events { worker_connections 1024; }
http {
  log_format upstream '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status \$body_bytes_sent "\$http_referer" "\$http_user_agent" \$request_time \$upstream_addr \$upstream_response_time \$upstream_status';
  access_log $work/access.log upstream;
  client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  upstream backends { server 127.0.0.1:31001; server 127.0.0.1:31002; server 127.0.0.1:31003; }
  server { listen 127.0.0.1:31080; location / { proxy_pass http://backends; proxy_read_timeout ${PROXY_READ_TIMEOUT:-60s}; } }
}
CONF
backend 31001; backend 31002; victim=${pids[-1]}; backend 31003
for p in 31001 31002 31003; do wait_port $p; done
nginx -c "$work/nginx.conf" -p "$work" >/dev/null 2>&1 &
pids+=($!)
wait_port 31080
if [ "$mode" = hang ]; then
  cat >"$work/prometheus.yml" <<CONF
global: { scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s }
scrape_configs:
  - job_name: backends
    static_configs: [ { targets: ['127.0.0.1:31001', '127.0.0.1:31002', '127.0.0.1:31003'] } ]
CONF
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address=127.0.0.1:31090 >"$work/prometheus.log" 2>&1 &
  pids+=($!)
  wait_port 31090
  sleep 3
fi
start=$(date -u +%s.%N)
LOAD_TIMEOUT_S=$([ "$mode" = hang ] && echo 1 || echo 90) "$py" calibration/backend.py load http://127.0.0.1:31080/api/item/ 50 40 1 >"$work/load.csv" &
load=$!
sleep 10
if [ "$mode" = kill ]; then kill -9 "$victim"; else kill -STOP "$victim"; fi
down=$(date -u +%s.%N)
sleep 15
if [ "$mode" = kill ]; then backend 31002; else kill -CONT "$victim"; fi
back=$(date -u +%s.%N)
wait "$load"
sleep 3
if [ "$mode" = hang ]; then
  python3 - "$start" "$out" <<'PY'
import json, sys, urllib.request, urllib.parse
start, out = float(sys.argv[1]), sys.argv[2]
q = urllib.parse.urlencode({"query": "up", "start": f"{start - 5:.3f}", "end": f"{start + 45:.3f}", "step": "1"})
body = urllib.request.urlopen(f"http://127.0.0.1:31090/api/v1/query_range?{q}", timeout=10).read()
open(f"{out}/prometheus-up.json", "wb").write(body)
# The same series as Grafana's "Download CSV" lays them out: a time column, one per series.
res = json.loads(body)["data"]["result"]
names = [r["metric"]["instance"] for r in res]
rows = {}
for i, r in enumerate(res):
    for t, v in r["values"]:
        rows.setdefault(t, [""] * len(res))[i] = v
with open(f"{out}/prometheus-up.csv", "w") as f:
    f.write("Time," + ",".join(f'"up{{instance=""{n}""}}"' for n in names) + "\n")
    for t in sorted(rows):
        f.write(f"{int(t) * 1000}," + ",".join(rows[t]) + "\n")
PY
fi
stop_all
cp "$work/access.log" "$out/access.log"
if [ "$mode" = kill ]; then
  python3 - "$start" "$down" "$back" >"$out/timeline.txt" <<'PY'
import sys
s, k, b = map(float, sys.argv[1:])
print(f"load start (Unix s) {s:.3f}")
print(f"backend 127.0.0.1:31002 SIGKILL at {k:.3f} (+{k - s:.1f} s)")
print(f"backend 127.0.0.1:31002 started at {b:.3f} (+{b - s:.1f} s)")
PY
else
  python3 - "$start" "$down" "$back" >"$out/timeline.toml" <<'PY'
import sys
s, d, b = map(float, sys.argv[1:])
print("# What the operator saw, as recorded by calibration/record-incident.sh hang.")
print(f"start_unix_s = {s:.3f}  # the load started")
print()
print("[[events]]")
print(f"at_unix_s = {d:.3f}  # +{d - s:.1f} s")
print('kind = "node_down"')
print('node = "127.0.0.1:31002"')
print('how = "hang"  # SIGSTOP: the kernel accepts connections, nothing answers')
print()
print("[[events]]")
print(f"at_unix_s = {b:.3f}  # +{b - s:.1f} s")
print('kind = "node_up"')
print('node = "127.0.0.1:31002"')
PY
fi
echo "record-incident: $(wc -l <"$out/access.log") lines in $out/access.log; timeline in $out; nginx $(nginx -v 2>&1 | cut -d/ -f2)" >&2
