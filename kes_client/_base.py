"""The KES HTTP API as data, without I/O.

Every endpoint is one method returning a ``Call``: the ``httpx.Request`` to
send and the function that turns the ``httpx.Response`` into a result (or
raises the server's error). ``Client`` and ``AsyncClient`` only differ in how
they send, so the API is described once, here, and unit tests can check
requests and parsing without any network.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

import kes_server
from kes_client._errors import ProtocolError
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
from kes_client._stream import decode_ndjson
from kes_client._tls import normalize_server
from kes_server.core import errors

__all__ = [
    "DEFAULT_TIMEOUT",
    "USER_AGENT",
    "Api",
    "Call",
    "StreamCall",
    "as_timeout",
    "error_from_response",
    "escape_segment",
    "raise_for_status",
]

T = TypeVar("T")
E = TypeVar("E")

#: Server-side routes give up after 10-15 s; waiting a bit longer than that
#: lets the server's own ``request timeout exceeded`` reach the caller.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
USER_AGENT = f"pykes/{kes_server.__version__}"

#: Characters Go's ``url.PathEscape`` leaves alone inside a path segment.
_GO_SEGMENT_SAFE = "$&+:=@"


def as_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    """Accept seconds as well as an ``httpx.Timeout``; ``None`` means no limit at all."""
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if timeout is None:
        return httpx.Timeout(None)
    return httpx.Timeout(timeout, connect=min(float(timeout), DEFAULT_TIMEOUT.connect or 10.0))


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request/response exchange: what to send and how to read the answer."""

    request: httpx.Request
    parse: Callable[[httpx.Response], T]


@dataclass(frozen=True)
class StreamCall(Generic[E]):
    """A streaming request: the response stays open and yields decoded events.

    ``event`` turns one decoded NDJSON value into an event, or returns None
    for values to skip (a newer server may interleave other objects).
    """

    request: httpx.Request
    event: Callable[[Any], E | None]


def escape_segment(value: str) -> str:
    """URL-escape one path argument the way Go's ``url.PathEscape`` does.

    ``.`` and ``..`` are escaped too: left alone, URL normalisation would
    turn ``/v1/key/delete/..`` into a different route.
    """
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe=_GO_SEGMENT_SAFE)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any, field: str) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise ProtocolError(f"field '{field}' is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"field '{field}' is not valid base64") from exc


def _error_message(response: httpx.Response) -> str:
    """The server's error text: ``{"message": ...}`` or, failing that, the body verbatim.

    Go's ``http.Error`` (404 page not found, 405) and proxies answer in plain
    text; upstream's client reports such a body unchanged, and so do we.
    """
    body = response.content
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, Mapping):
            message = obj.get("message")
            if isinstance(message, str):
                return message
            error = obj.get("error")  # some later KES errors use "error"
            if isinstance(error, str):
                return error
    return text


def error_from_response(response: httpx.Response) -> errors.APIError:
    """Rebuild the server's error from a non-2xx response (body must be read)."""
    message = _error_message(response)
    if not message:
        # An empty message (e.g. a proxied cert failing verification, §6) would
        # print as "Error: "; the reason phrase at least says what happened.
        message = response.reason_phrase or f"HTTP {response.status_code}"
    return errors.from_response(response.status_code, message)


def raise_for_status(response: httpx.Response) -> None:
    """Raise the server's error unless the response is a success."""
    if not 200 <= response.status_code < 300:
        raise error_from_response(response)


def _error_from_text(message: str) -> errors.APIError:
    """An error reported in-band (a final ``{"error": ...}`` list line) has no status.

    Pick the class whose known texts include the message; else it is an
    internal error of the server.
    """
    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, errors.APIError):
            if message == cls.message_v017 or message in cls.aliases:
                return cls(message)
    return errors.InternalError(message)


def _json_object(response: httpx.Response) -> Mapping[str, Any]:
    raise_for_status(response)
    try:
        obj = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"response of {response.request.url.path} is not JSON") from exc
    if not isinstance(obj, Mapping):
        raise ProtocolError(f"response of {response.request.url.path} is not a JSON object")
    return obj


def _ndjson_objects(response: httpx.Response) -> list[Mapping[str, Any]]:
    """Decode a listing; a trailing ``{"error": ...}`` line means the listing failed.

    v0.17 reports mid-stream failures in HTTP trailers, which httpx drops;
    v0.18+ appends an ``{"error": ...}`` line instead, which we can see.
    """
    raise_for_status(response)
    values = decode_ndjson(response.content)
    objects: list[Mapping[str, Any]] = []
    for value in values:
        if not isinstance(value, Mapping):
            raise ProtocolError(f"listing of {response.request.url.path} has a non-object line")
        error = value.get("error")
        if isinstance(error, str) and error and len(value) == 1:
            raise _error_from_text(error)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            raise _error_from_text(error["message"])
        objects.append(value)
    return objects


def _empty(response: httpx.Response) -> None:
    raise_for_status(response)


def _text(response: httpx.Response) -> str:
    raise_for_status(response)
    return response.text


class Api:
    """Builds the request of every KES endpoint against one server URL.

    ``timeout`` applies to ordinary calls; traces use the same connect and
    write limits but never time out reading, because a quiet server is not a
    dead one.
    """

    def __init__(self, server: str, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> None:
        self.server = normalize_server(server)
        self.timeout = timeout
        self.stream_timeout = httpx.Timeout(
            connect=timeout.connect, read=None, write=timeout.write, pool=timeout.pool
        )

    # -- request building -------------------------------------------------

    def request(
        self,
        method: str,
        route: str,
        *args: str,
        body: Any = None,
        stream: bool = False,
    ) -> httpx.Request:
        """Build a request for ``route`` with each of ``args`` as an escaped path segment."""
        path = route + "".join("/" + escape_segment(arg) for arg in args)
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = "application/json"
        timeout = self.stream_timeout if stream else self.timeout
        return httpx.Request(
            method,
            self.server + path,
            headers=headers,
            content=content,
            extensions={"timeout": timeout.as_dict()},
        )

    # -- server -----------------------------------------------------------

    def version(self) -> Call[str]:
        def parse(response: httpx.Response) -> str:
            value = _json_object(response).get("version")
            return value if isinstance(value, str) else ""

        return Call(self.request("GET", "/version"), parse)

    def status(self) -> Call[Status]:
        return Call(
            self.request("GET", "/v1/status"),
            lambda response: Status.from_json(_json_object(response)),
        )

    def metrics(self) -> Call[str]:
        request = self.request("GET", "/v1/metrics")
        request.headers["Accept"] = "text/plain"
        return Call(request, _text)

    # -- keys -------------------------------------------------------------

    def create_key(self, name: str) -> Call[None]:
        return Call(self.request("POST", "/v1/key/create", name), _empty)

    def import_key(self, name: str, key: bytes) -> Call[None]:
        body = {"bytes": _b64(key)}
        return Call(self.request("POST", "/v1/key/import", name, body=body), _empty)

    def delete_key(self, name: str) -> Call[None]:
        return Call(self.request("DELETE", "/v1/key/delete", name), _empty)

    def generate_key(self, name: str, context: bytes = b"") -> Call[DataKey]:
        def parse(response: httpx.Response) -> DataKey:
            obj = _json_object(response)
            return DataKey(
                plaintext=_unb64(obj.get("plaintext"), "plaintext"),
                ciphertext=_unb64(obj.get("ciphertext"), "ciphertext"),
            )

        body = {"context": _b64(context)} if context else {}
        return Call(self.request("POST", "/v1/key/generate", name, body=body), parse)

    def encrypt(self, name: str, plaintext: bytes, context: bytes = b"") -> Call[bytes]:
        body = {"plaintext": _b64(plaintext)}
        if context:
            body["context"] = _b64(context)
        return Call(
            self.request("POST", "/v1/key/encrypt", name, body=body),
            lambda response: _unb64(_json_object(response).get("ciphertext"), "ciphertext"),
        )

    def decrypt(self, name: str, ciphertext: bytes, context: bytes = b"") -> Call[bytes]:
        body = {"ciphertext": _b64(ciphertext)}
        if context:
            body["context"] = _b64(context)
        return Call(
            self.request("POST", "/v1/key/decrypt", name, body=body),
            lambda response: _unb64(_json_object(response).get("plaintext"), "plaintext"),
        )

    def list_keys(self, pattern: str = "*") -> Call[list[KeyInfo]]:
        return Call(
            self.request("GET", "/v1/key/list", pattern),
            lambda response: [KeyInfo.from_json(obj) for obj in _ndjson_objects(response)],
        )

    # -- policies ---------------------------------------------------------

    def write_policy(self, name: str, policy: Policy) -> Call[None]:
        body = policy.to_json()
        return Call(self.request("POST", "/v1/policy/write", name, body=body), _empty)

    def read_policy(self, name: str) -> Call[Policy]:
        return Call(
            self.request("GET", "/v1/policy/read", name),
            lambda response: Policy.from_json(_json_object(response)),
        )

    def list_policies(self, pattern: str = "*") -> Call[list[PolicyInfo]]:
        def parse(response: httpx.Response) -> list[PolicyInfo]:
            # v0.17 answers one JSON array of names, v0.18+ an NDJSON stream.
            raise_for_status(response)
            if response.content.lstrip().startswith(b"["):
                try:
                    names = json.loads(response.content)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise ProtocolError("policy listing is not valid JSON") from exc
                return [
                    PolicyInfo.from_json(item) for item in names if isinstance(item, str | Mapping)
                ]
            return [PolicyInfo.from_json(obj) for obj in _ndjson_objects(response)]

        return Call(self.request("GET", "/v1/policy/list", pattern), parse)

    def delete_policy(self, name: str) -> Call[None]:
        return Call(self.request("DELETE", "/v1/policy/delete", name), _empty)

    # -- identities -------------------------------------------------------

    def assign_identity(self, policy: str, identity: str) -> Call[None]:
        return Call(self.request("POST", "/v1/identity/assign", policy, identity), _empty)

    def list_identities(self, pattern: str = "*") -> Call[list[IdentityInfo]]:
        return Call(
            self.request("GET", "/v1/identity/list", pattern),
            lambda response: [IdentityInfo.from_json(obj) for obj in _ndjson_objects(response)],
        )

    def forget_identity(self, identity: str) -> Call[None]:
        return Call(self.request("DELETE", "/v1/identity/forget", identity), _empty)

    def self_identity(self) -> Call[IdentityInfo]:
        return Call(
            self.request("GET", "/v1/identity/self/describe"),
            lambda response: IdentityInfo.from_json(_json_object(response)),
        )

    # -- traces -----------------------------------------------------------

    def trace_audit(self) -> StreamCall[AuditEvent]:
        return StreamCall(
            self.request("GET", "/v1/log/audit/trace", stream=True),
            lambda value: AuditEvent.from_json(value) if isinstance(value, Mapping) else None,
        )

    def trace_error(self) -> StreamCall[ErrorEvent]:
        return StreamCall(
            self.request("GET", "/v1/log/error/trace", stream=True),
            lambda value: ErrorEvent.from_json(value) if isinstance(value, Mapping) else None,
        )
