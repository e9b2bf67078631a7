"""Fixtures for the console tests: apps wired to the session's real kes-server.

Snapshot tests do not use the server: they feed fixed data (see ``data.py``)
so that the rendered screens are identical on every run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from kes_client import AsyncClient, Client
from kes_tui.app import KesApp
from tests.support.server import ClientIdentity, RunningServer

#: Terminal size of every Pilot test (a small laptop terminal).
SIZE = (120, 36)

AppFactory = Callable[..., KesApp]


def make_app(
    server: RunningServer, who: ClientIdentity | None = None, *, read_only: bool = False
) -> KesApp:
    """A console connected to ``server`` as ``who`` (root by default)."""
    who = who or server.root
    client = AsyncClient(server.url, cert=who.cert, key=who.key, ca=server.ca_file)
    return KesApp(client, identity=who.identity, read_only=read_only)


def sync_client(server: RunningServer, who: ClientIdentity | None = None) -> Client:
    """A blocking SDK client, to act on the server while the console watches."""
    who = who or server.root
    return Client(server.url, cert=who.cert, key=who.key, ca=server.ca_file)


async def wait_for(
    pilot: Pilot[None], condition: Callable[[], bool], timeout_s: float = 8.0
) -> None:
    """Let the app run until ``condition()`` holds (fail after ``timeout_s``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def screen_lines(app: KesApp) -> list[str]:
    """The text on the terminal right now, one string per line (what the operator sees)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


@pytest.fixture(name="app_factory")
def _app_factory(kes_server: RunningServer) -> AppFactory:
    def factory(who: ClientIdentity | None = None, *, read_only: bool = False) -> KesApp:
        return make_app(kes_server, who, read_only=read_only)

    return factory
