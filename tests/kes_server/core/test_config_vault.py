"""``keystore.vault``: KES v0.17's fields and defaults, one clear error per problem."""

from __future__ import annotations

from typing import Any

import pytest

from kes_server.core.config import (
    VaultAppRoleConfig,
    VaultKubernetesConfig,
    VaultStoreConfig,
    VaultTLSConfig,
    load_config,
    parse_config,
)
from kes_server.core.errors import ConfigError
from tests.support.paths import VECTORS_DIR


def _vault(section: dict[str, Any], environ: dict[str, str] | None = None) -> object:
    return parse_config({"keystore": {"vault": section}}, environ).keystore


def test_every_field() -> None:
    cfg = _vault(
        {
            "endpoint": "https://vault.example.net:8200",
            "engine": "secrets",
            "version": "v2",
            "namespace": "team-a",
            "prefix": "kes/prod",
            "approle": {
                "engine": "auth-kes",
                "id": "${ROLE}",
                "secret": "${SECRET}",
                "retry": "15s",
            },
            "tls": {"key": "/c.key", "cert": "/c.cert", "ca": "/ca"},
            "status": {"ping": "3s"},
        },
        {"ROLE": "role-id", "SECRET": "secret-id"},
    )
    assert cfg == VaultStoreConfig(
        endpoint="https://vault.example.net:8200",
        engine="secrets",
        version="v2",
        namespace="team-a",
        prefix="kes/prod",
        approle=VaultAppRoleConfig(engine="auth-kes", id="role-id", secret="secret-id", retry_s=15),
        tls=VaultTLSConfig(key="/c.key", cert="/c.cert", ca="/ca"),
        ping_s=3.0,
    )


def test_kes_defaults() -> None:
    cfg = _vault({"endpoint": "http://127.0.0.1:8200", "kubernetes": {"role": "kes", "jwt": "x"}})
    assert isinstance(cfg, VaultStoreConfig)
    assert (cfg.engine, cfg.version, cfg.prefix, cfg.namespace, cfg.ping_s) == (
        "kv",
        "v1",
        "",
        "",
        10,
    )
    assert cfg.approle == VaultAppRoleConfig(engine="approle", retry_s=5.0)
    assert cfg.kubernetes == VaultKubernetesConfig(engine="kubernetes", role="kes", jwt="x")
    assert cfg.uses_kubernetes and not cfg.uses_approle


def test_secrets_never_show_in_repr() -> None:
    cfg = _vault(
        {
            "endpoint": "http://127.0.0.1:8200",
            "approle": {"id": "role", "secret": "s3cr3t-secret-id"},
        }
    )
    other = _vault({"endpoint": "http://h:1", "kubernetes": {"role": "r", "jwt": "eyJ-the-jwt"}})
    assert "s3cr3t-secret-id" not in repr(cfg)
    assert "eyJ-the-jwt" not in repr(other)


def test_an_empty_section_is_no_store_but_is_still_checked() -> None:
    """KES's sample config has every keystore section, all empty."""
    assert _vault({"endpoint": "", "approle": {"retry": "15s"}}) is None
    with pytest.raises(ConfigError) as err:
        _vault({"endpoint": "", "aproles": {}})
    assert err.value.field == "keystore.vault.aproles"


def test_v013_layout_reads_the_vault_section_under_keys() -> None:
    cfg = load_config((VECTORS_DIR / "configs" / "config_v0.13.0.yml").read_bytes(), {})
    assert isinstance(cfg.keystore, VaultStoreConfig)
    assert cfg.keystore.endpoint == "https://localhost:8200"
    assert cfg.keystore.approle.retry_s == 15.0


@pytest.mark.parametrize(
    ("section", "field", "fragment"),
    [
        ({"endpoint": "127.0.0.1:8200"}, "keystore.vault.endpoint", "invalid URL"),
        ({"endpoint": "ftp://h:1"}, "keystore.vault.endpoint", "invalid URL"),
        ({"endpoint": "http://h:99999"}, "keystore.vault.endpoint", "invalid port"),
        ({"endpoint": "http://h:1?x=1"}, "keystore.vault.endpoint", "no query"),
        ({"endpoint": "http://h:1", "version": "v3"}, "keystore.vault.version", "v1 or v2"),
        (
            {"endpoint": "http://h:1", "approle": {"id": "a"}, "kubernetes": {"role": "r"}},
            "keystore.vault",
            "ambiguous authentication",
        ),
        ({"endpoint": "http://h:1", "status": {"ping": "soon"}}, "keystore.vault.status.ping", ""),
        (
            {"endpoint": "http://h:1", "approle": {"retry": "-1s"}},
            "keystore.vault.approle.retry",
            "",
        ),
        ({"endpoint": "http://h:1", "tls": {"password": "x"}}, "keystore.vault.tls.password", ""),
        ({"endpoint": "http://h:1", "approle": []}, "keystore.vault.approle", "mapping"),
    ],
)
def test_errors_name_the_field(section: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        _vault(section)
    assert err.value.field == field
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_vault_and_another_store_are_ambiguous() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            {"keystore": {"fs": {"path": "/k"}, "vault": {"endpoint": "http://127.0.0.1:8200"}}}
        )
    assert err.value.field == "keystore"
