"""Secrets hygiene: file modes, nothing secret in any log, keys leave memory on time.

* The fs store keeps key files 0600 in 0700 directories (the policy store too).
* A full e2e session with audit and error logging on, driven with *known*
  secrets (an imported master key, plaintexts, contexts) plus every secret
  the server generated (master keys in the store, data keys from generate)
  and the private keys of server and client: neither stdout, stderr, nor the
  audit/error trace streams contain any of them, base64 or hex.
* The key manager drops its reference to a decrypted master key when the
  cache says so, so the key object can be freed.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kes_server.core.config import CacheConfig
from kes_server.core.keyfile import decode_key
from kes_server.core.pem import load_private_key
from kes_server.keys import KeyManager
from kes_server.keystore.memory import MemoryStore
from tests.support.server import start_server
from tests.support.trace import LiveTrace


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.e2e
def test_no_secret_reaches_a_log_and_files_are_private(tmp_path: Path) -> None:
    imported = bytes.fromhex("5ec2e7" * 10 + "ab01")
    plaintexts = [b"the launch code is 0000", bytes(range(200, 232))]
    context = b"tenant=secret-tenant-ctx"
    secrets: dict[str, bytes] = {"imported key": imported, "context": context}
    config = {"log": {"audit": "on", "error": "on"}}
    with start_server(tmp_path, config=config) as server:
        audit = LiveTrace.of(server, "/v1/log/audit/trace")
        errors = LiveTrace.of(server, "/v1/log/error/trace")
        with server.client() as root:
            root.post("/v1/key/import/imported", json={"bytes": b64(imported)}).raise_for_status()
            root.post("/v1/key/create/created").raise_for_status()
            for name in ("imported", "created"):
                gen = root.post(f"/v1/key/generate/{name}", json={"context": b64(context)})
                secrets[f"data key of {name}"] = base64.b64decode(gen.json()["plaintext"])
                dec = root.post(
                    f"/v1/key/decrypt/{name}",
                    json={"ciphertext": gen.json()["ciphertext"], "context": b64(context)},
                )
                assert dec.status_code == 200
                for i, plaintext in enumerate(plaintexts):
                    secrets[f"plaintext {i}"] = plaintext
                    enc = root.post(
                        f"/v1/key/encrypt/{name}",
                        json={"plaintext": b64(plaintext), "context": b64(context)},
                    )
                    ciphertext = enc.json()["ciphertext"]
                    assert root.post(
                        f"/v1/key/decrypt/{name}",
                        json={"ciphertext": ciphertext, "context": b64(context)},
                    ).json()["plaintext"] == b64(plaintext)
                    # Failures must not leak either: wrong context, then a re-import.
                    assert (
                        root.post(
                            f"/v1/key/decrypt/{name}", json={"ciphertext": ciphertext}
                        ).status_code
                        == 400
                    )
            assert (
                root.post("/v1/key/import/imported", json={"bytes": b64(imported)}).status_code
                == 400
            )
            assert (
                root.post("/v1/key/import/short", json={"bytes": b64(imported[:31])}).status_code
                == 400
            )

        keys = server.directory / "keys"
        secrets["created master key"] = decode_key((keys / "created").read_bytes())
        for who, path in (("server", server.directory / "server.key"), ("root", server.root_key)):
            private = load_private_key(path.read_bytes(), "")
            assert isinstance(private, ec.EllipticCurvePrivateKey)  # the test certs are ECDSA
            scalar = private.private_numbers().private_value
            secrets[f"{who} private key"] = scalar.to_bytes(32, "big")
            pem = path.read_text()
            secrets[f"{who} private key PEM"] = "".join(
                line for line in pem.splitlines() if not line.startswith("-----")
            ).encode()

        # Modes: 0700 directories, 0600 files (keys, policies, bindings).
        assert _mode(keys) == 0o700
        for directory in (keys / ".pykes", keys / ".pykes" / "policies"):
            assert _mode(directory) == 0o700, directory
        for entry in keys.rglob("*"):
            if entry.is_file():
                assert _mode(entry) == 0o600, entry

        audit.close()
        errors.close()
        server.stop()
        events: list[str] = []
        for trace in (audit, errors):
            while not trace.events.empty():
                events.append(str(trace.events.get()))
        assert any("/v1/key/encrypt/imported" in e for e in events), "the traces saw nothing"
        haystack = server.logs() + "\n".join(events)
        assert "/v1/key/import/imported" in haystack

    for what, secret in secrets.items():
        forms = {
            "base64": b64(secret),
            "base64 (unpadded)": b64(secret).rstrip("="),
            "hex": secret.hex(),
            "HEX": secret.hex().upper(),
        }
        if secret.isascii() and secret.decode().isprintable():
            forms["text"] = secret.decode()
        for form, text in forms.items():
            assert text not in haystack, f"{what} appears in the logs as {form}"


async def _referenced_by(manager: KeyManager, obj: object) -> bool:
    """Whether the manager (its caches and their entries) still holds ``obj``."""
    gc.collect()
    holders = {id(manager._live), id(manager._offline), *map(id, manager._live.values())}
    return any(id(r) in holders for r in gc.get_referrers(obj))


@pytest.mark.parametrize(
    "cache",
    [CacheConfig(any_s=0.2, unused_s=0), CacheConfig(any_s=0, unused_s=0.2)],
    ids=["expiry-any", "expiry-unused"],
)
async def test_master_key_is_released_when_the_cache_expires(cache: CacheConfig) -> None:
    store = MemoryStore()
    manager = KeyManager(store, cache)
    await manager.create("k", bytes(range(32)))
    manager.start()
    try:
        key = await manager.get("k")
        assert await _referenced_by(manager, key)
        await asyncio.sleep(0.5)  # past "any", or two "unused" sweeps without use
        assert not await _referenced_by(manager, key)
        assert "k" not in manager._live
    finally:
        await manager.stop()
