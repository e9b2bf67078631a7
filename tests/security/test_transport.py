"""Transport hardening: who may complete a handshake, and what slow clients can hold.

* With ``--auth on`` a client needs a certificate from the configured CA that
  is valid now: no certificate, another CA, or an expired certificate is
  refused during the handshake, and the refusal is an error event naming why.
* TLS 1.1 and older never get a session, whatever ``tls.min_version`` says
  (and TLS 1.2 only when the operator allows it).
* Slow clients (a request head trickled in byte by byte, a body that never
  completes) and idle keep-alive connections are cut by timeouts, on HTTP/1.1
  and HTTP/2 alike, while other clients are served without delay.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import h2.errors
import h2.events
import hpack
import httpx
import pytest
import trustme
from hyperframe.frame import ContinuationFrame, HeadersFrame

from kes_server.server import HEADER_TIMEOUT_ENV, IDLE_TIMEOUT_ENV, StartupError, env_seconds
from tests.support.rawh2 import H2Client
from tests.support.rawhttp import open_tls, read_response
from tests.support.server import RunningServer, start_server

pytestmark = pytest.mark.e2e

HANDSHAKE_ERRORS = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)


def _client_context(
    server: RunningServer, cert_pem: bytes, key_pem: bytes, tmp: Path
) -> ssl.SSLContext:
    cert, key = tmp / "c.pem", tmp / "k.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def _refused(server: RunningServer, ctx: ssl.SSLContext) -> None:
    """The server refuses the handshake: no HTTP request gets through."""
    with pytest.raises(HANDSHAKE_ERRORS), httpx.Client(base_url=server.url, verify=ctx) as c:
        c.get("/version")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("auth-on"), auth=True, store="mem") as server:
        yield server


def test_auth_on_refuses_no_certificate_foreign_ca_and_expired(
    auth_server: RunningServer, tmp_path: Path
) -> None:
    server = auth_server
    assert server.client_ca is not None
    _refused(server, ssl.create_default_context(cafile=str(server.ca_file)))

    foreign = trustme.CA().issue_cert("intruder@clients.test")
    _refused(
        server,
        _client_context(
            server, foreign.cert_chain_pems[0].bytes(), foreign.private_key_pem.bytes(), tmp_path
        ),
    )

    now = dt.datetime.now(dt.UTC)
    expired = server.client_ca.issue_cert(
        "expired@clients.test",
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )
    _refused(
        server,
        _client_context(
            server, expired.cert_chain_pems[0].bytes(), expired.private_key_pem.bytes(), tmp_path
        ),
    )

    # The trusted CA's current certificates still work; each refusal was logged with a reason.
    with server.client() as root:
        assert root.get("/version").status_code == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        errors = server.stderr_path.read_text()
        if errors.count("TLS handshake error") >= 3 and "expired" in errors:
            break
        time.sleep(0.1)
    assert errors.count("TLS handshake error") >= 3, errors
    assert "certificate has expired" in errors, errors


def _client_hello(version: int) -> bytes:
    """A minimal TLS ClientHello record offering only ``version`` (0x0301 = 1.0, 0x0302 = 1.1).

    Built by hand because this machine's OpenSSL refuses to *offer* those
    versions at its default security level, which would make a client-side
    test pass without the server ever being asked.
    """
    suites = [0xC013, 0xC014, 0x002F, 0x0035]  # ECDHE-RSA/RSA with AES-CBC: what 1.0/1.1 speak
    body = struct.pack(">H", version) + bytes(32) + b"\x00"
    body += struct.pack(">H", 2 * len(suites)) + b"".join(struct.pack(">H", s) for s in suites)
    body += b"\x01\x00"  # no compression
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(handshake)) + handshake


def _server_answer_to_hello(port: int, version: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(_client_hello(version))
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return data


@pytest.mark.parametrize("version", [0x0301, 0x0302], ids=["tls1.0", "tls1.1"])
def test_tls_1_1_and_older_are_refused(auth_server: RunningServer, version: int) -> None:
    answer = _server_answer_to_hello(auth_server.port, version)
    # Either a fatal alert record (0x15 ... level 2) or a plain close; never a ServerHello.
    assert not answer.startswith(b"\x16"), "the server answered with a handshake"
    if answer:
        assert answer[0] == 0x15 and answer[5] == 2, answer[:8]


def test_tls_1_2_needs_the_operator_to_allow_it(auth_server: RunningServer, tmp_path: Path) -> None:
    """Default minimum is 1.3; ``tls.min_version: "1.2"`` allows 1.2 but still not 1.1."""
    ctx = auth_server.ssl_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    _refused(auth_server, ctx)
    with start_server(tmp_path, store="mem", config={"tls": {"min_version": "1.2"}}) as server:
        ctx = server.ssl_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with httpx.Client(base_url=server.url, verify=ctx) as client:
            assert client.get("/version").status_code == 200
        answer = _server_answer_to_hello(server.port, 0x0302)
        assert not answer.startswith(b"\x16")


# --------------------------------------------------------------------------- slow clients

IDLE_S = 2.0
HEADER_S = 2.0


def _closed_after(sock: ssl.SSLSocket, trickle: bytes | None, limit: float) -> float:
    """Seconds until the server closes ``sock``; optionally sends ``trickle`` every 0.25 s."""
    start = time.monotonic()
    sock.settimeout(0.25)
    while time.monotonic() - start < limit:
        try:
            if trickle is not None:
                sock.sendall(trickle)
            if not sock.recv(4096):
                return time.monotonic() - start
        except TimeoutError:
            continue
        except (OSError, ssl.SSLError):
            return time.monotonic() - start
    raise AssertionError(f"connection still open after {limit} s")


def _h2_closed_after(client: H2Client, trickle: bytes | None, limit: float) -> float:
    """``_closed_after`` for an HTTP/2 connection (the server's frames are read meanwhile)."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if trickle is not None:
            try:
                client.sock.sendall(trickle)
            except OSError:
                return time.monotonic() - start
        client.receive(0.25)
        if client.eof:
            return time.monotonic() - start
    raise AssertionError(f"connection still open after {limit} s")


def _half_header_block() -> tuple[bytes, bytes]:
    """A HEADERS frame that promises CONTINUATION, and one more CONTINUATION fragment.

    The HTTP/2 slowloris: a request head that never ends. Only CONTINUATION
    frames may follow (anything else is a protocol error), so that is what
    the client trickles.
    """
    encoder = hpack.Encoder()
    head = HeadersFrame(1)
    head.data = encoder.encode([(":method", "POST"), (":path", "/v1/key/create/slow")])
    more = ContinuationFrame(1)
    more.data = encoder.encode([("x-a", "b")])
    return head.serialize(), more.serialize()


@pytest.mark.slow
def test_slow_and_idle_clients_are_cut_without_blocking_others(tmp_path: Path) -> None:
    """On both protocols: a head that never ends, a body that never ends, an idle connection.

    HTTP/2 has no request-head timer of its own: a header block that never
    ends opens no stream, so the connection is idle and the idle timeout
    (GOAWAY, then close) ends it.
    """
    env = {"KES_HTTP_IDLE_TIMEOUT": str(IDLE_S), "KES_HTTP_HEADER_TIMEOUT": str(HEADER_S)}
    with start_server(tmp_path, store="mem", env=env) as server:
        results: dict[str, object] = {}

        def slowloris() -> None:
            with open_tls(server.port, server.ssl_context()) as sock:
                sock.sendall(b"POST /v1/key/create/slow HTTP/1.1\r\nHost: localhost\r\n")
                results["slowloris"] = _closed_after(sock, b"X-a: b\r\n", 15)

        def slowloris_h2() -> None:
            with H2Client(server.port, server.ssl_context()) as client:
                # Settle first: our SETTINGS ACK may not fall inside the header block.
                assert client.wait(lambda: client.settled)
                head, more = _half_header_block()
                client.sock.sendall(head)
                results["slowloris-h2"] = _h2_closed_after(client, more, 15)
                results["slowloris-h2-goaway"] = client.goaway

        def stalled_body() -> None:
            # The policy routes have KES's 10 s timeout: the shortest of any body route.
            with open_tls(server.port, server.ssl_context(), timeout=20) as sock:
                sock.sendall(
                    b"POST /v1/policy/write/stalled HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Length: 100\r\n\r\n" + b'{"allow":'
                )
                start = time.monotonic()
                resp = read_response(sock)
                results["stalled"] = (resp.status, resp.body, time.monotonic() - start)

        def stalled_body_h2() -> None:
            with H2Client(server.port, server.ssl_context(), timeout=20) as client:
                start = time.monotonic()
                sid = client.send_request(
                    b"POST",
                    b"/v1/policy/write/stalled",
                    b'{"allow":',
                    headers=((b"content-length", b"100"),),
                )
                resp = client.response(sid)
                results["stalled-h2"] = (resp.status, resp.body, time.monotonic() - start)
                # Only that stream ended: the connection serves the next request.
                results["stalled-h2-next"] = client.request(b"GET", b"/version").status

        def idle() -> None:
            with open_tls(server.port, server.ssl_context()) as sock:
                sock.sendall(b"GET /version HTTP/1.1\r\nHost: localhost\r\n\r\n")
                assert read_response(sock).status == 200
                results["idle"] = _closed_after(sock, None, 15)

        def idle_h2() -> None:
            with H2Client(server.port, server.ssl_context()) as client:
                assert client.request(b"GET", b"/version").status == 200
                results["idle-h2"] = _h2_closed_after(client, None, 15)
                results["idle-h2-goaway"] = client.goaway

        threads = [
            threading.Thread(target=f)
            for f in (slowloris, slowloris_h2, stalled_body, stalled_body_h2, idle, idle_h2)
        ]
        for t in threads:
            t.start()
        # Everyone else is served promptly, on either protocol, while those hold connections.
        with server.client() as over_h1, server.client(http2=True) as over_h2:
            while alive := [t for t in threads if t.is_alive()]:
                for client in (over_h1, over_h2):
                    start = time.monotonic()
                    assert client.post(f"/v1/key/create/k{time.monotonic_ns()}").status_code == 200
                    assert time.monotonic() - start < 1.0
                alive[0].join(0.2)
            assert over_h2.get("/version").http_version == "HTTP/2"

        # The HTTP/2 idle timer runs from the handshake, a little before the clock here starts.
        for name, limit in (("slowloris", HEADER_S), ("slowloris-h2", IDLE_S - 0.5)):
            took = results[name]
            assert isinstance(took, float) and limit - 0.5 < took < limit + 2.5, (name, took)
        for name in ("idle", "idle-h2"):
            took = results[name]
            assert isinstance(took, float) and IDLE_S - 0.5 < took < IDLE_S + 2.5, (name, took)
        for name in ("slowloris-h2-goaway", "idle-h2-goaway"):
            goaway = results[name]
            assert isinstance(goaway, h2.events.ConnectionTerminated), (name, goaway)
            assert goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
        for name in ("stalled", "stalled-h2"):
            stalled = results[name]
            assert isinstance(stalled, tuple), (name, stalled)
            status, body, waited = stalled
            assert (status, body) == (503, b'{"message":"request timeout exceeded"}'), name
            assert 9.0 < float(waited) < 13.0, (name, waited)
        assert results["stalled-h2-next"] == 200
        assert "Traceback" not in server.logs()


@pytest.mark.parametrize("value", ["0", "-1", "abc", "inf", "nan"])
def test_timeout_variables_must_be_positive_seconds(value: str) -> None:
    with pytest.raises(StartupError, match="KES_HTTP_IDLE_TIMEOUT"):
        env_seconds(IDLE_TIMEOUT_ENV, {"KES_HTTP_IDLE_TIMEOUT": value})
    assert env_seconds(HEADER_TIMEOUT_ENV, {}) == 5.0
    assert env_seconds(HEADER_TIMEOUT_ENV, {"KES_HTTP_HEADER_TIMEOUT": "2.5"}) == 2.5
