"""The ``--workers`` trace relay, in one process over real socketpairs.

A real :class:`Hub` and real worker :class:`Relay` ends exchange frames
exactly as the forked processes do; only the forking is left out (the
end-to-end tests in tests/e2e/test_trace.py and tests/security run that).
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from kes_server.logbus import LogBus, Subscription
from kes_server.workers import Hub, Relay, frame

AUDIT = b"A"


@dataclass
class Worker:
    """One worker's buses and its end of the relay."""

    relay: Relay
    audit: LogBus = field(default_factory=LogBus)
    errors: LogBus = field(default_factory=LogBus)


@dataclass
class Relayed:
    workers: list[Worker]
    hub_errors: LogBus


async def _until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)


async def _events(sub: Subscription, count: int, timeout: float = 5.0) -> list[dict[str, object]]:
    """The next ``count`` events of ``sub`` (fewer if they do not come in time)."""
    events: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout
    while len(events) < count and (left := deadline - time.monotonic()) > 0:
        events += [json.loads(line) for line in await sub.next_batch(timeout=left)]
    return events


@pytest.fixture(name="relayed")
async def _relayed() -> AsyncIterator[Relayed]:
    pairs = [socket.socketpair() for _ in range(2)]
    hub_errors = LogBus()
    stop = asyncio.Event()
    hub = asyncio.create_task(Hub([parent for parent, _child in pairs], hub_errors).run(stop))
    workers = [Worker(Relay(child)) for _parent, child in pairs]
    for worker in workers:
        await worker.relay.start(worker.audit, worker.errors)
    yield Relayed(workers, hub_errors)
    for worker in workers:
        await worker.relay.stop()
    stop.set()
    await hub


async def test_an_event_of_any_size_crosses_the_relay(relayed: Relayed) -> None:
    """A 1 MiB event (a line reader stops at 64 KiB), then the relay still works."""
    sender, receiver = relayed.workers
    trace = receiver.audit.subscribe()
    await _until(lambda: sender.relay.interest[AUDIT] == 1, "the sender knows of the trace")
    sender.audit.publish({"path": "/" + "x" * (1 << 20)})
    sender.audit.publish({"path": "/after"})
    events = await _events(trace, 2)
    assert [len(str(e["path"])) for e in events] == [(1 << 20) + 1, len("/after")]


async def test_the_parent_relays_its_own_errors_to_every_worker(relayed: Relayed) -> None:
    traces = [worker.errors.subscribe() for worker in relayed.workers]
    relayed.hub_errors.publish({"message": "from the parent"})
    for trace in traces:
        assert await _events(trace, 1) == [{"message": "from the parent"}]


@pytest.fixture(name="lone")
async def _lone() -> AsyncIterator[tuple[Worker, asyncio.StreamReader, asyncio.StreamWriter]]:
    """A worker's relay whose parent end the test plays."""
    parent, child = socket.socketpair()
    worker = Worker(Relay(child))
    await worker.relay.start(worker.audit, worker.errors)
    reader, writer = await asyncio.open_connection(sock=parent)
    yield worker, reader, writer
    await worker.relay.stop()
    writer.close()


async def test_a_worker_reports_a_bad_message_and_carries_on(
    lone: tuple[Worker, asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    worker, _reader, parent = lone
    errors, audit = worker.errors.subscribe(), worker.audit.subscribe()
    parent.write(frame(b"I", b"Anot-a-number") + frame(b"X", b"") + frame(b"A", b'{"n":1}\n'))
    assert await _events(audit, 1) == [{"n": 1}]
    messages = [str(e["message"]) for e in await _events(errors, 2)]
    assert len(messages) == 2
    assert all("relay: skipped a message from the parent process" in m for m in messages)
    assert "ValueError" in messages[0] and "unknown message type" in messages[1]


async def test_a_worker_reports_when_its_relay_ends(
    lone: tuple[Worker, asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    worker, _reader, parent = lone
    errors = worker.errors.subscribe()
    parent.close()
    [event] = await _events(errors, 1)
    assert "relay: the connection to the parent process ended" in str(event["message"])


async def test_the_parent_reports_a_bad_message_and_carries_on() -> None:
    """A worker that sends garbage: logged on the parent's stderr and in the traces."""
    hostile, hub_end = socket.socketpair()
    good_end, good_hub_end = socket.socketpair()
    console = io.StringIO()
    hub_errors = LogBus(console=console)
    stop = asyncio.Event()
    hub = asyncio.create_task(Hub([hub_end, good_hub_end], hub_errors).run(stop))
    good = Worker(Relay(good_end))
    await good.relay.start(good.audit, good.errors)
    errors, audit = good.errors.subscribe(), good.audit.subscribe()
    _reader, writer = await asyncio.open_connection(sock=hostile)
    try:
        writer.write(frame(b"S", b"Zx") + frame(b"A", b'{"n":2}\n'))
        assert await _events(audit, 1) == [{"n": 2}]
        [event] = await _events(errors, 1)
        assert "relay: skipped a message from worker 0" in str(event["message"])
        assert "relay: skipped a message from worker 0" in console.getvalue()
    finally:
        writer.close()
        await good.relay.stop()
        stop.set()
        await hub
