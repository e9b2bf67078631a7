"""The key manager: master keys from the store, behind the KES cache.

The cache follows KES semantics (configuration guide, "Cache Configuration"):

* ``any``: the whole cache is emptied every ``any`` seconds, bounding how long
  the server acts without asking the store;
* ``unused``: a sweep every ``unused/2`` drops keys not used since the previous
  sweep, so an idle key leaves memory after at most ``unused``;
* ``offline``: while the store is not available (probed every 10 s), keys
  already cached keep serving reads for at most ``offline``; when it is back,
  the caches are cleared.

Create never fills the cache; get does; delete evicts. Store failures become
the KES 502 errors with the operation's message.

A deleted key is never served again by this process: a ``get`` that read the
key from the store before a ``delete`` finished may still answer with it (the
two requests overlapped), but it only fills the cache when no delete finished
while it was reading. Other workers and servers may serve a key from their
own cache until it expires there (docs/decisions/deleted-keys.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from kes_server.background import cancel
from kes_server.core.config import CacheConfig
from kes_server.core.errors import KeyExists, KeyNotFound, StoreUnavailable
from kes_server.core.keyfile import decode_key, encode_key
from kes_server.keystore.base import Namespace, Store, StoreError
from kes_server.keystore.failure import store_failure

__all__ = ["KeyManager"]

OFFLINE_PROBE_S = 10.0


@dataclass
class _Entry:
    key: bytes
    used: bool = True


class KeyManager:
    """Create, fetch, delete and list master keys with caching."""

    def __init__(
        self,
        store: Store,
        cache: CacheConfig,
        *,
        on_error: Callable[[str], None] | None = None,
        on_cache: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.config = cache
        self._live: dict[str, _Entry] = {}
        self._offline: dict[str, bytes] = {}
        self._offline_since: float | None = None
        #: Deletes finished so far: a get only caches what it read if none finished meanwhile.
        self._deletions = 0
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._on_error = on_error or (lambda _msg: None)
        self._on_cache = on_cache or (lambda _hit: None)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.config.any_s > 0:
            self._tasks.append(asyncio.create_task(self._every(self.config.any_s, self.clear)))
        if self.config.unused_s > 0:
            self._tasks.append(
                asyncio.create_task(self._every(self.config.unused_s / 2, self.sweep_unused))
            )
        if self.config.offline_s > 0:
            self._tasks.append(asyncio.create_task(self._every(OFFLINE_PROBE_S, self.probe)))

    async def stop(self) -> None:
        await cancel(self._tasks)
        self._tasks.clear()

    @staticmethod
    async def _every(period: float, action: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(period)
            result = action()
            if asyncio.iscoroutine(result):
                await result

    def clear(self) -> None:
        """The ``any`` expiry: empty the cache."""
        self._live.clear()

    def sweep_unused(self) -> None:
        """The ``unused`` expiry (every ``unused/2``): drop keys unused since the last sweep."""
        for name in [n for n, e in self._live.items() if not e.used]:
            del self._live[name]
        for entry in self._live.values():
            entry.used = False

    async def probe(self) -> None:
        """The ``offline`` expiry (every ``OFFLINE_PROBE_S``): track the store's availability.

        When the store goes away the cached keys are kept aside for ``offline``
        seconds; when it is back, both caches are emptied.
        """
        try:
            state = (await self.store.status()).state
        except StoreError:
            state = "unreachable"
        now = self._clock()
        if state != "available":
            if self._offline_since is None:
                self._offline = {n: e.key for n, e in self._live.items()}
                self._offline_since = now
            elif now - self._offline_since > self.config.offline_s:
                self._offline.clear()
        elif self._offline_since is not None:
            self._offline.clear()
            self._offline_since = None
            self._live.clear()

    def _offline_copy(self, name: str) -> bytes | None:
        """The key as cached when the store went away, for at most ``offline`` seconds.

        Checked here, not only by the next probe, so the bound is exact.
        """
        since = self._offline_since
        if since is None or self._clock() - since > self.config.offline_s:
            return None
        return self._offline.get(name)

    # ------------------------------------------------------------------ operations
    async def create(self, name: str, key: bytes) -> None:
        try:
            created = await self.store.create(Namespace.KEYS, name, encode_key(key))
        except StoreError as exc:
            raise store_failure(exc, "failed to create key", self._on_error, name) from exc
        if not created:
            raise KeyExists()

    async def get(self, name: str) -> bytes:
        entry = self._live.get(name)
        if entry is not None:
            entry.used = True
            self._on_cache(True)
            return entry.key
        self._on_cache(False)
        deletions = self._deletions
        try:
            data = await self.store.get(Namespace.KEYS, name)
        except StoreError as exc:
            offline = self._offline_copy(name)
            if offline is not None:
                return offline
            raise store_failure(exc, "failed to access key", self._on_error, name) from exc
        if data is None:
            raise KeyNotFound()
        try:
            key = decode_key(data)
        except ValueError as exc:
            self._on_error(f"keystore: key '{name}' is corrupt: {exc}")
            raise StoreUnavailable("bad gateway: failed to access key") from exc
        if deletions == self._deletions:
            self._live[name] = _Entry(key)
        return key

    async def delete(self, name: str) -> None:
        self._evict(name)
        try:
            await self.store.delete(Namespace.KEYS, name)
        except StoreError as exc:
            raise store_failure(exc, "failed to delete key", self._on_error, name) from exc
        finally:
            # Whatever a get cached while the delete was at the store goes, and
            # a get still reading will not cache (it sees the count change).
            self._evict(name)
            self._deletions += 1

    def _evict(self, name: str) -> None:
        self._live.pop(name, None)
        self._offline.pop(name, None)

    async def list(self) -> list[str]:
        try:
            return await self.store.list(Namespace.KEYS)
        except StoreError as exc:
            raise store_failure(exc, "failed to list keys", self._on_error) from exc
