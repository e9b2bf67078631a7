"""KES identities: the SHA-256 of a certificate's SubjectPublicKeyInfo.

KES names a client by its public key, not by its certificate (spec §1.2):
the identity is the lowercase hex SHA-256 of the DER-encoded
SubjectPublicKeyInfo, so a re-issued certificate for the same key keeps its
policy. Go hashes the *raw* SPKI bytes found in the certificate
(``RawSubjectPublicKeyInfo``); re-encoding the parsed key would give a
different hash for legal but unusual encodings (e.g. a compressed EC point),
so we slice the SPKI out of the TBSCertificate DER ourselves.
"""

from __future__ import annotations

import hashlib

from cryptography import x509

from kes_server.core.pem import load_certificate_chain

__all__ = ["identity_of", "identity_of_der", "identity_of_pem", "is_ca", "spki_der"]

_SEQUENCE = 0x30
_VERSION_TAG = 0xA0  # [0] EXPLICIT Version, optional


def _read_tlv(der: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``offset``."""
    if offset + 2 > len(der):
        raise ValueError("truncated DER")
    tag, first = der[offset], der[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(der):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(der):
        raise ValueError("truncated DER")
    return tag, pos, end


def spki_der(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo exactly as encoded in it.

    TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber,
    signature, issuer, validity, subject, subjectPublicKeyInfo, ... }
    """
    tbs = cert.tbs_certificate_bytes
    tag, pos, _ = _read_tlv(tbs, 0)
    if tag != _SEQUENCE:
        raise ValueError("malformed TBSCertificate")
    tag, _, end = _read_tlv(tbs, pos)
    if tag == _VERSION_TAG:
        pos = end
    for _field in range(5):  # serialNumber, signature, issuer, validity, subject
        _, _, pos = _read_tlv(tbs, pos)
    tag, _, end = _read_tlv(tbs, pos)
    if tag != _SEQUENCE:
        raise ValueError("malformed SubjectPublicKeyInfo")
    return tbs[pos:end]


def identity_of(cert: x509.Certificate) -> str:
    """The KES identity of ``cert`` (64 lowercase hex characters)."""
    return hashlib.sha256(spki_der(cert)).hexdigest()


def identity_of_der(der: bytes) -> str:
    """Identity of a DER certificate (what a TLS stack hands over); ``ValueError`` if invalid."""
    return identity_of(x509.load_der_x509_certificate(der))


def identity_of_pem(data: bytes) -> str:
    """Identity of the first certificate in a PEM file (``kes identity of``).

    Blank lines and text around the block are fine; a file that starts with
    a private key, has no certificate or a malformed block raises
    ``ValueError`` (see :func:`kes_server.core.pem.load_certificate_chain`).
    """
    return identity_of(load_certificate_chain(data)[0])


def is_ca(cert: x509.Certificate) -> bool:
    """Whether ``cert`` is a CA certificate (BasicConstraints CA=true).

    KES drops CA certificates from the peer chain before identifying a
    client, so a client that sends its CA along is still identified by its
    leaf. A certificate without BasicConstraints is not a CA.
    """
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca
