"""The Python ceiling: bare asyncio + ssl doing kes-server's generate/decrypt work.

Why it exists: "is kes-server slow?" needs a reference that runs on the same
interpreter, the same OpenSSL and the same two cores in the same run. This
server does everything a KES generate/decrypt request strictly needs and
nothing a framework adds: the same mTLS context as kes-server
(``kes_server.tls.server_context``, ``--auth off``: any client certificate,
verification bypassed through the same OpenSSL hook), the client identity
hashed once per connection, HTTP/1.1 keep-alive parsed by hand (or HTTP/2 when
the client offers it: hand-written frames, request headers decoded with
``hpack``), the JSON body decoded, and ``kes_server.core.crypto.seal``/``unseal``
with a fixed master key. No routing table, no policies, no audit, no metrics.
``--loop uvloop`` runs it on uvloop, the loop kes-server is moving to, so each
kes-server row can be compared with the ceiling on its own event loop.

It also answers ``GET /version`` with a constant, so the load generator's own
ceiling can be measured with (almost) no server work, and accepts
``POST /v1/key/create/*`` so the benchmark's setup step works unchanged.

Run: ``python -m bench.baseline_server --addr 127.0.0.1:7400 --cert S --key K [--loop uvloop]``;
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

from bench import h2wire, loops
from kes_server.core.crypto import new_key, seal, unseal
from kes_server.core.errors import APIError
from kes_server.core.identity import identity_of_der
from kes_server.tls import server_context

__all__ = ["main", "serve"]

#: A fixed master key: the baseline measures request handling, not key storage.
MASTER_KEY = bytes(range(32))
_VERSION = b'{"version":"baseline"}'


def _h1_response(status: int, body: bytes) -> bytes:
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


def handle(method: bytes, path: bytes, body: bytes) -> tuple[int, bytes]:
    """One request -> status and JSON body, whatever the HTTP version."""
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
            return 200, payload
        if method == b"POST" and path.startswith(b"/v1/key/decrypt/"):
            doc = json.loads(body)
            plaintext = unseal(MASTER_KEY, _field(doc, "ciphertext"), _field(doc, "context"))
            return 200, b'{"plaintext":"' + base64.b64encode(plaintext) + b'"}'
        if method == b"GET" and path == b"/version":
            return 200, _VERSION
        if method == b"POST" and path.startswith(b"/v1/key/create/"):
            return 200, b""
    except (ValueError, binascii.Error):
        return 400, b'{"message":"invalid json"}'
    except APIError as exc:
        return exc.status, json.dumps({"message": exc.message}).encode()
    return 404, b'{"message":"not found"}'


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    # KES derives the identity from every connection's certificate; so do we.
    _identity = identity_of_der(der) if der else ""
    try:
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            await _h2_connection(reader, writer)
            return
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            line_end = head.index(b"\r\n")
            method, path, _version = head[:line_end].split(b" ", 2)
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            size = int(lower[at + 17 : lower.index(b"\r\n", at + 2)]) if at >= 0 else 0
            body = await reader.readexactly(size) if size else b""
            writer.write(_h1_response(*handle(method, path, body)))
            if b"\r\nconnection: close" in lower:
                break
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, OSError):
        pass
    finally:
        writer.close()


def _h2_response(sid: int, status: int, body: bytes) -> bytes:
    """HEADERS (``:status`` indexed when it can be, the rest literals) + DATA."""
    block = b"\x88" if status == 200 else h2wire.literal_block(((":status", str(status)),))
    block += h2wire.literal_block(
        (("content-type", "application/json"), ("content-length", str(len(body))))
    )
    return h2wire.frame(h2wire.HEADERS, h2wire.END_HEADERS, sid, block) + h2wire.data_frames(
        sid, body
    )


async def _h2_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """HTTP/2 with no more than a KES request needs: one HEADERS (+ DATA) in, one out.

    Flow control is honoured both ways (the peer's connection window for
    responses, WINDOW_UPDATEs for the request bodies read); priorities, push
    and trailers are not used by KES clients and are ignored.
    """
    import hpack

    if await reader.readexactly(len(h2wire.PREFACE)) != h2wire.PREFACE:
        return
    decoder = hpack.Decoder()
    frames = h2wire.FrameReader()
    open_streams: dict[int, tuple[bytes, bytes, list[bytes]]] = {}
    block: list[bytes] = []  # a header block split over CONTINUATION frames
    ends_stream = 0  # the END_STREAM flag of that block's HEADERS frame
    window = 65535  # the client's connection window for our DATA
    held: list[tuple[int, bytes]] = []  # responses waiting for window
    writer.write(h2wire.settings(((h2wire.SETTINGS_MAX_CONCURRENT_STREAMS, 256),)))
    while data := await reader.read(65536):
        out: list[bytes] = []
        consumed = 0
        for kind, flags, sid, payload in frames.feed(data):
            if kind == h2wire.DATA:
                consumed += len(payload)
                stream = open_streams.get(sid)
                if stream is not None:
                    stream[2].append(payload)
            elif kind in (h2wire.HEADERS, h2wire.CONTINUATION):
                if kind == h2wire.HEADERS:
                    block.append(h2wire.header_block(flags, payload))
                    ends_stream = flags & h2wire.END_STREAM
                else:
                    block.append(payload)
                if not flags & h2wire.END_HEADERS:
                    continue
                fields = dict(decoder.decode(b"".join(block), raw=True))
                block.clear()
                open_streams[sid] = (fields.get(b":method", b""), fields.get(b":path", b""), [])
                flags |= ends_stream
            elif kind == h2wire.SETTINGS and not flags & h2wire.ACK:
                out.append(h2wire.settings(ack=True))
                continue
            elif kind == h2wire.WINDOW_UPDATE and sid == 0:
                window += int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                continue
            elif kind == h2wire.PING and not flags & h2wire.ACK:
                out.append(h2wire.frame(h2wire.PING, h2wire.ACK, 0, payload))
                continue
            elif kind == h2wire.RST_STREAM:
                open_streams.pop(sid, None)
                continue
            elif kind == h2wire.GOAWAY:
                return
            else:
                continue
            if flags & h2wire.END_STREAM and sid in open_streams:
                method, path, body = open_streams.pop(sid)
                status, answer = handle(method, path, b"".join(body))
                held.append((len(answer), _h2_response(sid, status, answer)))
        while held and held[0][0] <= window:
            size, frames_out = held.pop(0)
            window -= size
            out.append(frames_out)
        if consumed:
            out.append(h2wire.window_update(0, consumed))
        if out:
            writer.write(b"".join(out))


async def serve(host: str, port: int, cert: str, key: str) -> None:
    """Listen until SIGTERM/SIGINT."""
    ctx = server_context(cert=cert, key=key, auth=False, alpn=("h2", "http/1.1"))
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
    p.add_argument("--loop", choices=loops.LOOPS, default="asyncio", help="event loop")
    args = p.parse_args(argv)
    host, _, port = args.addr.rpartition(":")
    loops.run(serve(host, int(port), args.cert, args.key), args.loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
