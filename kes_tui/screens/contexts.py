"""The ``ctrl+o`` picker: switch the console to another server (context)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

__all__ = ["ContextScreen"]


class ContextScreen(ModalScreen[str | None]):
    """Pick a context; dismisses with its name, or ``None``.

    | Key | Action |
    | :- | :- |
    | `enter` | Switch to the highlighted context. |
    | `escape` | Stay where you are. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    ContextScreen {
        align: center middle;
        & > Vertical {
            width: 80; height: auto; max-height: 80%;
            border: thick $accent; background: $surface; padding: 1 2;
        }
        & .title { text-style: bold; margin-bottom: 1; }
        & OptionList { height: auto; max-height: 20; }
    }
    """

    def __init__(self, contexts: Sequence[tuple[str, str]], current: str, source: str) -> None:
        """``contexts`` are (name, server) pairs; ``current`` is the one in use."""
        super().__init__()
        self.contexts = tuple(contexts)
        self.current = current
        self.source = source

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Switch to a context ({self.source})", classes="title", markup=False)
            options = [
                Option(
                    Text.assemble(
                        ("● " if name == self.current else "  ", "bold green"),
                        (name, "bold"),
                        f"  {server}",
                    ),
                    id=name,
                )
                for name, server in self.contexts
            ]
            yield OptionList(*options, id="context_list")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        names = [name for name, _ in self.contexts]
        if self.current in names:
            options.highlighted = names.index(self.current)
        options.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(str(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)
