"""The KES HTTP API as an ASGI application.

``create_app(state)`` builds the Quart app with one blueprint per API group
and wraps it in the ``Gateway`` (identity, timeouts, audit, metrics). The
returned object is a plain ASGI callable, ready for hypercorn.
"""

from __future__ import annotations

from typing import Any

from quart import Quart
from werkzeug.routing import PathConverter

from kes_server.api import fastpath, identity, key, log, policy, status
from kes_server.api.auth import authorize_request
from kes_server.api.errors import install_error_handlers
from kes_server.api.gateway import Gateway
from kes_server.api.identify import Identifier
from kes_server.api.state import ServerState

__all__ = ["create_app"]


class _AnyPath(PathConverter):
    """werkzeug's ``path`` converter, but matching control characters too.

    The stock one uses ``.`` and so never matches a name with a newline
    (``/v1/key/create/a%0Ab``): such a request answered 404 "page not found"
    instead of the name rule's 400 "name contains invalid character".
    """

    regex = "[^/][\\s\\S]*?"


def create_app(state: ServerState, *, trust: Any = None) -> tuple[Gateway, Quart]:
    """The ASGI app for ``state`` and the inner Quart app (for lifecycle hooks)."""
    app = Quart("kes_server")
    app.config.update(
        KES_STATE=state,
        MAX_CONTENT_LENGTH=fastpath.DRAIN_LIMIT,  # per-route limits are enforced in body.py
        RESPONSE_TIMEOUT=None,
        BODY_TIMEOUT=20,
        PROVIDE_AUTOMATIC_OPTIONS=False,
    )
    app.url_map.strict_slashes = False
    app.url_map.redirect_defaults = False
    app.url_map.converters["path"] = _AnyPath
    app.before_request(authorize_request)
    for bp in (
        status.blueprint,
        key.blueprint,
        policy.blueprint,
        identity.blueprint,
        log.blueprint,
    ):
        app.register_blueprint(bp)
    install_error_handlers(app)
    cfg = state.config
    identifier = Identifier(
        proxies=frozenset(cfg.tls.proxy.identities),
        header=cfg.tls.proxy.cert_header,
        verify_forwarded=cfg.auth,
        trust=trust,
    )
    return Gateway(app, state, identifier, fast=fastpath.enabled()), app
