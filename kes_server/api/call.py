"""What a route handler gets (``Call``) and gives back (``Reply``).

Handlers are plain ``async def handler(call) -> Reply`` functions with no
transport or framework in sight: the dispatcher (``dispatch.py``) has already
identified and authorised the caller, and it turns the reply into bytes on
whichever transport the request came in on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kes_server.api.state import ServerState
from kes_server.api.wire import parse_json
from kes_server.core.errors import InvalidArgument
from kes_server.transport.exchange import BodyTooLarge, Exchange

if TYPE_CHECKING:
    from kes_server.api.router import Route

__all__ = [
    "JSON",
    "NDJSON",
    "Call",
    "Reply",
    "RouteHandler",
    "json_reply",
    "ndjson_reply",
    "ok",
]

JSON = b"application/json"
NDJSON = b"application/x-ndjson"
#: Streamed lists are written in pieces of about this size.
_BATCH = 64 * 1024


@dataclass(slots=True)
class Reply:
    """A handler's answer: a complete body, or a stream (lists, traces)."""

    status: int = 200
    body: bytes = b""
    #: None: no Content-Type (KES sends none with its empty 200 answers).
    content_type: bytes | None = None
    stream: AsyncIterator[bytes] | None = None
    #: Declare and send KES v0.17's ``Status``/``Error`` list trailers.
    trailers: bool = False
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(slots=True)
class Call:
    """One authorised request, as a handler sees it."""

    state: ServerState
    exchange: Exchange
    route: Route
    #: The route's path arguments (a name, a pattern, a policy and an identity).
    args: tuple[str, ...]
    #: The caller's identity (of the client a TLS proxy forwarded, if any).
    identity: str

    async def json(self, *, required: bool = True) -> Any:
        """The body as a JSON document; 400 ``invalid json`` when it is not one.

        A body over the route's limit is ``invalid json`` too, as in KES: Go
        reads at most the limit and the decoder fails on what it got (a body
        declared larger is refused without reading it).
        """
        try:
            data = await self.exchange.body(self.route.max_body)
        except BodyTooLarge:
            raise InvalidArgument("invalid json") from None
        return parse_json(data, required=required)


RouteHandler = Callable[[Call], Awaitable[Reply]]


def ok() -> Reply:
    """200 with an empty body and no content type, as KES answers create/delete/..."""
    return Reply()


def json_reply(body: object) -> Reply:
    return Reply(body=json.dumps(body, separators=(",", ":")).encode(), content_type=JSON)


def ndjson_reply(lines: Iterable[bytes]) -> Reply:
    """A v0.17 list: NDJSON lines with the ``Status``/``Error`` trailers."""
    return Reply(stream=_batched(lines), content_type=NDJSON, trailers=True)


async def _batched(lines: Iterable[bytes]) -> AsyncIterator[bytes]:
    batch: list[bytes] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= _BATCH:
            yield b"".join(batch)
            batch, size = [], 0
    if batch:
        yield b"".join(batch)
