"""The Status screen shows latency the server's numbers support, against a real server."""

from __future__ import annotations

import io

from rich.console import Console, RenderableType

from kes_tui.screens import StatusScreen
from kes_tui.screens.status import audit_latency_table, metrics_table
from tests.kes_tui.conftest import (
    ON_A_SERVER,
    SIZE,
    AppFactory,
    screen_lines,
    sync_client,
    wait_for,
)
from tests.support.server import RunningServer

pytestmark = ON_A_SERVER


def plain(renderable: RenderableType) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def row(text: str, label: str) -> str:
    """The value next to ``label`` in a two-column panel."""
    line = next(line for line in text.splitlines() if line.strip().startswith(label))
    return line.strip().removeprefix(label).strip()


async def test_latency_is_not_invented(app_factory: AppFactory, kes_server: RunningServer) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.header.audit.phase == "live")
        with sync_client(kes_server) as kes:
            for _ in range(30):  # sub-millisecond requests, all in the first 10 ms bucket
                kes.version()
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, StatusScreen)
        await wait_for(pilot, lambda: len(screen.history.samples) >= 1)
        await wait_for(pilot, lambda: len(app.audit.rows) >= 30)
        traffic = plain(metrics_table(screen.history))
        # The histogram only knows "under 10 ms": no interpolated "5.0 ms".
        assert row(traffic, "latency p50") == "< 10 ms"
        mean = row(traffic, "latency mean")
        assert mean.endswith(("µs", " ms")) and not mean.startswith("5 ms")
        # Measured latencies come from the audit stream, and are exact.
        audit = plain(audit_latency_table(app.audit))
        newest = [r.latency_ns for r in list(app.audit.rows)[-1000:] if not r.marker]
        assert row(audit, "requests") == f"last {len(newest):,}"
        assert row(audit, "max").endswith(("µs", "ms", "s"))
        await pilot.pause()
        shown = "\n".join(screen_lines(app))
        assert "Latency (audit stream)" in shown and "p99" in shown
        assert "Top identities" in shown and "root" in shown  # the 30 requests above
