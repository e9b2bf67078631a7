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

Relaying costs three processes' time per event, so it only happens while
someone listens: each worker reports its subscriber count per log kind
(``S`` lines), the parent tells every worker how many subscribers the
*other* workers have (``I`` lines), and a worker relays a kind only while
that number is above zero. With no trace open, workers relay nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable

from kes_server.logbus import LogBus

__all__ = ["RELAY_LIMIT", "Relay", "run_workers"]

#: Bytes of unsent events a relay pipe may hold before events are dropped.
RELAY_LIMIT = 4 << 20
_AUDIT, _ERROR = b"A", b"E"
_SUBSCRIBERS, _INTEREST = b"S", b"I"


class Relay:
    """A worker's end of the event relay (see the module docstring)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        #: Subscribers on the other workers, per kind, as the parent last said.
        self.interest: dict[bytes, int] = {_AUDIT: 0, _ERROR: 0}
        self._synced = {_AUDIT: asyncio.Event(), _ERROR: asyncio.Event()}

    async def start(self, audit: LogBus, errors: LogBus) -> None:
        reader, writer = await asyncio.open_connection(sock=self.sock)
        self._writer = writer
        for kind, bus in ((_AUDIT, audit), (_ERROR, errors)):
            bus.relay = self._sender(kind)
            bus.on_subscribers = self._reporter(kind)
            bus.synced = self._waiter(kind)

        async def receive() -> None:
            while line := await reader.readline():
                tag = line[:1]
                if tag == _INTEREST:
                    self.interest[line[1:2]] = int(line[2:])
                    self._synced[line[1:2]].set()
                else:
                    (audit if tag == _AUDIT else errors).deliver(line[1:])

        self._task = asyncio.create_task(receive())

    def _write(self, data: bytes) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            return
        if writer.transport.get_write_buffer_size() < RELAY_LIMIT:
            writer.write(data)

    def _sender(self, kind: bytes) -> Callable[[bytes], None]:
        def send(encoded: bytes) -> None:
            if self.interest[kind] > 0:
                self._write(kind + encoded)

        return send

    def _reporter(self, kind: bytes) -> Callable[[int], None]:
        def report(count: int) -> None:
            self._synced[kind].clear()
            self._write(_SUBSCRIBERS + kind + str(count).encode() + b"\n")

        return report

    def _waiter(self, kind: bytes) -> Callable[[], Awaitable[None]]:
        async def wait() -> None:
            """Until the parent has told every worker about our new subscriber (<= 1 s)."""
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._synced[kind].wait(), 1.0)

        return wait

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

    counts = [{_AUDIT: 0, _ERROR: 0} for _ in ends]

    def write(writer: asyncio.StreamWriter, data: bytes) -> None:
        if not writer.is_closing() and writer.transport.get_write_buffer_size() < RELAY_LIMIT:
            writer.write(data)

    async def pump(index: int, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            if line[:1] == _SUBSCRIBERS:
                kind = line[1:2]
                counts[index][kind] = int(line[2:])
                total = sum(c[kind] for c in counts)
                for j, writer in enumerate(writers):
                    others = total - counts[j][kind]
                    write(writer, _INTEREST + kind + str(others).encode() + b"\n")
                continue
            for j, writer in enumerate(writers):
                if j != index:
                    write(writer, line)

    tasks = [asyncio.create_task(pump(i, r)) for i, (r, _w) in enumerate(streams)]
    await stop.wait()
    for task in tasks:
        task.cancel()
    for writer in writers:
        writer.close()


def run_workers(
    sock: socket.socket, workers: int, start: Callable[[int, socket.socket, Relay], int]
) -> int:
    """Fork ``workers`` processes running ``start(index, sock, relay)`` on the listening
    ``sock``; returns an exit code."""
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
