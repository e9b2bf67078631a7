"""``Client``: the blocking KES client (used by the ``kes`` CLI and scripts)."""

from __future__ import annotations

import os
import ssl
from collections import deque
from collections.abc import Iterator
from types import TracebackType
from typing import Generic, Self, TypeVar

import httpx

from kes_client._base import (
    DEFAULT_TIMEOUT,
    Api,
    Call,
    StreamCall,
    as_timeout,
    error_from_response,
)
from kes_client._errors import map_httpx_errors
from kes_client._models import (
    AuditEvent,
    DataKey,
    ErrorEvent,
    IdentityInfo,
    KeyInfo,
    Policy,
    PolicyInfo,
    Status,
)
from kes_client._stream import NDJSONDecoder
from kes_client._tls import DEFAULT_SERVER, create_ssl_context, resolve_settings

__all__ = ["Client", "EventStream"]

T = TypeVar("T")
E = TypeVar("E")

StrPath = str | os.PathLike[str]


class EventStream(Generic[E]):
    """A live trace: iterate to receive events as the server emits them.

    The request is sent on ``with`` entry (or the first ``next()``), so a
    caller can subscribe first and then cause the events it wants to see.
    Iteration ends when the server closes the stream; network failures
    raise ``TransportError``. Reconnecting is deliberately left to the
    caller, who knows whether missed events matter. Always ``close()`` the
    stream (or use ``with``): it holds a connection open.
    """

    def __init__(self, http: httpx.Client, call: StreamCall[E], server: str) -> None:
        self._http = http
        self._call = call
        self._server = server
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._decoder = NDJSONDecoder()
        self._ready: deque[E] = deque()
        self._closed = False

    def open(self) -> Self:
        """Send the trace request and check the answer (idempotent)."""
        if self._response is not None or self._closed:
            return self
        with map_httpx_errors(self._server):
            response = self._http.send(self._call.request, stream=True)
            if not 200 <= response.status_code < 300:
                try:
                    response.read()
                finally:
                    response.close()
                raise error_from_response(response)
        self._response = response
        self._chunks = response.iter_bytes()
        return self

    def close(self) -> None:
        """Stop receiving and release the connection."""
        self._closed = True
        if self._response is not None:
            self._response.close()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> E:
        self.open()
        while not self._ready:
            if self._closed or self._chunks is None:
                raise StopIteration
            with map_httpx_errors(self._server):
                chunk = next(self._chunks, None)
            values = self._decoder.feed(chunk) if chunk is not None else self._decoder.flush()
            for value in values:
                event = self._call.event(value)
                if event is not None:
                    self._ready.append(event)
            if chunk is None:
                self.close()
        return self._ready.popleft()


class Client:
    """A blocking client for one KES server.

    Every method performs one API call and returns a model or ``None``;
    failures raise the server's error (``KeyNotFound``, ``NotAllowed``, ...,
    message kept verbatim) or a ``TransportError``. ``AsyncClient`` has the
    same methods as coroutines.

    ``cert``/``key`` identify the caller (KES has no other authentication);
    ``ca`` replaces the system trust store for the server certificate and
    ``insecure`` skips that check. Pass ``ssl_context`` to take full control
    or ``transport`` to test without a network.
    """

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        *,
        cert: StrPath | None = None,
        key: StrPath | None = None,
        ca: StrPath | None = None,
        insecure: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        http2: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._api = Api(server, timeout=as_timeout(timeout))
        if ssl_context is None and transport is None:
            ssl_context = create_ssl_context(cert=cert, key=key, ca=ca, insecure=insecure)
        self._http = httpx.Client(
            verify=ssl_context if ssl_context is not None else True,
            http2=http2,
            transport=transport,
            timeout=self._api.timeout,
        )

    @classmethod
    def from_env(
        cls,
        server: str | None = None,
        *,
        cert: StrPath | None = None,
        key: StrPath | None = None,
        ca: StrPath | None = None,
        insecure: bool = False,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
    ) -> Client:
        """Build a client like the ``kes`` CLI does: arguments first, then ``KES_*`` env vars.

        Raises ``CredentialsError`` when no certificate or key is configured.
        """
        settings = resolve_settings(server=server, cert=cert, key=key, ca=ca, insecure=insecure)
        return cls(
            settings.server,
            cert=settings.cert,
            key=settings.key,
            ca=settings.ca,
            insecure=settings.insecure,
            timeout=timeout,
        )

    @property
    def server(self) -> str:
        """The server URL requests go to (``https://host:port``)."""
        return self._api.server

    def _call(self, call: Call[T]) -> T:
        with map_httpx_errors(self._api.server):
            response = self._http.send(call.request)
        return call.parse(response)

    # -- lifetime ---------------------------------------------------------

    def close(self) -> None:
        """Close pooled connections; the client cannot be used afterwards."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- server -----------------------------------------------------------

    def version(self) -> str:
        """The server's version string (``/version`` needs no policy)."""
        return self._call(self._api.version())

    def status(self) -> Status:
        """Version, uptime and key-store state."""
        return self._call(self._api.status())

    def metrics(self) -> str:
        """The Prometheus exposition text, unparsed."""
        return self._call(self._api.metrics())

    # -- keys -------------------------------------------------------------

    def create_key(self, name: str) -> None:
        """Create a master key with random bytes; ``KeyExists`` if the name is taken."""
        self._call(self._api.create_key(name))

    def import_key(self, name: str, key: bytes) -> None:
        """Store 32 caller-supplied bytes as master key ``name``."""
        self._call(self._api.import_key(name, key))

    def delete_key(self, name: str) -> None:
        """Delete a master key (v0.17 servers also succeed when it does not exist)."""
        self._call(self._api.delete_key(name))

    def generate_key(self, name: str, context: bytes = b"") -> DataKey:
        """Draw a data key and return it in plaintext and sealed by master key ``name``."""
        return self._call(self._api.generate_key(name, context))

    def encrypt(self, name: str, plaintext: bytes, context: bytes = b"") -> bytes:
        """Seal a small plaintext with master key ``name``; ``context`` is bound as AAD."""
        return self._call(self._api.encrypt(name, plaintext, context))

    def decrypt(self, name: str, ciphertext: bytes, context: bytes = b"") -> bytes:
        """Open a ciphertext made by ``encrypt``/``generate_key`` with the same context."""
        return self._call(self._api.decrypt(name, ciphertext, context))

    def list_keys(self, pattern: str = "*") -> list[KeyInfo]:
        """Keys whose names match the glob ``pattern``."""
        return self._call(self._api.list_keys(pattern))

    # -- policies ---------------------------------------------------------

    def write_policy(self, name: str, policy: Policy) -> None:
        """Create or replace a policy; identities assigned to it stay assigned."""
        self._call(self._api.write_policy(name, policy))

    def read_policy(self, name: str) -> Policy:
        """The allow/deny patterns of policy ``name``; ``PolicyNotFound`` if unknown."""
        return self._call(self._api.read_policy(name))

    def list_policies(self, pattern: str = "*") -> list[PolicyInfo]:
        """Policies whose names match the glob ``pattern``."""
        return self._call(self._api.list_policies(pattern))

    def delete_policy(self, name: str) -> None:
        """Delete a policy, unassigning every identity that pointed to it."""
        self._call(self._api.delete_policy(name))

    # -- identities -------------------------------------------------------

    def assign_identity(self, policy: str, identity: str) -> None:
        """Bind ``identity`` to ``policy`` (same argument order as the URL and Go SDK)."""
        self._call(self._api.assign_identity(policy, identity))

    def list_identities(self, pattern: str = "*") -> list[IdentityInfo]:
        """Identities (with their policy) matching the glob ``pattern``; root is never listed."""
        return self._call(self._api.list_identities(pattern))

    def forget_identity(self, identity: str) -> None:
        """Remove ``identity``'s policy binding."""
        self._call(self._api.forget_identity(identity))

    def self_identity(self) -> IdentityInfo:
        """Who the server thinks the caller is, and what it may do."""
        return self._call(self._api.self_identity())

    # -- traces -----------------------------------------------------------

    def trace_audit(self) -> EventStream[AuditEvent]:
        """Subscribe to the audit log: one event per request the server answers."""
        return EventStream(self._http, self._api.trace_audit(), self._api.server)

    def trace_error(self) -> EventStream[ErrorEvent]:
        """Subscribe to the server's error log."""
        return EventStream(self._http, self._api.trace_error(), self._api.server)
