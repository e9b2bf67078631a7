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
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, cast

import hypercorn.asyncio.run as hc_run
from hypercorn.asyncio import serve as hc_serve
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.config import Config as HypercornConfig, Sockets
from hypercorn.typing import AppWrapper
from hypercorn.utils import wrap_app

__all__ = [
    "KesHypercornConfig",
    "PeerCertTCPServer",
    "check_hooks",
    "serve",
    "set_handshake_logger",
]

#: Key of our entry in ``scope["extensions"]``.
TLS_EXTENSION = "tls"


class KesHypercornConfig(HypercornConfig):
    """hypercorn settings for kes-server; TLS comes from a ready ``SSLContext``."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        super().__init__()
        self._kes_ssl_context = ssl_context

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


class PeerCertTCPServer(TCPServer):
    """hypercorn's per-connection server, plus the peer certificate in the scope."""

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
    sock: socket.socket | None = None,
) -> None:
    """Serve ``app`` until ``shutdown_trigger`` returns, then drain for a grace period."""
    check_hooks()
    config = KesHypercornConfig(ssl_context)
    config.bind = binds
    config.keep_alive_timeout = keep_alive_s
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
