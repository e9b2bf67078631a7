"""``kes-tui --audit-file``: a fresh console starts with the server's own log, not blank."""

from __future__ import annotations

import json
from pathlib import Path

from kes_client import Client, KeyNotFound
from kes_tui.cli import build_app
from kes_tui.model import read_history
from kes_tui.screens import AuditScreen
from tests.kes_tui.conftest import SIZE, on_a_server, wait_for
from tests.support.server import start_server


def test_read_history_sorts_a_journal() -> None:
    lines = [
        "Endpoint: https://127.0.0.1:7373",  # the banner
        json.dumps({"time": "t", "request": {"path": "/v1/status"}, "response": {"code": 200}}),
        json.dumps({"message": "2026/11/23 21:50:28 http: TLS handshake error"}),
        "{not json",
        json.dumps({"time": "t", "request": {"path": "/v1/metrics"}, "response": {"code": 200}}),
    ]
    history = read_history(lines, capacity=1)
    assert [e["request"]["path"] for e in history.audit] == ["/v1/metrics"]  # newest kept
    assert len(history.errors) == 1 and history.skipped == 2 and history.dropped == 1


@on_a_server
async def test_console_opens_on_the_servers_audit_log(tmp_path: Path) -> None:
    with start_server(tmp_path / "srv", store="mem", config={"log": {"audit": "on"}}) as server:
        with Client(server.url, cert=server.root_cert, key=server.root_key, ca=server.ca_file) as c:
            c.create_key("before-the-console")
            try:
                c.generate_key("missing-before-the-console")
            except KeyNotFound:
                pass
        journal = tmp_path / "journal.log"  # what `journalctl -u kes-server -o cat` gives
        journal.write_text(server.logs())
        app = build_app(
            server.url,
            str(server.root_cert),
            str(server.root_key),
            ca=str(server.ca_file),
            audit_file=str(journal),
        )
        async with app.run_test(size=SIZE) as pilot:
            paths = [r.path for r in app.audit.rows]
            assert "/v1/key/create/before-the-console" in paths
            marker = next(r for r in app.audit.rows if r.marker)
            assert "from journal.log above; live events follow" in marker.text
            assert all(r.seq < marker.seq for r in app.audit.rows if "before-the" in r.path)
            with Client(
                server.url, cert=server.root_cert, key=server.root_key, ca=server.ca_file
            ) as c:
                await wait_for(pilot, lambda: app.header.audit.phase == "live")
                c.create_key("after-the-console")
            after = "/v1/key/create/after-the-console"
            await wait_for(pilot, lambda: any(r.path == after for r in app.audit.rows))
            assert next(r for r in app.audit.rows if r.path == after).seq > marker.seq
            screen = app.screen
            assert isinstance(screen, AuditScreen)
            screen.apply_filter("status:404")
            await wait_for(pilot, lambda: app.audit.filter.text == "status:404")
            assert any("missing-before" in r.path for r in app.audit.view)
