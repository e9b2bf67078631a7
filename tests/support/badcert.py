"""A client certificate that TLS accepts but cryptography's parser rejects.

The hostile case of issue 14: a certificate whose extension list holds the
same extension twice. RFC 5280 forbids it and cryptography raises
``DuplicateExtension`` when the extensions are read, yet OpenSSL completes a
handshake with it: it only checks duplicates of extensions it knows, so a
private-OID extension listed twice passes (``--auth off`` accepts any
self-signed certificate). cryptography cannot build such a certificate, so we
build a valid one and re-encode its DER by hand: duplicate the extension,
then sign the new TBSCertificate with the same key, so nothing but the
duplicate is wrong.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kes_server.core.identity import identity_of_der
from tests.support.server import ClientIdentity

__all__ = ["duplicated_extension_identity"]

#: A private OID (unknown to OpenSSL, so it does not look for duplicates).
PRIVATE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")
_EXTENSIONS_TAG = 0xA3  # [3] EXPLICIT Extensions in a TBSCertificate
_BIT_STRING = 0x03


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _elements(der: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) pairs of consecutive DER elements (one-byte tags)."""
    out: list[tuple[int, bytes]] = []
    at = 0
    while at < len(der):
        tag, first, pos = der[at], der[at + 1], at + 2
        if first < 0x80:
            size = first
        else:
            count = first & 0x7F
            size = int.from_bytes(der[pos : pos + count], "big")
            pos += count
        out.append((tag, der[pos : pos + size]))
        at = pos + size
    return out


def _encode(elements: list[tuple[int, bytes]]) -> bytes:
    return b"".join(_tlv(tag, content) for tag, content in elements)


def duplicated_extension_identity(directory: Path, name: str = "malformed") -> ClientIdentity:
    """Write ``<name>.cert``/``<name>.key`` whose certificate repeats one extension."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    valid = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.UnrecognizedExtension(PRIVATE_OID, b"\x05\x00"), critical=False)
        .sign(key, hashes.SHA256())
    )
    [(_, certificate)] = _elements(valid.public_bytes(serialization.Encoding.DER))
    (_, tbs), algorithm, _signature = _elements(certificate)
    fields = _elements(tbs)
    tag, wrapped = fields[-1]
    assert tag == _EXTENSIONS_TAG, "the builder put the extensions last"
    [(sequence, extensions)] = _elements(wrapped)
    twice = _elements(extensions) * 2
    fields[-1] = (tag, _tlv(sequence, _encode(twice)))
    new_tbs = _tlv(0x30, _encode(fields))
    signature = key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    der = _tlv(0x30, new_tbs + _encode([algorithm, (_BIT_STRING, b"\x00" + signature)]))
    cert, key_file = directory / f"{name}.cert", directory / f"{name}.key"
    cert.write_bytes(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ClientIdentity(cert, key_file, identity_of_der(der))
