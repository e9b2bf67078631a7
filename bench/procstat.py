"""CPU time of processes and of the machine, read from /proc.

Why /proc and not wall-clock throughput alone: the load generator and the
server share the same (two) cores, so req/s mixes the server's cost with the
load generator's. CPU microseconds per request, taken from the server's own
``utime + stime``, is the server's cost whatever the load generator does; the
machine's busy share shows when the box as a whole was the limit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CpuSample", "MachineSample", "cpu_seconds", "machine", "process_tree", "sample"]

_TICK = float(os.sysconf("SC_CLK_TCK"))


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), 0 when it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _TICK


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants (``--workers`` forks, nginx workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


@dataclass(frozen=True)
class CpuSample:
    """Summed CPU seconds of a set of processes at one instant."""

    pids: tuple[int, ...]
    seconds: float


def sample(pids: Iterable[int]) -> CpuSample:
    """CPU seconds of these processes and, for each, of its descendants."""
    everyone: list[int] = []
    for pid in pids:
        everyone.extend(p for p in process_tree(pid) if p not in everyone)
    return CpuSample(tuple(everyone), sum(cpu_seconds(p) for p in everyone))


@dataclass(frozen=True)
class MachineSample:
    """Jiffies of all CPUs from /proc/stat: busy and total."""

    busy: int
    total: int


def machine() -> MachineSample:
    with open("/proc/stat", encoding="ascii") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)  # idle + iowait
    total = sum(parts[:8])  # guest time is already counted in user
    return MachineSample(total - idle, total)
