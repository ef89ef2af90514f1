#!/usr/bin/env bash
# Real Prometheus scraping the real loopback cluster (issue #10, point 5).
#
# Starts deploy/loopback/cluster.toml with `minitwin up` (which writes a Prometheus
# configuration for every node's /metrics), starts Prometheus (Debian package) on
# 127.0.0.1:31090 with it, drives the cluster with `minitwin load` at 200 req/s for 20 s,
# SIGKILLs the primary of shard 0 at +8 s, then asks Prometheus what it saw: which targets
# were up, the gateway's answered requests, the replica's promotion. Stops every process it
# started by pid. Writes results/loopback/prometheus.txt.
#
# Needs prometheus and promtool (Debian: apt-get install prometheus) and curl.
# Usage: calibration/prometheus-loopback.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in prometheus promtool curl python3; do
  command -v "$tool" >/dev/null || {
    echo "calibration: $tool is missing (Debian: apt-get install prometheus curl python3)" >&2
    exit 2
  }
done
bin=target/release/minitwin
[ -x "$bin" ] || { echo "calibration: $bin is missing: run cargo build --release" >&2; exit 2; }
out=results/loopback
mkdir -p "$out"
work=$(mktemp -d)
. calibration/lib.sh
trap 'stop_all; rm -rf "$work"' EXIT
"$bin" up deploy/loopback/cluster.toml --fresh --for 40 --kill store-0@10 >"$work/up.txt" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "Ctrl-C stops" "$work/up.txt" 2>/dev/null && break; sleep 0.1; done
config="$out/logs/prometheus.yml"
promtool check config "$config" >/dev/null
prometheus --config.file="$config" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address=127.0.0.1:31090 >"$work/prometheus.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf http://127.0.0.1:31090/-/ready >/dev/null && break; sleep 0.2; done
"$bin" load deploy/loopback/cluster.toml --for 20 --rate 200 --warmup-s 0 >"$work/load.txt"
sleep 3 # two more scrapes
q() { curl -sf --get http://127.0.0.1:31090/api/v1/query --data-urlencode "query=$1"; }
{
  echo "# Prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') scraping \`minitwin up deploy/loopback/cluster.toml\` (calibration/prometheus-loopback.sh)"
  echo
  sed -n '/killed/p' "$work/up.txt"
  sed -n '/requests\|throughput\|latency\|error/p' "$work/load.txt"
  echo
  echo "up (1 = scraped at the last scrape), by node:"
  q 'up' | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; [print("  %-13s %s" % (x["metric"]["node"], x["value"][1])) for x in sorted(r, key=lambda x: x["metric"]["node"])]'
  echo
  echo "seconds each node was down (scrapes with up 0, one a second, over the last 2 minutes):"
  q 'sum_over_time((1 - up)[2m:1s])' | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; [print("  %-13s %.0f s" % (x["metric"]["node"], float(x["value"][1]))) for x in sorted(r, key=lambda x: x["metric"]["node"]) if float(x["value"][1]) > 0.5]'
  echo
  for expr in 'gateway_requests_total' 'sum by (node) (store_promotions_total)' 'gateway_upstream_latency_ns{quantile="0.99"} / 1e6' 'sum(rate(store_writes_total[10s]))'; do
    echo "$expr:"
    q "$expr" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; [print("  %-13s %s" % (x["metric"].get("node","(sum)"), x["value"][1])) for x in r]'
  done
} | tee "$out/prometheus.txt"
