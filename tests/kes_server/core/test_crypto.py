"""Tests for kes_server.core.crypto: key ids, HChaCha20, seal and unseal.

Every vector of ``shared/vectors/ciphertexts.json`` (loaded at run time) must
decrypt to its plaintext or fail with its pinned error; the rest are the
upstream v0.17 round-trip table (UPSTREAM_TESTS E2) and our own edge cases.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kes_server.core.crypto import KEY_SIZE, hchacha20, key_id, new_key, seal, unseal
from kes_server.core.errors import APIError, DecryptionFailed, UnsupportedAlgorithm
from kes_server.core.formats import (
    JSON_AES,
    JSON_CHACHA20,
    Algorithm,
    Sealed,
    decode,
    encode_binary,
    encode_json,
    encode_msgpack,
)
from tests.support.paths import load_vectors

VECTORS: list[dict[str, Any]] = load_vectors("ciphertexts.json")["vectors"]
NOT_AUTHENTIC = DecryptionFailed.message_v017
ALGORITHMS: list[Algorithm] = ["AES", "ChaCha20"]
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _vectors(*, expect: str | None = None, fmt: str | None = None) -> list[Any]:
    return [
        pytest.param(v, id=v["id"])
        for v in VECTORS
        if (expect is None or v["expect"] == expect) and (fmt is None or v["format"] == fmt)
    ]


def _b64(vector: dict[str, Any], field: str) -> bytes:
    return base64.b64decode(vector.get(field) or "")


def _expected_error(vector: dict[str, Any]) -> tuple[int, str]:
    """The v0.17 error when the vector pins one, else the v0.19.2+ one."""
    err = vector.get("error_v0_17") or vector["error_v0_19_2_plus"]
    return err["status"], err["message"]


# ------------------------------------------------------------------- vectors
@pytest.mark.parametrize("vector", _vectors(expect="ok"))
def test_vector_decrypts(vector: dict[str, Any]) -> None:
    key, raw, ctx = (
        _b64(vector, "key_b64"),
        _b64(vector, "ciphertext_b64"),
        _b64(vector, "context_b64"),
    )
    assert unseal(key, raw, ctx) == _b64(vector, "plaintext_b64")


@pytest.mark.parametrize("vector", _vectors(expect="error"))
def test_vector_fails_with_its_error(vector: dict[str, Any]) -> None:
    key, raw, ctx = (
        _b64(vector, "key_b64"),
        _b64(vector, "ciphertext_b64"),
        _b64(vector, "context_b64"),
    )
    with pytest.raises(APIError) as exc:
        unseal(key, raw, ctx)
    assert (exc.value.status, exc.value.message) == _expected_error(vector)
    assert isinstance(exc.value, (DecryptionFailed, UnsupportedAlgorithm))


@pytest.mark.parametrize("vector", _vectors(expect="ok", fmt="binary"))
def test_binary_vector_needs_its_key_type(vector: dict[str, Any]) -> None:
    """A typed key (``key_type``) opens only its own algorithm's binary ciphertexts."""
    key, raw, ctx = (
        _b64(vector, "key_b64"),
        _b64(vector, "ciphertext_b64"),
        _b64(vector, "context_b64"),
    )
    own: Algorithm = vector["algorithm"]
    other: Algorithm = "ChaCha20" if own == "AES" else "AES"
    assert unseal(key, raw, ctx, key_type=own) == _b64(vector, "plaintext_b64")
    with pytest.raises(DecryptionFailed, match=f"^{NOT_AUTHENTIC}$"):
        unseal(key, raw, ctx, key_type=other)


@pytest.mark.parametrize("vector", _vectors(expect="ok"))
def test_vector_key_id_matches_its_key(vector: dict[str, Any]) -> None:
    sealed = decode(_b64(vector, "ciphertext_b64"))
    if sealed.key_id:
        assert key_id(_b64(vector, "key_b64")) == sealed.key_id


@pytest.mark.parametrize("vector", _vectors(expect="ok"))
def test_vector_wrong_context_fails(vector: dict[str, Any]) -> None:
    key, raw, ctx = (
        _b64(vector, "key_b64"),
        _b64(vector, "ciphertext_b64"),
        _b64(vector, "context_b64"),
    )
    with pytest.raises(DecryptionFailed, match=f"^{NOT_AUTHENTIC}$"):
        unseal(key, raw, ctx + b"x")


# -------------------------------------------------------------- key material
def test_key_id_of_the_zero_key() -> None:
    assert key_id(bytes(32)) == "66687aadf862bd776c8fc18b8e9f8e20"  # spec §4.1


def test_new_key_is_random_and_32_bytes() -> None:
    keys = {new_key() for _ in range(8)}
    assert len(keys) == 8
    assert all(len(k) == KEY_SIZE == 32 for k in keys)


def test_hchacha20_draft_test_vector() -> None:
    # draft-irtf-cfrg-xchacha-03 §2.2.1
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a0000000031415927")
    expected = "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"
    assert hchacha20(key, nonce).hex() == expected


@pytest.mark.parametrize(("key", "nonce"), [(bytes(31), bytes(16)), (bytes(32), bytes(12))])
def test_hchacha20_rejects_wrong_sizes(key: bytes, nonce: bytes) -> None:
    with pytest.raises(ValueError):
        hchacha20(key, nonce)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_wrong_key_size_is_a_caller_bug(size: int) -> None:
    with pytest.raises(ValueError):
        seal(bytes(size), b"x")
    with pytest.raises(ValueError):
        unseal(bytes(size), seal(KEY, b"x"))


def test_unknown_algorithm_is_rejected() -> None:
    with pytest.raises(ValueError):
        seal(KEY, b"x", algorithm="AES-128")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- seal
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_seal_writes_the_v017_json_form(algorithm: Algorithm) -> None:
    raw = seal(KEY, b"secret", b"ctx", algorithm=algorithm)
    doc = json.loads(raw)
    assert list(doc) == ["aead", "id", "iv", "nonce", "bytes"]
    assert doc["aead"] == {"AES": JSON_AES, "ChaCha20": JSON_CHACHA20}[algorithm]
    assert doc["id"] == key_id(KEY)
    assert len(base64.b64decode(doc["iv"])) == 16
    assert len(base64.b64decode(doc["nonce"])) == 12
    assert len(base64.b64decode(doc["bytes"])) == len(b"secret") + 16
    assert raw == json.dumps(doc, separators=(",", ":")).encode()


def test_seal_is_randomised() -> None:
    first, second = decode(seal(KEY, b"x")), decode(seal(KEY, b"x"))
    assert first.iv != second.iv
    assert first.nonce != second.nonce
    assert first.data != second.data


PLAINTEXT_SIZES = [0, 1, 16, 32, 63, 128, 1024]
CONTEXTS = {"none": None, "empty": b"", "one byte": b"\x01", "1 KiB": bytes(range(256)) * 4}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("size", PLAINTEXT_SIZES)
@pytest.mark.parametrize("context", CONTEXTS.values(), ids=CONTEXTS)
def test_round_trip(algorithm: Algorithm, size: int, context: bytes | None) -> None:
    """UPSTREAM_TESTS E2: wrap/unwrap over v0.17's plaintext sizes and contexts."""
    plaintext = bytes((7 * i) & 0xFF for i in range(size))
    ciphertext = seal(KEY, plaintext, context, algorithm=algorithm)
    assert unseal(KEY, ciphertext, context) == plaintext
    with pytest.raises(DecryptionFailed, match=f"^{NOT_AUTHENTIC}$"):
        unseal(KEY, ciphertext, (context or b"") + b"!")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_none_and_empty_context_are_the_same(algorithm: Algorithm) -> None:
    assert unseal(KEY, seal(KEY, b"pt", None, algorithm=algorithm), b"") == b"pt"
    assert unseal(KEY, seal(KEY, b"pt", b"", algorithm=algorithm), None) == b"pt"
    assert unseal(KEY, seal(KEY, b"pt", algorithm=algorithm)) == b"pt"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_format_round_trips(algorithm: Algorithm) -> None:
    sealed = decode(seal(KEY, b"plaintext", b"ctx", algorithm=algorithm))
    for raw in (encode_json(sealed), encode_msgpack(sealed), encode_binary(sealed)):
        assert unseal(KEY, raw, b"ctx") == b"plaintext"
    binary = encode_binary(sealed)
    assert unseal(KEY, binary, b"ctx", key_type=algorithm) == b"plaintext"


# -------------------------------------------------------------------- unseal
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_foreign_key_json_gets_v017_key_id_mismatch(algorithm: Algorithm) -> None:
    with pytest.raises(DecryptionFailed, match="^invalid ciphertext: key ID mismatch$"):
        unseal(OTHER_KEY, seal(KEY, b"x", algorithm=algorithm))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_foreign_key_without_id_fails_the_tag(algorithm: Algorithm) -> None:
    sealed = decode(seal(KEY, b"x", algorithm=algorithm))
    anonymous = Sealed(sealed.aead, "", sealed.iv, sealed.nonce, sealed.data, "json")
    for raw in (encode_json(anonymous), encode_msgpack(anonymous), encode_binary(anonymous)):
        with pytest.raises(DecryptionFailed, match=f"^{NOT_AUTHENTIC}$"):
            unseal(OTHER_KEY, raw)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_foreign_key_msgpack_is_not_authentic(algorithm: Algorithm) -> None:
    raw = encode_msgpack(decode(seal(KEY, b"x", algorithm=algorithm)))
    with pytest.raises(DecryptionFailed, match=f"^{NOT_AUTHENTIC}$"):
        unseal(OTHER_KEY, raw)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("field", ["iv", "nonce", "data"])
def test_any_flipped_bit_fails(algorithm: Algorithm, field: str) -> None:
    sealed = decode(seal(KEY, b"sixteen byte msg", b"ctx", algorithm=algorithm))
    for position in (0, -1):  # first and last byte (the tag's, for data)
        parts = {"iv": sealed.iv, "nonce": sealed.nonce, "data": sealed.data}
        flipped = bytearray(parts[field])
        flipped[position] ^= 0x01
        parts[field] = bytes(flipped)
        tampered = Sealed(
            sealed.aead, sealed.key_id, parts["iv"], parts["nonce"], parts["data"], "json"
        )
        for raw in (encode_json(tampered), encode_msgpack(tampered), encode_binary(tampered)):
            with pytest.raises(DecryptionFailed, match=f"^{NOT_AUTHENTIC}$"):
                unseal(KEY, raw, b"ctx")


def test_json_with_swapped_algorithm_fails_the_tag() -> None:
    sealed = decode(seal(KEY, b"x", algorithm="AES"))
    swapped = Sealed(JSON_CHACHA20, sealed.key_id, sealed.iv, sealed.nonce, sealed.data, "json")
    with pytest.raises(DecryptionFailed, match=f"^{NOT_AUTHENTIC}$"):
        unseal(KEY, encode_json(swapped))


def test_json_unknown_aead_is_422() -> None:
    doc = json.loads(seal(KEY, b"x"))
    doc["aead"] = "AES-256-GCM"
    with pytest.raises(UnsupportedAlgorithm) as exc:
        unseal(KEY, json.dumps(doc).encode())
    assert (exc.value.status, exc.value.message) == (422, "unsupported cryptographic algorithm")


@pytest.mark.parametrize("raw", [b"", b"x", b"{", b"\x95", bytes(28)])
def test_short_garbage_is_rejected(raw: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        unseal(KEY, raw)


@pytest.mark.parametrize("first", [b"{", b"\x95"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_binary_that_looks_like_json_or_msgpack_still_decrypts(
    first: bytes, algorithm: Algorithm
) -> None:
    """About 1 in 128 binary ciphertexts start with ``{`` or 0x95 by chance."""
    for _ in range(20_000):
        raw = encode_binary(decode(seal(KEY, b"payload", b"ctx", algorithm=algorithm)))
        if raw[:1] == first:
            break
    else:
        pytest.fail("no ciphertext with the wanted first byte")
    assert unseal(KEY, raw, b"ctx") == b"payload"
    assert unseal(KEY, raw, b"ctx", key_type=algorithm) == b"payload"
    with pytest.raises(DecryptionFailed) as exc:
        unseal(KEY, raw, b"other")
    # The error is the parse error of the format the first byte claimed.
    expected = "invalid ciphertext" if first == b"{" else NOT_AUTHENTIC
    assert exc.value.message == expected
