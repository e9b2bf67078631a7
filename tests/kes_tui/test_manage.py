"""Managing the server from the console: policies in $EDITOR (checked before they are
sent), bulk key deletes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, Static

from kes_client import AsyncClient, Policy, PolicyNotFound
from kes_tui.screens import ConfirmScreen, FormScreen, KeysScreen, PoliciesScreen
from tests.kes_tui.conftest import ON_A_SERVER, SIZE, AppFactory, wait_for
from tests.support.server import RunningServer

pytestmark = ON_A_SERVER


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def root_client(server: RunningServer) -> AsyncClient:
    return AsyncClient(server.url, cert=server.root_cert, key=server.root_key, ca=server.ca_file)


def editor(tmp_path: Path, *contents: str) -> str:
    """An $EDITOR that writes ``contents[i]`` into the file on its i-th run."""
    for i, text in enumerate(contents):
        (tmp_path / f"edit-{i}.json").write_text(text)
    script = tmp_path / "editor.sh"
    script.write_text(
        f"n=$(cat {tmp_path}/runs 2>/dev/null || echo 0)\n"
        f'cp {tmp_path}/edit-$n.json "$1"\n'
        f"echo $((n + 1)) > {tmp_path}/runs\n"
    )
    return f"sh {script}"


async def select_policy(screen: PoliciesScreen, name: str) -> None:
    options = screen.query_one("#policy_list", OptionList)
    ids = [str(options.get_option_at_index(i).id) for i in range(options.option_count)]
    options.highlighted = ids.index(name)


async def test_new_policy_written_in_the_editor(
    app_factory: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("tui-new")
    monkeypatch.setenv("EDITOR", editor(tmp_path, '{"allow": ["/v1/key/generate/app-*"]}'))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: app.directory_loaded)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, FormScreen))
        await pilot.press(*"bad name", "enter")  # refused in place: a space is no name char
        assert isinstance(app.screen, FormScreen)
        app.screen.query_one("#field_name", Input).value = name
        await pilot.press("enter")
        await wait_for(pilot, lambda: name in app.directory.policies)
        assert app.directory.policies[name] == (("/v1/key/generate/app-*",), ())


async def test_invalid_edit_is_explained_and_can_be_fixed(
    app_factory: AppFactory,
    kes_server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = unique("tui-edit")
    async with root_client(kes_server) as kes:
        await kes.write_policy(name, Policy(allow=("/v1/status",)))
    fixed = {"allow": ["/v1/status", "/v1/metrics"], "deny": []}
    monkeypatch.setenv("EDITOR", editor(tmp_path, '{"allow": "/v1/status"}', json.dumps(fixed)))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot, root_client(kes_server) as kes:
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, PoliciesScreen)
        await wait_for(pilot, lambda: name in app.directory.policies)
        await select_policy(screen, name)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        reason = str(app.screen.query_one("#confirm_question", Static).render())
        assert "'allow' must be a list of strings" in reason
        assert (await kes.read_policy(name)).allow == ("/v1/status",)  # nothing written yet
        await pilot.press("y")  # edit again
        expected = (tuple(fixed["allow"]), ())
        await wait_for(pilot, lambda: app.directory.policies.get(name) == expected)
        assert (await kes.read_policy(name)).to_json() == fixed


async def test_delete_policy_names_who_loses_access(
    app_factory: AppFactory, kes_server: RunningServer
) -> None:
    name = unique("tui-del")
    who = kes_server.new_client("tui-del")
    async with root_client(kes_server) as kes:
        await kes.write_policy(name, Policy(allow=("/v1/status",)))
        await kes.assign_identity(name, who.identity)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot, root_client(kes_server) as kes:
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, PoliciesScreen)
        await wait_for(pilot, lambda: name in app.directory.policies)
        await select_policy(screen, name)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = str(app.screen.query_one("#confirm_question", Static).render())
        assert name in question and "1 identities assigned to it lose their access" in question
        await pilot.press("y")
        await wait_for(pilot, lambda: name not in app.directory.policies)
        with pytest.raises(PolicyNotFound):
            await kes.read_policy(name)


async def test_read_only_offers_no_policy_changes(app_factory: AppFactory) -> None:
    app = app_factory(read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert all(screen.check_action(a, ()) is False for a in ("new_policy", "edit_policy"))


async def test_bulk_delete_marked_keys_with_one_confirmation(
    app_factory: AppFactory, kes_server: RunningServer
) -> None:
    prefix = unique("tui-bulk")
    names = [f"{prefix}-{i}" for i in range(3)]
    async with root_client(kes_server) as kes:
        for name in names:
            await kes.create_key(name)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot, root_client(kes_server) as kes:
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, KeysScreen)
        screen.query_one("#keys_filter", Input).value = f"{prefix}-*"
        await wait_for(pilot, lambda: screen.table.row_count == 3)
        screen.table.focus()
        await pilot.press("space", "space")  # marks the first two, moving down
        assert screen.marked == set(names[:2])
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = str(app.screen.query_one("#confirm_question", Static).render())
        assert question.startswith("Delete 2 keys: ") and names[2] not in question
        await pilot.press("y")
        # The server is shared with other tests: look only at this test's keys.
        await wait_for(
            pilot, lambda: [k.name for k in screen.keys if k.name.startswith(prefix)] == [names[2]]
        )
        assert [k.name for k in await kes.list_keys(f"{prefix}-*")] == [names[2]]
        assert not screen.marked


async def test_create_identity_writes_files_and_assigns(
    app_factory: AppFactory, kes_server: RunningServer, tmp_path: Path
) -> None:
    policy = unique("tui-create")
    async with root_client(kes_server) as kes:
        await kes.write_policy(policy, Policy(allow=("/v1/status", "/v1/identity/self/describe")))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: policy in app.directory.policies)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, FormScreen))
        form = app.screen
        form.query_one("#field_name", Input).value = "svc"
        form.query_one("#field_directory", Input).value = str(tmp_path)
        form.query_one("#field_policy", Input).value = policy
        await pilot.click("#submit")
        await wait_for(pilot, lambda: app.clipboard in app.directory.identities)
        identity = app.clipboard
        assert app.directory.identities[identity] == policy
    key, cert = tmp_path / "svc.key", tmp_path / "svc.cert"
    assert key.stat().st_mode & 0o777 == 0o600
    # the new identity works, within its policy
    async with AsyncClient(kes_server.url, cert=cert, key=key, ca=kes_server.ca_file) as svc:
        assert (await svc.status()).version
        assert (await svc.self_identity()).identity == identity
