"""Both local stores obey one contract; the fs store adds crash safety and permissions."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kes_server.core.keyfile import decode_key, encode_key
from kes_server.keystore.base import Namespace, Store, StoreError
from kes_server.keystore.fs import FSStore
from kes_server.keystore.memory import MemoryStore


def _fs(tmp_path: Path) -> Store:
    store = FSStore(tmp_path / "keys")
    store.open()
    return store


FACTORIES: list[Callable[[Path], Store]] = [lambda _p: MemoryStore(), _fs]


@pytest.fixture(name="store", params=FACTORIES, ids=["memory", "fs"])
def _store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    factory: Callable[[Path], Store] = request.param
    return factory(tmp_path)


async def test_create_is_create_if_absent(store: Store) -> None:
    assert await store.create(Namespace.KEYS, "k", b"one")
    assert not await store.create(Namespace.KEYS, "k", b"two")
    assert await store.get(Namespace.KEYS, "k") == b"one"


async def test_get_missing_and_delete(store: Store) -> None:
    assert await store.get(Namespace.KEYS, "nope") is None
    assert not await store.delete(Namespace.KEYS, "nope")
    await store.create(Namespace.KEYS, "k", b"v")
    assert await store.delete(Namespace.KEYS, "k")
    assert await store.get(Namespace.KEYS, "k") is None


async def test_namespaces_are_independent(store: Store) -> None:
    await store.create(Namespace.KEYS, "same", b"key")
    await store.put(Namespace.POLICIES, "same", b"policy")
    await store.put(Namespace.IDENTITIES, "same", b"binding")
    assert await store.list(Namespace.KEYS) == ["same"]
    assert await store.get(Namespace.POLICIES, "same") == b"policy"
    await store.put(Namespace.POLICIES, "same", b"policy2")
    assert await store.get(Namespace.POLICIES, "same") == b"policy2"


async def test_status_available(store: Store) -> None:
    assert (await store.status()).state == "available"


async def test_concurrent_creates_have_one_winner(store: Store) -> None:
    results = await asyncio.gather(
        *(store.create(Namespace.KEYS, "race", str(i).encode()) for i in range(50))
    )
    assert results.count(True) == 1


async def test_fs_layout_and_permissions(tmp_path: Path) -> None:
    store = FSStore(tmp_path / "keys")
    assert store.open() is True
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    await store.create(Namespace.KEYS, "my-key", encode_key(b"\x01" * 32))
    path = tmp_path / "keys" / "my-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # v0.17 file format, readable by an original KES.
    assert (
        path.read_bytes() == b'{"bytes":"' + b"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=" + b'"}'
    )
    assert decode_key(path.read_bytes()) == b"\x01" * 32
    # Metadata never shows up as a key; leftover temp files are swept.
    await store.put(Namespace.POLICIES, "p", b"{}")
    (tmp_path / "keys" / ".tmp-deadbeef").write_bytes(b"partial")
    assert await store.list(Namespace.KEYS) == ["my-key"]
    FSStore(tmp_path / "keys").open()
    assert not (tmp_path / "keys" / ".tmp-deadbeef").exists()


# A process that leaves a temp file mid-write (as a sibling worker does while it
# writes a policy) and keeps running until its stdin is closed.
_WRITER = """
import sys
from pathlib import Path
from kes_server.keystore.fs import FSStore
store = FSStore(sys.argv[1])
print(store._write_temp(Path(sys.argv[1]), b"in flight"), flush=True)
sys.stdin.read()
"""


def test_fs_open_keeps_temp_files_of_running_processes(tmp_path: Path) -> None:
    """Issue 13.1: a worker's start-up must not sweep what a sibling is writing."""
    FSStore(tmp_path / "keys").open()
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path / "keys")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert writer.stdout is not None and writer.stdin is not None
    in_flight = Path(writer.stdout.readline().decode().strip())
    try:
        assert in_flight.exists()
        FSStore(tmp_path / "keys").open()
        assert in_flight.exists(), "open() swept a temp file another process is writing"
    finally:
        writer.stdin.close()
        assert writer.wait(10) == 0
        writer.stdout.close()
    FSStore(tmp_path / "keys").open()  # the writer is gone: its leftover is swept
    assert not in_flight.exists()


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", ".hidden", "a\\b", "a\0b"])
async def test_fs_rejects_escaping_names(tmp_path: Path, name: str) -> None:
    store = _fs(tmp_path)
    with pytest.raises(StoreError):
        await store.create(Namespace.KEYS, name, b"x")
    assert list((tmp_path).iterdir()) == [tmp_path / "keys"]


async def test_fs_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="not a directory"):
        FSStore(tmp_path / "file").open()


async def test_fs_broken_directory_is_a_store_error(tmp_path: Path) -> None:
    """The key directory vanishing under a running server (works as root too)."""
    store = _fs(tmp_path)
    await store.create(Namespace.KEYS, "kept", b"v")
    os.rename(tmp_path / "keys", tmp_path / "moved")
    (tmp_path / "keys").write_text("not a directory")
    with pytest.raises(StoreError, match="filesystem"):
        await store.create(Namespace.KEYS, "k", b"v")
    with pytest.raises(StoreError):
        await store.list(Namespace.KEYS)
    assert (await store.status()).state == "unreachable"
    assert (tmp_path / "moved" / "kept").read_bytes() == b"v"


def test_keyfile_accepts_newer_fields_and_rejects_bad_records() -> None:
    key = decode_key(b'{"bytes":"' + b"A" * 43 + b'=","algorithm":"AES256","created_at":"x"}')
    assert len(key) == 32
    for bad in [b"{", b'{"bytes":"AAAA"}', b'{"bytes":1}', b"[]", b'{"bytes":"!!"}']:
        with pytest.raises(ValueError):
            decode_key(bad)
