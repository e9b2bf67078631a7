"""The two live trace screens: audit (default) and errors.

Both are a :class:`TraceScreen`: an ``EventLog`` over one of the app's
buffers, a filter bar, a status line and a detail pane. The app appends
batches to the buffer and publishes a ``TraceBatch``; the screen only tells
its log that rows arrived, so a screen costs nothing per event.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from kes_tui.messages import StreamKind, TraceBatch
from kes_tui.model import AuditRow, EventStore, Row, format_latency
from kes_tui.screens.base import ConsoleScreen
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


class TraceScreen(ConsoleScreen):
    """A live trace: follow, pause, filter, details.

    | Key | Action |
    | :- | :- |
    | `/` | Filter (regex or `field:value`, see the help screen). |
    | `space` | Pause / resume following. |
    | `enter` | Details of the selected event. |
    | `escape` | Close details. |
    | `c` | Clear the buffer. |
    """

    KIND: ClassVar[StreamKind] = "audit"
    COLUMNS: ClassVar[tuple[Column, ...]] = AUDIT_COLUMNS
    PLACEHOLDER: ClassVar[str] = "regex, or field:value"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("c", "clear", "Clear"),
        Binding("escape", "close_detail", "Close details", show=False),
    ]

    DEFAULT_CSS = """
    TraceScreen {
        & #trace_status {
            height: 1; width: 1fr; background: $panel; color: $text-muted; padding: 0 1;
        }
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
        yield DetailPane(id=f"{self.KIND}_detail")
        yield EventLog(self.COLUMNS, self.store, id=f"{self.KIND}_log")
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

    def _update_status(self) -> None:
        store, log = self.store, self.log_widget
        parts = [f"{len(store):,} buffered", f"{len(store.view):,} shown"]
        if not store.filter.is_empty:
            parts.append(f"filter: {store.filter.text}")
        if store.dropped:
            parts.append(f"dropped {store.dropped:,}")
        state = f"PAUSED, {log.new_count:,} new" if log.paused else "▶ following"
        parts.append(state)
        self.query_one("#trace_status", Static).update("  ·  ".join(parts), layout=False)

    # ------------------------------------------------------------ details
    def describe(self, row: Row) -> RenderableType:
        """What the detail pane shows for ``row``."""
        return Group(Text("Event", "bold underline"), JSON(row.pretty()))

    @on(EventLog.Selected)
    def _selected(self, event: EventLog.Selected) -> None:
        self.query_one(DetailPane).show(self.describe(event.row))

    @on(EventLog.Highlighted)
    def _highlighted(self, event: EventLog.Highlighted) -> None:
        pane = self.query_one(DetailPane)
        if pane.is_open and event.row is not None:
            pane.show(self.describe(event.row))

    @on(EventLog.PauseChanged)
    def _pause_changed(self) -> None:
        self._update_status()

    @on(DetailPane.Closed)
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

    def action_close_detail(self) -> None:
        pane = self.query_one(DetailPane)
        if pane.is_open:
            pane.action_close()

    def action_clear(self) -> None:
        self.store.clear()
        self.log_widget.reset()
        self._update_status()


class AuditScreen(TraceScreen):
    """Every request the server answers, live (``/v1/log/audit/trace``).

    The detail pane of a request explains the policy decision with the
    server's own engine, using the identities and policies the console
    may read.
    """

    MODE = "audit"
    KIND = "audit"
    COLUMNS = AUDIT_COLUMNS
    PLACEHOLDER = "regex, or status:403  identity:ab12  method:POST  !path:/v1/status"

    def describe(self, row: Row) -> RenderableType:
        if not isinstance(row, AuditRow):
            return super().describe(row)
        verdict = self.console.directory.explain(row.identity, row.path)
        facts = Text.assemble(
            ("identity  ", "dim"),
            row.identity or "(unknown)",
            (f"  {row.name}" if row.name else "", "bold"),
            "\n",
            ("request   ", "dim"),
            f"{row.method} {row.path}\n",
            ("status    ", "dim"),
            (str(row.status), "bold red" if row.status >= 400 else "bold green"),
            (f"  in {format_latency(row.latency_ns)}\n", "dim"),
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
            JSON(row.pretty()),
        )


class ErrorScreen(TraceScreen):
    """The server's error log, live (``/v1/log/error/trace``)."""

    MODE = "errors"
    KIND = "errors"
    COLUMNS = ERROR_COLUMNS
    PLACEHOLDER = "regex, or message:keystore  !message:tls"
