"""Base64 as Go's encoding/json reads a ``[]byte`` field (issue 13.5).

The table's answers were taken from Go 1.19 (``json.Unmarshal`` into a
``[]byte``): Go's standard decoder skips CR and LF anywhere, requires
padding, accepts non-zero bits in the last character and refuses
everything else (spaces, tabs, URL-safe letters, data after the padding).
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, strategies as st

from kes_server.core.b64 import decode_std

GO_ACCEPTS = [
    ("", b""),
    ("QUFC", b"AAB"),
    ("QUFBQQ==", b"AAAA"),
    ("QR==", b"A"),  # non-zero trailing bits: Go's StdEncoding is not strict
    ("QUF=", b"AA"),
    ("QUFB\n", b"AAA"),  # a trailing newline
    ("\r\nQUFB\r\n", b"AAA"),
    ("QU\n\nFB", b"AAA"),  # line-wrapped
    ("Q\nQ\n=\n=\n", b"A"),  # even inside the padding
    ("QQ=\r\n=\n", b"A"),
    ("\n", b""),
    ("\r", b""),
]

GO_REFUSES = [
    "QQ",  # padding is required
    "QQ=",
    "QQ===",
    "A===",
    "Q===",
    "=QQ=",
    "QQ==QQ==",  # data after the padding
    "QQ==\nQQ==",
    "QUFB=",  # padding after a whole quantum
    "QUFBQQ====",
    "QU\tFB",  # only CR and LF are skipped
    "QU FB",
    "QUFB ",
    "QUFB\v",
    "-_-_",  # URL-safe alphabet
    "QUFBä",
    "!!!!",
]


@pytest.mark.parametrize(("text", "data"), GO_ACCEPTS, ids=repr)
def test_what_go_accepts(text: str, data: bytes) -> None:
    assert decode_std(text) == data


@pytest.mark.parametrize("text", GO_REFUSES, ids=repr)
def test_what_go_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        decode_std(text)


@given(
    data=st.binary(max_size=64),
    breaks=st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(["\n", "\r", "\r\n"]))),
)
def test_line_breaks_anywhere_are_skipped(data: bytes, breaks: list[tuple[int, str]]) -> None:
    text = base64.b64encode(data).decode()
    for position, line_break in breaks:
        cut = position % (len(text) + 1)
        text = text[:cut] + line_break + text[cut:]
    assert decode_std(text) == data


@given(data=st.binary(min_size=1, max_size=64), position=st.integers(min_value=0))
def test_any_other_whitespace_is_refused(data: bytes, position: int) -> None:
    text = base64.b64encode(data).decode()
    cut = position % (len(text) + 1)
    for blank in (" ", "\t", "\v", "\f"):
        with pytest.raises(ValueError):
            decode_std(text[:cut] + blank + text[cut:])
