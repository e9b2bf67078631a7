"""The ``?`` screen: every key of every screen, read from the classes' ``BINDINGS``.

Generated rather than written so it cannot drift from the code: a binding
added to a screen or widget shows up here (and in docs/tui.md's table,
which a test compares with this listing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static

from kes_tui.model import FIELDS
from kes_tui.screens.identities import IdentitiesScreen
from kes_tui.screens.keys import KeysScreen
from kes_tui.screens.modals import ConfirmScreen, FormScreen
from kes_tui.screens.policies import PoliciesScreen
from kes_tui.screens.status import StatusScreen
from kes_tui.screens.trace import AuditScreen
from kes_tui.widgets import DetailPane, EventLog, FilterBar, PolicyMatrix

__all__ = ["HelpScreen", "binding_sections"]

#: (section title, classes whose BINDINGS it lists), in reading order.
SECTIONS: tuple[tuple[str, tuple[type[DOMNode], ...]], ...] = (
    ("Audit / Errors", (AuditScreen, EventLog, FilterBar, DetailPane)),
    ("Keys", (KeysScreen,)),
    ("Policies", (PoliciesScreen, PolicyMatrix)),
    ("Identities", (IdentitiesScreen,)),
    ("Status", (StatusScreen,)),
    ("Dialogs", (ConfirmScreen, FormScreen)),
)

FILTER_HELP = (
    "Filter (/): space-separated terms, all must match; quote terms with spaces.\n"
    "  text            regex over the whole line          !term  negates a term\n"
    "  status:403      also 4xx, 400-499, >=500, 401,403\n"
    "  identity:ab12   identity hex prefix or friendly name\n"
    "  path:/v1/key    regex in one field: " + ", ".join(sorted(set(FIELDS))) + "\n"
)


def _keys(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    rows = []
    for binding in Binding.make_bindings(bindings):
        keys = binding.key_display or binding.key
        rows.append((keys.replace(",", " / "), binding.description or binding.action))
    return rows


def binding_sections(
    global_bindings: Sequence[BindingType],
) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every (section, [(keys, description)]) the help screen shows."""
    sections = [("Everywhere", _keys(global_bindings))]
    for title, classes in SECTIONS:
        rows: list[tuple[str, str]] = []
        for cls in classes:
            for row in _keys(cls.BINDINGS):
                if row not in rows:
                    rows.append(row)
        sections.append((title, rows))
    return sections


class HelpScreen(ModalScreen[None]):
    """Key reference.

    | Key | Action |
    | :- | :- |
    | `escape` / `?` / `q` | Close. |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close help"),
    ]
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        & > VerticalScroll {
            width: 90; height: 90%; border: thick $accent; background: $surface; padding: 0 1;
        }
    }
    """

    def __init__(self, global_bindings: Sequence[BindingType]) -> None:
        super().__init__()
        self.global_bindings = global_bindings

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("kes-tui keys", "bold underline"))
            for title, rows in binding_sections(self.global_bindings):
                table = Table(title=title, title_justify="left", show_header=False, box=None)
                table.add_column(style="bold cyan", min_width=22)
                table.add_column()
                for keys, description in rows:
                    table.add_row(keys, description)
                yield Static(table)
            yield Static(Text(FILTER_HELP, "dim"))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
