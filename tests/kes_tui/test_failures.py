"""How the console fails: a persistent cause-and-fix, no retries that cannot help, empty states.

Each test points the console at a real kes-server (or at a port nobody
listens on) with a setup an operator gets wrong in practice.
"""

from __future__ import annotations

from pathlib import Path

from kes_client import AsyncClient
from kes_tui.app import KesApp
from kes_tui.screens import IdentitiesScreen, KeysScreen, PoliciesScreen, StatusScreen
from kes_tui.widgets import EmptyState, EventLog
from tests.kes_tui.conftest import ON_A_SERVER, SIZE, screen_lines, wait_for
from tests.support.server import RunningServer, free_port

pytestmark = ON_A_SERVER

TRUST_FIX = "pass --ca FILE (the CA that signed the server certificate) or -k"


def untrusting_app(server: RunningServer) -> KesApp:
    """The operator forgot --ca: the server's certificate is not in the system trust store."""
    who = server.root
    client = AsyncClient(server.url, cert=who.cert, key=who.key)
    return KesApp(client, identity=who.identity)


async def test_untrusted_server_is_a_persistent_error_and_not_retried(
    kes_server: RunningServer,
) -> None:
    app = untrusting_app(kes_server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.header.audit.phase == "failed")
        await wait_for(pilot, lambda: app.header.errors.phase == "failed")
        assert "server certificate not trusted" in app.header.problem
        assert app.header.hint == TRUST_FIX and app.header.fatal
        # On screen, under the header, and it stays there (no toast that fades away).
        text = "\n".join(screen_lines(app))
        assert "server certificate not trusted" in text and "fix: pass --ca FILE" in text
        # Nothing keeps retrying a handshake that cannot succeed.
        trace_workers = [w for w in app.workers if w.group.endswith("-trace")]
        assert all(w.is_finished for w in trace_workers)
        await pilot.pause(1.5)
        assert app.header.audit.phase == "failed"
        log = app.screen.query_one(EventLog)
        assert log.empty_text.startswith("not connected: ") and TRUST_FIX in log.empty_text

        await pilot.press("ctrl+r")  # the operator may try again on purpose
        await wait_for(pilot, lambda: app.header.audit.phase == "failed")
        assert "server certificate not trusted" in app.header.problem


async def test_every_screen_has_an_empty_state_when_not_connected(
    kes_server: RunningServer,
) -> None:
    app = untrusting_app(kes_server)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.header.fatal)
        await pilot.press("2")
        await wait_for(
            pilot, lambda: app.screen.query_one(EventLog).empty_text.startswith("not connected")
        )
        for number, screen_type in (
            ("3", KeysScreen),
            ("4", PoliciesScreen),
            ("5", IdentitiesScreen),
        ):
            await pilot.press(number)
            screen = app.screen
            assert isinstance(screen, screen_type)
            empty = screen.query_one(EmptyState)
            await wait_for(pilot, lambda e=empty: e.message.startswith("not connected"))  # type: ignore[misc]
            assert empty.display and "server certificate not trusted" in empty.message
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, StatusScreen)
        await wait_for(pilot, lambda: screen.status_problem.startswith("not connected"))
        # the problem line is on every screen
        assert any("server certificate not trusted" in line for line in screen_lines(app))


async def test_refused_port_says_so_and_keeps_retrying(
    tmp_path: Path, kes_server: RunningServer
) -> None:
    """Nobody listens there: maybe a typo, maybe a restart. Say so, and keep trying."""
    who = kes_server.root
    url = f"https://127.0.0.1:{free_port()}"
    app = KesApp(AsyncClient(url, cert=who.cert, key=who.key, ca=kes_server.ca_file))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "connection refused" in app.header.problem)
        assert app.header.hint == "is kes-server running there? check --server / KES_SERVER"
        assert not app.header.fatal
        await wait_for(pilot, lambda: app.header.audit.phase == "reconnecting")
        assert any("connection refused" in line for line in screen_lines(app))
