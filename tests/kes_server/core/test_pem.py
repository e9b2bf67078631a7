"""Tests for kes_server.core.pem (UPSTREAM_TESTS G1-G3).

The upstream fixtures live in ``shared/vectors/certs``; the legacy-encryption
tests build encrypted keys three independent ways: with ``cryptography``'s
own writer, with the ``openssl`` binary when it is installed, and with a
small RFC 1423 encrypter in this file for the ciphers neither produces.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519

from kes_server.core.pem import (
    PemBlock,
    is_private_key_label,
    load_certificate_chain,
    load_private_key,
    parse_pem,
)
from tests.support.legacy_pem import LEGACY_CIPHERS, legacy_encrypt
from tests.support.paths import VECTORS_DIR

CERTS = VECTORS_DIR / "certs"
PASSWORD = "correct_password"


def _read(name: str) -> bytes:
    return (CERTS / name).read_bytes()


def _raw(key: object) -> bytes:
    """Private key bytes, for comparing two loaded keys."""
    assert isinstance(
        key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    )
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# ---------------------------------------------------------------------- G1/G2


@pytest.mark.parametrize("password", [None, "", "ignored_password"])
def test_plaintext_key_loads_with_or_without_password(password: str | None) -> None:
    key = load_private_key(_read("privatekey_plaintext.pem"), password)
    assert isinstance(key, ec.EllipticCurvePrivateKey)


def test_encrypted_key_loads_with_the_right_password() -> None:
    key = load_private_key(_read("privatekey_encrypted.pem"), PASSWORD)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    # The same key cryptography's own reader finds.
    reference = serialization.load_pem_private_key(
        _read("privatekey_encrypted.pem"), PASSWORD.encode()
    )
    assert _raw(key) == _raw(reference)


@pytest.mark.parametrize("password", [None, ""])
def test_encrypted_key_needs_a_password(password: str | None) -> None:
    with pytest.raises(ValueError, match="password required"):
        load_private_key(_read("privatekey_encrypted.pem"), password)


@pytest.mark.parametrize(
    "password", ["incorrect_password", "correct_password ", "Correct_password"]
)
def test_encrypted_key_rejects_a_wrong_password(password: str) -> None:
    with pytest.raises(ValueError, match="incorrect password"):
        load_private_key(_read("privatekey_encrypted.pem"), password)


# ------------------------------------------------------------------------- G3


@pytest.mark.parametrize("name", ["single.pem", "with_whitespaces.pem", "root.cert"])
def test_certificate_files_load(name: str) -> None:
    chain = load_certificate_chain(_read(name))
    assert len(chain) == 1
    assert isinstance(chain[0], x509.Certificate)


def test_certificate_with_private_key_first_fails() -> None:
    with pytest.raises(ValueError):
        load_certificate_chain(_read("with_privatekey.pem"))


def test_key_first_fails_even_when_the_certificate_is_fine() -> None:
    data = _read("generated_server-localhost.key") + _read("generated_server-localhost.cert")
    with pytest.raises(ValueError, match="swapped"):
        load_certificate_chain(data)


def test_combined_cert_then_key_file_loads_both_ways() -> None:
    data = _read("generated_server-localhost.cert") + _read("generated_server-localhost.key")
    (cert,) = load_certificate_chain(data)
    key = load_private_key(data, None)
    assert cert.public_key() == key.public_key()


def test_chain_keeps_order_and_skips_other_blocks() -> None:
    first, second = _read("single.pem"), _read("root.cert")
    crl_like = b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"
    chain = load_certificate_chain(first + crl_like + second)
    assert [c.subject.rfc4514_string() for c in chain] == [
        x509.load_pem_x509_certificate(first).subject.rfc4514_string(),
        x509.load_pem_x509_certificate(second).subject.rfc4514_string(),
    ]


def test_layout_is_tolerated() -> None:
    pem = _read("single.pem")
    crlf = pem.replace(b"\n", b"\r\n")
    decorated = b"subject=CN = localhost\nissuer=CN = localhost\n\n" + pem + b"\n  \ntrailer\n"
    indented = b"\n".join(b"  " + line + b"  " for line in pem.splitlines())
    for data in (crlf, decorated, indented, b"\xef\xbb\xbf" + pem):
        assert load_certificate_chain(data)[0] == load_certificate_chain(pem)[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no PEM data"),
        (b"hello\n", "no PEM data"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n", "no matching END"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERT-----\n", "no matching END"),
        (b"-----BEGIN CERTIFICATE-----\nA*AA\n-----END CERTIFICATE-----\n", "base64"),
        (b"-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n", "base64"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "invalid certificate"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "no '-----BEGIN CERT"),
    ],
    ids=repr,
)
def test_certificate_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_certificate_chain(data)


# ------------------------------------------------------------------ parse_pem


def test_parse_pem_reads_headers() -> None:
    blocks = parse_pem(_read("privatekey_encrypted.pem"))
    assert len(blocks) == 1
    block = blocks[0]
    assert isinstance(block, PemBlock)
    assert block.label == "EC PRIVATE KEY"
    assert block.headers["Proc-Type"] == "4,ENCRYPTED"
    assert block.headers["DEK-Info"].startswith("AES-256-CBC,")
    assert len(block.der) % 16 == 0


def test_parse_pem_rejects_headers_without_body() -> None:
    with pytest.raises(ValueError, match="headers"):
        parse_pem(b"-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\n-----END X-----\n")


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("PRIVATE KEY", True),
        ("EC PRIVATE KEY", True),
        ("RSA PRIVATE KEY", True),
        ("ENCRYPTED PRIVATE KEY", True),
        ("CERTIFICATE", False),
        ("PUBLIC KEY", False),
        ("PRIVATE KEYS", False),
    ],
)
def test_is_private_key_label(label: str, expected: bool) -> None:
    assert is_private_key_label(label) is expected


# ----------------------------------------------------------- key varieties


def _private_keys() -> dict[str, object]:
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP384R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "ed448": ed448.Ed448PrivateKey.generate(),
    }


@pytest.mark.parametrize("kind", ["rsa", "ec", "ed25519", "ed448"])
def test_plaintext_formats(kind: str) -> None:
    key = _private_keys()[kind]
    assert isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    )
    formats = [serialization.PrivateFormat.PKCS8]
    if kind in ("rsa", "ec"):
        formats.append(serialization.PrivateFormat.TraditionalOpenSSL)
    for fmt in formats:
        pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        loaded = load_private_key(pem, "ignored")
        assert type(loaded) is type(key)
        assert loaded.public_key() == key.public_key()


def test_pkcs8_encrypted_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    assert b"ENCRYPTED PRIVATE KEY" in pem
    assert load_private_key(pem, "s3cret").public_key() == key.public_key()
    with pytest.raises(ValueError, match="password required"):
        load_private_key(pem, None)
    with pytest.raises(ValueError, match="incorrect password"):
        load_private_key(pem, "wrong")


def test_cryptography_written_legacy_pem() -> None:
    """cryptography writes traditional + password as legacy "Proc-Type" PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert b"Proc-Type: 4,ENCRYPTED" in pem
    assert load_private_key(pem, "pw").public_key() == key.public_key()


def test_unsupported_key_type() -> None:
    key = x25519.X25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="unsupported private key type"):
        load_private_key(pem, None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no PEM-encoded private key"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "no PEM-encoded"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "invalid private key"),
    ],
    ids=repr,
)
def test_private_key_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_private_key(data, None)


@pytest.mark.parametrize(
    "name", sorted(p.name for p in CERTS.glob("generated_*.key")) + ["root.key"]
)
def test_fixture_keys_match_their_certificates(name: str) -> None:
    key = load_private_key(_read(name), None)
    cert = x509.load_pem_x509_certificate(_read(name.replace(".key", ".cert")))
    assert key.public_key() == cert.public_key()


# -------------------------------------------------- legacy RFC 1423 ciphers


@pytest.mark.parametrize("cipher", sorted(LEGACY_CIPHERS))
def test_legacy_ciphers(cipher: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    pem = legacy_encrypt("EC PRIVATE KEY", der, cipher, b"p\xc3\xa4ss")
    assert load_private_key(pem, "päss").public_key() == key.public_key()
    with pytest.raises(ValueError, match="incorrect password"):
        # A wrong key can pass the padding check by chance (about 1 in 256):
        # the DER parse then catches it, with the same message.
        for attempt in range(8):
            load_private_key(pem, f"wrong-{attempt}")


@pytest.mark.parametrize(
    ("dek_info", "message"),
    [
        ("RC2-CBC,0011223344556677", "unsupported private key encryption"),
        ("AES-128-CBC,00112233", "wrong IV length"),
        ("AES-128-CBC,zz", "bad IV"),
        ("", "unsupported private key encryption"),
    ],
)
def test_legacy_header_errors(dek_info: str, message: str) -> None:
    pem = (
        "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
        f"DEK-Info: {dek_info}\n\n" + "A" * 44 + "\n-----END EC PRIVATE KEY-----\n"
    ).encode()
    with pytest.raises(ValueError, match=message):
        load_private_key(pem, "pw")


def test_legacy_ciphertext_length_is_checked() -> None:
    pem = (
        b"-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
        b"DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n"
        b"-----END EC PRIVATE KEY-----\n"
    )
    with pytest.raises(ValueError, match="ciphertext length"):
        load_private_key(pem, "pw")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl binary not installed")
@pytest.mark.parametrize("flag", ["-aes128", "-aes192", "-aes256", "-des3"])
def test_openssl_written_legacy_pem(tmp_path: Path, flag: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    plain = tmp_path / "plain.pem"
    plain.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    out = tmp_path / "enc.pem"
    subprocess.run(
        ["openssl", "ec", "-in", str(plain), flag, "-passout", "pass:pw", "-out", str(out)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    assert b"Proc-Type: 4,ENCRYPTED" in out.read_bytes()
    assert load_private_key(out.read_bytes(), "pw").public_key() == key.public_key()
