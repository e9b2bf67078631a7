"""SIGTERM: requests in flight finish, trace streams end cleanly, the process exits 0.

Operators restart KES servers routinely (rolling upgrades, config changes);
a restart must not cut a key import in half or leave trace clients with a
broken stream they would report as an error. Both protocols: HTTP/1.1 closes
each connection after the answer under way (``Connection: close``); HTTP/2
sends GOAWAY, refuses new streams and lets the streams it covers finish.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import h2.errors
import httpx
import pytest

from tests.support.protocols import PROTOCOLS
from tests.support.rawh2 import H2Client
from tests.support.rawhttp import open_tls, read_body, read_response
from tests.support.server import RunningServer, start_server

pytestmark = pytest.mark.e2e

BODY = json.dumps({"bytes": base64.b64encode(bytes(range(32))).decode()}).encode()
IMPORT = b"/v1/key/import/drained"
TRACE = b"/v1/log/error/trace"


def _until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def _active(client: httpx.Client) -> int:
    """Requests the server has in flight (its metrics do not count the metrics request)."""
    for line in client.get("/v1/metrics").text.splitlines():
        if line.startswith("kes_http_request_active "):
            return int(float(line.split()[1]))
    raise AssertionError("no kes_http_request_active metric")


def _refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _stop_http1(server: RunningServer, idle: httpx.Client) -> None:
    """A trace and a half-sent import on HTTP/1.1 when SIGTERM arrives."""
    assert server.process is not None
    with (
        open_tls(server.port, server.ssl_context(), timeout=10) as trace,
        open_tls(server.port, server.ssl_context(), timeout=10) as sock,
    ):
        trace.sendall(b"GET " + TRACE + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        trace_buffer = bytearray()
        following = read_response(trace, head=True, buffer=trace_buffer)
        assert following.status == 200
        head = b"POST " + IMPORT + b" HTTP/1.1\r\nHost: localhost\r\n"
        sock.sendall(head + f"Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY[:10])
        _until(lambda: _active(idle) == 2, "the import is in its handler, waiting for its body")

        server.process.send_signal(signal.SIGTERM)
        _until(lambda: _refuses_connections(server.port), "the server stops accepting")
        sock.sendall(BODY[10:])
        answer = read_response(sock)
        assert answer.status == 200, answer
        assert answer.headers["connection"] == "close"  # no further request on it
        ended = read_body(trace, following, trace_buffer)  # up to the chunked terminator
        assert ended.status == 200


def _stop_h2(server: RunningServer, idle: httpx.Client) -> None:
    """The same on one HTTP/2 connection: a trace stream and a half-sent import stream."""
    assert server.process is not None
    with H2Client(server.port, server.ssl_context()) as client:
        trace = client.streams[client.send_request(b"GET", TRACE)]
        assert client.wait(lambda: trace.status == 200)
        sid = client.send_request(
            b"POST", IMPORT, BODY[:10], headers=((b"content-length", str(len(BODY)).encode()),)
        )
        _until(lambda: _active(idle) == 2, "the import is in its handler, waiting for its body")

        server.process.send_signal(signal.SIGTERM)
        assert client.wait(lambda: client.goaway is not None), "no GOAWAY"
        assert client.goaway is not None
        assert client.goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
        assert client.goaway.last_stream_id == sid
        late = client.streams[client.send_request(b"GET", b"/version")]
        client.send_body(sid, BODY[10:])
        answer = client.response(sid)
        assert (answer.status, answer.reset) == (200, None), answer
        assert client.wait(lambda: trace.done and late.done)
        assert (trace.status, trace.reset) == (200, None), "trace stream broke"
        # A stream the GOAWAY does not cover is refused, never served.
        assert (late.status, late.reset) == (0, h2.errors.ErrorCodes.REFUSED_STREAM)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sigterm_drains_in_flight_requests_and_ends_traces(tmp_path: Path, protocol: str) -> None:
    with start_server(tmp_path) as server:
        assert server.process is not None
        # A pooled client idling on a keep-alive connection never answers the server's
        # close_notify; it must not hold the shutdown up (asyncio would wait 30 s).
        with server.client(http2=protocol == "h2") as idle:
            (_stop_h2 if protocol == "h2" else _stop_http1)(server, idle)
            signalled = time.monotonic()
            assert server.process.wait(10) == 0
            assert time.monotonic() - signalled < 5.0, "shutdown waited on an idle connection"

        server.process = None
        logs = server.logs()
        assert "Traceback" not in logs, logs
        server.start()
        with server.client() as root:
            assert root.post("/v1/key/generate/drained", json={}).status_code == 200
