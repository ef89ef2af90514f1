#!/usr/bin/env bash
# Every calibration run, then the README's fidelity table from results/calibration/*.csv.
# Usage: calibration/all.sh [TRIALS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-5}
calibration/redis-failover.sh "$trials"
calibration/nginx.sh "$trials"
calibration/mariadb-semisync.sh "$trials"
calibration/table.py --readme README.md
echo "calibration: README.md's fidelity table regenerated" >&2
