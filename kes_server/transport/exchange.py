"""The seam between a transport (HTTP/1.1 or HTTP/2) and the application.

A transport turns bytes into ``Exchange`` objects, one per request, and hands
each to the application, an ``async def handler(exchange)``. The application
answers through the exchange: ``respond`` for a complete answer (one write),
or ``start``/``send``/``end`` for a stream (NDJSON lists with their
``Status``/``Error`` trailers, live traces). Nothing here knows about KES: the
same two transports could carry any API, and the application never sees
which one is in use (the parity tests rely on that).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["BodyTooLarge", "ClientGone", "Exchange", "Handler", "Headers", "Peer", "decode_path"]

#: Header lists as they travel: names in lower case, both parts bytes.
Headers = list[tuple[bytes, bytes]]


class BodyTooLarge(Exception):
    """The request body is (or is declared) larger than the caller's limit."""


class ClientGone(Exception):
    """The client went away (or reset the stream) before the exchange was over."""


@dataclass(slots=True)
class Peer:
    """Facts about the TLS connection a request arrived on (fixed per connection)."""

    ip: str
    port: int
    #: The client certificate (DER) as presented, verified or not (``--auth off``).
    cert_der: bytes | None
    #: "h2" or "http/1.1".
    alpn: str
    #: A slot for the application's per-connection facts (e.g. the hashed identity),
    #: so work that depends only on the certificate is done once per connection.
    app_state: object = None


def decode_path(raw: bytes) -> str:
    """A request target's path, percent-decoded as Go's ``URL.Path`` is.

    Invalid escapes are kept literally and invalid UTF-8 becomes U+FFFD, so a
    broken name reaches the name rules (and their 400) instead of failing here.
    """
    text = raw.decode("latin-1")
    if "%" not in text:
        return text if text.isascii() else raw.decode("utf-8", "replace")
    return unquote(text, errors="replace")


class Exchange(abc.ABC):
    """One request and its answer. Transports subclass it; see the module docstring.

    The request body and the "client went away" signal work the same on both
    protocols and live here: the transport calls ``feed``/``complete`` as body
    bytes arrive and ``gone`` when the connection or stream ends; the
    application awaits ``body``. Subclasses write the answer.
    """

    __slots__ = (
        "_chunks",
        "_complete",
        "_gone",
        "_limit",
        "_over",
        "_size",
        "_started",
        "_waiter",
        "content_length",
        "headers",
        "method",
        "path",
        "peer",
        "target",
        "upgrade",
    )

    def __init__(
        self,
        method: str,
        target: bytes,
        path: str,
        headers: Headers,
        peer: Peer,
        content_length: int | None,
        upgrade: bool = False,
    ) -> None:
        self.method = method
        #: The request target as sent (only for diagnostics; route on ``path``).
        self.target = target
        #: The decoded path of the target (an absolute-form target's path too).
        self.path = path
        self.headers = headers
        self.peer = peer
        #: The declared body length; None when unknown (chunked, or an h2 stream without one).
        self.content_length = content_length
        #: The client asked to switch protocols (``Upgrade``): never honoured.
        self.upgrade = upgrade
        self._chunks: list[bytes] = []
        self._size = 0
        self._complete = False
        #: More body than anyone will read: it is dropped, and ``body`` refuses it.
        self._over = False
        self._limit: int | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._started = False
        self._gone: list[Callable[[], None]] | None = []

    # ------------------------------------------------------------------ transport side
    def feed(self, data: bytes) -> None:
        """Body bytes arrived."""
        self._size += len(data)
        limit = self._limit
        if self._over or (limit is not None and self._size > limit):
            self._drop()
            return
        self._chunks.append(data)
        if limit is None:
            self._unclaimed()

    def _drop(self) -> None:
        self._over = True
        self._chunks.clear()
        self._wake()

    def _unclaimed(self) -> None:  # noqa: B027 - optional hook
        """Called as body bytes arrive before the application asked for the body."""

    def complete(self) -> None:
        """The body is all there."""
        self._complete = True
        self._wake()

    def gone(self) -> None:
        """The client went away (or the stream was reset): wake and tell whoever waits."""
        callbacks, self._gone = self._gone, None
        self._wake()
        for callback in callbacks or ():
            callback()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter

    @property
    def body_complete(self) -> bool:
        return self._complete

    # ------------------------------------------------------------------ application side
    @property
    def started(self) -> bool:
        """Whether the status line has been sent (a second answer is impossible)."""
        return self._started

    @property
    def closed(self) -> bool:
        """The client went away (connection lost, stream reset) or the server is stopping."""
        return self._gone is None

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when ``closed`` becomes true (at once if it is)."""
        if self._gone is None:
            callback()
        else:
            self._gone.append(callback)

    async def body(self, limit: int) -> bytes:
        """The whole request body; raises ``BodyTooLarge`` beyond ``limit`` bytes.

        A declared length over the limit is refused before any byte is read;
        ``ClientGone`` when the client leaves before the body is complete.
        """
        if self.content_length is not None and self.content_length > limit:
            raise BodyTooLarge()
        self._limit = limit
        if self._size > limit:
            self._over = True
        if not self._complete and not self._over:
            self._body_wanted()
            while not self._complete and not self._over:
                if self._gone is None:
                    raise ClientGone()
                await self._wait()
        if self._over:
            raise BodyTooLarge()
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _body_wanted(self) -> None:  # noqa: B027 - optional hook
        """Called once when the application waits for a body still on its way."""

    @abc.abstractmethod
    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        """Send a complete answer (``content-length`` is added)."""

    @abc.abstractmethod
    def start(self, status: int, headers: Headers, trailers: bytes = b"") -> None:
        """Start a streamed answer; ``trailers`` names the trailer fields to come."""

    @abc.abstractmethod
    async def send(self, chunk: bytes) -> None:
        """Send part of a streamed body, waiting while the client reads slowly."""

    @abc.abstractmethod
    def end(self, trailers: Headers | None = None) -> None:
        """Finish a streamed answer, with trailer fields if ``start`` announced them."""


#: The application: answers one exchange (and never raises for a bad request).
Handler = Callable[[Exchange], Awaitable[None]]
