"""The Vault protocol without a server: KES v0.17's locations, payloads and answers.

The answers fed in here are the ones OpenBao 2.7 really gives (recorded in
../shared/infra/vault/README.md and checked again in tests/e2e/test_vault_store.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from kes_server.keystore.base import Namespace, StoreError
from kes_server.keystore.vault.protocol import (
    Answer,
    Layout,
    Lease,
    Request,
    Step,
    VaultDenied,
    VaultError,
    VaultSealed,
    approle_login,
    go_join,
    health_request,
    kubernetes_login,
    messages,
    next_step,
    parse_created,
    parse_entry,
    parse_exists,
    parse_health,
    parse_lease,
    parse_names,
    renew_self,
)
from kes_server.keystore.vault.transport import public_url

KEY = '{"bytes":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}'


@pytest.mark.parametrize(
    ("parts", "joined"),
    [
        (("kv", "", "k"), "kv/k"),
        (("kv", "kes/", "k"), "kv/kes/k"),
        (("kv", "/a//b/", "k"), "kv/a/b/k"),
        (("kv", "."), "kv"),
        (("kv", "./x/../y"), "kv/y"),
        (("", ""), ""),
        (("//a",), "/a"),
    ],
)
def test_go_join_is_gos_path_join(parts: tuple[str, ...], joined: str) -> None:
    assert go_join(*parts) == joined


@pytest.mark.parametrize(
    ("engine", "version", "prefix", "data", "delete", "listed"),
    [
        ("kv", "v1", "", "kv/my-key", "kv/my-key", "kv"),
        ("kv", "v1", "kes", "kv/kes/my-key", "kv/kes/my-key", "kv/kes"),
        ("kv", "v1", "/kes/prod/", "kv/kes/prod/my-key", "kv/kes/prod/my-key", "kv/kes/prod"),
        ("kv2", "v2", "", "kv2/data/my-key", "kv2/metadata/my-key", "kv2/metadata"),
        ("kv2", "v2", "kes", "kv2/data/kes/my-key", "kv2/metadata/kes/my-key", "kv2/metadata/kes"),
        ("team/kv/", "v2", "p", "team/kv/data/p/my-key", "team/kv/metadata/p/my-key", None),
    ],
)
def test_key_locations_are_kes_v017s(
    engine: str, version: Any, prefix: str, data: str, delete: str, listed: str | None
) -> None:
    layout = Layout(engine, version, prefix)
    assert layout.read(Namespace.KEYS, "my-key") == Request("GET", data)
    assert layout.create(Namespace.KEYS, "my-key", KEY).path == data
    assert layout.delete(Namespace.KEYS, "my-key") == Request("DELETE", delete)
    if listed is not None:
        assert layout.list(Namespace.KEYS) == Request("GET", listed, query=(("list", "true"),))


def test_the_secret_field_is_named_after_the_key() -> None:
    v1, v2 = Layout("kv", "v1", "kes"), Layout("kv", "v2", "kes")
    assert v1.create(Namespace.KEYS, "k", KEY).body == {"k": KEY}
    assert v2.create(Namespace.KEYS, "k", KEY).body == {"options": {"cas": 0}, "data": {"k": KEY}}
    # Replacing (policies only) never sends a check-and-set.
    assert v1.put(Namespace.POLICIES, "p", "{}").body == {"p": "{}"}
    assert v2.put(Namespace.POLICIES, "p", "{}").body == {"data": {"p": "{}"}}


@pytest.mark.parametrize("prefix", ["kes", "a/b", "kes/", ""])
def test_pykes_metadata_sits_beside_the_key_folder(prefix: str) -> None:
    layout = Layout("kv", "v1", prefix)
    keys = layout.list_path(Namespace.KEYS)
    for ns in (Namespace.POLICIES, Namespace.IDENTITIES):
        folder = layout.list_path(ns)
        assert folder.endswith(".pykes/" + ns.value)
        if prefix:  # inside the key folder only when the keys sit at the engine root
            assert not folder.startswith(keys + "/")
    assert Layout("kv", "v1", "a/b").list_path(Namespace.POLICIES) == "kv/a/b.pykes/policies"
    assert (
        Layout("kv", "v2", "").data_path(Namespace.IDENTITIES, "x") == "kv/data/.pykes/identities/x"
    )


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\0b"])
def test_a_name_is_always_one_path_segment(name: str) -> None:
    with pytest.raises(StoreError):
        Layout().read(Namespace.KEYS, name)


@pytest.mark.parametrize(("engine", "prefix"), [("kv", "../sys"), ("../x", ""), ("", "p")])
def test_a_layout_cannot_leave_its_engine(engine: str, prefix: str) -> None:
    with pytest.raises(ValueError):
        Layout(engine, "v1", prefix)


def test_requests_never_show_their_body() -> None:
    login = approle_login("approle", "role-id", "the-secret-id")
    assert "the-secret-id" not in repr(login)
    assert login.describe() == "POST auth/approle/login"
    assert not login.authenticated and login.namespaced
    assert sorted(login.sent_values()) == ["role-id", "the-secret-id"]
    create = Layout("kv", "v2").create(Namespace.KEYS, "k", KEY)
    assert KEY not in repr(create) and create.sent_values() == [KEY]
    assert Layout().list(Namespace.KEYS).describe() == "LIST kv"


def test_auth_and_health_requests() -> None:
    assert kubernetes_login("k8s/prod", "kes", "jwt").path == "auth/k8s/prod/login"
    assert kubernetes_login("kubernetes", "kes", "jwt").body == {"role": "kes", "jwt": "jwt"}
    assert renew_self(3600.0) == Request("POST", "auth/token/renew-self", {"increment": 3600})
    health = health_request()
    assert health.path == "sys/health" and not health.namespaced and not health.authenticated
    assert ("sealedcode", "299") in health.query


def test_url_paths_are_escaped_like_gos() -> None:
    assert Request("GET", "kv/my prefix/k%").url_path == "/v1/kv/my%20prefix/k%25"
    assert Request("GET", "kv/a:b@c").url_path == "/v1/kv/a:b@c"


def _answer(status: int, doc: dict[str, Any] | None = None) -> Answer:
    doc = doc or {}
    return Answer(status, doc, messages(doc.get("errors")), messages(doc.get("warnings")))


V1_MISSING = _answer(404, {"errors": []})
NO_ROUTE = _answer(404, {"errors": ['no handler for route "nomount/x". route entry not found.']})
WRONG_ENGINE = _answer(
    404, {"data": None, "warnings": ["Invalid path for a versioned K/V secrets engine."]}
)
SOFT_DELETED = _answer(404, {"data": {"data": None, "metadata": {"version": 1}}})
SEALED = _answer(503, {"errors": ["Vault is sealed"]})
DENIED = _answer(403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]})


def test_messages_flatten_multi_errors() -> None:
    assert DENIED.errors == ("permission denied",)
    assert messages(["a\n  b", ""]) == ("a b",)
    assert messages(None) == ()


def test_read_answers() -> None:
    read = Layout("kv", "v1", "kes").read(Namespace.KEYS, "k")
    assert parse_entry(read, _answer(200, {"data": {"k": KEY}}), "k", "v1") == KEY
    assert parse_entry(read, V1_MISSING, "k", "v1") is None
    read2 = Layout("kv", "v2", "kes").read(Namespace.KEYS, "k")
    assert parse_entry(read2, _answer(200, {"data": {"data": {"k": KEY}}}), "k", "v2") == KEY
    assert parse_entry(read2, SOFT_DELETED, "k", "v2") is None
    assert not parse_exists(read2, SOFT_DELETED)
    assert parse_exists(read, _answer(200, {"data": {"other": "x"}}))


@pytest.mark.parametrize(
    ("answer", "error", "fragment"),
    [
        (NO_ROUTE, VaultError, "no handler for route"),
        (WRONG_ENGINE, VaultError, "versioned K/V"),
        (SEALED, VaultSealed, "Vault is sealed"),
        (DENIED, VaultDenied, "GET kv/kes/k: permission denied"),
        (_answer(500, {}), VaultError, "HTTP 500"),
        (_answer(200, {"data": {"other": "x"}}), VaultError, "has no field 'k'"),
        (_answer(200, {"data": {"k": 1}}), VaultError, "is not a string"),
        (_answer(200, {"data": None}), VaultError, "no 'data' object"),
    ],
)
def test_bad_read_answers(answer: Answer, error: type[VaultError], fragment: str) -> None:
    read = Layout("kv", "v1", "kes").read(Namespace.KEYS, "k")
    with pytest.raises(error) as exc:
        parse_entry(read, answer, "k", "v1")
    assert type(exc.value) is error
    assert fragment in str(exc.value) and str(exc.value).startswith("vault: ")


def test_list_answers() -> None:
    listing = Layout().list(Namespace.KEYS)
    found = _answer(200, {"data": {"keys": ["a", "b", ".pykes/", "sub/"]}})
    assert parse_names(listing, found) == ["a", "b"]
    assert parse_names(listing, V1_MISSING) == []
    with pytest.raises(VaultError, match="no 'keys' list"):
        parse_names(listing, _answer(200, {"data": {}}))


def test_create_answers() -> None:
    create = Layout("kv", "v2").create(Namespace.KEYS, "k", KEY)
    assert parse_created(create, _answer(200, {"data": {"version": 1}}))
    assert parse_created(create, _answer(204))
    mismatch = {"errors": ["check-and-set parameter did not match the current version"]}
    assert not parse_created(create, _answer(400, mismatch))
    with pytest.raises(VaultDenied):
        parse_created(create, DENIED)


def test_lease_answers() -> None:
    login = approle_login("approle", "r", "s")
    auth = {"client_token": "s.token", "lease_duration": 3600, "renewable": True}
    lease = parse_lease(login, _answer(200, {"auth": auth}))
    assert lease == Lease("s.token", 3600.0, True)
    assert "s.token" not in repr(lease)
    with pytest.raises(VaultError, match="invalid role or secret ID"):
        parse_lease(login, _answer(400, {"errors": ["invalid role or secret ID"]}))
    with pytest.raises(VaultError, match="no token"):
        parse_lease(login, _answer(200, {"auth": None}))
    with pytest.raises(VaultError, match="lease duration"):
        parse_lease(login, _answer(200, {"auth": {**auth, "lease_duration": "soon"}}))


@pytest.mark.parametrize(
    ("lease", "login_ttl", "step"),
    [
        (Lease("t", 3600, True), 3600, Step("renew", 1800)),
        (Lease("t", 3, True), 3, Step("renew", 1.5)),
        # A renewal capped by the max TTL: log in again before the token dies.
        (Lease("t", 1.5, True), 3, Step("login", 0.75)),
        (Lease("t", 60, False), 60, Step("login", 30)),
        (Lease("t", 0, False), 0, Step("none", 0)),
    ],
)
def test_token_schedule(lease: Lease, login_ttl: float, step: Step) -> None:
    assert next_step(lease, login_ttl) == step


def test_health_answers() -> None:
    health = health_request()
    ok = {"initialized": True, "sealed": False, "standby": True}
    assert parse_health(health, _answer(200, ok)).available
    sealed = parse_health(health, _answer(299, {"initialized": True, "sealed": True}))
    assert (sealed.available, sealed.reason) == (False, "Vault is sealed")
    fresh = parse_health(health, _answer(299, {"initialized": False, "sealed": True}))
    assert fresh.reason == "Vault is not initialized"
    with pytest.raises(VaultError, match="operation unavailable in namespaces"):
        parse_health(health, _answer(400, {"errors": ["operation unavailable in namespaces"]}))
    with pytest.raises(VaultError, match="malformed"):
        parse_health(health, _answer(200, {"html": True}))


@pytest.mark.parametrize(
    ("endpoint", "shown"),
    [
        ("https://vault:8200/", "https://vault:8200"),
        ("https://kes:pa55w0rd@vault:8200", "https://vault:8200"),
        ("http://user@[::1]:8200/base", "http://[::1]:8200/base"),
    ],
)
def test_an_endpoint_is_shown_without_credentials(endpoint: str, shown: str) -> None:
    assert public_url(endpoint) == shown
