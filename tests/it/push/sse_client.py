"""Reads a Server-Sent Events stream with sseclient-py (a real SSE client library) and prints
each event as one JSON line {"id", "data"} on stdout, flushed, until killed.

    sse_client.py URL [LAST_EVENT_ID]
"""
import json
import sys
import urllib.request

import sseclient


def main():
    url = sys.argv[1]
    headers = {"Accept": "text/event-stream"}
    if len(sys.argv) > 2:
        headers["Last-Event-ID"] = sys.argv[2]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    resp = opener.open(urllib.request.Request(url, headers=headers), timeout=60)
    print(json.dumps({"status": resp.status}), flush=True)
    for event in sseclient.SSEClient(resp).events():
        print(json.dumps({"id": event.id, "data": event.data}), flush=True)


if __name__ == "__main__":
    main()
