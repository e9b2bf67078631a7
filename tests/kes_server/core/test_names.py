"""Tests for kes_server.core.names (UPSTREAM_TESTS H1, spec §5.1).

Every name and pattern of ``shared/vectors/names.json`` is checked against
its ``recommended_valid`` verdict (the v0.19 rule we enforce), for key and
policy names alike, together with the exact error text.
"""

from __future__ import annotations

from typing import Any, Literal

import pytest

from kes_server.core.errors import InvalidArgument
from kes_server.core.names import (
    MAX_NAME_BYTES,
    is_identity,
    validate_name,
    validate_pattern,
    validate_pattern_size,
)
from tests.support.paths import load_vectors

NAMES_DOC: dict[str, Any] = load_vectors("names.json")
NAMES: list[dict[str, Any]] = NAMES_DOC["names"]
PATTERNS: list[dict[str, Any]] = NAMES_DOC["patterns"]
IDENTITY_NAMES: dict[str, Any] = NAMES_DOC["identity_names"]
IDENTITIES_DOC: dict[str, Any] = load_vectors("identities.json")

Kind = Literal["key", "policy"]
KINDS: list[Kind] = ["key", "policy"]


def _expected_name_error(name: str, kind: Kind) -> str:
    if not name:
        return f"invalid {kind} name"
    if len(name.encode()) > MAX_NAME_BYTES:
        return "invalid argument: name is too long"
    return "invalid argument: name contains invalid character"


def _expected_pattern_error(pattern: str) -> str:
    if not pattern:
        return "invalid argument: pattern is empty"
    if len(pattern.encode()) > MAX_NAME_BYTES:
        return "invalid argument: pattern is too long"
    return "invalid argument: pattern contains invalid character"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("entry", NAMES, ids=[repr(n["name"]) for n in NAMES])
def test_names_vectors(entry: dict[str, Any], kind: Kind) -> None:
    name: str = entry["name"]
    if entry["recommended_valid"]:
        validate_name(name, kind)
        return
    with pytest.raises(InvalidArgument) as info:
        validate_name(name, kind)
    assert info.value.status == 400
    assert info.value.message == _expected_name_error(name, kind)


@pytest.mark.parametrize("entry", PATTERNS, ids=[repr(p["pattern"]) for p in PATTERNS])
def test_pattern_vectors(entry: dict[str, Any]) -> None:
    pattern: str = entry["pattern"]
    if entry["recommended_valid"]:
        validate_pattern(pattern)
        return
    with pytest.raises(InvalidArgument) as info:
        validate_pattern(pattern)
    assert info.value.status == 400
    assert info.value.message == _expected_pattern_error(pattern)


def test_vectors_cover_every_error() -> None:
    messages = {_expected_name_error(n["name"], "key") for n in NAMES if not n["recommended_valid"]}
    assert messages == {
        "invalid key name",
        "invalid argument: name is too long",
        "invalid argument: name contains invalid character",
    }


@pytest.mark.parametrize("entry", NAMES, ids=[repr(n["name"]) for n in NAMES])
def test_every_valid_name_is_a_valid_pattern(entry: dict[str, Any]) -> None:
    """A name is a pattern that matches only itself, so listing by exact name works."""
    if entry["recommended_valid"]:
        validate_pattern(entry["name"])


@pytest.mark.parametrize(
    "pattern",
    [
        "my-key?",  # v0.17 integration_test.go list tests
        "my-key_2020-0[1-4]-[0-1][0-9]",
        "my-key[^0-9]",
        "my\\-key",
        "k*[a-z]?",
    ],
)
def test_v017_glob_list_patterns_are_valid(pattern: str) -> None:
    validate_pattern(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        "?",
        "??",
        "*?",
        "[a-z]",  # no literal name character
        "[a-]",  # malformed
        "my-key[",  # malformed
        "my-key\\",  # trailing backslash
        "my-[.]",  # class member not a name character
        "my-[+-z]",
        "my.key?",
        "my/key?",
        "\\.",
    ],
)
def test_invalid_glob_list_patterns(pattern: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_pattern(pattern)
    assert info.value.message == "invalid argument: pattern contains invalid character"


@pytest.mark.parametrize("kind", KINDS)
def test_length_limit_is_in_bytes(kind: Kind) -> None:
    validate_name("a" * MAX_NAME_BYTES, kind)
    validate_pattern("a" * (MAX_NAME_BYTES - 1) + "*")
    with pytest.raises(InvalidArgument, match="too long"):
        validate_name("a" * (MAX_NAME_BYTES + 1), kind)
    with pytest.raises(InvalidArgument, match="too long"):
        validate_pattern("*" * (MAX_NAME_BYTES + 1))
    # 27 three-byte characters: 27 characters but 81 bytes.
    with pytest.raises(InvalidArgument, match="too long"):
        validate_name("☰" * 27, kind)


def test_any_glob_is_bounded_like_a_name() -> None:
    """The identity list accepts any glob over identities, but no longer than a name."""
    validate_pattern_size("?" * MAX_NAME_BYTES)
    with pytest.raises(InvalidArgument, match="too long"):
        validate_pattern_size("a*" * 40 + "b")
    with pytest.raises(InvalidArgument, match="empty"):
        validate_pattern_size("")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["a\udc80", "\x00", "my key", "my-key\n", "ｍｙ"])
def test_odd_characters_are_invalid(name: str, kind: Kind) -> None:
    with pytest.raises(InvalidArgument, match="invalid character"):
        validate_name(name, kind)
    with pytest.raises(InvalidArgument, match="invalid character"):
        validate_pattern(name)


def test_identity_vectors() -> None:
    for identity in IDENTITY_NAMES["valid"]:
        assert is_identity(identity)
    for identity in IDENTITIES_DOC["extra_upstream_identities"]["values"]:
        assert is_identity(identity)
    for entry in IDENTITIES_DOC["identities"]:
        if entry["identity"] is not None:
            assert is_identity(entry["identity"])
    for text in IDENTITY_NAMES["invalid_everywhere"] + IDENTITY_NAMES["root_disabled_markers"]:
        assert not is_identity(text)


@pytest.mark.parametrize(
    "text",
    [
        "3ECFCDF38FCBE141AE26A1030F81E96B753365A46760AE6B578698A97C59FD22",  # upper case
        "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd2",  # 63
        "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd223",  # 65
        "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd2g",
        "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22\n",
        " 3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22",
    ],
)
def test_not_identities(text: str) -> None:
    assert not is_identity(text)
