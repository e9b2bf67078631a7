"""Ciphertext encodings of every KES era, parsed into one :class:`Sealed` value.

A KES ciphertext is always the same five facts (AEAD, key id, 16-byte iv,
12-byte nonce, sealed bytes) but three releases laid them out differently
(spec §4.3):

=========  ================================  ==================================
format     written by                        layout
=========  ================================  ==================================
json       up to v0.19.1 (our v0.17 target)  ``{"aead":..,"id":..,"iv":..,..}``
msgpack    v0.19.2 - 2023 releases           5-array ``[aead, id, iv, nonce, bytes]``
binary     2024 releases                     ``bytes || iv || nonce``, no header
=========  ================================  ==================================

Clients may hold ciphertexts from any of them, so :func:`decode` reads all
three, telling them apart by the first byte as upstream does (``{`` JSON,
``0x95`` msgpack, anything else binary). We only ever *write* the v0.17 JSON
form (:func:`encode_json`), since that is what v0.17 clients can read back.

Errors follow spec §4.4: malformed JSON input gets the exact v0.17 messages,
in v0.17's order (parse, key id, iv size, algorithm, nonce size), because
v0.17 clients and tests match on them; a malformed msgpack or binary
ciphertext only ever gets the generic "not authentic" error, as in the
releases that introduced those formats.

This module is pure: it parses and serialises, it never touches key material
(the key-id check takes the expected id, not the key) — see ``crypto.py``.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn

import msgpack

from kes_server.core.b64 import decode_std
from kes_server.core.errors import DecryptionFailed, UnsupportedAlgorithm

__all__ = [
    "BINARY_MIN_SIZE",
    "IV_SIZE",
    "JSON_AES",
    "JSON_CHACHA20",
    "MSGPACK_AES",
    "MSGPACK_CHACHA20",
    "NONCE_SIZE",
    "Algorithm",
    "Format",
    "Sealed",
    "decode",
    "decode_binary",
    "decode_json",
    "decode_msgpack",
    "encode_binary",
    "encode_json",
    "encode_msgpack",
]

#: How a ciphertext is laid out (spec §4.3).
Format = Literal["json", "msgpack", "binary"]
#: The two AEAD constructions of spec §4.2, by the names the vectors use.
Algorithm = Literal["AES", "ChaCha20"]

IV_SIZE: Final = 16
NONCE_SIZE: Final = 12
#: A binary ciphertext needs at least one byte beside its iv and nonce
#: (2024 ``SecretKey.Decrypt`` rejects ``len <= 28``).
BINARY_MIN_SIZE: Final = IV_SIZE + NONCE_SIZE + 1

JSON_AES: Final = "AES-256-GCM-HMAC-SHA-256"
JSON_CHACHA20: Final = "ChaCha20Poly1305"
MSGPACK_AES: Final = "AES256-GCM_SHA256"
MSGPACK_CHACHA20: Final = "XCHACHA20-POLY1305"

# Each format accepts only its own spelling of the AEAD name: v0.17 knows only
# the JSON names, and v0.22's msgpack decoder only the msgpack ones.
_JSON_ALGORITHMS: Final[dict[str, Algorithm]] = {JSON_AES: "AES", JSON_CHACHA20: "ChaCha20"}
_MSGPACK_ALGORITHMS: Final[dict[str, Algorithm]] = {
    MSGPACK_AES: "AES",
    MSGPACK_CHACHA20: "ChaCha20",
}
_ALGORITHMS: Final[dict[str, Algorithm]] = {**_JSON_ALGORITHMS, **_MSGPACK_ALGORITHMS}
_JSON_NAMES: Final[dict[Algorithm, bytes]] = {
    "AES": JSON_AES.encode(),
    "ChaCha20": JSON_CHACHA20.encode(),
}
_MSGPACK_NAMES: Final[dict[Algorithm, str]] = {"AES": MSGPACK_AES, "ChaCha20": MSGPACK_CHACHA20}

# The v0.17 error texts (spec §1.5), shared by every JSON check below.
_INVALID_CIPHERTEXT: Final = "invalid ciphertext"
_KEY_ID_MISMATCH: Final = "invalid ciphertext: key ID mismatch"
_INVALID_IV_SIZE: Final = "invalid iv size"
_INVALID_NONCE_SIZE: Final = "invalid nonce size"


@dataclass(frozen=True, slots=True)
class Sealed:
    """One parsed ciphertext, whatever format it came in.

    ``aead`` is the algorithm name exactly as written in the ciphertext (so a
    caller can tell the eras' spellings apart); it is ``""`` for the binary
    format, which names no algorithm. ``key_id`` is ``""`` when the
    ciphertext carries none (pre-id JSON, binary). ``data`` is the AEAD
    output, ciphertext followed by the 16-byte tag.
    """

    aead: str
    key_id: str
    iv: bytes
    nonce: bytes
    data: bytes
    format: Format

    @property
    def algorithm(self) -> Algorithm | None:
        """The AEAD construction ``aead`` names, or None if it names none we know."""
        return _ALGORITHMS.get(self.aead)


def decode(raw: bytes, *, key_id: str | None = None) -> Sealed:
    """Parse a ciphertext of any era, telling the format by its first byte.

    ``key_id`` is the id of the key about to decrypt: when given, a ciphertext
    naming a different key is rejected at the point of the v0.17 check order
    where v0.17 rejects it (after parsing, before the iv check), so callers
    get the same error v0.17 would give for a ciphertext with several faults.
    A ciphertext without an id passes (older releases wrote none).

    The returned value is always well-formed: iv and nonce have their sizes
    and, except for binary, ``aead`` is a name of its format.

    Raises:
        DecryptionFailed: malformed input (v0.17 messages for JSON input).
        UnsupportedAlgorithm: JSON input with an unknown ``aead`` (422).
    """
    first = raw[:1]
    if first == b"{":
        return decode_json(raw, key_id=key_id)
    if first == b"\x95":
        return decode_msgpack(raw, key_id=key_id)
    return decode_binary(raw)


# ---------------------------------------------------------------------- JSON
# v0.17 parses with Go's encoding/json into a struct, and we mirror the parts
# of its behaviour that decide between success and "invalid ciphertext":
#   * keys match field names exactly, else case-insensitively (Go's
#     EqualFold, under which the long s "ſ" equals "s");
#   * unknown keys are ignored, a repeated key overwrites the earlier value;
#   * null leaves a string field untouched but empties a []byte field;
#   * []byte fields are padded standard base64, in which Go skips CR and LF;
#   * anything else of the wrong type, NaN/Infinity and trailing data fail.
_STRING_FIELDS: Final = {"aead": 0, "id": 1}
_BYTES_FIELDS: Final = {"iv": 2, "nonce": 3, "bytes": 4}
_FIELDS: Final = {**_STRING_FIELDS, **_BYTES_FIELDS}


class _Number:
    """Stands in for a JSON number: we never use one, only reject it by type."""


_NUMBER: Final = _Number()


def _number(_text: str) -> _Number:
    """Skip converting numbers: ignored fields may hold any, even huge, ones."""
    return _NUMBER


def _reject_constant(name: str) -> NoReturn:
    """Reject NaN and Infinity, which Python accepts but JSON (and Go) do not."""
    raise ValueError(f"invalid JSON constant {name}")


def _pairs(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Keep objects as key/value pairs, so repeated keys can be resolved as Go does."""
    return pairs


_JSON_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_pairs,
    parse_int=_number,
    parse_float=_number,
    parse_constant=_reject_constant,
)


def _go_fold(name: str) -> str:
    """Case-fold a JSON key the way Go's encoding/json matches field names."""
    return name.lower().replace("ſ", "s")


def decode_json(raw: bytes, *, key_id: str | None = None) -> Sealed:
    """Parse the v0.17 JSON form, checking it in v0.17's order with v0.17's errors.

    The checks (spec §4.4): unparseable JSON or base64 → ``invalid
    ciphertext``; foreign ``id`` (only if ``key_id`` is given) → ``invalid
    ciphertext: key ID mismatch``; iv not 16 bytes → ``invalid iv size``;
    unknown ``aead`` → 422 ``unsupported cryptographic algorithm``; nonce not
    12 bytes → ``invalid nonce size``. The tag check is the caller's.
    """
    values: list[Any] = ["", "", b"", b"", b""]  # aead, id, iv, nonce, bytes
    try:
        # Go replaces invalid UTF-8 inside strings with U+FFFD; outside strings
        # the replacement character is a syntax error either way.
        pairs = _JSON_DECODER.decode(raw.decode("utf-8", "replace"))
        for name, value in pairs:
            index = _FIELDS.get(name)
            if index is None:
                index = _FIELDS.get(_go_fold(name))
                if index is None:
                    continue
            if value is None:
                if index >= 2:
                    values[index] = b""
            elif type(value) is not str:
                raise ValueError(f"{name}: not a string")
            elif index < 2:
                values[index] = value
            else:
                values[index] = decode_std(value)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, binascii.Error
        raise DecryptionFailed(_INVALID_CIPHERTEXT) from err
    aead, kid, iv, nonce, data = values
    if key_id is not None and kid and kid != key_id:
        raise DecryptionFailed(_KEY_ID_MISMATCH)
    if len(iv) != IV_SIZE:
        raise DecryptionFailed(_INVALID_IV_SIZE)
    if aead not in _JSON_ALGORITHMS:
        raise UnsupportedAlgorithm()
    if len(nonce) != NONCE_SIZE:
        raise DecryptionFailed(_INVALID_NONCE_SIZE)
    return Sealed(aead, kid, iv, nonce, data, "json")


# Go's json.Marshal escapes these beyond what JSON requires; a lone surrogate
# (Python's analogue of invalid UTF-8) becomes U+FFFD as Go does.
_GO_JSON_ESCAPES: Final[dict[int, str]] = {
    **{c: f"\\u{c:04x}" for c in range(0x20)},
    **{c: "\ufffd" for c in range(0xD800, 0xE000)},
    ord('"'): '\\"',
    ord("\\"): "\\\\",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def _json_string_body(text: str) -> bytes:
    """The inside of a JSON string literal, escaped byte-for-byte as Go would."""
    if text.isascii() and text.isalnum():  # every real key id: hex digits
        return text.encode()
    return text.translate(_GO_JSON_ESCAPES).encode()


def _b64(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False)


def encode_json(sealed: Sealed) -> bytes:
    """Serialise as v0.17 does: compact ``{"aead","id","iv","nonce","bytes"}``.

    The output is byte-identical to v0.17's ``json.Marshal`` (same key order,
    padded base64, ``id`` omitted when empty as its ``omitempty`` tag does),
    so a v0.17 client or server reads it back. ``aead`` is written with the
    JSON spelling whatever format ``sealed`` came from, so a msgpack
    ciphertext can be converted; a binary one names no algorithm and cannot.

    Raises:
        ValueError: ``sealed`` names no known algorithm, or iv/nonce size is wrong.
    """
    algorithm = _check_encodable(sealed)
    parts = [b'{"aead":"', _JSON_NAMES[algorithm]]
    if sealed.key_id:
        parts += (b'","id":"', _json_string_body(sealed.key_id))
    parts += (
        b'","iv":"',
        _b64(sealed.iv),
        b'","nonce":"',
        _b64(sealed.nonce),
        b'","bytes":"',
        _b64(sealed.data),
        b'"}',
    )
    return b"".join(parts)


def _check_encodable(sealed: Sealed) -> Algorithm:
    """Refuse to write a ciphertext no KES release could read back."""
    algorithm = sealed.algorithm
    if algorithm is None:
        raise ValueError(f"cannot encode ciphertext: unknown AEAD {sealed.aead!r}")
    _check_sizes(sealed.iv, sealed.nonce)
    return algorithm


def _check_sizes(iv: bytes, nonce: bytes) -> None:
    if len(iv) != IV_SIZE or len(nonce) != NONCE_SIZE:
        raise ValueError(f"iv must be {IV_SIZE} and nonce {NONCE_SIZE} bytes")


# ------------------------------------------------------------------- msgpack
def decode_msgpack(raw: bytes, *, key_id: str | None = None) -> Sealed:
    """Parse the v0.19.2-2023 form ``[aead:str, id:str, iv:bin16, nonce:bin12, bytes:bin]``.

    Mirrors v0.22's decoder: exactly five items of exactly those types, no
    trailing bytes, ``aead`` spelled the msgpack way, and a non-empty ``id``
    equal to ``key_id`` when that is given. Every failure is the generic
    :class:`DecryptionFailed`, as in v0.22.
    """
    try:
        items = msgpack.unpackb(raw, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException) as err:
        raise DecryptionFailed() from err
    if type(items) is not list or len(items) != 5:
        raise DecryptionFailed()
    aead, kid, iv, nonce, data = items
    if not (
        type(aead) is str
        and type(kid) is str
        and type(iv) is bytes
        and type(nonce) is bytes
        and type(data) is bytes
        and len(iv) == IV_SIZE
        and len(nonce) == NONCE_SIZE
        and aead in _MSGPACK_ALGORITHMS
    ):
        raise DecryptionFailed()
    if key_id is not None and kid and kid != key_id:
        raise DecryptionFailed()
    return Sealed(aead, kid, iv, nonce, data, "msgpack")


def encode_msgpack(sealed: Sealed) -> bytes:
    """Serialise in the v0.19.2-2023 msgpack form, byte-identical to v0.22's output.

    Useful to convert or to test; the server itself answers in JSON.

    Raises:
        ValueError: ``sealed`` names no known algorithm, or iv/nonce size is wrong.
    """
    algorithm = _check_encodable(sealed)
    items = (_MSGPACK_NAMES[algorithm], sealed.key_id, sealed.iv, sealed.nonce, sealed.data)
    packed: bytes = msgpack.packb(items, use_bin_type=True)
    return packed


# -------------------------------------------------------------------- binary
def decode_binary(raw: bytes) -> Sealed:
    """Split the 2024 headerless form ``bytes || iv(16) || nonce(12)``.

    Nothing in it can be checked but its length (at least
    :data:`BINARY_MIN_SIZE` bytes); the algorithm is unknown here and is left
    for the decrypting side to settle (spec §4.4).
    """
    if len(raw) < BINARY_MIN_SIZE:
        raise DecryptionFailed()
    split = len(raw) - IV_SIZE - NONCE_SIZE
    return Sealed("", "", raw[split:-NONCE_SIZE], raw[-NONCE_SIZE:], raw[:split], "binary")


def encode_binary(sealed: Sealed) -> bytes:
    """Serialise in the 2024 headerless form (drops the algorithm name and key id).

    Raises:
        ValueError: iv/nonce size is wrong, or ``data`` is empty (unreadable).
    """
    _check_sizes(sealed.iv, sealed.nonce)
    if not sealed.data:
        raise ValueError("binary ciphertext needs non-empty sealed bytes")
    return sealed.data + sealed.iv + sealed.nonce
