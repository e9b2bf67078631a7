"""A store wrapper that feeds the key store latency and error metrics.

Wrapping keeps every backend free of metrics code: a new backend is measured
the moment it is opened through ``build_state``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kes_server.keystore.base import Namespace, Store, StoreError, StoreStatus

__all__ = ["MeteredStore"]

T = TypeVar("T")


class MeteredStore(Store):
    def __init__(
        self,
        inner: Store,
        *,
        observe: Callable[[float], None],
        failed: Callable[[], None],
    ) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.location = inner.location
        self._observe = observe
        self._failed = failed

    async def _timed(self, call: Awaitable[T]) -> T:
        start = time.perf_counter()
        try:
            return await call
        except StoreError:
            self._failed()
            raise
        finally:
            self._observe(time.perf_counter() - start)

    async def create(self, ns: Namespace, name: str, value: bytes) -> bool:
        return await self._timed(self.inner.create(ns, name, value))

    async def put(self, ns: Namespace, name: str, value: bytes) -> None:
        await self._timed(self.inner.put(ns, name, value))

    async def get(self, ns: Namespace, name: str) -> bytes | None:
        return await self._timed(self.inner.get(ns, name))

    async def delete(self, ns: Namespace, name: str) -> bool:
        return await self._timed(self.inner.delete(ns, name))

    async def list(self, ns: Namespace) -> list[str]:
        return await self._timed(self.inner.list(ns))

    async def status(self) -> StoreStatus:
        return await self.inner.status()

    async def start(self, log: Callable[[str], None]) -> None:
        await self.inner.start(log)

    async def close(self) -> None:
        await self.inner.close()
