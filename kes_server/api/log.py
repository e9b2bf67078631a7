"""Live audit and error trace streams (NDJSON, one event per line, flushed at once).

Each subscriber gets its own bounded queue (see ``kes_server.logbus``); the
response has no timeout (Quart's 60 s default would cut an idle stream) and
ends when the client goes away or the server shuts down.
"""

from __future__ import annotations

from quart import Blueprint, Response

from kes_server.api.state import server_state
from kes_server.api.tracing import trace_chunks
from kes_server.logbus import LogBus

__all__ = ["blueprint"]

blueprint = Blueprint("log", __name__)


def _stream(bus: LogBus) -> Response:
    response = Response(
        trace_chunks(server_state(), bus), status=200, content_type="application/x-ndjson"
    )
    response.timeout = None
    return response


@blueprint.get("/v1/log/audit/trace")
@blueprint.get("/v1/log/audit")
async def trace_audit() -> Response:
    return _stream(server_state().audit)


@blueprint.get("/v1/log/error/trace")
@blueprint.get("/v1/log/error")
async def trace_error() -> Response:
    return _stream(server_state().errors)
