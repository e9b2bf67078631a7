"""The route table: every API path with its method, body limit and timeout.

One table feeds the request timeouts (gateway), the body limits (handlers)
and ``GET /v1/api``, so the three can never disagree. Values are KES v0.17's
(spec §2.1); the newer aliases (v0.18+) carry the same limits.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ROUTES", "Route", "route_for"]

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Route:
    method: str
    #: Path prefix; the route's arguments follow it ("" for exact paths).
    prefix: str
    #: Go-style pattern shown by /v1/api.
    pattern: str
    max_body: int
    timeout_s: float | None


def _r(method: str, pattern: str, max_body: int, timeout_s: float | None) -> Route:
    prefix = pattern.split("*", 1)[0] if "*" in pattern else pattern
    return Route(method, prefix, pattern, max_body, timeout_s)


ROUTES: tuple[Route, ...] = (
    _r("GET", "/version", 0, 10),
    _r("GET", "/v1/status", 0, 10),
    _r("GET", "/v1/metrics", 0, 10),
    _r("GET", "/v1/api", 0, 10),
    _r("POST", "/v1/key/create/*", 0, 15),
    _r("POST", "/v1/key/import/*", 1 * MIB, 15),
    _r("DELETE", "/v1/key/delete/*", 0, 15),
    _r("POST", "/v1/key/generate/*", 1 * MIB, 15),
    _r("POST", "/v1/key/encrypt/*", 512 * KIB, 15),
    _r("POST", "/v1/key/decrypt/*", 1 * MIB, 15),
    _r("POST", "/v1/key/bulk/decrypt/*", 1 * MIB, 15),
    _r("GET", "/v1/key/list/*", 0, 15),
    _r("POST", "/v1/policy/write/*", 1 * MIB, 10),
    _r("GET", "/v1/policy/read/*", 0, 10),
    _r("GET", "/v1/policy/show/*", 0, 10),
    _r("GET", "/v1/policy/describe/*", 0, 10),
    _r("GET", "/v1/policy/list/*", 0, 10),
    _r("DELETE", "/v1/policy/delete/*", 0, 10),
    _r("POST", "/v1/policy/assign/*", 1 * KIB, 10),
    _r("POST", "/v1/identity/assign/*/*", 1 * MIB, 10),
    _r("GET", "/v1/identity/list/*", 0, 10),
    _r("GET", "/v1/identity/self/describe", 0, 10),
    _r("GET", "/v1/identity/describe/*", 0, 10),
    _r("DELETE", "/v1/identity/forget/*", 0, 10),
    _r("DELETE", "/v1/identity/delete/*", 0, 10),
    _r("GET", "/v1/log/audit/trace", 0, None),
    _r("GET", "/v1/log/error/trace", 0, None),
    _r("GET", "/v1/log/audit", 0, None),
    _r("GET", "/v1/log/error", 0, None),
)

_EXACT = {r.prefix: r for r in ROUTES if "*" not in r.pattern}
_PREFIXED = sorted((r for r in ROUTES if "*" in r.pattern), key=lambda r: -len(r.prefix))


def route_for(path: str) -> Route | None:
    """The route a path belongs to (by prefix, as Go's ServeMux), or None."""
    exact = _EXACT.get(path)
    if exact is not None:
        return exact
    for route in _PREFIXED:
        if path.startswith(route.prefix):
            return route
    return None
