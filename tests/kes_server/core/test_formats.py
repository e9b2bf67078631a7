"""Tests for kes_server.core.formats: parsing and writing every ciphertext era.

The shared vectors (loaded at run time, never copied here) pin what real KES
releases wrote; the hand-made inputs below pin v0.17's check order and the
Go ``encoding/json`` behaviours the JSON decoder mirrors.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import msgpack
import pytest

from kes_server.core.crypto import key_id
from kes_server.core.errors import APIError, DecryptionFailed, UnsupportedAlgorithm
from kes_server.core.formats import (
    BINARY_MIN_SIZE,
    JSON_AES,
    JSON_CHACHA20,
    MSGPACK_AES,
    MSGPACK_CHACHA20,
    Sealed,
    decode,
    decode_binary,
    decode_json,
    decode_msgpack,
    encode_binary,
    encode_json,
    encode_msgpack,
)
from tests.support.paths import load_vectors

VECTORS: list[dict[str, Any]] = load_vectors("ciphertexts.json")["vectors"]
NOT_AUTHENTIC = DecryptionFailed.message_v017

IV = bytes(range(16))
NONCE = bytes(range(100, 112))
DATA = bytes(range(200, 232))
KID = "00112233445566778899aabbccddeeff"


def _vectors(*, fmt: str | None = None, expect: str | None = None) -> list[Any]:
    """Vectors as pytest params named by their id, optionally filtered."""
    return [
        pytest.param(v, id=v["id"])
        for v in VECTORS
        if (fmt is None or v["format"] == fmt) and (expect is None or v["expect"] == expect)
    ]


def _raw(vector: dict[str, Any]) -> bytes:
    return base64.b64decode(vector["ciphertext_b64"])


def _key(vector: dict[str, Any]) -> bytes:
    return base64.b64decode(vector["key_b64"])


def _expected_error(vector: dict[str, Any]) -> tuple[int, str]:
    """The v0.17 error when the vector pins one, else the v0.19.2+ one."""
    err = vector.get("error_v0_17") or vector["error_v0_19_2_plus"]
    return err["status"], err["message"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _json_ct(**fields: Any) -> bytes:
    """A JSON ciphertext of valid defaults, with ``fields`` replacing them (None drops)."""
    doc: dict[str, Any] = {"aead": JSON_AES, "iv": _b64(IV), "nonce": _b64(NONCE)}
    doc["bytes"] = _b64(DATA)
    doc.update(fields)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def _msgpack_ct(*items: Any) -> bytes:
    packed: bytes = msgpack.packb(list(items), use_bin_type=True)
    return packed


def _error(exc: pytest.ExceptionInfo[APIError]) -> tuple[int, str]:
    return exc.value.status, exc.value.message


# ------------------------------------------------------------------- vectors
def test_vectors_cover_every_format() -> None:
    assert {v["format"] for v in VECTORS} == {"json", "msgpack", "binary"}


@pytest.mark.parametrize("vector", _vectors())
def test_vector_first_byte_picks_its_format(vector: dict[str, Any]) -> None:
    """decode() reads the vector as the format the vector says, or fails as expected."""
    raw = _raw(vector)
    try:
        sealed = decode(raw)
    except APIError:
        assert vector["expect"] == "error"
        assert vector["format"] == "json"  # only JSON fails before the key is known
    else:
        assert sealed.format == vector["format"]


@pytest.mark.parametrize("vector", _vectors(expect="ok"))
def test_good_vector_decodes(vector: dict[str, Any]) -> None:
    sealed = decode(_raw(vector), key_id=key_id(_key(vector)))
    assert sealed.format == vector["format"]
    assert (len(sealed.iv), len(sealed.nonce)) == (16, 12)
    assert len(sealed.data) >= 16  # at least the tag
    if vector["format"] == "binary":
        assert sealed.algorithm is None
        assert (sealed.aead, sealed.key_id) == ("", "")
    else:
        assert sealed.algorithm == vector["algorithm"]


@pytest.mark.parametrize("vector", _vectors(expect="error"))
def test_bad_vector_fails_at_the_format_stage_or_later(vector: dict[str, Any]) -> None:
    """Format-level faults raise the expected error here; tag faults pass to crypto."""
    status, message = _expected_error(vector)
    raw, kid = _raw(vector), key_id(_key(vector))
    if message == NOT_AUTHENTIC:
        try:
            decode(raw, key_id=kid)
        except APIError as err:
            assert (err.status, err.message) == (status, message)
    else:
        with pytest.raises(APIError) as exc:
            decode(raw, key_id=kid)
        assert _error(exc) == (status, message)


@pytest.mark.parametrize("vector", _vectors(fmt="json", expect="ok"))
def test_json_vector_reencodes_byte_for_byte(vector: dict[str, Any]) -> None:
    """encode_json writes exactly what v0.17 wrote (when the vector is compact)."""
    raw = _raw(vector)
    sealed = decode(raw)
    again = encode_json(sealed)
    assert decode(again) == sealed
    text = raw.decode()
    if json.dumps(json.loads(text), separators=(",", ":")) == text:
        assert again == raw


@pytest.mark.parametrize("vector", _vectors(fmt="msgpack", expect="ok"))
def test_msgpack_vector_reencodes_byte_for_byte(vector: dict[str, Any]) -> None:
    raw = _raw(vector)
    assert encode_msgpack(decode(raw)) == raw


@pytest.mark.parametrize("vector", _vectors(fmt="msgpack"))
def test_msgpack_vector_converts_to_json(vector: dict[str, Any]) -> None:
    sealed = decode(_raw(vector))
    as_json = decode(encode_json(sealed))
    assert as_json.format == "json"
    assert as_json.aead == {"AES": JSON_AES, "ChaCha20": JSON_CHACHA20}[vector["algorithm"]]
    assert as_json.algorithm == sealed.algorithm
    assert (as_json.key_id, as_json.iv, as_json.nonce, as_json.data) == (
        sealed.key_id,
        sealed.iv,
        sealed.nonce,
        sealed.data,
    )


@pytest.mark.parametrize("vector", _vectors(fmt="binary"))
def test_binary_vector_reencodes_byte_for_byte(vector: dict[str, Any]) -> None:
    raw = _raw(vector)
    assert encode_binary(decode(raw)) == raw


# ----------------------------------------------------------- JSON check order
JSON_ERRORS = {
    # v0.17 checks: parse, key id, iv size, algorithm, nonce size - first fault wins.
    "not json": (b'{"aead":', 400, "invalid ciphertext"),
    "trailing data": (_json_ct() + b" {}", 400, "invalid ciphertext"),
    "iv not base64": (_json_ct(iv="@@@@"), 400, "invalid ciphertext"),
    "iv unpadded": (_json_ct(iv=_b64(IV).rstrip("=")), 400, "invalid ciphertext"),
    "bytes after padding": (_json_ct(bytes="YQ==YQ=="), 400, "invalid ciphertext"),
    "aead is a number": (_json_ct(aead=1), 400, "invalid ciphertext"),
    "aead is true": (_json_ct(aead=True), 400, "invalid ciphertext"),
    "id is a number": (_json_ct(id=7), 400, "invalid ciphertext"),
    "iv is an array": (_json_ct(iv=[1, 2]), 400, "invalid ciphertext"),
    "nonce is an object": (_json_ct(nonce={"a": "b"}), 400, "invalid ciphertext"),
    "NaN anywhere": (_json_ct()[:-1] + b',"x":NaN}', 400, "invalid ciphertext"),
    "every fault": (
        _json_ct(id="ff" * 16, iv="AAAA", aead="AES", nonce="AAAA", bytes="!"),
        400,
        "invalid ciphertext",
    ),
    "foreign id, iv, aead, nonce": (
        _json_ct(id="ff" * 16, iv="AAAA", aead="AES", nonce="AAAA"),
        400,
        "invalid ciphertext: key ID mismatch",
    ),
    "iv, aead, nonce": (_json_ct(iv="AAAA", aead="AES", nonce="AAAA"), 400, "invalid iv size"),
    "missing iv": (_json_ct(iv=None), 400, "invalid iv size"),
    "aead, nonce": (
        _json_ct(aead="AES-256-GCM", nonce="AAAA"),
        422,
        UnsupportedAlgorithm.message_v017,
    ),
    "missing aead": (_json_ct(aead=None), 422, UnsupportedAlgorithm.message_v017),
    "lower-case aead": (_json_ct(aead=JSON_AES.lower()), 422, UnsupportedAlgorithm.message_v017),
    "msgpack aead name": (_json_ct(aead=MSGPACK_AES), 422, UnsupportedAlgorithm.message_v017),
    "nonce": (_json_ct(nonce=_b64(bytes(24))), 400, "invalid nonce size"),
    "missing nonce": (_json_ct(nonce=None), 400, "invalid nonce size"),
}


@pytest.mark.parametrize(("raw", "status", "message"), JSON_ERRORS.values(), ids=JSON_ERRORS)
def test_json_errors_follow_v017_order(raw: bytes, status: int, message: str) -> None:
    with pytest.raises(APIError) as exc:
        decode(raw, key_id=KID)
    assert _error(exc) == (status, message)
    assert isinstance(exc.value, UnsupportedAlgorithm if status == 422 else DecryptionFailed)


def test_json_key_id_is_only_checked_against_a_given_id() -> None:
    raw = _json_ct(id="ff" * 16)
    assert decode(raw).key_id == "ff" * 16
    with pytest.raises(DecryptionFailed, match="key ID mismatch"):
        decode(raw, key_id=KID)
    assert decode(_json_ct(id=KID), key_id=KID).key_id == KID


@pytest.mark.parametrize("kid", ["", None])
def test_json_without_id_passes_the_id_check(kid: str | None) -> None:
    assert decode(_json_ct(id=kid), key_id=KID).key_id == ""


def _fill(template: bytes, data: str = _b64(DATA)) -> bytes:
    """Fill a JSON template's aead, iv, nonce and bytes slots with valid values."""
    return template % (JSON_AES.encode(), _b64(IV).encode(), _b64(NONCE).encode(), data.encode())


_PLAIN = b'{"aead":"%s","iv":"%s","nonce":"%s","bytes":"%s"}'
JSON_ACCEPTED = {
    # What Go's encoding/json accepts, so v0.17 did too.
    "upper-case keys": _fill(b'{"AEAD":"%s","Iv":"%s","NONCE":"%s","Bytes":"%s"}'),
    "long s folds to s": _fill(b'{"aead":"%s","iv":"%s","nonce":"%s","byte\xc5\xbf":"%s"}'),
    "whitespace": _fill(b'{ "aead" : "%s" ,\n "iv":"%s",\t"nonce":"%s", "bytes":"%s" }\r\n'),
    "base64 with CR LF": _fill(_PLAIN, _b64(DATA)[:8] + "\\r\\n" + _b64(DATA)[8:] + "\\n"),
    "escaped slash": _fill(_PLAIN[:-1] + b',"x":"\\/"}'),
    "unknown fields of any type": _fill(
        b'{"x":[1,{"y":null}],"aead":"%s","iv":"%s","nonce":"%s","bytes":"%s","z":1e999999,'
        b'"big":' + b"9" * 5000 + b"}"
    ),
    "invalid UTF-8 in an ignored string": _fill(_PLAIN[:-1] + b',"x":"\xff\xfe"}'),
    "repeated key, last wins": _fill(b'{"iv":"AAAA",' + _PLAIN[1:]),
    "null keeps a string field": _fill(_PLAIN[:-1] + b',"aead":null}'),
    "null id": _fill(b'{"id":null,' + _PLAIN[1:]),
}


@pytest.mark.parametrize("raw", JSON_ACCEPTED.values(), ids=JSON_ACCEPTED)
def test_json_accepts_what_go_accepts(raw: bytes) -> None:
    assert decode(raw, key_id=KID) == Sealed(JSON_AES, "", IV, NONCE, DATA, "json")


def test_json_null_empties_a_bytes_field() -> None:
    raw = _json_ct()[:-1] + b',"iv":null}'
    with pytest.raises(DecryptionFailed, match="^invalid iv size$"):
        decode(raw)


def test_json_missing_bytes_is_empty() -> None:
    assert decode(_json_ct(bytes=None)).data == b""


def test_json_deep_nesting_is_invalid_not_a_crash() -> None:
    raw = b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(DecryptionFailed, match="^invalid ciphertext$"):
        decode(raw)


def test_json_chacha() -> None:
    sealed = decode(_json_ct(aead=JSON_CHACHA20))
    assert (sealed.aead, sealed.algorithm) == (JSON_CHACHA20, "ChaCha20")


# ------------------------------------------------------------------- msgpack
def test_msgpack_decodes() -> None:
    raw = _msgpack_ct(MSGPACK_CHACHA20, KID, IV, NONCE, DATA)
    assert decode(raw, key_id=KID) == Sealed(MSGPACK_CHACHA20, KID, IV, NONCE, DATA, "msgpack")
    assert decode(raw).algorithm == "ChaCha20"


def test_msgpack_empty_id_passes_the_id_check() -> None:
    raw = _msgpack_ct(MSGPACK_AES, "", IV, NONCE, DATA)
    assert decode(raw, key_id=KID).key_id == ""


MSGPACK_ERRORS = {
    "truncated": _msgpack_ct(MSGPACK_AES, KID, IV, NONCE, DATA)[:-1],
    "only the header": b"\x95",
    "trailing byte": _msgpack_ct(MSGPACK_AES, KID, IV, NONCE, DATA) + b"\x00",
    "foreign id": _msgpack_ct(MSGPACK_AES, "ff" * 16, IV, NONCE, DATA),
    "json aead name": _msgpack_ct(JSON_AES, KID, IV, NONCE, DATA),
    "unknown aead": _msgpack_ct("AES256", KID, IV, NONCE, DATA),
    "empty aead": _msgpack_ct("", KID, IV, NONCE, DATA),
    "aead is bin": _msgpack_ct(MSGPACK_AES.encode(), KID, IV, NONCE, DATA),
    "id is bin": _msgpack_ct(MSGPACK_AES, KID.encode(), IV, NONCE, DATA),
    "id is nil": _msgpack_ct(MSGPACK_AES, None, IV, NONCE, DATA),
    "iv is str": _msgpack_ct(MSGPACK_AES, KID, IV.hex()[:16], NONCE, DATA),
    "iv 15 bytes": _msgpack_ct(MSGPACK_AES, KID, IV[:15], NONCE, DATA),
    "nonce 24 bytes": _msgpack_ct(MSGPACK_AES, KID, IV, NONCE * 2, DATA),
    "bytes is str": _msgpack_ct(MSGPACK_AES, KID, IV, NONCE, "x"),
    "bytes is a map": _msgpack_ct(MSGPACK_AES, KID, IV, NONCE, {"a": 1}),
    "invalid UTF-8 str": b"\x95\xa1\xff" + _msgpack_ct(KID, IV, NONCE, DATA)[1:],
    "non-str map key": b"\x95\x81\x01\x02" + _msgpack_ct(KID, IV, NONCE, DATA)[1:],
}


@pytest.mark.parametrize("raw", MSGPACK_ERRORS.values(), ids=MSGPACK_ERRORS)
def test_msgpack_errors_are_all_not_authentic(raw: bytes) -> None:
    assert raw[0] == 0x95
    with pytest.raises(DecryptionFailed) as exc:
        decode(raw, key_id=KID)
    assert (exc.value.status, exc.value.message) == (400, NOT_AUTHENTIC)


@pytest.mark.parametrize("count", [4, 6])
def test_msgpack_needs_five_items(count: int) -> None:
    items = [MSGPACK_AES, KID, IV, NONCE, DATA, DATA][:count]
    with pytest.raises(DecryptionFailed, match=f"^{NOT_AUTHENTIC}$"):
        decode_msgpack(_msgpack_ct(*items))


# -------------------------------------------------------------------- binary
def test_binary_splits_data_iv_nonce() -> None:
    assert decode(DATA + IV + NONCE) == Sealed("", "", IV, NONCE, DATA, "binary")


def test_binary_minimum_size() -> None:
    assert BINARY_MIN_SIZE == 29
    assert decode(b"\x01" + IV + NONCE).data == b"\x01"
    for raw in (b"", b"\x01", IV + NONCE):
        with pytest.raises(DecryptionFailed) as exc:
            decode(raw)
        assert exc.value.message == NOT_AUTHENTIC


def test_decode_binary_ignores_the_first_byte() -> None:
    raw = b"{" + DATA + IV + NONCE
    assert decode_binary(raw).data == b"{" + DATA


# ------------------------------------------------------------------ encoders
def test_encode_json_is_compact_in_v017_key_order() -> None:
    raw = encode_json(Sealed(JSON_AES, KID, IV, NONCE, DATA, "json"))
    expected = {"aead": JSON_AES, "id": KID, "iv": _b64(IV), "nonce": _b64(NONCE)}
    expected["bytes"] = _b64(DATA)
    assert raw == json.dumps(expected, separators=(",", ":")).encode()


def test_encode_json_omits_an_empty_id() -> None:
    raw = encode_json(Sealed(JSON_CHACHA20, "", IV, NONCE, b"", "json"))
    assert list(json.loads(raw)) == ["aead", "iv", "nonce", "bytes"]
    assert json.loads(raw)["bytes"] == ""


def test_encode_json_escapes_odd_ids_as_go_does() -> None:
    kid = 'a"b\\c<d>&e\n\x01\u2028\u00e9'
    raw = encode_json(Sealed(JSON_AES, kid, IV, NONCE, DATA, "json"))
    assert b'"id":"a\\"b\\\\c\\u003cd\\u003e\\u0026e\\n\\u0001\\u2028\xc3\xa9"' in raw
    assert decode_json(raw).key_id == kid


def test_encode_json_replaces_lone_surrogates() -> None:
    raw = encode_json(Sealed(JSON_AES, "a\ud800", IV, NONCE, DATA, "json"))
    assert decode(raw).key_id == "a\ufffd"


@pytest.mark.parametrize(
    "sealed",
    [
        Sealed("", "", IV, NONCE, DATA, "binary"),
        Sealed("AES-256-GCM", "", IV, NONCE, DATA, "json"),
        Sealed(JSON_AES, "", IV[:8], NONCE, DATA, "json"),
        Sealed(JSON_AES, "", IV, NONCE[:8], DATA, "json"),
    ],
)
def test_encoders_refuse_unreadable_ciphertexts(sealed: Sealed) -> None:
    with pytest.raises(ValueError):
        encode_json(sealed)
    with pytest.raises(ValueError):
        encode_msgpack(sealed)


def test_encode_binary_refuses_empty_data_and_bad_sizes() -> None:
    with pytest.raises(ValueError):
        encode_binary(Sealed(JSON_AES, "", IV, NONCE, b"", "json"))
    with pytest.raises(ValueError):
        encode_binary(Sealed(JSON_AES, "", IV, NONCE + b"x", DATA, "json"))


@pytest.mark.parametrize(
    ("aead", "algorithm"),
    [
        (JSON_AES, "AES"),
        (MSGPACK_AES, "AES"),
        (JSON_CHACHA20, "ChaCha20"),
        (MSGPACK_CHACHA20, "ChaCha20"),
    ],
)
def test_every_spelling_converts_between_formats(aead: str, algorithm: str) -> None:
    sealed = Sealed(aead, KID, IV, NONCE, DATA, "json")
    assert sealed.algorithm == algorithm
    from_json = decode(encode_json(sealed))
    from_msgpack = decode(encode_msgpack(sealed))
    assert from_json.algorithm == from_msgpack.algorithm == algorithm
    assert from_json.aead in (JSON_AES, JSON_CHACHA20)
    assert from_msgpack.aead in (MSGPACK_AES, MSGPACK_CHACHA20)
    for back in (from_json, from_msgpack):
        assert (back.key_id, back.iv, back.nonce, back.data) == (KID, IV, NONCE, DATA)
    assert decode(encode_binary(sealed)) == Sealed("", "", IV, NONCE, DATA, "binary")
