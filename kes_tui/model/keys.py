"""Key material as an operator types it into the import dialog."""

from __future__ import annotations

import base64
import binascii
import re

from kes_server.core.crypto import KEY_SIZE

__all__ = ["parse_key_material"]


_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def parse_key_material(text: str) -> bytes:
    """Accept 64 hex digits or base64 of exactly 32 bytes; raise ``ValueError`` otherwise.

    Both forms appear in the wild (``openssl rand -hex 32``, ``-base64 32``),
    and guessing wrong would import a different key, so anything ambiguous
    or of the wrong length is refused with a reason.
    """
    text = text.strip()
    if _HEX.match(text):
        return bytes.fromhex(text)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not hex or base64") from None
    if len(raw) != KEY_SIZE:
        raise ValueError(f"a key must be {KEY_SIZE} bytes, this is {len(raw)}")
    return raw
