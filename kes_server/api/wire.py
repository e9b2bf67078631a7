"""The JSON bodies of the crypto endpoints (generate, encrypt, decrypt).

Pure functions of a master key and a parsed request document, so the
handlers in ``key.py`` stay a few lines each and these can be tested alone.
The replies are assembled as bytes: they are on the path of every object
MinIO stores.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from kes_server.core.b64 import decode_std
from kes_server.core.crypto import new_key, seal, unseal
from kes_server.core.errors import InvalidArgument

__all__ = ["b64_field", "decrypt_reply", "encrypt_reply", "generate_reply", "parse_json"]


def parse_json(data: bytes, *, required: bool = True) -> Any:
    """A request's JSON document; 400 ``invalid json`` when it is not one."""
    if not data.strip():
        if required:
            raise InvalidArgument("invalid json")
        return {}
    try:
        # UTF-8 only, as Go's decoder (json.loads would also sniff UTF-16/32).
        return json.loads(data.decode())
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a few hundred KiB of "[[[[..." nests deeper than the
        # C decoder allows; that is malformed input, not an internal error.
        raise InvalidArgument("invalid json") from None


def b64_field(obj: Any, name: str) -> bytes:
    """A base64 field of a JSON object; absent, null and "" all mean empty (spec §4.5)."""
    if not isinstance(obj, dict):
        raise InvalidArgument("invalid json")
    value = obj.get(name)
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise InvalidArgument("invalid json")
    try:
        return decode_std(value)
    except ValueError:
        raise InvalidArgument("invalid json") from None


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def generate_reply(key: bytes, body: Any) -> bytes:
    """A fresh data key, sealed under ``key`` with the request's context."""
    context = b64_field(body, "context")
    data_key = new_key()
    return (
        b'{"plaintext":"'
        + _b64(data_key)
        + b'","ciphertext":"'
        + _b64(seal(key, data_key, context))
        + b'"}'
    )


def encrypt_reply(key: bytes, body: Any) -> bytes:
    plaintext = b64_field(body, "plaintext")
    context = b64_field(body, "context")
    return b'{"ciphertext":"' + _b64(seal(key, plaintext, context)) + b'"}'


def decrypt_reply(key: bytes, body: Any) -> bytes:
    ciphertext = b64_field(body, "ciphertext")
    context = b64_field(body, "context")
    return b'{"plaintext":"' + _b64(unseal(key, ciphertext, context)) + b'"}'
