"""A streamed list that fails after its first line: the failure goes into the trailers.

KES v0.17 lists are NDJSON followed by the trailers ``Status`` and ``Error``
(API.md §2.11), so a client learns whether the list it read is complete. A
list that fails before its first line is a normal JSON error; after it, the
status line is out, and only the trailers can carry the failure. No store
fails half-way through a listing end to end (every store returns the whole
listing before the first line is written), so this is tested on the
dispatcher itself: a real server state and identifier, a route whose stream
fails, and an exchange that records what the transport was asked to send.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from kes_server.api.call import NDJSON, Call, Reply
from kes_server.api.dispatch import API
from kes_server.api.identify import Identifier
from kes_server.api.router import Route, Router
from kes_server.core.certs import new_identity
from kes_server.core.config import Config
from kes_server.core.errors import StoreUnavailable
from kes_server.core.identity import identity_of_pem
from kes_server.server import build_state
from kes_server.transport.exchange import Exchange, Headers, Peer

FIRST = b'{"name":"first"}\n'

Record = tuple[object, ...]


class RecordingExchange(Exchange):
    """What the dispatcher asks a transport to do, in order."""

    def __init__(self, path: str, peer: Peer) -> None:
        super().__init__("GET", path.encode(), path, [], peer, 0)
        self.calls: list[Record] = []
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    @property
    def closed(self) -> bool:
        return False

    def on_close(self, callback: Callable[[], None]) -> None:
        pass

    async def body(self, limit: int) -> bytes:
        return b""

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        self._started = True
        self.calls.append(("respond", status, body))

    def start(self, status: int, headers: Headers, trailers: bytes = b"") -> None:
        self._started = True
        self.calls.append(("start", status, dict(headers).get(b"Content-Type"), trailers))

    async def send(self, chunk: bytes) -> None:
        self.calls.append(("send", chunk))

    def end(self, trailers: Headers | None = None) -> None:
        self.calls.append(("end", trailers))


async def _fails_after_first(exc: BaseException) -> AsyncIterator[bytes]:
    yield FIRST
    raise exc


async def _fails_at_once(exc: BaseException) -> AsyncIterator[bytes]:
    raise exc
    yield b""  # pragma: no cover - makes this an async generator


async def _stalls_after_first() -> AsyncIterator[bytes]:
    yield FIRST
    await asyncio.sleep(3600)


STREAMS: dict[str, Callable[[], AsyncIterator[bytes]]] = {
    "store-error": lambda: _fails_after_first(StoreUnavailable("bad gateway: failed to list keys")),
    "internal": lambda: _fails_after_first(RuntimeError("disk on fire")),
    "before-first": lambda: _fails_at_once(StoreUnavailable("bad gateway: failed to list keys")),
    "timeout": _stalls_after_first,
}


async def _serve(name: str) -> tuple[list[Record], str]:
    """The calls of one ``GET /list/<name>`` as root, and the error log."""
    _key, cert_pem = new_identity("root", key_type="ecdsa")
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)
    errors = io.StringIO()
    state = await build_state(
        Config(root=identity_of_pem(cert_pem)), stdout=io.StringIO(), stderr=errors
    )

    async def handler(call: Call) -> Reply:
        return Reply(stream=STREAMS[call.args[0]](), content_type=NDJSON, trailers=True)

    router = Router((Route("GET", "/list/*", handler, 0, 0.2),))
    identifier = Identifier(proxies=frozenset(), header="", verify_forwarded=False)
    exchange = RecordingExchange(f"/list/{name}", Peer("127.0.0.1", 1, der, "h2"))
    await API(state, identifier, router)(exchange)
    return exchange.calls, errors.getvalue()


def _error(status: int, message: str) -> Headers:
    return [
        (b"Status", str(status).encode()),
        (b"Error", json.dumps({"message": message}, separators=(",", ":")).encode()),
    ]


@pytest.mark.parametrize(
    ("name", "trailers"),
    [
        ("store-error", _error(502, "bad gateway: failed to list keys")),
        ("internal", _error(500, "internal server error")),
        ("timeout", _error(503, "request timeout exceeded")),
    ],
)
async def test_a_failure_after_the_first_line_goes_into_the_trailers(
    name: str, trailers: Headers
) -> None:
    calls, errors = await _serve(name)
    assert calls == [
        ("start", 200, NDJSON, b"Status,Error"),
        ("send", FIRST),
        ("end", trailers),
    ]
    if name == "internal":  # logged for the operator, never sent to the client
        assert "http: internal error on GET /list/internal: RuntimeError: disk on fire" in errors


async def test_a_failure_before_the_first_line_is_a_plain_error() -> None:
    calls, _ = await _serve("before-first")
    assert calls == [("respond", 502, b'{"message":"bad gateway: failed to list keys"}')]
