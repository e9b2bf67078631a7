"""A small raw HTTP/2 client over mutual TLS, the HTTP/2 twin of ``rawhttp``.

httpx speaks HTTP/2 but normalises request targets, hides trailers and
stream resets, and cannot stop sending a body when the server answers
early. Tests of the HTTP/2 transport need all of that, so this client drives
the ``h2`` state machine over a plain ``ssl`` socket: the target goes out as
written (as the ``:path`` pseudo-header), and a response keeps its status,
headers, body, trailers and the ``RST_STREAM`` code the stream ended with.
A connection may carry any number of streams, sequentially or at once.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from tests.support.rawhttp import RawResponse

__all__ = ["H2Client", "H2Response", "h2_request"]

Fields = tuple[tuple[bytes, bytes], ...]


@dataclass
class H2Response(RawResponse):
    stream_id: int = 0
    #: The ``RST_STREAM`` error code that ended the stream, if one did (0 = NO_ERROR).
    reset: int | None = None
    #: END_STREAM (or a reset) has been received: nothing more will come.
    done: bool = False


def _text(fields: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in fields]


class H2Client:
    """One HTTP/2 connection (ALPN ``h2``) to 127.0.0.1:``port``."""

    def __init__(self, port: int, ctx: ssl.SSLContext, *, timeout: float = 10.0) -> None:
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        if self.sock.selected_alpn_protocol() != "h2":
            self.sock.close()
            raise ConnectionError("the server did not negotiate h2")
        self.timeout = timeout
        # No outbound validation or clean-up: the tests send what hostile clients send.
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.streams: dict[int, H2Response] = {}
        #: The server's GOAWAY, once received.
        self.goaway: h2.events.ConnectionTerminated | None = None
        #: The server closed the TCP connection (EOF or reset).
        self.eof = False
        #: The server's SETTINGS have arrived (and our ACK has gone out).
        self.settled = False
        self._inbox = bytearray()
        #: Streams whose window is not reopened (see ``hold``): bytes received meanwhile.
        self._held: dict[int, int] = {}
        self.flush()

    # ------------------------------------------------------------------ plumbing
    def __enter__(self) -> H2Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.eof:
            try:
                self.sock.sendall(data)
            except OSError:
                self.eof = True

    def receive(self, timeout: float | None = None) -> bool:
        """Read what the server sent (waiting up to ``timeout``); False when nothing came."""
        if self.eof:
            return False
        wait = self.timeout if timeout is None else timeout
        if not self.sock.pending():
            readable, _, _ = select.select([self.sock], [], [], wait)
            if not readable:
                return False
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            return False  # a TLS record not complete yet, or a session ticket
        except OSError:
            data = b""
        finally:
            self.sock.settimeout(self.timeout)
        if not data:
            self.eof = True
            return False
        self._inbox += data
        # Frame by frame, so that a GOAWAY can be dealt with before the frames behind it.
        while len(self._inbox) >= 9:
            size = 9 + int.from_bytes(self._inbox[:3], "big")
            if len(self._inbox) < size:
                break
            frame = bytes(self._inbox[:size])
            del self._inbox[:size]
            try:
                events = self.conn.receive_data(frame)
            except h2.exceptions.ProtocolError:
                self.eof = True  # we cannot follow the server any more
                break
            for event in events:
                self._event(event)
            if self.goaway is not None:
                # h2 closes its whole state machine on GOAWAY, but RFC 9113 §6.8 lets
                # the streams the GOAWAY covers finish: that is what a graceful stop
                # promises, so keep following them.
                self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        self.flush()
        return True

    def _event(self, event: h2.events.Event) -> None:
        sid = getattr(event, "stream_id", None) or 0
        response = self.streams.get(sid)
        if isinstance(event, h2.events.ResponseReceived) and response is not None:
            for name, value in _text(list(event.headers or ())):
                if name == ":status":
                    response.status = int(value)
                else:
                    response.headers[name] = value
        elif isinstance(event, h2.events.DataReceived):
            length = event.flow_controlled_length or 0
            if sid in self._held:
                # Read, but give the stream no new window: the server must stop sending on it.
                self._held[sid] += length
                if length:
                    self.conn.increment_flow_control_window(length)
            elif length:
                self.conn.acknowledge_received_data(length, sid)
            if response is not None:
                response.body += event.data or b""
        elif isinstance(event, h2.events.TrailersReceived) and response is not None:
            response.trailers.update(_text(list(event.headers or ())))
        elif isinstance(event, h2.events.StreamEnded) and response is not None:
            response.done = True
        elif isinstance(event, h2.events.StreamReset) and response is not None:
            response.reset = int(event.error_code or 0)
            response.done = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.settled = True

    def hold(self, sid: int) -> None:
        """Stop opening the stream's flow-control window (the connection's stays open)."""
        self._held.setdefault(sid, 0)

    def release(self, sid: int) -> None:
        """Give the held stream back the window it used, and keep acknowledging its data."""
        used = self._held.pop(sid, 0)
        if used:
            self.conn.increment_flow_control_window(used, stream_id=sid)
            self.flush()

    def wait(self, condition: Callable[[], bool], timeout: float | None = None) -> bool:
        """Read until ``condition()`` holds (True), the connection ends or time is up."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                return condition()
            self.receive(left)
        return True

    # ------------------------------------------------------------------ requests
    def send_request(
        self,
        method: bytes,
        target: bytes,
        body: bytes = b"",
        *,
        headers: Fields = (),
        end: bool | None = None,
    ) -> int:
        """Open a stream; send the head, then as much of ``body`` as the server takes.

        ``end=False`` leaves the stream open after ``body`` (a body still to
        come); by default it is left open only when a declared
        ``content-length`` promises more than ``body``.
        """
        if end is None:
            declared = [int(v) for n, v in headers if n.lower() == b"content-length"]
            end = not declared or declared[0] <= len(body)
        sid = self.conn.get_next_available_stream_id()
        fields = [
            (b":method", method),
            (b":scheme", b"https"),
            (b":authority", b"localhost"),
            (b":path", target),
            *((n.lower(), v) for n, v in headers),
        ]
        if body and not any(n.lower() == b"content-length" for n, _ in headers):
            fields.append((b"content-length", str(len(body)).encode()))
        self.streams[sid] = H2Response(0, "", stream_id=sid)
        self.conn.send_headers(sid, fields, end_stream=end and not body)
        self.flush()
        if body:
            self.send_body(sid, body, end=end)
        return sid

    def send_body(self, sid: int, data: bytes, *, end: bool = True) -> None:
        """Send ``data`` as flow control allows; stop once the server has answered.

        A server refusing a body answers and resets the stream; sending on
        would be pointless (and ``h2`` refuses it), so the rest is dropped.
        """
        response = self.streams[sid]
        view = memoryview(data)
        while view:
            self.receive(0)
            if response.done or response.status or self.eof:
                return
            window = min(
                self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size
            )
            if window <= 0:
                if not self.receive():  # waiting for a WINDOW_UPDATE
                    raise ConnectionError(f"stream {sid}: no flow-control window in time")
                continue
            try:
                self.conn.send_data(sid, bytes(view[:window]))
            except h2.exceptions.StreamClosedError:
                return
            view = view[window:]
            self.flush()
        if end:
            self.end_stream(sid)

    def end_stream(self, sid: int) -> None:
        try:
            self.conn.end_stream(sid)
        except h2.exceptions.StreamClosedError:
            return
        self.flush()

    def response(self, sid: int, timeout: float | None = None) -> H2Response:
        """The stream's answer once it is complete (ConnectionError if it never is)."""
        response = self.streams[sid]
        if not self.wait(lambda: response.done, timeout):
            raise ConnectionError(f"stream {sid} did not complete: {response}")
        return response

    def request(
        self, method: bytes, target: bytes, body: bytes = b"", *, headers: Fields = ()
    ) -> H2Response:
        return self.response(self.send_request(method, target, body, headers=headers))


def h2_request(
    port: int,
    ctx: ssl.SSLContext,
    method: bytes,
    target: bytes,
    body: bytes = b"",
    *,
    headers: Fields = (),
    timeout: float = 10.0,
) -> H2Response:
    """One request on a fresh connection, the target sent as written."""
    with H2Client(port, ctx, timeout=timeout) as client:
        return client.request(method, target, body, headers=headers)
