"""The key store interface: where master keys, policies and identity bindings live.

A store is a small namespaced byte map. Keeping it this small is deliberate:
a new backend (etcd, ...) is one module, and the semantics KES needs are all
expressible with these operations:

* ``create`` is create-if-absent (returns False when the name exists), the one
  atomic primitive several servers sharing a store rely on;
* ``get`` returns None for a missing entry, ``delete`` returns whether
  something was removed (deleting a missing key is not an error in KES);
* every I/O failure is raised as ``StoreError`` so the API can answer 502 with
  the operation's KES message, and never as a half-written entry.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = ["Namespace", "Store", "StoreError", "StoreStatus", "StoreUnreachable"]


class Namespace(StrEnum):
    """What an entry is; each namespace is an independent set of names."""

    KEYS = "keys"
    POLICIES = "policies"
    IDENTITIES = "identities"


class StoreError(Exception):
    """The store failed (I/O error, corrupt entry, unexpected answer)."""


class StoreUnreachable(StoreError):
    """The store could not be reached at all (answered as 503, not 502)."""


@dataclass(frozen=True)
class StoreStatus:
    state: Literal["available", "reachable", "unreachable"]
    latency_s: float = 0.0


class Store(abc.ABC):
    """Async, namespaced byte storage. Implementations must be safe to share."""

    #: Short human name for the banner and docs ("in-memory", "filesystem", "etcd").
    kind: str = ""
    #: Where it stores (a path, endpoints); shown in the banner.
    location: str = ""

    @abc.abstractmethod
    async def create(self, ns: Namespace, name: str, value: bytes) -> bool:
        """Store ``value`` unless ``name`` exists; True when it was created."""

    @abc.abstractmethod
    async def put(self, ns: Namespace, name: str, value: bytes) -> None:
        """Create or replace (policies and bindings; never used for keys)."""

    @abc.abstractmethod
    async def get(self, ns: Namespace, name: str) -> bytes | None:
        """The stored value, or None when there is no such entry."""

    @abc.abstractmethod
    async def delete(self, ns: Namespace, name: str) -> bool:
        """Remove an entry; True when something was removed."""

    @abc.abstractmethod
    async def list(self, ns: Namespace) -> list[str]:
        """All names in a namespace (unordered)."""

    @abc.abstractmethod
    async def status(self) -> StoreStatus:
        """Probe the store for /v1/status."""

    async def start(self, log: Callable[[str], None]) -> None:  # noqa: B027 - optional hook
        """Connect (log in) and start background work before the server serves.

        Raise ``StoreError`` with one line for the operator when the store
        cannot be used; ``log`` takes error-log lines about later background
        trouble. Local stores need nothing.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default store has none."""
