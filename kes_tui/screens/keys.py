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

from kes_client import KESError, KeyInfo, NotAllowed, TransportError
from kes_server.core.errors import InvalidArgument
from kes_server.core.names import validate_name
from kes_tui.model import HeaderInfo, SortOrder, match_name, parse_key_material
from kes_tui.screens.base import ConsoleScreen
from kes_tui.screens.modals import ConfirmScreen, Field, FormScreen
from kes_tui.widgets import EmptyState

__all__ = ["KeysScreen"]


def check_key_name(value: str) -> str:
    """The server's own name rule, checked before a round trip (empty: fine)."""
    try:
        validate_name(value.strip(), "key")
    except InvalidArgument as exc:
        return f"{exc} (letters, digits, - and _; at most 80)"
    return ""


def check_key_material(value: str) -> str:
    try:
        parse_key_material(value)
    except ValueError as exc:
        return str(exc)
    return ""


#: The sortable columns (their titles) and the ``KeyInfo`` field behind each.
SORT_FIELDS = {"name": "name", "created at": "created_at", "created by": "created_by"}


class KeysScreen(ConsoleScreen):
    """Master keys on the server.

    | Key | Action |
    | :- | :- |
    | `/` | Filter the list (substring or glob such as `app-*`). |
    | `n` | Create a key. |
    | `i` | Import a key (hex or base64, 32 bytes). |
    | `d` | Delete the selected key, or every marked key (asks once, naming them). |
    | `space` | Mark or unmark the selected key for a bulk delete. |
    | `s` | Sort by the next column; click a header to sort by it (again: reversed). |
    | `t` | Test: generate a data key and decrypt it. |
    | `r` | Reload the list. |
    | `y` | Copy the selected key's name to the clipboard. |
    | `escape` | Clear the filter. |

    The list reloads by itself when the audit trace shows a key created,
    imported or deleted by anyone.
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
        Binding("space", "mark", "Mark", show=False),
        Binding("s", "sort", "Sort", show=False),
        Binding("y", "copy", "Copy name", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
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
        #: Keys marked with ``space`` for one bulk delete.
        self.marked: set[str] = set()
        self.order = SortOrder(tuple(SORT_FIELDS))
        #: False until the list was read once; ``problem`` says why it could not be.
        self.loaded = False
        self.problem = ""
        self._offline = False

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="/ filter keys: substring or glob (app-*)", id="keys_filter")
        yield DataTable[str](id="keys_table", cursor_type="row", zebra_stripes=True)
        yield EmptyState(id="keys_empty")
        yield Static(id="keys_status")

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#keys_table", DataTable)

    def on_mount(self) -> None:
        super().on_mount()
        self.table.add_column(" ", key="mark", width=1)
        for title in SORT_FIELDS:
            self.table.add_column(title, key=title)
        self.table.focus()
        self.console.keys_signal.subscribe(self, lambda _changes: self.action_reload())
        self.action_reload()

    def context_changed(self) -> None:
        self.keys, self.loaded, self.problem = [], False, ""
        self.marked.clear()
        self.action_reload()

    def header_changed(self, info: HeaderInfo) -> None:
        if self._offline and not info.problem:
            self.action_reload()  # the connection is back

    # ------------------------------------------------------------ list
    def show_keys(self, keys: list[KeyInfo]) -> None:
        """Display ``keys``, applying the current filter and sort order."""
        self.keys = list(keys)
        names = {k.name for k in keys}
        self.marked &= names  # a key deleted elsewhere is no longer marked
        self._render_table()

    def _sorted(self, keys: list[KeyInfo]) -> list[KeyInfo]:
        field, order = SORT_FIELDS[self.order.column], self.order
        return sorted(keys, key=lambda k: (getattr(k, field) or "", k.name), reverse=order.reverse)

    def _render_table(self) -> None:
        query = self.query_one("#keys_filter", Input).value
        shown = self._sorted([k for k in self.keys if match_name(query, k.name)])
        table = self.table
        selected = self.selected
        table.clear()
        for index, key in enumerate(shown):
            mark = "●" if key.name in self.marked else " "
            table.add_row(
                mark, key.name, key.created_at or "-", key.created_by or "-", key=key.name
            )
            if key.name == selected:
                table.move_cursor(row=index)
        status = f"{len(shown)} of {len(self.keys)} keys"
        status += f"  ·  {self.order.describe()}"
        if self.marked:
            status += f"  ·  {len(self.marked)} marked (d deletes them)"
        if self.console.read_only:
            status += "  ·  read-only"
        self.query_one("#keys_status", Static).update(status)
        table.set_class(not shown, "-empty")
        self.query_one(EmptyState).say("" if shown else self._empty_text(query))

    def _empty_text(self, query: str) -> str:
        if self.problem:
            return self.problem
        if not self.loaded:
            return "loading…" if self.console.client is not None else "no server"
        if self.keys:
            return f"no keys match {query!r} ({len(self.keys)} hidden) · escape clears the filter"
        if self.console.read_only:
            return "no keys on this server yet"
        return "no keys on this server yet · n creates one, i imports one"

    def action_copy(self) -> None:
        if self.selected is not None:
            self.app.copy_to_clipboard(self.selected)
            self.notify(f"Copied {self.selected!r}", title="Clipboard")

    def action_clear_filter(self) -> None:
        field = self.query_one("#keys_filter", Input)
        if field.value:
            field.value = ""
        self.table.focus()

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
        try:
            keys = await client.list_keys("*")
        except NotAllowed as exc:
            self.problem = f"listing keys is prohibited by your policy ({exc})"
        except TransportError as exc:
            self.problem, self._offline = f"not connected: {exc.reason}", True
        else:
            self.problem, self._offline, self.loaded = "", False, True
            self.show_keys(keys)
            return
        self._render_table()

    # ------------------------------------------------------------ actions
    @work(group="key-change", exit_on_error=False, description="create key")
    async def action_create(self) -> None:
        answer = await self.app.push_screen_wait(
            FormScreen(
                "Create key",
                [Field("name", "Key name", placeholder="my-key", check=check_key_name)],
                submit="Create",
            )
        )
        client = self.console.client
        if not answer or client is None:
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
                    Field("name", "Key name", placeholder="my-key", check=check_key_name),
                    Field(
                        "key",
                        "Key (64 hex digits or base64 of 32 bytes)",
                        password=True,
                        check=check_key_material,
                    ),
                ],
                submit="Import",
            )
        )
        client = self.console.client
        if not answer or client is None:
            return
        name = answer["name"].strip()
        await client.import_key(name, parse_key_material(answer["key"]))
        self.notify(f"Imported key {name!r}", title="Keys")
        self.action_reload()

    @work(group="key-change", exit_on_error=False, description="delete key")
    async def action_delete(self) -> None:
        names = sorted(self.marked) or ([self.selected] if self.selected else [])
        client = self.console.client
        if not names or client is None:
            return
        listed = ", ".join(f"[b]{n}[/b]" for n in names[:8])
        if len(names) > 8:
            listed += f" and {len(names) - 8} more"
        what = f"key {listed}" if len(names) == 1 else f"{len(names)} keys: {listed}"
        confirmed = await self.app.push_screen_wait(
            ConfirmScreen(
                "Delete keys" if len(names) > 1 else "Delete key",
                f"Delete {what}?\n\nData encrypted with them can no longer be "
                "decrypted unless the keys are backed up elsewhere.",
            )
        )
        if not confirmed:
            return
        done = 0
        try:
            for name in names:
                await client.delete_key(name)
                self.marked.discard(name)
                done += 1
        except KESError as exc:
            self.notify(
                f"Deleted {done} of {len(names)}; {names[done]!r}: {exc}",
                title="Delete keys",
                severity="error",
            )
        else:
            self.notify(
                f"Deleted key {names[0]!r}" if len(names) == 1 else f"Deleted {len(names)} keys",
                title="Keys",
            )
        self.action_reload()

    def action_mark(self) -> None:
        """Mark or unmark the selected key, then move down (space, space, space...)."""
        name = self.selected
        if name is None:
            return
        self.marked.symmetric_difference_update({name})
        row = self.table.cursor_row
        self._render_table()
        self.table.move_cursor(row=min(row + 1, self.table.row_count - 1))

    def action_sort(self) -> None:
        self.order.next()
        self._render_table()

    @on(DataTable.HeaderSelected, "#keys_table")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        if event.column_key.value in SORT_FIELDS:
            self.order.choose(str(event.column_key.value))
            self._render_table()

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
