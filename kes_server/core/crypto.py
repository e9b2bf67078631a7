"""Sealing and unsealing with a 32-byte master key, as every KES era does it.

KES never encrypts under the master key directly: each ciphertext draws a
random 16-byte iv and derives a one-off sealing key from (master key, iv),
so a single master key can seal practically unlimited data without nonce
reuse worries (spec §4.2):

* AES:      sealing key = HMAC-SHA256(master, iv) → AES-256-GCM
* ChaCha20: sealing key = HChaCha20(master, iv)   → ChaCha20-Poly1305 (IETF)

Both take a random 12-byte nonce and the request ``context`` as associated
data. :func:`seal` writes the v0.17 JSON form (what v0.17 clients expect);
:func:`unseal` reads every era's format (``formats.py``) and gives v0.17's
exact errors for JSON input.

seal/unseal run once per encrypt/decrypt/generate request, so they avoid
needless work: one ``os.urandom`` call per seal, one-shot ``hmac.digest``,
and HChaCha20 computed by OpenSSL rather than by a Python round loop.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from kes_server.core.errors import DecryptionFailed, UnsupportedAlgorithm
from kes_server.core.formats import (
    BINARY_MIN_SIZE,
    IV_SIZE,
    JSON_AES,
    JSON_CHACHA20,
    NONCE_SIZE,
    Algorithm,
    Sealed,
    decode,
    decode_binary,
    encode_json,
)

__all__ = ["KEY_SIZE", "hchacha20", "key_id", "new_key", "seal", "unseal"]

#: Every KES master key is 32 bytes, usable with either AEAD (spec §4.1).
KEY_SIZE: Final = 32

_MASK32: Final = 0xFFFFFFFF
# "expand 32-byte k": the first four words of every ChaCha20 state.
_SIGMA: Final = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
_ZERO_BLOCK: Final = bytes(64)
_BLOCK_WORDS: Final = struct.Struct("<16I")
_INPUT_WORDS: Final = struct.Struct("<4I")
_SUBKEY_WORDS: Final = struct.Struct("<8I")
# Every algorithm, in the order a typeless key tries the headerless binary format.
_ALGORITHMS: Final[tuple[Algorithm, ...]] = ("AES", "ChaCha20")


def key_id(key: bytes) -> str:
    """The key's id: lowercase hex of the first 16 bytes of SHA-256(key).

    Ciphertexts carry it so a server can refuse a ciphertext sealed under a
    different key with a clear error rather than a failed tag check.
    """
    return hashlib.sha256(key).digest()[:16].hex()


def new_key() -> bytes:
    """A fresh random master key (``/v1/key/create``)."""
    return os.urandom(KEY_SIZE)


def hchacha20(key: bytes, nonce: bytes) -> bytes:
    """HChaCha20(key, 16-byte nonce) → 32-byte subkey (draft-irtf-cfrg-xchacha §2.2).

    HChaCha20 runs the 20 ChaCha rounds over the state ``SIGMA ‖ key ‖ nonce``
    and outputs words 0-3 and 12-15 *without* ChaCha20's final addition of
    the input state. A ChaCha20 keystream block is exactly ``rounds(S) + S``
    (word-wise, mod 2**32), and the ``cryptography`` ChaCha20 cipher takes a
    16-byte "nonce" (counter ‖ nonce) that fills words 12-15 just as
    HChaCha20's input does. So we let OpenSSL produce one keystream block
    (the encryption of 64 zero bytes) and subtract the known state words;
    this is ~10x faster than running the rounds in Python, and every ChaCha
    seal/unseal derives a fresh subkey. The tests check it against the draft's
    test vector and against a plain Python round loop.
    """
    if len(key) != KEY_SIZE or len(nonce) != IV_SIZE:
        raise ValueError(f"hchacha20 takes a {KEY_SIZE}-byte key and a {IV_SIZE}-byte nonce")
    block = Cipher(algorithms.ChaCha20(key, nonce), mode=None).encryptor().update(_ZERO_BLOCK)
    z = _BLOCK_WORDS.unpack(block)
    n0, n1, n2, n3 = _INPUT_WORDS.unpack(nonce)
    s0, s1, s2, s3 = _SIGMA
    return _SUBKEY_WORDS.pack(
        (z[0] - s0) & _MASK32,
        (z[1] - s1) & _MASK32,
        (z[2] - s2) & _MASK32,
        (z[3] - s3) & _MASK32,
        (z[12] - n0) & _MASK32,
        (z[13] - n1) & _MASK32,
        (z[14] - n2) & _MASK32,
        (z[15] - n3) & _MASK32,
    )


def _aead(algorithm: Algorithm, key: bytes, iv: bytes) -> AESGCM | ChaCha20Poly1305:
    """The AEAD keyed with the one-off sealing key derived from (master key, iv)."""
    if algorithm == "AES":
        return AESGCM(hmac.digest(key, iv, "sha256"))
    return ChaCha20Poly1305(hchacha20(key, iv))


def _check_key(key: bytes) -> None:
    """A wrong-sized key is a bug in the caller, never a client's decryption error."""
    if len(key) != KEY_SIZE:
        raise ValueError(f"master key must be {KEY_SIZE} bytes, got {len(key)}")


def seal(
    key: bytes,
    plaintext: bytes,
    context: bytes | None = b"",
    *,
    algorithm: Algorithm = "AES",
) -> bytes:
    """Encrypt ``plaintext`` under ``key``, binding ``context``; v0.17 JSON out.

    ``context`` is the associated data: unsealing needs the same bytes again
    (None and empty are the same, as an absent request field is). AES is the
    default as upstream picks it on any CPU with AES instructions; ChaCha20
    exists so tests and tools can produce what non-AES hosts produced.

    Raises:
        ValueError: ``key`` is not 32 bytes or ``algorithm`` is unknown.
    """
    _check_key(key)
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    random = os.urandom(IV_SIZE + NONCE_SIZE)
    iv, nonce = random[:IV_SIZE], random[IV_SIZE:]
    data = _aead(algorithm, key, iv).encrypt(nonce, plaintext, context)
    aead = JSON_AES if algorithm == "AES" else JSON_CHACHA20
    return encode_json(Sealed(aead, key_id(key), iv, nonce, data, "json"))


def unseal(
    key: bytes,
    ciphertext: bytes,
    context: bytes | None = b"",
    *,
    key_type: Algorithm | None = None,
) -> bytes:
    """Decrypt a ciphertext of any KES era under ``key`` and ``context``.

    JSON ciphertexts fail with v0.17's exact errors (spec §4.4); msgpack and
    binary ones only ever with the generic "not authentic" error.

    The binary format names no algorithm: upstream uses the key's own type,
    which ``key_type`` supplies when known (only this format consults it;
    the others name their algorithm). Our v0.17-style keys are
    typeless, so by default we try AES, then ChaCha20 (the spec's decision;
    a wrong guess fails its tag check, so this cannot mis-decrypt).

    A binary ciphertext begins with a random byte, so about 1 in 128 starts
    like JSON (``{``) or msgpack (``0x95``). As the 2024 release does, input
    that fails to parse as what its first byte claims is retried as binary,
    keeping the original error if that fails too.

    Raises:
        DecryptionFailed: malformed ciphertext, foreign key, wrong context, bad tag.
        UnsupportedAlgorithm: JSON ciphertext with an unknown ``aead`` (422).
        ValueError: ``key`` is not 32 bytes.
    """
    _check_key(key)
    try:
        sealed = decode(ciphertext, key_id=key_id(key))
    except (DecryptionFailed, UnsupportedAlgorithm):
        if ciphertext[:1] in (b"{", b"\x95") and len(ciphertext) >= BINARY_MIN_SIZE:
            plaintext = _open_binary(key, decode_binary(ciphertext), context, key_type)
            if plaintext is not None:
                return plaintext
        raise
    if sealed.format == "binary":
        plaintext = _open_binary(key, sealed, context, key_type)
        if plaintext is None:
            raise DecryptionFailed()
        return plaintext
    algorithm = sealed.algorithm
    if algorithm is None:  # cannot happen: decode() only accepts known names
        raise DecryptionFailed()
    try:
        return _aead(algorithm, key, sealed.iv).decrypt(sealed.nonce, sealed.data, context)
    except InvalidTag:
        raise DecryptionFailed() from None


def _open_binary(
    key: bytes, sealed: Sealed, context: bytes | None, key_type: Algorithm | None
) -> bytes | None:
    """Open a headerless ciphertext with ``key_type``, or each algorithm in turn; None if none."""
    for algorithm in _ALGORITHMS if key_type is None else (key_type,):
        try:
            return _aead(algorithm, key, sealed.iv).decrypt(sealed.nonce, sealed.data, context)
        except InvalidTag:
            continue
    return None
