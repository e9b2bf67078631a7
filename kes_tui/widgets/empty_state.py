"""``EmptyState``: what a list says when it has nothing to show, and why.

An empty table looks the same whether the server has no keys, the policy
forbids listing them, the connection failed or the filter hides them all;
this line tells them apart and names the next step.
"""

from __future__ import annotations

from textual.widgets import Static

__all__ = ["EmptyState"]


class EmptyState(Static):
    """Hidden while ``say("")``; otherwise one muted, wrapped message."""

    DEFAULT_CSS = """
    EmptyState {
        display: none;
        height: 1fr;
        padding: 1 2;
        color: $text-muted;
        text-style: italic;
        &.-shown { display: block; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's spelling
        # Messages quote filters and server errors: brackets in them are not markup.
        super().__init__(id=id, markup=False)

    @property
    def message(self) -> str:
        return str(self.content)

    def say(self, message: str) -> None:
        """Show ``message`` (or hide the widget when it is empty)."""
        self.update(message)
        self.set_class(bool(message), "-shown")
