"""The in-memory store: the default when no ``keystore`` is configured.

Everything is lost on restart, exactly as in KES; useful for tests and demos.
"""

from __future__ import annotations

from kes_server.keystore.base import Namespace, Store, StoreStatus

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    kind = "in-memory"
    location = "memory"

    def __init__(self) -> None:
        self._data: dict[Namespace, dict[str, bytes]] = {ns: {} for ns in Namespace}

    async def create(self, ns: Namespace, name: str, value: bytes) -> bool:
        space = self._data[ns]
        if name in space:
            return False
        space[name] = value
        return True

    async def put(self, ns: Namespace, name: str, value: bytes) -> None:
        self._data[ns][name] = value

    async def get(self, ns: Namespace, name: str) -> bytes | None:
        return self._data[ns].get(name)

    async def delete(self, ns: Namespace, name: str) -> bool:
        return self._data[ns].pop(name, None) is not None

    async def list(self, ns: Namespace) -> list[str]:
        return list(self._data[ns])

    async def status(self) -> StoreStatus:
        return StoreStatus("available")
