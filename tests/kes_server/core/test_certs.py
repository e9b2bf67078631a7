"""Tests for kes_server.core.certs: generated identities work for real TLS.

Besides checking the certificate fields, a real TLS 1.2+/1.3 handshake with
Python's ``ssl`` (OpenSSL) runs over a socket pair, mutual authentication
included, and the server must see the client identity ``identity_of_pem``
computed from the generated certificate.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kes_server.core.certs import KeyType, new_identity
from kes_server.core.identity import identity_of, identity_of_der, identity_of_pem, is_ca
from kes_server.core.pem import load_private_key

KEY_TYPES: list[KeyType] = ["ed25519", "ecdsa"]


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_identity_matches_the_private_key(key_type: KeyType) -> None:
    key_pem, cert_pem = new_identity("alice", key_type=key_type)
    key = load_private_key(key_pem, None)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert identity_of_pem(cert_pem) == hashlib.sha256(spki).hexdigest()
    assert identity_of_pem(cert_pem) == identity_of(x509.load_pem_x509_certificate(cert_pem))


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_client_certificate_fields(key_type: KeyType) -> None:
    key_pem, cert_pem = new_identity("alice", key_type=key_type, days=7)
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS#8, unencrypted
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert cert.issuer == cert.subject
    expected_key = ed25519.Ed25519PublicKey if key_type == "ed25519" else ec.EllipticCurvePublicKey
    assert isinstance(cert.public_key(), expected_key)
    if key_type == "ecdsa":
        public = cert.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert public.curve.name == "secp256r1"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    assert not is_ca(cert)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=7) <= lifetime <= datetime.timedelta(days=7, minutes=10)
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    cert.verify_directly_issued_by(cert)  # self-signed, signature valid


def test_server_certificate_fields() -> None:
    _, cert_pem = new_identity(
        "localhost", server=True, dns=("localhost", "kes.example"), ips=("127.0.0.1", "::1")
    )
    cert = x509.load_pem_x509_certificate(cert_pem)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "kes.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]


def test_every_call_makes_a_new_key_pair() -> None:
    first, second = new_identity("same"), new_identity("same")
    assert first[0] != second[0]
    assert identity_of_pem(first[1]) != identity_of_pem(second[1])
    a = x509.load_pem_x509_certificate(first[1])
    b = x509.load_pem_x509_certificate(second[1])
    assert a.serial_number != b.serial_number and a.serial_number > 0


def test_empty_subject() -> None:
    _, cert_pem = new_identity("")
    assert x509.load_pem_x509_certificate(cert_pem).subject == x509.Name([])


@pytest.mark.parametrize(
    "kwargs",
    [{"days": 0}, {"days": -1}, {"ips": ("localhost",)}, {"key_type": "rsa"}],
    ids=repr,
)
def test_invalid_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        new_identity("x", **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ real TLS


def _write(directory: Path, name: str, key_pem: bytes, cert_pem: bytes) -> tuple[str, str]:
    key, cert = directory / f"{name}.key", directory / f"{name}.cert"
    key.write_bytes(key_pem)
    cert.write_bytes(cert_pem)
    return str(cert), str(key)


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> tuple[bytes | None, str]:
    """Run both ends over a socket pair; returns (client DER seen by server, TLS version)."""
    server_sock, client_sock = socket.socketpair()
    server_sock.settimeout(10)
    client_sock.settimeout(10)
    seen: dict[str, object] = {}

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(server_sock, server_side=True) as tls:
                seen["peer"] = tls.getpeercert(binary_form=True)
                seen["request"] = tls.recv(4)
                tls.sendall(b"pong")
        except Exception as exc:  # noqa: BLE001 - reported to the test thread
            seen["error"] = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with client_ctx.wrap_socket(client_sock, server_hostname="localhost") as tls:
            tls.sendall(b"ping")
            assert tls.recv(4) == b"pong"
            version = tls.version() or ""
    finally:
        thread.join(timeout=10)
    if "error" in seen:
        raise AssertionError(f"server side failed: {seen['error']!r}")
    assert seen["request"] == b"ping"
    peer = seen.get("peer")
    assert peer is None or isinstance(peer, bytes)
    return peer, version


@pytest.mark.parametrize("server_key", KEY_TYPES)
@pytest.mark.parametrize("client_key", KEY_TYPES)
def test_tls_handshake_with_generated_certificates(
    tmp_path: Path, server_key: KeyType, client_key: KeyType
) -> None:
    s_key, s_cert = new_identity(
        "localhost", server=True, dns=("localhost",), ips=("127.0.0.1",), key_type=server_key
    )
    c_key, c_cert = new_identity("client", key_type=client_key)
    server_files = _write(tmp_path, "server", s_key, s_cert)
    client_files = _write(tmp_path, "client", c_key, c_cert)

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*server_files)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(cadata=c_cert.decode())

    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chain and hostname
    client_ctx.load_verify_locations(cadata=s_cert.decode())
    client_ctx.load_cert_chain(*client_files)

    peer, version = _handshake(server_ctx, client_ctx)
    assert version in ("TLSv1.2", "TLSv1.3")
    assert peer is not None
    assert identity_of_der(peer) == identity_of_pem(c_cert)


def test_ecdsa_server_certificate_works_with_tls12(tmp_path: Path) -> None:
    """The documented reason to prefer ECDSA for servers: TLS 1.2 clients."""
    s_key, s_cert = new_identity("localhost", server=True, dns=("localhost",), key_type="ecdsa")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*_write(tmp_path, "server", s_key, s_cert))
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    client_ctx.load_verify_locations(cadata=s_cert.decode())
    peer, version = _handshake(server_ctx, client_ctx)
    assert version == "TLSv1.2"
    assert peer is None  # no client certificate requested


def test_wrong_hostname_is_refused(tmp_path: Path) -> None:
    s_key, s_cert = new_identity("other", server=True, dns=("other.example",), key_type="ecdsa")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*_write(tmp_path, "server", s_key, s_cert))
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cadata=s_cert.decode())
    server_sock, client_sock = socket.socketpair()
    server_sock.settimeout(10)
    client_sock.settimeout(10)

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(server_sock, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with pytest.raises(ssl.SSLCertVerificationError):
        client_ctx.wrap_socket(client_sock, server_hostname="localhost")
    client_sock.close()
    thread.join(timeout=10)
    server_sock.close()
