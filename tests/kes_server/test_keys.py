"""The key manager: KES cache semantics and error mapping, over real stores."""

from __future__ import annotations

import asyncio

import pytest

from kes_server.core.config import CacheConfig
from kes_server.core.errors import KeyExists, KeyNotFound, StoreUnavailable
from kes_server.keys import KeyManager
from kes_server.keystore.base import Namespace, StoreError
from kes_server.keystore.memory import MemoryStore

KEY = b"\x07" * 32


class FlakyStore(MemoryStore):
    """A memory store that can be switched to failing, like a store going away."""

    broken = False

    async def get(self, ns: Namespace, name: str) -> bytes | None:
        if self.broken:
            raise StoreError("connection refused")
        return await super().get(ns, name)

    async def status(self):  # type: ignore[no-untyped-def]
        from kes_server.keystore.base import StoreStatus

        return StoreStatus("unreachable" if self.broken else "available")


async def test_create_get_delete() -> None:
    manager = KeyManager(MemoryStore(), CacheConfig())
    await manager.create("k", KEY)
    with pytest.raises(KeyExists):
        await manager.create("k", KEY)
    assert await manager.get("k") == KEY
    await manager.delete("k")
    await manager.delete("k")  # deleting a missing key is fine
    with pytest.raises(KeyNotFound):
        await manager.get("k")


async def test_cache_serves_until_any_expiry() -> None:
    store = MemoryStore()
    hits: list[bool] = []
    manager = KeyManager(store, CacheConfig(any_s=0.2, unused_s=0), on_cache=hits.append)
    manager.start()
    try:
        await manager.create("k", KEY)
        await manager.get("k")
        await store.delete(Namespace.KEYS, "k")  # behind the manager's back (another server)
        assert await manager.get("k") == KEY  # still cached
        await asyncio.sleep(0.35)
        with pytest.raises(KeyNotFound):
            await manager.get("k")
        assert hits[:2] == [False, True]
    finally:
        await manager.stop()


async def test_unused_keys_are_evicted() -> None:
    store = MemoryStore()
    manager = KeyManager(store, CacheConfig(any_s=0, unused_s=0.2))
    manager.start()
    try:
        await manager.create("k", KEY)
        await manager.get("k")
        await store.delete(Namespace.KEYS, "k")
        await asyncio.sleep(0.35)  # two sweeps without use
        with pytest.raises(KeyNotFound):
            await manager.get("k")
    finally:
        await manager.stop()


async def test_store_failure_is_502_and_logged() -> None:
    store = FlakyStore()
    errors: list[str] = []
    manager = KeyManager(store, CacheConfig(any_s=0, unused_s=0), on_error=errors.append)
    await manager.create("k", KEY)
    store.broken = True
    with pytest.raises(StoreUnavailable) as info:
        await manager.get("k")
    assert info.value.status == 502
    assert info.value.message == "bad gateway: failed to access key"
    assert errors and "connection refused" in errors[0]
    assert "\x07" not in errors[0]
