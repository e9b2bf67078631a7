"""A framework-free path for the three hot endpoints: generate, encrypt, decrypt.

These calls sit on the write/read path of every object MinIO handles, and
measurements (docs/performance.md) show the framework, not crypto or TLS,
dominates their cost. So the gateway serves them directly at the ASGI level,
with exactly the same checks in the same order as the Quart route and the
same reply builders (``wire.py``):

  identity errors -> policy -> name -> body limit -> JSON -> key lookup -> crypto

The live trace streams are served here too: each event batch goes straight
to the connection, instead of through Quart's response iterator, which with
several subscribers cost more than the requests being traced.

Everything else (and these paths with a wrong method) goes through Quart.
Set ``KES_NO_FAST_PATH=1`` to route them through Quart too (used by tests and
benchmarks to compare both paths).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from kes_server.api.routes import KIB, MIB
from kes_server.api.state import RequestContext, ServerState
from kes_server.api.tracing import trace_chunks
from kes_server.api.wire import decrypt_reply, encrypt_reply, generate_reply, parse_json
from kes_server.core.errors import PayloadTooLarge
from kes_server.core.names import validate_name

__all__ = ["FastPath", "enabled"]

Reply = Callable[[bytes, Any], bytes]
_OPS: tuple[tuple[str, Reply, int], ...] = (
    ("/v1/key/generate/", generate_reply, 1 * MIB),
    ("/v1/key/decrypt/", decrypt_reply, 1 * MIB),
    ("/v1/key/encrypt/", encrypt_reply, 512 * KIB),
)
_HEADERS = [(b"content-type", b"application/json")]
#: Oversized bodies up to this size are read (and dropped) before the 413.
DRAIN_LIMIT = 4 * MIB
#: ... unless the client stops sending for this long.
DRAIN_IDLE_S = 1.0


def enabled() -> bool:
    return os.environ.get("KES_NO_FAST_PATH", "") in ("", "0")


class FastPath:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    @staticmethod
    def match(method: str, path: str) -> tuple[str, Reply, int] | None:
        if method != "POST":
            return None
        for prefix, reply, limit in _OPS:
            if path.startswith(prefix):
                return path[len(prefix) :], reply, limit
        return None

    async def handle(
        self,
        ctx: RequestContext,
        path: str,
        op: tuple[str, Reply, int],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Serve one request; raises APIError for the gateway to render."""
        name, reply, limit = op
        if ctx.error is not None:
            raise ctx.error
        self.state.access.authorize(ctx.identity, path)
        validate_name(name, "key")
        declared = _declared_length(headers)
        if declared > limit:
            # Too large: refuse without keeping the body. A client that really
            # sends it gets its body drained first (within bounds), so it can
            # read the 413 instead of a connection reset.
            if declared <= DRAIN_LIMIT:
                await _drain(receive, DRAIN_LIMIT)
            raise PayloadTooLarge()
        body = await _read_body(receive, limit)
        document = parse_json(body)
        key = await self.state.keys.get(name)
        payload = reply(key, document)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_HEADERS, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The request's Content-Length, or -1 (absent, chunked or unparseable)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return -1


async def _read_body(receive: Callable[[], Awaitable[dict[str, Any]]], limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            if message.get("more_body", False):
                await _drain(receive, DRAIN_LIMIT - size)
            raise PayloadTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _drain(receive: Callable[[], Awaitable[dict[str, Any]]], budget: int) -> None:
    """Read and discard the rest of a body: at most ``budget`` bytes, idle <= 1 s."""
    while budget > 0:
        try:
            message = await asyncio.wait_for(receive(), DRAIN_IDLE_S)
        except TimeoutError:
            return
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return
        budget -= len(message.get("body", b""))


#: Trace paths (v0.17 and the v0.18+ aliases) and which bus each streams.
TRACE_PATHS = {
    "/v1/log/audit/trace": "audit",
    "/v1/log/audit": "audit",
    "/v1/log/error/trace": "error",
    "/v1/log/error": "error",
}
_NDJSON = [(b"content-type", b"application/x-ndjson")]
#: How often an idle stream checks whether its client went away.
_IDLE_CHECK_S = 1.0


async def stream_trace(
    state: ServerState,
    ctx: RequestContext,
    path: str,
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """Stream one trace until the client leaves or the server shuts down."""
    if ctx.error is not None:
        raise ctx.error
    state.access.authorize(ctx.identity, path)
    bus = state.audit if TRACE_PATHS[path] == "audit" else state.errors
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.create_task(watch())
    chunks = trace_chunks(state, bus, idle_s=_IDLE_CHECK_S)
    try:
        started = False
        async for chunk in chunks:
            if gone.is_set():
                break
            if not started:
                await send({"type": "http.response.start", "status": 200, "headers": _NDJSON})
                started = True
            elif not chunk:
                continue  # an idle wake-up: only checks whether the client left
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        else:
            if not gone.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        watcher.cancel()
        await chunks.aclose()
