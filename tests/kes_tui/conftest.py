"""Fixtures for the console tests: apps wired to the session's real kes-server.

Snapshot tests do not use the server: they feed fixed data (see ``data.py``)
so that the rendered screens are identical on every run.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from textual.pilot import Pilot

from kes_client import AsyncClient, Client
from kes_tui.app import KesApp
from tests.support.server import ClientIdentity, RunningServer

#: Terminal size of every Pilot test (a small laptop terminal).
SIZE = (120, 36)

AppFactory = Callable[..., KesApp]
_Test = TypeVar("_Test", bound=Callable[..., object])

#: The marks of a console test that runs against a real kes-server: ``e2e`` (left out by
#: ``make test-fast``), and one known leak ignored. httpcore's anyio backend closes a
#: connection only on ``Exception``, so a request cancelled during its TLS handshake leaks
#: the socket and its transport (reproduced with plain httpx); the console cancels its
#: trace readers when it exits, possibly while one reconnects. ``_collect_garbage`` makes
#: every test's leaks surface in its own teardown, so the ignore covers these tests only.
ON_A_SERVER = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <(socket.socket|function _SelectorTransport.__del__)"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]


def on_a_server(test: _Test) -> _Test:
    """Give one test the ``ON_A_SERVER`` marks (for modules that mix both kinds)."""
    for mark in ON_A_SERVER:
        test = mark(test)
    return test


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    yield
    gc.collect()


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
