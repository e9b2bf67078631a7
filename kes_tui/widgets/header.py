"""``ConsoleHeader``: the two lines at the top of every screen.

Line one answers "what am I looking at and is it alive": endpoint, server
version, the console's own identity, the state of both trace streams
(with a reconnect countdown) and the event rate. Line two is the screen
bar; its entries are links, so a mouse works as well as the number keys.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from kes_tui.model import HeaderInfo, StreamState, short_identity

__all__ = ["SCREENS", "ConsoleHeader"]

#: (mode, title) in number-key order; the app binds 1..n to these.
SCREENS: tuple[tuple[str, str], ...] = (
    ("audit", "Audit"),
    ("errors", "Errors"),
    ("keys", "Keys"),
    ("policies", "Policies"),
    ("identities", "Identities"),
    ("status", "Status"),
)

_PHASE_STYLE = {
    "live": "bold green",
    "connecting": "yellow",
    "reconnecting": "bold yellow",
    "denied": "bold red",
    "offline": "dim",
    "idle": "dim",
}


def _stream(label: str, state: StreamState) -> Text:
    dot = "●" if state.phase == "live" else "○"
    return Text.assemble(
        (f"{label} ", "dim"), (f"{dot} {state.describe()}", _PHASE_STYLE[state.phase])
    )


def header_text(info: HeaderInfo) -> Text:
    """Line one of the header for ``info`` (pure, for tests)."""
    who = info.identity_label or short_identity(info.identity)
    parts = [
        Text.assemble(("KES ", "bold"), (info.endpoint or "(no server)", "bold")),
        Text(info.version or "?", "dim"),
        Text.assemble(("me ", "dim"), who),
        _stream("audit", info.audit),
        _stream("errors", info.errors),
        Text(f"{info.rate:,.0f} ev/s"),
    ]
    if info.dropped:
        parts.append(Text(f"dropped {info.dropped:,}", "bold red"))
    if info.read_only:
        parts.append(Text("READ-ONLY", "bold magenta"))
    return Text("  │  ", "dim").join(parts)


def mode_bar(current: str) -> str:
    """Line two: ``1 Audit  2 Errors …`` with the current screen highlighted (markup)."""
    items = []
    for number, (mode, title) in enumerate(SCREENS, start=1):
        style = "reverse bold" if mode == current else ""
        label = f" {number} {title} "
        link = f"[@click=app.switch_mode('{mode}')]{label}[/]"
        items.append(f"[{style}]{link}[/]" if style else link)
    return " ".join(items) + "   [dim]? help  ctrl+p commands  q quit[/]"


class ConsoleHeader(Vertical):
    """The header; the owning screen sets :attr:`info` whenever the app publishes one.

    It has no key bindings of its own. A one-second timer redraws it so the
    reconnect countdown moves even when nothing else happens.
    """

    BINDINGS: ClassVar[list[BindingType]] = []

    DEFAULT_CSS = """
    ConsoleHeader {
        height: 2;
        dock: top;
        background: $panel;
        & > #header_info { height: 1; width: 1fr; padding: 0 1; }
        & > #header_modes { height: 1; background: $boost; }
    }
    """

    info: reactive[HeaderInfo] = reactive(HeaderInfo, always_update=True)
    """What the first line shows."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def compose(self) -> ComposeResult:
        yield Static(header_text(self.info), id="header_info")
        yield Static(mode_bar(self.mode), id="header_modes")

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        if "reconnecting" in (self.info.audit.phase, self.info.errors.phase):
            self.watch_info(self.info)

    def watch_info(self, info: HeaderInfo) -> None:
        if self.is_mounted:
            self.query_one("#header_info", Static).update(header_text(info), layout=False)
