"""One live trace subscription as a stream of byte chunks.

Both ways a trace can be served (the gateway's framework-free stream in
``fastpath.py`` and the Quart route in ``log.py``, used with
``KES_NO_FAST_PATH=1``) iterate this generator, so subscribing, the
subscriber and drop metrics and the sibling-worker sync live in one place.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from kes_server.api.state import ServerState
from kes_server.logbus import LogBus

__all__ = ["trace_chunks"]


async def trace_chunks(
    state: ServerState, bus: LogBus, *, idle_s: float | None = None
) -> AsyncGenerator[bytes, None]:
    """Yield b"" once (send the headers now), then joined event batches.

    With ``idle_s`` an idle stream also yields b"" every ``idle_s`` seconds, so
    the caller gets a chance to notice a client that went away.
    """
    sub = bus.subscribe()
    state.metrics.trace_subscribers.inc()
    dropped = 0
    try:
        if bus.synced is not None:
            await bus.synced()
        yield b""
        while not sub.closed:
            batch = await sub.next_batch(timeout=idle_s)
            if sub.dropped > dropped:
                state.metrics.trace_dropped.inc(sub.dropped - dropped)
                dropped = sub.dropped
            if batch or idle_s is not None:
                yield b"".join(batch)
    finally:
        bus.unsubscribe(sub)
        state.metrics.trace_subscribers.dec()
