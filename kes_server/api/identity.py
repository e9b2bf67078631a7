"""The identity API: assign, list, forget/delete, describe, self-describe."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from quart import Blueprint, Response, request

from kes_server.api.body import read_body
from kes_server.api.state import request_context, server_state
from kes_server.core.errors import InvalidArgument
from kes_server.core.glob import BadPattern, compile_glob
from kes_server.core.names import validate_pattern_size

__all__ = ["blueprint"]

blueprint = Blueprint("identity", __name__)


def _json(body: object) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status=200, content_type="application/json"
    )


@blueprint.post("/v1/identity/assign/<policy>/", defaults={"identity": ""})
@blueprint.post("/v1/identity/assign/<policy>/<path:identity>")
async def assign_identity(policy: str, identity: str) -> Response:
    await read_body()
    caller = request_context(request.scope).identity
    await server_state().access.assign(policy, identity, caller)
    return Response(b"", status=200)


@blueprint.get("/v1/identity/list/", defaults={"pattern": "*"})
@blueprint.get("/v1/identity/list/<path:pattern>")
async def list_identities(pattern: str) -> Response:
    """NDJSON ``{"identity": ..., "policy": ...}``; root has no policy and is not listed."""
    validate_pattern_size(pattern)
    try:
        glob = compile_glob(pattern)
    except BadPattern:
        raise InvalidArgument("invalid argument: invalid pattern") from None
    rows = [b for b in server_state().access.list_identities() if glob.match(b.identity)]

    async def lines() -> AsyncIterator[bytes]:
        for b in rows:
            line = {
                "identity": b.identity,
                "policy": b.policy,
                "created_at": b.created_at,
                "created_by": b.created_by,
            }
            yield json.dumps(line, separators=(",", ":")).encode() + b"\n"

    return Response(lines(), status=200, content_type="application/x-ndjson")


@blueprint.delete("/v1/identity/forget/", defaults={"identity": ""})
@blueprint.delete("/v1/identity/forget/<path:identity>")
@blueprint.delete("/v1/identity/delete/<path:identity>")
async def forget_identity(identity: str) -> Response:
    await server_state().access.forget(identity)
    return Response(b"", status=200)


def _describe(identity: str) -> dict[str, object]:
    access = server_state().access
    if access.is_root(identity):
        return {
            "identity": identity,
            "admin": True,
            "policy_name": "",
            "created_at": "",
            "created_by": "",
            "policy": {"allow": [], "deny": []},
        }
    binding = access.bindings.get(identity)
    body: dict[str, object] = {"identity": identity, "admin": False}
    if binding is None:
        return {**body, "policy_name": "", "policy": {"allow": [], "deny": []}}
    stored = access.policies.get(binding.policy)
    return {
        **body,
        "policy_name": binding.policy,
        "created_at": binding.created_at,
        "created_by": binding.created_by,
        "policy": stored.policy.to_json() if stored else {"allow": [], "deny": []},
    }


@blueprint.get("/v1/identity/self/describe")
async def self_describe() -> Response:
    return _json(_describe(request_context(request.scope).identity))


@blueprint.get("/v1/identity/describe/<path:identity>")
async def describe_identity(identity: str) -> Response:
    if not identity:
        raise InvalidArgument("identity is unknown")
    body = _describe(identity)
    return _json(
        {
            "identity": identity,
            "admin": body["admin"],
            "policy": body.get("policy_name", ""),
            "created_at": body.get("created_at", ""),
            "created_by": body.get("created_by", ""),
        }
    )
