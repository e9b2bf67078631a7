"""The two live trace screens: audit (default) and errors.

Both are a :class:`TraceScreen`: an ``EventLog`` over one of the app's
buffers, a filter bar, a status line and a detail pane. The app appends
batches to the buffer and publishes a ``TraceBatch``; the screen only tells
its log that rows arrived, so a screen costs nothing per event.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Static

from kes_tui.messages import StreamKind, TraceBatch
from kes_tui.model import AuditRow, EventStore, HeaderInfo, Row, format_latency, pager_command
from kes_tui.screens.base import ConsoleScreen
from kes_tui.screens.modals import Field, FormScreen
from kes_tui.widgets import Column, DetailPane, EventLog, FilterBar

__all__ = ["AuditScreen", "ErrorScreen", "TraceScreen"]

AUDIT_COLUMNS = (
    Column("time", 12),
    Column("identity", 14),
    Column("client ip", 15, optional=True),
    Column("request", flex=True),
    Column("status", 6, justify="right", status=True),
    Column("latency", 8, justify="right", optional=True),
)
ERROR_COLUMNS = (Column("time", 12), Column("message", flex=True))


def event_json(text: str) -> Text:
    """Highlighted JSON that wraps: long values fold at the edge instead of being cut."""
    highlighted = JSON(text).text
    highlighted.no_wrap = False
    highlighted.overflow = "fold"
    return highlighted


TRACE_PATHS: dict[StreamKind, str] = {
    "audit": "/v1/log/audit/trace",
    "errors": "/v1/log/error/trace",
}


def _new_file(value: str) -> str:
    """The save form's check: a path that does not exist yet, in an existing directory."""
    path = os.path.expanduser(value.strip())
    if not path:
        return "name the file"
    if os.path.exists(path):
        return "exists already: choose another name"
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        return "no such directory"
    return ""


def write_ndjson(path: str, events: Iterable[Mapping[str, Any]]) -> int:
    """Write events as compact JSON lines, the server's own format; returns how many."""
    count = 0
    with open(path, "x", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(dict(event), separators=(",", ":"), ensure_ascii=False) + "\n")
            count += 1
    return count


class TraceScreen(ConsoleScreen):
    """A live trace: follow, pause, filter, details.

    | Key | Action |
    | :- | :- |
    | `/` | Filter (regex or `field:value`, see the help screen). |
    | `space` | Pause / resume following. |
    | `enter` | Details of the selected event. |
    | `escape` | Close details, else clear the filter. |
    | `c` | Clear the buffer. |
    | `y` | Copy the selected event (JSON) to the clipboard. |
    | `o` | Open the selected event in `$PAGER`. |
    | `s` | Save the events shown (the filtered view) as NDJSON. |
    """

    KIND: ClassVar[StreamKind] = "audit"
    COLUMNS: ClassVar[tuple[Column, ...]] = AUDIT_COLUMNS
    PLACEHOLDER: ClassVar[str] = "regex, or field:value"
    #: What the log says while the stream is live but nothing arrived yet.
    WAITING: ClassVar[str] = "waiting for events…"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("c", "clear", "Clear"),
        Binding("y", "copy", "Copy event (JSON)", show=False),
        Binding("o", "page", "Open event in $PAGER", show=False),
        Binding("s", "save", "Save view"),
        Binding("escape", "escape", "Close details / clear filter", show=False),
    ]

    DEFAULT_CSS = """
    TraceScreen {
        & #trace_body { height: 1fr; }
        & #trace_status {
            height: 1; width: 1fr; background: $panel; color: $text-muted; padding: 0 1;
        }
        &.-narrow DetailPane.-open { width: 1fr; border-left: none; }
        &.-narrow #trace_body.-detail > EventLog { display: none; }
    }
    """

    @property
    def store(self) -> EventStore[Any]:
        return self.console.audit if self.KIND == "audit" else self.console.errors

    @property
    def log_widget(self) -> EventLog:
        return self.query_one(EventLog)

    def compose_body(self) -> ComposeResult:
        yield FilterBar(self.PLACEHOLDER, id=f"{self.KIND}_filter")
        with Horizontal(id="trace_body"):
            yield EventLog(self.COLUMNS, self.store, id=f"{self.KIND}_log")
            yield DetailPane(id=f"{self.KIND}_detail")
        yield Static(id="trace_status")

    def on_mount(self) -> None:
        super().on_mount()
        self.console.trace_signal.subscribe(self, self._batch)
        self.log_widget.focus()
        self.log_widget.reset()
        self._update_status()

    def _batch(self, batch: TraceBatch) -> None:
        if batch.kind != self.KIND:
            return
        self.log_widget.rows_added()
        self._update_status()

    def header_changed(self, info: HeaderInfo) -> None:
        self.log_widget.set_empty_text(self.empty_text())

    def context_changed(self) -> None:
        if self.detail.is_open:
            self.detail.action_close()
        self.log_widget.reset()
        self._update_status()

    def empty_text(self) -> str:
        """What the log says while it shows nothing: why, and what to do about it."""
        store = self.store
        if store.rows:
            if store.filter.is_empty:
                return f"only the console's own requests so far ({store.hidden:,}; m shows them)"
            return f"no events match the filter ({store.hidden:,} hidden) · esc clears it"
        header = self.console.header
        state = header.audit if self.KIND == "audit" else header.errors
        if state.phase == "live":
            return self.WAITING
        if state.phase == "denied":
            return (
                f"your policy does not allow {TRACE_PATHS[self.KIND]}: this screen stays "
                "empty (ask for the path in your policy, or use an identity that has it)"
            )
        if state.phase in ("failed", "reconnecting") and (header.problem or state.detail):
            fix = f" · fix: {header.hint}" if header.hint else ""
            return f"not connected: {header.problem or state.detail}{fix}"
        if state.phase == "offline":
            return "no server: nothing to show"
        return "connecting…"

    def _update_status(self) -> None:
        store, log = self.store, self.log_widget
        parts = [f"{len(store):,} buffered", f"{len(store.view):,} shown"]
        if not store.filter.is_empty:
            parts.append(f"filter: {store.filter.text}")
        if store.dropped:
            parts.append(f"dropped {store.dropped:,}")
        if store.hide_own:
            parts.append("my requests hidden (m)")
        state = f"PAUSED, {log.new_count:,} new" if log.paused else "▶ following"
        parts.append(state)
        self.query_one("#trace_status", Static).update("  ·  ".join(parts), layout=False)
        log.set_empty_text(self.empty_text())

    # ------------------------------------------------------------ details
    def describe(self, row: Row) -> RenderableType:
        """What the detail pane shows for ``row``."""
        if row.marker:
            return Text(row.text, "italic")
        return Group(Text("Event", "bold underline"), event_json(row.pretty()))

    @property
    def detail(self) -> DetailPane:
        return self.query_one(DetailPane)

    @on(EventLog.Selected)
    def _selected(self, event: EventLog.Selected) -> None:
        self.detail.show(self.describe(event.row))
        self.query_one("#trace_body").add_class("-detail")
        if self.narrow:
            self.detail.focus()  # the list is hidden: the pane is all there is

    @on(EventLog.Highlighted)
    def _highlighted(self, event: EventLog.Highlighted) -> None:
        if self.detail.is_open and event.row is not None:
            self.detail.show(self.describe(event.row))

    @on(EventLog.PauseChanged)
    def _pause_changed(self) -> None:
        self._update_status()

    @on(DetailPane.Closed)
    def _detail_closed(self) -> None:
        self.query_one("#trace_body").remove_class("-detail")
        self.log_widget.focus()

    @on(FilterBar.Closed)
    def _back_to_log(self) -> None:
        self.log_widget.focus()

    # ------------------------------------------------------------ filter
    @on(FilterBar.Changed)
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        self.store.set_filter(event.filter)
        self.log_widget.reset()
        self._update_status()

    def apply_filter(self, text: str) -> None:
        """Set the filter as if typed (command palette, tests)."""
        self.query_one(FilterBar).set_text(text)

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_escape(self) -> None:
        """Close the detail pane if it is open, else clear the filter."""
        if self.detail.is_open:
            self.detail.action_close()
        elif not self.store.filter.is_empty:
            self.query_one(FilterBar).action_clear()

    def action_clear(self) -> None:
        self.store.clear()
        self.log_widget.reset()
        self._update_status()

    # ------------------------------------------------------------ export
    def action_copy(self) -> None:
        """The selected event as one JSON line, via the terminal (OSC 52; works over SSH)."""
        row = self.log_widget.selected
        if row is None:
            return
        text = row.text if row.marker else json.dumps(dict(row.raw), separators=(",", ":"))
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied the selected event ({len(text):,} characters)", title="Clipboard")

    def action_page(self) -> None:
        """The selected event, pretty-printed, in the operator's pager."""
        row = self.log_widget.selected
        if row is None:
            return
        with tempfile.TemporaryDirectory(prefix="kes-tui-") as directory:
            path = os.path.join(directory, f"event-{row.seq}.json")
            with open(path, "w", encoding="utf-8") as out:
                out.write((row.text if row.marker else row.pretty()) + "\n")
            self.console.run_external(pager_command(path, os.environ))

    @work(group="save", exit_on_error=False, description="save events")
    async def action_save(self) -> None:
        """Write the events shown (the filter applied, markers left out) to an NDJSON file."""
        default = f"kes-{self.KIND}-{time.strftime('%Y%m%d-%H%M%S')}.ndjson"
        answer = await self.app.push_screen_wait(
            FormScreen(
                f"Save {len(self.store.view):,} events",
                [Field("path", "File (NDJSON, one event per line)", default, check=_new_file)],
                submit="Save",
            )
        )
        if not answer:
            return
        path = os.path.expanduser(answer["path"].strip())
        count = write_ndjson(path, (row.raw for row in list(self.store.view) if not row.marker))
        self.notify(f"Saved {count:,} events to {path}", title="Save")


class AuditScreen(TraceScreen):
    """Every request the server answers, live (``/v1/log/audit/trace``).

    The detail pane of a request explains the policy decision with the
    server's own engine, using the identities and policies the console
    may read.
    """

    MODE = "audit"
    KIND = "audit"
    COLUMNS = AUDIT_COLUMNS
    PLACEHOLDER = "regex, or status:403  identity:ab12  latency:>5ms  !path:/v1/status"
    WAITING = "waiting for events… every request the server answers appears here"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "toggle_own", "My requests"),
    ]

    def action_toggle_own(self) -> None:
        """Show or hide the console's own requests (hidden by default: they are polling)."""
        store = self.store
        store.set_hide_own(not store.hide_own)
        self.log_widget.reset()
        self._update_status()
        shown = "hidden" if store.hide_own else "shown"
        self.notify(f"The console's own requests are {shown}", title="Audit")

    def describe(self, row: Row) -> RenderableType:
        if not isinstance(row, AuditRow) or row.marker:
            return super().describe(row)
        verdict = self.console.directory.explain(row.identity, row.path)
        facts = Text.assemble(
            ("identity  ", "dim"),
            row.identity or "(unknown)",
            (f"  {row.name}" if row.name else "", "bold"),
            ("  (this console)" if row.own else "", "dim"),
            "\n",
            ("request   ", "dim"),
            f"{row.method} {row.path}\n",
            ("status    ", "dim"),
            (str(row.status), "bold red" if row.status >= 400 else "bold green"),
            (f"  in {format_latency(row.latency_ns)}\n", "dim"),
            overflow="fold",
        )
        style = {True: "green", False: "red", None: "yellow"}[verdict.allowed]
        policy = Text.assemble(
            ("policy    ", "dim"),
            (verdict.reason, f"bold {style}"),
        )
        if verdict.rule:
            policy.append_text(Text.assemble("\n", ("rule      ", "dim"), (verdict.rule, "bold")))
        if row.status == 403 and verdict.allowed:
            policy.append("\n(the current policies allow it: they changed since)", "italic yellow")
        return Group(
            Text("Request", "bold underline"),
            facts,
            policy,
            Text(),
            Text("Event", "bold underline"),
            event_json(row.pretty()),
        )


class ErrorScreen(TraceScreen):
    """The server's error log, live (``/v1/log/error/trace``)."""

    MODE = "errors"
    KIND = "errors"
    COLUMNS = ERROR_COLUMNS
    PLACEHOLDER = "regex, or message:keystore  !message:tls"
    WAITING = "no errors so far: the server's error events appear here as they happen"
