"""The Python ceiling: bare asyncio + ssl doing kes-server's generate/decrypt work.

Why it exists: "is kes-server slow?" needs a reference that runs on the same
interpreter, the same OpenSSL and the same two cores in the same run. This
server does everything a KES generate/decrypt request strictly needs and
nothing a framework adds: the same mTLS context as kes-server
(``kes_server.tls.server_context``, ``--auth off``: any client certificate,
verification bypassed through the same OpenSSL hook), the client identity
hashed once per connection, HTTP/1.1 keep-alive parsed by hand, the JSON body
decoded, and ``kes_server.core.crypto.seal``/``unseal`` with a fixed master key.
No routing table, no policies, no audit, no metrics.

It also answers ``GET /version`` with a constant, so the load generator's own
ceiling can be measured with (almost) no server work, and accepts
``POST /v1/key/create/*`` so the benchmark's setup step works unchanged.

Run: ``python -m bench.baseline_server --addr 127.0.0.1:7400 --cert S --key K``;
it prints ``ready`` once listening and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import signal
import sys
from collections.abc import Sequence

from kes_server.core.crypto import new_key, seal, unseal
from kes_server.core.errors import APIError
from kes_server.core.identity import identity_of_der
from kes_server.tls import server_context

__all__ = ["main", "serve"]

#: A fixed master key: the baseline measures request handling, not key storage.
MASTER_KEY = bytes(range(32))
_VERSION = b'{"version":"baseline"}'


def _response(status: int, body: bytes) -> bytes:
    reason = b"OK" if status == 200 else b"Error"
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
        % (status, reason, len(body))
        + body
    )


def _field(doc: object, name: str) -> bytes:
    if not isinstance(doc, dict):
        raise ValueError("invalid json")
    value = doc.get(name) or ""
    return base64.b64decode(value, validate=True) if value else b""


def handle(method: bytes, path: bytes, body: bytes) -> bytes:
    """One request -> the full response bytes."""
    try:
        if method == b"POST" and path.startswith(b"/v1/key/generate/"):
            context = _field(json.loads(body), "context")
            data_key = new_key()
            payload = (
                b'{"plaintext":"'
                + base64.b64encode(data_key)
                + b'","ciphertext":"'
                + base64.b64encode(seal(MASTER_KEY, data_key, context))
                + b'"}'
            )
            return _response(200, payload)
        if method == b"POST" and path.startswith(b"/v1/key/decrypt/"):
            doc = json.loads(body)
            plaintext = unseal(MASTER_KEY, _field(doc, "ciphertext"), _field(doc, "context"))
            return _response(200, b'{"plaintext":"' + base64.b64encode(plaintext) + b'"}')
        if method == b"GET" and path == b"/version":
            return _response(200, _VERSION)
        if method == b"POST" and path.startswith(b"/v1/key/create/"):
            return _response(200, b"")
    except (ValueError, binascii.Error):
        return _response(400, b'{"message":"invalid json"}')
    except APIError as exc:
        return _response(exc.status, json.dumps({"message": exc.message}).encode())
    return _response(404, b'{"message":"not found"}')


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    # KES derives the identity from every connection's certificate; so do we.
    _identity = identity_of_der(der) if der else ""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            line_end = head.index(b"\r\n")
            method, path, _version = head[:line_end].split(b" ", 2)
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            size = int(lower[at + 17 : lower.index(b"\r\n", at + 2)]) if at >= 0 else 0
            body = await reader.readexactly(size) if size else b""
            writer.write(handle(method, path, body))
            if b"\r\nconnection: close" in lower:
                break
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, OSError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int, cert: str, key: str) -> None:
    """Listen until SIGTERM/SIGINT."""
    ctx = server_context(cert=cert, key=key, auth=False, alpn=("http/1.1",))
    server = await asyncio.start_server(_connection, host, port, ssl=ctx, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.baseline_server")
    p.add_argument("--addr", default="127.0.0.1:7400")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    args = p.parse_args(argv)
    host, _, port = args.addr.rpartition(":")
    asyncio.run(serve(host, int(port), args.cert, args.key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
