"""Sorting the Keys and Identities tables (``s`` or a header click)."""

from __future__ import annotations

from kes_client import KeyInfo
from kes_tui.app import KesApp
from kes_tui.screens import IdentitiesScreen, KeysScreen
from tests.kes_tui import data
from tests.kes_tui.conftest import SIZE


def column(screen: KeysScreen | IdentitiesScreen, index: int) -> list[str]:
    table = screen.table
    return [str(table.get_row_at(row)[index]) for row in range(table.row_count)]


async def test_keys_sort_by_column_and_reverse() -> None:
    app = KesApp(None, connect=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, KeysScreen)
        screen.show_keys(
            [KeyInfo("b", created_at="2026-01-02"), KeyInfo("a", created_at="2026-01-03")]
        )
        await pilot.pause()
        assert column(screen, 1) == ["a", "b"]
        await pilot.press("s")  # created at
        assert column(screen, 1) == ["b", "a"]
        await pilot.click("#keys_table", offset=(20, 0))  # the "created at" header again
        await pilot.pause()
        assert column(screen, 1) == ["a", "b"] and screen.order.reverse


async def test_identities_sort_keeps_root_first() -> None:
    app = KesApp(None, connect=False)
    app.set_directory(data.DIRECTORY)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, IdentitiesScreen)
        assert column(screen, 2)[1:] == ["backup", "minio", "my-app"]  # by policy
        await pilot.press("s", "s")  # identity, then name
        assert screen.order.column == "name" and column(screen, 1)[1:] == [
            "backup",
            "minio",
            "my-app",
        ]
        await pilot.click("#identities_table", offset=(70, 0))  # the "name" header: reversed
        await pilot.pause()
        names = column(screen, 1)
        assert names[0] == "root" and names[1:] == sorted(names[1:], reverse=True)
