"""Access control over a real store: API changes win over a refresh already in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kes_server.access import AccessControl
from kes_server.core.policy import Policy
from kes_server.keystore.base import Namespace
from tests.support.stores import PausingStore

ROOT = "a" * 64
APP = "b" * 64
PATH = "/v1/key/generate/k"


@pytest.fixture(name="store")
def _store() -> PausingStore:
    return PausingStore()


@pytest.fixture(name="access")
async def _access(store: PausingStore) -> AsyncIterator[AccessControl]:
    access = AccessControl(store, root=ROOT)
    await access.write_policy("app", Policy(allow=(PATH,)), ROOT)
    await access.assign("app", APP, ROOT)
    assert access.decide(APP, PATH).allowed
    yield access


async def _during_refresh(
    store: PausingStore, access: AccessControl, ns: Namespace, change: Callable[[], Awaitable[None]]
) -> None:
    """Run ``change`` while a refresh holds the store's state from before it."""
    store.pause("get", ns)
    refresh = asyncio.create_task(access.reload())
    await store.paused.wait()
    await change()
    store.resume()
    await refresh


async def test_forget_during_a_refresh_sticks(store: PausingStore, access: AccessControl) -> None:
    await _during_refresh(store, access, Namespace.IDENTITIES, lambda: access.forget(APP))
    assert not access.decide(APP, PATH).allowed
    assert APP not in [b.identity for b in access.list_identities()]


async def test_policy_delete_during_a_refresh_sticks(
    store: PausingStore, access: AccessControl
) -> None:
    await _during_refresh(store, access, Namespace.IDENTITIES, lambda: access.delete_policy("app"))
    assert not access.decide(APP, PATH).allowed
    assert access.list_policies() == []


async def test_policy_write_during_a_refresh_sticks(
    store: PausingStore, access: AccessControl
) -> None:
    async def change() -> None:
        await access.write_policy("app", Policy(deny=(PATH,)), ROOT)  # revoke by rewriting
        await access.write_policy("new", Policy(allow=("/v1/status",)), ROOT)

    await _during_refresh(store, access, Namespace.POLICIES, change)
    assert not access.decide(APP, PATH).allowed
    assert access.read_policy("new").policy == Policy(allow=("/v1/status",))


async def test_assign_during_a_refresh_sticks(store: PausingStore, access: AccessControl) -> None:
    other = "c" * 64
    await _during_refresh(
        store, access, Namespace.IDENTITIES, lambda: access.assign("app", other, ROOT)
    )
    assert access.decide(other, PATH).allowed


async def test_a_refresh_still_sees_other_servers_changes(
    store: PausingStore, access: AccessControl
) -> None:
    await store.delete(Namespace.IDENTITIES, APP)  # another server forgot APP
    await access.reload()
    assert not access.decide(APP, PATH).allowed
