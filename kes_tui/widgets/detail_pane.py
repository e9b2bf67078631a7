"""``DetailPane``: a scrollable panel that shows one thing in full.

Used by the trace screens for the selected event (the request, the policy
verdict, the event JSON) next to the list, so the list stays visible. Nothing
is cut: long lines wrap (identities and error messages fold at the edge), the
pane scrolls, and it takes focus (``tab``) for the keyboard. It is part of the
screen body, never docked over the header; on a narrow terminal the screen
gives it the whole width.
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
    | `tab` | Focus the pane (from the list). |
    | `up` / `down`, `k` / `j` | Scroll a line. |
    | `pageup` / `pagedown`, `home` / `end` | Scroll a page, to the top or bottom. |
    | `escape` | Close the pane. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "scroll_up", "Scroll details up", show=False),
        Binding("down,j", "scroll_down", "Scroll details down", show=False),
        Binding("pageup", "page_up", "Details page up", show=False),
        Binding("pagedown", "page_down", "Details page down", show=False),
        Binding("escape", "close", "Close details"),
    ]

    DEFAULT_CSS = """
    DetailPane {
        display: none;
        width: 45%;
        height: 1fr;
        border-left: wide $accent;
        padding: 0 1;
        background: $surface;
        &:focus { border-left: wide $accent-lighten-2; }
        &.-open { display: block; }
        & > #detail_body { width: 1fr; }
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
        """Open the pane (if closed) with ``body``, scrolled to its top."""
        self.query_one("#detail_body", Static).update(body)
        self.scroll_home(animate=False, immediate=True)
        self.add_class("-open")

    def action_close(self) -> None:
        self.remove_class("-open")
        self.post_message(self.Closed())
