"""The dispatcher against an in-memory exchange: what no real store can be made to do.

End-to-end tests (tests/e2e, tests/security) cover the dispatcher on both
transports; these cover what cannot be provoked from outside: a store whose
status probe raises, an empty list's trailers, a handler that raises
something that is not a KES error, a request past its deadline, and the
hand-built audit line. Streams failing part-way: test_dispatch_stream.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kes_server.api import create_api
from kes_server.api.call import NDJSON, Call, Reply
from kes_server.api.deadlines import Deadlines
from kes_server.api.router import Route, Router
from kes_server.api.state import ServerState
from kes_server.core.certs import new_identity
from kes_server.core.config import Config
from kes_server.core.identity import identity_of_pem
from kes_server.keystore.base import StoreError, StoreStatus
from kes_server.server import build_state
from kes_server.transport.exchange import Exchange, Headers, Peer

_CERT = new_identity("root", key_type="ecdsa")[1]
_DER = ssl.PEM_cert_to_DER_cert(_CERT.decode())
ROOT = identity_of_pem(_CERT)


class MemoryExchange(Exchange):
    """An exchange that records what the application sends."""

    def __init__(self, method: str, path: str, body: bytes = b"") -> None:
        peer = Peer("192.0.2.1", 4000, _DER, "http/1.1")
        super().__init__(method, path.encode(), path, [], peer, len(body))
        self._body = body
        self.status = 0
        self.headers_out: Headers = []
        self.sent: list[bytes] = []
        self.trailers: Headers | None = None
        self.trailer_names = b""
        self.ended = False

    @property
    def started(self) -> bool:
        return self.status != 0

    @property
    def closed(self) -> bool:
        return False

    def on_close(self, callback: Callable[[], None]) -> None:
        pass

    async def body(self, limit: int) -> bytes:
        return self._body

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        self.status, self.headers_out = status, headers
        self.sent.append(body)
        self.ended = True

    def start(self, status: int, headers: Headers, trailers: bytes = b"") -> None:
        self.status, self.headers_out, self.trailer_names = status, headers, trailers

    async def send(self, chunk: bytes) -> None:
        self.sent.append(chunk)

    def end(self, trailers: Headers | None = None) -> None:
        self.trailers = trailers
        self.ended = True

    def json(self) -> Any:
        return json.loads(b"".join(self.sent))


async def _state() -> ServerState:
    return await build_state(Config(root=ROOT), stdout=io.StringIO(), stderr=io.StringIO())


async def _serve(state: ServerState, exchange: Exchange) -> None:
    await create_api(state)(exchange)


async def test_a_store_status_failure_is_one_error_event() -> None:
    state = await _state()

    async def failing_status() -> StoreStatus:
        raise StoreError("etcd endpoints 10.0.0.1:2379 refused the connection")

    state.store.status = failing_status  # type: ignore[method-assign]
    sub = state.errors.subscribe()
    exchange = MemoryExchange("GET", "/v1/status")
    await _serve(state, exchange)
    assert exchange.status == 200
    assert exchange.json()["kms"] == {"state": "unreachable"}
    events = [json.loads(line) for line in await sub.next_batch()]
    assert len(events) == 1, events
    assert "failed to connect to key store" in events[0]["message"]


def _custom(handler: Callable[[Call], Any], pattern: str = "/test/*") -> Router:
    return Router((Route("GET", pattern, handler, 0, 10, empty_arg=True),))


async def _serve_with(state: ServerState, router: Router, exchange: Exchange) -> None:
    api = create_api(state)
    api.router = router
    await api(exchange)


async def test_a_successful_list_ends_with_status_200_and_an_empty_error() -> None:
    state = await _state()

    async def handler(call: Call) -> Reply:
        async def nothing() -> AsyncIterator[bytes]:
            return
            yield b""  # pragma: no cover

        return Reply(stream=nothing(), content_type=NDJSON, trailers=True)

    exchange = MemoryExchange("GET", "/test/x")
    await _serve_with(state, _custom(handler), exchange)
    assert (exchange.status, exchange.sent) == (200, [])
    assert exchange.trailers == [(b"Status", b"200"), (b"Error", b"")]


@pytest.mark.parametrize("streamed", [False, True], ids=["answer", "stream"])
async def test_an_internal_error_is_a_bare_500_and_one_error_event(streamed: bool) -> None:
    """Anything that is not a KES error, in a handler or a stream, is logged once and
    answered without detail (before: the trace path let it escape unanswered)."""
    state = await _state()
    sub = state.errors.subscribe()

    async def broken() -> AsyncIterator[bytes]:
        raise KeyError("internal detail: /var/lib/secret")
        yield b""  # pragma: no cover

    async def handler(call: Call) -> Reply:
        if streamed:
            return Reply(stream=broken(), content_type=NDJSON)
        raise KeyError("internal detail: /var/lib/secret")

    exchange = MemoryExchange("GET", "/test/x")
    await _serve_with(state, _custom(handler), exchange)
    assert exchange.status == 500
    assert exchange.json() == {"message": "internal server error"}
    events = await sub.next_batch()
    assert len(events) == 1 and b"internal error on GET /test/x" in events[0]


async def test_a_request_past_its_deadline_gets_503(monkeypatch: pytest.MonkeyPatch) -> None:
    state = await _state()
    monkeypatch.setattr("kes_server.api.deadlines.TICK_S", 0.01)

    async def slow(call: Call) -> Reply:
        await asyncio.sleep(30)
        return Reply()

    router = Router((Route("GET", "/slow", slow, 0, 0.05),))
    exchange = MemoryExchange("GET", "/slow")
    await asyncio.wait_for(_serve_with(state, router, exchange), 5)
    assert (exchange.status, exchange.json()) == (503, {"message": "request timeout exceeded"})
    # The deadline's cancellation was taken back: the task is not left cancelled.
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_deadlines_leave_other_cancellations_alone() -> None:
    deadlines = Deadlines()

    async def work() -> None:
        deadline = deadlines.add(60)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            assert not Deadlines.timed_out(deadline)
            raise
        finally:
            deadlines.remove(deadline)

    task = asyncio.create_task(work())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_audit_event_is_the_json_of_its_fields() -> None:
    """The audit line is built by hand on the request path: it must be exactly what
    ``json.dumps`` writes for the event, odd characters in the path included."""
    state = await _state()
    sub = state.audit.subscribe()
    path = '/v1/key/create/a"b\\\\c\u00e9\u2028\x01'
    await _serve(state, MemoryExchange("POST", path))
    (line,) = await sub.next_batch()
    event = json.loads(line)
    assert event["request"] == {
        "ip": "192.0.2.1",
        "method": "POST",
        "path": path,
        "identity": ROOT,
    }
    assert event["response"]["code"] == 400
    assert line == json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
