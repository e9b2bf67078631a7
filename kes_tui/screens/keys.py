"""Keys screen: list, filter, create, import, delete, and prove a key works.

"Test" draws a data key under the master key and decrypts it again: the
one round trip that proves the key exists, is readable by the store and
the caller's policy lets it both generate and decrypt.
"""

from __future__ import annotations

import time
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input, Static

from kes_client import KeyInfo
from kes_tui.model import match_name, parse_key_material
from kes_tui.screens.base import ConsoleScreen
from kes_tui.screens.modals import ConfirmScreen, Field, FormScreen

__all__ = ["KeysScreen"]


class KeysScreen(ConsoleScreen):
    """Master keys on the server.

    | Key | Action |
    | :- | :- |
    | `/` | Filter the list (substring or glob such as `app-*`). |
    | `n` | Create a key. |
    | `i` | Import a key (hex or base64, 32 bytes). |
    | `d` | Delete the selected key (asks, naming the key). |
    | `t` | Test: generate a data key and decrypt it. |
    | `r` | Reload the list. |
    """

    MODE = "keys"
    MUTATING = frozenset({"create", "import_key", "delete"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("n", "create", "Create"),
        Binding("i", "import_key", "Import"),
        Binding("d", "delete", "Delete"),
        Binding("t", "test", "Test"),
        Binding("r", "reload", "Reload"),
    ]
    DEFAULT_CSS = """
    KeysScreen {
        & #keys_filter { height: 1; border: none; padding: 0 1; background: $panel; }
        & #keys_status { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[KeyInfo] = []

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="/ filter keys: substring or glob (app-*)", id="keys_filter")
        yield DataTable[str](id="keys_table", cursor_type="row", zebra_stripes=True)
        yield Static(id="keys_status")

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#keys_table", DataTable)

    def on_mount(self) -> None:
        super().on_mount()
        self.table.add_columns("name", "created at", "created by")
        self.table.focus()
        self.action_reload()

    # ------------------------------------------------------------ list
    def show_keys(self, keys: list[KeyInfo]) -> None:
        """Display ``keys`` (sorted), applying the current filter."""
        self.keys = sorted(keys, key=lambda k: k.name)
        self._render_table()

    def _render_table(self) -> None:
        query = self.query_one("#keys_filter", Input).value
        shown = [k for k in self.keys if match_name(query, k.name)]
        table = self.table
        table.clear()
        for key in shown:
            table.add_row(key.name, key.created_at or "-", key.created_by or "-", key=key.name)
        status = f"{len(shown)} of {len(self.keys)} keys"
        if self.console.read_only:
            status += "  ·  read-only"
        self.query_one("#keys_status", Static).update(status)

    @on(Input.Changed, "#keys_filter")
    def _filter_changed(self) -> None:
        self._render_table()

    @on(Input.Submitted, "#keys_filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def action_filter(self) -> None:
        self.query_one("#keys_filter", Input).focus()

    @property
    def selected(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    @work(exclusive=True, group="key-list", exit_on_error=False, description="list keys")
    async def action_reload(self) -> None:
        client = self.console.client
        if client is None:
            self._render_table()
            return
        self.show_keys(await client.list_keys("*"))

    # ------------------------------------------------------------ actions
    @work(group="key-change", exit_on_error=False, description="create key")
    async def action_create(self) -> None:
        answer = await self.app.push_screen_wait(
            FormScreen(
                "Create key", [Field("name", "Key name", placeholder="my-key")], submit="Create"
            )
        )
        client = self.console.client
        if not answer or not answer["name"].strip() or client is None:
            return
        name = answer["name"].strip()
        await client.create_key(name)
        self.notify(f"Created key {name!r}", title="Keys")
        self.action_reload()

    @work(group="key-change", exit_on_error=False, description="import key")
    async def action_import_key(self) -> None:
        answer = await self.app.push_screen_wait(
            FormScreen(
                "Import key",
                [
                    Field("name", "Key name", placeholder="my-key"),
                    Field("key", "Key (64 hex digits or base64 of 32 bytes)", password=True),
                ],
                submit="Import",
            )
        )
        client = self.console.client
        if not answer or client is None:
            return
        name = answer["name"].strip()
        try:
            material = parse_key_material(answer["key"])
        except ValueError as exc:
            self.notify(f"Not imported: {exc}", title="Import key", severity="error")
            return
        await client.import_key(name, material)
        self.notify(f"Imported key {name!r}", title="Keys")
        self.action_reload()

    @work(group="key-change", exit_on_error=False, description="delete key")
    async def action_delete(self) -> None:
        name = self.selected
        client = self.console.client
        if name is None or client is None:
            return
        confirmed = await self.app.push_screen_wait(
            ConfirmScreen(
                "Delete key",
                f"Delete key [b]{name}[/b]?\n\nData encrypted with it can no longer be "
                "decrypted unless the key is backed up elsewhere.",
            )
        )
        if not confirmed:
            return
        await client.delete_key(name)
        self.notify(f"Deleted key {name!r}", title="Keys")
        self.action_reload()

    @work(group="key-test", exit_on_error=False, description="test key")
    async def action_test(self) -> None:
        name = self.selected
        client = self.console.client
        if name is None or client is None:
            return
        started = time.perf_counter()
        dek = await client.generate_key(name)
        plaintext = await client.decrypt(name, dek.ciphertext)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if plaintext == dek.plaintext:
            self.notify(
                f"Key {name!r} works: generated a {len(dek.plaintext) * 8}-bit data key and "
                f"decrypted it in {elapsed_ms:.0f} ms",
                title="Test passed",
            )
        else:
            self.notify(f"Key {name!r}: decrypted data key differs!", severity="error")
