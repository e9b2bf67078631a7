"""HTTP/1.1 on a TLS connection: llhttp (through httptools) parses, we keep state.

One task per connection serves its requests strictly in order, so pipelined
requests are answered in order and a request costs no task of its own. The
parser runs in ``data_received``; a request is queued as soon as its head is
complete (so an answer that needs no body, e.g. a policy denial, can go out
at once) and its body follows into the exchange.

Connection rules, as Go's net/http applies them for KES:

* keep-alive unless the client or HTTP/1.0 says otherwise;
* a request head must be complete ``header_timeout_s`` after its first byte
  (slowloris), an idle connection is closed after ``idle_timeout_s``;
* an answer sent before the body was read: the rest of a body of known
  length up to ``drain_limit`` bytes is read and dropped so the connection
  stays usable; otherwise the answer says ``Connection: close`` and the
  connection lingers briefly, reading, so the client sees the answer rather
  than a reset;
* a client that does not read its answers is not served further until it
  does (the write buffer is bounded), and pipelined requests yield to other
  connections between each other;
* bytes that are not HTTP get a bare ``400`` and the connection closes;
  an oversized head gets ``431``; ``Upgrade`` is never honoured.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

import httptools

from kes_server.transport.exchange import (
    ClientGone,
    Exchange,
    Headers,
    Peer,
    decode_path,
)

if TYPE_CHECKING:
    from kes_server.transport.tlsconn import TLSConnection

__all__ = ["Http1Session"]

#: Body bytes buffered before the application has asked for the body.
_PREBUFFER = 1024 * 1024 + 64 * 1024


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


_STATUS_LINES = {s.value: _status_line(s.value) for s in HTTPStatus}
_date_second = 0
_date_header = b""


def _date() -> bytes:
    """The ``Date`` header line, formatted once per second."""
    global _date_second, _date_header
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_header = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
    return _date_header


class _Refusal:
    """A queued protocol-level answer (unparseable bytes, head too large)."""

    __slots__ = ("status",)

    def __init__(self, status: int) -> None:
        self.status = status


class Http1Exchange(Exchange):
    __slots__ = ("_close", "_continue", "_streaming", "chunked", "keep_alive", "session", "version")

    def __init__(
        self,
        session: Http1Session,
        method: str,
        target: bytes,
        path: str,
        headers: Headers,
        content_length: int | None,
        *,
        chunked: bool,
        keep_alive: bool,
        version: str,
        upgrade: bool,
        expect_continue: bool,
    ) -> None:
        super().__init__(method, target, path, headers, session.peer, content_length, upgrade)
        self.session = session
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.version = version
        self._continue = expect_continue
        self._streaming = False
        self._close = False

    # ------------------------------------------------------------------ body (parser side)
    def _unclaimed(self) -> None:
        if self._size > _PREBUFFER:
            self.session.conn.pause_reading()  # nobody asked for it yet: wait

    def _body_wanted(self) -> None:
        if self._continue:
            self._continue = False
            self.session.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.session.conn.resume_reading()

    def remaining(self) -> int | None:
        """Body bytes still to come; None when unknown (chunked)."""
        if self._complete:
            return 0
        if self.content_length is None:
            return None
        return self.content_length - self._size

    def discard(self) -> None:
        """The answer is out: drop the rest of the body as it arrives (never pause for it)."""
        self._over = True
        self._chunks.clear()

    async def wait_complete(self) -> None:
        """Until the body has arrived (or the connection is gone)."""
        while not self._complete and self._gone is not None:
            await self._wait()

    # ------------------------------------------------------------------ Exchange
    def _must_close(self) -> bool:
        if not self.keep_alive or self.upgrade or self.session.stopping:
            return True
        if self._complete:
            return False
        if self._continue or self._over:
            return True  # the client holds the body back, or sends more than we keep
        remaining = self.remaining()
        return remaining is None or remaining > self.session.server.limits.drain_limit

    def _head(self, status: int, headers: Headers, extra: bytes) -> bytes:
        self._started = True
        self._close = self._must_close()
        parts = [_STATUS_LINES.get(status) or _status_line(status)]
        for name, value in headers:
            parts.append(name + b": " + value + b"\r\n")
        parts.append(extra)
        parts.append(_date())
        if self._close:
            parts.append(b"Connection: close\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        head = self._head(status, headers, b"Content-Length: %d\r\n" % len(body))
        self.session.conn.write(head if self.method == "HEAD" else head + body)

    def start(self, status: int, headers: Headers, trailers: bytes = b"") -> None:
        if self.version == "1.0":
            # No chunked coding in HTTP/1.0: the body ends when the connection does.
            self.keep_alive = False
            self.session.conn.write(self._head(status, headers, b""))
            return
        self._streaming = True
        extra = b"Transfer-Encoding: chunked\r\n"
        if trailers:
            extra += b"Trailer: " + trailers + b"\r\n"
        self.session.conn.write(self._head(status, headers, extra))

    async def send(self, chunk: bytes) -> None:
        if not chunk:
            return
        conn = self.session.conn
        if self._gone is None or conn.is_closing:
            raise ClientGone()
        if self._streaming:
            conn.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        else:
            conn.write(chunk)
        if conn.write_paused:
            await conn.drain()

    def end(self, trailers: Headers | None = None) -> None:
        if not self._streaming:
            return
        tail = [b"0\r\n"]
        for name, value in trailers or ():
            tail.append(name + b": " + value + b"\r\n")
        tail.append(b"\r\n")
        self.session.conn.write(b"".join(tail))

    @property
    def close_after(self) -> bool:
        return self._close


class Http1Session:
    """The HTTP/1.1 side of one connection (see the module docstring)."""

    def __init__(self, conn: TLSConnection, peer: Peer) -> None:
        self.conn = conn
        self.peer = peer
        self.server = conn.server
        self.loop = conn.loop
        self.limits = conn.server.limits
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Http1Exchange | _Refusal] = deque()
        self.parsing: Http1Exchange | None = None
        self.current: Http1Exchange | None = None
        self.stopping = False
        self._broken = False  # the parser gave up: no more requests on this connection
        self._eof = False
        self._url: list[bytes] = []
        self._headers: Headers = []
        self._head_size = 0
        self._in_head = False
        self._wakeup: asyncio.Future[None] | None = None
        self._watch: asyncio.TimerHandle | None = None
        self._head_since = 0.0
        self._idle_since = 0.0
        self._go_idle()
        self._task = self.loop.create_task(self._run())

    # ------------------------------------------------------------------ parser callbacks
    def on_message_begin(self) -> None:
        self._url = []
        self._headers = []
        self._head_size = 0
        self._in_head = True
        self._head_since = self.loop.time()

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._grow(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            return  # trailer fields of a chunked request body: ignored, as Go does
        self._headers.append((name.lower(), value))
        self._grow(len(name) + len(value) + 4)

    def _grow(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.limits.max_head_bytes:
            raise _HeadTooLarge()

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self.parser
        headers = self._headers
        target = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        length: int | None = None
        chunked = upgrade = expect = False
        for name, value in headers:
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"upgrade":
                upgrade = True
            elif name == b"expect":
                expect = value.lower() == b"100-continue"
        version = parser.get_http_version()
        exchange = Http1Exchange(
            self,
            parser.get_method().decode("ascii"),
            target,
            decode_path(_path_of(target)),
            headers,
            None if chunked else (length or 0),
            chunked=chunked,
            keep_alive=parser.should_keep_alive(),
            version=version,
            upgrade=upgrade,
            expect_continue=expect and version == "1.1",
        )
        self.parsing = exchange
        self.queue.append(exchange)
        if len(self.queue) > self.limits.max_pipelined:
            self.conn.pause_reading()
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.feed(body)

    def on_message_complete(self) -> None:
        if self.parsing is not None:
            self.parsing.complete()
            self.parsing = None

    # ------------------------------------------------------------------ Session
    def data_received(self, data: bytes) -> None:
        if self._broken:
            return  # lingering, or after an Upgrade: drop whatever comes
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._stop_parsing(None)  # the upgrade request itself is answered (refused)
        except httptools.HttpParserCallbackError as exc:
            self._stop_parsing(431 if isinstance(exc.__context__, _HeadTooLarge) else 400)
        except httptools.HttpParserError:
            self._stop_parsing(400)

    def _stop_parsing(self, status: int | None) -> None:
        self._broken = True
        self._in_head = False
        if self.parsing is not None and status is not None:
            self.parsing.complete()  # what arrived of it is all there will be
            self.parsing = None
        if status is not None:
            self.queue.append(_Refusal(status))
        self._wake()

    def eof_received(self) -> None:
        self._eof = True
        if self.parsing is not None:
            self.parsing.gone()
        self._wake()

    def connection_lost(self) -> None:
        self._eof = True
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        for exchange in (self.current, self.parsing, *self.queue):
            if isinstance(exchange, Http1Exchange):
                exchange.gone()
        self._wake()

    def shutdown(self) -> None:
        self.stopping = True
        if self.current is None and not self.queue:
            self.conn.close()
        self._wake()

    # ------------------------------------------------------------------ serving
    def _wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _next(self) -> Http1Exchange | _Refusal | None:
        """The next queued request, or None when the connection is done."""
        while not self.queue:
            if self._eof or self.stopping or self.conn.is_closing or self._broken:
                return None
            self._wakeup = self.loop.create_future()
            await self._wakeup
        item = self.queue.popleft()
        if len(self.queue) == self.limits.max_pipelined:
            self.conn.resume_reading()
        return item

    async def _run(self) -> None:
        handler = self.server.handler
        try:
            while (item := await self._next()) is not None:
                if isinstance(item, _Refusal):
                    self._refuse(item.status)
                    return
                self.current = item
                await handler(item)
                self.current = None
                if self.conn.is_closing:
                    return
                if not item.started:
                    return  # the client went away before it could be answered
                if item.close_after:
                    await self._linger()
                    return
                if not item.body_complete:
                    # Keep the connection: read and drop the rest of the body (bounded).
                    # Reading may be paused (a body that filled the pre-buffer).
                    item.discard()
                    self.conn.resume_reading()
                    try:
                        async with asyncio.timeout(self.limits.drain_idle_s * 5):
                            await item.wait_complete()
                    except TimeoutError:
                        return
                if self.conn.write_paused:
                    # The client does not read its answers: serve nothing more until it
                    # does, or pipelined requests (a few bytes each) pile answers up here.
                    await self.conn.drain()
                elif self.queue:
                    await asyncio.sleep(0)  # pipelined requests take turns with other clients
                if not self.queue and self.parsing is None and not self._broken:
                    self._go_idle()
        finally:
            self.current = None
            self.conn.close()

    def _refuse(self, status: int) -> None:
        """A protocol-level refusal: no body, as Go's server sends for bad requests."""
        self.conn.write(
            (_STATUS_LINES.get(status) or _status_line(status))
            + b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )

    async def _linger(self) -> None:
        """After ``Connection: close``: keep reading (and dropping) briefly.

        Closing a socket with unread data makes the kernel send a reset, which
        can destroy our answer on its way to the client before it is read.
        """
        self._broken = True
        self.conn.resume_reading()
        if not self._eof:
            self._wakeup = self.loop.create_future()
            try:
                async with asyncio.timeout(self.limits.close_grace_s):
                    await self._wakeup
            except TimeoutError:
                pass

    # ------------------------------------------------------------------ timers
    def _go_idle(self) -> None:
        """Nothing in progress from now on: the idle clock starts.

        One watchdog timer serves the idle and the request-head limits and is
        only re-armed when it fires (at least every ``header_timeout_s``), so
        a request costs no timer of its own.
        """
        now = self.loop.time()
        self._idle_since = now
        if self._watch is None:
            self._arm(now + min(self.limits.header_timeout_s, self.limits.idle_timeout_s))

    def _arm(self, when: float) -> None:
        self._watch = self.loop.call_at(when, self._check)

    def _check(self) -> None:
        self._watch = None
        if self.conn.is_closing or self.current is not None:
            return  # busy: the request's own deadline applies; re-armed once idle
        now = self.loop.time()
        limits = self.limits
        if self._in_head:
            deadline = self._head_since + limits.header_timeout_s
            if now >= deadline:
                self._broken = True  # slowloris: a head that never completes
                self.conn.close()
                return
            self._arm(deadline)
            return
        if self.queue or self.parsing is not None:
            self._arm(now + limits.header_timeout_s)
            return
        deadline = self._idle_since + limits.idle_timeout_s
        if now >= deadline:
            self.conn.close()
            return
        self._arm(min(deadline, now + limits.header_timeout_s))


class _HeadTooLarge(Exception):
    """Raised inside a parser callback when a request head exceeds ``max_head_bytes``."""


def _path_of(target: bytes) -> bytes:
    """The path of an origin-form (``/p?q``) or absolute-form (``https://h/p``) target."""
    if target[:1] == b"/":
        end = target.find(b"?")
        return target if end < 0 else target[:end]
    if target == b"*":
        return target
    try:
        path = httptools.parse_url(target).path
    except httptools.HttpParserInvalidURLError:
        return target
    return path or b"/"
