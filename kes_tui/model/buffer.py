"""A bounded event buffer with a filtered view, and an events-per-second meter.

The buffer is a ``deque(maxlen=capacity)``: appending is O(1) and the oldest
event falls out when it is full, which we count as *dropped* so the operator
knows the view is no longer complete. The filtered view is a second deque
holding the matching subset; it is extended incrementally as batches arrive
and rebuilt only when the filter changes, so a repaint never scans the
whole buffer.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from kes_tui.model.events import AuditRow, ErrorRow
from kes_tui.model.filter import Filter

__all__ = ["DEFAULT_CAPACITY", "EventStore", "RateMeter"]

#: Events kept per trace by default (the issue's 100k; ~60 MB of rows at most).
DEFAULT_CAPACITY = 100_000

R = TypeVar("R", AuditRow, ErrorRow)


class EventStore(Generic[R]):
    """The rows of one trace: everything received (bounded) plus what the filter lets through."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.rows: deque[R] = deque(maxlen=capacity)
        #: The rows that match :attr:`filter`, oldest first.
        self.view: deque[R] = deque()
        self.filter: Filter = Filter.everything()
        #: Events received since the console started (never decreases).
        self.received = 0
        #: Events that fell out of the full buffer.
        self.dropped = 0
        #: Rows that entered the view since the filter was last set (for "N new").
        self.matched = 0
        #: Leave the console's own requests (status scrapes, reloads) out of the view.
        self.hide_own = False

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def next_seq(self) -> int:
        """The sequence number the next row should carry."""
        return self.received

    @property
    def hidden(self) -> int:
        """Buffered rows the filter (or hiding own requests) keeps out of the view."""
        return len(self.rows) - len(self.view)

    def keeps(self, row: R) -> bool:
        """Whether ``row`` belongs in the view: markers always, own requests unless hidden."""
        if row.marker:
            return True
        if self.hide_own and row.own:
            return False
        return self.filter.matches(row)

    def extend(self, rows: Iterable[R]) -> int:
        """Append a batch; returns how many of the new rows entered the filtered view."""
        added = 0
        buffer, view, keep = self.rows, self.view, self.keeps
        everything = self.filter.is_empty and not self.hide_own
        for row in rows:
            if len(buffer) == self.capacity:
                self.dropped += 1
            buffer.append(row)
            self.received += 1
            if everything or keep(row):
                view.append(row)
                added += 1
        self.matched += added
        if buffer and view:
            oldest = buffer[0].seq
            while view and view[0].seq < oldest:
                view.popleft()
        return added

    def set_filter(self, new: Filter) -> None:
        """Replace the filter and rebuild the view (one pass over the buffer)."""
        self.filter = new
        self._rebuild()

    def set_hide_own(self, hide: bool) -> None:
        """Show or hide the console's own requests (rebuilds the view)."""
        self.hide_own = hide
        self._rebuild()

    def _rebuild(self) -> None:
        keep = self.keeps
        self.view = deque(row for row in self.rows if keep(row))
        self.matched = len(self.view)

    def clear(self) -> None:
        """Forget every row (counters keep counting)."""
        self.rows.clear()
        self.view.clear()


class RateMeter:
    """Events per second over a sliding window, fed one batch at a time."""

    def __init__(self, window_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()
        self._sum = 0

    def add(self, count: int) -> None:
        """Record ``count`` events arriving now."""
        if count:
            self._samples.append((self._clock(), count))
            self._sum += count
        self._expire()

    def _expire(self) -> None:
        horizon = self._clock() - self.window_s
        while self._samples and self._samples[0][0] < horizon:
            self._sum -= self._samples.popleft()[1]

    @property
    def rate(self) -> float:
        """Events per second in the window that ends now."""
        self._expire()
        return self._sum / self.window_s
