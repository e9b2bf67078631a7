"""Recognising the console's own requests when they come back on the audit trace.

The console polls (status, metrics, identity and policy listings) and every
poll is an audit event like any other. To let the operator hide that noise,
the app notes the path of each request it sends; an audit event from the
console's identity for a noted path is claimed as "own", once per request.
Entries expire, so a request whose event never arrives (the trace was down)
cannot later swallow somebody else's identical call.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["OwnRequests"]


class OwnRequests:
    """A multiset of recently sent request paths, matched against audit events."""

    def __init__(self, ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._pending: dict[str, deque[float]] = {}

    def sent(self, path: str) -> None:
        """The console is about to send a request for ``path``."""
        self._pending.setdefault(path, deque()).append(self._clock())

    def claim(self, path: str) -> bool:
        """An audit event from our identity for ``path`` arrived: is it one we sent?"""
        sent = self._pending.get(path)
        if not sent:
            return False
        horizon = self._clock() - self.ttl_s
        while sent and sent[0] < horizon:
            sent.popleft()
        if not sent:
            del self._pending[path]
            return False
        sent.popleft()
        return True
