"""TLS on a plain TCP transport, and the choice of HTTP protocol by ALPN.

The TLS layer is ours, on the ``ssl`` module's public memory-BIO API
(``SSLContext.wrap_bio``), for three reasons:

* a refused handshake (no certificate, an untrusted CA, TLS 1.1) must become
  an error event naming the client and the reason; neither asyncio's nor
  uvloop's TLS transport tells the application about failed handshakes;
* it runs the same on asyncio's and on uvloop's TCP transports, so the
  ``--loop`` choice changes nothing but speed;
* shutting down a connection must not wait for the peer's ``close_notify``
  (asyncio waits up to 30 s): clients idling in a pool never send it.

After the handshake the connection hands its plaintext to an HTTP session:
``Http2Session`` when the client negotiated ``h2``, ``Http1Session`` otherwise.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Protocol, cast

from kes_server.transport.exchange import Peer

if TYPE_CHECKING:
    from kes_server.transport.server import HTTPServer

__all__ = ["Session", "TLSConnection"]

#: Plaintext bytes taken from the TLS layer per read.
_READ_SIZE = 256 * 1024
#: Write-buffer limits: above HIGH streaming writers wait, below LOW they resume.
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024


class Session(Protocol):
    """What an HTTP protocol implements on top of a ``TLSConnection``."""

    def data_received(self, data: bytes) -> None: ...

    def eof_received(self) -> None: ...

    def connection_lost(self) -> None: ...

    def shutdown(self) -> None:
        """The server is stopping: finish what is under way, take nothing new."""


class TLSConnection(asyncio.Protocol):
    """One accepted TCP connection: TLS handshake, then an HTTP session."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.peer: Peer | None = None
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls = server.ssl_context.wrap_bio(self._in, self._out, server_side=True)
        self._timer: asyncio.TimerHandle | None = None
        self._address = ("", 0)
        self._closing = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport implements asyncio.Transport without subclassing it.
        self.transport = transport = cast("asyncio.Transport", transport)
        transport.set_write_buffer_limits(high=_HIGH_WATER, low=_LOW_WATER)
        peername = transport.get_extra_info("peername")
        if peername:
            self._address = (str(peername[0]), int(peername[1]))
        self.server.connections.add(self)
        self._timer = self.loop.call_later(
            self.server.limits.handshake_timeout_s, self._handshake_timed_out
        )

    def data_received(self, data: bytes) -> None:
        self._in.write(data)
        if self.session is None and not self._handshake():
            return
        self._read_plaintext()

    def eof_received(self) -> bool:
        self._in.write_eof()
        if self.session is None:
            if not self._closing:
                self._tls_failed("EOF")
            return False
        self._read_plaintext()
        if self.session is not None and not self._closing:
            self.session.eof_received()
        return True  # the session decides when to close (pending answers may remain)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.server.connections.discard(self)
        self._wake_drainers()
        if self.session is not None:
            self.session.connection_lost()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drainers()

    # ------------------------------------------------------------------ handshake
    def _handshake(self) -> bool:
        """Advance the handshake; True once it is complete and a session exists."""
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except (ssl.SSLError, ValueError) as exc:
            self._flush()  # the alert tells the client why
            self._tls_failed(_describe(exc))
            return False
        self._flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            der = self._tls.getpeercert(binary_form=True)
        except (ValueError, ssl.SSLError):
            der = None
        alpn = self._tls.selected_alpn_protocol() or "http/1.1"
        self.peer = Peer(self._address[0], self._address[1], der, alpn)
        if alpn == "h2":
            from kes_server.transport.http2 import Http2Session

            self.session = Http2Session(self, self.peer)
        else:
            from kes_server.transport.http1 import Http1Session

            self.session = Http1Session(self, self.peer)
        return True

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if self.session is None:
            self._tls_failed("handshake timeout")

    def _tls_failed(self, reason: str) -> None:
        self.server.report_tls_error(f"{self._address[0]}:{self._address[1]}", reason)
        self.abort()

    # ------------------------------------------------------------------ data
    def _read_plaintext(self) -> None:
        tls = self._tls
        chunks: list[bytes] = []
        eof = False
        while True:
            try:
                chunk = tls.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # the client's close_notify
                eof = True
                break
            except ssl.SSLError:
                self.abort()  # a corrupt or forged record: nothing more can be trusted
                return
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
            if not self._in.pending and not tls.pending():
                break
        if self._out.pending:
            self._flush()  # e.g. a TLS 1.3 key update answered by OpenSSL
        session = self.session
        if session is None:
            return
        for chunk in chunks:
            if self._closing:
                return
            session.data_received(chunk)
        if eof and not self._closing:
            session.eof_received()

    def write(self, data: bytes) -> None:
        """Encrypt and send ``data`` (one TLS write, one socket write)."""
        if self._closing or self.transport is None:
            return
        tls = self._tls
        view = memoryview(data)
        try:
            while view:
                sent = tls.write(view)
                view = view[sent:]
        except ssl.SSLError:
            self.abort()
            return
        self._flush()

    def _flush(self) -> None:
        data = self._out.read()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    @property
    def write_paused(self) -> bool:
        return self._write_paused

    async def drain(self) -> None:
        """Wait until the client has read enough of what we sent (or is gone)."""
        if not self._write_paused or self._closing:
            return
        waiter = self.loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def pause_reading(self) -> None:
        if self.transport is not None and not self._closing:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self._closing:
            self.transport.resume_reading()

    @property
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Send close_notify and close once the queued data is out.

        The peer's close_notify is not awaited; if the peer does not read what
        is still queued, the connection is dropped after the grace period.
        """
        if self._closing or self.transport is None:
            return
        self._closing = True
        if self.session is not None:
            try:
                self._tls.unwrap()
            except (ssl.SSLError, ValueError):
                pass
        self._flush()
        self.transport.close()
        self.loop.call_later(self.server.limits.close_grace_s, self.abort)

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    def shutdown(self) -> None:
        """Graceful server stop: the session finishes, or we go now if there is none."""
        if self.session is None:
            self.abort()
        else:
            self.session.shutdown()


def _describe(exc: BaseException) -> str:
    """A handshake failure in one line: OpenSSL's reason, plus the verify result."""
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    detail = getattr(exc, "verify_message", None)
    if detail:  # e.g. "certificate has expired": tells the operator which client to fix
        reason = f"{reason} ({detail})"
    return str(reason)
