"""10,000 events through the audit view: nothing lost, filter intact, repaints bounded."""

from __future__ import annotations

import time

from kes_tui.app import KesApp
from kes_tui.screens import AuditScreen
from kes_tui.widgets import EventLog
from tests.kes_tui import data
from tests.kes_tui.conftest import SIZE, wait_for

EVENTS = 10_000


def burst(start: int, count: int) -> list[dict[str, object]]:
    """``count`` events; every 7th is a 403, every 50th comes from the backup identity."""
    out = []
    for i in range(start, start + count):
        status = 403 if i % 7 == 0 else 200
        who = data.BACKUP if i % 50 == 0 else data.APP
        out.append(data.audit_event(i % 60, who, "POST", f"/v1/key/generate/k{i}", status, 1000))
    return out


async def test_ten_thousand_events_none_lost() -> None:
    app = KesApp(None, connect=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        log = screen.query_one(EventLog)
        started = time.perf_counter()
        # 1,000 events per 100 ms flush = the 1,000 events/s the console must sustain, x10.
        for start in range(0, EVENTS, 1_000):
            app.ingest("audit", burst(start, 1_000))
            app.flush()
            await pilot.pause()
        elapsed = time.perf_counter() - started
        assert app.audit.received == EVENTS and len(app.audit) == EVENTS
        assert app.audit.dropped == 0
        assert [r.seq for r in app.audit.rows] == list(range(EVENTS))
        assert [r.path for r in app.audit.rows][-1] == f"/v1/key/generate/k{EVENTS - 1}"
        await wait_for(pilot, lambda: log.selected is app.audit.rows[-1])
        assert elapsed < 5.0, f"10 batches of 1,000 took {elapsed:.2f}s"

        screen.apply_filter("status:403 !identity:b7e2")
        expected = sum(1 for i in range(EVENTS) if i % 7 == 0 and i % 50 != 0)
        await wait_for(pilot, lambda: len(app.audit.view) == expected)
        assert all(r.status == 403 and r.identity == data.APP for r in app.audit.view)

        app.ingest("audit", burst(EVENTS, 700))  # new events are filtered as they arrive
        app.flush()
        expected += sum(1 for i in range(EVENTS, EVENTS + 700) if i % 7 == 0 and i % 50 != 0)
        await wait_for(pilot, lambda: len(app.audit.view) == expected)
        assert len(app.audit) == EVENTS + 700


async def test_bounded_buffer_counts_dropped() -> None:
    app = KesApp(None, connect=False, capacity=1_000)
    async with app.run_test(size=SIZE) as pilot:
        app.ingest("audit", burst(0, 2_500))
        app.flush()
        await pilot.pause()
        assert len(app.audit) == 1_000 and app.audit.dropped == 1_500
        assert app.header.dropped == 1_500
        assert app.audit.rows[0].seq == 1_500
