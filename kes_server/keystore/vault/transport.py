"""Moving ``Request``s to Vault and ``Answer``s back: the only module with sockets.

httpx's pool is slow under high concurrency (design/findings.md), but the key
manager caches keys, so Vault sees creates, cache misses and the background
calls (health, token renewal, policy refresh), never the per-request hot path.

Two rules hold here so that no layer above has to remember them:

* anything the request carried (key values, secret IDs, JWTs) and the token
  is scrubbed from Vault's error and warning texts before they are returned;
* a connection that fails (refused, reset, timed out, TLS) is a
  ``VaultUnreachable``, which clients see as 503 "key store is not reachable".
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from kes_server.core.config import VaultTLSConfig
from kes_server.keystore.base import StoreUnreachable
from kes_server.keystore.vault.protocol import Answer, Request, VaultError, messages

__all__ = [
    "MAX_ANSWER_BYTES",
    "REQUEST_TIMEOUT_S",
    "Transport",
    "VaultUnreachable",
    "client_context",
    "public_url",
]

#: One call to Vault, connecting included (the API's own timeouts are 10-15 s).
REQUEST_TIMEOUT_S = 10.0
#: Vault returns a LIST in one answer; bound it as KES does (32 MiB).
MAX_ANSWER_BYTES = 32 << 20
_REDACTED = "[redacted]"


def public_url(endpoint: str) -> str:
    """The endpoint as logs and the banner may show it: without a user or password."""
    parts = urlsplit(endpoint.rstrip("/"))
    if parts.username is None and parts.password is None:
        return endpoint.rstrip("/")
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class VaultUnreachable(StoreUnreachable):
    """No answer from Vault: connection refused or reset, timeout, TLS failure."""


def _load_ca_dir(directory: Path) -> str:
    """Every PEM file of a CA directory, as Vault's Go client reads ``ca`` directories."""
    pems: list[str] = []
    for entry in sorted(directory.iterdir()):
        if not entry.is_file():
            continue
        text = entry.read_text(encoding="utf-8", errors="replace")
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ValueError(f"tls.ca: '{entry}' holds no PEM certificate")
        pems.append(text)
    if not pems:
        raise ValueError(f"tls.ca: no certificate files in '{directory}'")
    return "\n".join(pems)


def client_context(tls: VaultTLSConfig) -> ssl.SSLContext:
    """TLS for Vault: ``tls.ca`` (file or directory) or the system roots, and a client cert.

    Raises ValueError/OSError (ssl.SSLError is one) naming the field at fault.
    """
    try:
        if not tls.ca:
            context = ssl.create_default_context()
        elif os.path.isdir(tls.ca):
            context = ssl.create_default_context(cadata=_load_ca_dir(Path(tls.ca)))
        else:
            context = ssl.create_default_context(cafile=tls.ca)
    except (OSError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith("tls.ca"):
            raise
        raise ValueError(f"tls.ca: cannot load '{tls.ca}': {_reason(exc)}") from exc
    if bool(tls.cert) != bool(tls.key):
        raise ValueError("tls.cert and tls.key must be set together")
    if tls.cert:
        try:
            context.load_cert_chain(tls.cert, tls.key)
        except OSError as exc:
            raise ValueError(f"tls.cert/tls.key: cannot load: {_reason(exc)}") from exc
    return context


def _reason(exc: BaseException) -> str:
    """A short cause for an error line: the OS or TLS reason under httpx's wrapping."""
    if isinstance(exc, httpx.TimeoutException):
        if isinstance(exc, httpx.PoolTimeout):
            return "too many requests in flight"
        return "no answer in time"
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS error: {seen.verify_message or seen.reason}"
        if isinstance(seen, ssl.SSLError):
            return f"TLS error: {seen.reason or seen}"
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno).lower()  # asyncio's own strerror adds the address
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    return str(exc).strip() or type(exc).__name__


def _scrub(texts: tuple[str, ...], secrets: list[str]) -> tuple[str, ...]:
    out = []
    for text in texts:
        for secret in secrets:
            if len(secret) >= 4:
                text = text.replace(secret, _REDACTED)
        out.append(text[:300])
    return tuple(out)


class Transport:
    """An HTTP client bound to one Vault endpoint and (optionally) one namespace."""

    def __init__(
        self,
        endpoint: str,
        *,
        namespace: str = "",
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.public = public_url(endpoint)
        self.namespace = namespace
        self._client = httpx.AsyncClient(
            verify=ssl_context if ssl_context is not None else True,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )

    async def send(
        self, request: Request, token: str = "", timeout_s: float | None = None
    ) -> Answer:
        """Send one request; any answer is returned, no answer raises ``VaultUnreachable``."""
        headers = {"Accept": "application/json"}
        if request.authenticated and token:
            headers["X-Vault-Token"] = token
        if request.namespaced and self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        content = None
        if request.body is not None:
            content = json.dumps(request.body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        extra: dict[str, Any] = {}
        if timeout_s is not None:
            extra["timeout"] = httpx.Timeout(timeout_s)
        try:
            async with self._client.stream(
                request.method,
                self.endpoint + request.url_path,
                params=dict(request.query),
                content=content,
                headers=headers,
                **extra,
            ) as response:
                body = await self._read(response, request)
        except (httpx.TransportError, OSError) as exc:
            # OSError: with TLS 1.3 a refused client certificate surfaces as a bare
            # ssl.SSLError ("certificate required") while reading the answer.
            raise VaultUnreachable(
                f"vault: no connection to {self.public}: {_reason(exc)}"
            ) from None
        return self._answer(request, response.status_code, body, token)

    @staticmethod
    async def _read(response: httpx.Response, request: Request) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise VaultError(f"vault: {request.describe()}: answer larger than 32 MiB")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _answer(request: Request, status: int, body: bytes, token: str) -> Answer:
        try:
            doc = json.loads(body) if body.strip() else {}
        except ValueError:
            doc = {}
        if not isinstance(doc, Mapping):
            doc = {}
        secrets = [token, *request.sent_values()]
        return Answer(
            status=status,
            doc=doc,
            errors=_scrub(messages(doc.get("errors")), secrets),
            warnings=_scrub(messages(doc.get("warnings")), secrets),
        )

    async def aclose(self) -> None:
        await self._client.aclose()
