#!/usr/bin/env python3
"""The application side of raft-elector's schedule mode: an HTTP endpoint the leader calls.

Run raft-elector with
    --job mail="0 */5 * * * *" --job-url mail=http://127.0.0.1:8080/jobs/mail
and this next to it (python3 job_endpoint.py 8080). On every slot, the peer that leads claims
the slot in its job ledger and POSTs here, on its own pod only, with the headers
Raft-Elector-Job, Raft-Elector-Slot (the scheduled time, RFC 3339 UTC) and Raft-Elector-Token
(the fencing token: pass it to whatever the job writes, and refuse older ones there). Answer
2xx when the job succeeded, anything else when it failed; raft-elector records the outcome
(GET /v1/jobs/mail on the sidecar shows it). Standard library only.
"""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def run_job(job, slot, token):
    # ... the work that must run once per slot ...
    print(f"ran {job} {slot} token {token}", flush=True)
    return True


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        job = self.headers.get("Raft-Elector-Job", "")
        slot = self.headers.get("Raft-Elector-Slot", "")
        token = self.headers.get("Raft-Elector-Token", "")
        if not (self.path.startswith("/jobs/") and job and slot and token):
            self.send_response(400)
            self.end_headers()
            return
        ok = run_job(job, slot, token)
        self.send_response(204 if ok else 500)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
