"""Events from before the console started: a server's audit log file.

KES traces only stream what happens while the console is connected, so a
fresh console starts blank. A server with ``log.audit: on`` writes the same
events as JSON lines to stdout (the journal, ``podman logs``, a file); with
``log.error: on`` its error events go to stderr, and
``journalctl -u kes-server -o cat`` interleaves both with the start-up
banner. This module sorts such a file: audit events, error events, and
lines that are neither (counted, never fatal).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["History", "read_history"]


@dataclass
class History:
    """What a log file held, oldest first, bounded to the newest ``capacity`` of each."""

    audit: deque[Mapping[str, Any]] = field(default_factory=deque)
    errors: deque[Mapping[str, Any]] = field(default_factory=deque)
    #: Lines that were no event (the banner, plain-text messages, garbage).
    skipped: int = 0
    #: Events that did not fit: only the newest ``capacity`` are kept.
    dropped: int = 0


def read_history(lines: Iterable[str], capacity: int) -> History:
    """Sort JSON lines into audit and error events (any KES era's shape)."""
    history = History(deque(maxlen=capacity), deque(maxlen=capacity))
    for line in lines:
        line = line.strip()
        try:
            event = json.loads(line) if line.startswith("{") else None
        except ValueError:
            event = None
        if not isinstance(event, dict):
            history.skipped += 1
            continue
        if isinstance(event.get("request"), dict) and isinstance(event.get("response"), dict):
            target = history.audit
        elif isinstance(event.get("message"), str):
            target = history.errors
        else:
            history.skipped += 1
            continue
        if len(target) == capacity:
            history.dropped += 1
        target.append(event)
    return history
