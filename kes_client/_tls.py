"""Client TLS settings: the SSL context and where its inputs come from.

KES authenticates clients by their certificate only, so a client is useless
without a certificate and key; this module finds them (explicit argument,
then ``KES_CLIENT_CERT``/``KES_CLIENT_KEY``, then the v0.4-v0.8 names
``KES_CLIENT_TLS_CERT_FILE``/``KES_CLIENT_TLS_KEY_FILE`` that old guides still
mention) and turns them into an ``ssl.SSLContext``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kes_client._errors import CredentialsError

__all__ = [
    "CERT_ENV_VARS",
    "DEFAULT_SERVER",
    "KEY_ENV_VARS",
    "SERVER_ENV_VAR",
    "ClientSettings",
    "create_ssl_context",
    "normalize_server",
    "resolve_settings",
]

#: Where a KES server listens when nothing else is said (upstream's default).
DEFAULT_SERVER = "https://127.0.0.1:7373"
SERVER_ENV_VAR = "KES_SERVER"
#: Current name first: the first one set wins.
CERT_ENV_VARS: tuple[str, ...] = ("KES_CLIENT_CERT", "KES_CLIENT_TLS_CERT_FILE")
KEY_ENV_VARS: tuple[str, ...] = ("KES_CLIENT_KEY", "KES_CLIENT_TLS_KEY_FILE")

StrPath = str | os.PathLike[str]


@dataclass(frozen=True)
class ClientSettings:
    """Resolved connection settings: everything needed to build a client."""

    server: str
    cert: Path
    key: Path
    ca: Path | None = None
    insecure: bool = False


def normalize_server(server: str) -> str:
    """Accept ``host:port`` as well as a URL, and drop a trailing slash.

    Operators paste ``127.0.0.1:7373`` from the server banner as often as the
    full URL; KES only speaks HTTPS, so the scheme is never in doubt.
    """
    server = server.strip()
    if not server:
        return DEFAULT_SERVER
    if "://" not in server:
        server = "https://" + server
    return server.rstrip("/")


def _first_env(names: Sequence[str], environ: Mapping[str, str]) -> str | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def resolve_settings(
    *,
    server: str | None = None,
    cert: StrPath | None = None,
    key: StrPath | None = None,
    ca: StrPath | None = None,
    insecure: bool = False,
    environ: Mapping[str, str] | None = None,
) -> ClientSettings:
    """Fill the gaps in explicit settings from the environment.

    Precedence per value: explicit argument, then the current env var, then
    the legacy env var. Raises ``CredentialsError`` with upstream's wording
    when no certificate or key can be found.
    """
    env = os.environ if environ is None else environ
    resolved_server = server or env.get(SERVER_ENV_VAR, "") or DEFAULT_SERVER
    cert_path = os.fspath(cert) if cert else _first_env(CERT_ENV_VARS, env)
    if not cert_path:
        raise CredentialsError(
            f"no TLS client certificate. Environment variable '{CERT_ENV_VARS[0]}' is not set"
        )
    key_path = os.fspath(key) if key else _first_env(KEY_ENV_VARS, env)
    if not key_path:
        raise CredentialsError(
            f"no TLS private key. Environment variable '{KEY_ENV_VARS[0]}' is not set"
        )
    return ClientSettings(
        server=normalize_server(resolved_server),
        cert=Path(cert_path),
        key=Path(key_path),
        ca=Path(ca) if ca else None,
        insecure=insecure,
    )


def create_ssl_context(
    *,
    cert: StrPath | None = None,
    key: StrPath | None = None,
    ca: StrPath | None = None,
    insecure: bool = False,
    password: str | None = None,
) -> ssl.SSLContext:
    """Build the client side of KES's mutual TLS.

    ``ca`` replaces the system trust store (a dev server's self-signed CA);
    ``insecure`` skips server verification altogether, as ``kes -k`` does.
    The client certificate is sent whether or not the server is verified,
    because the server identifies the caller by it.
    """
    if insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        if ca:
            _read_pem(ca, "CA file", b"-----BEGIN CERTIFICATE-----", "certificate")
        try:
            ctx = ssl.create_default_context(cafile=os.fspath(ca) if ca else None)
        except (OSError, ssl.SSLError) as exc:
            raise CredentialsError(f"cannot load CA file '{os.fspath(ca or '')}': {exc}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None or key is not None:
        if cert is None or key is None:
            raise CredentialsError("a client certificate needs both a certificate and a key file")
        _read_pem(cert, "client certificate", b"-----BEGIN CERTIFICATE-----", "certificate")
        _read_pem(key, "private key", b"PRIVATE KEY-----", "private key")
        try:
            ctx.load_cert_chain(os.fspath(cert), os.fspath(key), password=password)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            if reason == "KEY_VALUES_MISMATCH":
                raise CredentialsError(
                    f"private key '{os.fspath(key)}' does not belong to client certificate "
                    f"'{os.fspath(cert)}'"
                ) from exc
            raise CredentialsError(
                f"cannot load client certificate '{os.fspath(cert)}' with private key "
                f"'{os.fspath(key)}': {reason}"
            ) from exc
    return ctx


def _read_pem(path: StrPath, what: str, marker: bytes, kind: str) -> None:
    """Fail early, naming the file, when ``path`` cannot be read or holds no PEM ``kind``.

    OpenSSL's own errors (``PEM lib``, ``NO_CERTIFICATE_OR_CRL_FOUND``) name
    neither the file nor the problem; an operator with three TLS files needs both.
    """
    name = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise CredentialsError(f"cannot read {what} '{name}': no such file") from None
    except IsADirectoryError:
        raise CredentialsError(f"cannot read {what} '{name}': it is a directory") from None
    except OSError as exc:
        raise CredentialsError(f"cannot read {what} '{name}': {exc.strerror or exc}") from None
    if marker not in data:
        raise CredentialsError(f"{what} '{name}' holds no PEM {kind}")
