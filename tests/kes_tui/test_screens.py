"""Pilot tests of every screen against the session's real kes-server."""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path

from rich.console import Console, RenderableType
from textual.widgets import DataTable, Input, Static

from kes_client import AsyncClient, Policy
from kes_tui.screens import (
    AuditScreen,
    ConfirmScreen,
    FormScreen,
    HelpScreen,
    IdentitiesScreen,
    KeysScreen,
    PoliciesScreen,
    StatusScreen,
)
from kes_tui.screens.status import metrics_table, status_table
from kes_tui.widgets import DetailPane, EventLog, PolicyMatrix
from tests.kes_tui.conftest import ON_A_SERVER, SIZE, AppFactory, make_app, wait_for
from tests.support.server import RunningServer, start_server

pytestmark = ON_A_SERVER


def plain(renderable: RenderableType) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def root_client(server: RunningServer) -> AsyncClient:
    return AsyncClient(server.url, cert=server.root_cert, key=server.root_key, ca=server.ca_file)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_audit_follow_pause_filter(
    app_factory: AppFactory, kes_server: RunningServer
) -> None:
    app = app_factory()
    name = unique("tui-audit")
    async with app.run_test(size=SIZE) as pilot, root_client(kes_server) as kes:
        await wait_for(pilot, lambda: app.header.audit.phase == "live")
        assert isinstance(app.screen, AuditScreen)
        await kes.create_key(name)
        await wait_for(pilot, lambda: any(r.path.endswith(name) for r in app.audit.rows))
        log = app.screen.query_one(EventLog)
        # follow mode: the cursor sits on the newest row
        await wait_for(pilot, lambda: log.selected is app.audit.view[-1])
        assert app.header.version and app.header.identity_label.startswith("root")

        await pilot.press("space")
        assert log.paused
        await kes.status()
        await wait_for(pilot, lambda: log.new_count >= 1)
        status = str(app.screen.query_one("#trace_status", Static).render())
        assert "PAUSED" in status and "new" in status
        await pilot.press("space")
        assert not log.paused and log.new_count == 0

        await pilot.press("slash")
        await pilot.press(*"status:200", "enter")
        await wait_for(pilot, lambda: app.audit.filter.text == "status:200")
        assert app.audit.view and all(r.status == 200 for r in app.audit.view)
        assert log.has_focus


async def test_denied_request_explains_rule(
    app_factory: AppFactory, kes_server: RunningServer
) -> None:
    app = app_factory()
    who = kes_server.new_client("limited")
    policy = unique("tui-gen")
    async with app.run_test(size=SIZE) as pilot, root_client(kes_server) as kes:
        await wait_for(pilot, lambda: app.header.audit.phase == "live")
        await kes.write_policy(policy, Policy(allow=("/v1/key/*/*",), deny=("/v1/key/delete/*",)))
        await kes.assign_identity(policy, who.identity)
        await wait_for(pilot, lambda: who.identity in app.directory.identities)
        async with AsyncClient(
            kes_server.url, cert=who.cert, key=who.key, ca=kes_server.ca_file
        ) as c:
            try:
                await c.delete_key("tui-denied")
            except Exception as exc:  # noqa: BLE001 - we only need the audit event
                assert "prohibited" in str(exc) or "not authorized" in str(exc)
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        screen.apply_filter(f"status:403 identity:{who.identity[:10]}")
        await wait_for(pilot, lambda: len(app.audit.view) == 1)
        await pilot.press("enter")
        pane = screen.query_one(DetailPane)
        assert pane.is_open
        text = plain(screen.describe(app.audit.view[0]))
        assert "denied by pattern '/v1/key/delete/*'" in text and policy in text
        await pilot.press("escape")
        assert not pane.is_open


async def test_errors_screen_streams(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: app.header.errors.phase == "live")
        assert app.current_mode == "errors"
        app.ingest("errors", [{"message": "2026/11/23 21:50:28 http: boom"}])
        await wait_for(pilot, lambda: len(app.errors.view) == 1)
        await pilot.press("enter")
        assert app.screen.query_one(DetailPane).is_open


async def test_keys_create_test_delete(app_factory: AppFactory) -> None:
    app = app_factory()
    name = unique("tui-key")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, KeysScreen)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, FormScreen))
        await pilot.press(*name, "enter")
        await wait_for(pilot, lambda: any(k.name == name for k in screen.keys))
        screen.query_one("#keys_filter", Input).value = name
        await wait_for(pilot, lambda: screen.selected == name)
        await pilot.press("t")
        await wait_for(pilot, lambda: any("works" in n.message for n in app._notifications))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = str(app.screen.query_one("#confirm_question", Static).render())
        assert name in question
        await pilot.press("y")
        await wait_for(pilot, lambda: all(k.name != name for k in screen.keys))


async def test_read_only_hides_mutations(app_factory: AppFactory) -> None:
    app = app_factory(read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, KeysScreen)
        await pilot.press("n")
        await pilot.press("d")
        await pilot.pause(0.2)
        assert app.screen is screen  # no dialog opened
        assert screen.check_action("create", ()) is False
        assert screen.check_action("test", ()) is True
        # hidden, not shown dimmed: the footer does not list them at all
        footer_keys = {b.action for _, b, _, _ in screen.active_bindings.values()}
        assert "create" not in footer_keys and "delete" not in footer_keys
        assert "test" in footer_keys
        await pilot.press("5")
        assert app.screen.check_action("forget", ()) is False


async def test_policies_matrix_and_detail(
    app_factory: AppFactory, kes_server: RunningServer
) -> None:
    app = app_factory()
    who = kes_server.new_client("matrix")
    policy = unique("tui-matrix")
    async with root_client(kes_server) as kes:
        await kes.write_policy(
            policy, Policy(allow=("/v1/key/generate/app-*",), deny=("/v1/key/generate/app-x",))
        )
        await kes.assign_identity(policy, who.identity)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, PoliciesScreen)
        await wait_for(pilot, lambda: who.identity in app.directory.identities)
        await pilot.press("slash")
        name_input = screen.query_one("#matrix_name", Input)
        name_input.value = "app-x"
        await pilot.press("enter")
        matrix = screen.query_one(PolicyMatrix)
        await wait_for(pilot, lambda: any(r.identity == who.identity for r in matrix.matrix_rows))
        row = next(i for i, r in enumerate(matrix.matrix_rows) if r.identity == who.identity)
        matrix.move_cursor(row=row, column=2 + 2)  # the "generate" column
        await pilot.pause(0.1)
        verdict = str(screen.query_one("#verdict", Static).render())
        assert "/v1/key/generate/app-x" in verdict and "denied by pattern" in verdict
        assert policy in str(screen.query_one("#policy_list").render_lines) or policy in {
            str(o.id)
            for o in screen.query_one("#policy_list").options  # type: ignore[attr-defined]
        }


async def test_identities_assign_and_forget(
    app_factory: AppFactory, kes_server: RunningServer
) -> None:
    app = app_factory()
    who = kes_server.new_client("ident")
    policy = unique("tui-ident")
    async with root_client(kes_server) as kes:
        await kes.write_policy(policy, Policy(allow=("/v1/status",)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, IdentitiesScreen)
        await wait_for(pilot, lambda: policy in app.directory.policies)
        # root is selected: it cannot be assigned or forgotten, so neither is offered
        assert screen.selected == kes_server.root_identity
        assert screen.check_action("assign", ()) is False
        assert screen.check_action("forget", ()) is False
        await pilot.press("a", "f")
        assert app.screen is screen
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, FormScreen))
        form = app.screen
        form.query_one("#field_identity", Input).value = who.identity
        form.query_one("#field_policy", Input).value = policy
        await pilot.click("#submit")
        await wait_for(pilot, lambda: app.directory.identities.get(who.identity) == policy)
        table = screen.query_one(DataTable)
        screen.query_one("#identities_filter", Input).value = who.identity[:16]
        await wait_for(pilot, lambda: table.row_count == 1)
        table.focus()
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert who.identity in str(app.screen.query_one("#confirm_question", Static).render())
        await pilot.press("y")
        await wait_for(pilot, lambda: who.identity not in app.directory.identities)


async def test_status_screen(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, StatusScreen)
        await wait_for(
            pilot, lambda: screen.status is not None and screen.history.latest is not None
        )
        assert screen.status is not None and screen.status.version
        assert "uptime" in plain(status_table(screen.status))
        assert "latency p99" in plain(metrics_table(screen.history))


async def test_help_and_navigation(app_factory: AppFactory) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("right_square_bracket")
        assert app.current_mode == "errors"
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert app.current_mode == "status"
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"denied", "enter")
        await wait_for(pilot, lambda: app.audit.filter.text == "status:403")
        assert app.current_mode == "audit"


async def test_permission_errors_are_notices(kes_server: RunningServer) -> None:
    who = kes_server.new_client("nobody")  # no policy: every call is 403
    app = make_app(kes_server, who)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.header.audit.phase == "denied")
        # each retry is a 403 in the server's log: the first one waits 30 s, then longer
        assert app.header.audit.retry_at - time.monotonic() > 20
        await pilot.press("3")
        await wait_for(
            pilot, lambda: any(n.title == "Permission denied" for n in app._notifications)
        )
        assert app.is_running


async def test_reconnects_after_server_restart(tmp_path: Path) -> None:
    with start_server(tmp_path / "srv", store="mem") as server:
        app = make_app(server)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.header.audit.phase == "live")
            server.stop()
            await wait_for(pilot, lambda: app.header.audit.phase == "reconnecting")
            assert "retry in" in app.header.audit.describe()
            server.start()
            await wait_for(pilot, lambda: app.header.audit.phase == "live", timeout_s=20)
            await wait_for(pilot, lambda: app.header.errors.phase == "live", timeout_s=20)
            # The server does not replay what happened meanwhile: the trace says so.
            for store in (app.audit, app.errors):
                markers = [r for r in store.rows if r.marker]
                assert len(markers) == 1 and "were not received" in markers[0].text
                assert markers[0] in store.view  # a filter never hides it


async def test_keys_screen_follows_changes_made_elsewhere(
    app_factory: AppFactory, kes_server: RunningServer
) -> None:
    app = app_factory()
    name = unique("tui-elsewhere")
    async with app.run_test(size=SIZE) as pilot, root_client(kes_server) as kes:
        await wait_for(pilot, lambda: app.header.audit.phase == "live")
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, KeysScreen)
        await wait_for(pilot, lambda: screen.loaded)
        await kes.create_key(name)  # another terminal, same server: no `r` pressed here
        await wait_for(pilot, lambda: any(k.name == name for k in screen.keys))
        await kes.delete_key(name)
        await wait_for(pilot, lambda: all(k.name != name for k in screen.keys))


async def test_own_requests_are_recognised_and_hidden(
    app_factory: AppFactory, kes_server: RunningServer
) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot, root_client(kes_server) as kes:
        await wait_for(pilot, lambda: app.header.audit.phase == "live")
        await pilot.press("6")  # the Status screen polls /v1/status
        await wait_for(pilot, lambda: any(r.own and r.path == "/v1/status" for r in app.audit.rows))
        await pilot.press("1")
        await kes.status()  # the same root identity, but not this console: shown
        await wait_for(
            pilot, lambda: any(not r.own and r.path == "/v1/status" for r in app.audit.view)
        )
        assert app.audit.hide_own and not any(r.own for r in app.audit.view)
        status = str(app.screen.query_one("#trace_status", Static).render())
        assert "my requests hidden (m)" in status
        await pilot.press("m")
        await wait_for(pilot, lambda: any(r.own for r in app.audit.view))
