"""SVG snapshots of the main screens, fed with fixed data (no server, no clock).

Update after an intended visual change with ``make snapshots``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot

from kes_client import Status
from kes_tui.app import KesApp
from kes_tui.model import StreamState, parse_metrics
from kes_tui.screens import KeysScreen, StatusScreen, TraceScreen
from tests.kes_tui import data

SIZE = (120, 32)
#: The smallest terminal the console is made for (an SSH session, a split pane).
NARROW = (80, 24)
SnapCompare = Callable[..., bool]


def demo_app(**kwargs: Any) -> KesApp:
    """A console with the fixed demo data and a frozen clock."""
    app = KesApp(
        None,
        endpoint="https://kes.example.net:7373",
        identity=data.ROOT,
        connect=False,
        clock=lambda: 0.0,
        **kwargs,
    )
    return app


async def setup(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, KesApp)
    app.set_header(
        version="v0.1.0",
        identity_label=f"root {data.ROOT[:8]}",
        audit=StreamState("live"),
        errors=StreamState("live"),
    )
    app.set_directory(data.DIRECTORY)
    app.ingest("audit", data.audit_events())
    app.ingest("errors", data.error_events())
    app.flush()
    await pilot.pause()


def then(*steps: Callable[[Pilot[None]], Awaitable[None]]) -> Callable[[Pilot[None]], Any]:
    async def run(pilot: Pilot[None]) -> None:
        await setup(pilot)
        for step in steps:
            await step(pilot)
        await pilot.pause()

    return run


def press(*keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run(pilot: Pilot[None]) -> None:
        await pilot.press(*keys)
        await pilot.pause()

    return run


async def status_demo(pilot: Pilot[None]) -> None:
    """The Status screen fed with ten scrapes of fixed metrics."""
    await pilot.press("6")
    screen = pilot.app.screen
    assert isinstance(screen, StatusScreen)
    screen.status = Status("v0.1.0", uptime_ns=93_784 * 10**9, kms_state="available")
    for i, total in enumerate((0, 40, 130, 150, 260, 420, 430, 600, 640, 700)):
        text = data.METRICS.replace(
            "kes_http_request_success 1200", f"kes_http_request_success {total}"
        )
        screen.history.add(parse_metrics(text, at=2.0 * i))
    screen.redraw()
    await pilot.pause()


class TestAudit:
    def test_following(self, snap_compare: SnapCompare) -> None:
        assert snap_compare(demo_app(), terminal_size=SIZE, run_before=then())

    def test_filtered_paused_with_detail(self, snap_compare: SnapCompare) -> None:
        async def filter_denied(pilot: Pilot[None]) -> None:
            screen = pilot.app.screen
            assert isinstance(screen, TraceScreen)
            screen.apply_filter("status:403")
            await pilot.pause()

        assert snap_compare(
            demo_app(),
            terminal_size=SIZE,
            run_before=then(filter_denied, press("up", "up", "enter")),
        )

    def test_filter_bar_while_typing(self, snap_compare: SnapCompare) -> None:
        """The typed text is visible in the focused one-row bar (not just a border)."""
        assert snap_compare(
            demo_app(), terminal_size=SIZE, run_before=then(press("slash", *"status:403"))
        )

    def test_narrow_detail_pane(self, snap_compare: SnapCompare) -> None:
        assert snap_compare(
            demo_app(), terminal_size=NARROW, run_before=then(press("up", "up", "enter"))
        )


class TestNarrow:
    """80x24: nothing important is cut off."""

    def test_audit(self, snap_compare: SnapCompare) -> None:
        assert snap_compare(demo_app(), terminal_size=NARROW, run_before=then())

    def test_identities(self, snap_compare: SnapCompare) -> None:
        assert snap_compare(demo_app(), terminal_size=NARROW, run_before=then(press("5")))

    def test_matrix_keeps_the_identity_column(self, snap_compare: SnapCompare) -> None:
        keys = ("4", "down", *["right"] * 10)
        assert snap_compare(demo_app(), terminal_size=NARROW, run_before=then(press(*keys)))

    def test_status(self, snap_compare: SnapCompare) -> None:
        assert snap_compare(demo_app(), terminal_size=NARROW, run_before=then(status_demo))


class TestFailures:
    def test_untrusted_server(self, snap_compare: SnapCompare) -> None:
        """A fatal connection problem: cause and fix under the header, empty states say why."""

        async def fail(pilot: Pilot[None]) -> None:
            app = pilot.app
            assert isinstance(app, KesApp)
            reason = (
                "TLS handshake with https://kes.example.net:7373 failed: "
                "server certificate not trusted (self-signed certificate)"
            )
            hint = "pass --ca FILE (the CA that signed the server certificate) or -k"
            app.set_header(
                problem=reason,
                hint=hint,
                fatal=True,
                audit=StreamState("failed", reason),
                errors=StreamState("failed", reason),
            )
            screen = app.screen
            assert isinstance(screen, TraceScreen)
            screen.action_clear()
            await pilot.pause()

        assert snap_compare(demo_app(), terminal_size=SIZE, run_before=then(fail))


class TestErrors:
    def test_errors(self, snap_compare: SnapCompare) -> None:
        assert snap_compare(demo_app(), terminal_size=SIZE, run_before=then(press("2")))


class TestKeys:
    def test_keys(self, snap_compare: SnapCompare) -> None:
        async def keys(pilot: Pilot[None]) -> None:
            await pilot.press("3")
            screen = pilot.app.screen
            assert isinstance(screen, KeysScreen)
            screen.show_keys(data.KEYS)
            await pilot.pause()

        assert snap_compare(demo_app(), terminal_size=SIZE, run_before=then(keys))

    def test_keys_read_only(self, snap_compare: SnapCompare) -> None:
        assert snap_compare(
            demo_app(read_only=True), terminal_size=SIZE, run_before=then(press("3"))
        )


class TestPolicies:
    def test_matrix(self, snap_compare: SnapCompare) -> None:
        assert snap_compare(
            demo_app(), terminal_size=SIZE, run_before=then(press("4", "down", "down", "right"))
        )


class TestIdentities:
    def test_identities(self, snap_compare: SnapCompare) -> None:
        assert snap_compare(demo_app(), terminal_size=SIZE, run_before=then(press("5")))


class TestStatus:
    def test_status(self, snap_compare: SnapCompare) -> None:
        assert snap_compare(demo_app(), terminal_size=SIZE, run_before=then(status_demo))


class TestHelp:
    def test_help(self, snap_compare: SnapCompare) -> None:
        assert snap_compare(
            demo_app(), terminal_size=(120, 60), run_before=then(press("question_mark"))
        )
