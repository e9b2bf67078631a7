"""The few HTTP/2 frames the load generator and the bare baseline exchange, by hand.

Why not the ``h2`` package: its state machine and HPACK cost ~150 µs of CPU
per request on this box, more than the real KES spends serving one. A load
generator that slow measures itself, and a "bare" baseline built on it is no
ceiling. Both sides here only need a handful of frame types, so they read and
write them directly (RFC 9113 §4 and §6) and encode headers as HPACK literals
that never touch the dynamic table (RFC 7541 §6.2.2). Decoding a peer's
header block is left to the ``hpack`` package, except for the ``:status``
of a response, which the load generator reads from the first field alone.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

__all__ = [
    "ACK",
    "CONTINUATION",
    "DATA",
    "END_HEADERS",
    "END_STREAM",
    "GOAWAY",
    "HEADERS",
    "PING",
    "PREFACE",
    "RST_STREAM",
    "SETTINGS",
    "SETTINGS_ENABLE_PUSH",
    "SETTINGS_HEADER_TABLE_SIZE",
    "SETTINGS_INITIAL_WINDOW_SIZE",
    "SETTINGS_MAX_CONCURRENT_STREAMS",
    "WINDOW_UPDATE",
    "FrameReader",
    "data_frames",
    "frame",
    "header_block",
    "literal_block",
    "parse_settings",
    "response_status",
    "settings",
    "window_update",
]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9

END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4

#: The default SETTINGS_MAX_FRAME_SIZE: every peer accepts frames this large.
MAX_FRAME = 16384

_HEAD = struct.Struct(">IBI")  # 24-bit length and type share the first word

#: HPACK static table (RFC 7541 Appendix A) indexes of the names these sides send.
_STATIC_NAMES = {
    ":authority": 1,
    ":method": 2,
    ":path": 4,
    ":scheme": 6,
    ":status": 8,
    "content-length": 28,
    "content-type": 31,
}
#: Static entries 8..14 are ``:status`` with a value: an indexed field is one byte.
_STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    """One frame: 9-byte header (24-bit length, type, flags, stream id) + payload."""
    return _HEAD.pack((len(payload) << 8) | kind, flags, stream) + payload


def settings(values: Sequence[tuple[int, int]] = (), *, ack: bool = False) -> bytes:
    return frame(
        SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in values)
    )


def parse_settings(payload: bytes) -> dict[int, int]:
    return {k: v for k, v in struct.iter_unpack(">HI", payload[: len(payload) // 6 * 6])}


def window_update(stream: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def data_frames(stream: int, body: bytes, *, end_stream: bool = True) -> bytes:
    """``body`` as DATA frames no larger than the default maximum frame size."""
    if not body:
        return frame(DATA, END_STREAM if end_stream else 0, stream)
    chunks = [body[i : i + MAX_FRAME] for i in range(0, len(body), MAX_FRAME)]
    last = len(chunks) - 1
    return b"".join(
        frame(DATA, END_STREAM if end_stream and i == last else 0, stream, chunk)
        for i, chunk in enumerate(chunks)
    )


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) whose prefix shares a byte with ``first``."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal_block(fields: Sequence[tuple[str, str]]) -> bytes:
    """A header block of literals without indexing (raw strings, no Huffman).

    Such a block is the same bytes on every request and leaves both dynamic
    tables untouched, so it can be built once and sent any number of times.
    """
    out = bytearray()
    for name, value in fields:
        raw = value.encode("ascii")
        index = _STATIC_NAMES.get(name, 0)
        out += _integer(index, 4, 0x00)
        if not index:
            out += _integer(len(name), 7, 0x00) + name.encode("ascii")
        out += _integer(len(raw), 7, 0x00) + raw
    return bytes(out)


def header_block(flags: int, payload: bytes) -> bytes:
    """A HEADERS frame's block fragment without its padding and priority fields."""
    start, end = 0, len(payload)
    if flags & PADDED:
        start, end = 1, end - payload[0]
    if flags & PRIORITY_FLAG:
        start += 5
    return payload[start:end]


def response_status(block: bytes) -> int:
    """The ``:status`` of a response header block (it is always the first field).

    The fast path is the one-byte indexed form servers use for the common
    statuses; anything else is decoded in full by ``hpack`` with a table of
    its own, which is right because the load generator announces a header
    table size of 0, so a server never refers to earlier blocks.
    """
    at = 0
    while at < len(block) and block[at] & 0xE0 == 0x20:  # dynamic table size updates
        at += 1
        if block[at - 1] & 0x1F == 0x1F:
            while block[at] & 0x80:
                at += 1
            at += 1
    if at < len(block) and block[at] & 0x80 and (block[at] & 0x7F) in _STATIC_STATUS:
        return _STATIC_STATUS[block[at] & 0x7F]
    import hpack

    try:
        fields = hpack.Decoder().decode(block, raw=True)
    except hpack.HPACKError as exc:  # e.g. a peer that ignored our header table size of 0
        raise ValueError(f"undecodable response header block: {exc}") from exc
    for name, value in fields:
        if name == b":status":
            return int(value)
    raise ValueError("response without :status")


class FrameReader:
    """Splits a byte stream into ``(type, flags, stream id, payload)`` frames."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
        buf = self._buffer + data if self._buffer else data
        at, size = 0, len(buf)
        while size - at >= 9:
            length = int.from_bytes(buf[at : at + 3], "big")
            end = at + 9 + length
            if end > size:
                break
            stream = int.from_bytes(buf[at + 5 : at + 9], "big") & 0x7FFFFFFF
            yield buf[at + 3], buf[at + 4], stream, buf[at + 9 : end]
            at = end
        self._buffer = buf[at:]
