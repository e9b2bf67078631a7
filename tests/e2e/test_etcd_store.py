"""The etcd store against a real 3-member etcd cluster (and a TLS one).

The generic store contract (tests/kes_server/keystore/test_stores.py) runs
here unchanged against etcd, each test under a fresh prefix; then what only a
shared store has: creates racing from independent clients (as separate
kes-servers would), pagination, endpoint failover and TLS with client
certificates. Killing members is in test_cluster.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme

from kes_server.core.config import EtcdStoreConfig
from kes_server.keystore.base import Namespace, Store, StoreUnreachable
from kes_server.keystore.etcd import EtcdStore
from tests.kes_server.keystore import test_stores as contract
from tests.support.etcd import EtcdCluster, EtcdTLS, start_etcd_cluster
from tests.support.server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.etcd]


@pytest.fixture(name="etcd", scope="module")
def _etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with start_etcd_cluster(tmp_path_factory.mktemp("etcd-store")) as cluster:
        yield cluster


def _prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}/"


@pytest.fixture(name="store")
async def _store(etcd: EtcdCluster) -> AsyncIterator[Store]:
    """What the contract tests get: a store under a prefix nobody else uses."""
    store = EtcdStore(etcd.endpoints, prefix=_prefix(), timeout_s=2)
    yield store
    await store.close()


# The generic contract, the same functions the in-memory and fs stores pass.
test_contract_create_is_create_if_absent = contract.test_create_is_create_if_absent
test_contract_get_missing_and_delete = contract.test_get_missing_and_delete
test_contract_namespaces_are_independent = contract.test_namespaces_are_independent
test_contract_status_available = contract.test_status_available
test_contract_concurrent_creates_have_one_winner = contract.test_concurrent_creates_have_one_winner


async def test_creates_racing_from_independent_clients_have_one_winner(etcd: EtcdCluster) -> None:
    """Five clients (five kes-servers, each on another member first) race for one name."""
    prefix = _prefix()
    stores = [
        EtcdStore([*etcd.endpoints[i % 3 :], *etcd.endpoints[: i % 3]], prefix=prefix, timeout_s=2)
        for i in range(5)
    ]
    try:
        values = [f"value-{s}-{n}".encode() for s in range(5) for n in range(10)]
        results = await asyncio.gather(
            *(stores[i // 10].create(Namespace.KEYS, "race", v) for i, v in enumerate(values))
        )
        assert results.count(True) == 1
        winner = values[results.index(True)]
        for store in stores:
            assert await store.get(Namespace.KEYS, "race") == winner
    finally:
        for store in stores:
            await store.close()


async def test_list_pages_through_many_entries(etcd: EtcdCluster) -> None:
    store = EtcdStore(etcd.endpoints, prefix=_prefix(), timeout_s=2, page_size=7)
    try:
        names = {f"key-{i:03d}" for i in range(40)}
        await asyncio.gather(*(store.create(Namespace.KEYS, n, b"v") for n in names))
        await store.put(Namespace.POLICIES, "not-a-key", b"{}")
        listed = await store.list(Namespace.KEYS)
        assert sorted(listed) == sorted(names)
        assert await store.list(Namespace.IDENTITIES) == []
    finally:
        await store.close()


async def test_prefixes_separate_deployments(etcd: EtcdCluster) -> None:
    a = EtcdStore(etcd.endpoints, prefix=_prefix(), timeout_s=2)
    b = EtcdStore(etcd.endpoints, prefix=_prefix(), timeout_s=2)
    try:
        assert await a.create(Namespace.KEYS, "same", b"a")
        assert await b.create(Namespace.KEYS, "same", b"b")
        assert await a.list(Namespace.KEYS) == ["same"]
        assert await b.get(Namespace.KEYS, "same") == b"b"
    finally:
        await a.close()
        await b.close()


async def test_a_dead_endpoint_in_the_list_is_skipped(etcd: EtcdCluster) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    store = EtcdStore([dead, *etcd.endpoints], prefix=_prefix(), timeout_s=2)
    try:
        for i in range(5):
            assert await store.create(Namespace.KEYS, f"k{i}", b"v")
        assert len(await store.list(Namespace.KEYS)) == 5
        assert (await store.status()).state == "available"
    finally:
        await store.close()


@pytest.fixture(name="tls_etcd", scope="module")
def _tls_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EtcdCluster, EtcdTLS]]:
    directory = tmp_path_factory.mktemp("etcd-tls")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("kes-server")
    paths = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key", "ccert", "ckey")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["ccert"]))
    client.private_key_pem.write_to_path(str(paths["ckey"]))
    tls = EtcdTLS(paths["ca"], paths["cert"], paths["key"], paths["ccert"], paths["ckey"])
    with start_etcd_cluster(directory, size=1, tls=tls) as cluster:
        yield cluster, tls


async def test_tls_with_client_certificates(tls_etcd: tuple[EtcdCluster, EtcdTLS]) -> None:
    cluster, tls = tls_etcd
    endpoint = cluster.endpoints[0]
    assert endpoint.startswith("https://")
    cfg = EtcdStoreConfig(
        endpoints=(endpoint,),
        prefix=_prefix(),
        timeout_s=2,
        ca=str(tls.ca),
        cert=str(tls.client_cert),
        key=str(tls.client_key),
    )
    store = EtcdStore.from_config(cfg)
    try:
        assert await store.create(Namespace.KEYS, "k", b"v")
        assert await store.get(Namespace.KEYS, "k") == b"v"
        assert (await store.status()).state == "available"
    finally:
        await store.close()
    # Without a client certificate etcd refuses the handshake: a clear error, no hang.
    anonymous = EtcdStore.from_config(EtcdStoreConfig((endpoint,), timeout_s=2, ca=str(tls.ca)))
    with pytest.raises(StoreUnreachable, match="etcd: cannot read 'k'") as info:
        await anonymous.get(Namespace.KEYS, "k")
    print(info.value)
    await anonymous.close()


def test_tls_files_missing_is_an_error(tmp_path: Path) -> None:
    cfg = EtcdStoreConfig(("https://127.0.0.1:1",), ca=str(tmp_path / "none.pem"))
    with pytest.raises(OSError):
        EtcdStore.from_config(cfg)
