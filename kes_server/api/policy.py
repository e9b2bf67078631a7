"""The policy API: write, read, list, delete, describe and (v0.18+) assign."""

from __future__ import annotations

import json

from quart import Blueprint, Response, request

from kes_server.api.body import read_json
from kes_server.api.state import request_context, server_state
from kes_server.core.errors import InvalidArgument
from kes_server.core.glob import compile_glob
from kes_server.core.names import validate_name, validate_pattern
from kes_server.core.policy import Policy

__all__ = ["blueprint"]

blueprint = Blueprint("policy", __name__)


def _json(body: object) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status=200, content_type="application/json"
    )


@blueprint.post("/v1/policy/write/", defaults={"name": ""})
@blueprint.post("/v1/policy/write/<path:name>")
async def write_policy(name: str) -> Response:
    validate_name(name, "policy")
    policy = Policy.from_json(await read_json())
    caller = request_context(request.scope).identity
    await server_state().access.write_policy(name, policy, caller)
    return Response(b"", status=200)


@blueprint.get("/v1/policy/read/", defaults={"name": ""})
@blueprint.get("/v1/policy/read/<path:name>")
@blueprint.get("/v1/policy/show/<path:name>")
async def read_policy(name: str) -> Response:
    validate_name(name, "policy")
    return _json(server_state().access.read_policy(name).policy.to_json())


@blueprint.get("/v1/policy/describe/<path:name>")
async def describe_policy(name: str) -> Response:
    validate_name(name, "policy")
    stored = server_state().access.read_policy(name)
    return _json({"created_at": stored.created_at, "created_by": stored.created_by})


@blueprint.get("/v1/policy/list/", defaults={"pattern": ""})
@blueprint.get("/v1/policy/list/<path:pattern>")
async def list_policies(pattern: str) -> Response:
    """v0.17 answers one JSON array of names."""
    validate_pattern(pattern)
    glob = compile_glob(pattern)
    return _json([n for n in server_state().access.list_policies() if glob.match(n)])


@blueprint.delete("/v1/policy/delete/", defaults={"name": ""})
@blueprint.delete("/v1/policy/delete/<path:name>")
async def delete_policy(name: str) -> Response:
    validate_name(name, "policy")
    await server_state().access.delete_policy(name)
    return Response(b"", status=200)


@blueprint.post("/v1/policy/assign/<path:name>")
async def assign_policy(name: str) -> Response:
    """v0.18+ form of identity assignment: body ``{"identity": "<hex>"}``."""
    validate_name(name, "policy")
    body = await read_json()
    if not isinstance(body, dict) or not isinstance(body.get("identity", ""), str):
        raise InvalidArgument("invalid json")
    caller = request_context(request.scope).identity
    await server_state().access.assign(name, str(body.get("identity", "")), caller)
    return Response(b"", status=200)
