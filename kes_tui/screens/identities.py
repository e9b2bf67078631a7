"""Identities screen: every identity with its policy; assign and forget.

KES identities are certificate hashes, so the screen shows the friendly
name the console derives (policy name, ``root``) next to each hex string.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input, Static

from kes_client import identity_problem
from kes_client.identity_files import write_identity
from kes_tui.model import Directory, HeaderInfo, SortOrder, match_name
from kes_tui.screens.base import ConsoleScreen
from kes_tui.screens.modals import ConfirmScreen, Field, FormScreen
from kes_tui.widgets import EmptyState

__all__ = ["IdentitiesScreen", "check_identity"]

#: The table's columns, each sortable.
SORT_COLUMNS = ("identity", "name", "policy")
#: Hex digits of an identity shown on a narrow terminal (the status line has all 64).
NARROW_IDENTITY = 16


def _check_subject(value: str) -> str:
    return "" if value.strip() and "/" not in value else "a name, without '/' (used for the files)"


def check_identity(value: str) -> str:
    """The assign form's check of a typed identity ("" if it is one)."""
    return identity_problem(value.strip())


class IdentitiesScreen(ConsoleScreen):
    """Identities and the policy each one is bound to.

    | Key | Action |
    | :- | :- |
    | `/` | Filter by identity prefix, name or policy. |
    | `a` | Assign a policy to the selected identity. |
    | `n` | Assign a policy to another identity (typed or pasted). |
    | `c` | Create an identity: a key and certificate on disk, and optionally its policy. |
    | `f` | Forget the selected identity (asks first). |
    | `r` | Reload. |
    | `s` | Sort by the next column; click a header to sort by it (again: reversed). |
    | `y` | Copy the selected identity (64 hex digits) to the clipboard. |
    | `escape` | Clear the filter. |

    Root is shown first but cannot be assigned or forgotten: with root
    selected, `a` and `f` are not offered (`n` still is).
    """

    MODE = "identities"
    MUTATING = frozenset({"assign", "assign_new", "forget", "create"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("a", "assign", "Assign"),
        Binding("n", "assign_new", "Assign new"),
        Binding("c", "create", "Create"),
        Binding("f", "forget", "Forget"),
        Binding("r", "reload", "Reload"),
        Binding("s", "sort", "Sort", show=False),
        Binding("y", "copy", "Copy identity", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]
    DEFAULT_CSS = """
    IdentitiesScreen {
        & #identities_filter { height: 1; border: none; padding: 0 1; background: $panel; }
        & #identities_status { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    }
    """

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="/ filter: identity prefix, name or policy", id="identities_filter")
        yield DataTable[str](id="identities_table", cursor_type="row", zebra_stripes=True)
        yield EmptyState(id="identities_empty")
        yield Static(id="identities_status")

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#identities_table", DataTable)

    def __init__(self) -> None:
        super().__init__()
        self.order = SortOrder(SORT_COLUMNS, index=SORT_COLUMNS.index("policy"))

    def on_mount(self) -> None:
        super().on_mount()
        self.console.directory_signal.subscribe(self, self.show_directory)
        self.show_directory(self.console.directory)
        self.table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Root is never assigned or forgotten: with it selected, the keys are not offered."""
        if action in ("assign", "forget") and self._root_selected():
            return False
        return super().check_action(action, parameters)

    def _root_selected(self) -> bool:
        root = self.console.directory.root_identity
        return bool(root) and self.selected == root

    def on_resize(self) -> None:
        self.show_directory(self.console.directory)

    def header_changed(self, info: HeaderInfo) -> None:
        self.show_directory(self.console.directory)

    def show_directory(self, directory: Directory) -> None:
        """Redraw the table from a directory snapshot."""
        query = self.query_one("#identities_filter", Input).value
        names = directory.names()
        # (identity, name, policy); root first whatever the order, as the one apart.
        rows = [(i, names.get(i, ""), p) for i, p in directory.identities.items()]
        column = SORT_COLUMNS.index(self.order.column)
        rows.sort(key=lambda row: (row[column], row[0]), reverse=self.order.reverse)
        if directory.root_identity:
            rows.insert(0, (directory.root_identity, "root", "(root: every API)"))
        narrow = self.narrow
        table = self.table
        selected = self.selected
        # Columns too: their widths follow the labels (16 or 64 hex digits) after a resize.
        table.clear(columns=True)
        for title in SORT_COLUMNS:
            table.add_column(title, key=title)
        shown = 0
        for identity, name, policy in rows:
            if not any(match_name(query, v) for v in (identity, name, policy)):
                continue
            label = identity[:NARROW_IDENTITY] + "…" if narrow else identity
            table.add_row(label, name or "-", policy, key=identity)
            if identity == selected:
                table.move_cursor(row=shown)
            shown += 1
        table.set_class(not shown, "-empty")
        self.query_one(EmptyState).say(
            "" if shown else self._empty_text(directory, query, len(rows))
        )
        self._update_status()

    def _empty_text(self, directory: Directory, query: str, total: int) -> str:
        header = self.console.header
        if total:
            return f"no identities match {query!r} ({total} hidden) · escape clears the filter"
        if header.problem and not self.console.directory_loaded:
            return f"not connected: {header.problem}"
        if directory.problems:
            return "cannot list identities: " + "; ".join(directory.problems)
        if not self.console.directory_loaded:
            return "loading…" if self.console.client is not None else "no server"
        hint = "" if self.console.read_only else " · a assigns a policy to an identity"
        return f"no identity has a policy yet (root is never listed){hint}"

    def _update_status(self) -> None:
        directory = self.console.directory
        total = len(directory.identities) + bool(directory.root_identity)
        status = f"{self.table.row_count} of {total} identities"
        if self.selected and self.narrow:
            status = f"{self.selected}  ·  {status}"
        status += f"  ·  {self.order.describe()}"
        if directory.problems:
            status += "  ·  incomplete: " + "; ".join(directory.problems)
        self.query_one("#identities_status", Static).update(status)

    def action_sort(self) -> None:
        self.order.next()
        self.show_directory(self.console.directory)

    @on(DataTable.HeaderSelected, "#identities_table")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        self.order.choose(str(event.column_key.value))
        self.show_directory(self.console.directory)

    @on(DataTable.RowHighlighted, "#identities_table")
    def _row_highlighted(self) -> None:
        self.refresh_bindings()  # assign/forget come and go with root
        self._update_status()

    def action_copy(self) -> None:
        if self.selected is not None:
            self.app.copy_to_clipboard(self.selected)
            self.notify(f"Copied identity {self.selected[:12]}…", title="Clipboard")

    def action_clear_filter(self) -> None:
        field = self.query_one("#identities_filter", Input)
        if field.value:
            field.value = ""
        self.table.focus()

    @on(Input.Changed, "#identities_filter")
    def _filter_changed(self) -> None:
        self.show_directory(self.console.directory)

    @on(Input.Submitted, "#identities_filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def action_filter(self) -> None:
        self.query_one("#identities_filter", Input).focus()

    def action_reload(self) -> None:
        self.console.refresh_directory()

    @property
    def selected(self) -> str | None:
        table = self.table
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_assign(self) -> None:
        """Assign a policy to the selected identity (never root)."""
        if not self._root_selected():
            self._assign(self.selected or "")

    def action_assign_new(self) -> None:
        """Assign a policy to an identity typed in (one no policy knows yet)."""
        self._assign("")

    @work(group="identity-change", exit_on_error=False, description="assign policy")
    async def _assign(self, selected: str) -> None:
        policies = ", ".join(sorted(self.console.directory.policies)) or "none known"
        answer = await self.app.push_screen_wait(
            FormScreen(
                "Assign policy",
                [
                    Field(
                        "identity",
                        "Identity (64 hex digits: kes identity of CERT)",
                        value=selected,
                        check=check_identity,
                    ),
                    Field(
                        "policy",
                        f"Policy ({policies})",
                        value=self._policy_of(selected),
                        check=self._check_policy,
                    ),
                ],
                submit="Assign",
            )
        )
        client = self.console.client
        if not answer or client is None:
            return
        identity, policy = answer["identity"].strip(), answer["policy"].strip()
        await client.assign_identity(policy, identity)
        self.notify(f"Assigned policy {policy!r} to {identity[:12]}…", title="Identities")
        self.console.refresh_directory()

    def _check_policy(self, value: str) -> str:
        if not value.strip():
            return "name the policy to assign"
        policies = self.console.directory.policies
        if self.console.directory_loaded and policies and value.strip() not in policies:
            return f"no policy {value.strip()!r} (known: {', '.join(sorted(policies))})"
        return ""

    @work(group="identity-change", exit_on_error=False, description="create identity")
    async def action_create(self) -> None:
        """Like ``kes identity new`` (and ``kes identity assign``), without leaving the console."""
        policies = ", ".join(sorted(self.console.directory.policies)) or "none known"
        answer = await self.app.push_screen_wait(
            FormScreen(
                "Create identity",
                [
                    Field("name", "Name (the certificate's subject)", check=_check_subject),
                    Field("directory", "Directory for NAME.key and NAME.cert", os.getcwd()),
                    Field(
                        "policy",
                        f"Policy to assign, optional ({policies})",
                        check=self._policy_or_none,
                    ),
                ],
                submit="Create",
            )
        )
        if not answer:
            return
        name, policy = answer["name"].strip(), answer["policy"].strip()
        directory = Path(os.path.expanduser(answer["directory"].strip() or "."))
        key, cert = directory / f"{name}.key", directory / f"{name}.cert"
        try:
            identity = write_identity(key, cert, name)
        except (OSError, ValueError) as exc:
            self.notify(f"Not created: {exc}", title="Create identity", severity="error")
            return
        self.app.copy_to_clipboard(identity)
        self.notify(
            f"{identity}\n{key} (0600) and {cert}; the identity is on the clipboard",
            title=f"Created identity {name!r}",
            timeout=10,
        )
        client = self.console.client
        if policy and client is not None:
            await client.assign_identity(policy, identity)
            self.notify(f"Assigned policy {policy!r} to {name!r}", title="Identities")
            self.console.refresh_directory()

    def _policy_or_none(self, value: str) -> str:
        return self._check_policy(value) if value.strip() else ""

    def _policy_of(self, identity: str) -> str:
        return self.console.directory.identities.get(identity, "")

    @work(group="identity-change", exit_on_error=False, description="forget identity")
    async def action_forget(self) -> None:
        identity = self.selected
        client = self.console.client
        if identity is None or client is None or self._root_selected():
            return
        policy = self._policy_of(identity) or "no policy"
        confirmed = await self.app.push_screen_wait(
            ConfirmScreen(
                "Forget identity",
                f"Forget identity [b]{identity}[/b] (policy [b]{policy}[/b])?\n\n"
                "Its certificate will no longer be allowed to do anything.",
                yes="Forget",
            )
        )
        if not confirmed:
            return
        await client.forget_identity(identity)
        self.notify(f"Forgot identity {identity[:12]}…", title="Identities")
        self.console.refresh_directory()
