"""``AsyncClient``: the asyncio twin of ``Client`` (used by the TUI).

Method for method the same surface as ``Client``, as coroutines; requests
and parsing come from ``_base.Api`` so the two cannot drift apart.
"""

from __future__ import annotations

import os
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
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

__all__ = ["AsyncClient", "AsyncEventStream"]

T = TypeVar("T")
E = TypeVar("E")

StrPath = str | os.PathLike[str]
#: Called with the URL path of every request just before it is sent.
RequestHook = Callable[[str], None]


class AsyncEventStream(Generic[E]):
    """A live trace for ``async for``; see ``EventStream`` for the semantics.

    The request is sent on ``async with`` entry (or the first ``__anext__``).
    Prefer ``async with``: leaving an ``async for`` early does not close the
    connection by itself, ``aclose()`` does.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        call: StreamCall[E],
        server: str,
        on_request: RequestHook | None = None,
    ) -> None:
        self._http = http
        self._call = call
        self._server = server
        self._on_request = on_request
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._decoder = NDJSONDecoder()
        self._ready: deque[E] = deque()
        self._closed = False

    async def open(self) -> Self:
        """Send the trace request and check the answer (idempotent)."""
        if self._response is not None or self._closed:
            return self
        if self._on_request is not None:
            self._on_request(self._call.request.url.path)
        with map_httpx_errors(self._server):
            response = await self._http.send(self._call.request, stream=True)
            if not 200 <= response.status_code < 300:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                raise error_from_response(response)
        self._response = response
        self._chunks = response.aiter_bytes()
        return self

    async def aclose(self) -> None:
        """Stop receiving and release the connection."""
        self._closed = True
        if self._response is not None:
            await self._response.aclose()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> E:
        await self.open()
        while not self._ready:
            if self._closed or self._chunks is None:
                raise StopAsyncIteration
            with map_httpx_errors(self._server):
                chunk = await anext(self._chunks, None)
            values = self._decoder.feed(chunk) if chunk is not None else self._decoder.flush()
            for value in values:
                event = self._call.event(value)
                if event is not None:
                    self._ready.append(event)
            if chunk is None:
                await self.aclose()
        return self._ready.popleft()


class AsyncClient:
    """An asyncio client for one KES server; see ``Client`` for the arguments."""

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
        transport: httpx.AsyncBaseTransport | None = None,
        on_request: RequestHook | None = None,
    ) -> None:
        """``on_request`` sees the path of every request before it is sent: the
        console uses it to recognise its own requests on the audit trace."""
        self._api = Api(server, timeout=as_timeout(timeout))
        self.on_request = on_request
        if ssl_context is None and transport is None:
            ssl_context = create_ssl_context(cert=cert, key=key, ca=ca, insecure=insecure)
        self._http = httpx.AsyncClient(
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
    ) -> AsyncClient:
        """Build a client from arguments, then ``KES_*`` env vars (see ``Client.from_env``)."""
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

    async def _call(self, call: Call[T]) -> T:
        if self.on_request is not None:
            self.on_request(call.request.url.path)
        with map_httpx_errors(self._api.server):
            response = await self._http.send(call.request)
        return call.parse(response)

    # -- lifetime ---------------------------------------------------------

    async def aclose(self) -> None:
        """Close pooled connections; the client cannot be used afterwards."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- server -----------------------------------------------------------

    async def version(self) -> str:
        """The server's version string (``/version`` needs no policy)."""
        return await self._call(self._api.version())

    async def status(self) -> Status:
        """Version, uptime and key-store state."""
        return await self._call(self._api.status())

    async def metrics(self) -> str:
        """The Prometheus exposition text, unparsed."""
        return await self._call(self._api.metrics())

    # -- keys -------------------------------------------------------------

    async def create_key(self, name: str) -> None:
        """Create a master key with random bytes; ``KeyExists`` if the name is taken."""
        await self._call(self._api.create_key(name))

    async def import_key(self, name: str, key: bytes) -> None:
        """Store 32 caller-supplied bytes as master key ``name``."""
        await self._call(self._api.import_key(name, key))

    async def delete_key(self, name: str) -> None:
        """Delete a master key (v0.17 servers also succeed when it does not exist)."""
        await self._call(self._api.delete_key(name))

    async def generate_key(self, name: str, context: bytes = b"") -> DataKey:
        """Draw a data key and return it in plaintext and sealed by master key ``name``."""
        return await self._call(self._api.generate_key(name, context))

    async def encrypt(self, name: str, plaintext: bytes, context: bytes = b"") -> bytes:
        """Seal a small plaintext with master key ``name``; ``context`` is bound as AAD."""
        return await self._call(self._api.encrypt(name, plaintext, context))

    async def decrypt(self, name: str, ciphertext: bytes, context: bytes = b"") -> bytes:
        """Open a ciphertext made by ``encrypt``/``generate_key`` with the same context."""
        return await self._call(self._api.decrypt(name, ciphertext, context))

    async def list_keys(self, pattern: str = "*") -> list[KeyInfo]:
        """Keys whose names match the glob ``pattern``."""
        return await self._call(self._api.list_keys(pattern))

    # -- policies ---------------------------------------------------------

    async def write_policy(self, name: str, policy: Policy) -> None:
        """Create or replace a policy; identities assigned to it stay assigned."""
        await self._call(self._api.write_policy(name, policy))

    async def read_policy(self, name: str) -> Policy:
        """The allow/deny patterns of policy ``name``; ``PolicyNotFound`` if unknown."""
        return await self._call(self._api.read_policy(name))

    async def list_policies(self, pattern: str = "*") -> list[PolicyInfo]:
        """Policies whose names match the glob ``pattern``."""
        return await self._call(self._api.list_policies(pattern))

    async def delete_policy(self, name: str) -> None:
        """Delete a policy, unassigning every identity that pointed to it."""
        await self._call(self._api.delete_policy(name))

    # -- identities -------------------------------------------------------

    async def assign_identity(self, policy: str, identity: str) -> None:
        """Bind ``identity`` to ``policy`` (same argument order as the URL and Go SDK)."""
        await self._call(self._api.assign_identity(policy, identity))

    async def list_identities(self, pattern: str = "*") -> list[IdentityInfo]:
        """Identities (with their policy) matching the glob ``pattern``; root is never listed."""
        return await self._call(self._api.list_identities(pattern))

    async def forget_identity(self, identity: str) -> None:
        """Remove ``identity``'s policy binding."""
        await self._call(self._api.forget_identity(identity))

    async def self_identity(self) -> IdentityInfo:
        """Who the server thinks the caller is, and what it may do."""
        return await self._call(self._api.self_identity())

    # -- traces -----------------------------------------------------------

    def trace_audit(self) -> AsyncEventStream[AuditEvent]:
        """Subscribe to the audit log (use with ``async with``)."""
        return AsyncEventStream(
            self._http, self._api.trace_audit(), self._api.server, self.on_request
        )

    def trace_error(self) -> AsyncEventStream[ErrorEvent]:
        """Subscribe to the server's error log (use with ``async with``)."""
        return AsyncEventStream(
            self._http, self._api.trace_error(), self._api.server, self.on_request
        )
