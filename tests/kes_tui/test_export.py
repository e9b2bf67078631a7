"""Getting events and names out of the console: clipboard, pager, NDJSON file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Input

from kes_tui.app import KesApp
from kes_tui.model import audit_gap
from kes_tui.screens import AuditScreen, FormScreen, IdentitiesScreen, KeysScreen
from kes_tui.widgets import EventLog
from tests.kes_tui import data
from tests.kes_tui.conftest import SIZE, wait_for


def demo() -> KesApp:
    app = KesApp(None, connect=False)
    app.set_directory(data.DIRECTORY)
    app.ingest("audit", data.audit_events())
    return app


async def test_copy_selected_event_as_one_json_line() -> None:
    app = demo()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("up", "y")
        row = app.screen.query_one(EventLog).selected
        assert row is not None
        assert json.loads(app.clipboard) == row.raw and "\n" not in app.clipboard


async def test_open_selected_event_in_pager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "paged.json"
    monkeypatch.setenv("PAGER", f"cat > {out} <")  # a pager that keeps what it was shown
    app = demo()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("up", "o")
        await wait_for(pilot, out.exists)
        row = app.screen.query_one(EventLog).selected
        assert row is not None
        assert json.loads(out.read_text()) == row.raw and out.read_text().count("\n") > 3


async def test_save_filtered_view_as_ndjson(tmp_path: Path) -> None:
    app = demo()
    target = tmp_path / "denied.ndjson"
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        screen.apply_filter("status:403")
        await wait_for(pilot, lambda: app.audit.filter.text == "status:403")
        app.audit.extend([audit_gap(app.audit.next_seq, "21:51:00", "a marker")])
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, FormScreen))
        field = app.screen.query_one("#field_path", Input)
        assert field.value.startswith("kes-audit-") and field.value.endswith(".ndjson")
        field.value = str(tmp_path)  # exists: refused in place
        await pilot.press("enter")
        assert isinstance(app.screen, FormScreen)
        field.value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, target.exists)
        await wait_for(pilot, lambda: "Saved 6 events" in str(list(app._notifications)))
    events = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(events) == 6 and all(e["response"]["code"] == 403 for e in events)


async def test_copy_identity_and_key_name() -> None:
    app = demo()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5", "y")
        assert isinstance(app.screen, IdentitiesScreen)
        assert app.clipboard == data.ROOT
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, KeysScreen)
        screen.show_keys(data.KEYS)
        await pilot.pause()
        await pilot.press("y")
        assert app.clipboard == "backup-primary"
        await pilot.press("4", "y")
        assert app.clipboard.startswith("/v1/")
