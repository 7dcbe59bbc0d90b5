#!/usr/bin/env python3
"""Run a scheduled job only on the pod that raft-elector names as leader.

The check of the old leader-elector sidecar, unchanged: GET http://localhost:4040/ answers
{"name": "<leader pod>"}; this pod leads when that name is its own (HOSTNAME is the pod name
in Kubernetes). Standard library only.

    python3 leader_only.py            # every 30 s: run the job here if this pod leads
    python3 leader_only.py --check    # exit 0 if this pod leads, 1 otherwise
    python3 leader_only.py --watch    # push: a line at once and on every change of leader
    python3 leader_only.py --claim JOB [SLOT]
                                      # exactly once per slot: claim SLOT (default: this
                                      # minute, RFC 3339 UTC) of JOB; run it if granted

--claim is the pattern that replaces the name check (raft-elector's job ledger): every replica's
scheduler fires, each asks POST /v1/jobs/JOB/claims {"slot": SLOT}, and only the one that gets
201 (or 200: its own grant, asked again) runs the job, with the grant's token as fencing token;
409 means another pod holds the slot. Exit 0 ran, 1 held by another, 2 ask again later (no
quorum, 503), 3 refused (a bad key, a forgotten slot).

--watch uses the blocking query of raft-elector's own API, GET /v1/leader?wait=60s&term=N&name=X:
the sidecar answers as soon as the leader or term differs from what the caller last saw (or
after 60 s, unchanged), so a change is known within milliseconds without polling.

RAFT_ELECTOR_URL overrides the sidecar's address (default http://localhost:4040).
"""

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
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


def watch():
    """Print "<leader> <term> <me|other|none>" at once and on every change, until killed."""
    name, term = None, 0
    while True:
        query = "?wait=60s" if name is None else f"?wait=60s&term={term}&name={name}"
        try:
            resp = _opener.open(ELECTOR + "/v1/leader" + query, timeout=75)
        except urllib.error.HTTPError as e:
            resp = e  # 503 carries the same JSON, with "name": "" (no leader known)
        except OSError:
            time.sleep(1)  # the sidecar is restarting: ask again shortly
            continue
        try:
            with resp:
                now = json.load(resp)
        except (OSError, ValueError):
            time.sleep(1)
            continue
        if (now.get("name", ""), now.get("term", 0)) != (name, term):
            name, term = now.get("name", ""), now.get("term", 0)
            who = "none" if not name else ("me" if name == ME else "other")
            print(f"{name or '-'} {term} {who}", flush=True)


def claim(job_name, slot):
    """Claims `slot` of `job_name`: (status, grant or error as a dict)."""
    req = urllib.request.Request(
        f"{ELECTOR}/v1/jobs/{urllib.parse.quote(job_name, safe='')}/claims",
        data=json.dumps({"slot": slot}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with _opener.open(req, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.load(e)


def claim_and_run(job_name, slot):
    status, body = claim(job_name, slot)
    if status in (200, 201):
        print(f"{ME} holds {job_name} {slot} (token {body['token']}): running the job", flush=True)
        return 0
    if status == 409:
        print(f"{ME}: {job_name} {slot} is held by {body['holder']} (token {body['token']})", flush=True)
        return 1
    print(f"{ME}: {job_name} {slot}: {status} {body.get('error', '')}", flush=True)
    return 2 if status == 503 else 3


def job():
    print(f"{time.strftime('%FT%TZ', time.gmtime())} {ME} leads: running the job", flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if is_leader() else 1)
    if sys.argv[1:2] == ["--claim"] and len(sys.argv) in (3, 4):
        slot = sys.argv[3] if len(sys.argv) == 4 else time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime())
        sys.exit(claim_and_run(sys.argv[2], slot))
    if sys.argv[1:] == ["--watch"]:
        try:
            watch()
        except KeyboardInterrupt:
            sys.exit(0)
    while True:
        # Ask right before each run: leadership can move between two runs.
        if is_leader():
            job()
        time.sleep(30)
