"""Fan-out of audit and error events to console sinks and live trace subscribers.

``publish`` is synchronous and never waits: each subscriber owns a bounded
deque, and when a slow or stuck subscriber's deque is full its *own* oldest
events are dropped (and counted). So a trace client can never slow down the
request that produced the event, nor any other subscriber.

The deque is bounded twice: by events (:data:`DEFAULT_BUFFER`) and by bytes
(:data:`BUFFER_BYTES`). Audit events are ~250 bytes, so the count bound alone
would hold ~1 MiB, but events that carry long paths are bigger and a stuck
subscriber would otherwise hold thousands of them: the byte bound is what
caps memory. A stuck stream also holds the one batch it was sending when it
stalled (at most the same bound) in its connection's write buffer, so a
subscriber that never reads costs at most about twice ``BUFFER_BYTES``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

__all__ = [
    "BUFFER_BYTES",
    "DEFAULT_BUFFER",
    "LogBus",
    "MAX_AUDIT_PATH",
    "Subscription",
    "clip_path",
    "error_event",
    "format_time_ns",
    "go_log_prefix",
]

#: Longest request path an audit event carries, in characters (see :func:`clip_path`).
MAX_AUDIT_PATH = 1024
#: Events a trace subscriber may have queued before its oldest are dropped ...
DEFAULT_BUFFER = 4096
#: ... and their total size in bytes.
BUFFER_BYTES = 4 << 20


def clip_path(path: str) -> str:
    """The request path as an audit event carries it: at most :data:`MAX_AUDIT_PATH` characters.

    A longer path keeps its first ``MAX_AUDIT_PATH - 3`` characters followed
    by ``...``. Real API paths are under 200 characters; the bound keeps one
    request from making an event (and every trace and relay copy of it)
    large: escaped as JSON, a character takes at most 6 bytes.
    """
    if len(path) <= MAX_AUDIT_PATH:
        return path
    return path[: MAX_AUDIT_PATH - 3] + "..."


_second = -1
_second_text = ("", "")


def format_time_ns(ns: int) -> str:
    """RFC 3339 with nanoseconds and the local UTC offset, as Go's RFC3339Nano.

    The date, time and offset are worked out once per second: every audit
    event of a busy server formats its time.
    """
    global _second, _second_text
    secs, frac = divmod(ns, 1_000_000_000)
    if secs != _second:
        tm = time.localtime(secs)
        offset = tm.tm_gmtoff or 0
        sign = "+" if offset >= 0 else "-"
        hh, mm = divmod(abs(offset) // 60, 60)
        zone = "Z" if offset == 0 else f"{sign}{hh:02d}:{mm:02d}"
        _second, _second_text = secs, (time.strftime("%Y-%m-%dT%H:%M:%S", tm), zone)
    base, zone = _second_text
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}{zone}" if digits else f"{base}{zone}"


def error_event(text: str) -> dict[str, Any]:
    """An error event as v0.17 writes one: Go's log prefix, then ``text``."""
    return {"message": go_log_prefix() + text}


def go_log_prefix(ns: int | None = None) -> str:
    """Go's standard log prefix (``2022/01/06 15:50:28 ``) that v0.17 error events carry."""
    t = time.localtime((ns if ns is not None else time.time_ns()) // 1_000_000_000)
    return time.strftime("%Y/%m/%d %H:%M:%S ", t)


class Subscription:
    """One trace client's queue of encoded events, bounded in count and in bytes."""

    def __init__(self, maxlen: int, max_bytes: int) -> None:
        self._buf: deque[bytes] = deque()
        self._maxlen = maxlen
        self._max_bytes = max_bytes
        self._bytes = 0
        self._ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def push(self, line: bytes) -> None:
        """Queue ``line``, dropping the oldest events (``line`` itself, if alone too big).

        Amortised O(1): every event is dropped at most once.
        """
        buf = self._buf
        buf.append(line)
        self._bytes += len(line)
        while self._bytes > self._max_bytes or len(buf) > self._maxlen:
            self._bytes -= len(buf.popleft())
            self.dropped += 1
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
        self._bytes = 0
        return batch


class LogBus:
    """Events of one kind (audit or error) and everyone who listens to them."""

    def __init__(
        self,
        *,
        console: TextIO | None = None,
        console_format: Callable[[dict[str, Any]], str] | None = None,
        buffer: int = DEFAULT_BUFFER,
        buffer_bytes: int = BUFFER_BYTES,
        on_publish: Callable[[], None] | None = None,
    ) -> None:
        self.console = console
        self.console_format = console_format
        self.buffer = buffer
        self.buffer_bytes = buffer_bytes
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
            self._to_console(self.console_format(event) if self.console_format else line)
        self._fan_out(line.encode() + b"\n")

    def publish_json(self, line: str) -> None:
        """An event already encoded as one line of JSON (the audit events of requests,
        built without a dict on the request path); only for buses with no console format."""
        self._on_publish()
        if self.console is not None:
            self._to_console(line)
        self._fan_out(line.encode() + b"\n")

    def _to_console(self, text: str) -> None:
        assert self.console is not None
        try:
            self.console.write(text + "\n")
            self.console.flush()
        except (OSError, ValueError):
            pass  # a closed stdout must not break request handling

    def _fan_out(self, encoded: bytes) -> None:
        for sub in self.subscribers:
            sub.push(encoded)
        if self.relay is not None:
            self.relay(encoded)

    def deliver(self, encoded: bytes) -> None:
        """An event another worker published: to our trace subscribers only."""
        for sub in self.subscribers:
            sub.push(encoded)

    def subscribe(self) -> Subscription:
        sub = Subscription(self.buffer, self.buffer_bytes)
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
