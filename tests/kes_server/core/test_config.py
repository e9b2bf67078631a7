"""Config parsing: every upstream layout loads, env expansion, one clear error per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from kes_server.core.config import (
    EtcdStoreConfig,
    FSStoreConfig,
    VaultAppRoleConfig,
    VaultKubernetesConfig,
    VaultStoreConfig,
    expand_env,
    load_config,
    parse_config,
    parse_duration,
)
from kes_server.core.errors import ConfigError
from kes_server.core.policy import Policy
from tests.support.paths import VECTORS_DIR, load_vectors

CONFIGS = sorted((VECTORS_DIR / "configs").glob("*.y*ml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_upstream_layouts_load(path: Path) -> None:
    cfg = load_config(path.read_bytes(), {})
    assert cfg.address == "0.0.0.0:7373"
    assert cfg.root == "c84cc9b91ae2399b043da7eca616048d4b4200edf2ff418d8af3835911db945d"
    names = {p.name for p in cfg.policies}
    assert names == {"my-app", "my-app-ops"}
    my_app = next(p for p in cfg.policies if p.name == "my-app")
    assert "/v1/key/create/my-app*" in my_app.policy.allow
    assert len(my_app.identities) == 2
    assert cfg.cache.any_s == 300 and cfg.cache.unused_s == 20
    assert cfg.log.error is True and cfg.log.audit is False


def test_v013_layout_migrates_paths_and_keystore() -> None:
    cfg = load_config((VECTORS_DIR / "configs" / "config_v0.13.0.yml").read_bytes(), {})
    assert cfg.keys == ()
    assert cfg.keystore == VaultStoreConfig(
        endpoint="https://localhost:8200",
        approle=VaultAppRoleConfig(retry_s=15.0),
        kubernetes=VaultKubernetesConfig(retry_s=15.0),
    )
    assert cfg.tls.proxy.cert_header == "X-Tls-Client-Cert"


def test_v017_sample_has_no_configured_store_but_keys() -> None:
    cfg = load_config((VECTORS_DIR / "configs" / "server-config_v0.17.6.yaml").read_bytes(), {})
    assert cfg.keystore is None  # every keystore section is empty
    assert cfg.keys == ("some-key-name", "another-key-name")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${VAR}", "value"),
        ("  ${VAR}  ", "value"),
        ("${ VAR}", "value"),
        ("$VAR", "$VAR"),
        ("$VAR}", "$VAR}"),
        ("${VAR}x", "${VAR}x"),
        ("plain", "plain"),
        ("${MISSING}", ""),
    ],
)
def test_env_expansion(value: str, expected: str) -> None:
    assert expand_env(value, {"VAR": "value"}) == expected


def test_identities_and_root_expand_env() -> None:
    ident = "a" * 64
    cfg = parse_config(
        {
            "root": "${ROOT}",
            "policy": {"p": {"allow": ["/v1/key/*/*"], "identities": ["${APP}", "${UNSET}"]}},
            "keys": [{"name": "${KEY}"}],
        },
        {"ROOT": "b" * 64, "APP": ident, "KEY": "k1"},
    )
    assert cfg.root == "b" * 64
    assert cfg.policies[0].identities == (ident,)
    assert cfg.keys == ("k1",)


def test_allow_patterns_are_not_expanded() -> None:
    cfg = parse_config({"policy": {"p": {"allow": ["${X}"]}}}, {"X": "/v1/key/*/*"})
    assert cfg.policies[0].policy.allow == ("${X}",)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m0s", 300), ("20s", 20), ("1h30m", 5400), ("0", 0), ("1.5s", 1.5), ("250ms", 0.25)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("doc", "field", "fragment"),
    [
        ({"adress": "x"}, "adress", "unknown field"),
        ({"log": {"audit": "maybe"}}, "log.audit", "on' or 'off"),
        ({"cache": {"expiry": {"any": "5 minutes"}}}, "cache.expiry.any", "invalid duration"),
        ({"policy": {"p": {"allow": ["/v1/key/[a-"]}}}, "policy.p.allow[0]", "syntax error"),
        (
            {"root": "r" * 64, "policy": {"p": {"identities": ["r" * 64]}}},
            "policy.p.identities[0]",
            "root",
        ),
        (
            {"policy": {"p": {"identities": ["a" * 64]}, "q": {"identities": ["a" * 64]}}},
            "policy.q.identities[0]",
            "already has a policy",
        ),
        (
            {"keystore": {"fs": {"path": "/x"}, "etcd": {"endpoints": ["h:1"]}}},
            "keystore",
            "only one",
        ),
        ({"keystore": {"etcd": {"endpoints": []}}}, "keystore.etcd.endpoints", "at least one"),
        ({"tls": {"min_version": "1.1"}}, "tls.min_version", "1.2 or 1.3"),
        ({"keys": [{"name": ""}]}, "keys[0].name", "empty"),
    ],
)
def test_errors_name_the_field(doc: dict[str, object], field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(doc, {})
    assert info.value.field == field
    assert fragment in str(info.value)


# ------------------------------------------------------------------ policies
# The config file's policy section has one parser: core.config.

BAD_PATTERNS: list[str] = [b["pattern"] for b in load_vectors("policy_match.json")["bad_patterns"]]


@pytest.mark.parametrize("pattern", BAD_PATTERNS, ids=repr)
@pytest.mark.parametrize("kind", ["allow", "deny"])
def test_bad_policy_patterns_use_kes_start_up_text(pattern: str, kind: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"policy": {"my-app": {kind: ["/v1/key/create/*", pattern]}}})
    assert info.value.field == f"policy.my-app.{kind}[1]"
    assert info.value.problem == (
        f'policy "my-app" contains invalid {kind} pattern: syntax error in pattern'
    )


def test_policy_section() -> None:
    ident = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"
    cfg = parse_config(
        {
            "policy": {
                "my-app": {
                    "allow": ["/v1/key/create/my-app*", ""],
                    "deny": ["/v1/key/*/my-app-internal*"],
                    "identities": [ident],
                },
                "empty": {},
                "nulls": {"allow": None, "deny": None},
            }
        }
    )
    by_name = {p.name: p for p in cfg.policies}
    assert by_name["my-app"].policy == Policy(
        allow=("/v1/key/create/my-app*",), deny=("/v1/key/*/my-app-internal*",)
    )
    assert by_name["my-app"].identities == (ident,)
    assert by_name["empty"].policy == Policy()
    assert by_name["nulls"].policy == Policy()


def test_policy_v013_paths() -> None:
    cfg = parse_config({"policy": {"old": {"paths": ["/v1/key/*/*"]}}})
    assert cfg.policies[0].policy.allow == ("/v1/key/*/*",)
    both = parse_config({"policy": {"both": {"allow": ["/a"], "paths": ["/b"]}}})
    assert both.policies[0].policy.allow == ("/a",)


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"allow": "/v1/*"}, "policy.p.allow"),
        ({"deny": {"x": 1}}, "policy.p.deny"),
        ({"allow": ["/ok", ["/nested"]]}, "policy.p.allow[1]"),
        ({"allow": [], "color": "red"}, "policy.p.color"),
        ({"paths": ["/ok", "[x-]"]}, "policy.p.paths[1]"),  # the field the file names
        ({"allow": ["", "/ok", "[x-]"]}, "policy.p.allow[2]"),  # empty entries still count
        (["/v1/*"], "policy.p"),
    ],
    ids=repr,
)
def test_policy_errors_name_the_field(section: object, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"policy": {"p": section}})
    assert info.value.field == field


def test_yaml_syntax_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(b"address: [unclosed\n", {})


def test_stores() -> None:
    assert parse_config({"keystore": {"fs": {"path": "./keys"}}}).keystore == FSStoreConfig(
        "./keys"
    )
    etcd = parse_config(
        {"keystore": {"etcd": {"endpoints": ["http://127.0.0.1:2379"], "timeout": "3s"}}}
    ).keystore
    assert isinstance(etcd, EtcdStoreConfig) and etcd.timeout_s == 3
    assert parse_config({}).keystore is None


def test_admin_identity_is_root() -> None:
    assert parse_config({"admin": {"identity": "_"}}).root == "_"
    assert not parse_config({"root": "_"}).root_enabled
    assert parse_config({"root": "c" * 64}).root_enabled
