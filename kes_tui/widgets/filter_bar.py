"""``FilterBar``: the ``/`` prompt of the trace screens, with live syntax checking.

The bar parses as the operator types and shows a syntax error in place, but
only *applies* a filter when it parses, so a half-typed regex never empties
the view. Applying is debounced: rebuilding the filtered view scans the whole
buffer (100k rows), which is fine once, not on every keystroke.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Label

from kes_tui.model import Filter, FilterError, parse_filter

__all__ = ["FilterBar"]

#: Typing pause after which the filter is applied without pressing enter.
DEBOUNCE_S = 0.3


class FilterBar(Horizontal):
    """A one-line filter prompt (hidden until opened) that posts ``FilterBar.Changed``.

    | Key | Action |
    | :- | :- |
    | `enter` | Apply the filter and return to the list. |
    | `escape` | Clear the filter and close the bar. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear", "Clear filter and close the bar"),
    ]

    DEFAULT_CSS = """
    FilterBar {
        height: 1;
        display: none;
        background: $panel;
        &.-open { display: block; }
        & > Label { width: auto; padding: 0 1; color: $accent; text-style: bold; }
        /* :focus too: Input's own focused border would otherwise win and, in a
           one-row bar, leave no room for the text being typed. */
        & > Input, & > Input:focus {
            border: none; height: 1; padding: 0; width: 1fr; background: $panel;
        }
        & > #filter_error { color: $error; width: auto; max-width: 60%; }
    }
    """

    class Changed(Message):
        """A new (valid) filter is in force; handle with ``on_filter_bar_changed``."""

        def __init__(self, bar: FilterBar, filter: Filter) -> None:  # noqa: A002
            super().__init__()
            self.bar = bar
            self.filter = filter

        @property
        def control(self) -> FilterBar:
            return self.bar

    class Closed(Message):
        """The bar closed (enter or escape); the screen gives focus back to its list."""

    def __init__(self, placeholder: str, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.placeholder = placeholder
        self._timer: Timer | None = None
        self._applied = ""

    def compose(self) -> ComposeResult:
        yield Label("/")
        yield Input(placeholder=self.placeholder, id="filter_input")
        yield Label("", id="filter_error")

    @property
    def input(self) -> Input:
        return self.query_one("#filter_input", Input)

    @property
    def text(self) -> str:
        """The text currently applied as a filter."""
        return self._applied

    def open(self) -> None:
        """Show the bar and focus its input."""
        self.add_class("-open")
        self.input.focus()

    def set_text(self, text: str) -> None:
        """Fill in and apply ``text`` (used by tests and the command palette)."""
        self.input.value = text
        self._apply(text)

    def _check(self, text: str) -> Filter | None:
        error = self.query_one("#filter_error", Label)
        try:
            parsed = parse_filter(text)
        except FilterError as exc:
            error.update(str(exc))
            return None
        error.update("")
        return parsed

    def _apply(self, text: str) -> None:
        parsed = self._check(text)
        if parsed is not None and text != self._applied:
            self._applied = text
            self.post_message(self.Changed(self, parsed))

    @on(Input.Changed, "#filter_input")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        if self._check(event.value) is None:
            return
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_S, lambda: self._apply(self.input.value))

    @on(Input.Submitted, "#filter_input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        if self._check(event.value) is not None:
            self._apply(event.value)
            self.post_message(self.Closed())

    def action_clear(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.input.value = ""
        self._apply("")
        self.remove_class("-open")
        self.post_message(self.Closed())
