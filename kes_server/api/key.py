"""The key API: create, import, delete, generate, encrypt, decrypt, list."""

from __future__ import annotations

import base64

from kes_server.api.call import JSON, Call, Reply, json_reply, ndjson_reply, ok
from kes_server.api.wire import b64_field, decrypt_reply, encrypt_reply, generate_reply
from kes_server.core.crypto import new_key, unseal
from kes_server.core.errors import InvalidArgument
from kes_server.core.glob import compile_glob
from kes_server.core.names import validate_name, validate_pattern

__all__ = [
    "MAX_BULK",
    "bulk_decrypt",
    "create",
    "decrypt",
    "delete",
    "encrypt",
    "generate",
    "import_key",
    "list_keys",
]

MAX_BULK = 1000


async def create(call: Call) -> Reply:
    """A new random key; a request body is ignored, as KES ignores it."""
    name = call.args[0]
    validate_name(name, "key")
    await call.state.keys.create(name, new_key())
    return ok()


async def import_key(call: Call) -> Reply:
    name = call.args[0]
    validate_name(name, "key")
    key = b64_field(await call.json(), "bytes")
    if len(key) != 32:
        raise InvalidArgument("invalid key")
    await call.state.keys.create(name, key)
    return ok()


async def delete(call: Call) -> Reply:
    name = call.args[0]
    validate_name(name, "key")
    await call.state.keys.delete(name)
    return ok()


async def generate(call: Call) -> Reply:
    name = call.args[0]
    validate_name(name, "key")
    body = await call.json()
    key = await call.state.keys.get(name)
    return Reply(body=generate_reply(key, body), content_type=JSON)


async def encrypt(call: Call) -> Reply:
    name = call.args[0]
    validate_name(name, "key")
    body = await call.json()
    key = await call.state.keys.get(name)
    return Reply(body=encrypt_reply(key, body), content_type=JSON)


async def decrypt(call: Call) -> Reply:
    name = call.args[0]
    validate_name(name, "key")
    body = await call.json()
    key = await call.state.keys.get(name)
    return Reply(body=decrypt_reply(key, body), content_type=JSON)


async def bulk_decrypt(call: Call) -> Reply:
    """v0.19's batch decrypt: all or nothing, results in request order."""
    name = call.args[0]
    validate_name(name, "key")
    body = await call.json()
    if not isinstance(body, list):
        raise InvalidArgument("invalid json")
    if len(body) > MAX_BULK:
        raise InvalidArgument("too many ciphertexts")
    key = await call.state.keys.get(name)
    out = []
    for item in body:
        plaintext = unseal(key, b64_field(item, "ciphertext"), b64_field(item, "context"))
        out.append({"plaintext": base64.b64encode(plaintext).decode()})
    return json_reply(out)


async def list_keys(call: Call) -> Reply:
    """NDJSON, one ``{"name": ...}`` per key (v0.17 wrote ``Name``; Go decodes either)."""
    pattern = call.args[0]
    validate_pattern(pattern)
    glob = compile_glob(pattern)
    names = sorted(n for n in await call.state.keys.list() if glob.match(n))
    return ndjson_reply(b'{"name":"' + name.encode() + b'"}\n' for name in names)
