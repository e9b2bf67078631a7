"""Access control over a real store: API changes win over a refresh already in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kes_server.access import AccessControl
from kes_server.core.errors import APIError
from kes_server.core.policy import Policy
from kes_server.keystore.base import Namespace, StoreError, StoreUnreachable
from tests.support.stores import FlakyStore, PausingStore

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


INTERNALS = "etcd: no endpoint answered: https://10.1.2.3:2379 (/kes/policies/app)"


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
    access = AccessControl(store, root=ROOT, on_error=errors.append)
    await access.write_policy("app", Policy(allow=(PATH,)), ROOT)
    await access.assign("app", APP, ROOT)
    store.broken, store.error = True, error
    operations: list[tuple[Callable[[], Awaitable[None]], str]] = [
        (lambda: access.write_policy("x", Policy(), ROOT), "bad gateway: failed to write policy"),
        (lambda: access.assign("app", "c" * 64, ROOT), "bad gateway: failed to assign identity"),
        (lambda: access.forget(APP), "bad gateway: failed to forget identity"),
        (lambda: access.delete_policy("app"), "bad gateway: failed to delete policy"),
    ]
    for call, failed in operations:
        errors.clear()
        with pytest.raises(APIError) as info:
            await call()
        assert (info.value.status, info.value.message) == (status, message or failed)
        assert "10.1.2.3" not in str(info.value)
        assert len(errors) == 1 and INTERNALS in errors[0]
