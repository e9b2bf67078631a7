"""No protocol switch, ever: h2c smuggling through a TLS proxy (issue 14, item 1).

The attack: a TLS proxy that forwards ``Upgrade`` (the usual nginx websocket
snippet, ``proxy_set_header Upgrade $http_upgrade; proxy_set_header
Connection "upgrade";``) passes a client's ``Upgrade: h2c`` to the server.
hypercorn answered ``101 Switching Protocols`` even on TLS (RFC 9113 §3.2
forbids h2c there), nginx then tunnelled raw bytes, and the client spoke
HTTP/2 straight to the kes-server over *the proxy's* trusted connection:
``X-Tls-Client-Cert`` set to root's public certificate made it root.

Here a real nginx runs docs/examples/nginx.conf with that snippet added, in
front of a kes-server whose root is enabled and which trusts nginx as its
TLS proxy. The client attempts the whole attack (upgrade, then a forged
header over h2 if a 101 came back) and must get a plain 400 instead, audited
under its own identity and counted in the error metric. A websocket
``Upgrade`` (which once skipped identity, audit and metrics) and upgrades
sent straight to the kes-server are refused the same way.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kes_server.core.certs import new_identity
from kes_server.core.identity import identity_of_pem
from tests.support.h2client import H2Client
from tests.support.nginx import NginxProxy, start_nginx
from tests.support.rawhttp import RawResponse, read_response
from tests.support.server import ClientIdentity, RunningServer, free_port, start_server
from tests.support.trace import LiveTrace

pytestmark = [pytest.mark.e2e, pytest.mark.nginx]

HEADER = "X-Tls-Client-Cert"
SELF = b"/v1/identity/self/describe"
REFUSAL = {"message": "protocol upgrades are not supported"}


def forward_upgrade(site: str) -> str:
    """The websocket snippet: nginx forwards the client's ``Upgrade`` to the backend."""
    pattern = re.compile(r'^(\s*)proxy_set_header\s+Connection\s+"";', re.MULTILINE)
    snippet = r'\1proxy_set_header Upgrade $http_upgrade;\n\1proxy_set_header Connection "upgrade";'
    site, count = pattern.subn(snippet, site)
    assert count == 1, "docs/examples/nginx.conf no longer sets the Connection header"
    return site


@dataclass
class Deployment:
    backend: RunningServer
    proxy: NginxProxy
    intruder: ClientIdentity

    def context(self, who: ClientIdentity) -> ssl.SSLContext:
        return self.backend.ssl_context(who)


def _identity(directory: Path, name: str) -> ClientIdentity:
    key_pem, cert_pem = new_identity(name, key_type="ecdsa")
    cert, key = directory / f"{name}.cert", directory / f"{name}.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    return ClientIdentity(cert, key, identity_of_pem(cert_pem))


@pytest.fixture(name="deployment", scope="module")
def _deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    directory = tmp_path_factory.mktemp("smuggling")
    nginx_client = _identity(directory, "nginx-client")
    proxy_config = {"identities": [nginx_client.identity], "header": {"cert": HEADER}}
    with start_server(
        directory / "kes", config={"tls": {"proxy": proxy_config}}, store="mem"
    ) as backend:
        with start_nginx(
            host="127.0.0.1",
            port=free_port(),
            upstreams=[f"127.0.0.1:{backend.port}"],
            server_cert=backend.directory / "server.cert",
            server_key=backend.directory / "server.key",
            client_cert=nginx_client.cert,
            client_key=nginx_client.key,
            upstream_ca=backend.ca_file,
            upstream_name="localhost",
            edit_site=forward_upgrade,
        ) as proxy:
            yield Deployment(backend, proxy, _identity(directory, "intruder"))


def _connect(port: int, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def _head(sock: ssl.SSLSocket) -> tuple[int, bytes]:
    """The status of the answer, and every byte read so far (head included)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {buf!r}")
        buf += chunk
    return int(buf.split(b" ", 2)[1]), buf


def _errors(server: RunningServer) -> float:
    """``kes_http_request_error``: requests answered with a 4xx so far."""
    with server.client() as root:
        text = root.get("/v1/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.removesuffix("_total") == "kes_http_request_error":
                return float(sample.value)
    raise AssertionError("no kes_http_request_error metric")


@dataclass
class Attempt:
    status: int
    #: The answer to the upgrade request when it was refused.
    answer: RawResponse | None = None
    #: Who the server took a smuggled request (forged header) to be, after a 101.
    smuggled_as: str | None = None


def smuggle_h2c(port: int, ctx: ssl.SSLContext, path: bytes, forged: ClientIdentity) -> Attempt:
    """``Upgrade: h2c``; if the server switches, ask over h2 with a forged proxy header."""
    with _connect(port, ctx) as sock:
        h2 = H2Client(sock, upgraded=True)
        sock.sendall(
            b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\n"
            b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            b"HTTP2-Settings: " + h2.upgrade_settings + b"\r\n\r\n"
        )
        status, buf = _head(sock)
        if status != 101:
            return Attempt(status, read_response(sock, already=buf))
        h2.flush()  # the client preface, now that the tunnel is up
        h2.feed(buf.split(b"\r\n\r\n", 1)[1])
        forged_header = quote(forged.cert.read_text(), safe="").encode()
        sid = h2.request(b"GET", SELF, headers=((HEADER.lower().encode(), forged_header),))
        answer = h2.response(sid)
        if answer.status != 200:
            return Attempt(status, smuggled_as=f"nobody (status {answer.status})")
        return Attempt(status, smuggled_as=str(json.loads(bytes(answer.data))["identity"]))


def upgrade_websocket(port: int, ctx: ssl.SSLContext, path: bytes) -> Attempt:
    with _connect(port, ctx) as sock:
        sock.sendall(
            b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\n"
            b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        status, buf = _head(sock)
        return Attempt(status, read_response(sock, already=buf) if status != 101 else None)


@pytest.mark.parametrize("via", ["nginx", "direct"])
@pytest.mark.parametrize("protocol", ["h2c", "websocket"])
def test_an_upgrade_is_refused_and_audited(deployment: Deployment, via: str, protocol: str) -> None:
    backend = deployment.backend
    port = deployment.proxy.port if via == "nginx" else backend.port
    ctx = deployment.context(deployment.intruder)
    path = f"/v1/key/list/upgrade-{secrets.token_hex(4)}".encode()
    trace = LiveTrace.of(backend)
    errors_before = _errors(backend)
    try:
        if protocol == "h2c":
            attempt = smuggle_h2c(port, ctx, path, backend.root)
        else:
            attempt = upgrade_websocket(port, ctx, path)
        assert attempt.status != 101, (
            f"the server switched protocols; a smuggled request was served as "
            f"{'ROOT' if attempt.smuggled_as == backend.root_identity else attempt.smuggled_as}"
        )
        assert attempt.answer is not None
        assert attempt.status == 400
        assert attempt.answer.content_type.startswith("application/json")
        assert json.loads(attempt.answer.body) == REFUSAL
        event = trace.next_event(lambda e: e["request"]["path"] == path.decode(), 5.0)
    finally:
        trace.close()
    # Audited as the caller (through nginx: the client nginx forwards, not nginx).
    assert event["request"]["identity"] == deployment.intruder.identity
    assert event["response"]["code"] == 400
    assert _errors(backend) == errors_before + 1  # and counted, like any 4xx
    assert "Traceback" not in backend.logs()


def test_the_forwarding_proxy_still_serves_ordinary_requests(deployment: Deployment) -> None:
    """nginx now sends ``Connection: upgrade`` on every request: only real upgrades are refused."""
    who = deployment.intruder
    with _connect(deployment.proxy.port, deployment.context(who)) as sock:
        sock.sendall(b"GET " + SELF + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = read_response(sock)
    assert answer.status == 403  # its own identity, which holds no policy
    with _connect(deployment.proxy.port, deployment.context(deployment.backend.root)) as sock:
        sock.sendall(b"GET " + SELF + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = read_response(sock)
    assert answer.status == 200
    assert json.loads(answer.body)["identity"] == deployment.backend.root_identity
