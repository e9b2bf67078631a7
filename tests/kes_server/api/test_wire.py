"""The crypto endpoints' JSON bodies: base64 fields are read as Go reads them."""

from __future__ import annotations

import pytest

from kes_server.api.wire import b64_field
from kes_server.core.errors import InvalidArgument


@pytest.mark.parametrize("name", ["bytes", "plaintext", "ciphertext", "context"])
def test_line_wrapped_base64_is_accepted(name: str) -> None:
    assert b64_field({name: "QU\r\nFB\n"}, name) == b"AAA"


@pytest.mark.parametrize("value", ["QU FB", "QU\tFB", "QUFB=", 7, ["QUFB"]], ids=repr)
def test_what_go_refuses_is_invalid_json(value: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        b64_field({"plaintext": value}, "plaintext")
    assert info.value.message == "invalid json"


@pytest.mark.parametrize("body", [{}, {"plaintext": None}, {"plaintext": ""}], ids=repr)
def test_absent_null_and_empty_are_empty(body: dict[str, object]) -> None:
    assert b64_field(body, "plaintext") == b""
