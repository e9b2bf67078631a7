"""``ConsoleScreen``: what every screen of the console has in common.

Header on top, footer with the screen's keys at the bottom, the body in
between; a typed view of the app (``self.console``); and the one place
where a screen's failed worker becomes a notification (workers never crash
the console: a 403 from the server is information, not a bug).
"""

from __future__ import annotations

from typing import ClassVar, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from kes_tui.messages import Console
from kes_tui.model import HeaderInfo
from kes_tui.widgets import ConsoleHeader

__all__ = ["NARROW_COLUMNS", "ConsoleScreen"]

#: Below this many columns a screen is "narrow" (class ``-narrow``): an 80x24
#: SSH session. Panels stack, the detail pane takes the whole width, long
#: identities are shortened.
NARROW_COLUMNS = 100


class ConsoleScreen(Screen[None]):
    """Base class of the six mode screens; subclasses implement :meth:`compose_body`."""

    #: Mode name (``audit``, ``keys``...), used by the header's screen bar.
    MODE: ClassVar[str] = ""
    #: Mutating actions, hidden (and refused) when the console runs ``--read-only``.
    MUTATING: ClassVar[frozenset[str]] = frozenset()
    BINDINGS: ClassVar[list[BindingType]] = []

    @property
    def narrow(self) -> bool:
        """Whether the terminal is narrow (the same test as the ``-narrow`` class)."""
        return self.app.size.width < NARROW_COLUMNS

    @property
    def console(self) -> Console:
        """The app, typed as the :class:`Console` protocol screens are allowed to use."""
        return cast(Console, self.app)

    def compose(self) -> ComposeResult:
        yield ConsoleHeader(self.MODE)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets."""
        yield from ()

    def on_mount(self) -> None:
        self.console.header_signal.subscribe(self, self._header_changed)
        self.console.context_signal.subscribe(self, lambda _name: self.context_changed())
        self.query_one(ConsoleHeader).info = self.console.header

    def _header_changed(self, info: HeaderInfo) -> None:
        self.query_one(ConsoleHeader).info = info
        self.header_changed(info)

    def header_changed(self, info: HeaderInfo) -> None:
        """The connection state changed: screens with an empty state update it."""

    def context_changed(self) -> None:
        """The console switched servers: forget what came from the old one."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide mutating actions in read-only mode: no key, no footer entry, no dialog."""
        if action in self.MUTATING and self.console.read_only:
            return False
        return True

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.console.report_error(event.worker.error, event.worker.description or "request")
