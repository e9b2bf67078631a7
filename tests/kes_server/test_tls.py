"""Server TLS contexts: --auth modes, encrypted keys, and the start-up self-test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kes_server.core.certs import new_identity
from kes_server.tls import TLSSetupError, self_test, server_context
from tests.support.legacy_pem import legacy_encrypt
from tests.support.paths import VECTORS_DIR


def test_self_test_passes_here() -> None:
    self_test()


def _cert_for(tmp_path: Path, key_file: Path) -> Path:
    """A certificate matching an upstream test key, so the pair loads."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    from kes_server.core.pem import load_private_key

    key = load_private_key(key_file.read_bytes(), "correct_password")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    import datetime

    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.mark.parametrize("name", ["privatekey_plaintext.pem", "privatekey_encrypted.pem"])
def test_upstream_keys_load_with_the_right_password(tmp_path: Path, name: str) -> None:
    key = tmp_path / name
    shutil.copy(VECTORS_DIR / "certs" / name, key)
    cert = _cert_for(tmp_path, key)
    server_context(cert=str(cert), key=str(key), password="correct_password", auth=False)


def test_encrypted_key_needs_the_password(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    shutil.copy(VECTORS_DIR / "certs" / "privatekey_encrypted.pem", key)
    cert = _cert_for(tmp_path, key)
    for password in ("", "wrong"):
        with pytest.raises(TLSSetupError):
            server_context(cert=str(cert), key=str(key), password=password, auth=False)


def test_missing_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TLSSetupError, match="cannot read"):
        server_context(cert=str(tmp_path / "nope.crt"), key=str(tmp_path / "nope.key"))


def test_auth_on_with_a_bad_ca_file(tmp_path: Path) -> None:
    key, cert = new_identity("localhost", server=True, key_type="ecdsa")
    (tmp_path / "k").write_bytes(key)
    (tmp_path / "c").write_bytes(cert)
    (tmp_path / "ca").write_text("not a certificate")
    with pytest.raises(TLSSetupError, match="client CA"):
        server_context(cert=str(tmp_path / "c"), key=str(tmp_path / "k"), ca=str(tmp_path / "ca"))


def _legacy_des_key_pair(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A server certificate and its key in single-DES "Proc-Type: 4,ENCRYPTED" PEM.

    OpenSSL 3 cannot read single DES, so only our own loader can (the fallback);
    returns the cert, the encrypted key file and the key's plaintext DER.
    """
    from cryptography.hazmat.primitives import serialization

    from kes_server.core.pem import load_private_key

    key_pem, cert_pem = new_identity("localhost", server=True, key_type="ecdsa")
    der = load_private_key(key_pem, None).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (tmp_path / "server.cert").write_bytes(cert_pem)
    encrypted = legacy_encrypt("EC PRIVATE KEY", der, "DES-CBC", b"legacy-pass")
    (tmp_path / "server.key").write_bytes(encrypted)
    return tmp_path / "server.cert", tmp_path / "server.key", der


def test_legacy_des_encrypted_key_loads_with_tls_password(tmp_path: Path) -> None:
    """Issue 13.6: OpenSSL's "PEM lib" error must reach our own decrypter."""
    cert, key, _der = _legacy_des_key_pair(tmp_path)
    server_context(cert=str(cert), key=str(key), password="legacy-pass", auth=False)
    with pytest.raises(TLSSetupError, match="tls.key"):
        server_context(cert=str(cert), key=str(key), password="wrong-pass", auth=False)


# Runs server_context in a fresh interpreter under an audit hook that records
# every file Python opens for writing (tempfile, open(), os.open all report
# it); the hook cannot be removed, hence the subprocess.
_WRITES_AUDIT = """
import json, os, sys
from kes_server.tls import server_context

written = []
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def hook(event, args):
    if event == "open":
        path, mode, flags = args
        if (isinstance(mode, str) and set(mode) & set("wax+")) or (flags or 0) & WRITE_FLAGS:
            written.append(str(path))

sys.addaudithook(hook)
server_context(cert=sys.argv[1], key=sys.argv[2], password=sys.argv[3], auth=False)
print(json.dumps(written))
"""


def test_legacy_key_fallback_writes_no_plaintext_key(tmp_path: Path) -> None:
    """Issue 14.10: the decrypted key reaches OpenSSL without touching a disk."""
    cert, key, _der = _legacy_des_key_pair(tmp_path)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _WRITES_AUDIT, str(cert), str(key), "legacy-pass"],
        capture_output=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == [], "a file was opened for writing"
    assert list(tmpdir.iterdir()) == []


@pytest.mark.parametrize("missing", ["cert", "key"])
def test_a_missing_tls_file_is_named(tmp_path: Path, missing: str) -> None:
    """OpenSSL only says "No such file"; the start-up line says which field and path."""
    key_pem, cert_pem = new_identity("localhost", server=True, key_type="ecdsa")
    cert, key = tmp_path / "s.cert", tmp_path / "s.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    gone = cert if missing == "cert" else key
    gone.unlink()
    with pytest.raises(TLSSetupError) as caught:
        server_context(cert=str(cert), key=str(key), auth=False)
    assert str(caught.value).startswith(f"tls.{missing}: cannot read '{gone}': ")
    assert "No such file" in str(caught.value)
