"""Status screen: version, uptime, key store, request rate and latency.

``/v1/status`` says whether the server and its key store are healthy;
``/v1/metrics`` is scraped every few seconds, while the screen is shown, to
draw the request rate. Latency comes from two sources with different
precision, and the screen says which is which: the metrics histogram only
knows buckets (``< 10 ms``) and the mean, while the audit stream carries the
measured latency of every request (exact percentiles, see
:mod:`kes_tui.model.metrics`).
"""

from __future__ import annotations

import itertools
import time
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Static

from kes_client import NotAllowed, Status, TransportError
from kes_tui.model import (
    AuditRow,
    EventStore,
    MetricsHistory,
    format_duration,
    format_latency,
    format_uptime,
    latency_percentiles,
    parse_metrics,
    top_talkers,
)
from kes_tui.screens.base import ConsoleScreen
from kes_tui.widgets import RateChart

__all__ = [
    "AUDIT_SAMPLE",
    "SCRAPE_INTERVAL_S",
    "StatusScreen",
    "audit_latency_table",
    "talkers_table",
]

#: How often the screen asks for status and metrics (only while it is shown).
SCRAPE_INTERVAL_S = 2.0
#: Latency percentiles from the audit stream use this many of the newest requests.
AUDIT_SAMPLE = 1_000
#: Identities listed as the busiest and as the most denied.
TOP_N = 3


def status_table(status: Status | None, problem: str = "") -> Table:
    """The server panel: version, uptime, key store."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    if status is None:
        table.add_row("server", Text(problem or "waiting…", "yellow"))
        return table
    state_style = "bold green" if status.kms_state == "available" else "bold red"
    table.add_row("version", Text(status.version, "bold"))
    table.add_row("uptime", format_uptime(status.uptime_s))
    table.add_row("key store", Text(status.kms_state or "?", state_style))
    table.add_row("store latency", f"{status.kms_latency_ms:.0f} ms")
    return table


def metrics_table(history: MetricsHistory, problem: str = "") -> Table:
    """The traffic panel: rate, counters by class, latency percentiles."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column(justify="right")
    latest = history.latest
    if latest is None:
        table.add_row("metrics", Text(problem or "waiting…", "yellow"))
        return table
    v = latest.values
    rate = history.rates[-1] if history.rates else 0.0
    table.add_row("requests/s", Text(f"{rate:,.1f}", "bold"))
    table.add_row("2xx", Text(f"{v.get('kes_http_request_success', 0):,.0f}", "green"))
    table.add_row("4xx", Text(f"{v.get('kes_http_request_error', 0):,.0f}", "yellow"))
    table.add_row("5xx", Text(f"{v.get('kes_http_request_failure', 0):,.0f}", "red"))
    table.add_row("in flight", f"{v.get('kes_http_request_active', 0):,.0f}")
    table.add_row("latency mean", format_duration(history.mean_latency()))
    for q, bucket in history.percentile_buckets().items():
        table.add_row(f"latency p{q * 100:g}", bucket.describe() if bucket else "-")
    table.add_row("audit events", f"{v.get('kes_log_audit_events', 0):,.0f}")
    table.add_row("error events", f"{v.get('kes_log_error_events', 0):,.0f}")
    return table


def _newest(audit: EventStore[AuditRow]) -> list[AuditRow]:
    """The newest requests on the audit stream (markers left out), at most ``AUDIT_SAMPLE``."""
    return [row for row in itertools.islice(reversed(audit.rows), AUDIT_SAMPLE) if not row.marker]


def audit_latency_table(audit: EventStore[AuditRow], problem: str = "") -> Table:
    """Exact latency percentiles of the newest requests seen on the audit stream."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column(justify="right")
    latencies = [row.latency_ns for row in _newest(audit)]
    if not latencies:
        table.add_row("requests", Text(problem or "none seen on the audit stream yet", "yellow"))
        return table
    table.add_row("requests", f"last {len(latencies):,}")
    for q, ns in latency_percentiles(latencies, (0.5, 0.9, 0.99, 1.0)).items():
        table.add_row("max" if q == 1.0 else f"p{q * 100:g}", format_latency(ns))
    return table


def talkers_table(audit: EventStore[AuditRow], problem: str = "") -> Table:
    """Top identities by requests and by denied (403) requests, from the audit stream."""
    table = Table.grid(padding=(0, 2))
    table.add_column()
    table.add_column(justify="right")
    busiest, denied = top_talkers(_newest(audit), TOP_N)
    if not busiest:
        table.add_row(Text(problem or "none seen on the audit stream yet", "yellow"))
        return table
    table.add_row(Text("requests", "dim"))
    for who, count in busiest:
        table.add_row(who, f"{count:,}")
    table.add_row(Text("denied (403)", "dim"))
    for who, count in denied or [("(none)", 0)]:
        table.add_row(Text(who, "red" if count else "dim"), f"{count:,}" if count else "")
    return table


class StatusScreen(ConsoleScreen):
    """Server health and traffic, refreshed every two seconds while shown.

    | Key | Action |
    | :- | :- |
    | `r` | Refresh now. |
    """

    MODE = "status"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "scrape", "Refresh")]
    DEFAULT_CSS = """
    StatusScreen {
        & #status_body { height: 1fr; }
        & #panels { height: auto; }
        & #panels_left, & #panels_right { height: auto; width: 1fr; }
        & .panel { border: round $accent; padding: 0 1; height: auto; width: 1fr; }
        & #rate_box { height: 1fr; min-height: 7; border: round $accent; padding: 0 1; }
        & #rate_title { height: 1; color: $text-muted; }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.history = MetricsHistory()
        self.status: Status | None = None
        self.status_problem = ""
        self.metrics_problem = ""
        self._scraper: Timer | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="status_body"):
            with Horizontal(id="panels"):
                with Vertical(id="panels_left"):
                    yield Static(id="server_panel", classes="panel")
                    yield Static(id="latency_panel", classes="panel")
                with Vertical(id="panels_right"):
                    yield Static(id="traffic_panel", classes="panel")
                    yield Static(id="talkers_panel", classes="panel")
            with Vertical(id="rate_box"):
                yield Static("requests per second", id="rate_title")
                yield RateChart(id="rate")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#server_panel").border_title = "Server"
        self.query_one("#traffic_panel").border_title = "Traffic (metrics)"
        self.query_one("#latency_panel").border_title = "Latency (audit stream)"
        self.query_one("#talkers_panel").border_title = f"Top identities (last {AUDIT_SAMPLE:,})"
        self.redraw()
        if self.console.client is not None:
            self._scraper = self.set_interval(SCRAPE_INTERVAL_S, self.action_scrape, pause=True)

    def context_changed(self) -> None:
        self.history = MetricsHistory()
        self.status, self.status_problem, self.metrics_problem = None, "", ""
        self.redraw()
        if self.is_current:
            self.action_scrape()

    def on_screen_resume(self) -> None:
        """Scrape while shown: every scrape of /v1/status is an audit event."""
        if self._scraper is not None:
            self.action_scrape()
            self._scraper.resume()

    def on_screen_suspend(self) -> None:
        if self._scraper is not None:
            self._scraper.pause()

    def redraw(self) -> None:
        """Repaint the panels from the current state."""
        self.query_one("#server_panel", Static).update(
            status_table(self.status, self.status_problem)
        )
        self.query_one("#traffic_panel", Static).update(
            metrics_table(self.history, self.metrics_problem)
        )
        audit, problem = self.console.audit, self._audit_problem()
        self.query_one("#latency_panel", Static).update(audit_latency_table(audit, problem))
        self.query_one("#talkers_panel", Static).update(talkers_table(audit, problem))
        rates = tuple(self.history.rates)
        self.query_one(RateChart).values = rates
        title = (
            f"requests per second, one bar per {SCRAPE_INTERVAL_S:g} s "
            f"(last {len(rates)}, peak {max(rates):,.1f})"
            if rates
            else "requests per second (no data yet: two scrapes make the first rate)"
        )
        self.query_one("#rate_title", Static).update(title)

    def _audit_problem(self) -> str:
        state = self.console.header.audit
        if state.phase == "denied":
            return "the audit trace is prohibited by your policy"
        if state.phase in ("failed", "reconnecting"):
            return "the audit trace is not connected"
        return ""

    @work(exclusive=True, group="status-scrape", exit_on_error=False, description="read status")
    async def action_scrape(self) -> None:
        client = self.console.client
        if client is None:
            return
        header = self.console.header
        if header.fatal:  # retrying cannot help; ctrl+r starts over
            self.status_problem = self.metrics_problem = f"not connected: {header.problem}"
            self.status = None
            self.redraw()
            return
        # Failures are shown in the panels, not as notifications: this runs
        # every two seconds and the header already says when the server is gone.
        try:
            self.status = await client.status()
            self.status_problem = ""
        except NotAllowed:
            self.status, self.status_problem = None, "/v1/status is prohibited by your policy"
        except TransportError as exc:
            self.status, self.status_problem = None, f"unreachable: {exc.reason}"
        try:
            self.history.add(parse_metrics(await client.metrics(), time.monotonic()))
            self.metrics_problem = ""
        except NotAllowed:
            self.metrics_problem = "/v1/metrics is prohibited by your policy"
        except TransportError as exc:
            self.metrics_problem = f"unreachable: {exc.reason}"
        self.redraw()
