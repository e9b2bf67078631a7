"""Which asyncio event loop a bench process runs: the stdlib's or uvloop.

kes-server is moving to uvloop by default (``--loop asyncio`` opts out), so
the bare baseline runs under both, and the load generator uses uvloop when it
is installed because that lowers its own CPU per request, which keeps it out
of the way of the fastest server measured (the real KES).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LOOPS", "best", "of_process", "run"]

LOOPS = ("asyncio", "uvloop")

T = TypeVar("T")


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def best() -> str:
    """uvloop when installed (the bench extra), else the stdlib loop."""
    return "uvloop" if _has_uvloop() else "asyncio"


def run(main: Coroutine[Any, Any, T], loop: str = "asyncio") -> T:
    """``asyncio.run`` on the named loop (``uvloop`` raises ImportError when missing)."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    if loop != "asyncio":
        raise ValueError(f"unknown event loop {loop!r}; one of {', '.join(LOOPS)}")
    return asyncio.run(main)


def of_process(pid: int) -> str:
    """The loop a running Python process uses, judged by whether uvloop is loaded in it.

    Read from /proc/<pid>/maps (and the children's: ``--workers``), so it reports what
    the server under test really runs, whatever its defaults and flags are today.
    """
    pids = [pid]
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            pids += [int(p) for p in fh.read().split()]
    for p in pids:
        with (
            contextlib.suppress(OSError),
            open(f"/proc/{p}/maps", encoding="utf-8", errors="replace") as fh,
        ):
            if any("/uvloop/" in line for line in fh):
                return "uvloop"
    return "asyncio"
