"""``EventLog``: a live, scrolling table of trace rows that draws only what is visible.

Textual's ``DataTable`` re-lays out every row when one is added, which costs
hundreds of milliseconds per hundred events once the table is large. This
widget uses the Line API instead: the rows stay in the trace buffer (a
deque owned by the app) and ``render_line`` formats just the lines on
screen, so the cost of a repaint depends on the terminal height, never on
the buffer size. The app calls :meth:`EventLog.rows_added` at most ten times
a second with whole batches.

Follow mode keeps the newest row selected and in view. Moving the cursor
up (or ``space``) pauses: the widget freezes a snapshot of the view so lines
stop moving under the operator's eyes while new events keep arriving (and
are counted as "N new"). ``end`` or ``space`` resumes following.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.events import MouseScrollUp
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from kes_tui.model import Row, format_time, status_class

__all__ = ["Column", "EventLog", "RowSource"]


class RowSource(Protocol):
    """Where the rows come from: an ``EventStore`` (its filtered ``view``)."""

    @property
    def view(self) -> Sequence[Row]: ...

    @property
    def matched(self) -> int: ...


@dataclass(frozen=True)
class Column:
    """One column: a fixed ``width``, or ``flex`` to take the remaining space."""

    title: str
    width: int = 10
    flex: bool = False
    justify: Literal["left", "right"] = "left"
    #: Colour the cell by HTTP status class.
    status: bool = False
    #: Hidden when the flexible column would get narrower than ``MIN_FLEX``.
    optional: bool = False


#: Narrowest useful flexible (request/message) column before optional columns go.
MIN_FLEX = 24


def _fit(text: str, width: int, justify: str) -> str:
    """``text`` cut or padded to exactly ``width`` terminal cells.

    ASCII (nearly every path, name and number) takes a ``len`` fast path;
    anything else goes through Rich's cell-width logic so wide characters
    cannot push the following columns out of line.
    """
    if width <= 0:
        return ""
    if not text.isascii():
        if cell_len(text) > width:
            return set_cell_size(text, width - 1) + "…"
        pad = width - cell_len(text)
        return " " * pad + text if justify == "right" else text + " " * pad
    if len(text) > width:
        return text[: width - 1] + "…" if width > 1 else text[:width]
    return text.rjust(width) if justify == "right" else text.ljust(width)


def layout(columns: Sequence[Column], total: int) -> list[int]:
    """Column widths for a line ``total`` cells wide (one space between columns).

    A width of 0 hides the column: optional ones go first when the line is
    too narrow (a detail pane is open, a small SSH window), so the request
    path stays readable.
    """
    shown = list(columns)

    def spare(cols: list[Column]) -> int:
        fixed = sum(c.width for c in cols if not c.flex) + max(0, len(cols) - 1)
        return total - fixed

    flexible = [c for c in columns if c.flex]
    while flexible and spare(shown) < MIN_FLEX * len(flexible):
        optional = [c for c in shown if c.optional]
        if not optional:
            break
        shown.remove(optional[0])
    share = max(0, spare(shown)) // len(flexible) if flexible else 0
    return [(share if c.flex else c.width) if any(c is s for s in shown) else 0 for c in columns]


class EventLog(ScrollView, can_focus=True):
    """A scrolling, filter-aware table of trace rows with follow and pause.

    | Key | Action |
    | :- | :- |
    | `up` / `k` | Move the cursor up (pauses). |
    | `down` / `j` | Move the cursor down. |
    | `pageup` / `pagedown` | Move by a screenful (up pauses). |
    | `home` / `g` | First row (pauses). |
    | `end` / `G` | Newest row; resume following. |
    | `space` | Pause / resume following. |
    | `enter` | Open the selected event (posts ``EventLog.Selected``). |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Newest", show=False),
        Binding("space", "toggle_pause", "Pause/follow"),
        Binding("enter", "select", "Details"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "event-log--header",
        "event-log--cursor",
        "event-log--ok",
        "event-log--client-error",
        "event-log--server-error",
        "event-log--empty",
        "event-log--marker",
    }
    """
    | Class | Description |
    | :- | :- |
    | `event-log--header` | The column titles. |
    | `event-log--cursor` | The selected row. |
    | `event-log--ok` | A 2xx status cell. |
    | `event-log--client-error` | A 4xx status cell. |
    | `event-log--server-error` | A 5xx status cell. |
    | `event-log--empty` | The "waiting for events" hint. |
    | `event-log--marker` | A note in the stream (events missed while reconnecting). |
    """

    DEFAULT_CSS = """
    EventLog {
        overflow-x: hidden;
        overflow-y: scroll;
        background: $surface;
        & > .event-log--header { background: $panel; color: $text; text-style: bold; }
        & > .event-log--cursor { background: $block-cursor-blurred-background; }
        &:focus > .event-log--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
        }
        & > .event-log--ok { color: $success; }
        & > .event-log--client-error { color: $warning; text-style: bold; }
        & > .event-log--server-error { color: $error; text-style: bold; }
        & > .event-log--empty { color: $text-muted; text-style: italic; }
        & > .event-log--marker { color: $warning; text-style: italic; }
    }
    """

    paused: reactive[bool] = reactive(False)
    """True while the view is frozen; new events are counted, not shown."""
    cursor: reactive[int] = reactive(-1, always_update=True)
    """Index of the selected row in the shown rows (``-1``: none)."""

    class Selected(Message):
        """``enter`` on a row: handle with ``on_event_log_selected``."""

        def __init__(self, log: EventLog, row: Row) -> None:
            super().__init__()
            self.log = log
            self.row = row

        @property
        def control(self) -> EventLog:
            return self.log

    class Highlighted(Message):
        """The cursor moved to another row (the detail pane follows it)."""

        def __init__(self, log: EventLog, row: Row | None) -> None:
            super().__init__()
            self.log = log
            self.row = row

        @property
        def control(self) -> EventLog:
            return self.log

    class PauseChanged(Message):
        """Follow mode was switched off (``paused``) or back on."""

        def __init__(self, log: EventLog, paused: bool) -> None:
            super().__init__()
            self.log = log
            self.paused = paused

        @property
        def control(self) -> EventLog:
            return self.log

    def __init__(
        self,
        columns: Sequence[Column],
        source: RowSource,
        *,
        empty_text: str = "waiting for events…",
        name: str | None = None,
        id: str | None = None,  # noqa: A002 - Textual's spelling
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = tuple(columns)
        self.source = source
        #: What the log says while it has no rows (the screen keeps it current).
        self.empty_text = empty_text
        self._snapshot: list[Row] | None = None
        self._matched_at_pause = 0
        self._style_cache: dict[tuple[str, bool], Style] = {}
        self._widths: tuple[int, list[int]] = (-1, [])

    # ------------------------------------------------------------ data
    @property
    def rows(self) -> Sequence[Row]:
        """The rows on display: the frozen snapshot while paused, else the live view."""
        return self._snapshot if self._snapshot is not None else self.source.view

    @property
    def new_count(self) -> int:
        """Rows that arrived (and match the filter) since the view was paused."""
        if not self.paused:
            return 0
        return max(0, self.source.matched - self._matched_at_pause)

    @property
    def selected(self) -> Row | None:
        rows = self.rows
        if 0 <= self.cursor < len(rows):
            return rows[self.cursor]
        return None

    def set_empty_text(self, text: str) -> None:
        """Change the empty-state hint (redrawn only while the log is empty)."""
        if text != self.empty_text:
            self.empty_text = text
            if not self.rows:
                self.refresh()

    def rows_added(self) -> None:
        """New rows are in the source (or the filter changed): resize and follow."""
        if self.paused:
            self.refresh()  # only the counters elsewhere change; keep lines still
            return
        self._update_size()
        self._follow()

    def reset(self) -> None:
        """The source was rebuilt (new filter, cleared buffer): re-freeze if paused."""
        if self.paused:
            self._snapshot = list(self.source.view)
            self._matched_at_pause = self.source.matched
            self.cursor = min(max(self.cursor, 0), len(self._snapshot) - 1)
        self._update_size()
        if self.paused:
            self.scroll_to_cursor()
        else:
            self._follow()
        self.refresh()

    def _update_size(self) -> None:
        """Grow the scrollable area without a screen layout pass.

        Assigning ``virtual_size`` re-lays out the whole screen (~40 ms); the
        vertical scrollbar is always shown (``overflow-y: scroll``), so a new
        height never changes the layout and updating the scroll state is enough.
        """
        size = Size(self.size.width, len(self.rows) + 1)
        if size == self.virtual_size:
            return
        if size.width != self.virtual_size.width:
            self.virtual_size = size
            return
        self.set_reactive(EventLog.virtual_size, size)
        self._scroll_update(size)
        self.refresh()

    def _follow(self) -> None:
        last = len(self.rows) - 1
        if self.cursor != last:
            self.cursor = last
        self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    # ------------------------------------------------------------ pause / follow
    def pause(self) -> None:
        """Freeze the view; new rows are counted until :meth:`resume`."""
        if not self.paused:
            self.paused = True

    def resume(self) -> None:
        """Unfreeze and jump to the newest row."""
        if self.paused:
            self.paused = False

    def watch_paused(self, paused: bool) -> None:
        if paused:
            self._snapshot = list(self.source.view)
            self._matched_at_pause = self.source.matched
        else:
            self._snapshot = None
            self._update_size()
            self._follow()
        self.post_message(self.PauseChanged(self, paused))

    def watch_cursor(self, cursor: int) -> None:
        self.refresh()
        self.post_message(self.Highlighted(self, self.selected))

    def scroll_to_cursor(self) -> None:
        """Scroll just enough to show the cursor row (header line excluded)."""
        visible = max(1, self.size.height - 1)
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def _move(self, delta: int) -> None:
        rows = len(self.rows)
        if not rows:
            return
        if delta < 0:
            self.pause()
        self.cursor = min(max(0, self.cursor + delta), rows - 1)
        self.scroll_to_cursor()

    # ------------------------------------------------------------ actions
    def action_cursor_up(self) -> None:
        self._move(-1)

    def action_cursor_down(self) -> None:
        self._move(1)

    def action_page_up(self) -> None:
        self._move(-max(1, self.size.height - 2))

    def action_page_down(self) -> None:
        self._move(max(1, self.size.height - 2))

    def action_first(self) -> None:
        self._move(-len(self.rows))

    def action_last(self) -> None:
        if self.paused:
            self.resume()
        else:
            self._follow()

    def action_toggle_pause(self) -> None:
        if self.paused:
            self.resume()
        else:
            self.pause()

    def action_select(self) -> None:
        row = self.selected
        if row is not None:
            self.post_message(self.Selected(self, row))

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        """Scrolling back in time means reading: stop the lines from moving."""
        self.pause()

    def on_resize(self) -> None:
        self._update_size()
        if not self.paused:
            self._follow()

    # ------------------------------------------------------------ rendering
    def _style(self, name: str, partial: bool = False) -> Style:
        """Component styles, cached: ``render_line`` runs for every visible line."""
        key = (name, partial)
        style = self._style_cache.get(key)
        if style is None:
            style = self._style_cache[key] = self.get_component_rich_style(name, partial=partial)
        return style

    def notify_style_update(self) -> None:
        self._style_cache.clear()
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width  # excludes the scrollbar
        base = self.rich_style
        if self._widths[0] != width:
            self._widths = (width, layout(self.columns, width))
        widths = self._widths[1]
        if y == 0:
            header = self._style("event-log--header")
            cells: list[Segment] = []
            for column, cell_width in zip(self.columns, widths, strict=True):
                if not cell_width:
                    continue
                if cells:
                    cells.append(Segment(" ", header))
                cells.append(Segment(_fit(column.title, cell_width, column.justify), header))
            return Strip(cells).adjust_cell_length(width, header)
        rows = self.rows
        index = round(self.scroll_y) + y - 1
        if not rows:
            # The hint may be a whole sentence (why the log is empty, and the fix): wrap it.
            lines = textwrap.wrap(self.empty_text, max(10, width - 2))
            if 1 <= y <= len(lines):
                hint = Segment(f" {lines[y - 1]}", self._style("event-log--empty"))
                return Strip([hint]).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        if index >= len(rows):
            return Strip.blank(width, base)
        row = rows[index]
        line_style = base + self._style("event-log--cursor") if index == self.cursor else base
        if row.marker:
            note = f"{_fit(format_time(row.time), self.columns[0].width, 'left')} {row.text}"
            style = line_style + self._style("event-log--marker", partial=True)
            return Strip([Segment(note, style)]).adjust_cell_length(width, line_style)
        segments: list[Segment] = []
        used = 0
        for column, cell_width, text in zip(self.columns, widths, row.cells(), strict=False):
            if not cell_width:
                continue
            if segments:
                segments.append(Segment(" ", line_style))
            style = line_style
            kind = status_class(row.status)
            if column.status and kind != "other":
                style = line_style + self._style(f"event-log--{kind}", partial=True)
            segments.append(Segment(_fit(text, cell_width, column.justify), style))
            used += cell_width + (1 if used else 0)
        if used < width:
            segments.append(Segment(" " * (width - used), line_style))
            used = width
        if used == width:  # every cell has its exact width: skip Rich's re-measuring
            return Strip(segments, width)
        return Strip(segments).adjust_cell_length(width, line_style)
