"""A broken key store: clear 5xx answers and error events, stored keys untouched.

Three real failures of the fs store, all reachable as root (CI runs as root,
so permission bits prove nothing):

* unwritable: the key directory is replaced by a regular file (ENOTDIR);
* full, portable: ``RLIMIT_FSIZE`` set on the running server with
  ``prlimit``, so writing a key record fails with EFBIG ("File too large");
  CPython ignores SIGXFSZ, so the write fails instead of killing the process;
* full, for real: a 1 MiB tmpfs filled to the last byte (ENOSPC), when this
  machine lets us mount one (skipped otherwise).

Each time a create answers 502 ``bad gateway: failed to create key`` (over
HTTP/1.1 and over HTTP/2), an error event names the key and the OS reason,
nothing partial is left behind, and keys stored before the fault decrypt
exactly as before once it is gone.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import resource
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.protocols import PROTOCOLS
from tests.support.server import RunningServer, start_server
from tests.support.trace import LiveTrace

pytestmark = pytest.mark.e2e

CREATE_FAILED = (502, "bad gateway: failed to create key")


def _seal(root: httpx.Client, name: str) -> dict[str, str]:
    root.post(f"/v1/key/create/{name}").raise_for_status()
    plaintext = base64.b64encode(b"stored before the fault").decode()
    enc = root.post(f"/v1/key/encrypt/{name}", json={"plaintext": plaintext})
    enc.raise_for_status()
    return {"ciphertext": enc.json()["ciphertext"], "plaintext": plaintext}


def _still_decrypts(root: httpx.Client, name: str, sealed: dict[str, str]) -> None:
    dec = root.post(f"/v1/key/decrypt/{name}", json={"ciphertext": sealed["ciphertext"]})
    assert dec.status_code == 200 and dec.json()["plaintext"] == sealed["plaintext"]


def _failed_creates(server: RunningServer, trace: LiveTrace, name: str, reason: str) -> list[str]:
    """A create of ``name-http1`` over HTTP/1.1 and of ``name-h2`` over HTTP/2, both failing."""
    names = []
    for protocol in PROTOCOLS:
        names.append(f"{name}-{protocol}")
        with server.client(http2=protocol == "h2") as client:
            resp = client.post(f"/v1/key/create/{names[-1]}")
        assert resp.http_version == ("HTTP/2" if protocol == "h2" else "HTTP/1.1")
        assert (resp.status_code, resp.json()["message"]) == CREATE_FAILED
        event = trace.next_event(
            lambda e: f"failed to create key '{names[-1]}'" in e["message"], 3.0
        )
        assert reason in event["message"], event
    return names


@contextlib.contextmanager
def _fault_server(directory: Path) -> Iterator[tuple[RunningServer, LiveTrace]]:
    with start_server(directory) as server:
        trace = LiveTrace.of(server, "/v1/log/error/trace")
        try:
            yield server, trace
        finally:
            trace.close()


def _recovered(root: httpx.Client, keys: Path, names: list[str]) -> None:
    """Nothing of the failed creates is left behind, and each name can be created now."""
    for name in names:
        assert not (keys / name).exists()
    assert not list(keys.glob(".tmp-*")), "a failed write must remove its temp file"
    for name in names:
        assert root.post(f"/v1/key/create/{name}").status_code == 200


def test_unwritable_key_directory(tmp_path: Path) -> None:
    with _fault_server(tmp_path) as (server, trace), server.client() as root:
        sealed = _seal(root, "before")
        keys = server.directory / "keys"
        record = (keys / "before").read_bytes()
        moved = server.directory / "keys.moved"
        keys.rename(moved)
        keys.write_text("not a directory")
        try:
            names = _failed_creates(server, trace, "during", "Not a directory")
            _still_decrypts(root, "before", sealed)  # served from the key cache meanwhile
            assert root.get("/v1/status").json()["kms"]["state"] == "unreachable"
        finally:
            keys.unlink()
            moved.rename(keys)
        assert (keys / "before").read_bytes() == record
        _recovered(root, keys, names)
        _still_decrypts(root, "before", sealed)


def test_file_size_limit_efbig(tmp_path: Path) -> None:
    with _fault_server(tmp_path) as (server, trace), server.client() as root:
        sealed = _seal(root, "before")
        keys = server.directory / "keys"
        record = (keys / "before").read_bytes()
        assert server.process is not None
        pid = server.process.pid
        # Only the soft limit: raising a lowered hard limit again needs privileges.
        soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (16, hard))
        try:
            names = _failed_creates(server, trace, "too-big", os.strerror(errno.EFBIG))
            assert server.process.poll() is None, "SIGXFSZ must not kill the server"
        finally:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))
        assert (keys / "before").read_bytes() == record
        _recovered(root, keys, names)
        _still_decrypts(root, "before", sealed)


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(directory: Path) -> Path:
    """Take every free byte of the file system holding ``directory``."""
    filler = directory / ".filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def test_full_disk_enospc(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "disk", "1m") as disk:
        with _fault_server(disk) as (server, trace), server.client() as root:
            sealed = _seal(root, "before")
            keys = server.directory / "keys"
            record = (keys / "before").read_bytes()
            filler = _fill(keys)
            try:
                names = _failed_creates(server, trace, "no-room", "no space left on device")
            finally:
                filler.unlink()
            assert (keys / "before").read_bytes() == record
            _recovered(root, keys, names)
            _still_decrypts(root, "before", sealed)
