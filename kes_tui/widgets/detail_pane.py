"""``DetailPane``: a scrollable side panel that shows one thing in full.

Used by the trace screens for the selected event (pretty JSON plus, for a
denied request, the policy verdict) so the list stays visible next to it.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

__all__ = ["DetailPane"]


class DetailPane(VerticalScroll, can_focus=True):
    """Hidden until :meth:`show`; ``escape`` closes it.

    | Key | Action |
    | :- | :- |
    | `escape` | Close the pane. |
    | `up` / `down` | Scroll. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close details")]

    DEFAULT_CSS = """
    DetailPane {
        display: none;
        width: 45%;
        dock: right;
        border-left: wide $accent;
        padding: 0 1;
        background: $surface;
        &.-open { display: block; }
    }
    """

    class Closed(Message):
        """The pane was closed; the screen puts focus back on its list."""

    def compose(self) -> ComposeResult:
        yield Static(id="detail_body")

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def show(self, body: RenderableType) -> None:
        """Open the pane (if closed) with ``body``."""
        self.query_one("#detail_body", Static).update(body)
        self.add_class("-open")

    def action_close(self) -> None:
        self.remove_class("-open")
        self.post_message(self.Closed())
