#!/usr/bin/env bash
# The size of a 3-peer cluster's state after many job claims (issue 14's "state-machine and disk
# size after a million claims"): three release peers on loopback with default settings, wrk
# claiming fresh slots on the leader (one job per wrk thread, slots numbered in order) in rounds
# of 60 s until the leader's log holds CLAIMS entries, then each data directory's size, the
# ledger's slot count and the log's indexes. Usage: scripts/claims-size.sh [CLAIMS] (1000000).
set -euo pipefail
claims=${1:-1000000}
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --locked -q --bin raft-elector
exe=$PWD/target/release/raft-elector
dir=$(mktemp -d /tmp/raft-elector-claims-size-XXXXXX)
pids=()
cleanup() {
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

peers="s0=127.0.0.1:47110,s1=127.0.0.1:47111,s2=127.0.0.1:47112"
for i in 0 1 2; do
  "$exe" --election claims-size --id "s$i" --peers "$peers" --data-dir "$dir/s$i" \
    --http "127.0.0.1:4715$i" >"$dir/s$i.log" 2>&1 &
  pids+=("$!")
done

leader=""
for _ in $(seq 300); do
  for i in 0 1 2; do
    if curl -sf "http://127.0.0.1:4715$i/v1/leader" | grep -q '"is_leader":true'; then leader=$i; fi
  done
  [ -n "$leader" ] && break
  sleep 0.1
done
[ -n "$leader" ] || { echo "no leader within 30 s" >&2; tail -20 "$dir/s0.log" >&2; exit 1; }
echo "leader: s$leader"

cat >"$dir/claim.lua" <<'LUA'
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("job", "size-" .. next_id)
end
local round, n = 0, 0
function init(args)
  round = tonumber(args[1])
end
function request()
  n = n + 1
  -- Slots sort in claim order across rounds: a job refuses slots below those it forgot.
  return wrk.format("POST", "/v1/jobs/" .. job .. "/claims",
    { ["Content-Type"] = "application/json" }, string.format('{"slot":"%04d-%012d"}', round, n))
end
LUA

metric() { curl -sf "http://127.0.0.1:4715$leader/metrics" | awk -v m="raft_elector_$1" '$1 == m {print $2}'; }
round=0
started=$(date +%s)
while :; do
  last=$(metric last_log_index)
  [ "${last%.*}" -ge "$claims" ] && break
  round=$((round + 1))
  wrk -t2 -c64 -d60s -s "$dir/claim.lua" "http://127.0.0.1:4715$leader" -- "$round" \
    | grep -E "Requests/sec|Non-2xx" || true
  echo "round $round: last log index $(metric last_log_index)"
done
echo "claims appended: $(metric last_log_index) log entries in $(( $(date +%s) - started )) s"
echo "snapshot index $(metric snapshot_index), purged index $(metric purged_index)"
curl -sf "http://127.0.0.1:4715$leader/v1/jobs" | head -c 400; echo
for i in 0 1 2; do
  echo "s$i data directory: $(du -sb "$dir/s$i" | cut -f1) bytes ($(du -sh "$dir/s$i" | cut -f1) allocated)"
done
for i in 0 1 2; do
  echo "s$i resident memory: $(awk '/VmRSS/ {print $2, $3}' "/proc/${pids[$i]}/status")"
done
