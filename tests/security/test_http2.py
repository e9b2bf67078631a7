"""The HTTP/2 behaviour a client can observe, with a raw ``h2`` client (tests/support/rawh2.py).

HTTP/2 is what MinIO's KES client uses, and one connection carries many
requests at once, so the transport must keep one stream's trouble inside
that stream (kes_server/transport/http2.py):

* an answer sent before the request body is complete (policy denial, bad
  name, a declared body over the limit) is followed by ``RST_STREAM(NO_ERROR)``
  so the client stops sending; the connection, a trace stream on it included,
  carries on;
* the path is a header value, so bytes HTTP/1.1 refuses in its request line
  reach the name rules, and any method token is routed (405 if unknown);
* floods of PING/SETTINGS frames or of stream resets ("rapid reset") end the
  connection with GOAWAY ``ENHANCE_YOUR_CALM``, and nobody else notices.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import h2.errors
import h2.settings
import pytest
from hyperframe.frame import PingFrame

from kes_server.transport.server import Limits
from tests.support.rawh2 import H2Client, H2Response
from tests.support.server import ClientIdentity, RunningServer, start_server

pytestmark = pytest.mark.e2e

KEY = "h2-key"
TRACE = b"/v1/log/audit/trace"
DENIED = (403, b'{"message":"prohibited by policy"}')
TOO_LARGE = (400, b'{"message":"invalid json"}')  # as KES: it reads at most the limit
BAD_NAME = (400, b'{"message":"invalid argument: name contains invalid character"}')
FLOOD = Limits().h2_control_frame_limit + 1
HEAD_OF_VERSION = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"localhost"),
    (b":path", b"/version"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("http2")) as srv:
        yield srv


@pytest.fixture(scope="module")
def limited(server: RunningServer) -> ClientIdentity:
    """May generate and follow the audit trace; nothing else."""
    who = server.new_client("limited")
    with server.client() as root:
        root.post(f"/v1/key/create/{KEY}").raise_for_status()
        policy = {"allow": ["/v1/key/generate/*", TRACE.decode()]}
        root.post("/v1/policy/write/h2-limited", json=policy).raise_for_status()
        root.post(f"/v1/identity/assign/h2-limited/{who.identity}").raise_for_status()
    return who


def _audited(trace: H2Response) -> list[tuple[str, int]]:
    """(path, status) of every audit event the trace stream has delivered so far."""
    events = [json.loads(line) for line in trace.body.splitlines() if line.strip()]
    return [(e["request"]["path"], e["response"]["code"]) for e in events]


def test_early_answers_reset_only_their_stream(
    server: RunningServer, limited: ClientIdentity
) -> None:
    """Refused before the body: the answer, RST_STREAM(NO_ERROR), and the connection lives on."""
    with H2Client(server.port, server.ssl_context(limited)) as client:
        trace_id = client.send_request(b"GET", TRACE)
        trace = client.streams[trace_id]
        assert client.wait(lambda: trace.status == 200)
        refused = (
            (f"/v1/key/import/{KEY}-new", 100_000, DENIED),
            ("/v1/key/generate/a*", 100_000, BAD_NAME),
            (f"/v1/key/generate/{KEY}", 1024 * 1024 + 1, TOO_LARGE),
        )
        for target, length, expected in refused:
            # Part of the body is sent; the rest would follow if the stream stayed open.
            sid = client.send_request(
                b"POST",
                target.encode(),
                b"{" * 1000,
                headers=((b"content-length", str(length).encode()),),
            )
            answer = client.response(sid)
            assert (answer.status, answer.body) == expected, target
            assert answer.headers["content-type"] == "application/json; charset=utf-8"
            assert client.wait(lambda a=answer: a.reset is not None)  # type: ignore[misc]
            assert answer.reset == h2.errors.ErrorCodes.NO_ERROR
        allowed = client.request(b"POST", f"/v1/key/generate/{KEY}".encode(), b"{}")
        assert allowed.status == 200
        expected_events = [(t, s[0]) for t, _, s in refused] + [(f"/v1/key/generate/{KEY}", 200)]
        assert client.wait(lambda: _audited(trace)[-4:] == expected_events)
        assert not trace.done, "the trace stream ended with the refused requests"
        assert client.goaway is None and not client.eof


def test_a_stalled_stream_does_not_stall_its_connection(server: RunningServer) -> None:
    """A trace stream whose reader gives it no window: its connection serves on regardless.

    The trace's events pile up (64 KiB in the stream's window, the rest in the
    server's bounded buffers) while the requests sharing the connection, each
    adding an event of ~6 KiB, are answered; once the window opens again, the
    trace carries on.
    """
    marker = "/v1/stall-" + "%01" * 1000  # its audit event is ~6 KiB
    with H2Client(server.port, server.ssl_context()) as client:
        trace_id = client.send_request(b"GET", TRACE)
        trace = client.streams[trace_id]
        assert client.wait(lambda: trace.status == 200)
        client.hold(trace_id)
        for i in range(100):  # ~600 KiB of events: far beyond the stream's 64 KiB window
            assert client.request(b"GET", f"{marker}/{i}".encode()).status == 404
        assert len(trace.body) <= 65535 and not trace.done
        client.release(trace_id)
        assert client.request(b"GET", b"/v1/stall-end").status == 404
        assert client.wait(lambda: b'"/v1/stall-end"' in trace.body)


def test_path_bytes_and_methods_http1_refuses(server: RunningServer) -> None:
    """No request line in HTTP/2: raw bytes meet the name rules, any method is routed."""
    with H2Client(server.port, server.ssl_context()) as client:
        for raw in (b"a\x01b", b"caf\xc3\xa9", b"a b"):
            answer = client.request(b"POST", b"/v1/key/create/" + raw)
            assert (answer.status, answer.body) == BAD_NAME, raw
        brew = client.request(b"BREW", b"/v1/key/create/x")
        assert (brew.status, brew.body) == (405, b'{"message":"Method Not Allowed"}')
        assert brew.headers["accept"] == "POST"


@pytest.mark.parametrize(
    "field", [b"connection", b"upgrade", b"transfer-encoding", b"keep-alive"], ids=bytes.decode
)
def test_connection_specific_fields_are_never_served(server: RunningServer, field: bytes) -> None:
    """A malformed request (RFC 9113 §8.2.2) gets no answer: a protocol error ends it."""
    with H2Client(server.port, server.ssl_context()) as client:
        sid = client.send_request(b"GET", b"/version", headers=((field, b"h2c"),))
        answer = client.streams[sid]
        client.wait(lambda: answer.done or client.goaway is not None or client.eof)
        assert answer.status == 0, answer
        protocol_error = h2.errors.ErrorCodes.PROTOCOL_ERROR
        assert answer.reset == protocol_error or (
            client.goaway is not None and client.goaway.error_code == protocol_error
        )
    with server.client(http2=True) as other:
        assert other.get("/version").status_code == 200


HEAD_LIMIT = Limits().max_head_bytes
OVERSIZED: dict[str, tuple[bytes, tuple[tuple[bytes, bytes], ...]]] = {
    "path": (b"/nope/" + b"a" * (HEAD_LIMIT + 1024), ()),
    "fields": (b"/version", tuple((b"x-%d" % i, b"v" * 1000) for i in range(20))),
}


def test_header_list_limit_is_announced_and_a_list_under_it_served(server: RunningServer) -> None:
    with H2Client(server.port, server.ssl_context()) as client:
        assert client.wait(lambda: client.settled)
        assert client.conn.remote_settings.max_header_list_size == HEAD_LIMIT
        assert client.request(b"GET", b"/nope/" + b"a" * (HEAD_LIMIT - 1024)).status == 404


@pytest.mark.parametrize("kind", sorted(OVERSIZED))
def test_header_list_over_the_limit_is_never_served(server: RunningServer, kind: str) -> None:
    """Bounded like an HTTP/1.1 head: the connection ends (GOAWAY ENHANCE_YOUR_CALM, since
    HPACK state cannot be kept for a list the server will not decode), or a 431."""
    target, fields = OVERSIZED[kind]
    with H2Client(server.port, server.ssl_context()) as client:
        answer = client.streams[client.send_request(b"GET", target, headers=fields)]
        client.wait(lambda: answer.done or client.goaway is not None or client.eof)
        calm = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert answer.status == 431 or (
            answer.status == 0 and client.goaway is not None and client.goaway.error_code == calm
        ), (answer, client.goaway)
    with server.client(http2=True) as other:
        assert other.get("/version").status_code == 200


def test_streams_beyond_max_concurrent_streams_are_never_served(server: RunningServer) -> None:
    limit = Limits().h2_max_streams
    with H2Client(server.port, server.ssl_context()) as client:
        assert client.wait(lambda: client.settled)
        settings = client.conn.remote_settings
        assert settings.max_concurrent_streams == limit
        # Make our h2 ignore the server's limit, as a hostile client would.
        settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 10 * limit
        settings.acknowledge()
        length = ((b"content-length", b"100"),)  # bodies never sent: every stream stays open
        target = b"/v1/key/import/h2-streams"
        ids = [client.send_request(b"POST", target, b"{", headers=length) for _ in range(limit + 1)]
        over = client.streams[ids[-1]]
        client.wait(lambda: over.done or client.goaway is not None)
        assert over.status == 0, over
        refused = over.reset in (
            h2.errors.ErrorCodes.REFUSED_STREAM,
            h2.errors.ErrorCodes.PROTOCOL_ERROR,
        )
        assert refused or (
            client.goaway is not None
            and client.goaway.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
        )


def _flooded(server: RunningServer, kind: str) -> H2Client:
    """A connection after a flood of PINGs, or of streams reset as soon as opened.

    Twice the limit, in one write: a reset that reaches the server after it
    has answered the stream resets nothing and is not counted.
    """
    client = H2Client(server.port, server.ssl_context())
    assert client.wait(lambda: client.settled)
    if kind == "ping":
        frames = (PingFrame(0, opaque_data=i.to_bytes(8, "big")) for i in range(2 * FLOOD))
        client.sock.sendall(b"".join(f.serialize() for f in frames))
    else:
        for _ in range(2 * FLOOD):
            sid = client.conn.get_next_available_stream_id()
            client.conn.send_headers(sid, HEAD_OF_VERSION, end_stream=True)
            client.conn.reset_stream(sid)
        client.flush()
    client.wait(lambda: client.goaway is not None or client.eof)
    return client


@pytest.mark.parametrize("kind", ["ping", "rapid-reset"])
def test_floods_end_the_connection_with_enhance_your_calm(server: RunningServer, kind: str) -> None:
    with server.client(http2=True) as bystander:
        assert bystander.get("/version").status_code == 200
        client = _flooded(server, kind)
        try:
            assert client.goaway is not None, "no GOAWAY"
            assert client.goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        finally:
            client.close()
        assert bystander.get("/version").status_code == 200  # same worker, not disturbed
