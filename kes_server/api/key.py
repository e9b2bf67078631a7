"""The key API: create, import, delete, generate, encrypt, decrypt, list."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

from quart import Blueprint, Response

from kes_server.api.body import read_body, read_json
from kes_server.api.state import server_state
from kes_server.api.wire import b64_field, decrypt_reply, encrypt_reply, generate_reply
from kes_server.core.crypto import new_key, unseal
from kes_server.core.errors import InvalidArgument
from kes_server.core.glob import compile_glob
from kes_server.core.names import validate_name, validate_pattern

__all__ = ["blueprint"]

blueprint = Blueprint("key", __name__)
MAX_BULK = 1000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _ok() -> Response:
    return Response(b"", status=200)


def _json_bytes(body: bytes) -> Response:
    return Response(body, status=200, content_type="application/json")


def _json(body: object) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status=200, content_type="application/json"
    )


@blueprint.post("/v1/key/create/", defaults={"name": ""})
@blueprint.post("/v1/key/create/<path:name>")
async def create_key(name: str) -> Response:
    validate_name(name, "key")
    await read_body()
    await server_state().keys.create(name, new_key())
    return _ok()


@blueprint.post("/v1/key/import/", defaults={"name": ""})
@blueprint.post("/v1/key/import/<path:name>")
async def import_key(name: str) -> Response:
    validate_name(name, "key")
    body = await read_json()
    key = b64_field(body, "bytes")
    if len(key) != 32:
        raise InvalidArgument("invalid key")
    await server_state().keys.create(name, key)
    return _ok()


@blueprint.delete("/v1/key/delete/", defaults={"name": ""})
@blueprint.delete("/v1/key/delete/<path:name>")
async def delete_key(name: str) -> Response:
    validate_name(name, "key")
    await server_state().keys.delete(name)
    return _ok()


@blueprint.post("/v1/key/generate/", defaults={"name": ""})
@blueprint.post("/v1/key/generate/<path:name>")
async def generate_key(name: str) -> Response:
    validate_name(name, "key")
    body = await read_json()
    key = await server_state().keys.get(name)
    return _json_bytes(generate_reply(key, body))


@blueprint.post("/v1/key/encrypt/", defaults={"name": ""})
@blueprint.post("/v1/key/encrypt/<path:name>")
async def encrypt(name: str) -> Response:
    validate_name(name, "key")
    body = await read_json()
    key = await server_state().keys.get(name)
    return _json_bytes(encrypt_reply(key, body))


@blueprint.post("/v1/key/decrypt/", defaults={"name": ""})
@blueprint.post("/v1/key/decrypt/<path:name>")
async def decrypt(name: str) -> Response:
    validate_name(name, "key")
    body = await read_json()
    key = await server_state().keys.get(name)
    return _json_bytes(decrypt_reply(key, body))


@blueprint.post("/v1/key/bulk/decrypt/", defaults={"name": ""})
@blueprint.post("/v1/key/bulk/decrypt/<path:name>")
async def bulk_decrypt(name: str) -> Response:
    """v0.19's batch decrypt: all or nothing, results in request order."""
    validate_name(name, "key")
    body = await read_json()
    if not isinstance(body, list):
        raise InvalidArgument("invalid json")
    if len(body) > MAX_BULK:
        raise InvalidArgument("too many ciphertexts")
    key = await server_state().keys.get(name)
    out = []
    for item in body:
        plaintext = unseal(key, b64_field(item, "ciphertext"), b64_field(item, "context"))
        out.append({"plaintext": _b64(plaintext)})
    return _json(out)


@blueprint.get("/v1/key/list/", defaults={"pattern": ""})
@blueprint.get("/v1/key/list/<path:pattern>")
async def list_keys(pattern: str) -> Response:
    """NDJSON, one ``{"name": ...}`` per key (v0.17 wrote ``Name``; Go decodes either)."""
    validate_pattern(pattern)
    glob = compile_glob(pattern)
    names = sorted(n for n in await server_state().keys.list() if glob.match(n))

    async def lines() -> AsyncIterator[bytes]:
        for name in names:
            yield b'{"name":"' + name.encode() + b'"}\n'

    return Response(lines(), status=200, content_type="application/x-ndjson")
