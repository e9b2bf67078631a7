"""Everything a request handler needs, built once per server process."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from kes_server.access import AccessControl
from kes_server.core.config import Config
from kes_server.keys import KeyManager
from kes_server.keystore.base import Store
from kes_server.logbus import LogBus, error_event
from kes_server.metrics import Metrics

__all__ = ["ServerState"]


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
