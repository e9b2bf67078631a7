"""In-process stores for unit tests of the layers above the store.

Both are a real :class:`MemoryStore` with one switch, so the code under test
runs unchanged: ``FlakyStore`` fails like a store that went away, and
``PausingStore`` holds one read after it has read its value, so a test can
change the store while a caller has the old value in hand (the races of
issue 13: a refresh or a cache fill that started before a write).
"""

from __future__ import annotations

import asyncio
from typing import Literal

from kes_server.keystore.base import Namespace, StoreError, StoreStatus
from kes_server.keystore.memory import MemoryStore

__all__ = ["FlakyStore", "PausingStore"]


class FlakyStore(MemoryStore):
    """A memory store that can be switched to failing, like a store going away.

    While ``broken``, every operation raises ``error`` and the status probe
    says unreachable.
    """

    broken = False
    error: StoreError = StoreError("connection refused")

    def _check(self) -> None:
        if self.broken:
            raise self.error

    async def create(self, ns: Namespace, name: str, value: bytes) -> bool:
        self._check()
        return await super().create(ns, name, value)

    async def put(self, ns: Namespace, name: str, value: bytes) -> None:
        self._check()
        await super().put(ns, name, value)

    async def get(self, ns: Namespace, name: str) -> bytes | None:
        self._check()
        return await super().get(ns, name)

    async def delete(self, ns: Namespace, name: str) -> bool:
        self._check()
        return await super().delete(ns, name)

    async def list(self, ns: Namespace) -> list[str]:
        self._check()
        return await super().list(ns)

    async def status(self) -> StoreStatus:
        return StoreStatus("unreachable" if self.broken else "available")


class PausingStore(MemoryStore):
    """A memory store that can hold its next ``get`` or ``delete`` where races bite.

    ``pause(op, ns)`` arms it once: a ``get`` in ``ns`` reads its value and then
    waits (the caller holds a value that may be about to change); a
    ``delete`` waits before it deletes (the entry is still there). Either
    sets ``paused`` and waits until ``resume()``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._armed: tuple[Literal["get", "delete"], Namespace] | None = None
        self.paused = asyncio.Event()
        self._resume = asyncio.Event()

    def pause(self, op: Literal["get", "delete"], ns: Namespace) -> None:
        self._armed = (op, ns)

    def resume(self) -> None:
        self._resume.set()

    async def _hold(self, op: Literal["get", "delete"], ns: Namespace) -> None:
        if self._armed == (op, ns):
            self._armed = None
            self.paused.set()
            await self._resume.wait()

    async def get(self, ns: Namespace, name: str) -> bytes | None:
        value = await super().get(ns, name)
        await self._hold("get", ns)
        return value

    async def delete(self, ns: Namespace, name: str) -> bool:
        await self._hold("delete", ns)
        return await super().delete(ns, name)
