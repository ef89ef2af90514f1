#!/usr/bin/env bash
# Records a small production incident from real software, for `minitwin import` and the
# incident-replay work (issue #11, point 6): nginx in front of three local backends
# (calibration/backend.py, 5 ms each), an open-loop Poisson load of 50 GET/s for 40 s, one
# backend SIGKILLed at 10 s and started again at 25 s. nginx logs in the `upstream` format
# (combined + $request_time $upstream_addr $upstream_response_time $upstream_status): clients
# see no error (nginx passes a refused request to the next upstream), the log shows the failed
# attempts. Writes tests/data/incident-nginx/{access.log,timeline.txt,README.md}; stops what it
# started by pid.
# Needs nginx and python3 (Debian: apt-get install nginx python3).
# Usage: calibration/record-incident.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in nginx python3; do
  command -v "$tool" >/dev/null || {
    echo "record-incident: $tool is missing: install it (Debian: apt-get install nginx python3)" >&2
    exit 2
  }
done
out=tests/data/incident-nginx
mkdir -p "$out"
work=$(mktemp -d)
pids=()
stop_all() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  pids=()
}
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
  server { listen 127.0.0.1:31080; location / { proxy_pass http://backends; } }
}
CONF
backend 31001; backend 31002; victim=${pids[-1]}; backend 31003
for p in 31001 31002 31003; do wait_port $p; done
nginx -c "$work/nginx.conf" -p "$work" >/dev/null 2>&1 &
pids+=($!)
wait_port 31080
start=$(date -u +%s.%N)
"$py" calibration/backend.py load http://127.0.0.1:31080/api/item/ 50 40 1 >"$work/load.csv" &
load=$!
sleep 10
kill -9 "$victim"
killed=$(date -u +%s.%N)
sleep 15
backend 31002
back=$(date -u +%s.%N)
wait "$load"
sleep 0.5
stop_all
cp "$work/access.log" "$out/access.log"
python3 - "$start" "$killed" "$back" >"$out/timeline.txt" <<'PY'
import sys
s, k, b = map(float, sys.argv[1:])
print(f"load start (Unix s) {s:.3f}")
print(f"backend 127.0.0.1:31002 SIGKILL at {k:.3f} (+{k - s:.1f} s)")
print(f"backend 127.0.0.1:31002 started at {b:.3f} (+{b - s:.1f} s)")
PY
echo "record-incident: $(wc -l <"$out/access.log") lines in $out/access.log; timeline in $out/timeline.txt; nginx $(nginx -v 2>&1 | cut -d/ -f2)" >&2
