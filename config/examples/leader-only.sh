#!/bin/sh
# Run a scheduled job only on the pod that raft-elector names as leader: GET
# http://localhost:4040/ answers {"name":"<leader pod>"}, and this pod leads when that is its
# own name (HOSTNAME is the pod name in Kubernetes). POSIX sh with curl or wget (busybox works).
#
#   leader-only.sh            # every 30 s: run the job here if this pod leads
#   leader-only.sh --check    # exit 0 if this pod leads, 1 otherwise
#   leader-only.sh --watch    # push: "<leader> me|other|none" at once and on every change
#   leader-only.sh --claim JOB [SLOT]
#                             # exactly once per slot: claim SLOT (default: this minute, RFC
#                             # 3339 UTC) of JOB in raft-elector's job ledger; run it if granted
#
# --claim replaces the name check: every replica asks POST /v1/jobs/JOB/claims {"slot":..};
# only the one that gets 201 (or 200, its own grant again) runs the job, with the grant's
# token to fence its writes. Exit 0 ran, 1 held by another pod (409), 2 ask again later (503),
# 3 refused (400, 410). Needs curl.
#
# --watch reads the Server-Sent Events of GET /sse (nais/elector's stream: an event at once,
# then one on every change of leader) with curl -N, reconnecting when the sidecar restarts.
#
# RAFT_ELECTOR_URL overrides the sidecar's address (default http://localhost:4040).
# With the raft-elector binary at hand the check is one line:
#   [ "$(raft-elector leader --http localhost:4040)" = "$HOSTNAME" ]
url=${RAFT_ELECTOR_URL:-http://localhost:4040}

leader() {
  { curl -fsS --max-time 2 --noproxy '*' "$url/" 2>/dev/null ||
    wget -q -T 2 -O - "$url/" 2>/dev/null; } |
    sed -n 's/.*"name":"\([^"]*\)".*/\1/p'
}

# No answer means "not me": never assume leadership.
is_leader() {
  [ -n "${HOSTNAME:-}" ] && [ "$(leader)" = "$HOSTNAME" ]
}

job() {
  echo "$(date -u +%FT%TZ) $HOSTNAME leads: running the job"
}

if [ "${1:-}" = "--claim" ] && [ -n "${2:-}" ]; then
  job_name=$2
  slot=${3:-$(date -u +%Y-%m-%dT%H:%M:00Z)}
  out=$(curl -sS --max-time 5 --noproxy '*' -o - -w '\n%{http_code}' -X POST \
    -H 'content-type: application/json' -d "{\"slot\":\"$slot\"}" \
    "$url/v1/jobs/$job_name/claims" 2>/dev/null)
  code=${out##*
}
  body=${out%
*}
  token=$(echo "$body" | sed -n 's/.*"token":\([0-9]*\).*/\1/p')
  holder=$(echo "$body" | sed -n 's/.*"holder":"\([^"]*\)".*/\1/p')
  case $code in
    200|201) echo "${HOSTNAME:-} holds $job_name $slot (token $token): running the job"; exit 0 ;;
    409) echo "${HOSTNAME:-}: $job_name $slot is held by $holder (token $token)"; exit 1 ;;
    503|000) echo "${HOSTNAME:-}: $job_name $slot: ask again later ($code)"; exit 2 ;;
    *) echo "${HOSTNAME:-}: $job_name $slot: refused ($code): $body"; exit 3 ;;
  esac
fi

if [ "${1:-}" = "--check" ]; then
  is_leader
  exit
fi

if [ "${1:-}" = "--watch" ]; then
  trap 'exit 0' TERM INT
  while true; do
    curl -sSN --noproxy '*' "$url/sse" 2>/dev/null |
      while IFS= read -r line; do
        case $line in
          data:*) name=${line#*\"name\":\"}; name=${name%%\"*} ;;
          *) continue ;;
        esac
        if [ -z "$name" ]; then who=none; elif [ "$name" = "${HOSTNAME:-}" ]; then who=me; else who=other; fi
        echo "${name:--} $who"
      done
    sleep 1 # the sidecar is restarting: connect again shortly
  done
fi

trap 'exit 0' TERM INT
while true; do
  # Ask right before each run: leadership can move between two runs.
  if is_leader; then
    job
  fi
  sleep 30 &
  wait $!
done
