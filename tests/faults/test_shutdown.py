"""SIGTERM: requests in flight finish, trace streams end cleanly, the process exits 0.

Operators restart KES servers routinely (rolling upgrades, config changes);
a restart must not cut a key import in half or leave trace clients with a
broken chunked stream they would report as an error.
"""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.support.rawhttp import RawResponse, open_tls, read_response
from tests.support.server import start_server

pytestmark = pytest.mark.e2e


def test_sigterm_drains_in_flight_requests_and_ends_traces(tmp_path: Path) -> None:
    with start_server(tmp_path) as server:
        trace: dict[str, object] = {}
        trace_ready = threading.Event()

        def follow_trace() -> None:
            with open_tls(server.port, server.ssl_context(), timeout=20) as sock:
                sock.sendall(b"GET /v1/log/error/trace HTTP/1.1\r\nHost: localhost\r\n\r\n")
                trace_ready.set()
                try:
                    trace["response"] = read_response(sock)  # returns at the chunked terminator
                except (OSError, ConnectionError) as exc:
                    trace["error"] = exc

        follower = threading.Thread(target=follow_trace, daemon=True)
        follower.start()
        assert trace_ready.wait(5)
        time.sleep(0.3)

        body = json.dumps({"bytes": base64.b64encode(bytes(range(32))).decode()}).encode()
        assert server.process is not None
        # A pooled client idling on a keep-alive connection never answers the server's
        # close_notify; it must not hold the shutdown up (asyncio would wait 30 s).
        idle = server.client()
        assert idle.get("/version").status_code == 200
        with open_tls(server.port, server.ssl_context(), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/key/import/drained HTTP/1.1\r\nHost: localhost\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            time.sleep(0.3)  # the request is now in the handler, waiting for its body
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            time.sleep(0.3)
            sock.sendall(body[10:])
            answer = read_response(sock)
        assert answer.status == 200, answer

        follower.join(10)
        assert "error" not in trace, f"trace stream broke: {trace.get('error')!r}"
        response = trace["response"]
        assert isinstance(response, RawResponse) and response.status == 200
        assert server.process.wait(10) == 0
        assert time.monotonic() - signalled < 5.0, "shutdown waited on an idle connection"
        idle.close()

        server.process = None
        logs = server.logs()
        assert "Traceback" not in logs, logs
        server.start()
        with server.client() as root:
            assert root.post("/v1/key/generate/drained", json={}).status_code == 200
