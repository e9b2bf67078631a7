"""The route table: every API path with its handler, method, body limit and timeout.

The one place that says what the server serves: the dispatcher routes with
it, handlers read their body limit from it, and ``GET /v1/api`` lists it.
Values are KES v0.17's (spec §2.1); the newer aliases (v0.18+) carry the
limits of the v0.17 route they stand for, and name it in ``v017`` so a policy
written for v0.17 holds on them too.
"""

from __future__ import annotations

from kes_server.api import identity, key, log, policy, status
from kes_server.api.router import Route, Router

__all__ = ["KIB", "MIB", "ROUTER", "ROUTES"]

KIB = 1024
MIB = 1024 * KIB

ROUTES: tuple[Route, ...] = (
    Route("GET", "/version", status.version, 0, 10, public=True),
    Route("GET", "/v1/status", status.status, 0, 10),
    Route("GET", "/v1/metrics", status.metrics, 0, 10),  # never audited (dispatch.py)
    Route("GET", "/v1/api", status.api, 0, 10),
    Route("POST", "/v1/key/create/*", key.create, 0, 15, empty_arg=True),
    Route("POST", "/v1/key/import/*", key.import_key, 1 * MIB, 15, empty_arg=True),
    Route("DELETE", "/v1/key/delete/*", key.delete, 0, 15, empty_arg=True),
    Route("POST", "/v1/key/generate/*", key.generate, 1 * MIB, 15, empty_arg=True),
    Route("POST", "/v1/key/encrypt/*", key.encrypt, 512 * KIB, 15, empty_arg=True),
    Route("POST", "/v1/key/decrypt/*", key.decrypt, 1 * MIB, 15, empty_arg=True),
    Route(
        "POST",
        "/v1/key/bulk/decrypt/*",
        key.bulk_decrypt,
        1 * MIB,
        15,
        empty_arg=True,
        v017="/v1/key/decrypt/{0}",
    ),
    Route("GET", "/v1/key/list/*", key.list_keys, 0, 15, empty_arg=True),
    Route("POST", "/v1/policy/write/*", policy.write, 1 * MIB, 10, empty_arg=True),
    Route("GET", "/v1/policy/read/*", policy.read, 0, 10, empty_arg=True),
    Route("GET", "/v1/policy/show/*", policy.read, 0, 10, v017="/v1/policy/read/{0}"),
    Route("GET", "/v1/policy/describe/*", policy.describe, 0, 10, v017="/v1/policy/read/{0}"),
    Route("GET", "/v1/policy/list/*", policy.list_policies, 0, 10, empty_arg=True),
    Route("DELETE", "/v1/policy/delete/*", policy.delete, 0, 10, empty_arg=True),
    # Its v0.17 path names the identity from the body: checked by the handler.
    Route("POST", "/v1/policy/assign/*", policy.assign, 1 * KIB, 10),
    Route("POST", "/v1/identity/assign/*/*", identity.assign, 1 * MIB, 10, empty_arg=True),
    Route("GET", "/v1/identity/list/*", identity.list_identities, 0, 10, empty_arg=True),
    Route("GET", "/v1/identity/self/describe", identity.self_describe, 0, 10),
    Route(
        "GET",
        "/v1/identity/describe/*",
        identity.describe,
        0,
        10,
        v017="/v1/identity/list/{0}",
    ),
    Route("DELETE", "/v1/identity/forget/*", identity.forget, 0, 10, empty_arg=True),
    Route(
        "DELETE",
        "/v1/identity/delete/*",
        identity.forget,
        0,
        10,
        v017="/v1/identity/forget/{0}",
    ),
    Route("GET", "/v1/log/audit/trace", log.trace_audit, 0, None),
    Route("GET", "/v1/log/error/trace", log.trace_error, 0, None),
    Route("GET", "/v1/log/audit", log.trace_audit, 0, None, v017="/v1/log/audit/trace"),
    Route("GET", "/v1/log/error", log.trace_error, 0, None, v017="/v1/log/error/trace"),
)

ROUTER = Router(ROUTES)
