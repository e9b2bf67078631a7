"""A tiny raw HTTP/1.1 client over mutual TLS, for requests httpx refuses to send.

httpx (rightly) normalises paths (``a/../b``), escapes control characters and
rejects malformed targets, so it cannot reproduce what a hostile client puts
on the wire. Security tests need exactly those bytes, so this client writes
the request verbatim and parses only as much of the answer as the tests
need: status, headers and the body (``Content-Length``, chunked, or up to EOF).
"""

from __future__ import annotations

import select
import socket
import ssl
from dataclasses import dataclass, field

__all__ = ["RawResponse", "open_tls", "raw_request", "read_body", "read_response"]


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: Trailer fields after a chunked body (KES ends streamed lists with ``Status``/``Error``).
    trailers: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def open_tls(port: int, ctx: ssl.SSLContext, *, timeout: float = 10.0) -> ssl.SSLSocket:
    """A connected, handshaken TLS socket to 127.0.0.1:``port`` (HTTP/1.1 only)."""
    ctx.set_alpn_protocols(["http/1.1"])
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(sock, server_hostname="localhost")
    except BaseException:
        sock.close()
        raise


def _read_until(sock: ssl.SSLSocket, buf: bytearray, marker: bytes) -> int:
    while True:
        at = buf.find(marker)
        if at >= 0:
            return at
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response was complete")
        buf += chunk


def _read_exact(sock: ssl.SSLSocket, buf: bytearray, size: int) -> bytes:
    while len(buf) < size:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed inside the response body")
        buf += chunk
    out = bytes(buf[:size])
    del buf[:size]
    return out


def read_response(
    sock: ssl.SSLSocket,
    *,
    head: bool = False,
    already: bytes = b"",
    buffer: bytearray | None = None,
) -> RawResponse:
    """Read one response from ``sock`` (raises ConnectionError on a premature close).

    Pass the same ``buffer`` to read pipelined answers one after the other:
    bytes read past this answer stay in it for the next call. ``head=True``
    reads the status line and headers only (``read_body`` reads the rest).
    """
    buf = buffer if buffer is not None else bytearray(already)
    response = _read_head(sock, buf)
    if head or response.status in (204, 304):
        return response
    return read_body(sock, response, buf)


def _read_head(sock: ssl.SSLSocket, buf: bytearray) -> RawResponse:
    end = _read_until(sock, buf, b"\r\n\r\n")
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    del buf[: end + 4]
    _version, status, *reason = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(status), reason[0] if reason else "", headers)


def read_body(sock: ssl.SSLSocket, response: RawResponse, buffer: bytearray) -> RawResponse:
    """Read the body (and trailers) of ``response``, whose head was read into ``buffer``."""
    buf, headers = buffer, response.headers
    if "content-length" in headers:
        response.body = _read_exact(sock, buf, int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            at = _read_until(sock, buf, b"\r\n")
            size = int(bytes(buf[:at]).split(b";")[0], 16)
            del buf[: at + 2]
            if size == 0:
                while (at := _read_until(sock, buf, b"\r\n")) > 0:
                    name, _, value = bytes(buf[:at]).decode("latin-1").partition(":")
                    response.trailers[name.strip().lower()] = value.strip()
                    del buf[: at + 2]
                del buf[:2]  # the empty line that ends the trailer section
                break
            body += _read_exact(sock, buf, size + 2)[:-2]
        response.body = bytes(body)
    else:
        body = bytearray(buf)
        del buf[:]
        while chunk := sock.recv(65536):
            body += chunk
        response.body = bytes(body)
    return response


def raw_request(
    port: int,
    ctx: ssl.SSLContext,
    method: bytes,
    target: bytes,
    body: bytes = b"",
    *,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    timeout: float = 10.0,
) -> RawResponse:
    """Send one request with ``target`` written byte for byte; read the answer."""
    head = [method + b" " + target + b" HTTP/1.1", b"Host: localhost", b"Connection: close"]
    declared = any(n.lower() in (b"content-length", b"transfer-encoding") for n, _ in headers)
    if not declared and (body or method in (b"POST", b"PUT")):
        head.append(b"Content-Length: " + str(len(body)).encode())
    head += [name + b": " + value for name, value in headers]
    with open_tls(port, ctx, timeout=timeout) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n")
        early = _send_body(sock, body, timeout)
        return read_response(sock, head=method == b"HEAD", already=early)


def _send_body(sock: ssl.SSLSocket, body: bytes, timeout: float) -> bytes:
    """Send ``body`` in pieces, stopping early once the server has answered.

    A server refusing a body (413) answers and closes before reading it all;
    writing on regardless would only end in a reset that loses the answer.
    Returns what was already read of the answer. (A readable socket alone
    proves nothing: TLS 1.3 session tickets arrive after the handshake.)
    """
    view = memoryview(body)
    sock.settimeout(min(timeout, 2.0))
    try:
        while view:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable or sock.pending():
                sock.setblocking(False)
                try:
                    early = sock.recv(65536)
                except ssl.SSLWantReadError:
                    early = b""
                finally:
                    sock.settimeout(min(timeout, 2.0))
                if early:
                    return early
            sent = sock.send(view[:65536])
            view = view[sent:]
    except OSError:
        return b""
    finally:
        sock.settimeout(timeout)
    return b""
