# Shared by the calibration scripts (sourced, from the repository root): the processes a script
# started, stopped by their pids and nothing else.
pids=()

# Sends SIGNAL (default TERM: nginx's master stops its workers on TERM, a killed master would
# leave them running) to every pid in `pids`, waits for each, and forgets them.
stop_all() {
  local signal=${1:-TERM} p
  for p in "${pids[@]:-}"; do
    [ -n "$p" ] && kill "-$signal" "$p" 2>/dev/null || true
  done
  for p in "${pids[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  pids=()
}
