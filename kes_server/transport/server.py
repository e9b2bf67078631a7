"""The accept loop: TLS connections on a listening socket, and a graceful stop.

``HTTPServer.serve`` owns the listening socket's life: it accepts until the
stop signal, then stops accepting, asks every connection to finish (HTTP/1.1
closes after the answer under way, HTTP/2 sends GOAWAY), waits up to
``graceful_s`` and drops what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kes_server.transport.exchange import Handler
from kes_server.transport.tlsconn import TLSConnection

__all__ = ["HTTPServer", "Limits"]


@dataclass(frozen=True)
class Limits:
    """Every bound the transport applies to a client (KES's values where it has them)."""

    #: A TLS handshake must be over this long after the connection was accepted.
    handshake_timeout_s: float = 10.0
    #: A request head must be complete this long after its first byte (Go's ReadHeaderTimeout).
    header_timeout_s: float = 5.0
    #: Connections with nothing in progress are closed after this long.
    idle_timeout_s: float = 75.0
    #: How long a closing connection may take to flush what is queued.
    close_grace_s: float = 1.0
    #: Request line plus headers (HTTP/1.1), header list (HTTP/2).
    max_head_bytes: int = 16 * 1024
    #: HTTP/1.1 requests queued (pipelined) on a connection before reading pauses.
    max_pipelined: int = 16
    #: After an early answer, up to this many body bytes are read and dropped to keep
    #: the connection; a larger (or unknown) remainder closes it instead.
    drain_limit: int = 256 * 1024
    #: ... and the remainder must arrive within 5 x this.
    drain_idle_s: float = 1.0
    #: Streams a client may have open at once on one HTTP/2 connection.
    h2_max_streams: int = 128
    #: PING/SETTINGS frames (and, separately, stream resets) per 10 s per connection.
    h2_control_frame_limit: int = 1000
    #: On a graceful stop, how long connections may take to finish.
    graceful_s: float = 3.0


class HTTPServer:
    """Serves ``handler`` over TLS (HTTP/1.1 and HTTP/2 by ALPN) on one socket."""

    def __init__(
        self,
        handler: Handler,
        ssl_context: ssl.SSLContext,
        limits: Limits | None = None,
        *,
        on_tls_error: Callable[[str, str], None] | None = None,
    ) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.limits = limits or Limits()
        self.connections: set[TLSConnection] = set()
        self._on_tls_error = on_tls_error

    def report_tls_error(self, peer: str, reason: str) -> None:
        if self._on_tls_error is not None:
            with contextlib.suppress(Exception):  # reporting must never break the loop
                self._on_tls_error(peer, reason)

    async def serve(self, sock: socket.socket, stop: Awaitable[None]) -> None:
        """Accept on ``sock`` until ``stop`` completes, then stop gracefully."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: TLSConnection(self), sock=sock, backlog=1024)
        try:
            await stop
        finally:
            server.close()
            await self.drain()

    async def drain(self) -> None:
        """Ask every connection to finish; drop the ones still open after ``graceful_s``."""
        for conn in list(self.connections):
            conn.shutdown()
        deadline = asyncio.get_running_loop().time() + self.limits.graceful_s
        while self.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.abort()
        await asyncio.sleep(0)
