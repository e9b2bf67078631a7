"""The ``/`` filter of the trace screens, as typed by an operator (no server needed)."""

from __future__ import annotations

from textual.widgets import Label

from kes_tui.app import KesApp
from kes_tui.screens import AuditScreen
from kes_tui.widgets import EventLog, FilterBar
from tests.kes_tui import data
from tests.kes_tui.conftest import SIZE, screen_lines, wait_for


def demo() -> KesApp:
    app = KesApp(None, connect=False)
    app.set_directory(data.DIRECTORY)
    app.ingest("audit", data.audit_events())
    return app


async def test_typed_filter_is_visible_while_typing() -> None:
    app = demo()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"status:403")
        await pilot.pause()
        bar = app.screen.query_one(FilterBar)
        assert bar.input.has_focus and bar.input.content_region.height == 1
        # What the operator sees on the bar's line is the text, not an input border.
        line = screen_lines(app)[bar.region.y]
        assert "/ status:403" in line


async def test_escape_clears_the_filter_from_the_list() -> None:
    app = demo()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        await pilot.press("slash", *"status:403", "enter")
        await wait_for(pilot, lambda: app.audit.filter.text == "status:403")
        assert screen.query_one(EventLog).has_focus
        await pilot.press("enter")  # details open: the first escape closes them
        assert screen.detail.is_open
        await pilot.press("escape")
        assert not screen.detail.is_open and app.audit.filter.text == "status:403"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.audit.filter.is_empty)
        assert len(app.audit.view) == len(app.audit)


async def test_unknown_field_and_empty_result_are_explained() -> None:
    app = demo()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        await pilot.press("slash", *"stauts:403")
        await pilot.pause()
        error = str(screen.query_one("#filter_error", Label).render())
        assert "unknown field 'stauts'" in error
        assert app.audit.filter.is_empty  # the bad filter was not applied
        await pilot.press("escape")
        screen.apply_filter("status:418")
        await wait_for(pilot, lambda: app.audit.filter.text == "status:418")
        log = screen.query_one(EventLog)
        assert (
            log.empty_text
            == f"no events match the filter ({len(app.audit)} hidden) · esc clears it"
        )
        assert any("no events match the filter" in line for line in screen_lines(app))
