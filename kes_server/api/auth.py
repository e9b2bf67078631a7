"""Authorisation, run before every handler in KES's order (spec §1.4).

Unknown path (404) and wrong method (405) are answered first, then problems
found while identifying the caller (bad proxy header), then the policy check.
Only ``/version`` is open to every client with a certificate.
"""

from __future__ import annotations

from quart import request
from werkzeug.exceptions import NotFound
from werkzeug.routing import RequestRedirect

from kes_server.api.state import request_context, server_state

__all__ = ["authorize_request"]

_OPEN_PATHS = frozenset({"/version"})


async def authorize_request() -> None:
    exc = request.routing_exception
    if exc is not None:
        # werkzeug would redirect "/v1/key/list" to "/v1/key/list/"; Go's mux does not.
        raise NotFound() if isinstance(exc, RequestRedirect) else exc
    ctx = request_context(request.scope)
    if ctx.error is not None:
        raise ctx.error
    if request.path in _OPEN_PATHS:
        return
    server_state().access.authorize(ctx.identity, request.path)
