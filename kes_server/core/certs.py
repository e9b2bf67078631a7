"""Self-signed certificates for ``kes-server --dev``, ``kes identity new`` and tests.

KES authenticates clients by certificate, so every developer setup needs a
few key pairs: one for the server and one per client identity. Generating
them here, in one place, keeps the server's dev mode, the CLI and the test
suite producing identical, known-good certificates.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from collections.abc import Sequence
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["KeyType", "new_identity"]

KeyType = Literal["ed25519", "ecdsa"]

# Tolerate a verifier whose clock is a little behind ours.
_BACKDATE = datetime.timedelta(minutes=5)


def new_identity(
    subject: str,
    *,
    server: bool = False,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    days: int = 30,
    key_type: KeyType = "ed25519",
) -> tuple[bytes, bytes]:
    """Generate a key pair and a self-signed certificate for it.

    Returns ``(private key PEM, certificate PEM)``: the key as unencrypted
    PKCS#8 (what ``ssl`` and Go both read), the certificate with
    CN=``subject``, BasicConstraints CA=false, KeyUsage digitalSignature and
    ExtendedKeyUsage clientAuth, or serverAuth+clientAuth when ``server`` is
    true (a KES server may also call other KES servers). ``dns`` and ``ips``
    become SubjectAltNames; ``ValueError`` if ``days < 1`` or an IP is invalid.

    Key type: Ed25519 is the default because it is what upstream
    ``kes identity new`` creates, and a client certificate only has to
    satisfy the KES server. For a TLS *server* certificate pass
    ``key_type="ecdsa"`` (P-256 with SHA-256): OpenSSL supports Ed25519 in
    TLS 1.3, but browsers, many proxies and TLS 1.2-only clients do not, while
    every TLS stack accepts ECDSA P-256. ``kes-server --dev`` does so.
    """
    if days < 1:
        raise ValueError("certificate validity must be at least one day")
    addresses = [ipaddress.ip_address(ip) for ip in ips]

    private_key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    algorithm: hashes.SHA256 | None
    if key_type == "ed25519":
        private_key, algorithm = ed25519.Ed25519PrivateKey.generate(), None
    elif key_type == "ecdsa":
        private_key, algorithm = ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()
    else:
        raise ValueError(f"unsupported key type {key_type!r}")

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)] if subject else [])
    now = datetime.datetime.now(datetime.UTC)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server:
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    public_key = private_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        # Positive, 127 bits: RFC 5280 allows at most 20 octets.
        .serial_number(secrets.randbits(127) | 1)
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    alt_names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    alt_names += [x509.IPAddress(a) for a in addresses]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    certificate = builder.sign(private_key, algorithm)

    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM)
