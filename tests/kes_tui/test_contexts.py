"""Contexts: named servers in a file, opened with --context and switched with ctrl+o."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kes_client import Client
from kes_tui.cli import build_app
from kes_tui.contexts import ContextError, load_contexts
from kes_tui.screens import ContextScreen, KeysScreen
from tests.kes_tui.conftest import SIZE, on_a_server, wait_for
from tests.support.server import RunningServer, start_server


def write_contexts(path: Path, servers: dict[str, RunningServer], **extra: object) -> Path:
    contexts = {
        name: {
            "server": s.url,
            "cert": str(s.root_cert),
            "key": str(s.root_key),
            "ca": str(s.ca_file),
        }
        for name, s in servers.items()
    }
    path.write_text(yaml.safe_dump({"contexts": contexts, **extra}))
    return path


@pytest.fixture(name="second_server")
def _second_server(tmp_path: Path) -> Iterator[RunningServer]:
    with start_server(tmp_path / "two", store="mem") as server:
        yield server


def test_file_format(tmp_path: Path) -> None:
    file = tmp_path / "contexts.yml"
    assert load_contexts(file).items == ()  # no file: no contexts
    file.write_text(
        "current: dev\n"
        "contexts:\n"
        "  prod: {server: kes.example.net:7373, cert: a.cert, key: /k/a.key, ca: ca.pem}\n"
        "  dev: {server: 127.0.0.1:7373, cert: ~/dev.cert, key: dev.key, insecure: true}\n"
    )
    contexts = load_contexts(file)
    prod, dev = contexts.items
    assert contexts.current == "dev" and dev.insecure and not prod.insecure
    assert prod.cert == tmp_path / "a.cert" and prod.key == Path(
        "/k/a.key"
    )  # relative: to the file
    assert dev.cert == Path("~/dev.cert").expanduser()
    file.write_text("contexts:\n  x: {server: s, cert: c, key: k, certificate: typo}\n")
    with pytest.raises(ContextError, match="contexts.x: unknown fields: certificate"):
        load_contexts(file)
    file.write_text("current: nope\ncontexts:\n  x: {server: s, cert: c, key: k}\n")
    with pytest.raises(ContextError, match="no context 'nope'.*known: x"):
        load_contexts(file)


@on_a_server
async def test_switch_server_inside_the_console(
    tmp_path: Path, kes_server: RunningServer, second_server: RunningServer
) -> None:
    file = write_contexts(tmp_path / "contexts.yml", {"one": kes_server, "two": second_server})
    only_on_two = f"ctx-{uuid.uuid4().hex[:8]}"
    with Client(
        second_server.url,
        cert=second_server.root_cert,
        key=second_server.root_key,
        ca=second_server.ca_file,
    ) as two:
        two.create_key(only_on_two)
    app = build_app(None, None, None, context="one", contexts_file=str(file))
    async with app.run_test(size=SIZE) as pilot:
        assert (app.header.context, app.header.endpoint) == ("one", kes_server.url)
        await wait_for(pilot, lambda: app.header.audit.phase == "live")
        await pilot.press("3")
        keys = app.screen
        assert isinstance(keys, KeysScreen)
        await wait_for(pilot, lambda: keys.loaded)
        assert only_on_two not in {k.name for k in keys.keys}
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ContextScreen))
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.header.endpoint == second_server.url)
        assert app.header.context == "two"
        await wait_for(pilot, lambda: app.header.audit.phase == "live")
        await wait_for(pilot, lambda: any(k.name == only_on_two for k in keys.keys))
        # the traces are the new server's: the old server's events are gone
        assert all(r.marker or r.identity == second_server.root_identity for r in app.audit.rows)


@on_a_server
async def test_unusable_context_keeps_the_current_one(
    tmp_path: Path, kes_server: RunningServer
) -> None:
    file = write_contexts(tmp_path / "contexts.yml", {"one": kes_server})
    data = yaml.safe_load(file.read_text())
    data["contexts"]["broken"] = {"server": kes_server.url, "cert": "missing.cert", "key": "k"}
    file.write_text(yaml.safe_dump(data))
    app = build_app(None, None, None, context="one", contexts_file=str(file))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.header.audit.phase == "live")
        app.switch_context("broken")
        await wait_for(
            pilot, lambda: any("Cannot use context" in n.message for n in app._notifications)
        )
        assert "missing.cert" in str([n.message for n in app._notifications])
        assert app.header.context == "one" and app.header.audit.phase == "live"


@on_a_server
def test_without_credentials_the_current_context_opens(
    tmp_path: Path, kes_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KES_CLIENT_CERT", "KES_CLIENT_KEY", "KES_CLIENT_TLS_CERT_FILE", "KES_SERVER"):
        monkeypatch.delenv(name, raising=False)
    file = write_contexts(tmp_path / "contexts.yml", {"one": kes_server})
    app = build_app(None, None, None, contexts_file=str(file))
    assert (app.header.context, app.header.endpoint) == ("one", kes_server.url)
