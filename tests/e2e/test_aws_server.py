"""Real kes-servers on AWS Secrets Manager (a real moto server), as a KES v0.17 user switches.

A KES v0.17 deployment on AWS keeps one secret per key, named like the key,
holding ``{"bytes":"<base64>"}``. These tests seed such secrets with the AWS
SDK (as KES would have written them) and check that kes-server, given the
same ``keystore.aws.secretsmanager`` section, decrypts every ciphertext
vector with them; that keys it creates are secrets KES can read; that two
servers racing for a name have one winner; and that AWS going away (before
the start, stopped, hung) answers 503 and recovers without a restart.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kes_server.core.certs import new_identity
from kes_server.core.crypto import unseal
from kes_server.core.identity import identity_of_pem
from kes_server.core.keyfile import decode_key
from kes_server.keystore.aws_layout import missing_sdk_message
from tests.kes_server.keystore.test_aws_layout import kes_v017_lists
from tests.support.moto import (
    ACCESS_KEY,
    SECRET_KEY,
    MotoServer,
    kms_client,
    secrets_client,
    start_moto,
    store_config,
)
from tests.support.paths import VECTORS_DIR, load_vectors
from tests.support.server import ClientIdentity, RunningServer, start_server
from tests.support.trace import LiveTrace

pytestmark = [pytest.mark.e2e, pytest.mark.aws]

UNREACHABLE = "key store is not reachable"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unique(prefix: str = "key") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def key_names(client: httpx.Client, pattern: str = "*") -> set[str]:
    resp = client.get(f"/v1/key/list/{pattern}")
    assert resp.status_code == 200, resp.text
    return {json.loads(line)["name"] for line in resp.text.splitlines() if line}


async def _new_kms_key(moto: MotoServer) -> str:
    async with kms_client(moto) as kms:
        return (await kms.create_key(Description="kes"))["KeyMetadata"]["KeyId"]


@pytest.fixture(name="kms_key", scope="module")
def _kms_key(moto_server: MotoServer) -> str:
    return asyncio.run(_new_kms_key(moto_server))


@pytest.fixture(name="aws_kes", scope="module")
def _aws_kes(
    tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer, kms_key: str
) -> Iterator[RunningServer]:
    """A kes-server whose config is a KES v0.17 AWS config (with ``kmskey``)."""
    config = {"keystore": store_config(moto_server, kmskey=kms_key)}
    with start_server(tmp_path_factory.mktemp("kes-aws"), store="aws", config=config) as server:
        yield server


@pytest.fixture(name="root")
def _root(aws_kes: RunningServer) -> Iterator[httpx.Client]:
    with aws_kes.client() as client:
        yield client


VECTORS = load_vectors("ciphertexts.json")["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["id"])
async def test_keys_stored_by_kes_v017_decrypt_every_vector(
    root: httpx.Client, moto_server: MotoServer, vector: dict[str, Any]
) -> None:
    name = "v017-" + re.sub(r"[^0-9A-Za-z_-]", "-", vector["id"])[:60]
    async with secrets_client(moto_server) as sm:
        await sm.create_secret(Name=name, SecretString='{"bytes":"' + vector["key_b64"] + '"}')
    body = {"ciphertext": vector["ciphertext_b64"], "context": vector["context_b64"] or None}
    resp = root.post(f"/v1/key/decrypt/{name}", json=body)
    if vector["expect"] == "ok":
        assert resp.status_code == 200, resp.text
        assert resp.json()["plaintext"] == vector["plaintext_b64"]
    else:
        expected = vector.get("error_v0_17") or vector["error_v0_19_2_plus"]
        assert (resp.status_code, resp.json()["message"]) == (
            expected["status"],
            expected["message"],
        )


async def test_keys_created_here_are_kes_v017_secrets(
    root: httpx.Client, moto_server: MotoServer, kms_key: str
) -> None:
    name = unique()
    assert root.post(f"/v1/key/create/{name}").status_code == 200
    plaintext, context = b"sealed by pykes", b"ctx"
    enc = root.post(
        f"/v1/key/encrypt/{name}", json={"plaintext": b64(plaintext), "context": b64(context)}
    )
    assert enc.status_code == 200, enc.text
    async with secrets_client(moto_server) as sm:
        secret = await sm.get_secret_value(SecretId=name)
        described = await sm.describe_secret(SecretId=name)
    record = secret["SecretString"]
    assert re.fullmatch(r'\{"bytes":"[A-Za-z0-9+/]{43}="\}', record), record
    # What KES v0.17 reads from that secret decrypts what pykes encrypted.
    key = decode_key(record.encode())
    assert unseal(key, base64.b64decode(enc.json()["ciphertext"]), context) == plaintext
    assert described["KmsKeyId"] == kms_key
    assert name in key_names(root)
    assert root.delete(f"/v1/key/delete/{name}").status_code == 200
    async with secrets_client(moto_server) as sm:
        assert name not in [s["Name"] for s in (await sm.list_secrets())["SecretList"]]


async def test_policies_live_where_kes_v017_never_looks(
    root: httpx.Client, aws_kes: RunningServer, moto_server: MotoServer
) -> None:
    policy, app = unique("policy"), aws_kes.new_client("app")
    assert (
        root.post(f"/v1/policy/write/{policy}", json={"allow": ["/v1/key/create/*"]}).status_code
        == 200
    )
    assert root.post(f"/v1/identity/assign/{policy}/{app.identity}").status_code == 200
    async with secrets_client(moto_server) as sm:
        pages = sm.get_paginator("list_secrets").paginate()
        account = [s["Name"] async for page in pages for s in page["SecretList"]]
    assert f"pykes/policies/{policy}" in account
    assert f"pykes/identities/{app.identity}" in account
    # A KES v0.17 on the same account lists every secret matching "*": none of them.
    assert not [n for n in account if kes_v017_lists(n) and n.startswith("pykes")]
    assert not {n for n in key_names(root) if "/" in n}
    with aws_kes.client(app) as client:
        assert client.post(f"/v1/key/create/{unique()}").status_code == 200


async def test_two_servers_racing_for_a_name_have_one_winner(
    tmp_path: Path, aws_kes: RunningServer, moto_server: MotoServer, kms_key: str
) -> None:
    config = {"keystore": store_config(moto_server, kmskey=kms_key)}
    with start_server(tmp_path, store="aws", config=config) as other:
        for _ in range(3):
            name = unique("race")
            async with (
                aws_kes.async_client() as a,
                other.async_client() as b,
            ):
                answers = await asyncio.gather(
                    *(client.post(f"/v1/key/create/{name}") for client in (a, b) * 4)
                )
            codes = sorted(r.status_code for r in answers)
            assert codes == [200] + [400] * 7, [r.text for r in answers]
            losers = {r.json()["message"] for r in answers if r.status_code == 400}
            assert losers == {"key does already exist"}
            # Both servers now serve the winner's key.
            with aws_kes.client() as ca, other.client() as cb:
                enc = ca.post(f"/v1/key/encrypt/{name}", json={"plaintext": b64(b"x")})
                dec = cb.post(
                    f"/v1/key/decrypt/{name}", json={"ciphertext": enc.json()["ciphertext"]}
                )
                assert dec.status_code == 200 and dec.json()["plaintext"] == b64(b"x")


async def test_a_kes_v014_config_file_switches_over_and_keeps_every_key(
    tmp_path: Path, moto_server: MotoServer
) -> None:
    """The upstream sample AWS config, only the endpoint pointed at moto (region us-east-2)."""
    doc = yaml.safe_load((VECTORS_DIR / "configs" / "config_v0.14.0.yml").read_text())
    for own in ("address", "root", "tls"):  # this test's listener, root and certificate
        del doc[own]
    section = doc["keystore"]["aws"]["secretsmanager"]
    assert section["region"] == "us-east-2" and section["credentials"]["accesskey"] == ""
    section["endpoint"] = moto_server.endpoint
    vector = next(v for v in VECTORS if v["expect"] == "ok" and v["format"] == "json")
    async with secrets_client(moto_server, "us-east-2") as sm:
        await sm.create_secret(Name="kept", SecretString='{"bytes":"' + vector["key_b64"] + '"}')
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    body = {"ciphertext": vector["ciphertext_b64"], "context": vector["context_b64"] or None}
    records: list[str] = []
    with start_server(tmp_path, store="aws", config=doc, env=env) as server:
        for _ in range(2):  # and again after a restart
            with server.client() as root:
                assert key_names(root) == {"kept", "my-key-1", "my-key-2"}
                dec = root.post("/v1/key/decrypt/kept", json=body)
                assert dec.status_code == 200 and dec.json()["plaintext"] == vector["plaintext_b64"]
            async with secrets_client(moto_server, "us-east-2") as sm:
                records.append((await sm.get_secret_value(SecretId="my-key-1"))["SecretString"])
                account = [s["Name"] for s in (await sm.list_secrets())["SecretList"]]
            assert "pykes/policies/my-app-ops" in account
            server.restart()
    assert records[0] == records[1]  # the declared key was created once, then kept


def _client_identity(directory: Path, name: str) -> ClientIdentity:
    directory.mkdir(parents=True, exist_ok=True)
    key_pem, cert_pem = new_identity(name, key_type="ecdsa")
    cert, key = directory / f"{name}.cert", directory / f"{name}.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    return ClientIdentity(cert, key, identity_of_pem(cert_pem))


def _unreachable(server: RunningServer, resp: httpx.Response, operation: str) -> None:
    """503 with KES's text; what failed, in the store's own words, is in the error log only."""
    assert resp.status_code == 503, resp.text
    assert resp.json()["message"] == UNREACHABLE, resp.text
    assert f"aws: {operation}" in server.logs()  # written before the answer


def _metric(client: httpx.Client, name: str) -> float:
    text = client.get("/v1/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


async def _secret_exists(moto: MotoServer, name: str) -> bool:
    async with secrets_client(moto) as sm:
        try:
            await sm.describe_secret(SecretId=name)
        except sm.exceptions.ResourceNotFoundException:
            return False
    return True


@pytest.mark.slow
def test_aws_unreachable_at_start_then_back_without_a_restart(tmp_path: Path) -> None:
    app = _client_identity(tmp_path / "ids", "app")
    with start_moto(tmp_path / "moto", start=False) as moto:
        config = {
            "keystore": store_config(moto),
            "policy": {"app": {"allow": ["/v1/key/create/app-*"], "identities": [app.identity]}},
        }
        with start_server(tmp_path / "kes", store="aws", config=config) as server:
            with server.client() as root, server.client(app) as client:
                assert root.get("/v1/status").json()["kms"]["state"] == "unreachable"
                _unreachable(server, root.post("/v1/key/create/first"), "cannot create 'first'")
                _unreachable(server, root.get("/v1/key/list/*"), "cannot list entries")
                # The config file's policy is enforced meanwhile: app gets to the store.
                _unreachable(server, client.post("/v1/key/create/app-1"), "cannot create 'app-1'")
                assert client.post("/v1/key/create/other").status_code == 403
                assert _metric(root, "kes_keystore_errors") >= 2

                moto.start()
                assert root.post("/v1/key/create/first").status_code == 200
                assert client.post("/v1/key/create/app-1").status_code == 200
                assert root.get("/v1/status").json()["kms"]["state"] == "available"
                # The file's policy reaches the store with the next refresh.
                _wait_until(lambda: asyncio.run(_secret_exists(moto, "pykes/policies/app")))
            logs = server.logs()
    assert "keystore: not reachable at start, enforcing the config file's policies" in logs
    assert SECRET_KEY not in logs and ACCESS_KEY not in logs


@pytest.mark.slow
def test_aws_stopped_or_hung_during_operation_then_back(tmp_path: Path) -> None:
    with start_moto(tmp_path / "moto") as moto:
        config = {"keystore": store_config(moto)}
        with start_server(tmp_path / "kes", store="aws", config=config) as server:
            trace = LiveTrace.of(server, "/v1/log/error/trace")
            try:
                with server.client(timeout=30) as root:
                    root.post("/v1/key/create/kept").raise_for_status()
                    root.post("/v1/key/create/uncached").raise_for_status()
                    enc = root.post("/v1/key/encrypt/kept", json={"plaintext": b64(b"hi")})
                    sealed = {"ciphertext": enc.json()["ciphertext"]}

                    moto.stop()
                    _unreachable(server, root.post("/v1/key/create/new"), "cannot create 'new'")
                    _unreachable(server, root.get("/v1/key/list/*"), "cannot list entries")
                    body = {"plaintext": b64(b"x")}
                    uncached = root.post("/v1/key/encrypt/uncached", json=body)
                    _unreachable(server, uncached, "cannot read")
                    assert root.get("/v1/status").json()["kms"]["state"] == "unreachable"
                    # A key in the cache keeps working.
                    assert root.post("/v1/key/decrypt/kept", json=sealed).status_code == 200
                    event = trace.next_event(lambda e: "'new'" in e["message"], 10)
                    expected = "keystore: failed to create key 'new': aws: cannot create 'new': "
                    assert expected in event["message"]

                    moto.start()  # moto starts empty (AWS would not lose the keys)
                    assert root.post("/v1/key/create/new").status_code == 200
                    assert "new" in key_names(root)

                    moto.pause()
                    try:
                        hung = root.post("/v1/key/create/hung")
                        _unreachable(server, hung, "cannot create 'hung'")
                    finally:
                        moto.resume()
                    assert root.post("/v1/key/create/after").status_code == 200
                    assert root.post("/v1/key/generate/new", json={}).status_code == 200
            finally:
                trace.close()
            logs = server.logs()
    assert SECRET_KEY not in logs and ACCESS_KEY not in logs


def test_the_sdks_default_credential_chain(tmp_path: Path, moto_server: MotoServer) -> None:
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    config = {"keystore": store_config(moto_server, credentials=False)}
    with (
        start_server(tmp_path, store="aws", config=config, env=env) as server,
        server.client() as root,
    ):
        name = unique()
        assert root.post(f"/v1/key/create/{name}").status_code == 200
        assert name in key_names(root)
        assert "AWS SecretsManager: http://127.0.0.1:" in server.logs()  # the banner


def _without_sdk(directory: Path) -> dict[str, str]:
    """An environment whose Python cannot import the AWS SDK (the extra not installed)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(
        "import sys\nsys.modules.update(dict.fromkeys(['aiobotocore', 'botocore', 'aiohttp']))\n"
    )
    return {"PYTHONPATH": str(directory)}


def test_kes_server_runs_without_the_aws_extra(tmp_path: Path, moto_server: MotoServer) -> None:
    env = _without_sdk(tmp_path / "site")
    with start_server(tmp_path / "fs", env=env) as server, server.client() as root:
        assert root.post(f"/v1/key/create/{unique()}").status_code == 200
    config_dir = tmp_path / "aws"
    with pytest.raises(RuntimeError, match="exited with 2") as info:
        with start_server(
            config_dir, store="aws", config={"keystore": store_config(moto_server)}, env=env
        ):
            pass
    stderr = (config_dir / "server.stderr").read_text().strip().splitlines()
    assert stderr == ["kes-server: " + missing_sdk_message("aiobotocore")], info.value
    probe = subprocess.run(
        [sys.executable, "-c", "import aiobotocore"],
        env={**env, "PATH": ""},
        capture_output=True,
        check=False,
    )
    assert probe.returncode != 0  # the environment really has no SDK
