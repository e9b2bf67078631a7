"""Policies screen: who may do what, as a matrix, and each policy in detail.

The matrix is computed locally from the directory snapshot with the
server's own policy engine: no request per cell, and a cell's explanation
names the exact glob that decided, as the server would.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from kes_client import Policy
from kes_server.core.errors import InvalidArgument
from kes_server.core.names import validate_name
from kes_tui.model import Directory, HeaderInfo, editor_command, policy_matrix, short_identity
from kes_tui.screens.base import ConsoleScreen
from kes_tui.screens.modals import ConfirmScreen, Field, FormScreen
from kes_tui.widgets import EmptyState, PolicyMatrix

__all__ = ["PoliciesScreen", "policy_text"]


def policy_text(directory: Directory, name: str) -> Text:
    """The detail of one policy: allow list, deny list, assigned identities."""
    text = Text.assemble((name, "bold underline"), "\n")
    lists = directory.policies.get(name)
    if lists is None:
        text.append("(cannot read this policy)\n", "yellow")
    else:
        for title, patterns, style in (("allow", lists[0], "green"), ("deny", lists[1], "red")):
            text.append(f"{title}\n", f"bold {style}")
            for pattern in patterns or ("(none)",):
                text.append(f"  {pattern}\n")
    text.append("identities\n", "bold")
    names = directory.names()
    for identity in directory.assigned(name) or ["(none)"]:
        label = names.get(identity, "")
        text.append(f"  {short_identity(identity) if label else identity}", "")
        text.append(f"  {label}\n" if label else "\n", "dim")
    return text


class PoliciesScreen(ConsoleScreen):
    """Policy matrix (identities × operations for a key name) and policy details.

    | Key | Action |
    | :- | :- |
    | `/` | Edit the key name or pattern the matrix is computed for. |
    | `p` | Focus the policy list. |
    | `m` | Focus the matrix. |
    | `r` | Reload identities and policies. |
    | `y` | Copy the API path of the selected matrix cell to the clipboard. |
    | `n` | New policy: name it, then write it in `$EDITOR`. |
    | `e` | Edit the selected policy in `$EDITOR` (checked before it is saved). |
    | `d` | Delete the selected policy (asks, naming the identities that lose access). |
    """

    MODE = "policies"
    MUTATING = frozenset({"new_policy", "edit_policy", "delete_policy"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_name", "Key name"),
        Binding("p", "focus_policies", "Policies"),
        Binding("m", "focus_matrix", "Matrix"),
        Binding("n", "new_policy", "New"),
        Binding("e", "edit_policy", "Edit"),
        Binding("d", "delete_policy", "Delete"),
        Binding("r", "reload", "Reload"),
        Binding("y", "copy", "Copy path", show=False),
    ]
    DEFAULT_CSS = """
    PoliciesScreen {
        & #policies_left { width: 30; border-right: wide $panel; }
        &.-narrow #policies_left { width: 22; }
        & #policy_list { height: 1fr; max-height: 40%; }
        & #policy_detail { height: 1fr; padding: 0 1; }
        & #matrix_name { height: 1; border: none; padding: 0 1; background: $panel; }
        & #matrix { height: 1fr; }
        & #verdict { height: auto; min-height: 3; padding: 0 1; background: $panel; }
        & .section { background: $boost; padding: 0 1; text-style: bold; }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.key_name = "my-key"

    def compose_body(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="policies_left"):
                yield Static("Policies", classes="section")
                yield OptionList(id="policy_list")
                with VerticalScroll(id="policy_detail"):
                    yield Static(id="policy_text")
            with Vertical():
                yield Static(
                    "Matrix: may each identity call each operation on key…", classes="section"
                )
                yield Input(self.key_name, placeholder="key name or pattern", id="matrix_name")
                yield PolicyMatrix(id="matrix")
                yield EmptyState(id="matrix_empty")
                yield Static(id="verdict")

    def on_mount(self) -> None:
        super().on_mount()
        self.console.directory_signal.subscribe(self, self.show_directory)
        self.show_directory(self.console.directory)
        self.query_one(PolicyMatrix).focus()

    def show_directory(self, directory: Directory) -> None:
        """Redraw everything from a directory snapshot."""
        options = self.query_one("#policy_list", OptionList)
        highlighted = options.highlighted
        options.clear_options()
        options.add_options([Option(name, id=name) for name in sorted(directory.policies)])
        if directory.policies:
            options.highlighted = min(highlighted or 0, len(directory.policies) - 1)
        self._show_policy()
        self._show_matrix()
        if directory.problems:
            self.query_one("#verdict", Static).update(
                Text("Incomplete: " + "; ".join(directory.problems), "yellow")
            )

    def header_changed(self, info: HeaderInfo) -> None:
        self._show_matrix()

    def _show_policy(self) -> None:
        options = self.query_one("#policy_list", OptionList)
        directory = self.console.directory
        body = Text("no policies" if self.console.directory_loaded else "loading…", "dim")
        if options.highlighted is not None and options.option_count:
            option = options.get_option_at_index(options.highlighted)
            body = policy_text(directory, str(option.id))
        self.query_one("#policy_text", Static).update(body)

    def _show_matrix(self) -> None:
        rows = policy_matrix(self.console.directory, self.key_name)
        matrix = self.query_one(PolicyMatrix)
        matrix.show(rows)
        matrix.set_class(not rows, "-empty")
        self.query_one(EmptyState).say("" if rows else self._empty_text())

    def _empty_text(self) -> str:
        console = self.console
        if console.header.problem and not console.directory_loaded:
            return f"not connected: {console.header.problem}"
        if console.directory.problems:
            return "cannot show the matrix: " + "; ".join(console.directory.problems)
        if not console.directory_loaded:
            return "loading…" if console.client is not None else "no server"
        return (
            "no identities to show: only root can see root, and no identity has a policy "
            "yet (Identities screen: a assigns one)"
        )

    @on(OptionList.OptionHighlighted, "#policy_list")
    def _policy_highlighted(self) -> None:
        self._show_policy()

    @on(Input.Changed, "#matrix_name")
    def _name_changed(self, event: Input.Changed) -> None:
        self.key_name = event.value.strip() or "*"
        self._show_matrix()

    @on(Input.Submitted, "#matrix_name")
    def _name_done(self) -> None:
        self.query_one(PolicyMatrix).focus()

    @on(PolicyMatrix.VerdictHighlighted)
    def _verdict(self, event: PolicyMatrix.VerdictHighlighted) -> None:
        verdict = event.verdict
        style = {True: "green", False: "red", None: "yellow"}[verdict.allowed]
        path = event.operation.path(self.key_name)
        self.query_one("#verdict", Static).update(
            Text.assemble(
                (event.row.label, "bold"),
                (f" {short_identity(event.row.identity)}", "dim"),
                " → ",
                (path, "bold"),
                "\n",
                (verdict.reason, f"bold {style}"),
            )
        )

    def action_copy(self) -> None:
        matrix = self.query_one(PolicyMatrix)
        cell = matrix.verdict_at(matrix.cursor_coordinate)
        if cell is not None:
            path = cell[1].path(self.key_name)
            self.app.copy_to_clipboard(path)
            self.notify(f"Copied {path}", title="Clipboard")

    # ------------------------------------------------------------ manage
    @property
    def selected_policy(self) -> str | None:
        """The policy highlighted in the list on the left."""
        options = self.query_one("#policy_list", OptionList)
        if options.highlighted is None or not options.option_count:
            return None
        return str(options.get_option_at_index(options.highlighted).id)

    def _check_new_name(self, value: str) -> str:
        try:
            validate_name(value.strip(), "policy")
        except InvalidArgument as exc:
            return f"{exc} (letters, digits, - and _; at most 80)"
        if value.strip() in self.console.directory.policies:
            return "exists already: e edits it"
        return ""

    @work(group="policy-change", exit_on_error=False, description="create policy")
    async def action_new_policy(self) -> None:
        answer = await self.app.push_screen_wait(
            FormScreen(
                "New policy",
                [Field("name", "Policy name", placeholder="my-app", check=self._check_new_name)],
                submit="Write it",
            )
        )
        if answer:
            await self._write_in_editor(answer["name"].strip(), Policy())

    @work(group="policy-change", exit_on_error=False, description="edit policy")
    async def action_edit_policy(self) -> None:
        name, client = self.selected_policy, self.console.client
        if name is None or client is None:
            return
        await self._write_in_editor(name, await client.read_policy(name))

    async def _write_in_editor(self, name: str, current: Policy) -> None:
        """Edit ``current`` in ``$EDITOR`` until it is a valid policy (or the operator gives up)."""
        client = self.console.client
        if client is None:
            return
        text = json.dumps(current.to_json(), indent=2) + "\n"
        while True:
            edited = self._edit_text(name, text)
            if edited is None:
                self.notify("The editor failed: nothing was written", severity="error")
                return
            text = edited
            try:
                policy = Policy.parse(text)
            except ValueError as exc:
                again = await self.app.push_screen_wait(
                    ConfirmScreen(
                        "Not a valid policy",
                        f"Policy [b]{escape(name)}[/b]: {escape(str(exc))}\n\n"
                        "Edit it again, or cancel (nothing is written)?",
                        yes="Edit again",
                    )
                )
                if not again:
                    return
                continue
            break
        if policy == current and name in self.console.directory.policies:
            self.notify(f"Policy {name!r} is unchanged", title="Policies")
            return
        await client.write_policy(name, policy)
        self.notify(f"Wrote policy {name!r}", title="Policies")
        self.console.refresh_directory()

    def _edit_text(self, name: str, text: str) -> str | None:
        """``text`` after the operator's editor; ``None`` when the editor failed."""
        with tempfile.TemporaryDirectory(prefix="kes-tui-") as directory:
            path = os.path.join(directory, f"policy-{name}.json")
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
            if self.console.run_external(editor_command(path, os.environ)) != 0:
                return None
            with open(path, encoding="utf-8") as edited:
                return edited.read()

    @work(group="policy-change", exit_on_error=False, description="delete policy")
    async def action_delete_policy(self) -> None:
        name, client = self.selected_policy, self.console.client
        if name is None or client is None:
            return
        assigned = self.console.directory.assigned(name)
        losing = (
            f"{len(assigned)} identities assigned to it lose their access."
            if assigned
            else "No identity is assigned to it."
        )
        confirmed = await self.app.push_screen_wait(
            ConfirmScreen("Delete policy", f"Delete policy [b]{escape(name)}[/b]?\n\n{losing}")
        )
        if not confirmed:
            return
        await client.delete_policy(name)
        self.notify(f"Deleted policy {name!r}", title="Policies")
        self.console.refresh_directory()

    def action_focus_name(self) -> None:
        self.query_one("#matrix_name", Input).focus()

    def action_focus_policies(self) -> None:
        self.query_one("#policy_list", OptionList).focus()

    def action_focus_matrix(self) -> None:
        self.query_one(PolicyMatrix).focus()

    def action_reload(self) -> None:
        self.console.refresh_directory()
