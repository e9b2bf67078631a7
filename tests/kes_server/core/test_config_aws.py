"""``keystore.aws.secretsmanager``: KES v0.17's fields, and one clear line per mistake."""

from __future__ import annotations

from typing import Any

import pytest

from kes_server.core.config import AWSStoreConfig, load_config, parse_config
from kes_server.core.errors import ConfigError
from tests.support.paths import REPO_ROOT, VECTORS_DIR


def _aws(section: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
    return parse_config({"keystore": {"aws": {"secretsmanager": section}}}, environ).keystore


def test_the_v014_sample_selects_the_aws_store() -> None:
    cfg = load_config((VECTORS_DIR / "configs" / "config_v0.14.0.yml").read_bytes(), {})
    assert cfg.keystore == AWSStoreConfig(
        endpoint="https://secretsmanager.us-east-2.amazonaws.com", region="us-east-2"
    )


def test_every_field_and_env_references() -> None:
    env = {"AK": "AKIAEXAMPLE", "SK": "secret/key+value", "TOKEN": "session-token"}
    store = _aws(
        {
            "endpoint": "http://127.0.0.1:4566",
            "region": "eu-central-1",
            "kmskey": "alias/kes",
            "credentials": {"accesskey": "${AK}", "secretkey": "${SK}", "token": "${TOKEN}"},
        },
        env,
    )
    assert store == AWSStoreConfig(
        endpoint="http://127.0.0.1:4566",
        region="eu-central-1",
        kms_key="alias/kes",
        access_key="AKIAEXAMPLE",
        secret_key="secret/key+value",
        session_token="session-token",
    )
    # The secret parts never show in a repr (a log line or traceback).
    assert "secret/key+value" not in repr(store) and "session-token" not in repr(store)


def test_no_credentials_means_the_sdks_default_chain() -> None:
    store = _aws({"endpoint": "secretsmanager.us-east-2.amazonaws.com", "region": "us-east-2"})
    assert store.access_key == store.secret_key == store.session_token == ""


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        (
            "secretsmanager.us-east-2.amazonaws.com",
            "https://secretsmanager.us-east-2.amazonaws.com",
        ),
        ("localhost:4566", "https://localhost:4566"),
        ("http://127.0.0.1:4566/", "http://127.0.0.1:4566"),
        ("https://[::1]:443", "https://[::1]:443"),
    ],
)
def test_endpoints_without_a_scheme_mean_https(endpoint: str, url: str) -> None:
    assert _aws({"endpoint": endpoint, "region": "us-east-2"}).endpoint == url


def test_an_empty_section_is_no_store_as_in_kes() -> None:
    assert _aws({"endpoint": "", "region": "", "credentials": {"accesskey": ""}}) is None
    sample = VECTORS_DIR / "configs" / "server-config_v0.17.6.yaml"
    assert load_config(sample.read_bytes(), {}).keystore is None


@pytest.mark.parametrize(
    ("section", "field", "problem"),
    [
        ({"region": "us-east-2"}, "endpoint", "required when the AWS key store is configured"),
        ({"endpoint": "ftp://host"}, "endpoint", "invalid endpoint 'ftp://host'"),
        ({"endpoint": "https://h/path"}, "endpoint", "only scheme, host and port"),
        ({"endpoint": "https://h:99999"}, "endpoint", "invalid endpoint"),
        ({"endpoint": "h"}, "region", "required"),
        (
            {"endpoint": "h", "region": "r", "credentials": {"accesskey": "a"}},
            "credentials.secretkey",
            "accesskey and secretkey must be set together",
        ),
        (
            {"endpoint": "h", "region": "r", "credentials": {"secretkey": "s"}},
            "credentials.accesskey",
            "accesskey and secretkey must be set together",
        ),
        (
            {"endpoint": "h", "region": "r", "credentials": {"token": "t"}},
            "credentials.token",
            "needs accesskey and secretkey",
        ),
        ({"endpoint": "h", "region": "r", "kms_key": "x"}, "kms_key", "unknown field"),
        (
            {"endpoint": "h", "region": "r", "credentials": {"key": "x"}},
            "credentials.key",
            "unknown",
        ),
    ],
)
def test_mistakes_name_the_field(section: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        _aws(section)
    assert info.value.field == f"keystore.aws.secretsmanager.{field}"
    assert problem in info.value.problem
    assert "\n" not in str(info.value)


def test_only_one_keystore() -> None:
    with pytest.raises(ConfigError, match="only one keystore"):
        parse_config(
            {
                "keystore": {
                    "fs": {"path": "/tmp/k"},
                    "aws": {"secretsmanager": {"endpoint": "h", "region": "r"}},
                }
            }
        )


def test_the_documented_example_loads() -> None:
    example = REPO_ROOT / "docs" / "examples" / "server-config-aws.yml"
    env = {"ROOT_IDENTITY": "_", "AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s"}
    cfg = load_config(example.read_bytes(), env)
    assert isinstance(cfg.keystore, AWSStoreConfig)
    assert cfg.keystore.access_key == "AKIA1"
    assert load_config(example.read_bytes(), {"ROOT_IDENTITY": "_"}).keystore == AWSStoreConfig(
        endpoint=cfg.keystore.endpoint, region=cfg.keystore.region, kms_key=cfg.keystore.kms_key
    )
