"""The production key stores in the bench: Vault (a real OpenBao) and AWS (moto).

Two things are measured per store (issue 15):

* warm: generate through a kes-server whose key cache holds the key, next to the same
  server on the in-memory store (the target: within 10%);
* cold: what a cache miss costs, i.e. the store itself: create, get and delete of
  fresh keys straight through the ``Store`` interface kes-server uses, from this
  process (p50/p99 of each operation), and create/delete through the server.

The launchers are the test suite's (tests/support/vault.py, tests/support/moto.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kes_server.core.config import load_config
from kes_server.keystore.base import Namespace
from kes_server.server import open_store

__all__ = ["STORES", "aws_section", "store_ops", "vault_section"]

#: (result id prefix, label) of each store measured.
STORES = (("vault", "Vault (OpenBao, KV v2, AppRole)"), ("aws", "AWS Secrets Manager (moto)"))
#: Fresh keys per operation for the cold rows.
COLD_OPS = 200


@contextlib.contextmanager
def vault_section(work: Path) -> Iterator[dict[str, Any]]:
    """A running OpenBao and the ``keystore.vault`` section for it."""
    from tests.support.vault import openbao

    with openbao(work / "openbao") as bao:
        yield {
            "endpoint": bao.addr,
            "engine": "kv2",
            "version": "v2",
            "prefix": "bench",
            "approle": {"id": bao.role.id, "secret": bao.role.secret, "retry": "1s"},
        }


@contextlib.contextmanager
def aws_section(work: Path) -> Iterator[dict[str, Any]]:
    """A running moto server and the ``keystore.aws`` section for it."""
    from tests.support.moto import start_moto, store_config

    with start_moto(work / "moto") as moto:
        yield store_config(moto)["aws"]


def store_ops(keystore: dict[str, Any], n: int = COLD_OPS) -> dict[str, dict[str, float]]:
    """p50/p99 (ms) of create, get and delete of ``n`` fresh keys, straight on the store."""
    import yaml

    cfg = load_config(yaml.safe_dump({"keystore": keystore}), os.environ)

    async def run() -> dict[str, list[float]]:
        store = open_store(cfg)
        await store.start(lambda _text: None)
        times: dict[str, list[float]] = {"create": [], "get": [], "delete": []}
        value = b'{"bytes":"' + b"A" * 43 + b'="}'
        try:
            for i in range(n):
                name = f"cold-{os.getpid()}-{i}"
                for op, call in (
                    ("create", store.create(Namespace.KEYS, name, value)),
                    ("get", store.get(Namespace.KEYS, name)),
                    ("delete", store.delete(Namespace.KEYS, name)),
                ):
                    began = time.perf_counter()
                    await call
                    times[op].append((time.perf_counter() - began) * 1000)
        finally:
            await store.close()
        return times

    out: dict[str, dict[str, float]] = {}
    for op, values in asyncio.run(run()).items():
        values.sort()
        out[op] = {
            "p50_ms": statistics.median(values),
            "p99_ms": values[min(len(values) - 1, int(len(values) * 0.99))],
        }
    return out
