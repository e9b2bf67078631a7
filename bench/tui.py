"""TUI throughput: feed the audit screen 1,000 events/s for 30 s, headless; lose nothing.

Why headless in-process feeding (``KesApp.ingest``) and not a live server:
the question is whether the console itself keeps up (row building, filter,
10 Hz repaints of the audit screen), so the server and the HTTP stream are
left out; they are measured by the server benchmarks. The feeder does what
the SDK's stream reader does per event (decode one JSON line, hand the dict
to the app) in the app's own event loop, so its cost is part of the app's
CPU, as it is in the real console.

The app runs in its own process (``python -m bench.tui``) so its CPU time
(``time.process_time``) is the console's alone; it prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["feed", "run"]

_IDENTITY = "a" * 64


def _event(seq: int) -> bytes:
    """One audit event line as kes-server writes it (the path varies so rows differ)."""
    return json.dumps(
        {
            "time": "2026-11-23T21:50:28.123456789Z",
            "request": {
                "ip": "127.0.0.1",
                "method": "POST",
                "path": f"/v1/key/generate/key-{seq % 97}",
                "identity": _IDENTITY,
            },
            "response": {"code": 200 if seq % 50 else 403, "time": 812345},
        },
        separators=(",", ":"),
    ).encode()


async def feed(seconds: float, rate: int) -> dict[str, Any]:
    """Run the app headless, feed it, and report what arrived and what it cost."""
    from kes_tui.app import KesApp

    app = KesApp(connect=False, endpoint="https://bench:7373", identity=_IDENTITY)
    lines = [_event(i) for i in range(1000)]
    sent = 0
    async with app.run_test(headless=True, size=(160, 48)) as pilot:
        await pilot.pause()
        screen = type(app.screen).__name__
        cpu0, t0 = time.process_time(), time.monotonic()
        tick = 0.01  # 10 ms batches: 10 events each at 1,000/s
        while (now := time.monotonic()) - t0 < seconds:
            due = int((now - t0) * rate)
            if due > sent:
                app.ingest("audit", (json.loads(lines[i % 1000]) for i in range(sent, due)))
                sent = due
            await asyncio.sleep(tick)
        # Let the 10 Hz flush and the last repaint happen.
        await asyncio.sleep(0.3)
        await pilot.pause()
        cpu = time.process_time() - cpu0
        elapsed = time.monotonic() - t0
        store = app.audit
        received, buffered, dropped = store.received, len(store), store.dropped
        shown = len(store.view)
    return {
        "screen": screen,
        "rate": rate,
        "seconds": round(elapsed, 2),
        "delivered": sent,
        "received": received,
        "buffered": buffered,
        "shown": shown,
        "dropped": dropped,
        "lost": sent - received + dropped,
        "cpu_seconds": round(cpu, 3),
        "cpu_cores": round(cpu / elapsed, 3),
        "cpu_us_per_event": round(cpu / max(1, sent) * 1e6, 1),
    }


def run(seconds: float, rate: int) -> dict[str, Any]:
    """The TUI bench in a child process; ``{"skipped": why}`` when it cannot run."""
    try:
        import kes_tui.app  # noqa: F401 - only checking that the console exists
    except ImportError as exc:
        return {"skipped": f"kes_tui has no app to drive: {exc}"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.tui", "--seconds", str(seconds), "--rate", str(rate)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"the TUI bench failed: {tail}"}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tui")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--rate", type=int, default=1000)
    args = p.parse_args(argv)
    print(json.dumps(asyncio.run(feed(args.seconds, args.rate))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
