"""The detail pane shows everything: it wraps, scrolls, keeps the header, fits 80x24."""

from __future__ import annotations

from kes_tui.app import KesApp
from kes_tui.model import AuditRow
from kes_tui.screens import AuditScreen, ErrorScreen
from kes_tui.widgets import DetailPane, EventLog
from tests.kes_tui import data
from tests.kes_tui.conftest import screen_lines

#: A realistic key-store failure: far longer than any terminal is wide.
LONG_ERROR = (
    "2026/11/23 21:50:11 keystore: etcd: failed to write key 'tenant-7-backup' to "
    + ", ".join(f"https://etcd-{i}.kes.example.net:2379" for i in range(40))
    + ": context deadline exceeded (THE-END)"
)


def app_with_events() -> KesApp:
    app = KesApp(None, connect=False)
    app.set_directory(data.DIRECTORY)
    app.ingest("audit", data.audit_events())
    app.ingest("errors", [{"message": LONG_ERROR}])
    return app


def text(app: KesApp) -> str:
    return "\n".join(screen_lines(app))


async def test_narrow_terminal_full_width_pane_wraps_and_scrolls() -> None:
    app = app_with_events()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ErrorScreen)
        pane = screen.query_one(DetailPane)
        assert pane.is_open and pane.has_focus  # the list is hidden: the pane has the keys
        assert pane.region.width == 80 and not screen.query_one(EventLog).display
        lines = screen_lines(app)
        assert lines[0].lstrip().startswith("KES")  # the header stays visible
        # Nothing is cut: the whole message is there, wrapped, once scrolled through.
        assert pane.max_scroll_y > 0
        seen = text(app)
        while pane.scroll_y < pane.max_scroll_y:
            await pilot.press("pagedown")
            await pilot.pause()
            seen += text(app)
        flat = "".join(seen.split())
        assert "https://etcd-39.kes.example.net:2379" in flat and "(THE-END)" in flat
        await pilot.press("escape")
        assert not pane.is_open and screen.query_one(EventLog).has_focus


async def test_wide_terminal_pane_beside_the_list_with_full_identity() -> None:
    app = app_with_events()
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        await pilot.press("up", "enter")
        await pilot.pause()
        pane = screen.query_one(DetailPane)
        log = screen.query_one(EventLog)
        assert pane.is_open and log.display and log.has_focus
        assert pane.region.x >= log.region.right  # beside, not over the list
        assert pane.region.y >= 2  # below the header and the screen bar
        assert screen_lines(app)[0].lstrip().startswith("KES")
        row = log.selected
        assert isinstance(row, AuditRow)
        assert row.identity in "".join(text(app).split())  # all 64 hex digits
        await pilot.press("tab")
        assert pane.has_focus
        await pilot.press("escape")
        assert log.has_focus
