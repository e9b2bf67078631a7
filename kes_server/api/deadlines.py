"""Request timeouts without a timer per request.

``asyncio.timeout`` arms and cancels an event-loop timer for every request;
on uvloop that is a libuv timer each time, and it cost more than a generate
request's cryptography. KES's timeouts are 10-15 s, so a deadline checked
a few times a second is as good: one ticker runs while requests are in
flight, and cancels the task of any request past its deadline, which then
answers ``503 request timeout exceeded`` (the cancellation is taken back
with ``Task.uncancel``, as ``asyncio.timeout`` does).
"""

from __future__ import annotations

import asyncio

__all__ = ["Deadline", "Deadlines"]

#: How often deadlines are checked (so a timeout fires up to this much late).
TICK_S = 0.25


class Deadline:
    """One request's deadline; ``expired`` once its task was cancelled for it."""

    __slots__ = ("expired", "task", "when")

    def __init__(self, task: asyncio.Task[object], when: float) -> None:
        self.task = task
        self.when = when
        self.expired = False


class Deadlines:
    """The deadlines of the requests in flight on one event loop."""

    def __init__(self) -> None:
        self._active: set[Deadline] = set()
        self._ticker: asyncio.TimerHandle | None = None

    def add(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now for the current task."""
        task = asyncio.current_task()
        assert task is not None, "deadlines belong to tasks"
        loop = task.get_loop()
        deadline = Deadline(task, loop.time() + seconds)
        self._active.add(deadline)
        if self._ticker is None:
            self._ticker = loop.call_later(TICK_S, self._tick, loop)
        return deadline

    def remove(self, deadline: Deadline) -> None:
        self._active.discard(deadline)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._ticker = None
        now = loop.time()
        for deadline in [d for d in self._active if d.when <= now]:
            self._active.discard(deadline)
            deadline.expired = True
            deadline.task.cancel()
        if self._active:
            self._ticker = loop.call_later(TICK_S, self._tick, loop)

    @staticmethod
    def timed_out(deadline: Deadline) -> bool:
        """In ``except CancelledError``: whether this deadline (and only it) cancelled us."""
        return deadline.expired and deadline.task.uncancel() == 0
