"""Vault's K/V and auth API as KES v0.17 speaks it: locations, payloads, answers. No I/O.

Everything a kes-server sends to Vault is a ``Request`` built here, and every
answer is judged here, so the whole protocol is unit-testable without a
server; ``transport.py`` only moves bytes.

Where KES v0.17 keeps a key (``<p>`` = ``path.Join(engine, prefix)``; v2 puts
``data``/``metadata`` right after the engine)::

    op       v1                               v2
    create   PUT  <engine>/<prefix>/<name>    PUT <engine>/data/<prefix>/<name> (cas 0)
    get      GET  <engine>/<prefix>/<name>    GET <engine>/data/<prefix>/<name>
    delete   DELETE <engine>/<prefix>/<name>  DELETE <engine>/metadata/<prefix>/<name>
    list     LIST <engine>/<prefix>           LIST <engine>/metadata/<prefix>

The secret has one field named after the key (``{"my-key": "{\\"bytes\\":...}"}``)
holding the same JSON text the fs store writes. Policies and identity bindings
(pykes only, docs/decisions/vault-metadata.md) use the same shape in a sibling
folder, ``<prefix>.pykes/policies`` and ``<prefix>.pykes/identities``, which is
never inside the key folder unless the prefix is empty.

How answers are read (checked against OpenBao 2.7, the same API as Vault):

* 404 with an empty ``errors`` list is "no such entry" (a LIST of an empty
  folder too; a KV v2 entry whose newest version was soft-deleted as well);
  404 with errors ("no handler for route", "namespace not found") or with a
  warning and no data (a v1 path on a v2 engine) is a configuration problem;
* 503 naming "sealed" is a sealed Vault; 403 is a bad or expired token (or a
  missing capability);
* KV v2's create-if-absent (``cas: 0``) fails with 400 "check-and-set
  parameter did not match" when the entry exists.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from kes_server.keystore.base import Namespace, StoreError

__all__ = [
    "META_SUFFIX",
    "Answer",
    "HealthReport",
    "Layout",
    "Lease",
    "Request",
    "Step",
    "VaultDenied",
    "VaultError",
    "VaultSealed",
    "approle_login",
    "expect_success",
    "go_join",
    "health_request",
    "kubernetes_login",
    "messages",
    "next_step",
    "parse_created",
    "parse_entry",
    "parse_exists",
    "parse_health",
    "parse_lease",
    "parse_names",
    "renew_self",
]

#: Appended to the prefix to name the folder of pykes's own entries.
META_SUFFIX = ".pykes"
#: Go's url.PathEscape leaves these as they are; Vault unescapes either way.
_PATH_SAFE = "/:@!$&'()*+,;="
_CAS_MISMATCH = "check-and-set parameter did not match"
_BULLET = re.compile(r"^\s*\*\s*(.+?)\s*$", re.MULTILINE)


class VaultError(StoreError):
    """Vault answered, but not with what the operation needed (a 502 for clients)."""


class VaultSealed(VaultError):
    """Vault is sealed: it answers, but serves nothing until an operator unseals it."""


class VaultDenied(VaultError):
    """403: the token is invalid, expired or lacks a capability on the path."""


def go_join(*elems: str) -> str:
    """Go's ``path.Join``: join the non-empty elements with ``/`` and clean the result."""
    joined = "/".join(e for e in elems if e)
    if not joined:
        return ""
    cleaned = posixpath.normpath(joined)
    if cleaned.startswith("//"):  # POSIX keeps a leading "//"; Go does not
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def _relative(folder: str) -> str:
    """A cleaned folder inside the engine: no leading ``/``, ``""`` for the engine root."""
    cleaned = go_join(folder).strip("/")
    return "" if cleaned == "." else cleaned


@dataclass(frozen=True)
class Request:
    """One call to Vault. ``body`` is kept out of ``repr``: it holds keys and secrets."""

    method: Literal["GET", "PUT", "POST", "DELETE"]
    path: str
    body: Mapping[str, Any] | None = field(default=None, repr=False)
    query: tuple[tuple[str, str], ...] = ()
    #: Sent with ``X-Vault-Namespace`` (everything but ``sys/health``).
    namespaced: bool = True
    #: Sent with ``X-Vault-Token`` (everything but logins and ``sys/health``).
    authenticated: bool = True

    @property
    def url_path(self) -> str:
        return "/v1/" + quote(self.path, safe=_PATH_SAFE)

    def describe(self) -> str:
        """What error messages name: the method and location, never the body."""
        method = "LIST" if ("list", "true") in self.query else self.method
        return f"{method} {self.path}"

    def sent_values(self) -> list[str]:
        """Every string in the body: never to be echoed in an error message."""
        out: list[str] = []
        stack: list[Any] = [self.body or {}]
        while stack:
            item = stack.pop()
            if isinstance(item, Mapping):
                stack.extend(item.values())
            elif isinstance(item, str):
                out.append(item)
        return out


@dataclass(frozen=True)
class Answer:
    """Vault's answer: status, the JSON object (``{}`` if none), scrubbed messages.

    ``errors`` and ``warnings`` are safe to log (the transport removed anything
    the request carried); ``doc`` may hold key material and tokens: never log it.
    """

    status: int
    doc: Mapping[str, Any] = field(default_factory=dict, repr=False)
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def not_found(self) -> bool:
        """404 meaning "no such entry" (see the module doc), not a misrouted request."""
        if self.status != 404 or self.errors:
            return False
        return not (self.warnings and self.doc.get("data") is None)

    @property
    def sealed(self) -> bool:
        return self.status == 503 and any("sealed" in e.lower() for e in self.errors)


def messages(raw: object) -> tuple[str, ...]:
    """Vault's ``errors``/``warnings`` as one-line texts.

    Multi-errors arrive as ``"1 error occurred:\\n\\t* permission denied\\n\\n"``;
    only the bullet items are kept.
    """
    if not isinstance(raw, list):
        return ()
    out: list[str] = []
    for item in raw:
        text = str(item)
        bullets = _BULLET.findall(text)
        out.extend(bullets if bullets else [" ".join(text.split())])
    return tuple(t for t in out if t)


def error_of(request: Request, answer: Answer) -> VaultError:
    """The exception for an unexpected answer, naming the location and Vault's reason."""
    reason = "; ".join(answer.errors or answer.warnings) or f"HTTP {answer.status}"
    text = f"vault: {request.describe()}: {reason}"
    if answer.sealed:
        return VaultSealed(text)
    if answer.status == 403:
        return VaultDenied(text)
    return VaultError(text)


def expect_success(request: Request, answer: Answer) -> None:
    if not answer.ok:
        raise error_of(request, answer)


# ---------------------------------------------------------------------- K/V layout


def _check_name(name: str) -> None:
    """Last line of defence: a name is one path segment (the API validates it first)."""
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise StoreError(f"invalid entry name {name!r}")


@dataclass(frozen=True)
class Layout:
    """Where one deployment's entries live in a K/V engine (KES v0.17's locations)."""

    engine: str = "kv"
    version: Literal["v1", "v2"] = "v1"
    prefix: str = ""

    def __post_init__(self) -> None:
        for what, value in (("engine", self.engine), ("prefix", self.prefix)):
            if ".." in value.split("/"):
                raise ValueError(f"{what} {value!r} must not contain '..'")
        if not _relative(self.engine):
            raise ValueError("engine must not be empty")

    def folder(self, ns: Namespace) -> str:
        """The folder of a namespace, relative to the engine."""
        base = _relative(self.prefix)
        if ns is Namespace.KEYS:
            return base
        return go_join(base + META_SUFFIX, ns.value)

    def _at(self, kind: str, *rest: str) -> str:
        engine = _relative(self.engine)
        if self.version == "v2":
            return go_join(engine, kind, *rest)
        return go_join(engine, *rest)

    def data_path(self, ns: Namespace, name: str) -> str:
        _check_name(name)
        return self._at("data", self.folder(ns), name)

    def metadata_path(self, ns: Namespace, name: str) -> str:
        _check_name(name)
        return self._at("metadata", self.folder(ns), name)

    def list_path(self, ns: Namespace) -> str:
        return self._at("metadata", self.folder(ns))

    # ------------------------------------------------------------------ requests
    def read(self, ns: Namespace, name: str) -> Request:
        return Request("GET", self.data_path(ns, name))

    def create(self, ns: Namespace, name: str, value: str) -> Request:
        """Create-if-absent: atomic on v2 (``cas: 0``); on v1 the caller reads first."""
        if self.version == "v2":
            body: dict[str, Any] = {"options": {"cas": 0}, "data": {name: value}}
        else:
            body = {name: value}
        return Request("PUT", self.data_path(ns, name), body)

    def put(self, ns: Namespace, name: str, value: str) -> Request:
        """Create or replace (policies and bindings only)."""
        body: dict[str, Any] = {"data": {name: value}} if self.version == "v2" else {name: value}
        return Request("PUT", self.data_path(ns, name), body)

    def delete(self, ns: Namespace, name: str) -> Request:
        """v2 deletes the metadata: every version goes, as in KES."""
        path = self.metadata_path(ns, name) if self.version == "v2" else self.data_path(ns, name)
        return Request("DELETE", path)

    def list(self, ns: Namespace) -> Request:
        # GET ?list=true is Vault's portable spelling of the LIST method.
        return Request("GET", self.list_path(ns), query=(("list", "true"),))


# ---------------------------------------------------------------------- K/V answers


def parse_entry(request: Request, answer: Answer, name: str, version: str) -> str | None:
    """The value stored under ``name`` (the field named after it), None when absent."""
    if answer.not_found:
        return None
    expect_success(request, answer)
    data = answer.doc.get("data")
    if version == "v2" and isinstance(data, Mapping):
        data = data.get("data")
        if data is None:  # a soft-deleted newest version
            return None
    if not isinstance(data, Mapping):
        raise VaultError(f"vault: {request.describe()}: malformed answer: no 'data' object")
    value = data.get(name)
    if value is None:
        raise VaultError(f"vault: {request.describe()}: the entry has no field {name!r}")
    if not isinstance(value, str):
        raise VaultError(f"vault: {request.describe()}: field {name!r} is not a string")
    return value


def parse_exists(request: Request, answer: Answer) -> bool:
    """Whether a read found something at the location (well-formed or not)."""
    if answer.not_found:
        return False
    expect_success(request, answer)
    return True


def parse_names(request: Request, answer: Answer) -> list[str]:
    """Entry names of a LIST; sub-folders (``name/``) are skipped, as KES does."""
    if answer.not_found:
        return []
    expect_success(request, answer)
    data = answer.doc.get("data")
    keys = data.get("keys") if isinstance(data, Mapping) else None
    if not isinstance(keys, list):
        raise VaultError(f"vault: {request.describe()}: malformed answer: no 'keys' list")
    return [k for k in keys if isinstance(k, str) and k and not k.endswith("/")]


def parse_created(request: Request, answer: Answer) -> bool:
    """Outcome of a create: True when written, False when v2's CAS found an entry."""
    if answer.ok:
        return True
    if answer.status == 400 and any(_CAS_MISMATCH in e for e in answer.errors):
        return False
    raise error_of(request, answer)


# ---------------------------------------------------------------------- auth


@dataclass(frozen=True)
class Lease:
    """A Vault token and how long it lives. ``token`` never appears in ``repr``."""

    token: str = field(repr=False)
    ttl_s: float
    renewable: bool


def approle_login(engine: str, role_id: str, secret_id: str) -> Request:
    body = {"role_id": role_id, "secret_id": secret_id}
    return Request("POST", go_join("auth", engine, "login"), body, authenticated=False)


def kubernetes_login(engine: str, role: str, jwt: str) -> Request:
    body = {"role": role, "jwt": jwt}
    return Request("POST", go_join("auth", engine, "login"), body, authenticated=False)


def renew_self(increment_s: float) -> Request:
    """Ask for the login's TTL again, as KES does (Vault caps it at the max TTL)."""
    return Request("POST", "auth/token/renew-self", {"increment": int(increment_s)})


def parse_lease(request: Request, answer: Answer) -> Lease:
    """The ``auth`` section of a login or renewal."""
    expect_success(request, answer)
    auth = answer.doc.get("auth")
    token = auth.get("client_token") if isinstance(auth, Mapping) else None
    if not isinstance(auth, Mapping) or not isinstance(token, str) or not token:
        raise VaultError(f"vault: {request.describe()}: the answer has no token")
    ttl = auth.get("lease_duration", 0)
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl < 0:
        raise VaultError(f"vault: {request.describe()}: malformed lease duration")
    return Lease(token=token, ttl_s=float(ttl), renewable=auth.get("renewable") is True)


@dataclass(frozen=True)
class Step:
    """What the token keeper does next, and after how many seconds."""

    action: Literal["renew", "login", "none"]
    delay_s: float


def next_step(lease: Lease, login_ttl_s: float) -> Step:
    """Renew at half the TTL; log in anew when renewing cannot extend the token.

    ``login_ttl_s`` is the TTL the login granted. A renewal that returns less
    has hit the token's max TTL, so the next step is a fresh login (again at
    half the remaining time) rather than ever shorter renewals. A TTL of 0
    means the token never expires: nothing to do.
    """
    if lease.ttl_s <= 0:
        return Step("none", 0.0)
    delay = lease.ttl_s / 2
    if not lease.renewable or lease.ttl_s < login_ttl_s:
        return Step("login", delay)
    return Step("renew", delay)


# ---------------------------------------------------------------------- health

#: Every state answers 299 so that the body (sealed, initialized) is always read.
_HEALTH_QUERY = tuple(
    (param, "299")
    for param in (
        "uninitcode",
        "sealedcode",
        "standbycode",
        "drsecondarycode",
        "performancestandbycode",
    )
)


def health_request() -> Request:
    """``sys/health``: unauthenticated and, unlike KES, outside any namespace.

    Vault answers 400 "operation unavailable in namespaces" when it is asked
    within one, which left KES v0.17 blind to a sealed Vault in namespaces.
    """
    return Request("GET", "sys/health", query=_HEALTH_QUERY, namespaced=False, authenticated=False)


@dataclass(frozen=True)
class HealthReport:
    available: bool
    reason: str = ""


def parse_health(request: Request, answer: Answer) -> HealthReport:
    doc = answer.doc
    if not isinstance(doc.get("sealed"), bool) or not isinstance(doc.get("initialized"), bool):
        if not answer.ok:  # 299 is "ok" too: every state Vault knows gets one
            raise error_of(request, answer)
        raise VaultError(f"vault: {request.describe()}: malformed answer")
    if not doc["initialized"]:
        return HealthReport(False, "Vault is not initialized")
    if doc["sealed"]:
        return HealthReport(False, "Vault is sealed")
    return HealthReport(True)
