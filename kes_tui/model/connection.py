"""Connection state of the trace streams, and the reconnect backoff.

Kept apart from the worker that drives it so the header's wording and the
backoff schedule can be tested without a network or a terminal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

__all__ = ["HeaderInfo", "StreamState", "backoff_s", "denied_backoff_s", "format_uptime"]

Phase = Literal["idle", "connecting", "live", "reconnecting", "denied", "failed", "offline"]

#: Reconnect delays grow to this ceiling: fast recovery from a restart, no
#: hammering of a server that is down for maintenance.
MAX_BACKOFF_S = 30.0
#: A trace the policy denies is asked for again after this long, then less and
#: less often: each attempt is a 403 in the server's audit log, and a policy
#: rarely changes while the console runs (ctrl+r asks at once).
DENIED_RETRY_S = 30.0
MAX_DENIED_RETRY_S = 900.0


def backoff_s(attempt: int) -> float:
    """Delay before reconnect ``attempt`` (1-based): 1, 2, 4, ... seconds, capped."""
    return min(MAX_BACKOFF_S, 2.0 ** max(0, attempt - 1))


def denied_backoff_s(attempt: int) -> float:
    """Delay before asking again for a denied trace: 30 s, 1 min, 2 min ... 15 min."""
    return min(MAX_DENIED_RETRY_S, DENIED_RETRY_S * 2.0 ** max(0, attempt - 1))


@dataclass(frozen=True)
class StreamState:
    """Where one trace stream stands; ``retry_at`` is a ``time.monotonic()`` instant."""

    phase: Phase = "idle"
    detail: str = ""
    retry_at: float = 0.0

    def describe(self, now: float | None = None) -> str:
        """Short text for the header, e.g. ``live`` or ``retry in 4s``."""
        if self.phase == "reconnecting":
            left = max(0, round(self.retry_at - (time.monotonic() if now is None else now)))
            return f"retry in {left}s"
        return {
            "idle": "idle",
            "connecting": "connecting",
            "live": "live",
            "denied": "denied",
            "failed": "failed",
            "offline": "offline",
        }[self.phase]


@dataclass(frozen=True)
class HeaderInfo:
    """Everything the header line shows; the app publishes a new one on every change."""

    endpoint: str = ""
    version: str = ""
    identity: str = ""
    identity_label: str = ""
    audit: StreamState = StreamState()
    errors: StreamState = StreamState()
    rate: float = 0.0
    dropped: int = 0
    read_only: bool = False
    #: Why the server cannot be reached (empty while it can), and what would fix it.
    problem: str = ""
    hint: str = ""
    #: The problem is one no retry can fix (TLS trust, credentials): nothing retries.
    fatal: bool = False
    #: The context (named server) in use, "" when started from flags and env vars.
    context: str = ""


def format_uptime(seconds: float) -> str:
    """``3d 4h 05m`` / ``4h 05m 10s`` / ``5m 10s``: an uptime an operator reads at a glance."""
    total = int(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"
