"""Client TLS settings: env var precedence and SSL context construction."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from kes_client import CredentialsError
from kes_client._tls import (
    DEFAULT_SERVER,
    create_ssl_context,
    normalize_server,
    resolve_settings,
)


@pytest.fixture(name="ca", scope="module")
def _ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(name="client_files")
def _client_files(tmp_path: Path, ca: trustme.CA) -> tuple[Path, Path]:
    leaf = ca.issue_cert("client@test")
    cert, key = tmp_path / "client.cert", tmp_path / "client.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return cert, key


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:7373", "https://127.0.0.1:7373"),
        ("https://kes.example.com:7373/", "https://kes.example.com:7373"),
        ("  ", DEFAULT_SERVER),
    ],
)
def test_normalize_server(given: str, expected: str) -> None:
    assert normalize_server(given) == expected


def test_explicit_settings_win_over_env() -> None:
    env = {
        "KES_SERVER": "https://env:1",
        "KES_CLIENT_CERT": "env.cert",
        "KES_CLIENT_KEY": "env.key",
    }
    settings = resolve_settings(server="flag:2", cert="flag.cert", key="flag.key", environ=env)
    assert (settings.server, settings.cert, settings.key) == (
        "https://flag:2",
        Path("flag.cert"),
        Path("flag.key"),
    )


def test_current_env_names_win_over_legacy() -> None:
    env = {
        "KES_CLIENT_CERT": "new.cert",
        "KES_CLIENT_KEY": "new.key",
        "KES_CLIENT_TLS_CERT_FILE": "old.cert",
        "KES_CLIENT_TLS_KEY_FILE": "old.key",
    }
    settings = resolve_settings(environ=env)
    assert (settings.cert, settings.key) == (Path("new.cert"), Path("new.key"))
    assert settings.server == DEFAULT_SERVER


def test_legacy_env_names_are_a_fallback() -> None:
    env = {
        "KES_CLIENT_CERT": "",
        "KES_CLIENT_TLS_CERT_FILE": "old.cert",
        "KES_CLIENT_TLS_KEY_FILE": "old.key",
    }
    settings = resolve_settings(environ=env)
    assert (settings.cert, settings.key) == (Path("old.cert"), Path("old.key"))


def test_missing_certificate_uses_upstream_wording() -> None:
    with pytest.raises(CredentialsError) as info:
        resolve_settings(environ={})
    assert str(info.value) == (
        "no TLS client certificate. Environment variable 'KES_CLIENT_CERT' is not set"
    )
    with pytest.raises(CredentialsError, match="KES_CLIENT_KEY"):
        resolve_settings(environ={"KES_CLIENT_CERT": "x"})


def test_context_verifies_server_by_default(
    client_files: tuple[Path, Path], ca: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert, key = client_files
    ctx = create_ssl_context(cert=cert, key=key, ca=ca_file)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert len(ctx.get_ca_certs()) == 1


def test_insecure_context_skips_verification(client_files: tuple[Path, Path]) -> None:
    cert, key = client_files
    ctx = create_ssl_context(cert=cert, key=key, insecure=True)
    assert ctx.verify_mode == ssl.CERT_NONE
    assert not ctx.check_hostname


def test_missing_files_raise_credentials_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="client certificate '.*nope.cert': no such file"):
        create_ssl_context(cert=tmp_path / "nope.cert", key=tmp_path / "nope.key")
    with pytest.raises(CredentialsError, match="CA file"):
        create_ssl_context(ca=tmp_path / "nope.pem")


def test_mismatched_key_is_reported(client_files: tuple[Path, Path], ca: trustme.CA) -> None:
    cert, _ = client_files
    other = cert.parent / "other.key"
    ca.issue_cert("other@test").private_key_pem.write_to_path(str(other))
    with pytest.raises(CredentialsError, match="private key '.*other.key' does not belong to"):
        create_ssl_context(cert=cert, key=other)


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("cert", "client certificate '.*junk.pem' holds no PEM certificate"),
        ("key", "private key '.*junk.pem' holds no PEM private key"),
        ("ca", "CA file '.*junk.pem' holds no PEM certificate"),
    ],
)
def test_tls_file_errors_name_the_file(
    client_files: tuple[Path, Path], which: str, message: str
) -> None:
    """OpenSSL says "PEM lib"; the operator needs to know which of three files is wrong."""
    cert, key = client_files
    junk = cert.parent / "junk.pem"
    junk.write_text("not a certificate\n")
    files = {"cert": cert, "key": key, "ca": None, which: junk}
    with pytest.raises(CredentialsError, match=message):
        create_ssl_context(cert=files["cert"], key=files["key"], ca=files["ca"])


def test_directory_is_not_a_tls_file(client_files: tuple[Path, Path]) -> None:
    cert, _ = client_files
    with pytest.raises(CredentialsError, match="private key '.*': it is a directory"):
        create_ssl_context(cert=cert, key=cert.parent)


def test_cert_without_key_is_refused(client_files: tuple[Path, Path]) -> None:
    with pytest.raises(CredentialsError, match="both"):
        create_ssl_context(cert=client_files[0])
