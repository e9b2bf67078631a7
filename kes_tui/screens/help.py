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
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Static

from kes_tui.model import FIELD_NAMES
from kes_tui.screens.identities import IdentitiesScreen
from kes_tui.screens.keys import KeysScreen
from kes_tui.screens.modals import ConfirmScreen, FormScreen
from kes_tui.screens.policies import PoliciesScreen
from kes_tui.screens.status import StatusScreen
from kes_tui.screens.trace import AuditScreen, TraceScreen
from kes_tui.widgets import DetailPane, EventLog, FilterBar, PolicyMatrix

__all__ = ["HelpScreen", "binding_sections", "key_label"]

#: (section title, classes whose BINDINGS it lists), in reading order.
SECTIONS: tuple[tuple[str, tuple[type[DOMNode], ...]], ...] = (
    ("Audit / Errors", (TraceScreen, AuditScreen, EventLog, FilterBar, DetailPane)),
    ("Keys", (KeysScreen,)),
    ("Policies", (PoliciesScreen, PolicyMatrix)),
    ("Identities", (IdentitiesScreen,)),
    ("Status", (StatusScreen,)),
    ("Dialogs", (ConfirmScreen, FormScreen)),
)

NOTES = (
    "tab moves the focus between the list and the detail pane (then ↑ ↓ scroll it).\n"
    "Keys that change the server are hidden with --read-only.\n"
)

FILTER_HELP = (
    "Filter (/): space-separated terms, all must match; quote terms with spaces.\n"
    "  text            regex over the whole line          !term  negates a term\n"
    "  status:403      also 4xx, 400-499, >=500, 401,403\n"
    "  identity:ab12   identity hex prefix or friendly name\n"
    "  latency:>5ms    also <1ms, >=500us, 1ms-5ms\n"
    "  path:/v1/key    regex in one field: " + ", ".join(FIELD_NAMES) + "\n"
)


#: Keys whose Textual display is a symbol an operator may not recognise.
_WORDS = {"enter": "enter", "escape": "esc", "tab": "tab", "space": "space"}


def key_label(key: str) -> str:
    """How a key is written for people: ``?`` not ``question_mark``, ``[`` not
    ``left_square_bracket``, ``ctrl+r``, ``pgup``, ``↑``."""
    if key in _WORDS:
        return _WORDS[key]
    modifiers, _, name = key.rpartition("+")
    return f"{modifiers}+{format_key(name)}" if modifiers else format_key(key)


def _keys(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    """(keys, description) rows; keys that do the same thing share a row (``↑ / k``)."""
    keys_for: dict[str, list[str]] = {}
    for binding in Binding.make_bindings(bindings):
        label = binding.key_display or key_label(binding.key)
        keys = keys_for.setdefault(binding.description or binding.action, [])
        if label not in keys:
            keys.append(label)
    return [(" / ".join(keys), description) for description, keys in keys_for.items()]


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
            yield Static(Text(NOTES, "dim"))
            yield Static(Text(FILTER_HELP, "dim"))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
