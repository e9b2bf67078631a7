"""Client-side errors: everything that can go wrong *before* a server answers.

The server's own answers (``KeyNotFound``, ``NotAllowed``, ...) come from
``kes_server.core.errors`` so that server, SDK, CLI and TUI share one tree.
This module adds the branch a server can never send, because it describes
the path to the server rather than the server's verdict::

    KESError
    ├── APIError ...                (kes_server.core.errors: the server said no)
    ├── CredentialsError            no usable client certificate / key / CA
    └── TransportError              the request did not complete
        ├── ConnectError            nobody listening, DNS, refused, connect timeout
        │   └── TLSError            handshake failed: untrusted server, cert rejected
        ├── ProtocolError           the server broke HTTP or sent undecodable data
        └── TransportTimeout        a read or write timed out mid-request

``map_httpx_errors()`` is the one seam where httpx exceptions become these
classes; nothing above it (clients, CLI, TUI) ever needs to import httpx to
handle a failure.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import httpx

from kes_server.core.errors import KESError

__all__ = [
    "ConnectError",
    "CredentialsError",
    "ProtocolError",
    "TLSError",
    "TransportError",
    "TransportTimeout",
    "map_httpx_errors",
    "tls_error",
]

X = TypeVar("X", bound=BaseException)


class CredentialsError(KESError):
    """The client has no usable certificate, private key or CA file.

    Raised while configuring a client, so a missing ``KES_CLIENT_CERT`` is
    reported before any connection is attempted.
    """


class TransportError(KESError):
    """The request did not complete; the server's opinion is unknown.

    ``reason`` says what went wrong, ``hint`` what the operator can do about it
    (in the CLI's and console's terms: ``--ca FILE``, ``-k``, ``--server``);
    ``str()`` joins both so a one-line ``Error: ...`` carries the fix.
    ``retryable`` is false when repeating the request cannot help (the server
    certificate is not trusted, the server refuses our certificate, the port
    does not speak TLS): a console stops reconnecting instead of hammering.
    """

    def __init__(self, reason: str, *, hint: str = "", retryable: bool = True) -> None:
        super().__init__(f"{reason}: {hint}" if hint else reason)
        self.reason = reason
        self.hint = hint
        self.retryable = retryable


class ConnectError(TransportError):
    """No connection could be established (refused, unresolvable, timed out)."""


class TLSError(ConnectError):
    """The TLS handshake failed.

    Typical causes: the server certificate is not trusted (use a CA file or
    ``insecure``), or the server rejected the client certificate. Neither is
    fixed by retrying, so TLS errors are not ``retryable`` unless the
    connection merely broke during the handshake.
    """


class ProtocolError(TransportError):
    """The server answered with something that is not valid KES/HTTP."""


class TransportTimeout(TransportError):
    """Reading or writing timed out after the connection was established."""


#: The one fix for every server-verification failure, worded as the CLI and console flags.
TRUST_HINT = "pass --ca FILE (the CA that signed the server certificate) or -k"
CHECK_SERVER_HINT = "check --server / KES_SERVER"

#: TLS alerts a server sends when it does not accept the client certificate.
_CLIENT_REJECTED = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the server requires a client certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the server rejected the client certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "the server does not trust the client certificate's CA",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the server rejected the client certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the server says the client certificate expired",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "the server does not accept the client certificate",
    "TLSV1_ALERT_ACCESS_DENIED": "the server denied access to the client certificate",
    "TLSV1_ALERT_DECRYPT_ERROR": "the server could not verify the client's key",
}
#: Handshake failures that mean "this port does not speak TLS".
_NOT_TLS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"}


def _in_chain(exc: BaseException, kind: type[X]) -> X | None:
    """Find an instance of ``kind`` in the exception chain.

    httpx wraps httpcore which wraps the socket layer; the ssl or OS error that
    explains a failure is somewhere in ``__cause__``/``__context__``.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        current = current.__cause__ or current.__context__
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def tls_error(exc: ssl.SSLError, where: str) -> TLSError:
    """Name the cause of a failed handshake and its fix, as far as OpenSSL tells it."""
    reason = getattr(exc, "reason", None) or _describe(exc)
    failed = f"TLS handshake with{where} failed"
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or reason
        if "mismatch" in detail.lower():
            return TLSError(
                f"{failed}: server certificate is not valid for this address ({detail})",
                hint="connect by a name or IP the certificate lists, or -k",
                retryable=False,
            )
        return TLSError(
            f"{failed}: server certificate not trusted ({detail})",
            hint=TRUST_HINT,
            retryable=False,
        )
    if reason in _CLIENT_REJECTED:
        return TLSError(
            f"{failed}: {_CLIENT_REJECTED[reason]} ({reason})",
            hint="use a certificate and key the server accepts (--cert/--key)",
            retryable=False,
        )
    if reason in _NOT_TLS:
        return TLSError(
            f"{failed}: this port does not speak TLS ({reason})",
            hint=f"is it the kes-server port? {CHECK_SERVER_HINT}",
            retryable=False,
        )
    return TLSError(f"{failed}: {reason}")


def _connect_error(exc: httpx.ConnectError, where: str) -> ConnectError:
    if _in_chain(exc, ConnectionRefusedError) is not None:
        return ConnectError(
            f"cannot connect to{where}: connection refused",
            hint=f"is kes-server running there? {CHECK_SERVER_HINT}",
        )
    unresolved = _in_chain(exc, socket.gaierror)
    if unresolved is not None:
        return ConnectError(
            f"cannot connect to{where}: unknown host ({unresolved.strerror})",
            hint=CHECK_SERVER_HINT,
        )
    return ConnectError(f"cannot connect to{where}: {_describe(exc)}")


@contextmanager
def map_httpx_errors(url: str | httpx.URL = "") -> Iterator[None]:
    """Translate httpx exceptions raised inside the block into ``TransportError``\\ s.

    ``url`` only makes messages self-explaining (``cannot connect to ...``).
    The original exception stays available as ``__cause__``.
    """
    where = f" {url}" if str(url) else ""
    try:
        yield
    except httpx.TimeoutException as exc:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            raise ConnectError(f"cannot connect to{where}: timed out") from exc
        raise TransportTimeout(f"request to{where} timed out") from exc
    except (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.CloseError) as exc:
        tls = _in_chain(exc, ssl.SSLError)
        if tls is not None:
            raise tls_error(tls, where) from exc
        if isinstance(exc, httpx.ConnectError):
            raise _connect_error(exc, where) from exc
        if _in_chain(exc, ConnectionResetError) is not None:
            raise TransportError(
                f"connection to{where} reset by the server",
                hint="if it persists, the server may not accept the client certificate",
            ) from exc
        raise TransportError(f"connection to{where} failed: {_describe(exc)}") from exc
    except httpx.RemoteProtocolError as exc:
        if "peer closed connection" in str(exc) or "Server disconnected" in str(exc):
            # The server went away mid-response (restart, shutdown): a
            # connection problem worth a retry, not a protocol violation.
            raise TransportError(f"connection to{where} closed by the server") from exc
        raise ProtocolError(f"invalid response from{where}: {_describe(exc)}") from exc
    except (httpx.LocalProtocolError, httpx.DecodingError) as exc:
        raise ProtocolError(f"invalid response from{where}: {_describe(exc)}") from exc
    except httpx.UnsupportedProtocol as exc:
        raise ConnectError(
            f"unsupported server URL{where}: {_describe(exc)}",
            hint=CHECK_SERVER_HINT,
            retryable=False,
        ) from exc
    except httpx.TransportError as exc:
        raise TransportError(f"request to{where} failed: {_describe(exc)}") from exc
    except ssl.SSLError as exc:  # raised directly by some ssl paths (e.g. during close)
        raise tls_error(exc, where) from exc
