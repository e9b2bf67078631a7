"""Real sockets, no KES: connection and TLS failures become ``TransportError``\\ s.

A tiny HTTPS server (stdlib ``http.server`` + trustme) is enough to produce
the handshake failures a KES client meets in practice.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from kes_client import Client, ConnectError, TLSError


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        body = json.dumps({"version": "v0.0.0-test"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep test output clean."""


@pytest.fixture(name="ca", scope="module")
def _ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(name="files")
def _files(tmp_path: Path, ca: trustme.CA) -> dict[str, Path]:
    paths = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    leaf = ca.issue_cert("client@test")
    leaf.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    leaf.private_key_pem.write_to_path(str(paths["key"]))
    return paths


def _serve(ca: trustme.CA, *, client_ca: trustme.CA | None) -> Iterator[str]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(ctx)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(name="https_url")
def _https_url(ca: trustme.CA) -> Iterator[str]:
    yield from _serve(ca, client_ca=None)


@pytest.fixture(name="mtls_url")
def _mtls_url(ca: trustme.CA) -> Iterator[str]:
    yield from _serve(ca, client_ca=trustme.CA())  # trusts nobody we hold


def test_trusted_server_works(https_url: str, files: dict[str, Path]) -> None:
    with Client(https_url, cert=files["cert"], key=files["key"], ca=files["ca"]) as client:
        assert client.version() == "v0.0.0-test"


def test_untrusted_server_is_a_tls_error(https_url: str, files: dict[str, Path]) -> None:
    with Client(https_url, cert=files["cert"], key=files["key"]) as client:
        with pytest.raises(TLSError, match="server certificate not trusted") as info:
            client.version()
    # The cause and the fix travel together, and retrying cannot help.
    assert info.value.hint == "pass --ca FILE (the CA that signed the server certificate) or -k"
    assert str(info.value).endswith(info.value.hint)
    assert not info.value.retryable


def test_insecure_skips_server_verification(https_url: str, files: dict[str, Path]) -> None:
    with Client(https_url, cert=files["cert"], key=files["key"], insecure=True) as client:
        assert client.version() == "v0.0.0-test"


def test_rejected_client_certificate_is_a_tls_error(mtls_url: str, files: dict[str, Path]) -> None:
    with Client(mtls_url, cert=files["cert"], key=files["key"], ca=files["ca"]) as client:
        with pytest.raises(TLSError, match="does not trust the client certificate's CA") as info:
            client.version()
    assert "--cert/--key" in info.value.hint and not info.value.retryable


def test_plain_http_port_is_not_tls(files: dict[str, Path]) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{httpd.server_address[1]}"
        with Client(url, cert=files["cert"], key=files["key"], insecure=True) as client:
            with pytest.raises(TLSError, match="does not speak TLS") as info:
                client.version()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "check --server" in info.value.hint and not info.value.retryable


def test_nobody_listening_is_a_connect_error(files: dict[str, Path]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Client(f"127.0.0.1:{port}", cert=files["cert"], key=files["key"]) as client:
        with pytest.raises(ConnectError, match="cannot connect.*connection refused") as info:
            client.version()
    assert not isinstance(info.value, TLSError)
    # A refused connection is what a restarting server looks like: worth retrying.
    assert info.value.retryable and "is kes-server running there?" in info.value.hint
