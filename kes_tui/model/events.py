"""Trace events as the console shows them: flat rows with precomputed text.

The SDK hands us ``AuditEvent``/``ErrorEvent`` objects; the console needs
the same few strings over and over (to draw a line, to match a filter, to
search with a regex), so each event is turned into a row *once* when it
arrives. At 1,000 events/s that keeps per-frame work proportional to the
number of visible lines, not to the buffer size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "AuditRow",
    "ErrorRow",
    "Row",
    "StatusClass",
    "audit_gap",
    "audit_row",
    "error_gap",
    "error_row",
    "format_latency",
    "format_time",
    "gap_text",
    "short_identity",
    "status_class",
]

StatusClass = Literal["ok", "client-error", "server-error", "other"]

#: Identities are 64 hex digits; this many are enough to tell them apart on screen.
SHORT_IDENTITY = 12

# "2026-11-23T21:50:28.123456789Z" or "+01:00" offsets; also second precision (v0.17).
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[T ](\d{2}:\d{2}:\d{2})(\.\d+)?")
# Go's log prefix in error events: "2026/11/23 21:50:28 <text>".
_GO_LOG_PREFIX = re.compile(r"^(\d{4}/\d{2}/\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?) ")


def format_time(rfc3339: str) -> str:
    """``HH:MM:SS.mmm`` from an RFC 3339 timestamp: the date is noise in a live view."""
    m = _RFC3339.match(rfc3339)
    if m is None:
        return rfc3339[:12]
    frac = (m.group(2) or ".000")[1:4].ljust(3, "0")
    return f"{m.group(1)}.{frac}"


def format_latency(ns: int) -> str:
    """A compact latency (``850µs``, ``12.3ms``, ``1.20s``) for a fixed-width column."""
    if ns < 1_000_000:
        return f"{ns / 1_000:.0f}µs"
    if ns < 100_000_000:
        return f"{ns / 1_000_000:.1f}ms"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.0f}ms"
    return f"{ns / 1_000_000_000:.2f}s"


def short_identity(identity: str) -> str:
    """The first hex digits of an identity (``-`` for the unknown, empty identity)."""
    return identity[:SHORT_IDENTITY] if identity else "-"


def status_class(status: int) -> StatusClass:
    """Which colour a status gets: 2xx fine, 4xx the caller's fault, 5xx the server's."""
    if 200 <= status < 300:
        return "ok"
    if 400 <= status < 500:
        return "client-error"
    if status >= 500:
        return "server-error"
    return "other"


def _mapping(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = obj.get(name)
    return value if isinstance(value, Mapping) else {}


@dataclass(slots=True)
class AuditRow:
    """One audit event, flattened. ``seq`` counts events since the console started.

    ``name`` is the identity's friendly name when known at arrival (the
    policy it is bound to, or ``root``); rows are never rewritten later, so
    a rename does not repaint a hundred thousand lines.
    """

    seq: int
    time: str
    identity: str
    name: str
    ip: str
    method: str
    path: str
    status: int
    latency_ns: int
    raw: Mapping[str, Any] = field(repr=False)
    text: str = field(default="", repr=False)
    #: The console sent this request itself (status scrapes, directory reloads).
    own: bool = False
    #: Not an event: a note in the stream, such as "events may be missing here".
    marker: bool = False

    def __post_init__(self) -> None:
        if not self.text:
            self.text = " ".join(
                (
                    self.time,
                    self.identity,
                    self.name,
                    self.ip,
                    self.method,
                    self.path,
                    str(self.status),
                    format_latency(self.latency_ns),
                )
            )

    @property
    def who(self) -> str:
        """What the identity column shows: the friendly name, else a short hex."""
        return self.name or short_identity(self.identity)

    def fields(self) -> dict[str, str]:
        """The values ``field:value`` filters look at (see :mod:`.filter`)."""
        return {
            "time": self.time,
            "identity": self.identity,
            "name": self.name,
            "ip": self.ip,
            "method": self.method,
            "path": self.path,
            "status": str(self.status),
            "latency": format_latency(self.latency_ns),
        }

    def cells(self) -> tuple[str, ...]:
        """The visible columns, in :data:`AUDIT_COLUMNS` order."""
        return (
            format_time(self.time),
            self.who,
            self.ip or "-",
            f"{self.method} {self.path}".strip(),
            str(self.status),
            format_latency(self.latency_ns),
        )

    def pretty(self) -> str:
        """The event as indented JSON, exactly as the server sent it."""
        return json.dumps(dict(self.raw), indent=2, sort_keys=False)


@dataclass(slots=True)
class ErrorRow:
    """One error-log line; ``time`` is taken from Go's log prefix when present."""

    seq: int
    time: str
    message: str
    raw: Mapping[str, Any] = field(repr=False)
    text: str = field(default="", repr=False)
    #: Not an event: a note in the stream, such as "events may be missing here".
    marker: bool = False

    def __post_init__(self) -> None:
        if not self.text:
            self.text = f"{self.time} {self.message}"

    @property
    def status(self) -> int:
        """Error events have no status; 0 keeps the filter code uniform."""
        return 0

    @property
    def latency_ns(self) -> int:
        """Error events have no latency; 0 keeps the filter code uniform."""
        return 0

    @property
    def own(self) -> bool:
        """Error events are never the console's own requests."""
        return False

    def fields(self) -> dict[str, str]:
        """The values ``field:value`` filters look at."""
        return {"time": self.time, "message": self.message}

    def cells(self) -> tuple[str, ...]:
        """The visible columns, in :data:`ERROR_COLUMNS` order."""
        return (self.time, self.message)

    def pretty(self) -> str:
        """The event as indented JSON, exactly as the server sent it."""
        return json.dumps(dict(self.raw), indent=2)


Row = AuditRow | ErrorRow


def audit_row(
    seq: int, raw: Mapping[str, Any], names: Mapping[str, str], *, own: bool = False
) -> AuditRow:
    """Flatten a decoded audit event (any KES era) into a row.

    Reads the raw JSON rather than the SDK's ``AuditEvent`` fields because
    the v0.18+ ``request.method`` is only in the raw form.
    """
    request = _mapping(raw, "request")
    response = _mapping(raw, "response")
    identity = str(request.get("identity") or "")
    code = response.get("code")
    latency = response.get("time")
    return AuditRow(
        seq=seq,
        time=str(raw.get("time") or ""),
        identity=identity,
        name=names.get(identity, ""),
        ip=str(request.get("ip") or ""),
        method=str(request.get("method") or ""),
        path=str(request.get("path") or ""),
        status=code if isinstance(code, int) else 0,
        latency_ns=latency if isinstance(latency, int) else 0,
        raw=raw,
        own=own,
    )


def gap_text(lost_at: str, back_at: str) -> str:
    """The marker put into a trace after a reconnect: the server does not replay events."""
    return f"⋯ stream reconnected: events between {lost_at} and {back_at} were not received"


def audit_gap(seq: int, when: str, text: str) -> AuditRow:
    """A marker row in the audit trace (``when`` is ``HH:MM:SS``); ``text`` is what it says."""
    return AuditRow(seq, when, "", "", "", "", "", 0, 0, {}, text=text, marker=True)


def error_gap(seq: int, when: str, text: str) -> ErrorRow:
    """A marker row in the error trace; ``text`` is what it says."""
    return ErrorRow(seq, when, text, {}, text=text, marker=True)


def error_row(seq: int, raw: Mapping[str, Any]) -> ErrorRow:
    """Split Go's ``2026/11/23 21:50:28 `` prefix off an error event's message."""
    message = str(raw.get("message") or "")
    m = _GO_LOG_PREFIX.match(message)
    if m is None:
        return ErrorRow(seq=seq, time="", message=message, raw=raw)
    return ErrorRow(seq=seq, time=m.group(2), message=message[m.end() :], raw=raw)
