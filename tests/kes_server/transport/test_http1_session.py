"""HTTP/1.1 sessions on an in-process ``HTTPServer`` whose handler the test controls.

The end-to-end tests (tests/security/test_http1_connection.py) drive the
real kes-server, whose handlers answer in microseconds. Some connection
states need a handler that takes its time: here the transport serves a tiny
application of the test's own over real TLS on a real socket, and the test
decides when each answer goes out.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kes_server.core.certs import new_identity
from kes_server.tls import client_ssl_context, server_context
from kes_server.transport.exchange import Exchange
from kes_server.transport.server import HTTPServer, Limits

LIMITS = Limits()


@dataclass
class App:
    """``/slow`` answers when ``release`` is set; ``/refuse`` answers 403 without reading."""

    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, exchange: Exchange) -> None:
        if exchange.path == "/slow":
            await self.release.wait()
        status = 403 if exchange.path == "/refuse" else 200
        exchange.respond(status, [], exchange.path.encode())


@dataclass
class Served:
    app: App
    server: HTTPServer
    port: int
    client_ctx: ssl.SSLContext

    async def until(self, condition: Callable[[], bool]) -> None:
        """Let the server run until ``condition`` holds about its connections."""
        async with asyncio.timeout(5):
            while not condition():
                await asyncio.sleep(0.005)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    for name, is_server in (("server", True), ("client", False)):
        key, cert = new_identity(name, server=is_server, key_type="ecdsa")
        (tmp_path / f"{name}.key").write_bytes(key)
        (tmp_path / f"{name}.cert").write_bytes(cert)
    ctx = server_context(
        cert=str(tmp_path / "server.cert"), key=str(tmp_path / "server.key"), auth=False
    )
    app = App()
    server = HTTPServer(app, ctx)
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    stop = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(server.serve(sock, stop))
    client = client_ssl_context(str(tmp_path / "client.cert"), str(tmp_path / "client.key"))
    client.set_alpn_protocols(["http/1.1"])
    try:
        yield Served(app, server, sock.getsockname()[1], client)
    finally:
        stop.set_result(None)
        await task
        sock.close()


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(head, body) of one answer with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head, await reader.readexactly(length)


async def test_a_body_buffered_while_queued_is_drained_after_an_early_answer(
    served: Served,
) -> None:
    """A pipelined request waits behind a slow one while its body arrives.

    The transport stops reading once it holds more body than any route takes
    (the pre-buffer); the rest of the body waits in the kernel. When the
    request is then refused without reading its body, a rest within the drain
    limit must still be read and dropped, as the answer (no ``Connection:
    close``) promised: the connection serves the next request.
    """
    first = 1024 * 1024 + 128 * 1024  # past the pre-buffer: reading pauses
    rest = LIMITS.drain_limit // 2
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", served.port, ssl=served.client_ctx, server_hostname="localhost"
    )
    try:
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        writer.write(
            b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (first + rest)
        )
        writer.write(b"a" * first)

        def holds_the_first_part() -> bool:
            sessions = [conn.session for conn in served.server.connections]
            queued = [getattr(s, "parsing", None) for s in sessions]
            return any(q is not None and q.remaining() == rest for q in queued)

        await served.until(holds_the_first_part)
        writer.write(b"a" * rest)  # stays in the kernel while reading is paused
        await writer.drain()
        served.app.release.set()
        assert (await _answer(reader))[1] == b"/slow"
        head, body = await _answer(reader)
        assert head.startswith(b"HTTP/1.1 403 ") and body == b"/refuse"
        assert b"connection: close" not in head.lower()
        writer.write(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(LIMITS.drain_idle_s * 2):
            assert (await _answer(reader))[1] == b"/next"
    finally:
        writer.close()
