"""A new client (or server) identity on disk: a private key and a self-signed certificate.

Shared by ``kes identity new`` and the console's "create identity", so both
write keys the same careful way: mode 0600, never over an existing file
unless asked to. A public module of its own, not re-exported by
``kes_client``: it needs ``cryptography``, which the SDK's other calls do not.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from kes_server.core.certs import new_identity
from kes_server.core.identity import identity_of_pem

__all__ = ["write_identity"]


def _write_new(path: Path, data: bytes, *, mode: int, force: bool) -> None:
    """Write a file that must not silently replace an existing one (keys are precious)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    if force:
        os.chmod(path, mode)


def write_identity(
    key_path: Path,
    cert_path: Path,
    subject: str,
    *,
    days: int = 30,
    server: bool = False,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    force: bool = False,
) -> str:
    """Create the key (0600) and certificate (0644); returns the identity.

    Raises ``FileExistsError`` (naming the file) when either exists and
    ``force`` is false, before anything is written, and ``ValueError`` for
    a bad IP address.
    """
    if not force:
        for path in (key_path, cert_path):
            if path.exists():
                raise FileExistsError(f"'{path}' already exists")
    key_pem, cert_pem = new_identity(subject, server=server, dns=dns, ips=ips, days=days)
    _write_new(key_path, key_pem, mode=0o600, force=force)
    _write_new(cert_path, cert_pem, mode=0o644, force=force)
    return identity_of_pem(cert_pem)
