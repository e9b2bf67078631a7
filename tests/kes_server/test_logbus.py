"""The log bus: fan-out, bounded per-subscriber buffers, console sinks."""

from __future__ import annotations

import io
import json
import re

from kes_server.logbus import BUFFER_BYTES, LogBus, format_time_ns, go_log_prefix


async def test_every_subscriber_gets_every_event() -> None:
    bus = LogBus()
    a, b = bus.subscribe(), bus.subscribe()
    for i in range(5):
        bus.publish({"n": i})
    for sub in (a, b):
        batch = await sub.next_batch(timeout=1)
        assert [json.loads(x)["n"] for x in batch] == [0, 1, 2, 3, 4]


async def test_slow_subscriber_drops_its_own_oldest() -> None:
    bus = LogBus(buffer=3)
    slow, fast = bus.subscribe(), bus.subscribe()
    for i in range(10):
        bus.publish({"n": i})
        if i % 2 == 0:
            fast_batch = await fast.next_batch(timeout=1)
            assert fast_batch
    batch = await slow.next_batch(timeout=1)
    assert [json.loads(x)["n"] for x in batch] == [7, 8, 9]
    assert slow.dropped == 7 and fast.dropped == 0


async def test_a_stuck_subscriber_is_bounded_in_bytes() -> None:
    """Large events fill a stuck subscriber's bytes long before its count: the oldest go."""
    bus = LogBus()
    stuck = bus.subscribe()
    padding = "x" * (64 * 1024)
    sent = 200  # ~13 MiB, far fewer events than the count bound
    for i in range(sent):
        bus.publish({"n": i, "path": padding})
    batch = await stuck.next_batch(timeout=1)
    assert sum(len(line) for line in batch) <= BUFFER_BYTES
    assert [json.loads(x)["n"] for x in batch] == list(range(sent - len(batch), sent))
    assert stuck.dropped == sent - len(batch) > 0


async def test_an_event_larger_than_the_buffer_is_dropped_and_counted() -> None:
    bus = LogBus(buffer_bytes=1000)
    sub = bus.subscribe()
    bus.publish({"path": "x" * 1000})
    bus.publish({"n": 1})
    assert [json.loads(x) for x in await sub.next_batch(timeout=1)] == [{"n": 1}]
    assert sub.dropped == 1


async def test_close_ends_streams() -> None:
    bus = LogBus()
    sub = bus.subscribe()
    bus.close()
    assert await sub.next_batch(timeout=1) == []
    assert sub.closed


def test_console_sink_writes_json_lines() -> None:
    out = io.StringIO()
    bus = LogBus(console=out)
    bus.publish({"a": 1})
    assert out.getvalue() == '{"a":1}\n'


def test_time_formats() -> None:
    text = format_time_ns(1_700_000_000_123_456_789)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.123456789(Z|[+-]\d\d:\d\d)", text)
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", go_log_prefix())
