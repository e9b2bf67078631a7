"""Reading request bodies: the route's size limit, JSON, and KES's base64 fields."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from quart import request

from kes_server.api.fastpath import DRAIN_IDLE_S, DRAIN_LIMIT
from kes_server.api.routes import route_for
from kes_server.api.wire import b64_field, parse_json
from kes_server.core.errors import PayloadTooLarge

__all__ = ["b64_field", "read_json"]


async def read_body() -> bytes:
    route = route_for(request.path)
    limit = route.max_body if route is not None else 0
    length = request.content_length
    if length is not None and length > limit:
        if length <= DRAIN_LIMIT:
            # Let a client that really sends the body finish, so it reads the
            # 413 rather than a reset (see fastpath._drain); bounded in time.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(request.get_data(cache=False), DRAIN_IDLE_S)
        raise PayloadTooLarge()
    data = await request.get_data(cache=False, as_text=False)
    assert isinstance(data, bytes)
    if len(data) > limit:
        raise PayloadTooLarge()
    return data


async def read_json(*, required: bool = True) -> Any:
    """The request's JSON document; 400 ``invalid json`` when it is not one."""
    return parse_json(await read_body(), required=required)
