"""schemathesis hooks for tests/it/openapi.rs.

A generated `term` equal to the cluster's current term makes `GET /v1/leader` a blocking query
that waits until the leadership changes, up to `wait` (default 5 min): each such request is
given a short `wait` (still one the API parses), so that the run tests the answer, not the wait.
Every other parameter is left as generated.
"""

import schemathesis


@schemathesis.hook
def map_query(context, query):
    if query is not None and "term" in query:
        query["wait"] = "200ms"
    return query
