"""The KES HTTP API: routes, their handlers, and the dispatcher that runs them.

``create_api(state)`` returns the handler the transports call for every
request (``kes_server.transport``): a plain ``async def (exchange)``, with
no framework between the bytes on the wire and the route handlers.
"""

from __future__ import annotations

from typing import Any

from kes_server.api.dispatch import API
from kes_server.api.identify import Identifier
from kes_server.api.routes import ROUTER
from kes_server.api.state import ServerState

__all__ = ["API", "create_api"]


def create_api(state: ServerState, *, trust: Any = None) -> API:
    """The request handler for ``state``."""
    cfg = state.config
    identifier = Identifier(
        proxies=frozenset(cfg.tls.proxy.identities),
        header=cfg.tls.proxy.cert_header,
        verify_forwarded=cfg.auth,
        trust=trust,
    )
    return API(state, identifier, ROUTER)
