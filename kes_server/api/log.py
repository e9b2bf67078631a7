"""Live audit and error trace streams (NDJSON, one event per line, sent at once).

Each subscriber gets its own bounded queue (see ``kes_server.logbus``). A
stream has no timeout and ends when the client goes away, when the server
shuts down, or as soon as the caller may no longer read it (its identity was
forgotten or its policy changed): revocation reaches open streams too.
"""

from __future__ import annotations

from kes_server.api.call import NDJSON, Call, Reply
from kes_server.api.tracing import trace_chunks

__all__ = ["trace_audit", "trace_error"]


async def trace_audit(call: Call) -> Reply:
    return _trace(call, "audit")


async def trace_error(call: Call) -> Reply:
    return _trace(call, "error")


def _trace(call: Call, kind: str) -> Reply:
    state = call.state
    bus = state.audit if kind == "audit" else state.errors
    sub = bus.subscribe()
    call.exchange.on_close(sub.close)
    path = call.exchange.path
    route = call.route
    identity = call.identity

    def recheck() -> None:
        """After any policy or identity change: end the stream if it is no longer allowed."""
        if not state.access.allows(identity, path, route.v017_path(call.args)):
            sub.close()

    state.access.on_change(recheck)
    return Reply(
        stream=trace_chunks(state, bus, sub, lambda: state.access.off_change(recheck)),
        content_type=NDJSON,
    )
