"""Server facts: /version, /v1/status, /v1/metrics and /v1/api."""

from __future__ import annotations

import json
import time

from quart import Blueprint, Response

from kes_server import KES_VERSION
from kes_server.api.routes import ROUTES
from kes_server.api.state import server_state
from kes_server.keystore.base import StoreError
from kes_server.metrics import CONTENT_TYPE

__all__ = ["blueprint"]

blueprint = Blueprint("status", __name__)


def _json(body: object) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status=200, content_type="application/json"
    )


@blueprint.get("/version")
async def version() -> Response:
    return _json({"version": KES_VERSION})


@blueprint.get("/v1/status")
async def status() -> Response:
    """Uptime in ns rounded to the second; key store state and latency (ms, in ns)."""
    state = server_state()
    uptime_s = round(time.monotonic() - state.started)
    kms: dict[str, object] = {}
    try:
        probe = await state.store.status()
        kms["state"] = probe.state
        latency_ms = round(probe.latency_s * 1000)
        if latency_ms:
            kms["latency"] = latency_ms * 1_000_000
    except StoreError as exc:
        kms["state"] = "unreachable"
        state.log_error(f"http: failed to connect to key store: {exc}")
    if kms.get("state") == "unreachable" and "latency" not in kms:
        state.log_error("http: failed to connect to key store: unreachable")
    return _json({"version": KES_VERSION, "uptime": uptime_s * 1_000_000_000, "kms": kms})


@blueprint.get("/v1/metrics")
async def metrics() -> Response:
    return Response(server_state().metrics.render(), status=200, content_type=CONTENT_TYPE)


@blueprint.get("/v1/api")
async def api() -> Response:
    """v0.19's route listing: method, path, max body (bytes), timeout (ns)."""
    rows = [
        {
            "method": r.method,
            "path": r.pattern,
            "max_body": r.max_body,
            "timeout": int((r.timeout_s or 0) * 1_000_000_000),
        }
        for r in ROUTES
    ]
    return _json(rows)
