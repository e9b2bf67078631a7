"""Property tests for seal/unseal and the ciphertext parsers.

The fixed tables in test_crypto.py pin known cases; these check that the
guarantees hold for arbitrary plaintexts, contexts and keys: a round trip
always works, and a different key or context never decrypts. They also
check crypto.hchacha20 (computed via OpenSSL's ChaCha20) against a plain
transcription of the HChaCha20 rounds.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings, strategies as st

from kes_server.core.crypto import KEY_SIZE, hchacha20, seal, unseal
from kes_server.core.errors import DecryptionFailed, UnsupportedAlgorithm
from kes_server.core.formats import (
    Algorithm,
    Sealed,
    decode,
    encode_binary,
    encode_json,
    encode_msgpack,
)

# Crypto on a loaded CI box can be slow; the properties are about results, not time.
# (A per-test decorator, not a profile: loading a profile would change every module.)
no_deadline = settings(deadline=None)

keys = st.binary(min_size=KEY_SIZE, max_size=KEY_SIZE)
plaintexts = st.binary(max_size=2048)
contexts = st.none() | st.binary(max_size=512)
algorithms: st.SearchStrategy[Algorithm] = st.sampled_from(["AES", "ChaCha20"])
encoders: st.SearchStrategy[Callable[[Sealed], bytes]] = st.sampled_from(
    [encode_json, encode_msgpack, encode_binary]
)


def _as_aad(context: bytes | None) -> bytes:
    return context or b""


@no_deadline
@given(key=keys, plaintext=plaintexts, context=contexts, algorithm=algorithms)
def test_round_trip(
    key: bytes, plaintext: bytes, context: bytes | None, algorithm: Algorithm
) -> None:
    assert unseal(key, seal(key, plaintext, context, algorithm=algorithm), context) == plaintext


@no_deadline
@given(key=keys, plaintext=plaintexts, context=contexts, algorithm=algorithms, encode=encoders)
def test_round_trip_through_every_format(
    key: bytes,
    plaintext: bytes,
    context: bytes | None,
    algorithm: Algorithm,
    encode: Callable[[Sealed], bytes],
) -> None:
    sealed = decode(seal(key, plaintext, context, algorithm=algorithm))
    raw = encode(sealed)
    assert unseal(key, raw, context) == plaintext


@no_deadline
@given(key=keys, other=keys, plaintext=plaintexts, context=contexts, algorithm=algorithms)
def test_different_key_never_decrypts(
    key: bytes, other: bytes, plaintext: bytes, context: bytes | None, algorithm: Algorithm
) -> None:
    assume(key != other)
    sealed = decode(seal(key, plaintext, context, algorithm=algorithm))
    for raw in (encode_json(sealed), encode_msgpack(sealed), encode_binary(sealed)):
        with pytest.raises(DecryptionFailed):
            unseal(other, raw, context)


@no_deadline
@given(
    key=keys,
    plaintext=plaintexts,
    context=contexts,
    other_context=contexts,
    algorithm=algorithms,
)
def test_different_context_never_decrypts(
    key: bytes,
    plaintext: bytes,
    context: bytes | None,
    other_context: bytes | None,
    algorithm: Algorithm,
) -> None:
    assume(_as_aad(context) != _as_aad(other_context))
    sealed = decode(seal(key, plaintext, context, algorithm=algorithm))
    for raw in (encode_json(sealed), encode_msgpack(sealed), encode_binary(sealed)):
        # Usually "not authentic"; a binary ciphertext that happens to start with
        # "{" keeps the JSON parse error ("invalid ciphertext") - still a 400.
        with pytest.raises(DecryptionFailed):
            unseal(key, raw, other_context)


@no_deadline
@given(key=keys, raw=st.binary(max_size=256), context=contexts)
def test_arbitrary_input_fails_only_with_api_errors(
    key: bytes, raw: bytes, context: bytes | None
) -> None:
    """Garbage never crashes unseal: it is a decryption error, at worst a 422."""
    try:
        unseal(key, raw, context)
    except (DecryptionFailed, UnsupportedAlgorithm):
        pass


@no_deadline
@given(
    key=keys,
    raw=st.sampled_from([b"{", b"\x95"]).flatmap(
        lambda first: st.binary(max_size=128).map(lambda rest: first + rest)
    ),
)
def test_arbitrary_json_or_msgpack_lookalikes_fail_cleanly(key: bytes, raw: bytes) -> None:
    with pytest.raises((DecryptionFailed, UnsupportedAlgorithm)):
        unseal(key, raw)


# --------------------------------------------------------- HChaCha20 oracle
_MASK32 = 0xFFFFFFFF


def _rotl(value: int, shift: int) -> int:
    return ((value << shift) & _MASK32) | (value >> (32 - shift))


def _hchacha20_reference(key: bytes, nonce: bytes) -> bytes:
    """HChaCha20 straight from draft-irtf-cfrg-xchacha §2.2: 10 double rounds, no feed-forward."""
    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    state += struct.unpack("<8I", key) + struct.unpack("<4I", nonce)

    def quarter_round(a: int, b: int, c: int, d: int) -> None:
        state[a] = (state[a] + state[b]) & _MASK32
        state[d] = _rotl(state[d] ^ state[a], 16)
        state[c] = (state[c] + state[d]) & _MASK32
        state[b] = _rotl(state[b] ^ state[c], 12)
        state[a] = (state[a] + state[b]) & _MASK32
        state[d] = _rotl(state[d] ^ state[a], 8)
        state[c] = (state[c] + state[d]) & _MASK32
        state[b] = _rotl(state[b] ^ state[c], 7)

    for _ in range(10):
        quarter_round(0, 4, 8, 12)
        quarter_round(1, 5, 9, 13)
        quarter_round(2, 6, 10, 14)
        quarter_round(3, 7, 11, 15)
        quarter_round(0, 5, 10, 15)
        quarter_round(1, 6, 11, 12)
        quarter_round(2, 7, 8, 13)
        quarter_round(3, 4, 9, 14)
    return struct.pack("<8I", *state[0:4], *state[12:16])


def test_reference_matches_the_draft_vector() -> None:
    """The oracle itself must be right before it can judge anything."""
    out = _hchacha20_reference(bytes(range(32)), bytes.fromhex("000000090000004a0000000031415927"))
    assert out.hex() == "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"


@no_deadline
@given(key=keys, nonce=st.binary(min_size=16, max_size=16))
def test_hchacha20_matches_the_reference(key: bytes, nonce: bytes) -> None:
    assert hchacha20(key, nonce) == _hchacha20_reference(key, nonce)


@pytest.mark.parametrize("fill", [0x00, 0xFF])
def test_hchacha20_extreme_inputs(fill: int) -> None:
    """All-ones words (counter 0xffffffff in OpenSSL's view) must not wrap or overflow."""
    key, nonce = bytes([fill]) * 32, bytes([fill]) * 16
    assert hchacha20(key, nonce) == _hchacha20_reference(key, nonce)
