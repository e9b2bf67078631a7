"""HTTP/2 abuse on one connection must not hurt the others (issue 14, item 5).

* A client flooding PING or SETTINGS frames, or opening and resetting
  streams as fast as it can (rapid reset, CVE-2023-44487), is disconnected
  with GOAWAY ``ENHANCE_YOUR_CALM`` after ``Limits.h2_control_frame_limit``
  such frames, and while it floods every other client is served at once
  (hypercorn stalled everyone for 11-13 s; the bound asserted here, 1 s, is
  generous on purpose, a shared CI box is noisy).
* An answer sent while the client is still sending the body (a policy
  denial, a body over the route's limit) ends only that stream: a trace stream on the same
  connection keeps delivering events, and the connection takes new requests.
* A raw non-ASCII byte in ``:path`` is an ordinary bad request: answered,
  audited, no traceback.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events as h2_events
import hpack
import pytest
from h2.errors import ErrorCodes
from hyperframe.frame import (
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from tests.support.h2client import H2Client, request_headers
from tests.support.server import ClientIdentity, RunningServer, start_server

pytestmark = pytest.mark.e2e

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize()
#: How long each flood lasts; the server must cut every flooding connection well before.
FLOOD_S = 3.0
#: The slowest ``/version`` answer another client may see during a flood.
PROBE_BOUND_S = 1.0
#: ``GET /version`` as an HPACK block of literals that never touch the dynamic
#: table, so the same bytes can open any number of streams.
VERSION_BLOCK = b"\x82\x87\x04\x08/version\x01\x09localhost"
_GOAWAY = 0x7

#: Frames to flood with, given the stream ids still unused on the connection.
Batch = Callable[[Iterator[int]], bytes]


@dataclass
class FloodResult:
    connections: int = 0
    #: GOAWAY error codes received, one per connection the server ended with one.
    goaways: list[int] = field(default_factory=list)
    frames_sent: int = 0


class Flooder(threading.Thread):
    """Floods a server with ``batch`` (whole frames) for ``FLOOD_S``, reconnecting
    each time the server hangs up, and reads everything the server sends."""

    def __init__(self, server: RunningServer, batch: Batch) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.make_batch = batch
        self.result = FloodResult()
        self.started_flooding = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + FLOOD_S
        while time.monotonic() < deadline:
            self._one_connection(deadline)
        self.started_flooding.set()

    def _one_connection(self, deadline: float) -> None:
        ctx = self.server.ssl_context()
        ctx.set_alpn_protocols(["h2"])
        try:
            sock = ctx.wrap_socket(
                socket.create_connection(("127.0.0.1", self.server.port), 5),
                server_hostname="localhost",
            )
        except OSError:
            return
        self.result.connections += 1
        stream_ids = iter(range(1, 2**31, 2))
        out = bytearray(PREFACE)
        inbound = bytearray()
        sock.setblocking(False)
        try:
            while time.monotonic() < deadline:
                self.started_flooding.set()
                readable, writable, _ = select.select([sock], [sock], [], 0.2)
                if readable or sock.pending():
                    try:
                        chunk = sock.recv(65536)
                    except ssl.SSLWantReadError:
                        chunk = None
                    except OSError:
                        return
                    if chunk == b"":
                        return
                    if chunk:
                        inbound += chunk
                        self._frames(inbound)
                if writable:
                    if not out:
                        out += self.make_batch(stream_ids)
                    try:
                        sent = sock.send(out)
                    except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                        continue
                    except OSError:
                        return
                    del out[:sent]
                    self.result.frames_sent += sent
        finally:
            sock.close()

    def _frames(self, buf: bytearray) -> None:
        """Consume whole frames from ``buf``; record GOAWAY codes (preface excluded)."""
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                return
            if buf[3] == _GOAWAY:
                self.result.goaways.append(int.from_bytes(buf[13:17], "big"))
            del buf[: 9 + length]


def ping_batch(_ids: Iterator[int]) -> bytes:
    return PingFrame(0, opaque_data=b"flooding").serialize() * 200


def settings_batch(_ids: Iterator[int]) -> bytes:
    frame = SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 65535})
    return frame.serialize() * 200


def rapid_reset_batch(ids: Iterator[int]) -> bytes:
    """HEADERS (END_STREAM|END_HEADERS) immediately followed by RST_STREAM(CANCEL)."""
    out = bytearray()
    for _ in range(100):
        sid = next(ids)
        header = len(VERSION_BLOCK).to_bytes(3, "big") + b"\x01\x05" + sid.to_bytes(4, "big")
        out += header + VERSION_BLOCK
        out += RstStreamFrame(sid, error_code=ErrorCodes.CANCEL).serialize()
    return bytes(out)


def window_update_batch(_ids: Iterator[int]) -> bytes:
    return WindowUpdateFrame(0, window_increment=1).serialize() * 1000


def priority_batch(ids: Iterator[int]) -> bytes:
    return b"".join(PriorityFrame(next(ids), stream_weight=16).serialize() for _ in range(500))


def unknown_frame_batch(_ids: Iterator[int]) -> bytes:
    """Frames of an unassigned type, which RFC 9113 §5.5 says to ignore."""
    return b"\x00\x00\x00\xfa\x00\x00\x00\x00\x00" * 1000


def h2_client() -> h2.connection.H2Connection:
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    return h2.connection.H2Connection(config=config)


def test_version_block_is_what_it_claims() -> None:
    decoded = hpack.Decoder().decode(VERSION_BLOCK, raw=True)
    assert decoded == [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":path", b"/version"),
        (b":authority", b"localhost"),
    ]


@pytest.fixture(name="server")
def _server(tmp_path: Path) -> Iterator[RunningServer]:
    with start_server(tmp_path, store="mem") as server:
        yield server


def _probe_during(server: RunningServer, flooder: Flooder) -> list[float]:
    """``GET /version`` latencies on another (kept-alive) connection while the flood runs."""
    latencies: list[float] = []
    with server.client(timeout=60.0) as client:
        assert client.get("/version").status_code == 200  # connected before the flood
        flooder.start()
        flooder.started_flooding.wait(5)
        while flooder.is_alive():
            start = time.monotonic()
            response = client.get("/version")
            latencies.append(time.monotonic() - start)
            assert response.status_code == 200
            time.sleep(0.02)
        flooder.join()
    return latencies


@pytest.mark.parametrize(
    "batch",
    [ping_batch, settings_batch, rapid_reset_batch],
    ids=["ping", "settings", "rapid-reset"],
)
def test_a_flooding_connection_is_cut_and_others_are_served(
    server: RunningServer, batch: Batch
) -> None:
    flooder = Flooder(server, batch)
    latencies = _probe_during(server, flooder)
    result = flooder.result
    assert latencies, "no probe ran during the flood"
    assert max(latencies) < PROBE_BOUND_S, (
        f"another client waited {max(latencies):.2f}s for /version during the flood"
    )
    assert result.goaways, f"the flooder was never told to stop ({result})"
    assert set(result.goaways) == {ErrorCodes.ENHANCE_YOUR_CALM}, result
    logs = server.logs()
    assert "Traceback" not in logs
    with server.client(http2=True) as client:
        assert client.get("/version").status_code == 200


@pytest.mark.parametrize(
    "batch",
    [window_update_batch, priority_batch, unknown_frame_batch],
    ids=["window-update", "priority", "unknown-type"],
)
def test_a_flood_of_frames_nobody_counts_does_not_stall_others(
    server: RunningServer, batch: Batch
) -> None:
    """Frames with no flood limit of their own (cheap, legal, ignored or nearly so) cost
    the flooder its own connection's turn only: everyone else is served meanwhile."""
    flooder = Flooder(server, batch)
    latencies = _probe_during(server, flooder)
    assert latencies, "no probe ran during the flood"
    assert max(latencies) < PROBE_BOUND_S, (
        f"another client waited {max(latencies):.2f}s for /version during the flood"
    )
    assert "Traceback" not in server.logs()


def test_a_body_followed_at_once_by_close_notify_is_answered(server: RunningServer) -> None:
    """Feeding one slice per turn must not reorder the client's end of input: a body of
    many TLS records and the close_notify right behind it, arriving together, are still
    a complete request, read to the end and answered (not dropped as a client gone
    mid-body). The answer is small, as the client can no longer open flow control."""
    with server.client() as root:
        assert root.post("/v1/key/create/eof-key").status_code == 200
    ciphertext = base64.b64encode(secrets.token_bytes(300 * 1024)).decode()
    body = json.dumps({"ciphertext": ciphertext}).encode()
    ctx = server.ssl_context()
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    h2 = h2_client()
    events: list[h2_events.Event] = []

    def receive() -> None:
        data = raw.recv(65536)
        assert data, "the server closed without answering"
        incoming.write(data)
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            while True:
                events.extend(h2.receive_data(tls.read(65536)))

    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())
                incoming.write(raw.recv(65536))
        h2.initiate_connection()
        tls.write(h2.data_to_send())
        raw.sendall(outgoing.read())
        while not any(isinstance(e, h2_events.RemoteSettingsChanged) for e in events):
            receive()
        sid = h2.get_next_available_stream_id()
        h2.send_headers(sid, request_headers(b"POST", b"/v1/key/decrypt/eof-key"))
        for at in range(0, len(body), 16384):
            h2.send_data(sid, body[at : at + 16384], end_stream=at + 16384 >= len(body))
        tls.write(h2.data_to_send())
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.unwrap()  # our close_notify, right behind the body
        raw.sendall(outgoing.read())  # request, body and close_notify in one write
        while not any(isinstance(e, h2_events.StreamEnded) for e in events):
            receive()
    finally:
        raw.close()
    head = next(e for e in events if isinstance(e, h2_events.ResponseReceived))
    answer = b"".join(e.data or b"" for e in events if isinstance(e, h2_events.DataReceived))
    assert dict(head.headers or ())[b":status"] == b"400"
    assert json.loads(answer) == {"message": "decryption failed: ciphertext is not authentic"}


# ---------------------------------------------------------------------- early answers


TRACER_POLICY = {
    "allow": ["/v1/log/audit/trace", "/v1/key/import/*", "/v1/identity/self/describe"],
    "deny": [],
}


def _with_policy(server: RunningServer, name: str, policy: dict[str, list[str]]) -> ClientIdentity:
    who = server.new_client(name)
    with server.client() as root:
        assert root.post(f"/v1/policy/write/{name}", json=policy).status_code == 200
        assert root.post(f"/v1/identity/assign/{name}/{who.identity}").status_code == 200
    return who


def _events(stream_lines: list[bytes]) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream_lines]


def _audited(h2: H2Client, trace_sid: int, path: str, code: int) -> None:
    """The trace stream on ``h2`` delivers the audit event of ``path`` with ``code``."""
    stream = h2.streams[trace_sid]

    def seen() -> bool:
        return any(
            e["request"]["path"] == path and e["response"]["code"] == code  # type: ignore[index]
            for e in _events(stream.lines())
        )

    h2.wait(seen, 5.0)
    assert not stream.done, "the trace stream ended"


def _answered_mid_body(h2: H2Client, sid: int, chunk: bytes, most: int) -> None:
    """Send ``chunk`` after ``chunk`` (never END_STREAM) until the server answers."""
    stream = h2.streams[sid]
    sent = 0
    while not stream.done and sent < most:
        if h2.window(sid) >= len(chunk) and h2.send(sid, chunk):
            sent += len(chunk)
        h2.pump(0.05)
    h2.wait(lambda: stream.done, 5.0)
    # A client that does not see the answer yet goes on sending: harmless.
    for _ in range(4):
        h2.send(sid, chunk)


def test_an_early_answer_ends_only_its_stream(server: RunningServer) -> None:
    tracer = _with_policy(server, f"tracer-{secrets.token_hex(3)}", TRACER_POLICY)
    with H2Client.open(server.port, server.ssl_context(tracer)) as h2:
        trace = h2.request(b"GET", b"/v1/log/audit/trace")
        h2.wait(lambda: h2.streams[trace].status == 200)

        # 403: the policy says no before the body is read.
        denied = h2.request(b"POST", b"/v1/key/encrypt/k", None, end=False)
        _answered_mid_body(h2, denied, b"x" * 1000, 64 * 1024)
        assert h2.streams[denied].status == 403
        _audited(h2, trace, "/v1/key/encrypt/k", 403)

        # Over the route's limit, declared: refused before the body is read (KES answers
        # an over-limit body 400 "invalid json": Go's decoder stops at the limit).
        declared = h2.request(
            b"POST",
            b"/v1/key/import/big",
            None,
            headers=((b"content-length", str(2 << 20).encode()),),
            end=False,
        )
        _answered_mid_body(h2, declared, b"x" * 16384, 2 << 20)
        assert h2.streams[declared].status == 400
        assert json.loads(bytes(h2.streams[declared].data)) == {"message": "invalid json"}
        _audited(h2, trace, "/v1/key/import/big", 400)

        # Over the limit, undeclared: answered once the body grows past it while sent.
        grown = h2.request(b"POST", b"/v1/key/import/grown", None, end=False)
        _answered_mid_body(h2, grown, b"x" * 16384, 3 << 20)
        assert h2.streams[grown].status == 400
        _audited(h2, trace, "/v1/key/import/grown", 400)

        # The connection is intact: a new stream is served, the trace keeps going.
        assert h2.goaway is None and not h2.closed
        me = h2.request(b"GET", b"/v1/identity/self/describe")
        assert h2.response(me).status == 200
        with server.client() as other:
            assert other.get("/version").status_code == 200
        _audited(h2, trace, "/version", 200)
    assert "Traceback" not in server.logs()


# ---------------------------------------------------------------------- :path bytes


@pytest.mark.parametrize(
    ("method", "raw", "status", "audited_path", "message"),
    [
        (
            b"POST",
            b"/v1/key/create/caf\xc3\xa9",
            400,
            "/v1/key/create/caf\u00e9",
            "invalid argument: name contains invalid character",
        ),
        (
            b"POST",
            b"/v1/key/create/a\xffb",
            400,
            "/v1/key/create/a\ufffdb",
            "invalid argument: name contains invalid character",
        ),
        (b"GET", b"/v1/\xff", 404, "/v1/\ufffd", None),
    ],
    ids=["utf8", "invalid-utf8", "unknown-path"],
)
def test_a_non_ascii_path_is_answered_and_audited(
    server: RunningServer,
    method: bytes,
    raw: bytes,
    status: int,
    audited_path: str,
    message: str | None,
) -> None:
    with H2Client.open(server.port, server.ssl_context()) as h2:
        trace = h2.request(b"GET", b"/v1/log/audit/trace")
        h2.wait(lambda: h2.streams[trace].status == 200)
        sid = h2.request(method, raw)
        answer = h2.response(sid)
        assert answer.status == status
        if message is not None:
            assert json.loads(bytes(answer.data)) == {"message": message}
        _audited(h2, trace, audited_path, status)
        assert h2.goaway is None and not h2.closed
    with server.client() as client:
        assert client.get("/version").status_code == 200
    assert "Traceback" not in server.logs()
