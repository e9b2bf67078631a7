"""``--workers N``: several server processes sharing one listening socket.

Python runs one core per process, so to use N cores the parent binds the
socket once and forks N workers that all accept on it (the kernel spreads
connections). Each worker is a complete server (own cache, own connections);
the key store, policies and bindings are shared through the store, so
``workers > 1`` requires a persistent store (the in-memory store would give
each worker different keys and is refused).

Audit and error traces must show every request whichever worker served it,
so the parent also runs a tiny relay: each worker sends the events it
publishes over a socketpair, and the parent forwards them to every other
worker, which hands them to its own trace subscribers. The relay drops
events for a worker whose pipe is backed up rather than slowing anyone down
(the same rule as a slow trace subscriber).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable

from kes_server.core.config import Config
from kes_server.logbus import LogBus

__all__ = ["RELAY_LIMIT", "Relay", "bind", "run_workers"]

#: Bytes of unsent events a relay pipe may hold before events are dropped.
RELAY_LIMIT = 4 << 20
_AUDIT, _ERROR = b"A", b"E"


def bind(address: str, backlog: int = 1024) -> socket.socket:
    """Bind and listen on ``HOST:PORT`` (IPv4 or [IPv6])."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class Relay:
    """A worker's end of the event relay (see the module docstring)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, audit: LogBus, errors: LogBus) -> None:
        reader, writer = await asyncio.open_connection(sock=self.sock)
        self._writer = writer
        audit.relay = self._sender(_AUDIT)
        errors.relay = self._sender(_ERROR)

        async def receive() -> None:
            while line := await reader.readline():
                bus = audit if line[:1] == _AUDIT else errors
                bus.deliver(line[1:])

        self._task = asyncio.create_task(receive())

    def _sender(self, kind: bytes) -> Callable[[bytes], None]:
        def send(encoded: bytes) -> None:
            writer = self._writer
            if writer is None or writer.is_closing():
                return
            if writer.transport.get_write_buffer_size() < RELAY_LIMIT:
                writer.write(kind + encoded)

        return send

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()


async def _hub(ends: list[socket.socket], stop: asyncio.Event) -> None:
    streams = [await asyncio.open_connection(sock=s) for s in ends]
    writers = [w for _r, w in streams]

    async def pump(index: int, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            for j, writer in enumerate(writers):
                if j != index and not writer.is_closing():
                    if writer.transport.get_write_buffer_size() < RELAY_LIMIT:
                        writer.write(line)

    tasks = [asyncio.create_task(pump(i, r)) for i, (r, _w) in enumerate(streams)]
    await stop.wait()
    for task in tasks:
        task.cancel()
    for writer in writers:
        writer.close()


def run_workers(
    cfg: Config, workers: int, start: Callable[[int, socket.socket, Relay], int]
) -> int:
    """Fork ``workers`` processes running ``start(index, sock, relay)``; returns an exit code."""
    sock = bind(cfg.address)
    children: dict[int, int] = {}
    hub_ends: list[socket.socket] = []
    for index in range(workers):
        parent_end, child_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the worker
            parent_end.close()
            for end in hub_ends:
                end.close()
            code = 1
            try:
                code = start(index, sock, Relay(child_end))
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        child_end.close()
        hub_ends.append(parent_end)
        children[pid] = index
    sock.close()
    return asyncio.run(_supervise(children, hub_ends))


async def _supervise(children: dict[int, int], hub_ends: list[socket.socket]) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    hub = asyncio.create_task(_hub(hub_ends, stop))
    exit_code = 0

    async def reap() -> None:
        nonlocal exit_code
        while children:
            pid, status = await asyncio.to_thread(os.wait)
            children.pop(pid, None)
            code = os.waitstatus_to_exitcode(status)
            if not stop.is_set():
                # A worker died on its own: stop the others (a supervisor restarts us).
                exit_code = code or 1
                stop.set()

    reaper = asyncio.create_task(reap())
    await stop.wait()
    for pid in list(children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    await reaper
    await hub
    return exit_code
