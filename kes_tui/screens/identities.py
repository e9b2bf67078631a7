"""Identities screen: every identity with its policy; assign and forget.

KES identities are certificate hashes, so the screen shows the friendly
name the console derives (policy name, ``root``) next to each hex string.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input, Static

from kes_tui.model import Directory, match_name
from kes_tui.screens.base import ConsoleScreen
from kes_tui.screens.modals import ConfirmScreen, Field, FormScreen

__all__ = ["IdentitiesScreen"]


class IdentitiesScreen(ConsoleScreen):
    """Identities and the policy each one is bound to.

    | Key | Action |
    | :- | :- |
    | `/` | Filter by identity prefix, name or policy. |
    | `a` | Assign a policy to an identity (the selected one by default). |
    | `f` | Forget the selected identity (asks first). |
    | `r` | Reload. |
    """

    MODE = "identities"
    MUTATING = frozenset({"assign", "forget"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("a", "assign", "Assign"),
        Binding("f", "forget", "Forget"),
        Binding("r", "reload", "Reload"),
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
        yield Static(id="identities_status")

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#identities_table", DataTable)

    def on_mount(self) -> None:
        super().on_mount()
        self.table.add_columns("identity", "name", "policy")
        self.console.directory_signal.subscribe(self, self.show_directory)
        self.show_directory(self.console.directory)
        self.table.focus()

    def show_directory(self, directory: Directory) -> None:
        """Redraw the table from a directory snapshot."""
        query = self.query_one("#identities_filter", Input).value
        names = directory.names()
        rows = sorted(directory.identities.items(), key=lambda item: (item[1], item[0]))
        if directory.root_identity:
            rows.insert(0, (directory.root_identity, "(root: every API)"))
        table = self.table
        table.clear()
        shown = 0
        for identity, policy in rows:
            name = names.get(identity, "")
            if not any(match_name(query, v) for v in (identity, name, policy)):
                continue
            table.add_row(identity, name or "-", policy, key=identity)
            shown += 1
        status = f"{shown} of {len(rows)} identities"
        if directory.problems:
            status += "  ·  incomplete: " + "; ".join(directory.problems)
        self.query_one("#identities_status", Static).update(status)

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

    @work(group="identity-change", exit_on_error=False, description="assign policy")
    async def action_assign(self) -> None:
        selected = self.selected or ""
        if selected == self.console.directory.root_identity:
            selected = ""
        policies = ", ".join(sorted(self.console.directory.policies)) or "none known"
        answer = await self.app.push_screen_wait(
            FormScreen(
                "Assign policy",
                [
                    Field("identity", "Identity (64 hex digits)", value=selected),
                    Field("policy", f"Policy ({policies})", value=self._policy_of(selected)),
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

    def _policy_of(self, identity: str) -> str:
        return self.console.directory.identities.get(identity, "")

    @work(group="identity-change", exit_on_error=False, description="forget identity")
    async def action_forget(self) -> None:
        identity = self.selected
        client = self.console.client
        if identity is None or client is None:
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
