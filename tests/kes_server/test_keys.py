"""The key manager: KES cache semantics and error mapping, over real stores."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from kes_server.core.config import CacheConfig
from kes_server.core.errors import APIError, KeyExists, KeyNotFound, StoreUnavailable
from kes_server.keys import KeyManager
from kes_server.keystore.base import Namespace, StoreError, StoreUnreachable
from kes_server.keystore.memory import MemoryStore
from tests.support.stores import FlakyStore, PausingStore

KEY = b"\x07" * 32


async def _still_cached(manager: KeyManager, name: str) -> bool:
    """For a key deleted from the store behind the manager: is it still served?"""
    try:
        await manager.get(name)
    except KeyNotFound:
        return False
    return True


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
    manager = KeyManager(store, CacheConfig(any_s=0.05, unused_s=0), on_cache=hits.append)
    await manager.create("k", KEY)
    await manager.get("k")
    await store.delete(Namespace.KEYS, "k")  # behind the manager's back (another server)
    assert await manager.get("k") == KEY  # still cached
    assert hits == [False, True]
    manager.start()
    try:
        async with asyncio.timeout(10):  # until the `any` timer empties the cache
            while await _still_cached(manager, "k"):
                await asyncio.sleep(0.01)
    finally:
        await manager.stop()


async def test_unused_keys_are_evicted_after_two_sweeps() -> None:
    """A sweep runs every unused/2: a key unused between two sweeps is dropped."""
    store = MemoryStore()
    manager = KeyManager(store, CacheConfig(any_s=0, unused_s=30))
    await manager.create("k", KEY)
    await manager.get("k")
    await store.delete(Namespace.KEYS, "k")
    manager.sweep_unused()
    assert await manager.get("k") == KEY  # used since the last sweep: kept
    manager.sweep_unused()
    manager.sweep_unused()
    with pytest.raises(KeyNotFound):
        await manager.get("k")


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


async def test_offline_cache_serves_for_at_most_offline() -> None:
    """cache.expiry.offline: cached keys outlive the cache while the store is down."""
    store = FlakyStore()
    now = [0.0]
    manager = KeyManager(
        store, CacheConfig(any_s=0, unused_s=0, offline_s=60), clock=lambda: now[0]
    )
    await manager.create("k", KEY)
    await manager.create("never-read", KEY)
    await manager.get("k")
    store.broken = True
    await manager.probe()  # the store is down: what is cached is kept for offline use
    manager.clear()  # the `any` expiry empties the live cache
    assert await manager.get("k") == KEY
    with pytest.raises(StoreUnavailable):
        await manager.get("never-read")  # only keys cached before the outage
    now[0] = 59.0
    assert await manager.get("k") == KEY
    now[0] = 61.0  # the bound holds between two probes (10 s apart) too
    with pytest.raises(StoreUnavailable):
        await manager.get("k")
    store.broken = False
    await manager.probe()  # back: served from the store again
    assert await manager.get("k") == KEY


async def test_store_back_before_offline_expiry_drops_the_offline_copy() -> None:
    store = FlakyStore()
    manager = KeyManager(store, CacheConfig(any_s=0, unused_s=0, offline_s=60))
    await manager.create("k", KEY)
    await manager.get("k")
    store.broken = True
    await manager.probe()
    store.broken = False
    await manager.probe()  # the store is back: both caches are emptied
    await store.delete(Namespace.KEYS, "k")
    store.broken = True
    with pytest.raises(StoreUnavailable):
        await manager.get("k")


async def test_a_get_in_flight_never_caches_a_deleted_key() -> None:
    """Issue 13.3: a get that read the key before a delete must not cache it after."""
    store = PausingStore()
    manager = KeyManager(store, CacheConfig())
    await manager.create("k", KEY)
    store.pause("get", Namespace.KEYS)
    reader = asyncio.create_task(manager.get("k"))
    await store.paused.wait()  # the get holds the key it read
    await manager.delete("k")
    store.resume()
    assert await reader == KEY  # it started before the delete: either answer is fair
    with pytest.raises(KeyNotFound):
        await manager.get("k")


async def test_a_get_during_a_delete_never_outlives_it() -> None:
    """A get that starts while the delete is still at the store reads the old key."""
    store = PausingStore()
    manager = KeyManager(store, CacheConfig())
    await manager.create("k", KEY)
    await manager.get("k")
    store.pause("delete", Namespace.KEYS)
    deleting = asyncio.create_task(manager.delete("k"))
    await store.paused.wait()  # the key is still in the store
    assert await manager.get("k") == KEY
    store.resume()
    await deleting
    with pytest.raises(KeyNotFound):
        await manager.get("k")


INTERNALS = "etcd: no endpoint answered: https://10.1.2.3:2379 (/kes/keys/k)"


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (StoreUnreachable(INTERNALS), 503, "key store is not reachable"),
        (StoreError(INTERNALS), 502, None),
    ],
    ids=["unreachable", "failed"],
)
async def test_store_errors_keep_internals_in_the_error_log(
    error: StoreError, status: int, message: str | None
) -> None:
    """Issue 13.10: endpoints and paths go to the error log, never to the client."""
    store = FlakyStore()
    errors: list[str] = []
    manager = KeyManager(store, CacheConfig(any_s=0, unused_s=0), on_error=errors.append)
    await manager.create("k", KEY)
    store.broken, store.error = True, error
    operations: list[tuple[Callable[[], Awaitable[object]], str]] = [
        (lambda: manager.create("n", KEY), "bad gateway: failed to create key"),
        (lambda: manager.get("k"), "bad gateway: failed to access key"),
        (lambda: manager.delete("k"), "bad gateway: failed to delete key"),
        (manager.list, "bad gateway: failed to list keys"),
    ]
    for call, failed in operations:
        errors.clear()
        with pytest.raises(APIError) as info:
            await call()
        assert (info.value.status, info.value.message) == (status, message or failed)
        assert "10.1.2.3" not in str(info.value)
        assert len(errors) == 1 and INTERNALS in errors[0]
