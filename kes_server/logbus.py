"""Fan-out of audit and error events to console sinks and live trace subscribers.

``publish`` is synchronous and never waits: each subscriber owns a bounded
deque, and when a slow or stuck subscriber's deque is full its *own* oldest
event is dropped (and counted). So a trace client can never slow down the
request that produced the event, nor any other subscriber.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

__all__ = ["LogBus", "Subscription", "format_time_ns", "go_log_prefix"]

DEFAULT_BUFFER = 4096


def format_time_ns(ns: int) -> str:
    """RFC 3339 with nanoseconds and the local UTC offset, as Go's RFC3339Nano."""
    secs, frac = divmod(ns, 1_000_000_000)
    tm = time.localtime(secs)
    offset = tm.tm_gmtoff or 0
    sign = "+" if offset >= 0 else "-"
    hh, mm = divmod(abs(offset) // 60, 60)
    zone = "Z" if offset == 0 else f"{sign}{hh:02d}:{mm:02d}"
    base = time.strftime("%Y-%m-%dT%H:%M:%S", tm)
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}{zone}" if digits else f"{base}{zone}"


def go_log_prefix(ns: int | None = None) -> str:
    """Go's standard log prefix (``2022/01/06 15:50:28 ``) that v0.17 error events carry."""
    t = time.localtime((ns if ns is not None else time.time_ns()) // 1_000_000_000)
    return time.strftime("%Y/%m/%d %H:%M:%S ", t)


class Subscription:
    """One trace client's bounded queue of encoded events."""

    def __init__(self, maxlen: int) -> None:
        self._buf: deque[bytes] = deque(maxlen=maxlen)
        self._ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def push(self, line: bytes) -> None:
        if len(self._buf) == self._buf.maxlen:
            self.dropped += 1
        self._buf.append(line)
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def next_batch(self, timeout: float | None = None) -> list[bytes]:
        """Wait for events; [] on timeout or when closed with nothing left."""
        if not self._buf and not self.closed:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return []
        self._ready.clear()
        batch = list(self._buf)
        self._buf.clear()
        return batch


class LogBus:
    """Events of one kind (audit or error) and everyone who listens to them."""

    def __init__(
        self,
        *,
        console: TextIO | None = None,
        console_format: Callable[[dict[str, Any]], str] | None = None,
        buffer: int = DEFAULT_BUFFER,
        on_publish: Callable[[], None] | None = None,
    ) -> None:
        self.console = console
        self.console_format = console_format
        self.buffer = buffer
        self.subscribers: set[Subscription] = set()
        self._on_publish = on_publish or (lambda: None)
        #: Set by ``kes_server.workers`` so sibling worker processes see our events.
        self.relay: Callable[[bytes], None] | None = None
        #: Told the subscriber count whenever it changes (for the relay's interest).
        self.on_subscribers: Callable[[int], None] | None = None
        #: Waits until a new subscriber is known to sibling workers (see workers.py).
        self.synced: Callable[[], Awaitable[None]] | None = None

    @property
    def listening(self) -> bool:
        """Whether a published event would reach anyone (console, trace, relay)."""
        return bool(self.subscribers) or self.console is not None or self.relay is not None

    def count(self) -> None:
        """Account for an event nobody listens to, without building it."""
        self._on_publish()

    def publish(self, event: dict[str, Any]) -> None:
        self._on_publish()
        if not self.subscribers and self.console is None and self.relay is None:
            return
        line = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        if self.console is not None:
            text = self.console_format(event) if self.console_format else line
            try:
                self.console.write(text + "\n")
                self.console.flush()
            except (OSError, ValueError):
                pass  # a closed stdout must not break request handling
        encoded = line.encode() + b"\n"
        for sub in self.subscribers:
            sub.push(encoded)
        if self.relay is not None:
            self.relay(encoded)

    def deliver(self, encoded: bytes) -> None:
        """An event another worker published: to our trace subscribers only."""
        for sub in self.subscribers:
            sub.push(encoded)

    def subscribe(self) -> Subscription:
        sub = Subscription(self.buffer)
        self.subscribers.add(sub)
        if self.on_subscribers is not None:
            self.on_subscribers(len(self.subscribers))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscribers:
            self.subscribers.discard(sub)
            if self.on_subscribers is not None:
                self.on_subscribers(len(self.subscribers))

    def close(self) -> None:
        """End every live stream (graceful shutdown)."""
        for sub in list(self.subscribers):
            sub.close()

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.subscribers)


def error_console_format(event: dict[str, Any]) -> str:
    """Error events on a terminal are plain text; otherwise the JSON form."""
    if sys.stderr.isatty():
        return str(event.get("message", ""))
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)
