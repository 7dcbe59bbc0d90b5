#!/usr/bin/env python3
"""Run a scheduled job only on the pod that raft-elector names as leader.

The check of the old leader-elector sidecar, unchanged: GET http://localhost:4040/ answers
{"name": "<leader pod>"}; this pod leads when that name is its own (HOSTNAME is the pod name
in Kubernetes). Standard library only.

    python3 leader_only.py            # every 30 s: run the job here if this pod leads
    python3 leader_only.py --check    # exit 0 if this pod leads, 1 otherwise

RAFT_ELECTOR_URL overrides the sidecar's address (default http://localhost:4040).
"""

import json
import os
import socket
import sys
import time
import urllib.request

ELECTOR = os.environ.get("RAFT_ELECTOR_URL", "http://localhost:4040")
ME = os.environ.get("HOSTNAME") or socket.gethostname()

# No proxy for the sidecar on localhost, whatever http_proxy says.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def leader():
    """The leader's name, or "" when none is known or the sidecar does not answer."""
    try:
        with _opener.open(ELECTOR + "/", timeout=2) as resp:
            return json.load(resp).get("name", "")
    except (OSError, ValueError):
        return ""


def is_leader():
    # No answer means "not me": never assume leadership.
    return bool(ME) and leader() == ME


def job():
    print(f"{time.strftime('%FT%TZ', time.gmtime())} {ME} leads: running the job", flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if is_leader() else 1)
    while True:
        # Ask right before each run: leadership can move between two runs.
        if is_leader():
            job()
        time.sleep(30)
