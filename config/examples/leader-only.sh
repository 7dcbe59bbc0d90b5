#!/bin/sh
# Run a scheduled job only on the pod that raft-elector names as leader: GET
# http://localhost:4040/ answers {"name":"<leader pod>"}, and this pod leads when that is its
# own name (HOSTNAME is the pod name in Kubernetes). POSIX sh with curl or wget (busybox works).
#
#   leader-only.sh            # every 30 s: run the job here if this pod leads
#   leader-only.sh --check    # exit 0 if this pod leads, 1 otherwise
#   leader-only.sh --watch    # push: "<leader> me|other|none" at once and on every change
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
