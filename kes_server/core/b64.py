"""Base64 exactly as KES reads it: Go's ``encoding/json`` into a ``[]byte``.

Every byte field of the KES API (``bytes``, ``plaintext``, ``ciphertext``,
``context``) and of the v0.17 JSON ciphertext (``iv``, ``nonce``, ``bytes``)
is decoded by Go with ``base64.StdEncoding``, so an unmodified KES client may
send anything that decoder takes, and expects refused what it refuses:

* the standard alphabet with ``=`` padding, which is required;
* CR and LF are skipped wherever they are (line-wrapped base64, a trailing
  newline, even between the two ``=``); no other whitespace is;
* nothing but CR/LF may follow the padding;
* the unused low bits of the last character may be set (Go's decoder is not
  the ``Strict`` one).

Python's ``b64decode(validate=True)`` differs on both sides (it refuses
newlines, and takes ``QUFB=``), hence this module.
"""

from __future__ import annotations

import binascii

__all__ = ["decode_std"]

_LINE_BREAKS = str.maketrans("", "", "\r\n")


def decode_std(text: str) -> bytes:
    """Decode ``text`` as Go's ``base64.StdEncoding`` does; ``ValueError`` if Go would fail."""
    if "\n" in text or "\r" in text:
        text = text.translate(_LINE_BREAKS)
    # Go's shape: whole quanta, the last one padded with at most two "=".
    # binascii's strict mode then refuses foreign and non-ASCII characters and
    # "=" anywhere but at the end, and like Go ignores the unused bits; on its
    # own it would also take a fifth "=" or more padding than a quantum has.
    if len(text) % 4 or len(text) - len(text.rstrip("=")) > 2:
        raise ValueError("invalid base64: bad length or padding")
    return binascii.a2b_base64(text, strict_mode=True)
