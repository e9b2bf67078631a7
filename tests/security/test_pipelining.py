"""An HTTP/1.1 client that pipelines requests and never reads the answers.

Answers are written as requests are served; a client that stops reading
must stop the serving, or the server buffers every answer it asked for:
20 000 pipelined ``GET /v1/api`` (under 1 MB sent) made the server hold
46 MB of answers. Now a connection whose write buffer is full waits for its
client before serving the next request, so what one such client costs is
bounded by the socket buffers, and pipelined requests take turns with other
connections' requests.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.rawhttp import read_response
from tests.support.server import RunningServer, start_server

pytestmark = pytest.mark.e2e

PIPELINED = 20_000
REQUEST = b"GET /v1/api HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.fixture(name="server")
def _server(tmp_path: Path) -> Iterator[RunningServer]:
    with start_server(tmp_path, store="mem") as server:
        yield server


def _served(client: httpx.Client) -> float:
    """Requests answered 200 so far (``/v1/metrics`` itself is not counted)."""
    for family in text_string_to_metric_families(client.get("/v1/metrics").text):
        for sample in family.samples:
            if sample.name.removesuffix("_total") == "kes_http_request_success":
                return float(sample.value)
    raise AssertionError("no kes_http_request_success metric")


def test_a_client_that_does_not_read_stops_being_served(server: RunningServer) -> None:
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little
    raw.connect(("127.0.0.1", server.port))
    ctx = server.ssl_context()
    ctx.set_alpn_protocols(["http/1.1"])
    with ctx.wrap_socket(raw, server_hostname="localhost") as sock, server.client() as probe:
        before = _served(probe)
        sock.settimeout(10)
        sock.sendall(REQUEST * PIPELINED)  # fits in the server's receive buffer
        # Wait until the server stops serving (the count holds still for a second),
        # timing another client's requests meanwhile.
        latencies: list[float] = []
        served, still_since = _served(probe), time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() - still_since < 1.0:
            assert time.monotonic() < deadline, "the server never stopped serving"
            start = time.monotonic()
            now = _served(probe)
            latencies.append(time.monotonic() - start)
            if now != served:
                served, still_since = now, time.monotonic()
            time.sleep(0.05)
        answered = served - before
        # ~2.3 KiB per answer: what fits in the socket buffers and the write buffer.
        assert answered < PIPELINED // 2, f"{answered:.0f} answers were buffered for the client"
        assert max(latencies) < 1.0
        # The client reads again: it gets its answers, in order, and the server resumes.
        for _ in range(10):
            answer = read_response(sock)
            assert answer.status == 200
            assert answer.body.startswith(b"[")
        sock.settimeout(0.5)
        drained = 0
        while drained < 4 << 20:  # read on, so the server gets going again
            try:
                chunk = sock.recv(1 << 20)
            except TimeoutError:
                break
            if not chunk:
                break
            drained += len(chunk)
        assert _served(probe) > served
