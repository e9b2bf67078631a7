"""Who may call what: root, TLS proxies, policies and identity bindings.

KES v0.17 keeps policies and bindings made through the API in memory only. We
keep them in the key store instead (a deliberate improvement, see
docs/decisions/persisted-policies.md), so that every server sharing a store
enforces the same rules and a restart keeps them:

* at start-up the config file's policies and bindings are written into the
  store (the file is re-applied on every start);
* the API reads and writes the store; this server sees its own changes at
  once (the next request), other servers within ``REFRESH_S`` seconds.

A refresh reads the whole store and then replaces the in-memory maps. An API
change that lands while a refresh is reading (its snapshot may predate the
change) is recorded in that refresh's ``_Changes`` and re-applied on top of
the snapshot, so a revocation is immediate and sticks: a forgotten identity
or a deleted policy never comes back from a refresh that started earlier.

The evaluation order (spec §3.2) is ``kes_server.core.policy.decide``'s, the
same function the console uses to explain a decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from kes_server.background import cancel
from kes_server.core.config import Config
from kes_server.core.errors import (
    InvalidArgument,
    NotAllowed,
    PolicyNotFound,
)
from kes_server.core.policy import Decision, Policy, decide
from kes_server.keystore.base import Namespace, Store, StoreError, StoreUnreachable
from kes_server.keystore.failure import store_failure

__all__ = ["REFRESH_S", "AccessControl", "Binding", "StoredPolicy"]

#: How often the store is re-read for changes made by other servers.
REFRESH_S = 5.0

_IDENTITY_CHARS = frozenset("0123456789abcdefABCDEF_-ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class StoredPolicy:
    policy: Policy
    created_at: str = ""
    created_by: str = ""

    def encode(self) -> bytes:
        body = {
            **self.policy.to_json(),
            "created_at": self.created_at,
            "created_by": self.created_by,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> StoredPolicy:
        obj = json.loads(data)
        return cls(
            policy=Policy(allow=tuple(obj.get("allow") or ()), deny=tuple(obj.get("deny") or ())),
            created_at=str(obj.get("created_at", "")),
            created_by=str(obj.get("created_by", "")),
        )


@dataclass(frozen=True)
class Binding:
    identity: str
    policy: str
    created_at: str = ""
    created_by: str = ""

    def encode(self) -> bytes:
        body = {"policy": self.policy, "created_at": self.created_at, "created_by": self.created_by}
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, identity: str, data: bytes) -> Binding:
        obj = json.loads(data)
        return cls(
            identity=identity,
            policy=str(obj.get("policy", "")),
            created_at=str(obj.get("created_at", "")),
            created_by=str(obj.get("created_by", "")),
        )


@dataclass
class _Changes:
    """API changes made while one refresh was reading the store (``None``: removed)."""

    policies: dict[str, StoredPolicy | None] = field(default_factory=dict)
    bindings: dict[str, Binding | None] = field(default_factory=dict)


_V = TypeVar("_V")


def _set(target: dict[str, _V], name: str, value: _V | None) -> None:
    if value is None:
        target.pop(name, None)
    else:
        target[name] = value


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def check_identity(identity: str) -> None:
    """Identities in API paths: non-empty, name characters only (so a store key is safe)."""
    if not identity:
        raise InvalidArgument("identity is unknown")
    if len(identity) > 255 or not set(identity) <= _IDENTITY_CHARS:
        raise InvalidArgument("invalid argument: identity contains invalid character")


def _from_config(config: Config) -> tuple[dict[str, StoredPolicy], dict[str, Binding]]:
    """The config file's policies and bindings, as stored (raises for a bad identity)."""
    now = _now()
    policies: dict[str, StoredPolicy] = {}
    bindings: dict[str, Binding] = {}
    for pc in config.policies:
        policies[pc.name] = StoredPolicy(pc.policy, now, "config")
        for identity in pc.identities:
            check_identity(identity)
            bindings[identity] = Binding(identity, pc.name, now, "config")
    return policies, bindings


class AccessControl:
    """The authorisation state of one server, backed by the store."""

    def __init__(
        self,
        store: Store,
        *,
        root: str,
        proxies: tuple[str, ...] = (),
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.root = root
        self.proxies = frozenset(proxies)
        self.policies: dict[str, StoredPolicy] = {}
        self.bindings: dict[str, Binding] = {}
        #: The config file's entries, while the store was unreachable to take them.
        self._pending: tuple[dict[str, StoredPolicy], dict[str, Binding]] | None = None
        self._in_flight: list[_Changes] = []  # one per refresh that is reading
        self._task: asyncio.Task[None] | None = None
        self._on_error = on_error or (lambda _msg: None)
        self._listeners: set[Callable[[], None]] = set()

    # ------------------------------------------------------------------ lifecycle
    async def apply_config(self, config: Config) -> None:
        """Write the config file's policies and bindings into the store, then load.

        A store that cannot be reached at all does not stop the start: the
        server enforces the file's policies meanwhile and the refresh loop
        writes them and loads the store's as soon as it answers (KES itself
        starts without contacting a remote store). Any other store error does.
        """
        policies, bindings = _from_config(config)
        try:
            await self._store_all(policies, bindings)
            await self.reload()
        except StoreUnreachable as exc:
            self.policies, self.bindings = policies, bindings
            self._changed()
            self._pending = (policies, bindings)
            self._on_error(
                "keystore: not reachable at start, enforcing the config file's policies "
                f"until it is: {exc}"
            )

    async def _store_all(
        self, policies: dict[str, StoredPolicy], bindings: dict[str, Binding]
    ) -> None:
        for name, stored in policies.items():
            await self.store.put(Namespace.POLICIES, name, stored.encode())
        for identity, binding in bindings.items():
            await self.store.put(Namespace.IDENTITIES, identity, binding.encode())

    async def reload(self) -> None:
        """Re-read every policy and binding from the store.

        API changes made meanwhile win over what was read (module docstring).
        """
        changes = _Changes()
        self._in_flight.append(changes)
        try:
            policies: dict[str, StoredPolicy] = {}
            for name in await self.store.list(Namespace.POLICIES):
                data = await self.store.get(Namespace.POLICIES, name)
                if data is not None:
                    with contextlib.suppress(ValueError):
                        policies[name] = StoredPolicy.decode(data)
            bindings: dict[str, Binding] = {}
            for identity in await self.store.list(Namespace.IDENTITIES):
                data = await self.store.get(Namespace.IDENTITIES, identity)
                if data is not None:
                    with contextlib.suppress(ValueError):
                        bindings[identity] = Binding.decode(identity, data)
        finally:
            self._in_flight.remove(changes)
        for name, stored in changes.policies.items():
            _set(policies, name, stored)
        for identity, binding in changes.bindings.items():
            _set(bindings, identity, binding)
        self.policies, self.bindings = policies, bindings
        self._changed()

    def _set_policy(self, name: str, stored: StoredPolicy | None) -> None:
        """Apply an API change here and to every refresh still reading."""
        _set(self.policies, name, stored)
        for changes in self._in_flight:
            changes.policies[name] = stored

    def _set_binding(self, identity: str, binding: Binding | None) -> None:
        _set(self.bindings, identity, binding)
        for changes in self._in_flight:
            changes.bindings[identity] = binding

    def start(self) -> None:
        self._task = asyncio.create_task(self._refresh_loop())

    async def stop(self) -> None:
        await cancel([self._task])
        self._task = None

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                if self._pending is not None:
                    await self._store_all(*self._pending)
                    self._pending = None
                await self.reload()
            except StoreError as exc:
                self._on_error(f"keystore: failed to refresh policies: {exc}")

    # ------------------------------------------------------------------ decisions
    def is_root(self, identity: str) -> bool:
        return bool(identity) and identity == self.root

    def decide(self, identity: str, path: str) -> Decision:
        """Whether ``identity`` may call ``path``, and which rule said so."""
        return decide(identity, path, root=self.root, assigned=self._assigned, rules=self._rules)

    def _assigned(self, identity: str) -> str | None:
        binding = self.bindings.get(identity)
        return None if binding is None else binding.policy

    def _rules(self, name: str) -> Policy | None:
        stored = self.policies.get(name)
        return None if stored is None else stored.policy

    def allows(self, identity: str, path: str, v017_path: str | None = None) -> bool:
        """Whether ``identity`` may call ``path`` (and the v0.17 path an alias stands for)."""
        if not self.decide(identity, path).allowed:
            return False
        return v017_path is None or self.decide(identity, v017_path).allowed

    def authorize(self, identity: str, path: str, v017_path: str | None = None) -> None:
        if not self.allows(identity, path, v017_path):
            raise NotAllowed()

    # ------------------------------------------------------------------ change listeners
    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every change of policies or bindings (e.g. to end a
        trace stream its caller may no longer read)."""
        self._listeners.add(callback)

    def off_change(self, callback: Callable[[], None]) -> None:
        self._listeners.discard(callback)

    def _changed(self) -> None:
        for callback in list(self._listeners):
            callback()

    # ------------------------------------------------------------------ policy API
    async def write_policy(self, name: str, policy: Policy, caller: str) -> None:
        stored = StoredPolicy(policy, _now(), caller)
        try:
            await self.store.put(Namespace.POLICIES, name, stored.encode())
        except StoreError as exc:
            raise store_failure(exc, "failed to write policy", self._on_error, name) from exc
        self._set_policy(name, stored)
        self._changed()

    def read_policy(self, name: str) -> StoredPolicy:
        stored = self.policies.get(name)
        if stored is None:
            raise PolicyNotFound()
        return stored

    def list_policies(self) -> list[str]:
        return sorted(self.policies)

    async def delete_policy(self, name: str) -> None:
        """Delete a policy and unassign every identity bound to it (spec §2.15)."""
        try:
            await self.store.delete(Namespace.POLICIES, name)
            self._set_policy(name, None)
            for identity in [i for i, b in self.bindings.items() if b.policy == name]:
                await self.store.delete(Namespace.IDENTITIES, identity)
                self._set_binding(identity, None)
        except StoreError as exc:
            raise store_failure(exc, "failed to delete policy", self._on_error, name) from exc
        finally:
            self._changed()

    # ------------------------------------------------------------------ identity API
    async def assign(self, policy: str, identity: str, caller: str) -> None:
        """Bind ``identity`` to ``policy``; checks in the order of spec §2.16."""
        check_identity(identity)
        if identity == self.root:
            raise InvalidArgument("identity is root")
        if identity == caller:
            raise NotAllowed("identity cannot assign policy to itself")
        if identity in self.proxies:
            raise InvalidArgument("identity is a TLS proxy")
        if policy not in self.policies:
            raise PolicyNotFound()
        binding = Binding(identity, policy, _now(), caller)
        try:
            await self.store.put(Namespace.IDENTITIES, identity, binding.encode())
        except StoreError as exc:
            raise store_failure(exc, "failed to assign identity", self._on_error) from exc
        self._set_binding(identity, binding)
        self._changed()

    async def forget(self, identity: str) -> None:
        check_identity(identity)
        if identity == self.root:
            raise InvalidArgument("identity is root")
        try:
            await self.store.delete(Namespace.IDENTITIES, identity)
        except StoreError as exc:
            raise store_failure(exc, "failed to forget identity", self._on_error) from exc
        self._set_binding(identity, None)
        self._changed()

    def list_identities(self) -> list[Binding]:
        return sorted(self.bindings.values(), key=lambda b: b.identity)
