"""Running the ASGI app on hypercorn with our TLS context and the peer certificate.

hypercorn builds its own ``SSLContext`` from file names and does not show the
client certificate to the application (there is no ASGI TLS extension in
it). Two small hooks fix both, and nothing else of hypercorn is touched:

* ``KesHypercornConfig.create_ssl_context`` returns the context built by
  ``kes_server.tls`` (mTLS, ``--auth on|off``);
* ``PeerCertTCPServer`` reads the peer certificate once per connection, right
  after the handshake, and puts it into ``scope["extensions"]["tls"]`` of
  every request on that connection (HTTP/1.1 and HTTP/2 alike). It replaces
  the ``TCPServer`` name inside ``hypercorn.asyncio.run``, which is where
  hypercorn's worker looks it up for each accepted connection;
  ``check_hooks()`` verifies at start-up that this is still so.

Slow clients. hypercorn bounds an idle connection (``keep_alive_timeout``)
but has no equivalent of Go's ``ReadHeaderTimeout``: its idle timer is the
only limit on a request head that trickles in byte by byte (slowloris), and
``read_timeout`` cannot be used instead because it would also cut idle trace
streams. So ``PeerCertTCPServer`` also gives an HTTP/1.1 request head at most
``header_timeout_s`` from its first byte (KES uses 5 s); a body that never
completes is cut by the route's timeout in the gateway.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import hypercorn.asyncio.run as hc_run
from hypercorn.asyncio import serve as hc_serve
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.config import Config as HypercornConfig, Sockets
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.typing import AppWrapper
from hypercorn.utils import wrap_app

__all__ = [
    "KesHypercornConfig",
    "PeerCertTCPServer",
    "check_hooks",
    "serve",
    "set_handshake_logger",
]

#: Bytes queued for a connection beyond which writers wait for the socket.
_HIGH_WATER = 64 * 1024

#: Key of our entry in ``scope["extensions"]``.
TLS_EXTENSION = "tls"
#: Longest time a request head may take from its first byte (Go's ReadHeaderTimeout in KES).
HEADER_TIMEOUT_S = 5.0
#: How long a closing connection may wait for the peer's TLS close_notify.
TLS_CLOSE_GRACE_S = 1.0


class KesHypercornConfig(HypercornConfig):
    """hypercorn settings for kes-server; TLS comes from a ready ``SSLContext``."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        super().__init__()
        self._kes_ssl_context = ssl_context
        #: See ``_HeadTimedReader``; 0 disables the limit.
        self.header_timeout_s = HEADER_TIMEOUT_S

    @property
    def ssl_enabled(self) -> bool:
        return True

    def create_ssl_context(self) -> ssl.SSLContext | None:
        return self._kes_ssl_context


class _WithPeerCert:
    """Wraps hypercorn's app wrapper to add the connection's TLS facts to each scope."""

    __slots__ = ("_app", "_tls")

    def __init__(self, app: Any, tls: dict[str, Any]) -> None:
        self._app = app
        self._tls = tls

    async def __call__(
        self, scope: dict[str, Any], receive: Any, send: Any, sync_spawn: Any, call_soon: Any
    ) -> None:
        if scope.get("type") in ("http", "websocket"):
            scope.setdefault("extensions", {})[TLS_EXTENSION] = self._tls
        await self._app(scope, receive, send, sync_spawn, call_soon)


class _HeadTimedReader:
    """The connection's reader, bounding how long a started request head may take.

    hypercorn reports through ``Updated(idle=...)`` whether a request is in
    progress. While none is, the first bytes received start a deadline; if the
    head is not complete by then, ``read`` raises ``TimeoutError``, which
    hypercorn's read loop treats as the end of the connection. Once a request
    is under way reads wait without limit again (a trace stream may be silent
    for hours), and the route timeout bounds the body and the handler.
    """

    __slots__ = ("_deadline", "_idle", "_reader", "_timeout")

    def __init__(self, reader: asyncio.StreamReader, timeout: float) -> None:
        self._reader = reader
        self._timeout = timeout
        self._idle = True
        self._deadline: float | None = None

    def set_idle(self, idle: bool) -> None:
        self._idle = idle
        self._deadline = None

    def at_eof(self) -> bool:
        return self._reader.at_eof()

    async def read(self, n: int = -1) -> bytes:
        if self._deadline is None:
            data = await self._reader.read(n)
        else:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request head not complete in time")
            data = await asyncio.wait_for(self._reader.read(n), remaining)
        if data and self._idle and self._deadline is None:
            self._deadline = time.monotonic() + self._timeout
        return data


class PeerCertTCPServer(TCPServer):
    """hypercorn's per-connection server, plus the peer certificate in the scope.

    Also bounds slow HTTP/1.1 request heads (see ``_HeadTimedReader``) and
    keeps a peer's broken TLS shutdown from surfacing as an unhandled traceback.
    """

    def __init__(
        self,
        app: Any,
        loop: asyncio.AbstractEventLoop,
        config: HypercornConfig,
        context: Any,
        state: Any,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        tls: dict[str, Any] = {"client_cert_der": None, "tls_version": None}
        if ssl_object is not None:
            try:
                tls["client_cert_der"] = ssl_object.getpeercert(binary_form=True)
            except (ValueError, ssl.SSLError):
                tls["client_cert_der"] = None
            tls["tls_version"] = ssl_object.version()
        wrapped = cast("AppWrapper", _WithPeerCert(app, tls))
        super().__init__(wrapped, loop, config, context, state, reader, writer)
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._head_reader: _HeadTimedReader | None = None
        timeout = float(getattr(config, "header_timeout_s", 0.0) or 0.0)
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        # HTTP/2 multiplexes streams and sends frames while idle: only HTTP/1.1 has a "head".
        if timeout > 0 and alpn != "h2":
            self._head_reader = _HeadTimedReader(reader, timeout)
            self.reader = cast("asyncio.StreamReader", self._head_reader)

    async def protocol_send(self, event: Event) -> None:
        """Coalesce the writes of one loop iteration into one TLS record and send().

        hypercorn writes a response's head and body separately; as two TLS
        records and two system calls that was ~10% of a small request's cost
        (and each NDJSON line of a trace or list its own record). Data is
        queued and written once at the end of the current loop iteration;
        back-pressure still applies through ``drain`` when the buffer is high.
        """
        if isinstance(event, RawData):
            self._out.append(event.data)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self.loop.call_soon(self._flush)
            if self.writer.transport.get_write_buffer_size() > _HIGH_WATER:
                async with self.send_lock:
                    try:
                        self._flush()
                        await self.writer.drain()
                    except (ConnectionError, RuntimeError):
                        await self.protocol.handle(Closed())
            return
        if isinstance(event, Closed):
            self._flush()
        if self._head_reader is not None and isinstance(event, Updated):
            self._head_reader.set_idle(event.idle)
        await super().protocol_send(event)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out:
            return
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out.clear()
        if self.writer.transport.is_closing():
            return
        try:
            self.writer.write(data)
        except (ConnectionError, RuntimeError):
            self.loop.create_task(self.protocol.handle(Closed()))

    def _abort_later(self) -> asyncio.TimerHandle:
        """Drop the connection if its TLS shutdown is not over in TLS_CLOSE_GRACE_S.

        After sending close_notify asyncio waits up to 30 s for the peer's,
        which a client idling in a connection pool never sends: every such
        connection would outlive its keep-alive limit by 30 s, and hold up a
        SIGTERM shutdown well past its grace period.
        """
        return self.loop.call_later(TLS_CLOSE_GRACE_S, self.writer.transport.abort)

    async def _initiate_server_close(self) -> None:
        self._abort_later()
        await super()._initiate_server_close()

    async def _close(self) -> None:
        timer = self._abort_later()
        # A client that keeps sending after our close_notify (e.g. the rest of a
        # body we refused with 413) makes asyncio's wait_closed() raise
        # SSLError, which hypercorn does not catch: the connection is closed
        # either way, so this is not worth a traceback per request.
        try:
            await super()._close()
        except OSError:
            pass
        finally:
            timer.cancel()


_HandshakeLogger = Callable[[str, BaseException], None]
_handshake_logger: _HandshakeLogger | None = None


def _install_handshake_hook() -> None:
    """Report failed TLS handshakes, which asyncio only logs in debug mode.

    A refused client (no certificate, wrong CA, old TLS version) never reaches
    hypercorn, so without this an operator would see nothing at all.
    """
    from asyncio import sslproto

    proto = sslproto.SSLProtocol
    original = proto._on_handshake_complete
    if getattr(original, "_kes_hooked", False):
        return

    def _on_handshake_complete(self: Any, handshake_exc: BaseException | None) -> None:
        if handshake_exc is not None and _handshake_logger is not None:
            transport = getattr(self, "_transport", None)
            peer = transport.get_extra_info("peername") if transport is not None else None
            where = f"{peer[0]}:{peer[1]}" if peer else "unknown peer"
            try:
                _handshake_logger(where, handshake_exc)
            except Exception:  # noqa: BLE001 - logging must never break the loop
                pass
        original(self, handshake_exc)

    _on_handshake_complete._kes_hooked = True  # type: ignore[attr-defined]
    proto._on_handshake_complete = _on_handshake_complete  # type: ignore[method-assign]


def set_handshake_logger(logger: _HandshakeLogger | None) -> None:
    global _handshake_logger
    _handshake_logger = logger
    _install_handshake_hook()


def check_hooks() -> None:
    """Fail loudly at start-up if hypercorn's internals moved under our hooks."""
    from asyncio import sslproto

    if not hasattr(sslproto.SSLProtocol, "_on_handshake_complete"):
        raise RuntimeError("asyncio's SSLProtocol changed; cannot report TLS handshake errors")
    for name in ("_close", "_initiate_server_close", "protocol_send", "_read_data"):
        if not hasattr(TCPServer, name):
            raise RuntimeError(f"hypercorn's TCPServer has no {name}(); cannot install our hooks")
    if not hasattr(hc_run, "TCPServer") or not hasattr(hc_run, "worker_serve"):
        raise RuntimeError(
            "this hypercorn version does not look up TCPServer in hypercorn.asyncio.run; "
            "kes-server cannot read client certificates"
        )
    hc_run.TCPServer = PeerCertTCPServer


async def serve(
    app: Callable[..., Awaitable[None]],
    ssl_context: ssl.SSLContext,
    binds: list[str],
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    graceful_timeout_s: float = 3.0,
    keep_alive_s: float = 75.0,
    header_timeout_s: float = HEADER_TIMEOUT_S,
    sock: socket.socket | None = None,
) -> None:
    """Serve ``app`` until ``shutdown_trigger`` returns, then drain for a grace period.

    ``keep_alive_s`` bounds idle connections, ``header_timeout_s`` slow
    request heads (module docstring).
    """
    check_hooks()
    config = KesHypercornConfig(ssl_context)
    config.bind = binds
    config.keep_alive_timeout = keep_alive_s
    config.header_timeout_s = header_timeout_s
    # KES clients (MinIO) keep connections for a long time: do not recycle them.
    config.keep_alive_max_requests = 1_000_000
    config.graceful_timeout = graceful_timeout_s
    config.ssl_handshake_timeout = 10.0
    config.h11_max_incomplete_size = 16 * 1024
    config.read_timeout = None
    config.accesslog = None
    config.errorlog = None
    if sock is None:
        await hc_serve(app, config, shutdown_trigger=shutdown_trigger, mode="asgi")
        return
    # A socket bound by the parent of several workers (kes_server.workers).
    sockets = Sockets(secure_sockets=[sock], insecure_sockets=[], quic_sockets=[])
    await hc_run.worker_serve(
        wrap_app(app, config.wsgi_max_body_size, "asgi"),
        config,
        sockets=sockets,
        shutdown_trigger=shutdown_trigger,
    )
