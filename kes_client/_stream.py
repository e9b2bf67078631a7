"""Incremental NDJSON decoding, free of I/O.

KES streams traces and listings as newline-delimited JSON, and a network read
may end anywhere: in the middle of a line or of a UTF-8 sequence. The decoder
is fed whatever bytes arrive and hands back only complete objects, so the
sync and async clients share it and it can be tested byte by byte.
"""

from __future__ import annotations

import json
from typing import Any

from kes_client._errors import ProtocolError

__all__ = ["MAX_LINE_BYTES", "NDJSONDecoder", "decode_ndjson"]

#: A single event or list entry is tiny; a longer "line" means a broken stream,
#: and buffering it forever would let a misbehaving server exhaust memory.
MAX_LINE_BYTES = 4 * 1024 * 1024


class NDJSONDecoder:
    """Split a byte stream into JSON values, one per non-blank line."""

    def __init__(self, *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._buffer = bytearray()
        self._max_line_bytes = max_line_bytes

    def feed(self, data: bytes) -> list[Any]:
        """Add bytes; return every value whose line is now complete."""
        self._buffer += data
        values: list[Any] = []
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end < 0:
                break
            line = bytes(self._buffer[start:end])
            start = end + 1
            value = _decode_line(line)
            if value is not _BLANK:
                values.append(value)
        del self._buffer[:start]
        if len(self._buffer) > self._max_line_bytes:
            raise ProtocolError(f"stream line longer than {self._max_line_bytes} bytes")
        return values

    def flush(self) -> list[Any]:
        """End of stream: decode a last line that had no trailing newline."""
        line = bytes(self._buffer)
        self._buffer.clear()
        value = _decode_line(line)
        return [] if value is _BLANK else [value]

    @property
    def pending(self) -> int:
        """Bytes buffered that do not form a complete line yet."""
        return len(self._buffer)


_BLANK = object()


def _decode_line(line: bytes) -> Any:
    text = line.strip()
    if not text:
        return _BLANK
    try:
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        preview = text[:80].decode("utf-8", "replace")
        raise ProtocolError(f"invalid JSON line in stream: {preview!r}") from exc


def decode_ndjson(body: bytes) -> list[Any]:
    """Decode a complete NDJSON body (listings arrive whole)."""
    decoder = NDJSONDecoder(max_line_bytes=max(MAX_LINE_BYTES, len(body)))
    return decoder.feed(body) + decoder.flush()
