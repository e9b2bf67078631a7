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
(``S`` messages), the parent tells every worker how many subscribers the
*other* workers have (``I`` messages), and a worker relays a kind only while
that number is above zero. With no trace open, workers relay nothing.

Every message is a frame: a 4-byte big-endian length, a type byte (``A``
audit event, ``E`` error event, ``S``, ``I``) and its data, so an event of
any size crosses. (Lines did not: asyncio's line reader stops at 64 KiB, and
one longer event ended the relay without a word.) The relay never stops
quietly: a message that cannot be handled is skipped and reported as an
error event, and a worker whose connection to the parent ends says so. The
parent closes the pipes only after every worker has exited, so that happens
only if the parent dies. The parent's own error events go to its stderr
(when error logging is on) and to every worker's error traces.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import sys
from collections.abc import Awaitable, Callable

from kes_server.background import cancel
from kes_server.logbus import LogBus, error_console_format, error_event

__all__ = ["RELAY_LIMIT", "Hub", "Relay", "frame", "read_frame", "run_workers"]

#: Bytes of unsent events a relay pipe may hold before events are dropped.
RELAY_LIMIT = 4 << 20
_AUDIT, _ERROR = b"A", b"E"
_SUBSCRIBERS, _INTEREST = b"S", b"I"
_LENGTH = struct.Struct("!I")


def frame(tag: bytes, data: bytes) -> bytes:
    """One relay message: its length, then ``tag`` (the type byte) and ``data``."""
    return _LENGTH.pack(len(tag) + len(data)) + tag + data


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """The next message (type byte and data); ``None`` once the peer closed the pipe.

    Raises ``asyncio.IncompleteReadError`` if it closed in the middle of one.
    """
    try:
        header = await reader.readexactly(_LENGTH.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    (size,) = _LENGTH.unpack(header)
    return await reader.readexactly(size)


def _write(writer: asyncio.StreamWriter | None, data: bytes) -> None:
    """Send unless the pipe is closed or backed up (then the message is dropped)."""
    if writer is None or writer.is_closing():
        return
    if writer.transport.get_write_buffer_size() < RELAY_LIMIT:
        writer.write(data)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


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
        self._task = asyncio.create_task(self._receive(reader, audit, errors))

    async def _receive(self, reader: asyncio.StreamReader, audit: LogBus, errors: LogBus) -> None:
        """Handle the parent's messages until the pipe ends (cancelled when we stop)."""
        try:
            while (message := await read_frame(reader)) is not None:
                try:
                    self._handle(message, audit, errors)
                except Exception as exc:  # noqa: BLE001 - one bad message must not end the relay
                    text = f"relay: skipped a message from the parent process: {_describe(exc)}"
                    errors.publish(error_event(text))
            reason = "the parent process closed it"
        except (OSError, asyncio.IncompleteReadError) as exc:
            reason = _describe(exc)
        for kind in self.interest:
            self.interest[kind] = 0  # nobody to send to any more
        errors.publish(
            error_event(
                f"relay: the connection to the parent process ended ({reason}); "
                "this worker's traces no longer show other workers' events"
            )
        )

    def _handle(self, message: bytes, audit: LogBus, errors: LogBus) -> None:
        tag, data = message[:1], message[1:]
        if tag == _AUDIT:
            audit.deliver(data)
        elif tag == _ERROR:
            errors.deliver(data)
        elif tag == _INTEREST:
            kind = data[:1]
            synced = self._synced[kind]
            self.interest[kind] = int(data[1:])
            synced.set()
        else:
            raise ValueError(f"unknown message type {tag!r}")

    def _sender(self, kind: bytes) -> Callable[[bytes], None]:
        def send(encoded: bytes) -> None:
            if self.interest[kind] > 0:
                _write(self._writer, frame(kind, encoded))

        return send

    def _reporter(self, kind: bytes) -> Callable[[int], None]:
        def report(count: int) -> None:
            self._synced[kind].clear()
            _write(self._writer, frame(_SUBSCRIBERS, kind + str(count).encode()))

        return report

    def _waiter(self, kind: bytes) -> Callable[[], Awaitable[None]]:
        async def wait() -> None:
            """Until the parent has told every worker about our new subscriber (<= 1 s)."""
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._synced[kind].wait(), 1.0)

        return wait

    async def stop(self) -> None:
        await cancel([self._task])
        if self._writer is not None:
            self._writer.close()


class Hub:
    """The parent's end of the relay: forwards each worker's events to the others.

    ``errors`` is the parent's own error log (stderr); the hub relays it to
    every worker, so problems of the relay itself show in the error traces.
    """

    def __init__(self, ends: list[socket.socket], errors: LogBus) -> None:
        self.ends = ends
        self.errors = errors
        self._writers: list[asyncio.StreamWriter] = []
        self._counts: list[dict[bytes, int]] = []

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set (once every worker has exited)."""
        streams = [await asyncio.open_connection(sock=s) for s in self.ends]
        self._writers = [w for _r, w in streams]
        self._counts = [{_AUDIT: 0, _ERROR: 0} for _ in streams]
        self.errors.relay = self._to_all
        tasks = [asyncio.create_task(self._pump(i, r)) for i, (r, _w) in enumerate(streams)]
        try:
            await stop.wait()
        finally:
            self.errors.relay = None
            for task in tasks:
                task.cancel()
            for writer in self._writers:
                writer.close()

    def _to_all(self, encoded: bytes) -> None:
        message = frame(_ERROR, encoded)
        for writer in self._writers:
            _write(writer, message)

    async def _pump(self, index: int, reader: asyncio.StreamReader) -> None:
        """Route one worker's messages until its end closes (it exited: the supervisor acts)."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while (message := await read_frame(reader)) is not None:
                try:
                    self._route(index, message)
                except Exception as exc:  # noqa: BLE001 - one bad message must not end the relay
                    text = f"relay: skipped a message from worker {index}: {_describe(exc)}"
                    self.errors.publish(error_event(text))

    def _route(self, index: int, message: bytes) -> None:
        tag = message[:1]
        if tag in (_AUDIT, _ERROR):
            forwarded = frame(b"", message)
            for j, writer in enumerate(self._writers):
                if j != index:
                    _write(writer, forwarded)
        elif tag == _SUBSCRIBERS:
            kind = message[1:2]
            if kind not in self._counts[index]:
                raise ValueError(f"unknown log kind {kind!r}")
            self._counts[index][kind] = int(message[2:])
            total = sum(c[kind] for c in self._counts)
            for j, writer in enumerate(self._writers):
                others = total - self._counts[j][kind]
                _write(writer, frame(_INTEREST, kind + str(others).encode()))
        else:
            raise ValueError(f"unknown message type {tag!r}")


def run_workers(
    sock: socket.socket,
    workers: int,
    start: Callable[[int, socket.socket, Relay], int],
    *,
    log_errors: bool = True,
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
    errors = LogBus(console=sys.stderr if log_errors else None, console_format=error_console_format)
    return asyncio.run(_supervise(children, Hub(hub_ends, errors)))


async def _supervise(children: dict[int, int], hub: Hub) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    workers_gone = asyncio.Event()
    relaying = asyncio.create_task(hub.run(workers_gone))
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
    # Only now: a worker still shutting down must not see its relay end.
    workers_gone.set()
    await relaying
    return exit_code
