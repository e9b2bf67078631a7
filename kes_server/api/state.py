"""Everything a request handler needs, built once per server and kept on the app.

Following Quart's advice, long-lived resources (store, caches, log buses)
live on the app object, opened in ``before_serving`` and closed in
``after_serving``; handlers reach them through ``server_state()``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from quart import current_app

from kes_server.access import AccessControl
from kes_server.core.config import Config
from kes_server.keys import KeyManager
from kes_server.keystore.base import Store
from kes_server.logbus import LogBus, error_event
from kes_server.metrics import Metrics

__all__ = ["RequestContext", "ServerState", "request_context", "server_state"]


@dataclass
class ServerState:
    config: Config
    store: Store
    keys: KeyManager
    access: AccessControl
    audit: LogBus
    errors: LogBus
    metrics: Metrics
    #: Trusted CA certificates for verifying forwarded client certs (auth on).
    proxy_trust: Any = None
    started: float = field(default_factory=time.monotonic)

    def log_error(self, text: str) -> None:
        """Publish one error event (stderr and /v1/log/error/trace)."""
        self.errors.publish(error_event(text))


@dataclass
class RequestContext:
    """Who is calling, from where; set by the gateway in ``scope["kes"]``."""

    identity: str = ""
    ip: str = ""
    #: Set when the gateway already knows the answer (bad proxy header, ...).
    error: Exception | None = None


def server_state() -> ServerState:
    state: ServerState = current_app.config["KES_STATE"]
    return state


def request_context(scope: Any) -> RequestContext:
    """The gateway's facts about the request (``request.scope`` in a handler)."""
    ctx = scope.get("kes")
    return ctx if isinstance(ctx, RequestContext) else RequestContext()
