"""Reading request bodies: the route's size limit, JSON, and KES's base64 fields."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from quart import request

from kes_server.api.routes import route_for
from kes_server.core.errors import InvalidArgument, PayloadTooLarge

__all__ = ["b64_field", "read_json"]


async def read_body() -> bytes:
    route = route_for(request.path)
    limit = route.max_body if route is not None else 0
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge()
    data = await request.get_data(cache=False, as_text=False)
    assert isinstance(data, bytes)
    if len(data) > limit:
        raise PayloadTooLarge()
    return data


async def read_json(*, required: bool = True) -> Any:
    """The request's JSON document; 400 ``invalid json`` when it is not one."""
    data = await read_body()
    if not data.strip():
        if required:
            raise InvalidArgument("invalid json")
        return {}
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("invalid json") from None


def b64_field(obj: Any, name: str) -> bytes:
    """A base64 field of a JSON object; absent, null and "" all mean empty (spec §4.5)."""
    if not isinstance(obj, dict):
        raise InvalidArgument("invalid json")
    value = obj.get(name)
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise InvalidArgument("invalid json")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("invalid json") from None
