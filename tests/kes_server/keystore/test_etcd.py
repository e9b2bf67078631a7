"""The etcd store without etcd: the JSON it sends, how it reads answers, and failover.

The request builders and parsers are pure functions, checked against the
gateway's wire conventions recorded in ../shared/infra/etcd/README.md (base64
keys, int64 as strings, omitted zero values). Failover and deadlines are
checked against tiny fake gateways on loopback, which can do what a real etcd
only does under failure: refuse, stay silent, answer 503, drop connections.
The same store against a real etcd cluster: tests/e2e/test_etcd_store.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from kes_server.core.config import load_config
from kes_server.keystore.base import Namespace, StoreError, StoreUnreachable
from kes_server.keystore.etcd import (
    Endpoint,
    EtcdError,
    EtcdStore,
    EtcdUnavailable,
    HTTPProtocolError,
    build_http_request,
    create_txn,
    entry_key,
    list_request,
    parse_created,
    parse_deleted,
    parse_endpoint,
    parse_list,
    parse_value,
    prefix_end,
    read_http_response,
)
from kes_server.server import StartupError, open_store
from tests.support.server import free_port


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------------- requests


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        (b"kes/keys/", b"kes/keys0"),
        (b"a", b"b"),
        (b"a\xff", b"b"),
        (b"a\xff\xff", b"b"),
        (b"\xff\xff", b"\0"),
        (b"", b"\0"),
    ],
)
def test_prefix_end_follows_etcds_rule(prefix: bytes, end: bytes) -> None:
    assert prefix_end(prefix) == end


def test_entry_keys_are_namespaced_under_the_prefix() -> None:
    assert entry_key(b"kes/", Namespace.KEYS, "my-key") == b"kes/keys/my-key"
    assert entry_key(b"team-a/", Namespace.POLICIES, "p") == b"team-a/policies/p"
    assert entry_key(b"kes/", Namespace.IDENTITIES, "ab12") == b"kes/identities/ab12"
    with pytest.raises(StoreError):
        entry_key(b"kes/", Namespace.KEYS, "")


def test_create_is_a_txn_on_create_revision_zero() -> None:
    body = create_txn(b"kes/keys/k", b"value")
    key = b64(b"kes/keys/k")
    assert body == {
        "compare": [{"key": key, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
        "success": [{"request_put": {"key": key, "value": b64(b"value")}}],
        "failure": [{"request_range": {"key": key}}],
    }


def test_list_request_pages_by_key_and_pins_the_revision() -> None:
    first = list_request(b"kes/keys/", limit=2)
    assert first == {
        "key": b64(b"kes/keys/"),
        "range_end": b64(b"kes/keys0"),
        "keys_only": True,
        "limit": "2",
    }
    later = list_request(b"kes/keys/", limit=2, start=b"kes/keys/b\0", revision=42)
    assert later["key"] == b64(b"kes/keys/b\0")
    assert later["range_end"] == first["range_end"]
    assert later["revision"] == "42"


# ---------------------------------------------------------------------- answers


def test_missing_key_has_no_kvs() -> None:
    assert parse_value({"header": {"revision": "7"}}) is None
    assert parse_value({"kvs": [{"key": b64(b"k"), "value": b64(b"v")}], "count": "1"}) == b"v"
    # A zero value (empty bytes) is omitted too: present but empty.
    assert parse_value({"kvs": [{"key": b64(b"k")}], "count": "1"}) == b""


def test_created_when_succeeded_or_when_the_value_is_our_own() -> None:
    assert parse_created({"succeeded": True}, b"mine")
    theirs = {"responses": [{"response_range": {"kvs": [{"value": b64(b"theirs")}]}}]}
    assert not parse_created(theirs, b"mine")
    # An earlier attempt of ours was applied although it timed out: still ours.
    ours = {"responses": [{"response_range": {"kvs": [{"value": b64(b"mine")}]}}]}
    assert parse_created(ours, b"mine")
    # A failed txn has no "succeeded" field at all.
    assert not parse_created({"header": {}}, b"mine")


def test_deleted_count_is_omitted_when_zero() -> None:
    assert parse_deleted({"deleted": "1"})
    assert not parse_deleted({"header": {"revision": "3"}})


def test_list_page_names_continuation_and_revision() -> None:
    page = {
        "header": {"revision": "9"},
        "kvs": [{"key": b64(b"kes/keys/a")}, {"key": b64(b"kes/keys/b")}],
        "more": True,
        "count": "5",
    }
    names, start, revision = parse_list(page, b"kes/keys/")
    assert names == ["a", "b"]
    assert start == b"kes/keys/b\0"
    assert revision == 9
    names, start, _ = parse_list({"header": {"revision": "9"}}, b"kes/keys/")
    assert (names, start) == ([], None)


@pytest.mark.parametrize(
    "doc",
    [{"kvs": "nope"}, {"kvs": [1]}, {"kvs": [{"value": "***"}]}, {"kvs": [{"value": 5}]}],
)
def test_malformed_answers_are_store_errors(doc: dict[str, Any]) -> None:
    with pytest.raises(StoreError, match="malformed"):
        parse_value(doc)


def test_etcd_errors_and_which_are_worth_another_member() -> None:
    no_leader = EtcdError.from_response(503, b'{"error":"etcdserver: request timed out","code":14}')
    assert no_leader.retryable and no_leader.code == 14
    assert "request timed out" in str(no_leader)
    deadline = EtcdError.from_response(500, b'{"error":"context deadline exceeded","code":2}')
    assert deadline.retryable
    bad = EtcdError.from_response(400, b'{"error":"bad base64","code":3}')
    assert not bad.retryable
    plain = EtcdError.from_response(404, b"404 page not found\n")
    assert plain.message == "404 page not found" and not plain.retryable


# ---------------------------------------------------------------------- endpoints and HTTP


def test_endpoints() -> None:
    assert parse_endpoint("http://127.0.0.1:2379") == Endpoint("http", "127.0.0.1", 2379)
    assert parse_endpoint("10.0.0.1:23790") == Endpoint("http", "10.0.0.1", 23790)
    assert parse_endpoint("etcd-0:2379", tls=True) == Endpoint("https", "etcd-0", 2379)
    assert parse_endpoint("https://etcd-0").port == 2379
    assert parse_endpoint("http://[::1]:2379").url == "http://[::1]:2379"
    for bad in ["ftp://x:1", "http://", "http://x:1/v3", "http://x:1?a=b"]:
        with pytest.raises(ValueError):
            parse_endpoint(bad)


def test_http_request_bytes() -> None:
    raw = build_http_request(Endpoint("http", "127.0.0.1", 2379), "/v3/kv/range", b'{"a":1}')
    assert raw == (
        b"POST /v3/kv/range HTTP/1.1\r\nHost: 127.0.0.1:2379\r\n"
        b"Content-Type: application/json\r\nAccept: application/json\r\n"
        b'Content-Length: 7\r\n\r\n{"a":1}'
    )


def _reader(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def test_http_response_with_content_length_keeps_alive() -> None:
    reader = _reader(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 ...", eof=False)
    assert await read_http_response(reader) == (200, b"{}", True)


async def test_http_response_chunked_with_extensions_and_trailers() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'3;ext=1\r\n{"a\r\n4\r\n":1}\r\n0\r\nX-Trailer: y\r\n\r\n'
    )
    assert await read_http_response(_reader(raw)) == (200, b'{"a":1}', True)


async def test_http_response_close_and_http10_are_not_reused() -> None:
    closing = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    assert await read_http_response(_reader(closing)) == (503, b"", False)
    old = b"HTTP/1.0 200 OK\r\n\r\nbody until close"
    assert await read_http_response(_reader(old)) == (200, b"body until close", False)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
    ],
)
async def test_broken_http_responses(raw: bytes) -> None:
    with pytest.raises(HTTPProtocolError):
        await read_http_response(_reader(raw))


# ---------------------------------------------------------------------- configuration


def test_open_store_builds_an_etcd_store_without_connecting() -> None:
    cfg = load_config(
        "root: _\nkeystore:\n  etcd:\n    endpoints: [http://127.0.0.1:1, '127.0.0.1:2']\n"
        "    prefix: team-a/\n    timeout: 1500ms\n"
    )
    store = open_store(cfg)
    assert isinstance(store, EtcdStore)
    assert store.kind == "etcd"
    assert [e.url for e in store.endpoints] == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert store.prefix == b"team-a/" and store.timeout_s == 1.5
    assert "team-a/" in store.location


def test_open_store_reports_bad_tls_files(tmp_path: Path) -> None:
    cfg = load_config(
        "root: _\nkeystore:\n  etcd:\n    endpoints: [https://127.0.0.1:1]\n"
        f"    tls: {{ca: {tmp_path / 'missing.pem'}}}\n"
    )
    with pytest.raises(StartupError, match="keystore.etcd"):
        open_store(cfg)
    half = load_config(
        "root: _\nkeystore:\n  etcd:\n    endpoints: [https://127.0.0.1:1]\n"
        f"    tls: {{cert: {tmp_path / 'c.pem'}}}\n"
    )
    with pytest.raises(StartupError, match="together"):
        open_store(half)


# ---------------------------------------------------------------------- fake gateways

Handler = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]] | None]


class FakeGateway:
    """Answers ``POST`` requests with ``handler(path, json)``; None = stay silent.

    ``close_after`` drops the connection after every answer (without saying
    ``Connection: close``), like a server timing out idle keep-alive connections.
    """

    def __init__(self, handler: Handler, *, close_after: bool = False) -> None:
        self.handler = handler
        self.close_after = close_after
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.connections = 0
        #: Set at teardown: silent handlers end instead of being cancelled.
        self.release = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                path = lines[0].split(" ")[1]
                sizes = [x for x in lines if x.lower().startswith("content-length:")]
                length = int(sizes[0].split(":")[1])
                body = json.loads(await reader.readexactly(length))
                self.requests.append((path, body))
                answer = self.handler(path, body)
                if answer is None:
                    await self.release.wait()
                    return
                status, doc = answer
                data = json.dumps(doc).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data
                )
                await writer.drain()
                if self.close_after:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def fake_gateway(handler: Handler, **kwargs: bool) -> AsyncIterator[FakeGateway]:
    gateway = FakeGateway(handler, **kwargs)
    gateway.server = await asyncio.start_server(gateway._serve, "127.0.0.1", 0)
    gateway.port = gateway.server.sockets[0].getsockname()[1]
    try:
        yield gateway
    finally:
        gateway.release.set()
        gateway.server.close()
        await asyncio.sleep(0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(gateway.server.wait_closed(), 1)


def _ok(_path: str, _body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, {"header": {"revision": "1"}, "succeeded": True}


def _silent(_path: str, _body: dict[str, Any]) -> None:
    return None


def _no_leader(_path: str, _body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 503, {"error": "etcdserver: no leader", "code": 14}


async def test_a_dead_endpoint_is_skipped_and_the_live_one_preferred() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with fake_gateway(_ok) as live:
        store = EtcdStore([dead, live.url], timeout_s=2)
        try:
            started = time.monotonic()
            assert await store.create(Namespace.KEYS, "k", b"v")
            assert time.monotonic() - started < 1
            assert live.requests[0][0] == "/v3/kv/txn"
            assert store._preferred == 1
            await store.put(Namespace.POLICIES, "p", b"{}")
            assert live.connections == 1  # keep-alive
        finally:
            await store.close()


async def test_no_leader_answers_are_retried_on_the_next_member() -> None:
    async with fake_gateway(_no_leader) as sick, fake_gateway(_ok) as healthy:
        store = EtcdStore([sick.url, healthy.url], timeout_s=2)
        try:
            await store.put(Namespace.KEYS, "k", b"v")
            assert len(sick.requests) == 1 and len(healthy.requests) == 1
        finally:
            await store.close()


async def test_a_silent_member_gets_only_a_share_of_the_deadline() -> None:
    async with fake_gateway(_silent) as silent, fake_gateway(_ok) as healthy:
        store = EtcdStore([silent.url, healthy.url], timeout_s=1.0)
        store.min_attempt_s = 0.1
        try:
            started = time.monotonic()
            await store.put(Namespace.KEYS, "k", b"v")
            assert 0.4 < time.monotonic() - started < 0.9
        finally:
            await store.close()


async def test_never_longer_than_the_timeout_then_unreachable() -> None:
    async with fake_gateway(_silent) as silent, fake_gateway(_no_leader) as sick:
        dead = f"http://127.0.0.1:{free_port()}"
        store = EtcdStore([dead, silent.url, sick.url], timeout_s=0.6)
        store.min_attempt_s = 0.1
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnreachable, match=r"within 0.6s") as info:
                await store.get(Namespace.KEYS, "k")
            assert time.monotonic() - started < 0.6 + 0.2
            message = str(info.value)
            assert "connection refused" in message and "no leader" in message
            assert isinstance(info.value, EtcdUnavailable) and info.value.answered
            assert (await store.status()).state == "reachable"
        finally:
            await store.close()


async def test_nothing_listening_fails_fast_and_is_unreachable() -> None:
    store = EtcdStore([f"http://127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"], timeout_s=5)
    started = time.monotonic()
    with pytest.raises(StoreUnreachable, match="connection refused"):
        await store.list(Namespace.KEYS)
    assert time.monotonic() - started < 1
    assert (await store.status()).state == "unreachable"


async def test_other_etcd_errors_are_plain_store_errors() -> None:
    def bad_request(_path: str, _body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 400, {"error": "etcdserver: key is not provided", "code": 3}

    async with fake_gateway(bad_request) as gateway:
        store = EtcdStore([gateway.url], timeout_s=2)
        with pytest.raises(StoreError, match="key is not provided") as info:
            await store.delete(Namespace.KEYS, "k")
        assert not isinstance(info.value, StoreUnreachable)
        await store.close()


async def test_a_connection_closed_while_idle_is_replaced_transparently() -> None:
    async with fake_gateway(_ok, close_after=True) as gateway:
        store = EtcdStore([gateway.url], timeout_s=2)
        try:
            for _ in range(3):
                await store.put(Namespace.KEYS, "k", b"v")
                await asyncio.sleep(0.01)  # let the close arrive
            assert gateway.connections == 3
            assert len(gateway.requests) == 3
        finally:
            await store.close()


async def test_list_follows_pages_at_one_revision() -> None:
    names = [f"k{i:02d}" for i in range(5)]

    def pages(_path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        start = base64.b64decode(body["key"])
        rest = [n for n in names if b"kes/keys/" + n.encode() >= start]
        limit = int(body["limit"])
        page = rest[:limit]
        doc: dict[str, Any] = {
            "header": {"revision": "77"},
            "kvs": [{"key": b64(b"kes/keys/" + n.encode())} for n in page],
        }
        if len(rest) > limit:
            doc["more"] = True
        return 200, doc

    async with fake_gateway(pages) as gateway:
        store = EtcdStore([gateway.url], timeout_s=2, page_size=2)
        try:
            assert await store.list(Namespace.KEYS) == names
            bodies = [b for _, b in gateway.requests]
            assert len(bodies) == 3
            assert "revision" not in bodies[0]
            assert bodies[1]["revision"] == bodies[2]["revision"] == "77"
            assert all(b["keys_only"] is True for b in bodies)
        finally:
            await store.close()
