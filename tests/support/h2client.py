"""A blocking HTTP/2 client over TLS that sends exactly what a test tells it to.

httpx's HTTP/2 client validates and normalises what it sends and hides the
frames; abuse tests need the opposite: a request whose body is still being
sent when the answer arrives, a ``:path`` with raw non-ASCII bytes or ``//``,
an h2c upgrade through a proxy, and a view of every stream reset and GOAWAY.
This client drives the ``h2`` state machine (client side, outbound header
validation off) over a plain ``ssl`` socket, one thread, no event loop, so a
test reads like the exchange it checks.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions

__all__ = ["H2Client", "H2Stream", "request_headers"]


@dataclass
class H2Stream:
    """What arrived on one stream."""

    headers: dict[bytes, bytes] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    trailers: dict[bytes, bytes] = field(default_factory=dict)
    ended: bool = False
    #: The error code of the server's RST_STREAM, if it reset the stream.
    reset: int | None = None

    @property
    def status(self) -> int:
        return int(self.headers.get(b":status", b"0"))

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None

    def lines(self) -> list[bytes]:
        """The complete NDJSON lines received so far (a trace stream's events)."""
        return [line for line in bytes(self.data).split(b"\n")[:-1] if line.strip()]


def request_headers(
    method: bytes, path: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", method),
        (b":scheme", b"https"),
        (b":authority", b"localhost"),
        (b":path", path),
        *extra,
    ]


class H2Client:
    """One HTTP/2 connection; ``pump`` reads what the server sent and updates the streams."""

    def __init__(self, sock: ssl.SSLSocket, *, upgraded: bool = False) -> None:
        self.sock = sock
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.streams: dict[int, H2Stream] = {}
        #: The error code of the server's GOAWAY, if one came.
        self.goaway: int | None = None
        #: The server closed the connection (EOF or reset).
        self.closed = False
        self.upgrade_settings = b""
        if upgraded:
            # The upgrade request itself is stream 1 (RFC 7540 §3.2).
            self.upgrade_settings = self.conn.initiate_upgrade_connection() or b""
            self.streams[1] = H2Stream()
        else:
            self.conn.initiate_connection()
            self.flush()

    @classmethod
    def open(cls, port: int, ctx: ssl.SSLContext, *, timeout: float = 10.0) -> H2Client:
        """A TLS connection to 127.0.0.1:``port`` that negotiated ``h2``."""
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            sock = ctx.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        if sock.selected_alpn_protocol() != "h2":
            sock.close()
            raise AssertionError("the server did not negotiate h2")
        return cls(sock)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ sending
    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def request(
        self,
        method: bytes,
        path: bytes,
        body: bytes | None = b"",
        *,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        end: bool = True,
    ) -> int:
        """Open a stream; ``body=None, end=False`` leaves the body to ``send``."""
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = H2Stream()
        fields = request_headers(method, path, headers)
        self.conn.send_headers(sid, fields, end_stream=end and not body)
        if body:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        return sid

    def send(self, sid: int, data: bytes, *, end: bool = False) -> bool:
        """Send body bytes as the windows allow; False once the stream is closed."""
        try:
            self.conn.send_data(sid, data, end_stream=end)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return False
        self.flush()
        return True

    def window(self, sid: int) -> int:
        try:
            return int(self.conn.local_flow_control_window(sid))
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return 0

    # ------------------------------------------------------------------ receiving
    def feed(self, data: bytes) -> None:
        """Bytes of the server's side (e.g. read past an HTTP/1.1 ``101`` head)."""
        for event in self.conn.receive_data(data):
            self._event(event)
        self.flush()

    def pump(self, timeout: float) -> bool:
        """Read once (up to ``timeout``); False when nothing came or the connection is gone."""
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except OSError:
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        self.feed(data)
        return True

    def wait(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Pump until ``condition()``; AssertionError if it does not happen in time."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.closed and not condition()):
                state = "closed" if self.closed else "open"
                raise AssertionError(f"condition not met in {timeout}s (connection {state})")
            self.pump(min(remaining, 0.5))

    def response(self, sid: int, timeout: float = 10.0) -> H2Stream:
        """The stream once the server has finished (or reset) it."""
        stream = self.streams[sid]
        self.wait(lambda: stream.done, timeout)
        return stream

    def _event(self, event: h2.events.Event) -> None:
        sid = getattr(event, "stream_id", None)
        stream = self.streams.get(sid) if isinstance(sid, int) else None
        if isinstance(event, h2.events.ResponseReceived) and stream is not None:
            stream.headers = dict(event.headers or ())
        elif isinstance(event, h2.events.TrailersReceived) and stream is not None:
            stream.trailers = dict(event.headers or ())
        elif isinstance(event, h2.events.DataReceived) and stream is not None:
            stream.data += event.data or b""
            if event.flow_controlled_length and sid is not None:
                self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
        elif isinstance(event, h2.events.StreamEnded) and stream is not None:
            stream.ended = True
        elif isinstance(event, h2.events.StreamReset) and stream is not None:
            stream.reset = int(event.error_code or 0)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = int(event.error_code or 0)
