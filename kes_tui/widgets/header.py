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
    "failed": "bold red",
    "offline": "dim",
    "idle": "dim",
}


def _stream(label: str, state: StreamState, *, compact: bool = False) -> Text:
    dot = "●" if state.phase == "live" else "○"
    words = "" if compact and state.phase == "live" else f" {state.describe()}"
    return Text.assemble((f"{label} ", "dim"), (f"{dot}{words}", _PHASE_STYLE[state.phase]))


def header_text(info: HeaderInfo, width: int = 0) -> Text:
    """Line one of the header for ``info``, fitted to ``width`` cells (0: no limit).

    A narrow terminal (80 columns, an SSH session) loses the least useful parts
    first: the server version, the words next to live streams, the identity.
    """
    who = info.identity_label or short_identity(info.identity)
    endpoint = info.endpoint or "(no server)"
    for level in range(4):
        compact = level >= 2
        parts = [
            Text.assemble(
                ("KES ", "bold"),
                (f"{info.context} ", "bold magenta") if info.context else "",
                (endpoint.removeprefix("https://") if compact else endpoint, "bold"),
            )
        ]
        if level < 1:
            parts.append(Text(info.version or "?", "dim"))
        if level < 3:
            parts.append(Text.assemble(("me ", "dim"), who))
        parts += [
            _stream("audit", info.audit, compact=compact),
            _stream("errors", info.errors, compact=compact),
            Text(f"{info.rate:,.0f} ev/s"),
        ]
        if info.dropped:
            parts.append(Text(f"dropped {info.dropped:,}", "bold red"))
        if info.read_only:
            parts.append(Text("READ-ONLY", "bold magenta"))
        text = Text(" │ " if compact else "  │  ", "dim").join(parts)
        if not width or text.cell_len <= width:
            break
    return text


def problem_text(info: HeaderInfo) -> Text:
    """The connection problem line: what is wrong, and what fixes it."""
    text = Text.assemble(("✘ ", "bold"), (info.problem, "bold"))
    if info.hint:
        text.append_text(Text.assemble("\n  fix: ", (info.hint, "bold")))
    retry = "ctrl+r retries" if info.fatal else "retrying; ctrl+r retries now"
    text.append(f"  ({retry})")
    return text


def mode_bar(current: str, width: int = 0) -> str:
    """Line two: ``1 Audit  2 Errors …`` with the current screen highlighted (markup).

    The key hints at its end are left out when they do not fit.
    """
    items = []
    length = 0
    for number, (mode, title) in enumerate(SCREENS, start=1):
        style = "reverse bold" if mode == current else ""
        label = f" {number} {title} "
        length += len(label) + 1
        link = f"[@click=app.switch_mode('{mode}')]{label}[/]"
        items.append(f"[{style}]{link}[/]" if style else link)
    tail = "   ? help  ctrl+p commands  q quit"
    if width and length + len(tail) > width:
        tail = "  ? help" if length + 8 <= width else ""
    return " ".join(items) + (f"[dim]{tail}[/]" if tail else "")


class ConsoleHeader(Vertical):
    """The header; the owning screen sets :attr:`info` whenever the app publishes one.

    It has no key bindings of its own. A one-second timer redraws it so the
    reconnect countdown moves even when nothing else happens. While the server
    cannot be reached, a third part says why and what fixes it, on every screen.
    """

    BINDINGS: ClassVar[list[BindingType]] = []

    DEFAULT_CSS = """
    ConsoleHeader {
        height: auto;
        dock: top;
        background: $panel;
        & > #header_info { height: 1; width: 1fr; padding: 0 1; }
        & > #header_modes { height: 1; background: $boost; }
        & > #header_problem {
            display: none; height: auto; padding: 0 1; background: $error 30%; color: $text;
        }
        & > #header_problem.-shown { display: block; }
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
        yield Static(id="header_problem")

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def on_resize(self) -> None:
        self.query_one("#header_modes", Static).update(mode_bar(self.mode, self.size.width))
        self.watch_info(self.info)

    def _tick(self) -> None:
        if "reconnecting" in (self.info.audit.phase, self.info.errors.phase):
            self.watch_info(self.info)

    def watch_info(self, info: HeaderInfo) -> None:
        if not self.is_mounted:
            return
        width = max(0, self.size.width - 2)
        self.query_one("#header_info", Static).update(header_text(info, width), layout=False)
        problem = self.query_one("#header_problem", Static)
        if info.problem:
            problem.update(problem_text(info))
        if problem.has_class("-shown") != bool(info.problem):
            problem.set_class(bool(info.problem), "-shown")
