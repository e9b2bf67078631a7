"""The AWS store's layout and error mapping, without AWS (the same store on moto: tests/e2e).

KES v0.17 lists every secret in the account as a key and filters the names
with Go's ``path.Match``; ``kes_server.core.glob`` is that matcher, so these
tests can ask exactly what a KES sharing the account would show.
"""

from __future__ import annotations

import sys

import pytest

from kes_server.core.config import AWSStoreConfig, Config
from kes_server.core.glob import compile_glob
from kes_server.keystore.aws_layout import (
    RESERVED_PREFIX,
    AWSRefusal,
    Outcome,
    RecentChanges,
    classify,
    entry_names,
    list_prefix,
    missing_sdk_message,
    secret_name,
    text_or_none,
    value_of,
)
from kes_server.keystore.base import Namespace, StoreError
from kes_server.server import StartupError, open_store


def kes_v017_lists(secret: str, pattern: str = "*") -> bool:
    """Whether KES v0.17's key listing shows ``secret`` for ``pattern`` (path.Match)."""
    return compile_glob(pattern).match(secret)


def test_keys_are_named_exactly_like_the_key() -> None:
    assert secret_name(Namespace.KEYS, "my-key") == "my-key"
    assert secret_name(Namespace.KEYS, "pykes") == "pykes"


def test_policies_and_bindings_live_under_the_reserved_prefix() -> None:
    assert secret_name(Namespace.POLICIES, "my-app") == "pykes/policies/my-app"
    assert secret_name(Namespace.IDENTITIES, "ab" * 32) == "pykes/identities/" + "ab" * 32


@pytest.mark.parametrize("ns", list(Namespace))
@pytest.mark.parametrize("name", ["", "a/b", "/", "policies/x", "../x"])
def test_names_that_could_leave_their_namespace_are_refused(ns: Namespace, name: str) -> None:
    with pytest.raises(StoreError):
        secret_name(ns, name)


@pytest.mark.parametrize(
    "pattern", ["*", "pykes*", "*policies*", "p?kes*", "[a-z]*", "pykes[^a]*", "my-key"]
)
def test_kes_v017_never_lists_a_policy_or_binding_as_a_key(pattern: str) -> None:
    """Go's ``*`` and ``?`` never match ``/``; a pattern is one path element."""
    for ns, name in [(Namespace.POLICIES, "my-app"), (Namespace.IDENTITIES, "ab" * 32)]:
        secret = secret_name(ns, name)
        assert not kes_v017_lists(secret, pattern), (secret, pattern)
    assert kes_v017_lists(secret_name(Namespace.KEYS, "my-key"), "*")


def test_listing_splits_the_account_into_namespaces() -> None:
    account = [
        "my-key",
        "other-app-secret",
        "prod/db/password",  # someone else's secret: KES v0.17 lists it too
        "pykes/policies/p1",
        "pykes/policies/nested/x",
        "pykes/policies/",
        "pykes/identities/" + "cd" * 32,
        "pykes/unknown/thing",
        "pykeskey",
    ]
    assert entry_names(Namespace.KEYS, account) == [
        "my-key",
        "other-app-secret",
        "prod/db/password",
        "pykeskey",
    ]
    assert entry_names(Namespace.POLICIES, account) == ["p1"]
    assert entry_names(Namespace.IDENTITIES, account) == ["cd" * 32]
    assert list_prefix(Namespace.KEYS) is None
    assert list_prefix(Namespace.POLICIES) == RESERVED_PREFIX + "policies/"


def test_values_are_text_unless_they_cannot_be() -> None:
    assert text_or_none(b'{"bytes":"AAAA"}') == '{"bytes":"AAAA"}'
    assert text_or_none(b"\xff\x00") is None
    assert value_of({"SecretString": '{"bytes":"x"}'}) == b'{"bytes":"x"}'
    assert value_of({"SecretBinary": b"\xff\x00"}) == b"\xff\x00"
    with pytest.raises(StoreError):
        value_of({"Name": "no value"})


@pytest.mark.parametrize(
    ("code", "message", "outcome"),
    [
        ("ResourceExistsException", "already exists", Outcome.EXISTS),
        ("ResourceNotFoundException", "can't find the specified secret", Outcome.NOT_FOUND),
        (
            "InvalidRequestException",
            "You can't perform this operation on the secret because it was marked for deletion.",
            Outcome.NOT_FOUND,
        ),
        ("InvalidRequestException", "some other problem", Outcome.FAILED),
        ("AccessDeniedException", "not authorized to perform", Outcome.FAILED),
        ("DecryptionFailure", "KMS key is disabled", Outcome.FAILED),
        ("ThrottlingException", "Rate exceeded", Outcome.FAILED),
    ],
)
def test_error_codes_map_to_store_outcomes(code: str, message: str, outcome: Outcome) -> None:
    assert classify(code, message) is outcome


def test_a_refusal_is_a_store_error_that_never_repeats_the_value_sent() -> None:
    value = '{"bytes":"c2VjcmV0IGtleSBtYXRlcmlhbCAzMiBieXRlcyBsb25nIQ=="}'
    exc = AWSRefusal("cannot create 'k'", "ValidationException", f"bad value {value}", sent=value)
    assert isinstance(exc, StoreError)
    assert value not in str(exc)
    assert str(exc) == "aws: cannot create 'k': ValidationException: bad value <redacted>"
    assert exc.outcome is Outcome.FAILED


def test_recent_changes_cover_the_listing_lag() -> None:
    recent = RecentChanges(lag_s=300)
    recent.note(Namespace.POLICIES, "new", True, now=0)
    recent.note(Namespace.POLICIES, "gone", False, now=0)
    recent.note(Namespace.KEYS, "key", True, now=0)
    listed = ["gone", "old"]
    assert recent.apply(Namespace.POLICIES, listed, now=10) == ["old", "new"]
    assert recent.apply(Namespace.IDENTITIES, listed, now=10) == listed
    # A read that finds nothing corrects a remembered create (another server deleted it).
    recent.correct(Namespace.POLICIES, "new", now=20)
    recent.correct(Namespace.POLICIES, "never-noted", now=20)
    assert recent.apply(Namespace.POLICIES, ["new", "never-noted"], now=30) == ["never-noted"]
    # After the lag the listing is the truth again.
    assert recent.apply(Namespace.POLICIES, listed, now=400) == listed
    assert recent.apply(Namespace.KEYS, [], now=400) == []


def test_open_store_names_the_extra_when_the_sdk_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if never installed: the package and any submodule another test already imported.
    for module in [m for m in sys.modules if m.split(".")[0] == "aiobotocore"] + ["aiobotocore"]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delitem(sys.modules, "kes_server.keystore.aws", raising=False)
    cfg = Config(keystore=AWSStoreConfig(endpoint="https://example.test", region="us-east-1"))
    with pytest.raises(StartupError) as info:
        open_store(cfg)
    assert str(info.value) == missing_sdk_message("aiobotocore")
    assert str(info.value).startswith("keystore.aws.secretsmanager: ")
    assert "pip install 'pykes[aws]'" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_refusal_is_one_bounded_line() -> None:
    body = '<?xml version="1.0"?>\n<ErrorResponse>\n  <Code>InvalidClientTokenId</Code>' + "x" * 999
    text = str(AWSRefusal("cannot read 'k'", "403", body))
    assert "\n" not in text
    assert text.startswith(
        "aws: cannot read 'k': 403: <?xml version=\"1.0\"?> <ErrorResponse> <Code>"
    )
    assert len(text) < 400 and text.endswith("...")


def test_recent_changes_stay_bounded_without_listings() -> None:
    recent = RecentChanges(lag_s=10)
    for i in range(5000):
        recent.note(Namespace.KEYS, f"k{i}", True, now=float(i))
    # Only the last lag's worth (plus one pruning batch) is remembered.
    assert len(recent) <= 1024 + 11
    assert recent.apply(Namespace.KEYS, [], now=5000.0) == [f"k{i}" for i in range(4990, 5000)]
