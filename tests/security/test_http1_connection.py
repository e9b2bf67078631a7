"""The HTTP/1.1 connection rules a client can observe, on a raw TLS socket.

kes-server's HTTP/1.1 (kes_server/transport/http1.py) follows Go's net/http
where KES relies on it: keep-alive by default, pipelined requests answered in
order, an answer sent before the body was read keeps the connection only if
the rest of the body is small enough to read and drop, a refused body gets an
answer the client can read (no reset), ``Expect: 100-continue``, HTTP/1.0,
an oversized head, and protocol upgrades that are refused, never performed.
Everything here is HTTP/1.1 wire format, so it has no HTTP/2 twin; the HTTP/2
counterparts (an early answer resets only its stream) are in test_http2.py.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from kes_server.transport.server import Limits
from tests.support.rawhttp import RawResponse, open_tls, read_response
from tests.support.server import ClientIdentity, RunningServer, start_server
from tests.support.trace import LiveTrace

pytestmark = pytest.mark.e2e

LIMITS = Limits()
KEY = "h1-key"
POLICY = "h1-generate-only"
DENIED = (403, b'{"message":"prohibited by policy"}')


@dataclass(frozen=True)
class Clients:
    root: ClientIdentity
    #: Bound to a policy that allows generate only.
    limited: ClientIdentity
    #: Known to no policy: denied everything but /version.
    stranger: ClientIdentity


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("http1")) as srv:
        yield srv


@pytest.fixture(scope="module")
def clients(server: RunningServer) -> Clients:
    limited = server.new_client("limited")
    with server.client() as root:
        root.post(f"/v1/key/create/{KEY}").raise_for_status()
        policy = {"allow": [f"/v1/key/generate/{KEY}"]}
        root.post(f"/v1/policy/write/{POLICY}", json=policy).raise_for_status()
        root.post(f"/v1/identity/assign/{POLICY}/{limited.identity}").raise_for_status()
    return Clients(server.root, limited, server.new_client("stranger"))


def _connect(server: RunningServer, who: ClientIdentity | None = None) -> ssl.SSLSocket:
    return open_tls(server.port, server.ssl_context(who))


def _request(method: str, target: str, body: bytes = b"", *extra: str) -> bytes:
    """A request's bytes; ``Content-Length`` is added unless ``extra`` frames the body."""
    head = [f"{method} {target} HTTP/1.1", "Host: localhost", *extra]
    framed = any(h.lower().startswith(("content-length:", "transfer-encoding:")) for h in extra)
    if not framed and (body or method == "POST"):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _closed_by_server(sock: ssl.SSLSocket, buffer: bytes | bytearray = b"") -> bytes:
    """Everything the server still sends before it closes the connection cleanly.

    A reset (rather than close_notify or FIN) would fail here: it can destroy
    an answer before the client has read it.
    """
    rest = bytes(buffer)
    while chunk := sock.recv(65536):
        rest += chunk
    return rest


def _kept(sock: ssl.SSLSocket, buffer: bytearray) -> None:
    """The connection still serves requests."""
    sock.sendall(_request("GET", "/version"))
    answer = read_response(sock, buffer=buffer)
    assert answer.status == 200 and "connection" not in answer.headers


def _is_json_error(answer: RawResponse, expected: tuple[int, bytes]) -> None:
    assert (answer.status, answer.body) == expected
    assert answer.content_type == "application/json; charset=utf-8"


# --------------------------------------------------------------------------- keep-alive


def test_keep_alive_across_many_requests(server: RunningServer, clients: Clients) -> None:
    """One connection, 120 requests of every kind; complete answers carry a length."""
    buffer = bytearray()
    with _connect(server) as sock:
        for i in range(30):
            sock.sendall(_request("POST", f"/v1/key/generate/{KEY}", b"{}"))
            made = read_response(sock, buffer=buffer)
            assert made.status == 200 and set(json.loads(made.body)) == {"plaintext", "ciphertext"}
            # A complete answer is sent with its length, never chunked.
            assert made.headers["content-length"] == str(len(made.body))
            assert "transfer-encoding" not in made.headers
            sock.sendall(_request("GET", f"/nope/{i}"))
            assert read_response(sock, buffer=buffer).status == 404
            sock.sendall(_request("GET", f"/v1/key/create/{KEY}"))
            assert read_response(sock, buffer=buffer).status == 405
            sock.sendall(_request("GET", "/v1/key/list/h1-*"))
            listed = read_response(sock, buffer=buffer)
            # A streamed list is chunked, with its trailers.
            assert listed.headers["transfer-encoding"] == "chunked"
            assert listed.body == b'{"name":"h1-key"}\n' and listed.trailers["status"] == "200"
            for answer in (made, listed):
                assert "connection" not in answer.headers
        _kept(sock, buffer)


def test_pipelined_requests_are_answered_in_order(server: RunningServer, clients: Clients) -> None:
    """Several requests in one write: each answered, in the order sent."""
    batch = [
        _request("GET", "/version"),
        _request("POST", f"/v1/key/generate/{KEY}", b'{"context":"YQ=="}'),
        _request("GET", "/nope"),
        _request("POST", "/v1/key/create/a%2Fb"),
        _request("GET", "/v1/key/list/h1-*"),
        _request("DELETE", "/v1/status"),
        _request("POST", f"/v1/key/encrypt/{KEY}", b'{"plaintext":"aGk="}'),
    ]
    buffer = bytearray()
    with _connect(server) as sock:
        sock.sendall(b"".join(batch))
        answers = [read_response(sock, buffer=buffer) for _ in batch]
        assert [a.status for a in answers] == [200, 200, 404, 400, 200, 405, 200]
        assert answers[0].body == b'{"version":"v0.1.0"}'
        assert set(json.loads(answers[1].body)) == {"plaintext", "ciphertext"}
        assert answers[2].body == b"404 page not found\n"
        assert b"does not match API pattern" in answers[3].body
        assert answers[4].body == b'{"name":"h1-key"}\n'
        assert answers[5].headers["accept"] == "GET"
        assert set(json.loads(answers[6].body)) == {"ciphertext"}
        # More than the transport queues at once: reading pauses and resumes, nothing is lost.
        many = LIMITS.max_pipelined * 4
        sock.sendall(_request("GET", "/version") * many)
        assert [read_response(sock, buffer=buffer).status for _ in range(many)] == [200] * many
        _kept(sock, buffer)


# --------------------------------------------------------------------------- early answers

#: A body over the route's limit, as KES answers it (it reads at most the limit).
TOO_LARGE = (400, b'{"message":"invalid json"}')

#: (client, target, answer) of requests refused before their body is read.
EARLY = {
    "policy-denial": ("limited", f"/v1/key/import/{KEY}-new", DENIED),
    "unknown-identity": ("stranger", f"/v1/key/import/{KEY}-new", DENIED),
    "bad-name": (
        "root",
        "/v1/key/import/a%2A",
        (400, b'{"message":"invalid argument: name contains invalid character"}'),
    ),
}


@pytest.mark.parametrize("case", sorted(EARLY))
def test_early_answer_keeps_the_connection_when_the_rest_is_small(
    server: RunningServer, clients: Clients, case: str
) -> None:
    """Answered from the head alone; up to the drain limit of body is read and dropped."""
    who, target, expected = EARLY[case]
    size = LIMITS.drain_limit
    buffer = bytearray()
    with _connect(server, getattr(clients, who)) as sock:
        sock.sendall(_request("POST", target, b"", f"Content-Length: {size}"))
        answer = read_response(sock, buffer=buffer)  # before a byte of the body was sent
        _is_json_error(answer, expected)
        assert "connection" not in answer.headers
        sock.sendall(b"{" * size)
        _kept(sock, buffer)


@pytest.mark.parametrize("framing", ["over-the-drain-limit", "chunked"])
def test_early_answer_closes_when_the_rest_is_large_or_unknown(
    server: RunningServer, clients: Clients, framing: str
) -> None:
    """More than the drain limit to come, or a chunked body of unknown size: say so, close."""
    length = (
        f"Content-Length: {LIMITS.drain_limit + 1}"
        if framing != "chunked"
        else "Transfer-Encoding: chunked"
    )
    head = f"POST /v1/key/import/{KEY}-new HTTP/1.1\r\nHost: localhost\r\n{length}\r\n\r\n"
    buffer = bytearray()
    with _connect(server, clients.limited) as sock:
        sock.sendall(head.encode())
        answer = read_response(sock, buffer=buffer)
        _is_json_error(answer, DENIED)
        assert answer.headers["connection"] == "close"
        sock.sendall(_request("GET", "/version"))  # not served: the connection is over
        assert _closed_by_server(sock, buffer) == b""


def test_declared_oversize_body_gets_a_readable_answer(server: RunningServer) -> None:
    """The refusal (KES's 400 invalid json) arrives, then a clean close, although the
    client kept sending its body."""
    head = (
        f"POST /v1/key/import/{KEY}-big HTTP/1.1\r\nHost: localhost\r\n"
        f"Content-Length: {1024 * 1024 + 1}\r\n\r\n"
    )
    buffer = bytearray()
    with _connect(server) as sock:
        sock.sendall(head.encode() + b"A" * (256 * 1024))
        answer = read_response(sock, buffer=buffer)
        _is_json_error(answer, TOO_LARGE)
        assert answer.headers["connection"] == "close"
        assert _closed_by_server(sock, buffer) == b""


def test_expect_100_continue(server: RunningServer, clients: Clients) -> None:
    """100 Continue only when the handler wants the body; a refusal skips it and closes."""
    expect = "Expect: 100-continue"
    buffer = bytearray()
    with _connect(server) as sock:
        sock.sendall(_request("POST", f"/v1/key/generate/{KEY}", b"", expect, "Content-Length: 2"))
        interim = read_response(sock, head=True, buffer=buffer)
        assert interim.status == 100
        sock.sendall(b"{}")
        answer = read_response(sock, buffer=buffer)
        assert answer.status == 200 and "connection" not in answer.headers
        _kept(sock, buffer)
    for who, target, length, expected in (
        (clients.stranger, f"/v1/key/generate/{KEY}", 2, DENIED),
        (clients.root, f"/v1/key/import/{KEY}-big", 1024 * 1024 + 1, None),
    ):
        buffer = bytearray()
        with _connect(server, who) as sock:
            sock.sendall(_request("POST", target, b"", expect, f"Content-Length: {length}"))
            answer = read_response(sock, buffer=buffer)  # no interim 100 before it
            _is_json_error(answer, expected or TOO_LARGE)
            assert answer.headers["connection"] == "close"
            assert _closed_by_server(sock, buffer) == b""


def test_http_1_0(server: RunningServer) -> None:
    """HTTP/1.0 closes after the answer unless it asks to stay; a list is not chunked."""
    with _connect(server) as sock:
        sock.sendall(b"GET /version HTTP/1.0\r\n\r\n")
        answer = read_response(sock)
        assert answer.status == 200 and answer.headers["connection"] == "close"
        assert answer.body == b'{"version":"v0.1.0"}'
        assert _closed_by_server(sock) == b""
    buffer = bytearray()
    with _connect(server) as sock:
        sock.sendall(b"GET /version HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert read_response(sock, buffer=buffer).status == 200
        sock.sendall(b"GET /v1/key/list/h1-* HTTP/1.0\r\n\r\n")
        listed = read_response(sock, buffer=buffer)  # no chunked coding: the body ends at EOF
        assert listed.status == 200 and "transfer-encoding" not in listed.headers
        assert listed.body == b'{"name":"h1-key"}\n' and listed.trailers == {}


def test_oversized_head_is_431(server: RunningServer) -> None:
    """The request line and headers together are bounded; the target counts too."""
    limit = LIMITS.max_head_bytes
    # Just under the limit, a long target reaches the API and its own rules.
    fits = "/v1/key/list/" + "a" * (limit - 200)
    answer = _one(server, _request("GET", fits))
    _is_json_error(answer, (400, b'{"message":"invalid argument: pattern is too long"}'))
    for request in (
        _request("GET", "/version", b"", "X-Big: " + "a" * limit),
        _request("GET", "/v1/key/list/" + "a" * limit),
    ):
        with _connect(server) as sock:
            sock.sendall(request)
            refused = read_response(sock)
            assert (refused.status, refused.body) == (431, b"")
            assert refused.headers["connection"] == "close"
            assert _closed_by_server(sock) == b""


def _one(server: RunningServer, request: bytes) -> RawResponse:
    with _connect(server) as sock:
        sock.sendall(request)
        return read_response(sock)


UPGRADES = {
    "h2c": (
        "/upgrade/h2c",
        ("Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__"),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ),
    "websocket": (
        "/v1/log/error/trace",
        (
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        ),
        b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",  # a masked "Hello" frame
    ),
}


@pytest.mark.parametrize("kind", sorted(UPGRADES))
def test_upgrade_is_refused_audited_and_never_performed(server: RunningServer, kind: str) -> None:
    """400 JSON, one audit event, then the connection ends: never a 101."""
    target, headers, follow_up = UPGRADES[kind]
    trace = LiveTrace.of(server)
    try:
        buffer = bytearray()
        with _connect(server) as sock:
            # The new protocol's first bytes right behind the request, as eager clients send.
            sock.sendall(_request("GET", target, b"", *headers) + follow_up)
            answer = read_response(sock, buffer=buffer)
            _is_json_error(answer, (400, b'{"message":"protocol upgrades are not supported"}'))
            assert answer.headers["connection"] == "close"
            assert "upgrade" not in answer.headers
            assert _closed_by_server(sock, buffer) == b""
        event = trace.next_event(lambda e: e["request"]["path"] == target, 2.0)
    finally:
        trace.close()
    assert event["response"]["code"] == 400
    assert event["request"]["identity"] == server.root_identity
