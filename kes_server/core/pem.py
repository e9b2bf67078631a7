"""Reading PEM certificates and private keys the way KES operators expect.

KES loads its TLS certificate and key from PEM files that people produce with
every tool imaginable, so the loader is lenient about layout (blank lines,
CRLF, a BOM, text around the blocks, a key after the certificate) but strict
about content: a block with no matching END line, bad base64, or a file that
*starts* with a private key (the usual sign of swapped ``cert``/``key``
arguments) is an error rather than something silently skipped
(UPSTREAM_TESTS G3).

Private keys (G1/G2) may be plaintext (PKCS#8, PKCS#1 RSA, SEC1 EC),
PKCS#8-encrypted, or legacy OpenSSL "Proc-Type: 4,ENCRYPTED" PEM. Go's
``x509.DecryptPEMBlock`` (which KES uses) reads the legacy kind with DES,
3DES and AES-128/192/256-CBC; ``cryptography`` reads only some of those, so
we decrypt legacy blocks ourselves (OpenSSL's ``EVP_BytesToKey`` with MD5,
then CBC) and hand the plaintext DER to ``cryptography``. Note that this
legacy encryption is unauthenticated; it is supported for compatibility, not
recommended.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, algorithms, modes

__all__ = [
    "PemBlock",
    "PrivateKey",
    "is_private_key_label",
    "load_certificate_chain",
    "load_private_key",
    "parse_pem",
]

#: The private key types a TLS certificate can be used with.
PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)

_BEGIN: Final = re.compile(r"-----BEGIN ([^-]+(?:-[^-]+)*)-----")


@dataclass(frozen=True)
class PemBlock:
    """One decoded PEM block: its label, RFC 1421 headers and DER bytes."""

    label: str
    headers: dict[str, str]
    der: bytes


def is_private_key_label(label: str) -> bool:
    """Whether a PEM label names a private key (``PRIVATE KEY``, ``EC PRIVATE KEY``, ...)."""
    return label == "PRIVATE KEY" or label.endswith(" PRIVATE KEY")


def parse_pem(data: bytes) -> list[PemBlock]:
    """All PEM blocks in ``data``, in order; text outside blocks is ignored.

    Raises ``ValueError`` for a BEGIN line without its END line, malformed
    headers or invalid base64, because a half-readable file is almost always
    a copy-and-paste accident the operator should hear about.
    """
    data = data.removeprefix(b"\xef\xbb\xbf")  # UTF-8 BOM, as Windows editors write it
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        # Only the blocks must be ASCII; tolerate e.g. UTF-8 comments around them.
        text = data.decode("latin-1")
    lines = [line.strip() for line in text.splitlines()]
    blocks: list[PemBlock] = []
    i = 0
    while i < len(lines):
        begin = _BEGIN.fullmatch(lines[i])
        if begin is None:
            i += 1
            continue
        label = begin.group(1)
        end_line = f"-----END {label}-----"
        try:
            end = lines.index(end_line, i + 1)
        except ValueError:
            raise ValueError(
                f"malformed PEM data: '-----BEGIN {label}-----' has no matching END line"
            ) from None
        headers, body = _split_headers(label, lines[i + 1 : end])
        try:
            der = base64.b64decode("".join(body), validate=True)
        except binascii.Error:
            raise ValueError(f"malformed PEM data: invalid base64 in {label} block") from None
        blocks.append(PemBlock(label, headers, der))
        i = end + 1
    return blocks


def _split_headers(label: str, body: list[str]) -> tuple[dict[str, str], list[str]]:
    """Separate RFC 1421 ``Key: value`` headers (ended by a blank line) from base64."""
    if not body or ":" not in body[0]:
        return {}, body
    headers: dict[str, str] = {}
    for index, line in enumerate(body):
        if not line:
            return headers, body[index + 1 :]
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed PEM data: bad header line in {label} block")
        headers[key.strip()] = value.strip()
    raise ValueError(f"malformed PEM data: {label} block has headers but no body")


def load_certificate_chain(data: bytes) -> list[x509.Certificate]:
    """Every ``CERTIFICATE`` block of a PEM file, leaf first as written.

    Other well-formed blocks after the first certificate (e.g. the key in a
    combined cert+key file) are skipped. Raises ``ValueError`` if there is no
    PEM data, the file starts with a private key, no certificate is found, a
    block is malformed, or a certificate cannot be parsed.
    """
    blocks = parse_pem(data)
    if not blocks:
        raise ValueError("no PEM data found: expected a '-----BEGIN CERTIFICATE-----' block")
    if is_private_key_label(blocks[0].label):
        raise ValueError(
            f"the PEM data starts with a private key ({blocks[0].label}), not a "
            "certificate: are the certificate and private key files swapped?"
        )
    chain: list[x509.Certificate] = []
    for block in blocks:
        if block.label != "CERTIFICATE":
            continue
        try:
            chain.append(x509.load_der_x509_certificate(block.der))
        except ValueError as exc:
            raise ValueError(f"invalid certificate #{len(chain) + 1}: {exc}") from None
    if not chain:
        raise ValueError("no '-----BEGIN CERTIFICATE-----' block found in the PEM data")
    return chain


def load_private_key(data: bytes, password: str | None) -> PrivateKey:
    """The first private key of a PEM file, decrypting it with ``password`` if needed.

    A plaintext key loads whatever ``password`` is (KES ignores it then). An
    encrypted key (legacy OpenSSL PEM or PKCS#8) needs the right password;
    ``None`` and ``""`` both mean "no password". Raises ``ValueError`` with a
    message fit for a start-up error otherwise.
    """
    secret = password.encode("utf-8") if password else None
    block = next((b for b in parse_pem(data) if is_private_key_label(b.label)), None)
    if block is None:
        raise ValueError("no PEM-encoded private key found")
    if block.headers.get("Proc-Type", "").replace(" ", "") == "4,ENCRYPTED":
        if secret is None:
            raise ValueError("private key is encrypted: password required")
        der = _decrypt_legacy(block, secret)
        key = _load_der(der, None, wrong_password=True)
    elif block.label == "ENCRYPTED PRIVATE KEY":
        if secret is None:
            raise ValueError("private key is encrypted: password required")
        key = _load_der(block.der, secret, wrong_password=True)
    else:
        key = _load_der(block.der, None, wrong_password=False)
    if not isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        raise ValueError(f"unsupported private key type {type(key).__name__}")
    return key


def _load_der(der: bytes, secret: bytes | None, *, wrong_password: bool) -> PrivateKeyTypes:
    try:
        return serialization.load_der_private_key(der, secret)
    except (ValueError, TypeError) as exc:
        if wrong_password:
            raise ValueError("failed to decrypt private key: incorrect password") from None
        raise ValueError(f"invalid private key: {exc}") from None


# DEK-Info cipher name -> key size in bytes (the ones Go's DecryptPEMBlock knows).
_LEGACY_CIPHERS: Final = {
    "DES-CBC": 8,
    "DES-EDE3-CBC": 24,
    "AES-128-CBC": 16,
    "AES-192-CBC": 24,
    "AES-256-CBC": 32,
}


def _legacy_algorithm(name: str, key: bytes) -> BlockCipherAlgorithm:
    if name.startswith("AES-"):
        return algorithms.AES(key)
    # Single DES is 3DES with one key used three times (K1 = K2 = K3).
    return TripleDES(key * 3 if name == "DES-CBC" else key)


def _decrypt_legacy(block: PemBlock, secret: bytes) -> bytes:
    """Decrypt an RFC 1423 / OpenSSL "traditional" encrypted PEM body."""
    cipher_name, _, iv_hex = block.headers.get("DEK-Info", "").partition(",")
    cipher_name = cipher_name.strip().upper()
    key_size = _LEGACY_CIPHERS.get(cipher_name)
    if key_size is None:
        raise ValueError(f"unsupported private key encryption {cipher_name or '(none)'!r}")
    try:
        iv = bytes.fromhex(iv_hex.strip())
    except ValueError:
        raise ValueError("malformed DEK-Info header: bad IV") from None
    block_bytes = 16 if cipher_name.startswith("AES-") else 8
    if len(iv) != block_bytes:
        raise ValueError("malformed DEK-Info header: wrong IV length")
    if not block.der or len(block.der) % block_bytes:
        raise ValueError("malformed encrypted private key: bad ciphertext length")
    key = _evp_bytes_to_key(secret, iv[:8], key_size)
    decryptor = Cipher(_legacy_algorithm(cipher_name, key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(block.der) + decryptor.finalize()
    unpadder = padding.PKCS7(block_bytes * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise ValueError("failed to decrypt private key: incorrect password") from None


def _evp_bytes_to_key(secret: bytes, salt: bytes, size: int) -> bytes:
    """OpenSSL ``EVP_BytesToKey(MD5, count=1)``: D_i = MD5(D_{i-1} || password || salt)."""
    out, digest = b"", b""
    while len(out) < size:
        digest = hashlib.md5(digest + secret + salt, usedforsecurity=False).digest()
        out += digest
    return out[:size]
