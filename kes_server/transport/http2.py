"""HTTP/2 on a TLS connection, with the ``h2`` state machine (RFC 9113).

MinIO's KES client forces HTTP/2 whenever the server offers it, so this is
the transport most production traffic uses. Each stream is an exchange served
by its own task; a reset stream ends only that exchange. What we add to
``h2``'s protocol logic is the server's policy:

* fairness: received bytes are fed to ``h2`` in slices of ``_SLICE`` bytes,
  one slice per event-loop turn, so one connection flooding cheap frames
  (PING, SETTINGS) cannot hold the loop for long; reading pauses meanwhile;
* flood limits: more than ``control_frame_limit`` PING/SETTINGS frames or
  client stream resets within ``_FLOOD_WINDOW_S`` end the connection with
  GOAWAY ``ENHANCE_YOUR_CALM`` (as Go's server does for such floods);
* an answer sent before the request body is complete is followed by
  ``RST_STREAM(NO_ERROR)`` (RFC 9113 §8.1): the client stops sending, and
  the connection and its other streams, trace streams included, carry on;
* graceful stop: a GOAWAY naming the last stream we accepted, then the
  connection closes when its streams are done.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from kes_server.transport.exchange import (
    ClientGone,
    Exchange,
    Headers,
    Peer,
    decode_path,
)

if TYPE_CHECKING:
    from kes_server.transport.tlsconn import TLSConnection

__all__ = ["Http2Session"]

#: Bytes handed to h2 per event-loop turn.
_SLICE = 16 * 1024
_FLOOD_WINDOW_S = 10.0
#: Our receive windows: a 1 MiB body (the largest KES allows) needs no round trip.
_WINDOW = 1 << 20
#: Outbound bytes queued per stream beyond which ``send`` waits.
_STREAM_HIGH_WATER = 256 * 1024


class Http2Exchange(Exchange):
    __slots__ = ("_ended", "pending", "session", "stream_id", "trailers", "writers")

    def __init__(
        self,
        session: Http2Session,
        stream_id: int,
        method: str,
        target: bytes,
        headers: Headers,
        content_length: int | None,
    ) -> None:
        path = target.split(b"?", 1)[0]
        super().__init__(method, target, decode_path(path), headers, session.peer, content_length)
        self.session = session
        self.stream_id = stream_id
        self._ended = False
        #: Response bytes waiting for flow-control window.
        self.pending: deque[bytes] = deque()
        #: Set by ``end``: trailers to send once ``pending`` is out (None: none).
        self.trailers: Headers | None = None
        self.writers: list[asyncio.Future[None]] = []

    # ------------------------------------------------------------------ body (h2 side)
    def _unclaimed(self) -> None:
        if self._size > _WINDOW + 64 * 1024:
            self._drop()  # more than any KES body and than our window: a broken client

    def gone(self) -> None:
        super().gone()
        self.session.wake_writers(self)

    # ------------------------------------------------------------------ Exchange
    def _headers(self, status: int, headers: Headers) -> Headers:
        self._started = True
        out = [(b":status", str(status).encode())]
        out.extend((name.lower(), value) for name, value in headers)
        return out

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        fields = self._headers(status, headers)
        fields.append((b"content-length", str(len(body)).encode()))
        if self.method == "HEAD":
            body = b""
        if not body:
            self.session.send_headers(self, fields, end=True)
            return
        # Headers and body leave in one write (one TLS record, one send()).
        self.session.send_headers(self, fields, end=False, flush=False)
        self.pending.append(body)
        self.trailers = []
        self.session.pump(self)

    def start(self, status: int, headers: Headers, trailers: bytes = b"") -> None:
        fields = self._headers(status, headers)
        if trailers:
            fields.append((b"trailer", trailers))
        self.session.send_headers(self, fields, end=False)

    async def send(self, chunk: bytes) -> None:
        if self._gone is None:
            raise ClientGone()
        if not chunk:
            return
        self.pending.append(chunk)
        session = self.session
        session.pump(self)
        while sum(map(len, self.pending)) > _STREAM_HIGH_WATER:
            if self._gone is None:
                raise ClientGone()
            waiter = session.loop.create_future()
            self.writers.append(waiter)
            await waiter
        await session.conn.drain()

    def end(self, trailers: Headers | None = None) -> None:
        if self._ended or self.trailers is not None:
            return  # ended already, perhaps still flushing: keep the trailers it set
        self.trailers = [(n.lower(), v) for n, v in trailers] if trailers else []
        self.session.pump(self)

    @property
    def ended(self) -> bool:
        return self._ended

    def mark_ended(self) -> None:
        self._ended = True


class Http2Session:
    """The HTTP/2 side of one connection (see the module docstring)."""

    def __init__(self, conn: TLSConnection, peer: Peer) -> None:
        self.conn = conn
        self.peer = peer
        self.server = conn.server
        self.loop = conn.loop
        self.limits = conn.server.limits
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            # Our answers are built by us and are valid: checking them again costs
            # a tenth of an HTTP/2 request. What clients send is still validated.
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(config=config)
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.limits.h2_max_streams,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: self.limits.max_head_bytes,
            },
        )
        # Replacing local_settings skips the path that tells the HPACK decoder the
        # header-list limit (it keeps h2's 64 KiB default): tell it ourselves.
        self.h2.decoder.max_header_list_size = self.limits.max_head_bytes
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(_WINDOW)
        self.streams: dict[int, Http2Exchange] = {}
        self.stopping = False
        self._last_stream = 0
        self._backlog: deque[bytes] = deque()
        self._feeding = False
        self._eof = False
        self._window_start = time.monotonic()
        self._control_frames = 0
        self._resets = 0
        self._watch: asyncio.TimerHandle | None = None
        self._idle_since = 0.0
        self._flush()
        self._go_idle()

    # ------------------------------------------------------------------ Session
    def data_received(self, data: bytes) -> None:
        self._backlog.append(data)
        if self._feeding:
            self.conn.pause_reading()  # this turn's slice is taken: the rest waits
        else:
            self._feed()

    def _feed(self) -> None:
        """Give h2 one slice; the next one waits for the next event-loop turn.

        The TLS layer hands over what one socket read brought (up to 256 KiB)
        as several chunks in a row, so "more is waiting" cannot be known when
        a slice is done: the next turn is scheduled after every slice, and
        chunks arriving meanwhile queue (reading paused). Without that, a
        flood of frames nothing limits (WINDOW_UPDATE, PRIORITY, unknown
        types) held the loop for a whole read at a time and stalled every
        other client for seconds.
        """
        self._feeding = False
        if self.conn.is_closing:
            return
        if not self._backlog:
            self.conn.resume_reading()
            if self._eof:
                self._input_ended()
            return
        data = self._backlog.popleft()
        if len(data) > _SLICE:
            self._backlog.appendleft(data[_SLICE:])
            data = data[:_SLICE]
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()  # h2 has queued the GOAWAY naming the error
            self.conn.close()
            return
        for event in events:
            self._event(event)
            if self.conn.is_closing:
                return
        self._flush()
        self._feeding = True
        if self._backlog:
            self.conn.pause_reading()
        self.loop.call_soon(self._feed)

    def eof_received(self) -> None:
        self._eof = True
        if not self._feeding:  # else once the backlog is through (it may end a body)
            self._input_ended()

    def _input_ended(self) -> None:
        """The client will send nothing more, and h2 has seen all it sent."""
        for exchange in list(self.streams.values()):
            if not exchange.body_complete:
                exchange.gone()
        if not self.streams:
            self.conn.close()

    def connection_lost(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        for exchange in list(self.streams.values()):
            exchange.gone()

    def shutdown(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        # A GOAWAY of our own: h2's close_connection() would forbid finishing the
        # streams under way, which a graceful stop must allow.
        frame = GoAwayFrame(0)
        frame.last_stream_id = self._last_stream
        frame.error_code = ErrorCodes.NO_ERROR
        self.conn.write(frame.serialize())
        if not self.streams:
            self._close(ErrorCodes.NO_ERROR)

    # ------------------------------------------------------------------ events
    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._request(event)
        elif isinstance(event, h2.events.DataReceived):
            assert event.stream_id is not None and event.data is not None
            length = event.flow_controlled_length or 0
            if length:
                self.h2.acknowledge_received_data(length, event.stream_id)
            exchange = self.streams.get(event.stream_id)
            if exchange is not None:
                exchange.feed(event.data)
        elif isinstance(event, h2.events.StreamEnded):
            exchange = self.streams.get(event.stream_id or 0)
            if exchange is not None:
                exchange.complete()
        elif isinstance(event, h2.events.StreamReset):
            self._count_reset()
            exchange = self.streams.pop(event.stream_id or 0, None)
            if exchange is not None:
                exchange.gone()
                self._maybe_idle()
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            for exchange in list(self.streams.values()):
                if exchange.pending or exchange.trailers is not None:
                    self.pump(exchange)
        elif isinstance(event, h2.events.PingReceived | h2.events.SettingsAcknowledged):
            self._count_control()
        elif isinstance(event, h2.events.ConnectionTerminated):
            for exchange in list(self.streams.values()):
                exchange.gone()
            self.conn.close()
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self._count_control()

    def _request(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        assert stream_id is not None
        if self.stopping:
            self.h2.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        method = target = b""
        length: int | None = None
        headers: Headers = []
        for name, value in event.headers or ():
            assert isinstance(name, bytes) and isinstance(value, bytes)
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    target = value
                continue
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    self.h2.reset_stream(stream_id, ErrorCodes.PROTOCOL_ERROR)
                    return
            headers.append((name, value))
        exchange = Http2Exchange(self, stream_id, method.decode("latin-1"), target, headers, length)
        if event.stream_ended is not None:
            exchange.complete()
        self._last_stream = max(self._last_stream, stream_id)
        self.streams[stream_id] = exchange
        self.loop.create_task(self._serve(exchange))

    async def _serve(self, exchange: Http2Exchange) -> None:
        try:
            await self.server.handler(exchange)
        finally:
            if not exchange.ended and not exchange.closed and exchange.started:
                exchange.end()
            if not exchange.started and not exchange.closed:
                self._reset(exchange, ErrorCodes.INTERNAL_ERROR)

    # ------------------------------------------------------------------ sending
    def send_headers(
        self, exchange: Http2Exchange, fields: Headers, *, end: bool, flush: bool = True
    ) -> None:
        if exchange.closed:
            return
        try:
            self.h2.send_headers(exchange.stream_id, fields, end_stream=end)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            exchange.gone()
            return
        if end:
            self._finished(exchange)
        if flush:
            self._flush()

    def pump(self, exchange: Http2Exchange) -> None:
        """Send what the flow-control windows allow; finish the stream when all is out."""
        if exchange.closed or exchange.ended:
            return
        h = self.h2
        sid = exchange.stream_id
        pending = exchange.pending
        try:
            while pending:
                window = min(h.local_flow_control_window(sid), h.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk = pending[0]
                if len(chunk) > window:
                    pending[0] = chunk[window:]
                    chunk = chunk[:window]
                else:
                    pending.popleft()
                last = not pending and exchange.trailers == []
                h.send_data(sid, chunk, end_stream=last)
                if last:
                    self._finished(exchange)
            if not pending and exchange.trailers and not exchange.ended:
                h.send_headers(sid, exchange.trailers, end_stream=True)
                self._finished(exchange)
            elif not pending and exchange.trailers == [] and not exchange.ended:
                h.send_data(sid, b"", end_stream=True)
                self._finished(exchange)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            exchange.gone()
        self._flush()
        if not pending:
            self.wake_writers(exchange)

    def wake_writers(self, exchange: Http2Exchange) -> None:
        writers, exchange.writers = exchange.writers, []
        for waiter in writers:
            if not waiter.done():
                waiter.set_result(None)

    def _finished(self, exchange: Http2Exchange) -> None:
        """Our side of the stream is complete."""
        exchange.mark_ended()
        if not exchange.body_complete and not exchange.closed:
            # Answered before the body was in: tell the client to stop sending it.
            self._reset(exchange, ErrorCodes.NO_ERROR)
            return
        self.streams.pop(exchange.stream_id, None)
        self._maybe_idle()

    def _reset(self, exchange: Http2Exchange, code: ErrorCodes) -> None:
        try:
            self.h2.reset_stream(exchange.stream_id, code)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass
        self.streams.pop(exchange.stream_id, None)
        exchange.gone()
        self._flush()
        self._maybe_idle()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.conn.write(data)

    # ------------------------------------------------------------------ limits
    def _window(self) -> None:
        now = time.monotonic()
        if now - self._window_start > _FLOOD_WINDOW_S:
            self._window_start = now
            self._control_frames = 0
            self._resets = 0

    def _count_control(self) -> None:
        self._window()
        self._control_frames += 1
        if self._control_frames > self.limits.h2_control_frame_limit:
            self._close(ErrorCodes.ENHANCE_YOUR_CALM)

    def _count_reset(self) -> None:
        self._window()
        self._resets += 1
        if self._resets > self.limits.h2_control_frame_limit:
            self._close(ErrorCodes.ENHANCE_YOUR_CALM)

    def _close(self, code: ErrorCodes) -> None:
        try:
            self.h2.close_connection(error_code=code, last_stream_id=self._last_stream)
        except h2.exceptions.ProtocolError:
            pass
        self._flush()
        for exchange in list(self.streams.values()):
            exchange.gone()
        self.streams.clear()
        self._backlog.clear()
        self.conn.close()

    def _maybe_idle(self) -> None:
        if self.streams:
            return
        if self.stopping:
            self._close(ErrorCodes.NO_ERROR)
        else:
            self._go_idle()

    def _go_idle(self) -> None:
        """No stream open from now on: the idle clock starts.

        The watchdog timer is only re-armed when it fires, so streams that
        open and close cost no timer operations.
        """
        self._idle_since = self.loop.time()
        if self._watch is None:
            self._watch = self.loop.call_at(
                self._idle_since + self.limits.idle_timeout_s, self._check
            )

    def _check(self) -> None:
        self._watch = None
        if self.conn.is_closing:
            return
        if self.streams:
            # Busy now; look again one idle period later (it may be idle by then).
            self._watch = self.loop.call_later(self.limits.idle_timeout_s, self._check)
            return
        deadline = self._idle_since + self.limits.idle_timeout_s
        if self.loop.time() >= deadline:
            self._close(ErrorCodes.NO_ERROR)
        else:
            self._watch = self.loop.call_at(deadline, self._check)
