"""The Vault key store: KES v0.17's Vault layout behind pykes's ``Store``.

A kes-server pointed at the Vault (or OpenBao) that a KES v0.17 deployment
uses, with the same ``keystore.vault`` section, finds every key where KES put
it and writes new keys where KES would (protocol.py has the table). What it
adds on top of KES:

* create-if-absent is atomic on KV v2 (``cas: 0``, as KES); on KV v1, which
  has no check-and-set, creates of one name are serialised within a server
  and every write is read back, so a server that lost a race to another
  server says "key already exists" instead of claiming a key it no longer
  holds. What remains (documented in docs/configuration.md): two servers
  whose writes reach Vault at the same moment can both win; a Vault policy
  without ``update`` on the key folder narrows that to Vault's own handling;
* a sealed or unreachable Vault fails fast (health.py) and recovery needs no
  restart; tokens are renewed and replaced in the background (auth.py);
* policies and identity bindings (pykes persists them, KES does not) live in
  ``<prefix>.pykes/``, next to the key folder, never inside it.

Errors: a sealed Vault or an unexpected answer is a ``StoreError`` (clients
get KES's 502 texts), no answer at all is a ``StoreUnreachable`` (503). The
messages name the location and Vault's reason, never a key, token or secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from kes_server.background import cancel
from kes_server.core.config import VaultStoreConfig
from kes_server.keystore.base import Namespace, Store, StoreError, StoreStatus
from kes_server.keystore.vault.auth import Credentials, Session
from kes_server.keystore.vault.health import Health
from kes_server.keystore.vault.protocol import (
    Answer,
    HealthReport,
    Layout,
    Request,
    VaultError,
    expect_success,
    health_request,
    parse_created,
    parse_entry,
    parse_exists,
    parse_health,
    parse_names,
)
from kes_server.keystore.vault.transport import (
    REQUEST_TIMEOUT_S,
    Transport,
    VaultUnreachable,
    client_context,
    public_url,
)

__all__ = ["STATUS_TIMEOUT_S", "VaultStore"]

#: ``/v1/status`` and the health poll wait this long for ``sys/health``.
STATUS_TIMEOUT_S = 3.0


def _text(value: bytes) -> str:
    """Vault stores strings: key records and pykes's policy JSON are UTF-8 text."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise StoreError("vault: only UTF-8 text can be stored") from None


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class _NameLocks:
    """One lock per entry name, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._slots: dict[tuple[Namespace, str], _Slot] = {}

    @contextlib.asynccontextmanager
    async def hold(self, ns: Namespace, name: str) -> AsyncIterator[None]:
        slot = self._slots.setdefault((ns, name), _Slot())
        slot.users += 1
        try:
            async with slot.lock:
                yield
        finally:
            slot.users -= 1
            if not slot.users:
                del self._slots[(ns, name)]


class VaultStore(Store):
    """A ``Store`` on a Vault K/V engine (v1 or v2), logged in with AppRole or Kubernetes."""

    kind = "vault"

    def __init__(
        self,
        endpoint: str,
        layout: Layout,
        credentials: Credentials,
        *,
        namespace: str = "",
        transport: Transport | None = None,
        ping_s: float = 10.0,
    ) -> None:
        #: Shown in the banner and in messages (never with a user or password).
        self.endpoint = public_url(endpoint)
        self.layout = layout
        self.namespace = namespace
        where = f"engine '{layout.engine}' {layout.version}, prefix '{layout.prefix}'"
        if namespace:
            where += f", namespace '{namespace}'"
        self.location = f"{self.endpoint} ({where})"
        self._transport = transport or Transport(endpoint, namespace=namespace)
        self._on_error: Callable[[str], None] = lambda _msg: None
        self.health = Health(self._probe, endpoint=self.endpoint, ping_s=ping_s, log=self._log)
        self.session = Session(self._transport, credentials, self.health, log=self._log)
        self._locks = _NameLocks()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def from_config(cls, cfg: VaultStoreConfig) -> VaultStore:
        """Build the store from ``keystore.vault`` (no network yet).

        Raises ValueError/OSError for missing credentials or unusable TLS files.
        """
        credentials = Credentials.from_config(cfg)
        layout = Layout(cfg.engine, cfg.version, cfg.prefix)
        context = client_context(cfg.tls) if cfg.endpoint.startswith("https:") else None
        transport = Transport(
            cfg.endpoint, namespace=cfg.namespace, ssl_context=context, timeout_s=REQUEST_TIMEOUT_S
        )
        return cls(
            cfg.endpoint,
            layout,
            credentials,
            namespace=cfg.namespace,
            transport=transport,
            ping_s=cfg.ping_s,
        )

    # ------------------------------------------------------------------ lifecycle
    def _log(self, message: str) -> None:
        self._on_error(message)

    async def start(self, log: Callable[[str], None] = lambda _msg: None) -> None:
        """Log in (a failure is a ``StoreError`` with one clear line), then start the
        health poll and the token renewal in the background."""
        self._on_error = log
        try:
            await self.session.login()
        except StoreError as exc:
            raise StoreError(
                f"keystore.vault: {self.session.credentials.describe()} at {self.endpoint} "
                f"failed: {exc}"
            ) from None
        self._tasks = [
            asyncio.create_task(self.health.run()),
            asyncio.create_task(self.session.run()),
        ]

    async def close(self) -> None:
        await cancel(self._tasks)
        self._tasks.clear()
        await self._transport.aclose()

    # ------------------------------------------------------------------ transport
    async def _probe(self) -> HealthReport:
        request = health_request()
        answer = await self._transport.send(request, timeout_s=STATUS_TIMEOUT_S)
        return parse_health(request, answer)

    async def _exchange(self, request: Request, token: str) -> Answer:
        try:
            answer = await self._transport.send(request, token)
        except VaultUnreachable as exc:
            self.health.mark("unreachable", str(exc))
            raise
        if answer.sealed:
            self.health.mark("sealed", f"Vault is sealed at {self.endpoint}")
        return answer

    async def _send(self, request: Request, *, relogin: bool = True) -> Answer:
        """One call with the current token; fails fast while Vault is down.

        A 403 means a revoked or expired token, so it triggers one fresh login
        and one retry, except with ``relogin=False``: for writes a 403 may also
        mean "exists" (a policy without ``update``), which the caller checks first.
        """
        self.health.check()
        token = self.session.token
        answer = await self._exchange(request, token)
        if relogin and answer.status == 403 and await self.session.refresh(token):
            answer = await self._exchange(request, self.session.token)
        return answer

    async def _exists(self, ns: Namespace, name: str) -> bool:
        read = self.layout.read(ns, name)
        return parse_exists(read, await self._send(read))

    # ------------------------------------------------------------------ Store
    async def create(self, ns: Namespace, name: str, value: bytes) -> bool:
        text = _text(value)
        request = self.layout.create(ns, name, text)
        if self.layout.version == "v2":
            created = await self._write_new(ns, name, request)
            if created is False and not await self._exists(ns, name):
                raise VaultError(
                    f"vault: {request.describe()}: only deleted versions of this entry exist; "
                    "remove them with 'vault kv metadata delete' to reuse the name"
                )
            return created
        async with self._locks.hold(ns, name):
            # KV v1 has no check-and-set: read, write, read back (see the module doc).
            if await self._exists(ns, name) or not await self._write_new(ns, name, request):
                return False
            read = self.layout.read(ns, name)
            return parse_entry(read, await self._send(read), name, "v1") == text

    async def _write_new(self, ns: Namespace, name: str, request: Request) -> bool:
        """Send a create; False when the entry exists (v2's CAS, or a refused overwrite).

        A token without ``update`` (KES's guide) makes Vault refuse to overwrite an
        entry with 403, which is "exists" when the entry is there; otherwise the 403
        was about the token, and the create is sent again after a fresh login.
        """
        answer = await self._send(request, relogin=False)
        if answer.status == 403:
            if await self._exists(ns, name):
                return False
            answer = await self._send(request)
        return parse_created(request, answer)

    async def put(self, ns: Namespace, name: str, value: bytes) -> None:
        request = self.layout.put(ns, name, _text(value))
        answer = await self._send(request, relogin=False)
        if answer.status == 403:
            if await self._exists(ns, name):
                # A token that may create but not update (KES's documented Vault
                # policy) can still replace an entry: delete, then create.
                delete = self.layout.delete(ns, name)
                expect_success(delete, await self._send(delete))
            answer = await self._send(request)
        expect_success(request, answer)

    async def get(self, ns: Namespace, name: str) -> bytes | None:
        request = self.layout.read(ns, name)
        text = parse_entry(request, await self._send(request), name, self.layout.version)
        return None if text is None else text.encode()

    async def delete(self, ns: Namespace, name: str) -> bool:
        existed = await self._exists(ns, name)
        request = self.layout.delete(ns, name)
        expect_success(request, await self._send(request))
        return existed

    async def list(self, ns: Namespace) -> list[str]:
        request = self.layout.list(ns)
        return parse_names(request, await self._send(request))

    async def status(self) -> StoreStatus:
        """A live ``sys/health`` probe: available, reachable (sealed) or unreachable."""
        began = time.perf_counter()
        report = await self.health.poll()
        latency = time.perf_counter() - began
        if report is None:
            if self.health.state == "unreachable":
                return StoreStatus("unreachable", latency)
            return StoreStatus("reachable", latency)
        return StoreStatus("available" if report.available else "reachable", latency)
