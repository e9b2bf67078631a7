"""The identity API: assign, list, forget/delete, describe, self-describe."""

from __future__ import annotations

import json

from kes_server.api.call import Call, Reply, json_reply, ndjson_reply, ok
from kes_server.core.errors import InvalidArgument
from kes_server.core.glob import BadPattern, compile_glob
from kes_server.core.names import validate_pattern_size

__all__ = ["assign", "describe", "forget", "list_identities", "self_describe"]


async def assign(call: Call) -> Reply:
    """Bind the identity in the path to the policy; a request body is ignored (as KES)."""
    policy, identity = call.args
    await call.state.access.assign(policy, identity, call.identity)
    return ok()


async def list_identities(call: Call) -> Reply:
    """NDJSON ``{"identity": ..., "policy": ...}``; root has no policy and is not listed."""
    pattern = call.args[0]
    validate_pattern_size(pattern)
    try:
        glob = compile_glob(pattern)
    except BadPattern:
        raise InvalidArgument("invalid argument: invalid pattern") from None
    rows = [b for b in call.state.access.list_identities() if glob.match(b.identity)]
    return ndjson_reply(
        json.dumps(
            {
                "identity": b.identity,
                "policy": b.policy,
                "created_at": b.created_at,
                "created_by": b.created_by,
            },
            separators=(",", ":"),
        ).encode()
        + b"\n"
        for b in rows
    )


async def forget(call: Call) -> Reply:
    await call.state.access.forget(call.args[0])
    return ok()


def _describe(call: Call, identity: str) -> dict[str, object]:
    access = call.state.access
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


async def self_describe(call: Call) -> Reply:
    return json_reply(_describe(call, call.identity))


async def describe(call: Call) -> Reply:
    identity = call.args[0]
    body = _describe(call, identity)
    return json_reply(
        {
            "identity": identity,
            "admin": body["admin"],
            "policy": body.get("policy_name", ""),
            "created_at": body.get("created_at", ""),
            "created_by": body.get("created_by", ""),
        }
    )
