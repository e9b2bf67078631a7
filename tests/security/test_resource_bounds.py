"""What one client can make a real server hold: bounded, whatever it sends.

* A trace subscriber that stops reading keeps a queue bounded in bytes, not
  only in events: with large events it loses its oldest ones (counted in
  ``kes_log_trace_dropped``) long before 4096 of them are queued.
* An audit event carries at most ``MAX_AUDIT_PATH`` characters of the
  request path, and with ``--workers`` one huge event cannot stop the relay
  that shows every worker's events in every trace.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kes_server.logbus import MAX_AUDIT_PATH, clip_path
from tests.support.server import RunningServer, start_server
from tests.support.trace import LiveTrace

pytestmark = pytest.mark.e2e

#: A path segment that JSON-escapes to six bytes per character (``\u0001``).
CONTROL = "%01"


def _metric(client: httpx.Client, name: str) -> float:
    for family in text_string_to_metric_families(client.get("/v1/metrics").text):
        for sample in family.samples:
            if sample.name.removesuffix("_total") == name:
                return float(sample.value)
    raise AssertionError(f"no metric {name}")


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


@pytest.fixture(name="server")
def _server(tmp_path: Path) -> Iterator[RunningServer]:
    with start_server(tmp_path, store="mem") as server:
        yield server


def test_a_stuck_trace_subscriber_is_bounded_in_bytes(server: RunningServer) -> None:
    """2500 events of ~6 KiB (15 MiB, under 4096 events) to a subscriber that stops reading.

    What the server holds for it: the queue (4 MiB), the batch stuck in the
    connection's write buffer (at most the same) and the kernel's socket
    buffer (at most 4 MiB here): about 2000 such events, so some must go.
    """
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little
    raw.connect(("127.0.0.1", server.port))
    ctx = server.ssl_context()
    ctx.set_alpn_protocols(["http/1.1"])
    stuck = ctx.wrap_socket(raw, server_hostname="localhost")
    burst = f"/v1/burst-{secrets.token_hex(4)}/"
    sent = 2500
    try:
        stuck.sendall(b"GET /v1/log/audit/trace HTTP/1.1\r\nHost: localhost\r\n\r\n")
        with server.client() as client:
            _wait_until(
                lambda: _metric(client, "kes_log_trace_subscribers") == 1, "the trace subscribed"
            )
            for i in range(sent):
                assert client.get(f"{burst}{i}-{CONTROL * 1000}").status_code == 404
            client.get(f"{burst}end")
            # Now read: the stream resumes with what the server kept.
            received = bytearray()
            end = f'"path":"{burst}end"'.encode()
            stuck.settimeout(10)
            while end not in received:
                chunk = stuck.recv(1 << 20)
                assert chunk, "the trace ended early"
                received += chunk
            dropped = _metric(client, "kes_log_trace_dropped")
    finally:
        stuck.close()
    kept = received.count(f'"path":"{burst}'.encode()) - 1  # without the end marker
    assert 0 < kept < sent
    assert dropped >= sent - kept


def test_audit_events_carry_a_clipped_path(kes_server: RunningServer) -> None:
    path = f"/v1/clip-{secrets.token_hex(4)}/" + "a" * (3 * MAX_AUDIT_PATH)
    trace = LiveTrace.of(kes_server)
    try:
        with kes_server.client() as client:
            assert client.get(path).status_code == 404
        event = trace.next_event(lambda e: e["request"]["path"].startswith(path[:20]), 2.0)
    finally:
        trace.close()
    assert event["request"]["path"] == clip_path(path)
    assert len(event["request"]["path"]) == MAX_AUDIT_PATH


def test_a_huge_event_does_not_stop_the_worker_relay(tmp_path: Path) -> None:
    """An event of ~30 KiB if unclipped: a 15 KiB path (under the 16 KiB head limit of either
    protocol) of escaped control characters, each 6 characters once JSON-escaped."""
    with start_server(tmp_path, args=["--workers", "2"]) as server:
        trace = LiveTrace.of(server)
        try:
            huge = f"/v1/huge-{secrets.token_hex(4)}/" + CONTROL * 5_000
            for _ in range(8):  # new connections land on both workers
                with server.client(http2=True) as client:
                    assert client.get(huge).status_code == 404
            event = trace.next_event(lambda e: e["request"]["path"].startswith(huge[:15]), 2.0)
            assert len(event["request"]["path"]) == MAX_AUDIT_PATH
            paths = []
            for i in range(12):
                name = f"relay-{i}-{secrets.token_hex(3)}"
                with server.client() as client:
                    assert client.post(f"/v1/key/create/{name}").status_code == 200
                paths.append(f"/v1/key/create/{name}")
            seen: set[str] = set()
            while not set(paths) <= seen:
                seen.add(
                    trace.next_event(lambda e: e["request"]["path"] in paths, 2.0)["request"][
                        "path"
                    ]
                )
        finally:
            trace.close()
        assert server.stop() == 0
        assert "Traceback" not in server.logs()
