"""An independent RFC 1423 writer: legacy "Proc-Type: 4,ENCRYPTED" PEM keys.

Neither ``cryptography`` nor OpenSSL 3 writes every cipher Go's
``x509.DecryptPEMBlock`` reads (single DES above all), so the tests of
``core.pem`` and of the server's TLS set-up build such keys here.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["LEGACY_CIPHERS", "legacy_encrypt"]

#: cipher name -> (key size, block size), in bytes.
LEGACY_CIPHERS = {
    "DES-CBC": (8, 8),
    "DES-EDE3-CBC": (24, 8),
    "AES-128-CBC": (16, 16),
    "AES-192-CBC": (24, 16),
    "AES-256-CBC": (32, 16),
}


def legacy_encrypt(label: str, der: bytes, cipher: str, password: bytes) -> bytes:
    """Independent RFC 1423 writer: EVP_BytesToKey(MD5) + CBC + PKCS#7."""
    key_size, block = LEGACY_CIPHERS[cipher]
    iv = os.urandom(block)
    material, previous = b"", b""
    while len(material) < key_size:
        previous = hashlib.md5(previous + password + iv[:8]).digest()
        material += previous
    key = material[:key_size]
    algorithm = (
        algorithms.AES(key)
        if cipher.startswith("AES")
        else TripleDES(key * 3 if cipher == "DES-CBC" else key)
    )
    padder = padding.PKCS7(block * 8).padder()
    encryptor = Cipher(algorithm, modes.CBC(iv)).encryptor()
    body = encryptor.update(padder.update(der) + padder.finalize()) + encryptor.finalize()
    b64 = base64.encodebytes(body).decode().replace("\n", "")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    header = f"Proc-Type: 4,ENCRYPTED\nDEK-Info: {cipher},{iv.hex().upper()}\n\n"
    return (
        f"-----BEGIN {label}-----\n{header}" + "\n".join(lines) + f"\n-----END {label}-----\n"
    ).encode()
