"""One live trace subscription as a stream of byte chunks.

Subscriber and drop metrics and the sibling-worker sync live here, so a
trace stream is the same whatever transport carries it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from kes_server.api.state import ServerState
from kes_server.logbus import LogBus, Subscription

__all__ = ["trace_chunks"]


async def trace_chunks(
    state: ServerState, bus: LogBus, sub: Subscription, done: Callable[[], None]
) -> AsyncGenerator[bytes, None]:
    """Yield b"" once (send the headers now), then joined event batches until closed."""
    state.metrics.trace_subscribers.inc()
    dropped = 0
    try:
        if bus.synced is not None:
            await bus.synced()
        yield b""
        while not sub.closed:
            batch = await sub.next_batch()
            if sub.dropped > dropped:
                state.metrics.trace_dropped.inc(sub.dropped - dropped)
                dropped = sub.dropped
            if batch:
                yield b"".join(batch)
    finally:
        done()
        bus.unsubscribe(sub)
        state.metrics.trace_subscribers.dec()
