"""The policy API: write, read, list, delete, describe and (v0.18+) assign."""

from __future__ import annotations

from kes_server.api.call import Call, Reply, json_reply, ok
from kes_server.core.errors import InvalidArgument
from kes_server.core.glob import compile_glob
from kes_server.core.names import validate_name, validate_pattern
from kes_server.core.policy import Policy

__all__ = ["assign", "delete", "describe", "list_policies", "read", "write"]


async def write(call: Call) -> Reply:
    name = call.args[0]
    validate_name(name, "policy")
    policy = Policy.from_json(await call.json())
    await call.state.access.write_policy(name, policy, call.identity)
    return ok()


async def read(call: Call) -> Reply:
    name = call.args[0]
    validate_name(name, "policy")
    return json_reply(call.state.access.read_policy(name).policy.to_json())


async def describe(call: Call) -> Reply:
    name = call.args[0]
    validate_name(name, "policy")
    stored = call.state.access.read_policy(name)
    return json_reply({"created_at": stored.created_at, "created_by": stored.created_by})


async def list_policies(call: Call) -> Reply:
    """v0.17 answers one JSON array of names."""
    pattern = call.args[0]
    validate_pattern(pattern)
    glob = compile_glob(pattern)
    return json_reply([n for n in call.state.access.list_policies() if glob.match(n)])


async def delete(call: Call) -> Reply:
    name = call.args[0]
    validate_name(name, "policy")
    await call.state.access.delete_policy(name)
    return ok()


async def assign(call: Call) -> Reply:
    """v0.18+ form of identity assignment: body ``{"identity": "<hex>"}``.

    It stands for v0.17's ``/v1/identity/assign/<policy>/<identity>``, whose
    path names the identity: a policy must allow that path too (checked here,
    once the identity is known from the body).
    """
    name = call.args[0]
    validate_name(name, "policy")
    body = await call.json()
    if not isinstance(body, dict) or not isinstance(body.get("identity", ""), str):
        raise InvalidArgument("invalid json")
    identity = str(body.get("identity", ""))
    call.state.access.authorize(call.identity, f"/v1/identity/assign/{name}/{identity}")
    await call.state.access.assign(name, identity, call.identity)
    return ok()
