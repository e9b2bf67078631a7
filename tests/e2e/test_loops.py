"""``--loop asyncio`` and ``--loop uvloop`` serve alike.

The TLS layer is ours, on memory BIOs over a plain TCP transport
(kes_server/transport/tlsconn.py), precisely so that the event loop changes
nothing but speed. Each loop gets a server of its own and the same checks:
the loop asked for is the one running, the start-up TLS self-test passed and
``--auth off`` accepts (and reads) a self-signed client certificate, a
generate/decrypt round trip works over HTTP/1.1 and HTTP/2, a live trace
streams, and a refused handshake becomes an error event naming the client.
"""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.protocols import PROTOCOLS
from tests.support.server import RunningServer, start_server
from tests.support.trace import LiveTrace

pytestmark = pytest.mark.e2e

LOOPS = ("asyncio", "uvloop")


@pytest.fixture(scope="module", params=LOOPS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    loop = str(request.param)
    with start_server(tmp_path_factory.mktemp(f"loop-{loop}"), args=["--loop", loop]) as srv:
        yield srv


def _loop_of(server: RunningServer) -> str:
    return server.args[server.args.index("--loop") + 1]


def test_the_chosen_loop_runs(server: RunningServer) -> None:
    """uvloop's extension is loaded exactly when it was asked for."""
    assert server.process is not None
    maps = Path(f"/proc/{server.process.pid}/maps").read_text()
    assert ("uvloop" in maps) == (_loop_of(server) == "uvloop")


def test_self_signed_client_certificate_is_accepted_and_read(server: RunningServer) -> None:
    """The self-test passed (the server started); the peer certificate reaches the API."""
    with server.client() as root:
        me = root.get("/v1/identity/self/describe").json()
    assert (me["identity"], me["admin"]) == (server.root_identity, True)
    with server.client(server.new_client("stranger")) as stranger:
        assert stranger.get("/version").status_code == 200  # handshake accepted ...
        assert stranger.post("/v1/key/create/x").status_code == 403  # ... and identified


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_generate_decrypt_round_trip(server: RunningServer, protocol: str) -> None:
    name = f"loop-{protocol}"
    context = base64.b64encode(b"bucket/object").decode()
    with server.client(http2=protocol == "h2") as client:
        assert client.post(f"/v1/key/create/{name}").status_code == 200
        made = client.post(f"/v1/key/generate/{name}", json={"context": context})
        back = client.post(
            f"/v1/key/decrypt/{name}",
            json={"ciphertext": made.json()["ciphertext"], "context": context},
        )
    assert made.http_version == ("HTTP/2" if protocol == "h2" else "HTTP/1.1")
    assert back.status_code == 200 and back.json()["plaintext"] == made.json()["plaintext"]


def _path_is(path: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: bool(event["request"]["path"] == path)


def test_trace_streams_live(server: RunningServer) -> None:
    trace = LiveTrace.of(server)
    try:
        for protocol in PROTOCOLS:
            path = f"/loop-trace-{protocol}"
            with server.client(http2=protocol == "h2") as client:
                assert client.get(path).status_code == 404
            event = trace.next_event(_path_is(path))
            assert event["response"]["code"] == 404
    finally:
        trace.close()


def test_refused_handshake_is_an_error_event(server: RunningServer) -> None:
    errors = LiveTrace.of(server, "/v1/log/error/trace")
    try:
        no_certificate = ssl.create_default_context(cafile=str(server.ca_file))
        with pytest.raises(httpx.HTTPError):
            with httpx.Client(base_url=server.url, verify=no_certificate) as client:
                client.get("/version")
        event = errors.next_event(lambda e: "TLS handshake error from 127.0.0.1:" in e["message"])
    finally:
        errors.close()
    # "<date> <time> http: TLS handshake error from 127.0.0.1:<port>: <OpenSSL's reason>"
    assert re.search(r" http: TLS handshake error from 127\.0\.0\.1:\d+: \S", event["message"])
    assert "CERTIFICATE" in event["message"], event
