"""How a master key is serialised in a key store.

KES v0.17 stores exactly ``{"bytes":"<base64 of 32 bytes>"}``; later versions
add fields (``algorithm``, ``created_at``, ...), which we accept and ignore so
a store written by a newer KES stays readable. We write the v0.17 form so an
original KES can read our stores too.
"""

from __future__ import annotations

import base64
import json

from kes_server.core.b64 import decode_std

__all__ = ["KEY_SIZE", "decode_key", "encode_key"]

KEY_SIZE = 32


def encode_key(key: bytes) -> bytes:
    if len(key) != KEY_SIZE:
        raise ValueError("a master key must be 32 bytes")
    return b'{"bytes":"' + base64.b64encode(key) + b'"}'


def decode_key(data: bytes) -> bytes:
    """Parse a stored key; ValueError when it is not a 32-byte key record."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("key record is not valid JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("bytes"), str):
        raise ValueError("key record has no 'bytes' field")
    try:
        key = decode_std(obj["bytes"])  # as KES (Go's encoding/json) reads the file
    except ValueError:
        raise ValueError("key record 'bytes' is not base64") from None
    if len(key) != KEY_SIZE:
        raise ValueError("key record does not hold a 32-byte key")
    return key
