"""``Client`` and ``AsyncClient`` over ``httpx.MockTransport``: same surface, same results.

Only non-streaming calls are tested here; MockTransport buffers whole
responses, so traces are tested against a real server (test_e2e_sdk.py).
"""

from __future__ import annotations

import base64
import inspect
import json

import httpx
import pytest

from kes_client import (
    AsyncClient,
    Client,
    ConnectError,
    KeyExists,
    KeyInfo,
    KeyNotFound,
    Policy,
    ProtocolError,
    TransportError,
    TransportTimeout,
)


def handler(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/v1/key/create/taken":
        return httpx.Response(400, json={"message": "key does already exist"})
    if path == "/v1/key/list/*":
        return httpx.Response(200, content=b'{"name":"a"}\n{"name":"b"}\n')
    if path.startswith("/v1/key/encrypt/"):
        body = json.loads(request.content)
        return httpx.Response(200, json={"ciphertext": body["plaintext"]})
    if path == "/v1/policy/read/p":
        return httpx.Response(200, json={"allow": ["/v1/*"], "deny": []})
    if path == "/version":
        return httpx.Response(200, json={"version": "v0.17.6"})
    return httpx.Response(404, json={"message": "key does not exist"})


def test_sync_client() -> None:
    with Client("kes.test:7373", transport=httpx.MockTransport(handler)) as client:
        assert client.server == "https://kes.test:7373"
        assert client.version() == "v0.17.6"
        assert client.list_keys() == [KeyInfo("a"), KeyInfo("b")]
        assert client.encrypt("k", b"hello") == b"hello"
        assert client.read_policy("p") == Policy(allow=("/v1/*",))
        with pytest.raises(KeyExists, match="key does already exist"):
            client.create_key("taken")
        with pytest.raises(KeyNotFound):
            client.delete_key("nope")


async def test_async_client() -> None:
    async with AsyncClient("kes.test:7373", transport=httpx.MockTransport(handler)) as client:
        assert await client.version() == "v0.17.6"
        assert await client.list_keys() == [KeyInfo("a"), KeyInfo("b")]
        assert await client.encrypt("k", b"hello") == b"hello"
        with pytest.raises(KeyExists):
            await client.create_key("taken")


def test_sync_and_async_have_the_same_methods() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    sync, async_ = public(Client), public(AsyncClient)
    assert set(sync) - {"close"} == set(async_) - {"aclose"}
    for name, signature in sync.items():
        if name == "close":
            continue
        assert list(signature.parameters) == list(async_[name].parameters), name
        is_stream = name.startswith("trace_")
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)) is not is_stream


def test_transport_failures_are_translated() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with Client(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(ConnectError, match="cannot connect to https://127.0.0.1:7373"):
            client.status()
    with Client(transport=httpx.MockTransport(slow)) as client:
        with pytest.raises(TransportTimeout):
            client.status()


def test_requests_carry_base64_bodies() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with Client(transport=httpx.MockTransport(record)) as client:
        client.import_key("k", b"\x01" * 32)
    assert json.loads(seen[0].content) == {"bytes": base64.b64encode(b"\x01" * 32).decode()}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("peer closed connection without sending complete message body", TransportError),
        ("illegal header line", ProtocolError),
    ],
)
def test_server_going_away_is_not_a_protocol_error(
    message: str, expected: type[TransportError]
) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError(message, request=request)

    with Client(transport=httpx.MockTransport(broken)) as client:
        with pytest.raises(TransportError) as info:
            client.status()
    assert type(info.value) is expected
