"""The AWS Secrets Manager store against a real moto server, seen through the AWS SDK.

The generic store contract (tests/kes_server/keystore/test_stores.py) runs
here unchanged, each test on an emptied moto; then what the AWS store adds:
KES v0.17's layout in both directions (written and read with the SDK as KES
would), policies that a KES sharing the account never lists, ``kmskey``,
paging, values only in ``SecretBinary``, secrets scheduled for deletion,
AWS refusing (bad credentials) and AWS gone (stopped, or hung).
The same store behind real kes-servers: test_aws_server.py.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kes_server.core.config import AWSStoreConfig
from kes_server.core.keyfile import decode_key, encode_key
from kes_server.keystore.aws import AWSSecretsManagerStore
from kes_server.keystore.aws_layout import AWSRefusal
from kes_server.keystore.base import Namespace, Store, StoreError, StoreUnreachable
from tests.kes_server.keystore import test_stores as contract
from tests.kes_server.keystore.test_aws_layout import kes_v017_lists
from tests.support.moto import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    MotoServer,
    kms_client,
    secrets_client,
    start_moto,
)

pytestmark = [pytest.mark.e2e, pytest.mark.aws]


def _config(moto: MotoServer, **fields: str) -> AWSStoreConfig:
    return AWSStoreConfig(
        endpoint=moto.endpoint,
        region=fields.pop("region", REGION),
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        **fields,
    )


@pytest.fixture(name="store")
async def _store(moto_server: MotoServer) -> AsyncIterator[Store]:
    """What the contract tests get: the store on an empty account."""
    moto_server.reset()
    store = AWSSecretsManagerStore(_config(moto_server))
    yield store
    await store.close()


# The generic contract, the same functions the in-memory, fs and etcd stores pass.
test_contract_create_is_create_if_absent = contract.test_create_is_create_if_absent
test_contract_get_missing_and_delete = contract.test_get_missing_and_delete
test_contract_namespaces_are_independent = contract.test_namespaces_are_independent
test_contract_status_available = contract.test_status_available
test_contract_concurrent_creates_have_one_winner = contract.test_concurrent_creates_have_one_winner


def _record() -> tuple[bytes, str]:
    key = secrets.token_bytes(32)
    return key, '{"bytes":"' + base64.b64encode(key).decode() + '"}'


async def test_keys_written_by_kes_v017_are_read(store: Store, moto_server: MotoServer) -> None:
    key, record = _record()
    async with secrets_client(moto_server) as sm:
        await sm.create_secret(Name="from-kes", SecretString=record)
    data = await store.get(Namespace.KEYS, "from-kes")
    assert data is not None and decode_key(data) == key
    assert await store.list(Namespace.KEYS) == ["from-kes"]


async def test_keys_written_here_are_kes_v017_secrets(
    store: Store, moto_server: MotoServer
) -> None:
    key = secrets.token_bytes(32)
    assert await store.create(Namespace.KEYS, "from-pykes", encode_key(key))
    async with secrets_client(moto_server) as sm:
        value = await sm.get_secret_value(SecretId="from-pykes")
        described = await sm.describe_secret(SecretId="from-pykes")
    # Exactly the text KES v0.17 writes: {"bytes":"<base64>"}, as SecretString.
    assert value["SecretString"] == '{"bytes":"' + base64.b64encode(key).decode() + '"}'
    assert "SecretBinary" not in value
    assert "Description" not in described and "KmsKeyId" not in described
    assert await store.delete(Namespace.KEYS, "from-pykes")
    async with secrets_client(moto_server) as sm:
        listed = await sm.list_secrets()
    assert listed["SecretList"] == []  # deleted for good, as KES does (no recovery window)


async def test_policies_and_bindings_are_invisible_to_kes_v017(
    store: Store, moto_server: MotoServer
) -> None:
    _, record = _record()
    identity = "ab" * 32
    async with secrets_client(moto_server) as sm:
        await sm.create_secret(Name="app-db-password", SecretString="not a key, but KES lists it")
        await sm.create_secret(Name="my-key", SecretString=record)
    await store.put(Namespace.POLICIES, "my-app", b'{"allow":["/v1/key/*"]}')
    await store.put(Namespace.IDENTITIES, identity, b'{"policy":"my-app"}')
    async with secrets_client(moto_server) as sm:
        account = [s["Name"] for s in (await sm.list_secrets())["SecretList"]]
        described = await sm.describe_secret(SecretId="pykes/policies/my-app")
    assert sorted(account) == sorted(
        ["app-db-password", "my-key", "pykes/policies/my-app", f"pykes/identities/{identity}"]
    )
    # What `kes key list` of a KES v0.17 on this account shows: every secret matching "*".
    assert sorted(n for n in account if kes_v017_lists(n)) == ["app-db-password", "my-key"]
    assert sorted(await store.list(Namespace.KEYS)) == ["app-db-password", "my-key"]
    assert await store.list(Namespace.POLICIES) == ["my-app"]
    assert await store.list(Namespace.IDENTITIES) == [identity]
    assert "pykes policy 'my-app'" in described["Description"]


async def test_put_replaces_and_survives_a_create_race(moto_server: MotoServer) -> None:
    moto_server.reset()
    stores = [AWSSecretsManagerStore(_config(moto_server)) for _ in range(2)]
    try:
        values = [f'{{"n":{i}}}'.encode() for i in range(10)]
        await asyncio.gather(
            *(stores[i % 2].put(Namespace.POLICIES, "raced", v) for i, v in enumerate(values))
        )
        assert await stores[0].get(Namespace.POLICIES, "raced") in values
        await stores[1].put(Namespace.POLICIES, "raced", b'{"final":true}')
        assert await stores[0].get(Namespace.POLICIES, "raced") == b'{"final":true}'
        assert await stores[0].list(Namespace.POLICIES) == ["raced"]
    finally:
        for store in stores:
            await store.close()


async def test_kmskey_encrypts_every_secret(moto_server: MotoServer) -> None:
    moto_server.reset()
    async with kms_client(moto_server) as kms:
        key_id = (await kms.create_key(Description="kes"))["KeyMetadata"]["KeyId"]
    store = AWSSecretsManagerStore(_config(moto_server, kms_key=key_id))
    try:
        await store.create(Namespace.KEYS, "sealed", encode_key(bytes(32)))
        await store.put(Namespace.POLICIES, "p", b"{}")
        async with secrets_client(moto_server) as sm:
            for secret in ("sealed", "pykes/policies/p"):
                assert (await sm.describe_secret(SecretId=secret))["KmsKeyId"] == key_id
        assert await store.get(Namespace.KEYS, "sealed") == encode_key(bytes(32))
    finally:
        await store.close()


async def test_listing_follows_every_page(store: Store, moto_server: MotoServer) -> None:
    names = {f"key-{i:03d}" for i in range(130)}  # ListSecrets pages hold at most 100
    await asyncio.gather(*(store.create(Namespace.KEYS, n, b"{}") for n in names))
    await store.put(Namespace.POLICIES, "not-a-key", b"{}")
    assert sorted(await store.list(Namespace.KEYS)) == sorted(names)
    assert await store.list(Namespace.POLICIES) == ["not-a-key"]


async def test_binary_values_and_secrets_scheduled_for_deletion(
    store: Store, moto_server: MotoServer
) -> None:
    key, record = _record()
    async with secrets_client(moto_server) as sm:
        await sm.create_secret(Name="binary", SecretBinary=record.encode())
        await sm.create_secret(Name="recoverable", SecretString=record)
        # Deleted in the console: kept 7 days for recovery, but no longer a key.
        await sm.delete_secret(SecretId="recoverable", RecoveryWindowInDays=7)
    data = await store.get(Namespace.KEYS, "binary")
    assert data is not None and decode_key(data) == key
    assert await store.get(Namespace.KEYS, "recoverable") is None
    assert await store.list(Namespace.KEYS) == ["binary"]
    await store.put(Namespace.IDENTITIES, "x", b"\xff\xfe")
    assert await store.get(Namespace.IDENTITIES, "x") == b"\xff\xfe"


@pytest.fixture(name="strict_moto")
def _strict_moto(tmp_path: Path) -> Iterator[MotoServer]:
    """A moto that checks credentials like AWS: ours are unknown to it."""
    with start_moto(tmp_path, env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as moto:
        yield moto


async def test_refused_credentials_are_a_store_error_without_secrets(
    strict_moto: MotoServer,
) -> None:
    store = AWSSecretsManagerStore(_config(strict_moto))
    try:
        _, record = _record()
        with pytest.raises(AWSRefusal) as info:
            await store.create(Namespace.KEYS, "k", record.encode())
        assert not isinstance(info.value, StoreUnreachable)
        text = str(info.value)
        assert text.startswith("aws: cannot create 'k': ") and "InvalidClientTokenId" in text
        assert SECRET_KEY not in text and record not in text and "\n" not in text
        assert (await store.status()).state == "reachable"  # AWS answers, but says no
    finally:
        await store.close()


async def test_aws_gone_is_unreachable_and_comes_back(tmp_path: Path) -> None:
    with start_moto(tmp_path) as moto:
        store = AWSSecretsManagerStore(_config(moto), timeout_s=2)
        try:
            assert await store.create(Namespace.KEYS, "before", b"{}")
            moto.stop()
            for call in (
                store.create(Namespace.KEYS, "during", b"{}"),
                store.get(Namespace.KEYS, "before"),
                store.list(Namespace.KEYS),
            ):
                with pytest.raises(StoreUnreachable, match="^aws: "):
                    await call
            assert (await store.status()).state == "unreachable"
            moto.start()  # moto forgets everything on restart; AWS would not
            assert await store.create(Namespace.KEYS, "after", b"{}")
            assert (await store.status()).state == "available"
            # Hung (accepts connections, never answers): unreachable after the deadline.
            moto.pause()
            try:
                with pytest.raises(StoreUnreachable, match="no answer within 2s"):
                    await store.get(Namespace.KEYS, "after")
                assert (await store.status()).state == "unreachable"
            finally:
                moto.resume()
            assert await store.get(Namespace.KEYS, "after") == b"{}"
        finally:
            await store.close()


async def test_a_name_that_could_reach_the_reserved_folder_is_refused(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.create(Namespace.KEYS, "pykes/policies/evil", b"{}")
    assert await store.list(Namespace.POLICIES) == []
