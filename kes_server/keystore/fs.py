"""The filesystem store: one file per key, for development and single-node setups.

Layout (compatible with KES v0.17, which reads only regular files in the key
directory and ignores sub-directories)::

    <path>/<key-name>                   {"bytes":"<base64>"}   mode 0600
    <path>/.pykes/policies/<name>       policy JSON           mode 0600
    <path>/.pykes/identities/<identity> binding JSON          mode 0600

Crash safety: every entry is written to a temp file, fsync'ed, and then
published under its name in one atomic step (``link`` for create-if-absent,
``rename`` for replace), followed by an fsync of the directory. A crash
leaves either no entry or the whole entry, never a partial one; leftover temp
files (``.tmp-*``) are ignored and swept at start-up.

Several processes may use one directory at once (``--workers N``: every
worker opens the store and writes the config's policies while its siblings
do the same). So a temp file is named after the process writing it
(``.tmp-<pid>-<random>``) and ``open()`` sweeps only the temp files of
processes that are gone: a sibling's file in mid-write is never pulled from
under it. Its own pid's files are leftovers too (a restarted container's
server is pid 1 again), since a process opens its store before writing.
Process ids only mean something on one host, which is why the directory
must not be shared between hosts (docs/configuration.md).
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import time
from pathlib import Path

from kes_server.keystore.base import Namespace, Store, StoreError, StoreStatus

__all__ = ["FSStore"]

_META_DIR = ".pykes"
_TMP_PREFIX = ".tmp-"


def _check_name(name: str) -> None:
    """Last line of defence: no name may ever address a path outside its directory."""
    if (
        not name
        or name.startswith(".")
        or any(c in name for c in ("/", "\\", "\0"))
        or len(name.encode()) > 255
    ):
        raise StoreError(f"invalid entry name {name!r}")


def _writer_is_gone(temp_name: str) -> bool:
    """Whether the process that wrote temp file ``.tmp-<pid>-<random>`` has ended.

    Names without a pid (older versions) and our own pid count as gone; a pid
    we may not signal belongs to a live process of another user.
    """
    pid_text = temp_name[len(_TMP_PREFIX) :].partition("-")[0]
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class FSStore(Store):
    kind = "filesystem"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.root = Path(path)
        self.location = str(path)
        self._dirs = {
            Namespace.KEYS: self.root,
            Namespace.POLICIES: self.root / _META_DIR / "policies",
            Namespace.IDENTITIES: self.root / _META_DIR / "identities",
        }

    # ------------------------------------------------------------------ setup
    def open(self) -> bool:
        """Create the directories (0700) and sweep temp files; True if the root was new."""
        created = False
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"'{self.root}' is not a directory")
        if not self.root.exists():
            created = True
        for directory in self._dirs.values():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.root / _META_DIR).chmod(0o700)
        for directory in self._dirs.values():
            for leftover in directory.glob(_TMP_PREFIX + "*"):
                if _writer_is_gone(leftover.name):
                    leftover.unlink(missing_ok=True)
        return created

    # ------------------------------------------------------------------ blocking helpers
    def _write_temp(self, directory: Path, value: bytes) -> Path:
        tmp = directory / f"{_TMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(value)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        return tmp

    @staticmethod
    def _sync_dir(directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _create_sync(self, ns: Namespace, name: str, value: bytes) -> bool:
        directory = self._dirs[ns]
        target = directory / name
        tmp = self._write_temp(directory, value)
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        self._sync_dir(directory)
        return True

    def _put_sync(self, ns: Namespace, name: str, value: bytes) -> None:
        directory = self._dirs[ns]
        tmp = self._write_temp(directory, value)
        try:
            os.replace(tmp, directory / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._sync_dir(directory)

    def _get_sync(self, ns: Namespace, name: str) -> bytes | None:
        try:
            with open(self._dirs[ns] / name, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            return None

    def _delete_sync(self, ns: Namespace, name: str) -> bool:
        try:
            os.unlink(self._dirs[ns] / name)
        except FileNotFoundError:
            return False
        except IsADirectoryError:
            return False
        self._sync_dir(self._dirs[ns])
        return True

    def _list_sync(self, ns: Namespace) -> list[str]:
        names: list[str] = []
        with os.scandir(self._dirs[ns]) as it:
            for entry in it:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                names.append(entry.name)
        return names

    # ------------------------------------------------------------------ Store
    async def _run(self, what: str, func: object, *args: object) -> object:
        try:
            return await asyncio.to_thread(func, *args)  # type: ignore[arg-type]
        except StoreError:
            raise
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            if exc.errno == errno.ENOSPC:
                reason = "no space left on device"
            raise StoreError(f"filesystem: {what}: {reason}") from exc

    async def create(self, ns: Namespace, name: str, value: bytes) -> bool:
        _check_name(name)
        return bool(await self._run(f"cannot create '{name}'", self._create_sync, ns, name, value))

    async def put(self, ns: Namespace, name: str, value: bytes) -> None:
        _check_name(name)
        await self._run(f"cannot write '{name}'", self._put_sync, ns, name, value)

    async def get(self, ns: Namespace, name: str) -> bytes | None:
        _check_name(name)
        result = await self._run(f"cannot read '{name}'", self._get_sync, ns, name)
        return result if isinstance(result, bytes) else None

    async def delete(self, ns: Namespace, name: str) -> bool:
        _check_name(name)
        return bool(await self._run(f"cannot delete '{name}'", self._delete_sync, ns, name))

    async def list(self, ns: Namespace) -> list[str]:
        result = await self._run("cannot list entries", self._list_sync, ns)
        return list(result) if isinstance(result, list) else []

    async def status(self) -> StoreStatus:
        start = time.perf_counter()
        try:
            ok = await asyncio.to_thread(self.root.is_dir)
        except OSError:
            ok = False
        latency = time.perf_counter() - start
        return StoreStatus("available" if ok else "unreachable", latency)
