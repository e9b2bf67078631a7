"""The config loader turns any YAML document into a Config or one ConfigError.

A config file is operator input and often hand-edited: whatever it holds,
``kes-server`` must print one line naming the problem (cli.py catches only
``ConfigError``), never a traceback. Hypothesis builds random documents from
the real field names (so the generator reaches deep into every section) and
arbitrary scalars, lists and mappings, and also feeds raw text.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from kes_server.core.config import Config, load_config
from kes_server.core.errors import ConfigError

FIELDS = [
    "address",
    "root",
    "admin",
    "identity",
    "tls",
    "key",
    "cert",
    "password",
    "ca",
    "min_version",
    "proxy",
    "identities",
    "header",
    "policy",
    "allow",
    "deny",
    "paths",
    "cache",
    "expiry",
    "any",
    "unused",
    "offline",
    "log",
    "error",
    "audit",
    "keys",
    "name",
    "keystore",
    "fs",
    "path",
    "etcd",
    "endpoints",
    "prefix",
    "timeout",
    "vault",
    "endpoint",
    "aws",
    "secretsmanager",
    "mem",
    "my-policy",
    "unknown",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(
        [
            "on",
            "off",
            "1.2",
            "1.3",
            "5m0s",
            "-1s",
            "1h30m",
            "20x",
            "${HOME}",
            "${NOPE}",
            "_",
            "a" * 64,
            "/v1/key/*",
            "/v1/[",
            "",
            " ",
            "0.0.0.0:7373",
            "\x00",
            "é",
        ]
    )
    | st.text(max_size=20)
)
keys = st.sampled_from(FIELDS) | st.text(max_size=8) | st.integers(-3, 3) | st.booleans()
documents: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)
top_level = st.dictionaries(st.sampled_from(FIELDS), documents, max_size=6)


def _accepts_only_config_or_config_error(text: str | bytes) -> None:
    try:
        result = load_config(text, {"HOME": "/root"})
    except ConfigError as exc:
        assert str(exc), "a ConfigError must say what is wrong"
        assert "\n" not in str(exc).strip() or "YAML" in str(exc)
    else:
        assert isinstance(result, Config)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(top_level)
def test_random_documents(doc: dict[Any, Any]) -> None:
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return  # hypothesis built something YAML itself cannot write
    _accepts_only_config_or_config_error(text)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_random_top_level_values(doc: Any) -> None:
    _accepts_only_config_or_config_error(yaml.safe_dump(doc, allow_unicode=True))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_random_text(text: str | bytes) -> None:
    _accepts_only_config_or_config_error(text)


def test_deeply_nested_yaml_is_a_config_error() -> None:
    """Found by the fuzzer's raw-text cousin: PyYAML recursed until RecursionError."""
    for text in ("[" * 600 + "]" * 600, "a: " + "[" * 600, "{a: " * 600):
        _accepts_only_config_or_config_error(text)
