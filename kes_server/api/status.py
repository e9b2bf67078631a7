"""Server facts: /version, /v1/status, /v1/metrics and /v1/api."""

from __future__ import annotations

import time

from kes_server import KES_VERSION
from kes_server.api.call import Call, Reply, json_reply
from kes_server.keystore.base import StoreError
from kes_server.metrics import CONTENT_TYPE

__all__ = ["api", "metrics", "status", "version"]


async def version(call: Call) -> Reply:
    return json_reply({"version": KES_VERSION})


async def status(call: Call) -> Reply:
    """Uptime in ns rounded to the second; key store state and latency (ms, in ns)."""
    state = call.state
    uptime_s = round(time.monotonic() - state.started)
    kms: dict[str, object] = {}
    try:
        probe = await state.store.status()
    except StoreError as exc:
        kms["state"] = "unreachable"
        state.log_error(f"http: failed to connect to key store: {exc}")
    else:
        kms["state"] = probe.state
        latency_ms = round(probe.latency_s * 1000)
        if latency_ms:
            kms["latency"] = latency_ms * 1_000_000
        if probe.state == "unreachable":
            state.log_error("http: failed to connect to key store: unreachable")
    return json_reply({"version": KES_VERSION, "uptime": uptime_s * 1_000_000_000, "kms": kms})


async def metrics(call: Call) -> Reply:
    return Reply(body=call.state.metrics.render(), content_type=CONTENT_TYPE.encode())


async def api(call: Call) -> Reply:
    """v0.19's route listing: method, path, max body (bytes), timeout (ns)."""
    from kes_server.api.routes import ROUTES

    return json_reply(
        [
            {
                "method": r.method,
                "path": r.pattern,
                "max_body": r.max_body,
                "timeout": int((r.timeout_s or 0) * 1_000_000_000),
            }
            for r in ROUTES
        ]
    )
