"""The etcd key store: one shared store for several stateless kes-servers.

Why etcd: a fleet of kes-servers behind a TLS proxy (seed "TLS Proxy") must
agree on every key, policy and identity binding. etcd gives us that without
any replication code of our own: a replicated, linearizable map with an
atomic compare-and-swap, so "create if absent" has exactly one winner even
when several servers race for one name.

Why the JSON gateway and a hand-written client: the maintained Python etcd
clients are either broken with current protobuf (``etcd3``) or pull in gRPC
(``aetcd``). etcd serves the same v3 API as JSON over HTTP/1.1 on its client
port (``/v3/kv/range|put|deleterange|txn``), and a small dedicated asyncio
HTTP/1.1 client over it is fast: httpx's connection pool is CPU-bound under
the concurrency a key server sees (design/findings.md), a plain keep-alive
connection per in-flight request is not. This module is deliberately not a
general etcd library: it speaks exactly the five calls the ``Store`` needs.

Wire conventions of the gateway (etcd 3.4/3.5): keys and values are base64,
int64 fields are JSON strings, and zero values are omitted (a missing key has
no ``kvs``; a failed transaction has no ``succeeded``).

Layout: ``<prefix><namespace>/<name>``, e.g. ``kes/keys/my-key`` holding the
same ``{"bytes":...}`` record the filesystem store writes, ``kes/policies/p``
and ``kes/identities/<hex>``. Several clusters of kes-servers can share one
etcd with different prefixes.

Failure semantics, because they decide what a client sees:

* every operation has one deadline, ``timeout``, across all endpoints and
  retries, so a request never hangs longer than that;
* a dead endpoint (connection refused/reset) is skipped at once; an
  endpoint that does not answer gets a share of the remaining time before the
  next one is tried; etcd's "no leader"/"timed out" answers (HTTP 5xx) are
  retried on the next endpoint; the endpoint that last answered is tried
  first next time;
* when no endpoint succeeds in time, ``StoreUnreachable`` is raised and the
  key manager answers 503; any other etcd error is a ``StoreError`` (502);
* an attempt that times out may still have been applied. ``create`` stays
  exactly-once anyway: a retried create that finds the name holding *its own*
  value counts as created (values are fresh random keys, so nobody else
  writes the same bytes). ``put`` is idempotent; a retried ``delete`` may
  report False for a delete that did happen (it is never an error in KES).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from kes_server.core.config import EtcdStoreConfig
from kes_server.keystore.base import Namespace, Store, StoreError, StoreStatus, StoreUnreachable

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "Endpoint",
    "EtcdError",
    "EtcdStore",
    "EtcdUnavailable",
    "HTTPProtocolError",
    "build_http_request",
    "create_txn",
    "delete_request",
    "entry_key",
    "list_request",
    "parse_created",
    "parse_deleted",
    "parse_endpoint",
    "parse_list",
    "parse_value",
    "prefix_end",
    "put_request",
    "range_request",
    "read_http_response",
]

#: Names fetched per ``list`` page: bounds one gateway response (~100 KB).
DEFAULT_PAGE_SIZE = 1000
#: Idle keep-alive connections kept per endpoint.
MAX_IDLE = 16
#: Concurrent requests per endpoint; more wait (within their deadline).
MAX_IN_FLIGHT = 64
#: An attempt never gets less than this (unless less time remains): a healthy
#: but momentarily slow member (fsync spike) should not be abandoned too early.
MIN_ATTEMPT_S = 1.0
_MAX_BODY = 64 * 1024 * 1024


# ---------------------------------------------------------------------- wire: etcd JSON


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise StoreError("etcd: malformed answer: expected a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise StoreError("etcd: malformed answer: invalid base64") from exc


def _int64(value: object) -> int:
    """int64 fields arrive as JSON strings; omitted means 0."""
    if value is None:
        return 0
    try:
        return int(str(value))
    except ValueError as exc:
        raise StoreError(f"etcd: malformed answer: {value!r} is not an integer") from exc


def entry_key(prefix: bytes, ns: Namespace, name: str) -> bytes:
    """The etcd key of one entry; empty names are refused (they would address the folder)."""
    if not name:
        raise StoreError("invalid entry name ''")
    return prefix + ns.value.encode() + b"/" + name.encode()


def prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` that selects every key starting with ``prefix`` (etcd's rule).

    Increment the last byte that is not 0xff and drop what follows; a prefix of
    only 0xff bytes (or empty) means "to the end of the key space" (``\\0``).
    """
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"


def put_request(key: bytes, value: bytes) -> dict[str, Any]:
    return {"key": b64(key), "value": b64(value)}


def range_request(key: bytes) -> dict[str, Any]:
    return {"key": b64(key)}


def delete_request(key: bytes) -> dict[str, Any]:
    return {"key": b64(key)}


def create_txn(key: bytes, value: bytes) -> dict[str, Any]:
    """Create-if-absent: put only if the key was never created (create_revision 0).

    On failure the transaction reads the current value, so a retry can tell
    "someone else won" from "my own earlier attempt was applied".
    """
    k = b64(key)
    return {
        "compare": [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
        "success": [{"request_put": {"key": k, "value": b64(value)}}],
        "failure": [{"request_range": {"key": k}}],
    }


def list_request(
    prefix: bytes, *, limit: int, start: bytes | None = None, revision: int = 0
) -> dict[str, Any]:
    """One page of the names under ``prefix``, in key order, from ``start`` on.

    Later pages pin ``revision`` to the first page's, so a listing is one
    consistent snapshot even while other servers create keys.
    """
    body: dict[str, Any] = {
        "key": b64(start if start is not None else prefix),
        "range_end": b64(prefix_end(prefix)),
        "keys_only": True,
        "limit": str(limit),
    }
    if revision:
        body["revision"] = str(revision)
    return body


def _kvs(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    kvs = doc.get("kvs") or []
    if not isinstance(kvs, list) or not all(isinstance(kv, Mapping) for kv in kvs):
        raise StoreError("etcd: malformed answer: 'kvs' is not a list of objects")
    return kvs


def parse_value(doc: Mapping[str, Any]) -> bytes | None:
    """The value of a single-key range answer; None when the key is absent."""
    kvs = _kvs(doc)
    if not kvs:
        return None
    # An empty value is omitted too (zero value): present but empty.
    return _unb64(kvs[0].get("value", ""))


def parse_created(doc: Mapping[str, Any], value: bytes) -> bool:
    """Outcome of ``create_txn``: True if created now or by our own earlier attempt."""
    if doc.get("succeeded") is True:
        return True
    responses = doc.get("responses") or []
    if not isinstance(responses, list) or not responses or not isinstance(responses[0], Mapping):
        return False
    existing = parse_value(responses[0].get("response_range") or {})
    return existing == value


def parse_deleted(doc: Mapping[str, Any]) -> bool:
    return _int64(doc.get("deleted")) > 0


def parse_list(doc: Mapping[str, Any], prefix: bytes) -> tuple[list[str], bytes | None, int]:
    """(names, key to continue from or None, revision) of one ``list_request`` page."""
    names: list[str] = []
    last = b""
    for kv in _kvs(doc):
        key = _unb64(kv.get("key", ""))
        last = key
        if key.startswith(prefix) and len(key) > len(prefix):
            try:
                names.append(key[len(prefix) :].decode())
            except UnicodeDecodeError:
                continue  # not written by us
    header = doc.get("header") or {}
    revision = _int64(header.get("revision")) if isinstance(header, Mapping) else 0
    more = doc.get("more") is True
    return names, (last + b"\0" if more and last else None), revision


@dataclass(frozen=True)
class EtcdError:
    """An error answer of etcd: HTTP status, gRPC code and message (a value, not raised)."""

    status: int
    code: int
    message: str

    @classmethod
    def from_response(cls, status: int, body: bytes) -> EtcdError:
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if isinstance(doc, Mapping):
            message = str(doc.get("error") or doc.get("message") or "")
            code = doc.get("code", 0)
            return cls(status, code if isinstance(code, int) else 0, message)
        return cls(status, 0, body[:200].decode("utf-8", "replace").strip())

    @property
    def retryable(self) -> bool:
        """Worth trying another member: no leader, request timed out, shutting down.

        gRPC 14 (unavailable), 4 (deadline exceeded) and 2 (unknown, which the
        gateway uses for "context deadline exceeded" on txn) and any 5xx.
        """
        return self.status >= 500 or self.code in (2, 4, 14)

    def __str__(self) -> str:
        text = self.message or "no message"
        return f"HTTP {self.status}: {text}" + (f" (code {self.code})" if self.code else "")


# ---------------------------------------------------------------------- wire: HTTP/1.1


class HTTPProtocolError(Exception):
    """The peer did not speak HTTP/1.1 as expected (or closed mid-response)."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_endpoint(text: str, *, tls: bool = False) -> Endpoint:
    """``http(s)://host:port`` or ``host:port`` (https when TLS is configured).

    Raises ValueError for anything else; etcd's client port defaults to 2379.
    """
    raw = text.strip()
    if "://" not in raw:
        raw = ("https://" if tls else "http://") + raw
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid etcd endpoint {text!r} (want http(s)://host:port)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"invalid etcd endpoint {text!r}: no path allowed")
    port = parts.port or 2379
    return Endpoint(parts.scheme, parts.hostname, port)


def build_http_request(endpoint: Endpoint, path: str, body: bytes) -> bytes:
    """A complete HTTP/1.1 keep-alive POST of a JSON body."""
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}:{endpoint.port}\r\n"
        "Content-Type: application/json\r\n"
        "Accept: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


async def read_http_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep_alive) of one response; handles Content-Length and chunked.

    Raises ``HTTPProtocolError`` on a malformed or truncated response (also
    when the connection was closed before any byte arrived).
    """
    try:
        line = await reader.readuntil(b"\r\n")
    except asyncio.IncompleteReadError as exc:
        raise HTTPProtocolError("connection closed before the response") from exc
    except asyncio.LimitOverrunError as exc:
        raise HTTPProtocolError("status line too long") from exc
    parts = line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HTTPProtocolError(f"invalid status line {line[:80]!r}")
    version, status = parts[0], int(parts[1])
    headers: dict[str, str] = {}
    try:
        while True:
            raw = await reader.readuntil(b"\r\n")
            if raw == b"\r\n":
                break
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                raise HTTPProtocolError(f"invalid header line {raw[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep_alive = version == "HTTP/1.1" and connection != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length < 0 or length > _MAX_BODY:
                raise HTTPProtocolError(f"invalid content length {length}")
            body = await reader.readexactly(length)
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:  # body until close
            body = await reader.read(_MAX_BODY)
            keep_alive = False
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        raise HTTPProtocolError(f"truncated or malformed response: {exc}") from exc
    return status, body, keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        total += size
        if total > _MAX_BODY:
            raise HTTPProtocolError("response body too large")
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise HTTPProtocolError("chunk not terminated by CRLF")


# ---------------------------------------------------------------------- connections


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


@dataclass
class _Attempt:
    """What one try got to: a connected but silent member is up without quorum."""

    connected: bool = False


class _Pool:
    """Keep-alive connections to one endpoint, one per in-flight request.

    A connection is returned to the pool only after a complete response; any
    error, timeout or cancellation closes it, because its state is unknown.
    """

    def __init__(self, endpoint: Endpoint, ssl_context: ssl.SSLContext | None) -> None:
        self.endpoint = endpoint
        self._ssl = ssl_context if endpoint.scheme == "https" else None
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(
            self.endpoint.host,
            self.endpoint.port,
            ssl=self._ssl,
            server_hostname=self.endpoint.host if self._ssl else None,
        )
        return _Connection(reader, writer)

    async def request(self, path: str, body: bytes, attempt: _Attempt) -> tuple[int, bytes]:
        """POST ``body``; the caller bounds the time (asyncio.timeout)."""
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            reused = conn is not None
            if conn is None:
                conn = await self._connect()
            attempt.connected = True
            try:
                try:
                    status, data, keep_alive = await self._exchange(conn, path, body)
                except (HTTPProtocolError, ConnectionError) as exc:
                    # A pooled connection the server closed while idle fails
                    # before any answer: the request was not processed, retry fresh.
                    if not reused or not _closed_before_answer(exc):
                        raise
                    conn.close()
                    conn = await self._connect()
                    status, data, keep_alive = await self._exchange(conn, path, body)
            except BaseException:
                conn.close()
                raise
            if keep_alive and len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
            else:
                conn.close()
            return status, data

    async def _exchange(self, conn: _Connection, path: str, body: bytes) -> tuple[int, bytes, bool]:
        conn.writer.write(build_http_request(self.endpoint, path, body))
        await conn.writer.drain()
        return await read_http_response(conn.reader)

    async def close(self) -> None:
        """Close idle connections and wait until their sockets are really closed.

        Waiting matters when the event loop ends right after (tests, shutdown):
        a transport closed but never given a loop iteration leaks its socket.
        """
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        for conn in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.writer.wait_closed(), 1.0)


def _closed_before_answer(exc: BaseException) -> bool:
    if isinstance(exc, HTTPProtocolError):
        return "before the response" in str(exc)
    return isinstance(exc, ConnectionResetError | BrokenPipeError)


# ---------------------------------------------------------------------- the store


class EtcdUnavailable(StoreUnreachable):
    """No endpoint completed the call in time.

    ``answered`` tells /v1/status apart "etcd is up but has no quorum"
    (some member accepted the connection or answered: reachable) from
    "nothing listens" (unreachable).
    """

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


class EtcdStore(Store):
    """A ``Store`` on an etcd v3 cluster through its JSON gateway (see module doc)."""

    kind = "etcd"

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        prefix: str = "kes/",
        timeout_s: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is required")
        if timeout_s <= 0 or page_size < 1:
            raise ValueError("timeout and page size must be positive")
        self.endpoints = [parse_endpoint(e, tls=ssl_context is not None) for e in endpoints]
        self.prefix = prefix.encode()
        self.timeout_s = timeout_s
        self.page_size = page_size
        self.location = f"{','.join(e.url for e in self.endpoints)} (prefix '{prefix}')"
        self._ssl = ssl_context
        if ssl_context is None and any(e.scheme == "https" for e in self.endpoints):
            self._ssl = ssl.create_default_context()
        self._pools = [_Pool(e, self._ssl) for e in self.endpoints]
        self._preferred = 0
        #: Floor of one attempt's share of the deadline (tests lower it).
        self.min_attempt_s = MIN_ATTEMPT_S

    @classmethod
    def from_config(cls, cfg: EtcdStoreConfig) -> EtcdStore:
        """Build the store from ``keystore.etcd``; bad settings raise ValueError/OSError."""
        context: ssl.SSLContext | None = None
        if cfg.ca or cfg.cert or cfg.key:
            if bool(cfg.cert) != bool(cfg.key):
                raise ValueError("tls.cert and tls.key must be set together")
            context = ssl.create_default_context(cafile=cfg.ca or None)
            if cfg.cert:
                context.load_cert_chain(cfg.cert, cfg.key)
        return cls(cfg.endpoints, prefix=cfg.prefix, timeout_s=cfg.timeout_s, ssl_context=context)

    # ------------------------------------------------------------------ transport
    async def _call(self, path: str, request: Mapping[str, Any], what: str) -> dict[str, Any]:
        """One gateway call with failover under one deadline (see module doc)."""
        body = json.dumps(request, separators=(",", ":")).encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        count = len(self._pools)
        errors: dict[str, str] = {}
        answered = False
        backoff = 0.05
        while True:
            start = self._preferred
            progressed = False  # some endpoint got far enough to be worth retrying
            for i in range(count):
                index = (start + i) % count
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                budget = min(remaining, max(remaining / (count - i), self.min_attempt_s))
                pool = self._pools[index]
                attempt = _Attempt()
                try:
                    async with asyncio.timeout(budget):
                        status, data = await pool.request(path, body, attempt)
                except TimeoutError:
                    errors[pool.endpoint.url] = f"no answer within {budget:.2g}s"
                    answered = answered or attempt.connected
                    progressed = True
                    continue
                except (OSError, HTTPProtocolError) as exc:
                    errors[pool.endpoint.url] = _reason(exc)
                    continue
                answered = True
                if status == 200:
                    self._preferred = index
                    return self._decode(data, what)
                error = EtcdError.from_response(status, data)
                if not error.retryable:
                    raise StoreError(f"etcd: {what}: {error}")
                errors[pool.endpoint.url] = str(error)
                progressed = True
            remaining = deadline - loop.time()
            if not progressed or remaining <= 0:
                break
            await asyncio.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, 0.5)
        detail = "; ".join(f"{url}: {why}" for url, why in errors.items())
        raise EtcdUnavailable(
            f"etcd: {what}: no endpoint succeeded within {self.timeout_s:g}s ({detail})",
            answered=answered,
        )

    @staticmethod
    def _decode(data: bytes, what: str) -> dict[str, Any]:
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise StoreError(f"etcd: {what}: malformed answer (not JSON)") from exc
        if not isinstance(doc, dict):
            raise StoreError(f"etcd: {what}: malformed answer (not a JSON object)")
        return doc

    # ------------------------------------------------------------------ Store
    async def create(self, ns: Namespace, name: str, value: bytes) -> bool:
        key = entry_key(self.prefix, ns, name)
        doc = await self._call("/v3/kv/txn", create_txn(key, value), f"cannot create '{name}'")
        return parse_created(doc, value)

    async def put(self, ns: Namespace, name: str, value: bytes) -> None:
        key = entry_key(self.prefix, ns, name)
        await self._call("/v3/kv/put", put_request(key, value), f"cannot write '{name}'")

    async def get(self, ns: Namespace, name: str) -> bytes | None:
        key = entry_key(self.prefix, ns, name)
        doc = await self._call("/v3/kv/range", range_request(key), f"cannot read '{name}'")
        return parse_value(doc)

    async def delete(self, ns: Namespace, name: str) -> bool:
        key = entry_key(self.prefix, ns, name)
        doc = await self._call("/v3/kv/deleterange", delete_request(key), f"cannot delete '{name}'")
        return parse_deleted(doc)

    async def list(self, ns: Namespace) -> list[str]:
        folder = self.prefix + ns.value.encode() + b"/"
        names: list[str] = []
        start: bytes | None = None
        revision = 0
        while True:
            request = list_request(folder, limit=self.page_size, start=start, revision=revision)
            doc = await self._call("/v3/kv/range", request, "cannot list entries")
            page, start, page_revision = parse_list(doc, folder)
            names.extend(page)
            revision = revision or page_revision
            if start is None:
                return names

    async def status(self) -> StoreStatus:
        """A linearizable read: "available" only when a quorum answers in time."""
        began = time.perf_counter()
        probe = {"key": b64(self.prefix), "count_only": True}
        try:
            await self._call("/v3/kv/range", probe, "status probe")
        except EtcdUnavailable as exc:
            state: Literal["reachable", "unreachable"] = (
                "reachable" if exc.answered else "unreachable"
            )
            return StoreStatus(state, time.perf_counter() - began)
        except StoreError:
            return StoreStatus("reachable", time.perf_counter() - began)
        return StoreStatus("available", time.perf_counter() - began)

    async def close(self) -> None:
        for pool in self._pools:
            await pool.close()
