"""Tests for kes_server.core.identity (spec §1.2).

Every entry of ``shared/vectors/identities.json`` is identified from its
inline PEM and from its file under ``vectors/certs``; entries whose identity
is ``null`` must be rejected.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from kes_server.core.identity import (
    identity_of,
    identity_of_der,
    identity_of_pem,
    is_ca,
    spki_der,
)
from kes_server.core.names import is_identity
from tests.support.paths import VECTORS_DIR, load_vectors

DOC: dict[str, Any] = load_vectors("identities.json")
ENTRIES: list[dict[str, Any]] = DOC["identities"]
IDS = [e["file"] for e in ENTRIES]


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_identity_vectors(entry: dict[str, Any]) -> None:
    sources = [entry["pem"].encode(), (VECTORS_DIR / entry["file"]).read_bytes()]
    for data in sources:
        if entry["identity"] is None:
            with pytest.raises(ValueError):
                identity_of_pem(data)
        else:
            assert identity_of_pem(data) == entry["identity"]


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e["identity"]], ids=repr)
def test_identity_from_certificate_and_der(entry: dict[str, Any]) -> None:
    cert = x509.load_pem_x509_certificate(entry["pem"].encode())
    assert identity_of(cert) == entry["identity"]
    assert identity_of_der(cert.public_bytes(serialization.Encoding.DER)) == entry["identity"]
    assert is_identity(identity_of(cert))


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e["identity"]], ids=repr)
def test_raw_spki_equals_reencoded_key_for_ordinary_certs(entry: dict[str, Any]) -> None:
    cert = x509.load_pem_x509_certificate(entry["pem"].encode())
    reencoded = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki_der(cert) == reencoded


@pytest.mark.parametrize(
    "entry", [e for e in ENTRIES if e["file"].startswith("certs/generated_")], ids=repr
)
def test_identity_is_the_hash_of_the_key_pair(entry: dict[str, Any]) -> None:
    """The identity belongs to the key: the private key's SPKI hashes to it too."""
    key_file = VECTORS_DIR / entry["file"].replace(".cert", ".key")
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert hashlib.sha256(spki).hexdigest() == entry["identity"]


def _self_signed(
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey,
    cn: str,
    *,
    basic_constraints: x509.BasicConstraints | None = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if basic_constraints is not None:
        builder = builder.add_extension(basic_constraints, critical=True)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def test_same_key_same_identity() -> None:
    """Re-issuing root.cert's key under another name keeps upstream's root identity."""
    root = next(e for e in ENTRIES if e["file"] == "certs/root.cert")
    key = serialization.load_pem_private_key((VECTORS_DIR / "certs/root.key").read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    reissued = _self_signed(key, "somebody else")
    assert identity_of(reissued) == root["identity"]


def test_identity_of_pem_takes_the_first_certificate_of_a_chain() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("client.example")
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    leaf_cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    assert identity_of_pem(chain) == identity_of(leaf_cert)
    assert identity_of_pem(ca.cert_pem.bytes()) != identity_of(leaf_cert)


def test_is_ca() -> None:
    ca = trustme.CA()
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    leaf = x509.load_pem_x509_certificate(ca.issue_cert("x.example").cert_chain_pems[0].bytes())
    assert is_ca(ca_cert)
    assert not is_ca(leaf)
    key = ec.generate_private_key(ec.SECP256R1())
    assert not is_ca(_self_signed(key, "no extension"))
    assert is_ca(_self_signed(key, "ca", basic_constraints=x509.BasicConstraints(True, None)))
    assert not is_ca(
        _self_signed(key, "leaf", basic_constraints=x509.BasicConstraints(False, None))
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n\n",
        b"not a certificate",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    ],
    ids=repr,
)
def test_identity_of_pem_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ValueError):
        identity_of_pem(data)


def test_identity_of_pem_rejects_a_key_first_file_even_with_a_valid_cert() -> None:
    key = (VECTORS_DIR / "certs/generated_client-ed25519.key").read_bytes()
    cert = (VECTORS_DIR / "certs/generated_client-ed25519.cert").read_bytes()
    identity_of_pem(cert + key)  # a trailing key is fine
    with pytest.raises(ValueError, match="private key"):
        identity_of_pem(key + cert)


@pytest.mark.parametrize("der", [b"", b"\x30\x00", b"junk"], ids=repr)
def test_identity_of_der_rejects_garbage(der: bytes) -> None:
    with pytest.raises(ValueError):
        identity_of_der(der)
