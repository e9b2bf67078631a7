"""What the app tells its screens, and what screens may ask of the app.

The app owns the connection, the trace buffers and the directory snapshot;
screens only read them. Updates travel as :class:`textual.signal.Signal`
publications carrying the small dataclasses below (a signal reaches every
subscribed screen, including the ones not currently shown, so a screen is
up to date the moment the operator switches to it).

:class:`Console` is the app as screens see it. Screens are below the app in
the import layering, so they type ``self.app`` with this protocol instead of
importing ``KesApp``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from textual.signal import Signal

from kes_client import AsyncClient
from kes_tui.model import AuditRow, Directory, ErrorRow, EventStore, HeaderInfo

__all__ = ["Console", "StreamKind", "TraceBatch"]

StreamKind = Literal["audit", "errors"]


@dataclass(frozen=True)
class TraceBatch:
    """New rows were appended to a trace buffer (published at most ten times a second).

    ``added`` counts rows that entered the filtered view; ``received`` is the
    batch size before filtering.
    """

    kind: StreamKind
    received: int
    added: int


class Console(Protocol):
    """The part of ``KesApp`` that screens use."""

    #: ``None`` when the console runs without a server (tests, screenshots).
    client: AsyncClient | None
    #: ``--read-only``: every mutating action is hidden.
    read_only: bool
    directory: Directory
    #: False until identities and policies were read once.
    directory_loaded: bool
    audit: EventStore[AuditRow]
    errors: EventStore[ErrorRow]
    header: HeaderInfo
    trace_signal: Signal[TraceBatch]
    header_signal: Signal[HeaderInfo]
    directory_signal: Signal[Directory]
    #: Keys were created, imported or deleted (seen on the audit trace).
    keys_signal: Signal[int]
    #: The console now talks to another server: drop what belongs to the old one.
    context_signal: Signal[str]

    def refresh_directory(self) -> None:
        """Reload identities and policies in the background (after a change)."""

    def report_error(self, error: BaseException, action: str) -> None:
        """Show a failed action as a notification (permission errors get their own wording)."""

    def run_external(self, command: list[str]) -> int:
        """Run a program on the terminal (pager, editor) with the console suspended."""
