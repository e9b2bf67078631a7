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

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

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
]


class CredentialsError(KESError):
    """The client has no usable certificate, private key or CA file.

    Raised while configuring a client, so a missing ``KES_CLIENT_CERT`` is
    reported before any connection is attempted.
    """


class TransportError(KESError):
    """The request did not complete; the server's opinion is unknown.

    Unlike an ``APIError`` it is worth retrying: reconnecting a trace stream
    after a ``TransportError`` is the caller's call.
    """


class ConnectError(TransportError):
    """No connection could be established (refused, unresolvable, timed out)."""


class TLSError(ConnectError):
    """The TLS handshake failed.

    Typical causes: the server certificate is not trusted (use a CA file or
    ``insecure``), or the server rejected the client certificate.
    """


class ProtocolError(TransportError):
    """The server answered with something that is not valid KES/HTTP."""


class TransportTimeout(TransportError):
    """Reading or writing timed out after the connection was established."""


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """Find an ``ssl.SSLError`` in the exception chain.

    httpx wraps httpcore which wraps the socket layer; the ssl error that
    explains a failure is somewhere in ``__cause__``/``__context__``.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        current = current.__cause__ or current.__context__
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


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
        tls = _ssl_cause(exc)
        if tls is not None:
            reason = getattr(tls, "reason", None) or _describe(tls)
            raise TLSError(f"TLS handshake with{where} failed: {reason}") from exc
        if isinstance(exc, httpx.ConnectError):
            raise ConnectError(f"cannot connect to{where}: {_describe(exc)}") from exc
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
        raise ConnectError(f"unsupported server URL{where}: {_describe(exc)}") from exc
    except httpx.TransportError as exc:
        raise TransportError(f"request to{where} failed: {_describe(exc)}") from exc
    except ssl.SSLError as exc:  # raised directly by some ssl paths (e.g. during close)
        reason = getattr(exc, "reason", None) or _describe(exc)
        raise TLSError(f"TLS with{where} failed: {reason}") from exc
