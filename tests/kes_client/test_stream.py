"""The NDJSON decoder must survive any split of the byte stream."""

from __future__ import annotations

import json

import pytest

from kes_client._errors import ProtocolError
from kes_client._stream import NDJSONDecoder, decode_ndjson

EVENTS = [
    {"time": "2022-01-06T15:50:28+01:00", "request": {"path": "/v1/key/create/k"}},
    {"message": "grüße ✓"},
    {"response": {"code": 200, "time": 183522}},
]
BODY = b"".join(json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in EVENTS)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(BODY)])
def test_any_chunking_yields_the_same_events(size: int) -> None:
    decoder = NDJSONDecoder()
    out = []
    for start in range(0, len(BODY), size):
        out.extend(decoder.feed(BODY[start : start + size]))
    out.extend(decoder.flush())
    assert out == EVENTS
    assert decoder.pending == 0


def test_incomplete_line_is_held_back() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a":1}\n{"b"') == [{"a": 1}]
    assert decoder.pending == 4
    assert decoder.feed(b":2}\n") == [{"b": 2}]


def test_blank_lines_and_crlf_are_ignored() -> None:
    assert decode_ndjson(b'\n{"a":1}\r\n\r\n  \n{"b":2}') == [{"a": 1}, {"b": 2}]


def test_last_line_without_newline_needs_flush() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a":1}') == []
    assert decoder.flush() == [{"a": 1}]
    assert decoder.flush() == []


def test_invalid_line_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="invalid JSON line"):
        NDJSONDecoder().feed(b"not json\n")


def test_overlong_line_is_refused() -> None:
    decoder = NDJSONDecoder(max_line_bytes=10)
    with pytest.raises(ProtocolError, match="longer than 10 bytes"):
        decoder.feed(b'{"a": "0123456789"')
