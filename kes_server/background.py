"""Stopping background tasks (cache sweeps, policy refresh, health polls, relays)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

__all__ = ["cancel"]


async def cancel(tasks: Iterable[asyncio.Task[None] | None]) -> None:
    """Cancel every task, then wait until each has ended (its ``finally`` blocks ran)."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task
