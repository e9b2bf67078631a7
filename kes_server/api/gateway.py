"""ASGI middleware in front of the Quart app: identity, timeouts, audit and metrics.

It sits outside the framework on purpose: every request, including unknown
paths, wrong methods and requests refused before reaching a handler, must
produce exactly one audit event and one metrics observation, taken when the
status line is written (as KES does). Doing it at the ASGI ``send`` level is
also the cheapest place, and the seam where a framework-free fast path for the
key endpoints can later plug in.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kes_server.api.fastpath import TRACE_PATHS, FastPath, stream_trace
from kes_server.api.identify import Identifier
from kes_server.api.routes import route_for
from kes_server.api.state import RequestContext, ServerState
from kes_server.core.errors import APIError, InternalError, ServerTimeout
from kes_server.logbus import clip_path, format_time_ns

__all__ = ["Gateway"]

ASGIApp = Callable[..., Awaitable[None]]
_UNMETERED = "/v1/metrics"


def error_messages(exc: APIError) -> list[dict[str, Any]]:
    """The ASGI messages of a KES JSON error response."""
    body = json.dumps({"message": exc.message}, separators=(",", ":")).encode()
    return [
        {
            "type": "http.response.start",
            "status": exc.status,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"x-content-type-options", b"nosniff"),
                (b"content-length", str(len(body)).encode()),
            ],
        },
        {"type": "http.response.body", "body": body},
    ]


class Gateway:
    """Wraps the app; see the module docstring."""

    def __init__(
        self, app: ASGIApp, state: ServerState, identifier: Identifier, *, fast: bool = True
    ) -> None:
        self.app = app
        self.state = state
        self.identifier = identifier
        self.fast = FastPath(state) if fast else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state
        metrics = state.metrics
        start = time.perf_counter_ns()
        wall = time.time_ns()
        path: str = scope["path"]
        metered = path != _UNMETERED
        ctx = RequestContext()
        scope["kes"] = ctx
        try:
            ctx.identity, ctx.ip = self.identifier.identify(scope)
        except APIError as exc:
            ctx.error = exc
            client = scope.get("client")
            ctx.ip = str(client[0]) if client else ""
        started = False

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                if metered:
                    status = int(message["status"])
                    elapsed = time.perf_counter_ns() - start
                    metrics.observe(status, elapsed / 1e9)
                    audit = state.audit
                    if not audit.listening:
                        audit.count()  # nobody reads it: count it, skip building it
                        await send(message)
                        return
                    audit.publish(
                        {
                            "time": format_time_ns(wall),
                            "request": {
                                "ip": ctx.ip,
                                "method": scope["method"],
                                "path": clip_path(path),
                                "identity": ctx.identity,
                            },
                            "response": {"code": status, "time": elapsed},
                        }
                    )
            await send(message)

        if metered:
            metrics.request_active.inc()
        try:
            route = route_for(path)
            timeout = route.timeout_s if route is not None else 10.0
            op = self.fast.match(scope["method"], path) if self.fast is not None else None
            handler: Awaitable[None]
            if self.fast is not None and scope["method"] == "GET" and path in TRACE_PATHS:
                handler = self._guarded(
                    stream_trace(state, ctx, path, receive, send_wrapper), send_wrapper
                )
            elif op is not None and self.fast is not None:
                handler = self._fast(
                    self.fast, ctx, path, op, receive, send_wrapper, scope.get("headers", ())
                )
            else:
                handler = self.app(scope, receive, send_wrapper)
            if timeout is None:
                await handler
            else:
                try:
                    # asyncio.timeout, not wait_for: no extra Task per request.
                    async with asyncio.timeout(timeout):
                        await handler
                except TimeoutError:
                    if not started:
                        for message in error_messages(ServerTimeout()):
                            await send_wrapper(message)
        finally:
            if metered:
                metrics.request_active.dec()

    async def _guarded(self, call: Awaitable[None], send: Any) -> None:
        """Render KES errors of a framework-free handler (before anything was sent)."""
        try:
            await call
        except APIError as exc:
            for message in error_messages(exc):
                await send(message)

    async def _fast(
        self,
        fast: FastPath,
        ctx: RequestContext,
        path: str,
        op: tuple[str, Any, int],
        receive: Any,
        send: Any,
        headers: Any = (),
    ) -> None:
        try:
            await fast.handle(ctx, path, op, receive, send, headers)
        except APIError as exc:
            for message in error_messages(exc):
                await send(message)
        except Exception as exc:  # noqa: BLE001 - same contract as the Quart error handler
            self.state.log_error(
                f"http: internal error on POST {path}: {type(exc).__name__}: {exc}"
            )
            for message in error_messages(InternalError()):
                await send(message)
